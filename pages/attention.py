"""Stage 5 · Attention maps: every layer and head, any query token, DINO masks, rollout, attention distance.

The model runs once per image, model, P and resolution (`vitviz.attention.trace_attention`, kept in a byte-bounded
store shared by all sessions); every control on this page only recomputes from the stored q, k, v. The six views
are lazy tabs: a run draws only the open one.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import streamlit as st

import vitviz
from ui.patches import patch_picker
from ui.chrome import download_array, lazy_tabs, show_source, stage_footer, stage_header
from ui.context import context
from ui.models import show_notes, vit_input
from ui.patches import select_patch
from ui.store import RunStore
from vitviz import attention as att
from vitviz.i18n import _, sentences
from vitviz.viz import attention as viz
from vitviz.viz.encode import jpeg

MAX_TOKENS = 4097  # 64 × 64 patches + CLS: beyond, even one head's T × T matrix passes 67 MB
MATRIX_MAX_PATCHES = 1600  # draw the full N × N heatmap up to a 40 × 40 grid
ROLLOUT_AUTO_TOKENS = 1601  # beyond, the rollout (L·H matrices of T × T) waits for a button
TRACE_BUDGET = 256 * 2**20  # bytes of stored q, k, v over all cached traces (the newest one is always kept)
HEAD_PX = 480  # width the head-grid pictures are rendered at
BIG_PX = 640  # width of the enlarged head


@st.cache_resource(show_spinner=False)
def _store() -> RunStore:
    # Traces run one at a time: each uses every core the app gives torch.
    return RunStore(TRACE_BUDGET, one_at_a_time=True)


def _query_token(n: int, prefix: int) -> int:
    """The query token the controls select: 0 for CLS, prefix (1 + registers) + raster index for a patch."""
    if st.session_state.get("query", "CLS") != "patch":
        return 0
    return prefix + min(max(int(st.session_state.get("patch") or 0), 0), n - 1)


def _pick_key(cache_key: str, token: int) -> str:
    # A fresh key per (input, query): every click is a change, even on the patch selected before.
    return "attn-pick-" + hashlib.sha1(f"{cache_key}|{token}".encode()).hexdigest()[:12]


def _apply_click(cache_key: str, n: int, prefix: int) -> None:
    """A click on the enlarged head (read before any widget is drawn) selects that patch as the query.

    The figure has one marker per patch in raster order, so the clicked point's index is the patch index.
    """
    event = st.session_state.get(_pick_key(cache_key, _query_token(n, prefix)))
    try:
        index = int(event["selection"]["points"][0]["point_index"])
    except (KeyError, IndexError, TypeError, ValueError):
        return
    if 0 <= index < n:
        select_patch(index)
        st.session_state["query"] = "patch"


def _clamp(key: str, low: int, high: int) -> None:
    """Keep a bound widget's stored value inside its current range (the model or grid may have changed)."""
    value = st.session_state.get(key)
    if isinstance(value, (int, float)) and not low <= value <= high:
        st.session_state[key] = min(max(int(value), low), high)


@st.cache_data(max_entries=16, show_spinner=False)
def _backdrop(cache_key: str, width: int, _image, patch: int) -> viz.Backdrop:
    """The input resized for display once per input and width (every picture of the page is drawn on it)."""
    return viz.backdrop(_image, patch, width)


def _cell(token: int, grid: tuple[int, int], prefix: int) -> tuple[int, int] | None:
    return None if token < prefix else divmod(token - prefix, grid[1])


@st.cache_data(max_entries=64, show_spinner=False)
def _head_pictures(cache_key: str, layer: int, token: int, _rows: np.ndarray, _image, patch: int, prefix: int) -> list[bytes]:
    """JPEG of each head's attention row `_rows` (heads, T) of query `token` in `layer`, over the image."""
    base = _backdrop(cache_key, HEAD_PX, _image, patch)
    return [jpeg(viz.overlay(base, row[prefix:].reshape(base.grid), query=_cell(token, base.grid, prefix)))
            for row in _rows]


