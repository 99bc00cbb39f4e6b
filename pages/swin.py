"""Stage 6 · Swin windows: the real Swin-T on the student's image — window partition, cyclic shift, shift mask,
relative position bias, patch merging and the cost of windowed attention (Liu et al. 2021, §3.1–3.2, Eq. 1–4).

The page reads its controls, makes one call (`vitviz.swin_windows.stage_view`) and hands its frozen result to the
drawing functions of `ui.tabs.swin`. The model runs once per image, input size, patch size, window size and stage (a
traced pass up to the chosen stage, kept in a byte-bounded store shared by all sessions: its arrays are read-only; a
plain st.cache_data would unpickle megabytes of attention maps on every rerun); a shift the checkpoint does not use
re-runs the shifted block alone. After each page, the runs for M − 1 and M + 1 are computed in the background
(VITVIZ_SWIN_PREFETCH=0 turns that off), so a slider step finds its model run ready. Every other control only
redraws, from caches keyed on strings and ints, and only the open tab (one of the six steps) is drawn.
"""
from __future__ import annotations

import os

import streamlit as st

from ui.chrome import lazy_tabs, stage_footer, stage_header
from ui.common import forget_outside, short_key
from ui.context import context
from ui.image_input import model_input
from ui.models import get_model
from ui.server import runs_in_progress
from ui.store import RunStore
from ui.tabs import swin as tabs
from vitviz import swin_windows as sw
from vitviz.i18n import _

MODEL = "swin-tiny"
PATCH_SIZES = (4, 8, 16)
STORE_BUDGET = 192 * 2**20  # bytes of traced runs kept over all sessions (the newest one is always kept)
PREFETCH = os.environ.get("VITVIZ_SWIN_PREFETCH", "1") != "0"  # 0: no background runs of the neighbouring M


@st.cache_resource(show_spinner=False)
def _store() -> RunStore:
    return RunStore(STORE_BUDGET)


@st.cache_resource(max_entries=4, show_spinner=False)
def _adapted(_model, source: str, patch: int):
    """A new Swin for patch size P sharing every weight with the cached checkpoint (never mutated)."""
    return _model.with_patch_size(patch)


def _forget_selection() -> None:
    """The roll step, the selected window and the query index into one partition: a new stage or M starts them anew."""
    for key in ("swstep", "swwin", "swq"):
        st.session_state.pop(key, None)


def _on_window_change() -> None:
    """A new window size starts from its own default shift M//2 (the shift slider's range changes too), and from the
    default window and query: the old indices would point into a different partition. The shift is forgotten, not
    set: the slider then starts from its default (M//2), and Streamlit has no value set through Session State to warn
    about. Its URL value is left to the widget: Streamlit refuses to delete a bound query parameter (an exception)."""
    st.session_state.pop("shift", None)
    _forget_selection()


ctx = context()
stage_header(
    "swin",
    _("ViT lets every token attend to every other token: the cost grows with the **square** of the number of tokens. "
      "The **Swin Transformer** attends only inside non-overlapping **M × M windows**, and in every second block it "
      "**shifts** the windows by s = ⌊M/2⌋ tokens so that information crosses window borders. It does the shift with a "
      "2-D **cyclic roll** of the feature map, which keeps the windows whole but glues together tokens from opposite "
      "edges of the image — a **mask** stops those from attending to each other. Between stages, **patch merging** "
      "halves the grid and doubles the channels. Here is the real Swin-T, on your image."),
)
st.caption(_("This page has its own window, shift, stage and patch-size controls: the sidebar's ViT model and patch "
             "size are for pages 1–5. The sidebar's image, resolution, aspect and *Trained weights* apply here too."))

base_model, warning = get_model(MODEL, ctx.pretrained)
M0, P0 = base_model.config.window_size, base_model.config.patch_size

