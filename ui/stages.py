"""The pipeline's stages in order: one page each, registered explicitly in app.py."""
from __future__ import annotations

from dataclasses import dataclass

from vitviz.i18n import N_


@dataclass(frozen=True)
class Stage:
    key: str  # url_path of the page
    title: str  # navigation label (English; shown through vitviz.i18n._)
    icon: str  # material icon shown in the navigation
    file: str  # page script under pages/
    summary: str  # one line for the overview
    keys: tuple[str, ...] = ()  # the page's own widget keys bound to the URL (what a lesson step may set)
    tabs: tuple[str, ...] = ()  # English labels of the page's step tabs, in order: the URL's values (ui.chrome.lazy_tabs
    #                               shows them translated)

    @property
    def tab_key(self) -> str:
        """URL key of the open tab ("" for a page without tabs)."""
        return TAB_KEYS.get(self.key, "")


# URL keys of the sidebar, shared by every page; "patch" is the selection pages 1, 2, 3 and 5 share
SIDEBAR_KEYS = ("img", "model", "ps", "hub", "res", "aspect", "patch")
TAB_KEYS = {"attention": "atsec", "registers": "rgsec", "swin": "swsec", "mobilevit": "mvsec", "explain": "xsec"}

STAGES = (
    Stage("patching", N_("1 · Patching"), ":material/grid_on:", "pages/patching.py", N_("cut the image into P×P patches")),
    Stage("flattening", N_("2 · Flattening"), ":material/view_stream:", "pages/flattening.py", N_("each patch becomes a P²·C vector")),
    Stage("projection", N_("3 · Linear projection"), ":material/linear_scale:", "pages/projection.py", N_("x_p E: every patch vector becomes a D-dim token")),
    Stage("position", N_("4 · Position embeddings"), ":material/pin_drop:", "pages/position.py", N_("prepend CLS, add E_pos (interpolated to the grid)")),
    Stage("attention", N_("5 · Attention maps"), ":material/visibility:", "pages/attention.py", N_("softmax(QKᵀ/√d): where each token looks"),
          keys=("layer", "head", "query", "t", "fusion", "discard", "upto"),
          tabs=(N_("All heads"), N_("One head, step by step"), N_("Whole matrix"), N_("DINO masks"), N_("Rollout"), N_("Distance vs depth"),
                N_("Queries & keys"), N_("What tokens contribute"))),
    Stage("registers", N_("6 · Registers & token norms"), ":material/scatter_plot:", "pages/registers.py", N_("high-norm tokens, what registers change, features as colours"), keys=("nlayer", "fgth", "fgcmp"),
          tabs=(N_("Token norms"), N_("Why those patches?"), N_("Without vs with registers"), N_("Features as colours"))),
    Stage("swin", N_("7 · Swin windows"), ":material/window:", "pages/swin.py", N_("attention inside shifted M×M windows, then merging"),
          keys=("M", "shift", "swp", "swstage", "swblock", "swwin", "swq", "swhead"),
          tabs=(N_("Partition"), N_("Cyclic shift"), N_("Mask & attention"), N_("Relative position bias"), N_("Patch merging"), N_("Cost"))),
    Stage("mobilevit", N_("8 · MobileViT"), ":material/blur_on:", "pages/mobilevit.py", N_("convolution + attention across patches: unfold / fold"),
          keys=("mvit", "mvstage", "ph", "pw", "mvl", "mvr", "mvc"),
          tabs=(N_("Local representation"), N_("Unfold"), N_("Global representation"), N_("Fold"), N_("Fusion"), N_("Receptive field"), N_("Cost"))),
    Stage("explain", N_("9 · Which patches decided?"), ":material/travel_explore:", "pages/explain.py", N_("explanation maps for one class, tested by deleting patches; when the decision forms"),
          keys=("xmodel", "xclass"), tabs=(N_("Maps"), N_("Deletion & insertion"), N_("When does the decision form?"))),
)


# Pages beyond the pipeline: their own navigation section (the overview, the footers and the pipeline's order walk
# STAGES only), but lessons may open them and set their keys like a stage's.
PLAYGROUND = Stage("playground", N_("Train your own ViT"), ":material/model_training:", "pages/playground.py",
                   N_("train a tiny ViT on made-up images and watch it learn, live"),
                   keys=("pgtask", "pgmodel", "pgpos", "pgp", "pgsteps"))
EXTRAS = (PLAYGROUND,)


def stage(key: str) -> Stage:
    """The stage (or page beyond the pipeline, `EXTRAS`) whose page has url_path `key`."""
    return next(s for s in STAGES + EXTRAS if s.key == key)


def neighbours(key: str) -> tuple[Stage | None, Stage | None]:
    """The stages before and after `key` in the pipeline."""
    i = [s.key for s in STAGES].index(key)
    return (STAGES[i - 1] if i > 0 else None, STAGES[i + 1] if i + 1 < len(STAGES) else None)