@st.cache_data(max_entries=64, show_spinner=False)
def _big_picture(cache_key: str, layer: int, head: int, token: int, _row: np.ndarray, _image, patch: int,
                 prefix: int) -> tuple[bytes, tuple[int, int]]:
    """JPEG (and size) of one head's attention row, enlarged: the background of the clickable figure."""
    base = _backdrop(cache_key, BIG_PX, _image, patch)
    picture = viz.overlay(base, _row[prefix:].reshape(base.grid), query=_cell(token, base.grid, prefix))
    return jpeg(picture), picture.size


@st.cache_data(max_entries=32, show_spinner=False)
def _mask_pictures(cache_key: str, t: float, _tr: att.AttentionTrace, _image) -> list[tuple[bytes, int]]:
    """DINO masks of the last layer's CLS attention per head at mass fraction t: JPEG and kept-patch count."""
    base = _backdrop(cache_key, HEAD_PX, _image, _tr.patch_size)
    masks = att.mass_threshold_mask(_tr.cls_attention(-1), t).cpu().numpy()
    colours = viz.HEAD_COLOURS
    return [(jpeg(viz.mask_overlay(base, m.reshape(_tr.grid), colours[h % len(colours)])), int(m.sum()))
            for h, m in enumerate(masks)]


@st.cache_data(max_entries=32, show_spinner=False)
def _rollout(cache_key: str, layers: int, fusion: str, discard: float, _tr: att.AttentionTrace, _image) -> tuple[np.ndarray, bytes, bytes]:
    """The rollout row R[CLS] (T,), and pictures of its patch part and, to compare, of layer `layers`' CLS row alone."""
    rolled = _tr.rollout(layers, fusion, discard).cpu().numpy()
    alone = att.fuse_heads(_tr.rows(layers - 1, 0)[:, None], fusion)[0].cpu().numpy()
    base = _backdrop(cache_key, BIG_PX, _image, _tr.patch_size)
    draw = lambda row: jpeg(viz.overlay(base, row[_tr.prefix:].reshape(_tr.grid)))  # noqa: E731
    return rolled, draw(rolled), draw(alone)


def _picture_grid(pictures: list[bytes], captions: list[str]) -> None:
    per_row = 3 if len(pictures) <= 6 else 4
    for start in range(0, len(pictures), per_row):
        cols = st.columns(per_row)
        for col, picture, caption in zip(cols, pictures[start:start + per_row], captions[start:start + per_row]):
            col.image(picture, caption=caption, width="stretch")


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table (cheaper to send than a dataframe, and large enough to read on a projector)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _pct(x: float) -> str:
    """A share as a percentage that stays readable when tiny: 99.5%, 35.0%, 0.51%, 0.028%."""
    return f"{100 * x:.1f}%" if x >= 0.1 else f"{100 * x:.2g}%"


def _label(token: int) -> str:
    return att.token_label(token, (gh, gw), pre)


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
random_weights = getattr(vin.model, "source", None) in vitviz.HUB_IDS  # a preset name, not a checkpoint
if random_weights:
    st.warning(_(
        "**Random weights.** Without the trained checkpoint every q and k is small noise, so every softmax is "
        "close to uniform (≈ 1/T for all T tokens): the maps below are noise around a flat value, and all heads sit "
        "on the uniform line of the distance plot. With **Trained weights** (the sidebar's default, once they are "
        "on this machine) you see what a trained ViT attends to."), icon=":material/casino:")

gh, gw = vin.grid
n, p = gh * gw, vin.patch_size
pre = vin.model.config.prefix  # CLS and the registers come before the patches
tokens = n + pre
if tokens > MAX_TOKENS:
    st.error(_(
        "This input makes {gh} × {gw} = {n:,} patches, T = {tokens:,} tokens: one head's attention matrix alone "
        "would be {tokens:,}² = {entries:,} numbers ({gb:.1f} GB in float32), per head and "
        "layer. This page stops at {limit:,} patches: choose a larger patch size P or a lower resolution "
        "in the sidebar.").format(gh=gh, gw=gw, n=n, tokens=tokens, entries=tokens ** 2, gb=tokens ** 2 * 4 / 2**30,
                                  limit=MAX_TOKENS - 1), icon=":material/memory:")
    stage_footer("attention")
    st.stop()

