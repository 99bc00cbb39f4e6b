"""Stage 5 · Attention maps: every layer and head, any query token, DINO masks, rollout, attention distance.

The model runs once per image, model, P and resolution (`vitviz.attention.trace_attention`, kept in a byte-bounded
store shared by all sessions); every control on this page only recomputes from the stored q, k, v, in one
`vitviz.attention.attention_view` per run that `ui.tabs.attention` draws (`ui.tabs.attention_qk` the two tabs beyond the
weight). The eight views are lazy tabs: a run draws
only the open one.
"""
from __future__ import annotations

from functools import partial

import streamlit as st

import vitviz
from ui.chrome import lazy_tabs, stage_footer, stage_header
from ui.common import clamp_state
from ui.context import context
from ui.models import show_notes, vit_input
from ui.patches import patch_picker, select_patch
from ui.store import RunStore
from ui.tabs import attention as tabs
from ui.tabs import attention_qk as tabs_qk
from vitviz import attention as att
from vitviz.i18n import _

TRACE_BUDGET = 256 * 2**20  # bytes of stored q, k, v over all cached traces (the newest one is always kept)


@st.cache_resource(show_spinner=False)
def _store() -> RunStore:
    # Traces run one at a time: each uses every core the app gives torch.
    return RunStore(TRACE_BUDGET, one_at_a_time=True)


def _query_token(layout: att.TokenLayout) -> int:
    """The query token the controls select: 0 for CLS, the selected patch's token for a patch."""
    if st.session_state.get("query", "CLS") != "patch":
        return 0
    return layout.patch_token(int(st.session_state.get("patch") or 0))


def _apply_click(cache_key: str, layout: att.TokenLayout) -> None:
    """A click on the enlarged head (read before any widget is drawn) selects that patch as the query.

    The figure has one marker per patch in raster order, so the clicked point's index is the patch index.
    """
    event = st.session_state.get(tabs.pick_key(cache_key, _query_token(layout)))
    try:
        index = int(event["selection"]["points"][0]["point_index"])
    except (KeyError, IndexError, TypeError, ValueError):
        return
    if 0 <= index < layout.patches:
        select_patch(index)
        st.session_state["query"] = "patch"


ctx = context()
vin = vit_input(ctx)
stage_header(
    "attention",
    _("Every layer lets each token gather information from all the others. For a **query** token i, head h scores "
      "every **key** token j by q_i·k_j/√d, turns the scores into weights with a softmax — one row of the "
      "**attention matrix** A, summing to 1 — and outputs the weighted sum of the **values** v_j. Pick a layer, a "
      "head and a query (the CLS token, or click any patch) and see where it looks on your image, and the numbers "
      "behind it."),
)
show_notes(vin)
trained = vitviz.is_trained(vin.model)
if not trained:
    st.warning(_(
        "**Random weights.** Without the trained checkpoint every q and k is small noise, so every softmax is "
        "close to uniform (≈ 1/T for all T tokens): the maps below are noise around a flat value, and all heads sit "
        "on the uniform line of the distance plot. With **Trained weights** (the sidebar's default, once they are "
        "on this machine) you see what a trained ViT attends to."), icon=":material/casino:")

layout = att.TokenLayout(vin.grid, vin.model.config.prefix)  # CLS and the registers come before the patches
if not layout.traceable:
    (gh, gw), tokens = layout.grid, layout.tokens
    st.error(_(
        "This input makes {gh} × {gw} = {n:,} patches, T = {tokens:,} tokens: one head's attention matrix alone "
        "would be {tokens:,}² = {entries:,} numbers ({gb:.1f} GB in float32), per head and "
        "layer. This page stops at {limit:,} patches: choose a larger patch size P or a lower resolution "
        "in the sidebar.").format(gh=gh, gw=gw, n=layout.patches, tokens=tokens, entries=layout.entries,
                                  gb=layout.matrix_gb, limit=layout.patch_limit), icon=":material/memory:")
    stage_footer("attention")
    st.stop()

with st.spinner(_("Running the model once on your image (q, k, v of every layer)…"), show_time=True):
    tr = _store().get(vin.cache_key, lambda: att.trace_attention(vin.model, vin.pixel_values))
depth, heads = tr.depth, tr.heads

st.session_state.setdefault("query", "CLS")
_apply_click(vin.cache_key, layout)
tabs_qk.apply_click(vin.cache_key, layout, _query_token(layout))
clamp_state("layer", 1, depth)
clamp_state("head", 1, heads)
clamp_state("upto", 1, depth)

with st.container(border=True):
    # "medium" gaps: on a phone the columns stack, and a large gap would leave blank bands between the controls.
    c1, c2 = st.columns([2, 3], gap="medium")
    layer = c1.slider(_("Layer"), 1, depth, value=depth, key="layer", bind="query-params",
                      help=_("1 is the first encoder layer (`blocks.0`); the last one feeds the output.")) - 1
    head = c2.pills(_("Head"), list(range(1, heads + 1)), default=1, key="head", required=True, bind="query-params",
                    help=_("{heads} heads of dimension d = {d} per layer.").format(heads=heads, d=tr.d_head)) - 1
    c3, c4 = st.columns([2, 3], gap="medium")
    # Bound to the URL: the options stay English words, with no format_func (the URL is the same in both languages).
    c3.segmented_control(_("Query token"), ["CLS", "patch"], required=True, key="query", bind="query-params",
                         help=_("The CLS token, or the selected patch: click any patch of the enlarged head "
                                "(tab *One head, step by step*), or type its index in the box beside this one."))
    with c4:
        patch_picker(layout.patches, _("Selected patch (raster index: row × {gw} + column)").format(gw=layout.grid[1]))
view = att.attention_view(tr, layer, head, _query_token(layout), vin.model.config.labels)

# The eight views, one tab each: only the open tab is computed and drawn.
lazy_tabs("attention", (partial(tabs.all_heads, view, vin), partial(tabs.one_head, view, vin),
                        partial(tabs.whole_matrix, view), partial(tabs.dino_masks, view, vin),
                        partial(tabs.rollout, view, vin), partial(tabs.distance, view),
                        partial(tabs_qk.queries_keys, view, vin), partial(tabs_qk.contributions, view, vin)))
tabs.predictions(view, ctx.model_name, trained)
tabs.caveats()
stage_footer("attention")
