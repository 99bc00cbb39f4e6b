"""Stage 7 · MobileViT: one MobileViT block of the real MobileViT-XXS / -S on the student's image, step by step:
local convolution, unfold into P sequences of N patches, attention across patches, fold, fusion.

The page reads its controls, makes one run (`vitviz.mobilevit_blocks`: the patch-independent trunk, about half the
work, once per model, image and input size; the three MobileViT blocks once more per patch size, one traced pass
that fills all three stages) and hands the run to the drawing functions of `ui.tabs.mobilevit`, so a stage move or
a pixel click only redraws. The block's steps are lazy tabs: a run draws only the open one.
"""
from __future__ import annotations

from functools import partial

import streamlit as st

from ui.chrome import lazy_tabs, stage_footer, stage_header
from ui.common import clamp_state, short_key
from ui.context import context
from ui.image_input import input_size, model_input
from ui.models import get_model
from ui.store import RunStore
from ui.tabs import mobilevit as tabs
from vitviz import mobilevit_blocks as mb
from vitviz.i18n import _, N_

MODELS = {"mobilevit-xxs": N_("MobileViT-XXS (1.3 M parameters, ImageNet classifier)"),
          "mobilevit-s": N_("MobileViT-S (5.6 M parameters, ImageNet classifier)")}
PATCH_MAX = 8
STORE_BUDGET = 128 * 2**20  # bytes of runs kept over all sessions (the newest one is always kept)


@st.cache_resource(show_spinner=False)
def _store() -> RunStore:
    """Runs shared by every session, one trace at a time: each keeps every intermediate of its forward alive (~10 MB
    at 256 px, ~40 MB for S at 512 px), and a class arriving on this page at once would otherwise hold them all
    together. A store, not st.cache_data: that pickled each 4 MB run when it was made (5 ms) and unpickled it on
    every run of the page (4 ms)."""
    return RunStore(STORE_BUDGET, one_at_a_time=True)


@st.cache_resource(max_entries=32, show_spinner=False)  # (1, C, H/8, W/8): at most 1.5 MB each (S at 512 px)
def _trunk(source: str, image_key: str, size: tuple[int, int], _model, _x) -> mb.Trunk:
    """Shared, not copied: run_blocks only reads it."""
    return mb.trunk(_model, _x)


def _select_pixel(block: mb.BlockView, key: str, where) -> mb.PixelSelection:
    """The selected pixel of the H'×W' map unfolded: a click on the offset map (read first) or the number inputs,
    kept inside the map, which a stage or patch move may have shrunk."""
    hr, wr = block.unfolding.resized
    clamp_state("mvr", 0, hr - 1)
    clamp_state("mvc", 0, wr - 1)
    st.session_state.setdefault("mvr", hr // 2)
    st.session_state.setdefault("mvc", wr // 2)
    tabs.apply_click(key, (hr, wr))
    r1, r2 = where
    # Each label names the pixel: a screen reader reads one input's label alone, when the keyboard reaches it.
    r = int(r1.number_input(_("Pixel row r (0–{last})").format(last=hr - 1), 0, hr - 1, step=1, key="mvr",
                            bind="query-params"))
    c = int(r2.number_input(_("Pixel column c (0–{last})").format(last=wr - 1), 0, wr - 1, step=1, key="mvc",
                            bind="query-params"))
    return block.select(r, c)


ctx = context()
stage_header(
    "mobilevit",
    _("MobileViT mixes **convolutions** (local, pixel by pixel) with **transformers** (global). Its block keeps the "
      "feature map at full resolution: it cuts the map into small ph×pw patches, but instead of turning each patch "
      "into one token as ViT does, it **unfolds** the map into P = ph·pw sequences — one per pixel position inside a "
      "patch — and runs attention **across the patches** in each sequence. Then it **folds** the map back and fuses "
      "it with the input. Here is one block of the real MobileViT on your image."),
)
st.caption(_("This page has its own model and patch-size controls: the sidebar's ViT model and patch size P are for "
             "pages 1–5. The sidebar's image and input resolution apply here too."))

with st.container(border=True):
    c1, c2, c3, c4 = st.columns([5, 8, 3, 3], gap="small")
    name = c1.selectbox(_("MobileViT model"), list(MODELS), key="mvit", bind="query-params")
    c1.caption(_(MODELS[name]))
    model, warning = get_model(name, ctx.pretrained)
    shown, pixel_values = model_input(ctx, model.preprocessing)
    native = model.config.patch_size
    ph = c3.slider(_("Patch height ph"), 1, PATCH_MAX, native, key="ph", bind="query-params",
                   help=_("The checkpoint was trained with {native}×{native} patches. The weights do not depend on "
                          "the patch size, only the unfold/fold layout does.").format(native=native))
    pw = c4.slider(_("Patch width pw"), 1, PATCH_MAX, native, key="pw", bind="query-params")

if warning:
    st.info(warning, icon=":material/info:")
size = input_size(ctx)
with st.spinner(_("Running MobileViT once on your image at this patch size…"), show_time=True):
    # Keyed on model.source (the hub id or preset actually loaded): a hub fallback never shares keys with real weights.
    features = _trunk(model.source, ctx.image_key, size, model, pixel_values.to(ctx.device))
    run = _store().get(short_key(model.source, ctx.image_key, size, ph, pw),
                       lambda: mb.run_blocks(model, features, (ph, pw)))
if not run.at_trained_size:
    st.caption(_("Input {h}×{w} px. MobileViT was trained on {size}×{size}; set the sidebar's resolution to 256 to "
                 "see the checkpoint's own sizes (it runs at any size).").format(h=run.input_size[0],
                                                                               w=run.input_size[1],
                                                                               size=run.trained_size))
# The stage's captions are the run's map sizes, so the stage control (its own column) is drawn after the run.
stage = c2.radio(_("MobileViT stage (map H × W × d at this input size)"), list(mb.MOBILEVIT_STAGES),
                 key="mvstage", horizontal=True, bind="query-params",
                 captions=[f"{s.height}×{s.width}×{s.dim} · 1/{s.stride}" for s in run.stage_sizes],
                 help=_("The three stages that end in a MobileViT block (stages.2, 3, 4; the paper's layers "
                        "3–5). Each sees the image at 1/8, 1/16, 1/32 of the input size."))
block = run.blocks[stage]
key = short_key(model.source, ctx.image_key, size, stage, ph, pw)
tabs.show_trace_shapes(run, stage, name)
tabs.show_block(block)

# ---- the selected pixel (read by several steps), then the steps, one tab each: only the open tab is computed and
# drawn ----------------------------------------------------------------------------------------------------------
canvas = tabs.canvas(shown, short_key(ctx.image_key, size), block, key)
channels = tabs.chosen_channels(block)
with st.container(border=True):
    r1, r2, r3 = st.columns([2, 2, 5], gap="medium")
    pixel = _select_pixel(block, key, (r1, r2))
    tabs.show_selection(r3, block, pixel)
lazy_tabs("mobilevit", (
    partial(tabs.show_local_rep, block, channels, canvas),
    partial(tabs.show_unfold, block, run.shapes, pixel, channels, canvas),
    partial(tabs.show_global_rep, block, run.shapes, pixel, canvas, run.trained),
    partial(tabs.show_fold, block),
    partial(tabs.show_fusion, block, run.shapes, channels, canvas),
    partial(tabs.show_receptive_field, block, pixel, canvas),
    partial(tabs.show_cost, block),
))
tabs.show_predictions(run, name)
stage_footer("mobilevit")