with st.spinner(_("Running the model once on your image (q, k, v of every layer)…"), show_time=True):
    tr = _store().get(vin.cache_key, lambda: att.trace_attention(vin.model, vin.pixel_values))
depth, heads = tr.depth, tr.heads
d_head = tr.q[0].shape[-1]

st.session_state.setdefault("query", "CLS")
_apply_click(vin.cache_key, n, pre)
_clamp("layer", 1, depth)
_clamp("head", 1, heads)
_clamp("upto", 1, depth)

with st.container(border=True):
    c1, c2 = st.columns([2, 3], gap="large")
    layer = c1.slider(_("Layer"), 1, depth, value=depth, key="layer", bind="query-params",
                      help=_("1 is the first encoder layer (`blocks.0`); the last one feeds the output.")) - 1
    head = c2.pills(_("Head"), list(range(1, heads + 1)), default=1, key="head", required=True, bind="query-params",
                    help=_("{heads} heads of dimension d = {d} per layer.").format(heads=heads, d=d_head)) - 1
    c3, c4, _spare = st.columns([2, 2, 1], gap="large")
    # Bound to the URL: the options stay English words, with no format_func (the URL is the same in both languages).
    c3.segmented_control(_("Query token"), ["CLS", "patch"], required=True, key="query", bind="query-params",
                         help=_("The CLS token, or the selected patch: click any patch of the enlarged head "
                                "(tab *One head, step by step*)."))
    with c4:
        patch_picker(n, _("Selected patch (raster index)"))
token = _query_token(n, pre)
rows = tr.rows(layer, token).cpu().numpy()  # (heads, T)
row = rows[head]  # (T,)

# ---- All heads of the layer -------------------------------------------------------------------------------
def all_heads() -> None:
    """Row `token` of A in every head of the layer, over the image."""
    st.subheader(_("Layer {layer}: where {token} looks, head by head").format(layer=layer + 1, token=_label(token)))
    pictures = _head_pictures(vin.cache_key, layer, token, rows, vin.shown, p, pre)
    _picture_grid(pictures, [_("head {h}").format(h=h + 1) + f" · {r[pre:].min():.3g}–{r[pre:].max():.3g} · CLS {_pct(r[0])}"
                             + (" · " + _("registers {share}").format(share=_pct(r[1:pre].sum())) if pre > 1 else "")
                             for h, r in enumerate(rows)])
    if pre > 1:
        where = _("Row {token} of A in each head of layer {layer} (`blocks.{index}`), drawn on the patches it weights. "
                  "Each picture has its own colour scale from 0 (dark) to its largest weight (bright); the caption "
                  "gives the smallest and largest weight on a patch and the weight on the CLS key, which has no place "
                  "on the image (nor have the registers: their weights are in the table below).")
    else:
        where = _("Row {token} of A in each head of layer {layer} (`blocks.{index}`), drawn on the patches it weights. "
                  "Each picture has its own colour scale from 0 (dark) to its largest weight (bright); the caption "
                  "gives the smallest and largest weight on a patch and the weight on the CLS key, which has no place "
                  "on the image.")
    st.caption(sentences(where.format(token=token, layer=layer + 1, index=layer),
                     _("The yellow square is the query patch.") if token else "",
                     _("Pixels beyond the last whole patch are dimmed: the model never sees them.")))
    if pre > 1:
        st.markdown(_("**Attention to the tokens that are not patches**, per head of layer {layer}:").format(layer=layer + 1))
        st.markdown(_table([_("head"), "CLS", *(_("register {r}").format(r=r) for r in range(1, pre)), _("all patches")],
                           [[str(h + 1), *(_pct(x) for x in r[:pre]), _pct(r[pre:].sum())] for h, r in enumerate(rows)]))
        st.caption(_("Registers are extra learned tokens with no patch and no position (Darcet et al. 2024): they give "
                     "the model a place to store global information, so it need not overwrite uninformative patches "
                     "with it."))


