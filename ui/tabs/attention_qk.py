"""The attention page's two tabs beyond the weight, drawing what `vitviz.attention_qk` computes from the page's
stored trace: every query and key of one head in one picture (`QueryKeyMap`), and what each attended token adds to
the query's output (`Contributions`). A layer, head or query change reruns no model: both come from the stored
q, k, v and the layer's output projection, in bounded caches."""
from __future__ import annotations

import streamlit as st

from ui.chrome import download_array, show_source
from ui.common import chart, markdown_table, picture, short_key
from ui.models import VitInput
from ui.patches import select_patch
from ui.tabs.attention import PLOT, _backdrop
from vitviz import attention as att
from vitviz import attention_qk as qk
from vitviz.describe import attention_qk as describe
from vitviz.describe.common import percent
from vitviz.i18n import N_, _, sentences
from vitviz.viz import attention as viz
from vitviz.viz.attention_qk import qk_figure
from vitviz.viz.encode import jpeg

# Width of the four contribution maps: they share a row two by two, and a layer move sends all four (at 480 px, as the
# head grid, 1,374 tokens of DINOv2 at 518 px sent 169 kB of pictures; the budget per move is 150 kB).
CONTRIB_PX = 400
COLOURS = {"row": N_("patch row"), "column": N_("patch column"), "norm": N_("vector length"),
           "received": N_("attention received")}


@st.cache_data(max_entries=32, show_spinner=False)
def _qk_map(cache_key: str, layer: int, head: int, token: int, _trace: att.AttentionTrace) -> qk.QueryKeyMap:
    return qk.query_key_map(_trace, layer, head, token)


@st.cache_data(max_entries=32, show_spinner=False)
def _contributions(cache_key: str, layer: int, head: int, token: int, _model, _trace: att.AttentionTrace,
                   _image) -> tuple[qk.Contributions, list[bytes]]:
    """The contributions and their four maps over the image (weight, contribution, the head's value lengths, the
    layer's output shares), each on its own 0…max colour scale as the page's other maps."""
    c = qk.contributions(_model, _trace, layer, head, token)
    base = _backdrop(cache_key, CONTRIB_PX, _image, _trace.patch_size)
    cell = c.layout.cell(token)
    return c, [jpeg(viz.overlay(base, c.on_grid(values), query=cell))
               for values in (c.weight, c.contribution, c.value_norm, c.share)]


def pick_key(cache_key: str, token: int) -> str:
    # A fresh key per (input, query), as the enlarged head's: every click is a change.
    return "qk-pick-" + short_key(cache_key, token)


def apply_click(cache_key: str, layout: att.TokenLayout, token: int) -> None:
    """A click on a point of the map (read before any widget is drawn) makes its token the page's query: CLS, or the
    patch (a register cannot be a query of the page's controls). The figure's first two curves are the patches' keys
    and queries in raster order, the next two CLS and the registers (`qk_figure`)."""
    try:
        point = st.session_state[pick_key(cache_key, token)]["selection"]["points"][0]
        curve, index = int(point["curve_number"]), int(point["point_index"])
    except (KeyError, IndexError, TypeError, ValueError):
        return
    if curve in (0, 1) and 0 <= index < layout.patches:
        select_patch(index)
        st.session_state["query"] = "patch"
    elif curve in (2, 3) and index == 0:
        st.session_state["query"] = "CLS"


# ---- Queries and keys, one map -----------------------------------------------------------------------------
def queries_keys(view: att.AttentionView, vin: VitInput) -> None:
    """Every query and key of the head in one picture, the query's true top weights beside it, and how faithful the
    picture is, head by head."""
    m = _qk_map(vin.cache_key, view.layer, view.head, view.query, view.trace)
    st.subheader(_("Layer {layer}, head {head}: queries and keys in one picture").format(
        layer=view.layer + 1, head=view.head + 1))
    colour = st.selectbox(_("Colour the points by"), list(COLOURS), format_func=lambda c: _(COLOURS[c]), key="qkcol")
    left, right = st.columns([3, 2], gap="medium")
    name = _(COLOURS[colour])
    chart(qk_figure(m, m.coloured_by(colour), colour_name=name,
                    title=_("{t} queries (●) and {t} keys (◆)").format(t=m.tokens) + "<br>"
                    + _("the axes keep {variance} of the variance").format(variance=percent(m.variance))),
          alt=describe.query_key_map(m, name), where=left, key=pick_key(vin.cache_key, view.query), on_select="rerun",
          selection_mode="points", theme=None, config={**PLOT, "modeBarButtonsToRemove": ["select2d", "lasso2d"]})
    with right:
        _top_keys(m)
    st.markdown(sentences(
        _("**Why the keys may be moved.** Adding one vector c to every key adds q·c to every score of a query — "
          "the same amount — so its softmax row does not change; multiplying the queries by s and dividing the keys "
          "by s changes no score at all. AttentionViz (Yeh et al. 2023) uses both: the keys are moved to the "
          "queries' centre and both are scaled to the same mean length (here s = {s:.3g}), so that a query lies "
          "near the keys it scores high. One PCA of the queries and keys together gives the two axes.").format(
            s=m.scale),
        _("**Is the picture right?** Not always: the numbers beside it count, for every query, how many of its 5 "
          "nearest keys in the picture are among its 5 largest true weights.")))
    st.caption(_("Circles are queries, diamonds keys; CLS and the registers are black and named. The selected "
                 "query is ringed in yellow and black, with lines to its 5 largest weights (thicker: larger; the "
                 "numbers are their ranks). Click a point to make that token the query, or choose it with the "
                 "controls above."))
    show_source(qk.normalise, qk.pca_2d, qk.nearest_hits)


