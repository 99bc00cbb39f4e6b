"""The pipeline's stages in order: one page each, registered explicitly in app.py."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    key: str  # url_path of the page
    title: str  # navigation label
    icon: str  # material icon shown in the navigation
    file: str  # page script under pages/
    summary: str  # one line for the overview
    keys: tuple[str, ...] = ()  # the page's own widget keys bound to the URL (what a lesson step may set)
    tabs: tuple[str, ...] = ()  # labels of the page's step tabs, in order (ui.shell.lazy_tabs draws them)

    @property
    def tab_key(self) -> str:
        """URL key of the open tab ("" for a page without tabs)."""
        return TAB_KEYS.get(self.key, "")


# URL keys of the sidebar, shared by every page; "patch" is the selection pages 1, 2, 3 and 5 share
SIDEBAR_KEYS = ("img", "model", "ps", "hub", "res", "aspect", "patch")
TAB_KEYS = {"attention": "atsec", "registers": "rgsec", "swin": "swsec", "mobilevit": "mvsec", "explain": "xsec"}

STAGES = (
    Stage("patching", "1 · Patching", ":material/grid_on:", "pages/patching.py", "cut the image into P×P patches"),
    Stage("flattening", "2 · Flattening", ":material/view_stream:", "pages/flattening.py", "each patch becomes a P²·C vector"),
    Stage("projection", "3 · Linear projection", ":material/linear_scale:", "pages/projection.py", "x_p E: every patch vector becomes a D-dim token"),
    Stage("position", "4 · Position embeddings", ":material/pin_drop:", "pages/position.py", "prepend CLS, add E_pos (interpolated to the grid)"),
    Stage("attention", "5 · Attention maps", ":material/visibility:", "pages/attention.py", "softmax(QKᵀ/√d): where each token looks",
          keys=("layer", "head", "query", "t", "fusion", "discard", "upto"),
          tabs=("All heads", "One head, step by step", "Whole matrix", "DINO masks", "Rollout", "Distance vs depth")),
    Stage("registers", "6 · Registers & token norms", ":material/scatter_plot:", "pages/registers.py",
          "high-norm tokens, what registers change, features as colours", keys=("nlayer", "fgth", "fgcmp"),
          tabs=("Token norms", "Why those patches?", "Without vs with registers", "Features as colours")),
    Stage("swin", "7 · Swin windows", ":material/window:", "pages/swin.py", "attention inside shifted M×M windows, then merging",
          keys=("M", "shift", "swp", "swstage", "swblock", "swwin", "swq", "swhead"),
          tabs=("Partition", "Cyclic shift", "Mask & attention", "Relative position bias", "Patch merging", "Cost")),
    Stage("mobilevit", "8 · MobileViT", ":material/blur_on:", "pages/mobilevit.py", "convolution + attention across patches: unfold / fold",
          keys=("mvit", "mvstage", "ph", "pw", "mvl", "mvr", "mvc"),
          tabs=("Local representation", "Unfold", "Global representation", "Fold", "Fusion", "Receptive field", "Cost")),
    Stage("explain", "9 · Which patches decided?", ":material/travel_explore:", "pages/explain.py",
          "explanation maps for one class, tested by deleting patches; when the decision forms",
          keys=("xmodel", "xclass"), tabs=("Maps", "Deletion & insertion", "When does the decision form?")),
)


def stage(key: str) -> Stage:
    """The stage whose page has url_path `key`."""
    return next(s for s in STAGES if s.key == key)


def neighbours(key: str) -> tuple[Stage | None, Stage | None]:
    """The stages before and after `key` in the pipeline."""
    i = [s.key for s in STAGES].index(key)
    return (STAGES[i - 1] if i > 0 else None, STAGES[i + 1] if i + 1 < len(STAGES) else None)