with st.container(border=True):
    c1, c2, c3, c4, c5 = st.columns([4, 4, 6, 4, 3], gap="small")
    M = int(c1.slider(_("Window size M (tokens)"), 2, 14, M0, key="M", bind="query-params",
                      on_change=_on_window_change,
                      help=_("Swin-T was trained with M = {m0}. Other sizes resample its relative-position-bias "
                             "tables.").format(m0=M0)))
    forget_outside("shift", 0, M - 1)
    s_user = int(c2.slider(_("Shift s (tokens)"), 0, M - 1, sw.default_shift(M), key="shift", bind="query-params",
                           on_change=lambda: st.session_state.pop("swstep", None),
                           help=_("The checkpoint's shifted blocks use s = ⌊M/2⌋ = {half}. Other shifts re-run the "
                                  "shifted block with your s.").format(half=sw.default_shift(M))))
    P = int(c5.select_slider(_("Patch size P"), PATCH_SIZES, value=P0, key="swp", bind="query-params",
                             help=_("Swin-T reads {p0}×{p0} patches. Larger patches PI-resize its patch-embedding "
                                    "kernel (FlexiViT).").format(p0=P0)))
    source = base_model.source  # keys: the weights actually loaded (the hub id, or the preset after a failed download)
    model = base_model if P == P0 else _adapted(base_model, source, P)
    shown, pixel_values = model_input(ctx, model.preprocessing)
    in_h, in_w = pixel_values.shape[-2:]
    plan = sw.plan_stages(model.config, in_h, in_w, M)  # the stages by the model's rules, before the model runs
    stage = int(c3.radio(_("Stage"), [1, 2, 3, 4], key="swstage", horizontal=True, bind="query-params",
                         on_change=_forget_selection,
                         captions=[f"{lay.grid[0]}×{lay.grid[1]}×{lay.channels}" for lay in plan.stages],
                         help=_("Token grid h × w × channels C of each stage at this input size."))) - 1
    # options stay English (they are the URL's values); the captions say which block each one is
    block_kind = c4.radio(_("Block"), list(tabs.BLOCK_KINDS), key="swblock", horizontal=True, bind="query-params",
                          captions=[_("W-MSA (block 1)"), _("SW-MSA (block 2)")],
                          help=_("Every stage alternates a regular-window block and a shifted-window block."))
    # the window and query selection: sizes worked out with the model's own rule, before the model runs
    layout = plan.stages[stage]
    n_windows, tokens = layout.partition.n_windows, layout.partition.tokens_per_window
    d1, d2, d3 = st.columns([4, 4, 5], gap="small")
    forget_outside("swwin", 0, n_windows - 1)
    win = int(d1.number_input(_("Selected window (0 – {last}, row-major)").format(last=n_windows - 1), 0,
                              n_windows - 1, n_windows - 1, step=1, key="swwin", bind="query-params",
                              help=_("Used below: the same index in both blocks — the regular block's window and the "
                                     "shifted block's window (which sits s tokens further down and right in the "
                                     "image). The last window is the corner one.")))
    forget_outside("swq", 0, tokens - 1)
    query = int(d2.number_input(_("Query token (0 – {last}, row-major in the window)").format(last=tokens - 1),
                                0, tokens - 1, tokens // 2, step=1, key="swq", bind="query-params"))
    forget_outside("swhead", 1, layout.heads)
    head = int(d3.slider(_("Head (relative position bias)"), 1, layout.heads, 1, key="swhead",
                         bind="query-params")) - 1

size = f"{in_h}x{in_w}"
model_key = f"{source}|P{P}"
x = pixel_values.to(ctx.device)
selection = sw.Selection(M, s_user, stage, tabs.BLOCK_KINDS.index(block_kind), win, query, head)
with st.spinner(_("Running Swin-T on your image with these windows…"), show_time=True):
    view = sw.stage_view(model, x, selection, short_key(model_key, ctx.image_key, size, M, stage), _store().get)

tabs.notes(view, P0, warning)
tabs.stage_table(view)
# the six steps, one tab each: only the open tab is computed and drawn (a window-size move redraws one step, not the
# ~15 pictures and figures of all six)
lazy_tabs("swin", tabs.steps(view, tabs.ShownInput(shown, short_key(ctx.image_key, size, ctx.keep_aspect))))
stage_footer("swin")

# The neighbouring window sizes, in the direction the slider last moved first: run in the background after this page
# is drawn, so the next step of the slider only draws.
last_m = st.session_state.get("_sw_last_m", M)
st.session_state["_sw_last_m"] = M
order = (M + 1, M - 1) if M >= last_m else (M - 1, M + 1)
if PREFETCH:
    # Quiet: at most one run in progress — this one, while it ends, or another student's.
    _store().prefetch([(short_key(model_key, ctx.image_key, size, m, stage),
                        lambda m=m: sw.run_stage(model, x, m, stage)) for m in order if 2 <= m <= 14],
                      quiet=lambda: runs_in_progress() <= 1)