def _top_keys(m: qk.QueryKeyMap) -> None:
    """The query's true top keys (and whether the picture puts them near), and every head's faithfulness."""
    layout = m.layout
    st.markdown(_("**{token}: its 5 largest true weights**").format(token=layout.label(m.query)))
    near = {int(j): rank + 1 for rank, j in enumerate(m.nearest)}
    st.markdown(markdown_table(
        ["#", _("key"), _("weight"), _("rank of nearness in the picture")],
        [[str(rank + 1), layout.short(int(j)), percent(w), str(near[int(j)]) if int(j) in near else "—"]
         for rank, (j, w) in enumerate(zip(m.top, m.weights))]))
    st.markdown(_("{agree} of its 5 nearest keys in the picture are among them.").format(agree=m.agree))
    st.markdown(_("**How faithful, head by head** (layer {layer}; a random picture: {chance})").format(
        layer=m.layer + 1, chance=percent(m.chance)))
    st.markdown(markdown_table(
        [_("head"), _("in the picture"), _("before the projection")],
        [[f"**{h + 1}**" if h == m.head else str(h + 1), percent(f), percent(full)]
         for h, (f, full) in enumerate(zip(m.faithfulness, m.faithfulness_full))]))
    st.caption(describe.faithfulness(m))


# ---- What each token contributes ---------------------------------------------------------------------------
def contributions(view: att.AttentionView, vin: VitInput) -> None:
    """Weight against contribution for the query (Kobayashi et al. 2020), and every token's share of the layer's
    attention output."""
    c, pictures = _contributions(vin.cache_key, view.layer, view.head, view.query, vin.model, view.trace, vin.shown)
    st.subheader(_("Layer {layer}: what each token adds to {token}").format(layer=view.layer + 1, token=view.label))
    captions = (
        _("Weight α (mean of the {heads} heads): patches {low:.3g}–{high:.3g}"),
        _("Contribution ‖Σ_h α f_h(x_j)‖: patches {low:.3g}–{high:.3g}"),
        _("Head {head}: ‖f_h(x_j)‖, what a token adds at weight 1: {low:.3g}–{high:.3g}"),
        _("All queries: each token's share of the output, {low}–{high}"),
    )
    alts = (describe.weight_map(c), describe.contribution_map(c), describe.value_map(c), describe.share_map(c))
    shares = (False, False, False, True)  # the last map's values are shares, written as percentages
    for start in (0, 2):
        cols = st.columns(2, gap="medium")
        for i, col in zip(range(start, start + 2), cols):
            patches = c.table[c.layout.prefix:, i]
            low, high = (percent(patches.min()), percent(patches.max())) if shares[i] else (patches.min(), patches.max())
            picture(pictures[i], alt=alts[i], where=col, width="stretch",
                    caption=captions[i].format(heads=view.trace.heads, head=view.head + 1, low=low, high=high))
    st.markdown(describe.disagreement(c))
    st.markdown(describe.layer_sentence(c))
    # Two lines, so that the equation fits a phone's width.
    st.latex(r"\begin{gathered}o_i = \sum_h \sum_j \alpha^h_{ij}\, f_h(x_j) + b_O,\\ f_h(x) = (x W_V^h + b_V^h)\, W_O^h"
             r"\end{gathered}")
    st.markdown(sentences(
        _("Each map has its own colour scale from 0 (dark) to its largest value (bright), as the other maps of this "
          "page. A weight says how much the query looks at a token; what it takes is the weight times the token's "
          "transformed value f_h(x_j) — and those vectors differ in length, so a token can get a large weight and "
          "add little (Kobayashi et al. 2020, \"Attention is Not Only a Weight\")."),
        _("DINOv2 multiplies the attention output by its learned LayerScale λ₁ before it reaches the residual "
          "stream; the lengths here include it.") if c.layer_scale else "",
        _("Summed over the tokens and the heads, plus the bias b_O, these vectors are exactly the attention "
          "sublayer's output (tested against transformers to 10⁻⁴).")))
    download_array(_("Weight, contribution, value length, share per token (T × 4)"),
                   c.table, f"contributions-l{view.layer + 1}-q{view.query}")
    show_source(qk.contributions, qk.contribution_norms)