# ---- One head enlarged, clickable, with its computation --------------------------------------------------
def one_head() -> None:
    """One head enlarged and clickable, with q·k/√d → softmax → Σ a·v on the real numbers."""
    st.subheader(_("Head {head} enlarged — click a patch to make it the query").format(head=head + 1))
    left, right = st.columns(2, gap="large")
    with left:
        picture, size = _big_picture(vin.cache_key, layer, head, token, row, vin.shown, p, pre)
        fig_height = int(min(760, max(300, 430 * size[1] / size[0] + 125)))  # the image fills the column
        st.plotly_chart(
            viz.query_figure(picture, size, row[pre:].reshape(gh, gw), p * BIG_PX / vin.shown.width, height=fig_height,
                             title=_("{token} → every patch · layer {layer}, head {head}").format(
                                 token=_label(token), layer=layer + 1, head=head + 1)),
            key=_pick_key(vin.cache_key, token), on_select="rerun", selection_mode="points", theme=None,
            config={"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]})
        if pre > 1:
            st.plotly_chart(viz.prefix_strip(row[:pre], ["CLS", *(_("reg {r}").format(r=r) for r in range(1, pre))],
                                             vmax=float(row[pre:].max())),
                            key="attn-strip", theme=None, config={"displaylogo": False, "displayModeBar": False})
        if pre > 1:
            spread = _("Hover for the exact weight. This query gives {cls} of its attention to the CLS token, "
                       "{regs} to the {registers} registers and {patches} to the {n:,} patches; a uniform head would "
                       "give each token 1/T = {uniform:.3g}.")
        else:
            spread = _("Hover for the exact weight. This query gives {cls} of its attention to the CLS token and "
                       "{patches} to the {n:,} patches; a uniform head would give each token 1/T = {uniform:.3g}.")
        st.caption(spread.format(cls=_pct(row[0]), regs=_pct(row[1:pre].sum()), registers=pre - 1,
                                 patches=_pct(row[pre:].sum()), n=n, uniform=1 / tokens))
    b = tr.breakdown(layer, head, token, top=5)
    short = lambda j: "CLS" if j == 0 else _("reg {r}").format(r=j) if j < pre else "({},{})".format(*divmod(int(j) - pre, gw))  # noqa: E731
    with right:
        st.markdown(_("**The computation for {token}** — layer {layer}, head {head}, d = {d}").format(
            token=_label(token), layer=layer + 1, head=head + 1, d=d_head))
        st.latex(r"s_j = \frac{q_i \cdot k_j}{\sqrt{d}}, \qquad a_{ij} = \frac{e^{s_j}}{\sum_{j'} e^{s_{j'}}}")
        top_exp = np.exp(b.scores[b.top] - b.scores.max())
        total_exp = np.exp(b.scores - b.scores.max()).sum()
        st.markdown(_table(
            [_("key j"), "q·k_j", "s_j", "e^(s_j−m)", "a_ij"],
            [[short(j), f"{dot:+.4g}", f"{b.scores[j]:+.4g}", f"{e:.4g}", f"**{b.probs[j]:.4g}**"]
             for j, dot, e in zip(b.top, b.dots, top_exp)]))
        st.markdown(_(
            "The 5 keys with the largest weights; √d = {sqrt_d:g}. The softmax divides by the sum over all "
            "**{tokens:,}** keys, Σ e^(s_j − m) = **{total:.4g}**, where m = max s_j (subtracting it changes nothing "
            "but avoids overflow). These 5 hold **{share}** of the attention; uniform would be "
            "{uniform}.").format(sqrt_d=1 / b.scale, tokens=tokens, total=total_exp, share=_pct(b.probs[b.top].sum()),
                                 uniform=_pct(5 / tokens)))
    dims = min(6, d_head)
    partial = b.probs[b.top] @ b.values
    shown = np.vstack([b.probs[b.top, None] * b.values[:, :dims], partial[:dims], b.output[:dims]])
    places = 4 if np.abs(shown).max() >= 0.01 else 6  # tiny weights at thousands of tokens need more decimals
    st.markdown(_("**Then the weighted sum of the values**, o_i = Σ_j a_ij v_j — the first {dims} of its {d} "
                  "numbers:").format(dims=dims, d=d_head))
    st.markdown(_table(
        ["", *(f"[{i}]" for i in range(dims)), "…"],
        [*([_("a_ij · v_j of {token}").format(token=short(j)), *(f"{x:+.{places}f}" for x in line), "…"]
           for j, line in zip(b.top, shown[:5])),
         [_("Σ over these 5 keys"), *(f"{x:+.{places}f}" for x in shown[5]), "…"],
         [_("**o_i** = Σ over all {tokens:,} keys").format(tokens=tokens), *(f"**{x:+.{places}f}**" for x in shown[6]), "…"]]))
    st.caption(_("o_i is this head's output for the query; the output projection mixes it with the other {others} "
                 "heads' outputs. Every number here comes from the q, k, v the model computed for your image.").format(
        others=heads - 1))


# ---- The full matrix ------------------------------------------------------------------------------------
def whole_matrix() -> None:
    """The layer's T × T attention matrix of one head (or the query's row, for large grids)."""
    st.subheader(_("The whole attention matrix of layer {layer}, head {head}").format(layer=layer + 1, head=head + 1))
    if n <= MATRIX_MAX_PATCHES:
        labels = ["CLS", *(_("reg {r}").format(r=r) for r in range(1, pre)), *(f"({r},{c})" for r in range(gh) for c in range(gw))]
        st.plotly_chart(viz.matrix_figure(tr.matrix(layer, head).cpu().numpy(), labels, query=token,
                                          title=_("A: {t} × {t} (row = query i, column = key j; each row sums to "
                                                  "1)").format(t=tokens)),
                        key="attn-matrix", theme=None, config={"displaylogo": False})
        order = (_("Token 0 is CLS, tokens 1–{last} the registers, then the patches in raster order (row, "
                   "column).").format(last=pre - 1) if pre > 1
                 else _("Token 0 is CLS, then the patches in raster order (row, column)."))
        st.caption(sentences(order, _("Column 0 shows how much every token reads from CLS; the diagonal is each token's "
                                  "attention to itself. The selected query's row is framed.")))
    else:
        st.info(_(
            "At {gh} × {gw} patches the matrix has {tokens:,} × {tokens:,} = {entries:,} entries per head — more cells "
            "than a screen has pixels, and {mb:,.0f} MB to send. It is drawn up to 40 × 40 patches "
            "(raise P or lower the resolution to see it). Here is the row of the selected query instead.").format(
                gh=gh, gw=gw, tokens=tokens, entries=tokens ** 2, mb=tokens ** 2 * 4 / 2**20),
            icon=":material/grid_off:")
        st.plotly_chart(viz.row_figure(row, (gh, gw), prefix=pre,
                                       title=_("Row {index} ({token}); A[{index}, CLS] = {value:.3g}").format(
                                           index=token, token=_label(token), value=row[0])),
                        key="attn-row", theme=None, config={"displaylogo": False})
    download_array(_("Attention rows of {token}, layer {layer} (heads × T)").format(token=_label(token), layer=layer + 1),
                   rows, f"attention-l{layer + 1}-q{token}")
    show_source(att.attention_probs, att.AttentionTrace.rows, att.query_breakdown)


# ---- DINO's CLS masks -----------------------------------------------------------------------------------
def dino_masks() -> None:
    """DINO's CLS masks: the smallest patch sets holding a fraction t of each head's attention (Caron et al. 2021, Fig. 3)."""
    st.subheader(_("CLS attention of the last layer, thresholded (DINO)"))
    t = st.slider(_("Keep the fraction t of the attention mass"), 0.05, 1.0, 0.6, 0.05, key="t", bind="query-params",
                  help=_("DINO's visualize_attention.py uses t = 0.6."))
    masks = _mask_pictures(vin.cache_key, float(t), tr, vin.shown)
    cls_rows = tr.rows(depth - 1, 0).cpu().numpy()
    _picture_grid([pic for pic, _kept in masks],
                  [_("head {h}").format(h=h + 1) + " · "
                   + _("{kept} of {n:,} patches ({share:.0%})").format(kept=kept, n=n, share=kept / n)
                   + (" · " + _("registers hold {share}").format(share=_pct(cls_rows[h, 1:pre].sum())) if pre > 1 else "")
                   for h, (_pic, kept) in enumerate(masks)])
    st.markdown(sentences(
        _("For each head, the last layer's CLS row A[0, {start}:] over the patches is sorted, and the "
          "**smallest set of patches holding {t:.0%} of its patch mass** is kept (bright); the rest is "
          "darkened.").format(start="1+R" if pre > 1 else "1", t=t),
        _("The mask covers patches only: what CLS gives to the registers (in each caption) is left out before the "
          "fraction is taken.") if pre > 1 else "",
        _("The fewer patches a head needs, the more concentrated its attention. In DINO, trained **without labels**, "
          "different heads of the last layer pick out different objects or parts, close to a segmentation (Caron et "
          "al. 2021, Fig. 3).")))
    show_source(att.mass_threshold_mask)


# ---- Rollout --------------------------------------------------------------------------------------------
def rollout() -> None:
    """Attention rollout (Abnar & Zuidema 2020, §3): ½(A + I) multiplied through the layers."""
    st.subheader(_("Attention rollout: following attention through the layers"))
    r1, r2, r3 = st.columns(3, gap="medium")
    # Bound to the URL: the options stay the English names mean/max/min, with no format_func.
    fusion = r1.segmented_control(_("Head fusion"), list(att.FUSIONS), default="mean", required=True, key="fusion",
                                  bind="query-params")
    discard = r2.slider(_("Discard the lowest fraction"), 0.0, 0.95, 0.0, 0.05, key="discard", bind="query-params",
                        help=_("Zero this fraction of the smallest fused weights (never CLS's row or column) before "
                               "the residual."))
    upto = r3.slider(_("Through layer"), 1, depth, depth, key="upto", bind="query-params")
    settings = f"{vin.cache_key}|{upto}|{fusion}|{discard}"
    if tokens > ROLLOUT_AUTO_TOKENS and st.session_state.get("rollout-asked") != settings:
        st.info(_("Rollout builds every head's {tokens:,} × {tokens:,} matrix in each of the {layers} layers "
                  "(about {gflop:,.0f} GFLOP): seconds to a minute on a CPU, so it waits for you.").format(
                    tokens=tokens, layers=upto, gflop=2 * upto * heads * tokens ** 2 * d_head / 1e9),
                icon=":material/hourglass_top:")
        if st.button(_("Compute the rollout for these settings"), key="rollout-go"):
            st.session_state["rollout-asked"] = settings
    if tokens <= ROLLOUT_AUTO_TOKENS or st.session_state.get("rollout-asked") == settings:
        with st.spinner(_("Rolling attention out through {layers} layers…").format(layers=upto), show_time=True):
            rolled, rolled_picture, alone = _rollout(vin.cache_key, upto, fusion, float(discard), tr, vin.shown)
        rolled_col, alone_col = st.columns(2, gap="medium")
        rolled_col.image(rolled_picture, width="stretch",
                caption=_("Rollout R[CLS, patches] through layers 1–{layers} ({how}): patches {low:.3g}–{high:.3g}, "
                          "R[CLS, CLS] = {cls:.3g}").format(
                    layers=upto, low=rolled[pre:].min(), high=rolled[pre:].max(), cls=rolled[0],
                    how=_("{fusion} of heads").format(fusion=fusion)
                    + (_(", lowest {share:.0%} discarded").format(share=discard) if discard else ""))
                + (_(", registers {share} of the flow").format(share=_pct(rolled[1:pre].sum())) if pre > 1 else ""))
        alone_col.image(alone, width="stretch",
                        caption=_("For comparison: CLS attention in layer {layer} alone ({fusion} of heads), without "
                                  "the layers below it").format(layer=upto, fusion=fusion))
    st.latex(r"\hat A_l = \operatorname{rownorm}\!\Big(\tfrac{1}{2}\big(\operatorname{fuse}_h A_l^{(h)} + I\big)\Big),"
             r"\qquad R = \hat A_L \cdots \hat A_2\, \hat A_1,\qquad \text{map} = R[\mathrm{CLS},\ \text{patches}]")
    st.markdown(_(
        "Rollout (Abnar & Zuidema 2020) asks how much each input patch flows into the CLS token after several layers. "
        "It **assumes** that a layer mixes tokens linearly by its attention, that the residual connection counts as "
        "much as attention (the ½(A + I)), and that heads can be merged by a mean (or max/min) — it ignores the "
        "value vectors, the output projection and the MLPs. Each Â_l keeps rows summing to 1 (row-normalised "
        "with keepdim), so R does too. Computed as the row e_CLSᵀ Â_L ⋯ Â_1, one layer at a time."))
    show_source(att.rollout_step, att.rollout_row)


# ---- Mean attention distance ----------------------------------------------------------------------------
def distance() -> None:
    """Mean attention distance per head against depth (Dosovitskiy et al. 2021, Fig. 7 right)."""
    st.subheader(_("How far does each head look? Mean attention distance against depth"))
    uniform = att.uniform_attention_distance((gh, gw), p)
    st.plotly_chart(viz.distance_figure(tr.distance, uniform, layer), key="attn-distance", theme=None, config={"displaylogo": False})
    st.markdown(sentences(
        _("For every head, the attention weights of each patch query times the pixel distance to each key patch "
          "(P = {p} px between neighbouring patch centres), averaged over queries — the ViT paper's Fig. 7 (right), "
          "on your image.").format(p=p),
        _("CLS and the registers are left out and each row renormalised over the patches.") if pre > 1
        else _("CLS is left out and each row renormalised over the patches."),
        _("Uniform attention over this {gh} × {gw} grid gives {uniform:.1f} px (dashed). Trained ViTs have some heads "
          "that look far already in the first layers, others local like a convolution; deeper, all heads look "
          "far.").format(gh=gh, gw=gw, uniform=uniform)))
    download_array(_("Mean attention distance (layers × heads, px)"), tr.distance, "attention-distance")
    show_source(att.mean_attention_distance)


# ---- the six views, one tab each: only the open tab is computed and drawn -------------------------------------
lazy_tabs("attention", (all_heads, one_head, whole_matrix, dino_masks, rollout, distance))

# ---- Predictions ----------------------------------------------------------------------------------------
st.subheader(_("What the model predicts"))
if vin.model.head is not None and tr.logits is not None:
    top = att.top_predictions(tr.logits, vin.model.config.labels)
    probability = _("probability")
    st.dataframe(pd.DataFrame(top, columns=[_("class"), probability]), hide_index=True,
                 column_config={probability: st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)})
    if random_weights:
        st.caption(_("Random weights: these classes are arbitrary, and so are the probabilities."))
else:
    st.info(sentences(
        _("{model} has **no classifier**, so there is nothing to predict:").format(model=ctx.model_name),
        _("DINO is trained by self-distillation, without labels, and its checkpoint is a backbone that outputs "
          "features, not classes.") if ctx.model_name.startswith("dino") else "",
        _("Choose DeiT-Tiny, ViT-B/16 or the DINOv2 classifier for top-5 predictions.")), icon=":material/label_off:")

# ---- Reading attention maps -----------------------------------------------------------------------------
st.subheader(_("What attention maps do — and do not — tell you"))
st.markdown(_(
    "- **Supervised vs self-supervised.** DeiT and ViT-B/16 were trained with ImageNet labels: their CLS token "
    "only has to collect what separates the 1,000 classes, and its attention is often spread over a few "
    "discriminative spots and background. DINO was trained without labels, matching a teacher's output across "
    "crops of the same image; its last-layer CLS attention outlines whole objects, which is why the masks of the DINO tab "
    "look like segmentations.\n"
    "- **What they show:** how one layer mixes information — which tokens a query reads from, with what weights.\n"
    "- **What they do not show:** *why* the model decided. A weight says nothing about what the value vector "
    "carries, how the heads are combined, or what the MLPs and the residual stream do; attention maps are not "
    "explanations of the decision, and can differ a lot from gradient-based attributions.\n"
    "- **Rollout** is a model of the flow under stated assumptions (linear mixing, residual weighted like "
    "attention, heads averaged), not a measurement.\n"
    "- **Random weights** (trained weights off or not on this machine) give near-uniform attention: there is nothing "
    "to read in those maps."))
stage_footer("attention")
