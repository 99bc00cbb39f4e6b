"""The attention page's drawing: its six step tabs and the sections below them, each drawing the
`vitviz.attention.AttentionView` the page computed once for its layer, head and query (and, for the tabs with
their own controls, the masks or rollout that view computes), over the input picture of `VitInput`."""
from __future__ import annotations

import streamlit as st

from ui.chrome import download_array, show_source
from ui.common import chart, markdown_table, picture, prediction_table, short_key
from ui.models import VitInput
from vitviz import attention as att
from vitviz.describe import attention as describe
from vitviz.describe.common import percent
from vitviz.i18n import _, sentences
from vitviz.viz import attention as viz
from vitviz.viz.encode import jpeg

# width the head-grid pictures are rendered at: a column of three is ~290 px at 1400 px and on a 1280 px projector, a
# phone shows one ~350 px wide (at 480 px and JPEG quality 88 a threshold move on the DINO masks fetched 243 kB)
HEAD_PX = 320
GRID_QUALITY = 65  # JPEG quality of the head-grid and mask pictures (80 still fetched 149 kB on a threshold move)
BIG_PX = 640  # width of the enlarged head
ROLLOUT_PX = 460  # width of the two rollout pictures: side by side, ~440 px each at 1400 px, ~350 on a phone
PLOT = {"displaylogo": False}


def pick_key(cache_key: str, token: int) -> str:
    # A fresh key per (input, query): every click is a change, even on the patch selected before.
    return "attn-pick-" + short_key(cache_key, token)


@st.cache_data(max_entries=16, show_spinner=False)
def _backdrop(cache_key: str, width: int, _image, patch: int) -> viz.Backdrop:
    """The input resized for display once per input and width (every picture of the page is drawn on it)."""
    return viz.backdrop(_image, patch, width)


@st.cache_data(max_entries=64, show_spinner=False)
def _head_pictures(cache_key: str, layer: int, token: int, _view: att.AttentionView, _image) -> list[bytes]:
    """JPEG of each head's attention row of query `token` in `layer`, over the image."""
    base = _backdrop(cache_key, HEAD_PX, _image, _view.trace.patch_size)
    return [jpeg(viz.overlay(base, values, query=_view.cell), GRID_QUALITY) for values in _view.patch_rows]


@st.cache_data(max_entries=64, show_spinner=False)
def _big_picture(cache_key: str, layer: int, head: int, token: int, _view: att.AttentionView,
                 _image) -> tuple[bytes, tuple[int, int]]:
    """JPEG (and size) of one head's attention row, enlarged: the background of the clickable figure."""
    base = _backdrop(cache_key, BIG_PX, _image, _view.trace.patch_size)
    picture = viz.overlay(base, _view.patch_rows[head], query=_view.cell)
    return jpeg(picture), picture.size


@st.cache_data(max_entries=32, show_spinner=False)
def _mask_pictures(cache_key: str, t: float, _view: att.AttentionView, _image) -> tuple[att.DinoMasks, list[bytes]]:
    """DINO masks of the last layer's CLS attention per head at mass fraction t, and their JPEGs."""
    base = _backdrop(cache_key, HEAD_PX, _image, _view.trace.patch_size)
    masks = _view.masks(t)
    colours = viz.HEAD_COLOURS
    return masks, [jpeg(viz.mask_overlay(base, m, colours[h % len(colours)]), GRID_QUALITY)
                   for h, m in enumerate(masks.masks)]


@st.cache_data(max_entries=32, show_spinner=False)
def _rollout(cache_key: str, layers: int, fusion: str, discard: float, _view: att.AttentionView,
             _image) -> tuple[att.Rollout, bytes, bytes]:
    """The rollout, and pictures of its patch part and, to compare, of layer `layers`' CLS row alone."""
    rolled = _view.rollout(layers, fusion, discard)
    base = _backdrop(cache_key, ROLLOUT_PX, _image, _view.trace.patch_size)
    return rolled, jpeg(viz.overlay(base, rolled.patch_map)), jpeg(viz.overlay(base, rolled.alone_map))


def _picture_grid(pictures: list[bytes], captions: list[str], alts: list[str]) -> None:
    """One picture per head, 3 or 4 to a row (stacked on a phone), each with its caption and text alternative."""
    per_row = 3 if len(pictures) <= 6 else 4
    for start in range(0, len(pictures), per_row):
        cols = st.columns(per_row)
        for col, data, caption, alt in zip(cols, *(part[start:start + per_row] for part in (pictures, captions, alts))):
            picture(data, alt=alt, where=col, caption=caption, width="stretch")


# ---- All heads of the layer -------------------------------------------------------------------------------
def all_heads(view: att.AttentionView, vin: VitInput) -> None:
    """Row `view.query` of A in every head of the layer, over the image, and the weights off the image."""
    layer, token, pre = view.layer, view.query, view.layout.prefix
    st.subheader(_("Layer {layer}: where {token} looks, head by head").format(layer=layer + 1, token=view.label))
    pictures = _head_pictures(vin.cache_key, layer, token, view, vin.shown)
    _picture_grid(pictures, [_("head {h}").format(h=h + 1) + f" · {low:.3g}–{high:.3g} · CLS {percent(cls)}"
                             + (" · " + _("registers {share}").format(share=percent(regs)) if pre > 1 else "")
                             for h, (low, high, cls, regs) in enumerate(zip(view.patch_low, view.patch_high,
                                                                             view.cls_share, view.register_share))],
                  [describe.head_map(view, h) for h in range(len(pictures))])
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
                         _("The square framed in yellow and black is the query patch.") if view.cell else "",
                         _("Pixels beyond the last whole patch are dimmed: the model never sees them.")))
    if pre > 1:
        st.markdown(_("**Attention to the tokens that are not patches**, per head of layer {layer}:").format(layer=layer + 1))
        st.markdown(markdown_table(
            [_("head"), "CLS", *(_("register {r}").format(r=r) for r in range(1, pre)), _("all patches")],
            [[str(h + 1), *(percent(x) for x in r[:pre]), percent(patches)]
             for h, (r, patches) in enumerate(zip(view.rows, view.patch_share))]))
        st.caption(_("Registers are extra learned tokens with no patch and no position (Darcet et al. 2024): they give "
                     "the model a place to store global information, so it need not overwrite uninformative patches "
                     "with it."))


# ---- One head enlarged, clickable, with its computation --------------------------------------------------
def one_head(view: att.AttentionView, vin: VitInput) -> None:
    """One head enlarged and clickable, with q·k/√d → softmax → Σ a·v on the real numbers."""
    st.subheader(_("Head {head} enlarged — click a patch to make it the query").format(head=view.head + 1))
    st.caption(_("Without a pointer: choose *patch* under **Query token** above and type the patch's index (row × "
                 "{gw} + column) in the number box beside it.").format(gw=view.layout.grid[1]))
    left, right = st.columns(2, gap="large")
    with left:
        _clickable_head(view, vin)
    with right:
        _softmax(view)
    _weighted_sum(view)


def _clickable_head(view: att.AttentionView, vin: VitInput) -> None:
    """The enlarged head over the image (a click selects the query), the weights off the image, and where the
    query's attention went."""
    layout, head, row = view.layout, view.head, view.row
    pre = layout.prefix
    data, size = _big_picture(vin.cache_key, view.layer, head, view.query, view, vin.shown)
    fig_height = int(min(780, max(320, 430 * size[1] / size[0] + 145)))  # the image fills the column
    chart(viz.query_figure(data, size, view.patch_rows[head], vin.patch_size * BIG_PX / vin.shown.width,
                           height=fig_height,  # two lines: one would run past a narrow column's edges
                           title=_("{token} → every patch").format(token=view.label) + "<br>"
                           + _("layer {layer}, head {head}").format(layer=view.layer + 1, head=head + 1)),
          alt=describe.enlarged_head(view), key=pick_key(vin.cache_key, view.query), on_select="rerun",
          selection_mode="points", theme=None, config={**PLOT, "modeBarButtonsToRemove": ["select2d", "lasso2d"]})
    if pre > 1:
        chart(viz.prefix_strip(row[:pre], layout.prefix_labels(), vmax=float(view.patch_high[head])),
              alt=describe.prefix_strip(view), key="attn-strip", theme=None, config={**PLOT, "displayModeBar": False})
        spread = _("Hover for the exact weight. This query gives {cls} of its attention to the CLS token, "
                   "{regs} to the {registers} registers and {patches} to the {n:,} patches; a uniform head would "
                   "give each token 1/T = {uniform:.3g}.")
    else:
        spread = _("Hover for the exact weight. This query gives {cls} of its attention to the CLS token and "
                   "{patches} to the {n:,} patches; a uniform head would give each token 1/T = {uniform:.3g}.")
    st.caption(spread.format(cls=percent(view.cls_share[head]), regs=percent(view.register_share[head]),
                             registers=pre - 1, patches=percent(view.patch_share[head]), n=layout.patches,
                             uniform=layout.uniform_weight))


def _softmax(view: att.AttentionView) -> None:
    """Scores, exponentials and weights of the query's top keys, and the softmax's sum over all keys."""
    b, layout = view.breakdown, view.layout
    st.markdown(_("**The computation for {token}** — layer {layer}, head {head}, d = {d}").format(
        token=view.label, layer=view.layer + 1, head=view.head + 1, d=view.trace.d_head))
    st.latex(r"s_j = \frac{q_i \cdot k_j}{\sqrt{d}}, \qquad a_{ij} = \frac{e^{s_j}}{\sum_{j'} e^{s_{j'}}}")
    st.markdown(markdown_table(
        [_("key j"), "q·k_j", "s_j", "e^(s_j−m)", "a_ij"],
        [[layout.short(j), f"{dot:+.4g}", f"{b.scores[j]:+.4g}", f"{e:.4g}", f"**{b.probs[j]:.4g}**"]
         for j, dot, e in zip(b.top, b.dots, b.exps)]))
    st.markdown(_(
        "The 5 keys with the largest weights; √d = {sqrt_d:g}. The softmax divides by the sum over all "
        "**{tokens:,}** keys, Σ e^(s_j − m) = **{total:.4g}**, where m = max s_j (subtracting it changes nothing "
        "but avoids overflow). These 5 hold **{share}** of the attention; uniform would be "
        "{uniform}.").format(sqrt_d=b.sqrt_d, tokens=b.tokens, total=b.total, share=percent(b.top_share),
                             uniform=percent(b.uniform_share)))


def _weighted_sum(view: att.AttentionView) -> None:
    """The first numbers of a_ij v_j for the top keys, their sum, and the head's output o_i over all keys."""
    b, layout = view.breakdown, view.layout
    dims, places, sums, k = b.dims, b.decimals, b.sums, len(b.top)
    st.markdown(_("**Then the weighted sum of the values**, o_i = Σ_j a_ij v_j — the first {dims} of its {d} "
                  "numbers:").format(dims=dims, d=view.trace.d_head))
    st.markdown(markdown_table(
        ["", *(f"[{i}]" for i in range(dims)), "…"],
        [*([_("a_ij · v_j of {token}").format(token=layout.short(j)), *(f"{x:+.{places}f}" for x in line), "…"]
           for j, line in zip(b.top, sums[:k])),
         [_("Σ over these 5 keys"), *(f"{x:+.{places}f}" for x in sums[k]), "…"],
         [_("**o_i** = Σ over all {tokens:,} keys").format(tokens=b.tokens),
          *(f"**{x:+.{places}f}**" for x in sums[k + 1]), "…"]]))
    st.caption(_("o_i is this head's output for the query; the output projection mixes it with the other {others} "
                 "heads' outputs. Every number here comes from the q, k, v the model computed for your image.").format(
        others=view.trace.heads - 1))


# ---- The full matrix ------------------------------------------------------------------------------------
def whole_matrix(view: att.AttentionView) -> None:
    """The layer's T × T attention matrix of one head (or the query's row, for large grids)."""
    layout, layer, pre, tokens = view.layout, view.layer, view.layout.prefix, view.layout.tokens
    st.subheader(_("The whole attention matrix of layer {layer}, head {head}").format(layer=layer + 1, head=view.head + 1))
    if layout.matrix_shown:
        values = view.matrix()
        chart(viz.matrix_figure(values, layout.short_labels(), query=view.query,
                                title=_("A: {t} × {t}, each row sums to 1").format(t=tokens)),
              alt=describe.matrix(view, values), key="attn-matrix", theme=None, config=PLOT)
        order = (_("Token 0 is CLS, tokens 1–{last} the registers, then the patches in raster order (row, "
                   "column).").format(last=pre - 1) if pre > 1
                 else _("Token 0 is CLS, then the patches in raster order (row, column)."))
        st.caption(sentences(order, _("Column 0 shows how much every token reads from CLS; the diagonal is each token's "
                                      "attention to itself. The selected query's row is framed.")))
    else:
        gh, gw = layout.grid
        st.info(_(
            "At {gh} × {gw} patches the matrix has {tokens:,} × {tokens:,} = {entries:,} entries per head — more cells "
            "than a screen has pixels, and {mb:,.0f} MB to send. It is drawn up to 40 × 40 patches "
            "(raise P or lower the resolution to see it). Here is the row of the selected query instead.").format(
                gh=gh, gw=gw, tokens=tokens, entries=layout.entries, mb=layout.matrix_mb),
            icon=":material/grid_off:")
        chart(viz.row_figure(view.row, layout.grid, prefix=pre, query=view.cell,
                             title=_("Row {index} ({token}); A[{index}, CLS] = {value:.3g}").format(
                                 index=view.query, token=view.label, value=view.cls_share[view.head])),
              alt=describe.query_row(view), key="attn-row", theme=None, config=PLOT)
    download_array(_("Attention rows of {token}, layer {layer} (heads × T)").format(token=view.label, layer=layer + 1),
                   view.rows, f"attention-l{layer + 1}-q{view.query}")
    show_source(att.attention_probs, att.AttentionTrace.rows, att.query_breakdown)


# ---- DINO's CLS masks -----------------------------------------------------------------------------------
def dino_masks(view: att.AttentionView, vin: VitInput) -> None:
    """DINO's CLS masks: the smallest patch sets holding a fraction t of each head's attention (Caron et al. 2021, Fig. 3)."""
    pre, n = view.layout.prefix, view.layout.patches
    st.subheader(_("CLS attention of the last layer, thresholded (DINO)"))
    t = st.slider(_("Keep the fraction t of the attention mass"), 0.05, 1.0, 0.6, 0.05, key="t", bind="query-params",
                  help=_("DINO's visualize_attention.py uses t = 0.6."))
    masks, pictures = _mask_pictures(vin.cache_key, float(t), view, vin.shown)
    _picture_grid(pictures,
                  [_("head {h}").format(h=h + 1) + " · "
                   + _("{kept} of {n:,} patches ({share:.0%})").format(kept=kept, n=n, share=share)
                   + (" · " + _("registers hold {share}").format(share=percent(regs)) if pre > 1 else "")
                   for h, (kept, share, regs) in enumerate(zip(masks.kept, masks.shares, masks.registers))],
                  [describe.dino_mask(masks, h) for h in range(len(pictures))])
    st.markdown(sentences(
        _("For each head, the last layer's CLS row A[0, {start}:] over the patches is sorted, and the "
          "**smallest set of patches holding {t:.0%} of its patch mass** is kept (bright, outlined in white); the "
          "rest is darkened.").format(start="1+R" if pre > 1 else "1", t=t),
        _("The mask covers patches only: what CLS gives to the registers (in each caption) is left out before the "
          "fraction is taken.") if pre > 1 else "",
        _("The fewer patches a head needs, the more concentrated its attention. In DINO, trained **without labels**, "
          "different heads of the last layer pick out different objects or parts, close to a segmentation (Caron et "
          "al. 2021, Fig. 3).")))
    show_source(att.mass_threshold_mask)


# ---- Rollout --------------------------------------------------------------------------------------------
def rollout(view: att.AttentionView, vin: VitInput) -> None:
    """Attention rollout (Abnar & Zuidema 2020, §3): ½(A + I) multiplied through the layers."""
    st.subheader(_("Attention rollout: following attention through the layers"))
    r1, r2, r3 = st.columns(3, gap="medium")
    # Bound to the URL: the options stay the English names mean/max/min, with no format_func.
    fusion = r1.segmented_control(_("Head fusion"), list(att.FUSIONS), default="mean", required=True, key="fusion",
                                  bind="query-params")
    discard = r2.slider(_("Discard the lowest fraction"), 0.0, 0.95, 0.0, 0.05, key="discard", bind="query-params",
                        help=_("Zero this fraction of the smallest fused weights (never CLS's row or column) before "
                               "the residual."))
    upto = r3.slider(_("Through layer"), 1, view.trace.depth, view.trace.depth, key="upto", bind="query-params")
    settings = f"{vin.cache_key}|{upto}|{fusion}|{discard}"
    waits = view.layout.rollout_waits
    if waits and st.session_state.get("rollout-asked") != settings:
        st.info(_("Rollout builds every head's {tokens:,} × {tokens:,} matrix in each of the {layers} layers "
                  "(about {gflop:,.0f} GFLOP): seconds to a minute on a CPU, so it waits for you.").format(
                    tokens=view.layout.tokens, layers=upto, gflop=view.rollout_gflop(upto)),
                icon=":material/hourglass_top:")
        if st.button(_("Compute the rollout for these settings"), key="rollout-go"):
            st.session_state["rollout-asked"] = settings
    if not waits or st.session_state.get("rollout-asked") == settings:
        with st.spinner(_("Rolling attention out through {layers} layers…").format(layers=upto), show_time=True):
            rolled, rolled_picture, alone = _rollout(vin.cache_key, upto, fusion, float(discard), view, vin.shown)
        _rollout_pictures(rolled, rolled_picture, alone)
    # Two lines, so that the equation fits a phone's width.
    st.latex(r"\begin{gathered}\hat A_l = \operatorname{rownorm}\!\Big(\tfrac{1}{2}\big(\operatorname{fuse}_h A_l^{(h)} + I"
             r"\big)\Big),\\ R = \hat A_L \cdots \hat A_2\, \hat A_1,\qquad \text{map} = R[\mathrm{CLS},\ \text{patches}]"
             r"\end{gathered}")
    st.markdown(_(
        "Rollout (Abnar & Zuidema 2020) asks how much each input patch flows into the CLS token after several layers. "
        "It **assumes** that a layer mixes tokens linearly by its attention, that the residual connection counts as "
        "much as attention (the ½(A + I)), and that heads can be merged by a mean (or max/min) — it ignores the "
        "value vectors, the output projection and the MLPs. Each Â_l keeps rows summing to 1 (row-normalised "
        "with keepdim), so R does too. Computed as the row e_CLSᵀ Â_L ⋯ Â_1, one layer at a time."))
    show_source(att.rollout_step, att.rollout_row)


def _rollout_pictures(rolled: att.Rollout, rolled_picture: bytes, alone: bytes) -> None:
    """The rollout map beside the last rolled layer's CLS row alone."""
    rolled_col, alone_col = st.columns(2, gap="medium")
    registers = (_(", registers {share} of the flow").format(share=percent(rolled.registers))
                 if rolled.layout.prefix > 1 else "")
    picture(rolled_picture, alt=describe.rollout_map(rolled), where=rolled_col, width="stretch",
            caption=_("Rollout R[CLS, patches] through layers 1–{layers} ({how}): patches {low:.3g}–{high:.3g}, "
                      "R[CLS, CLS] = {cls:.3g}").format(layers=rolled.layers, low=rolled.low, high=rolled.high,
                                                        cls=rolled.cls, how=describe.fusion_text(rolled)) + registers)
    picture(alone, alt=describe.layer_alone(rolled), where=alone_col, width="stretch",
            caption=_("For comparison: CLS attention in layer {layer} alone ({fusion} of heads), without "
                      "the layers below it").format(layer=rolled.layers, fusion=rolled.fusion))


# ---- Mean attention distance ----------------------------------------------------------------------------
def distance(view: att.AttentionView) -> None:
    """Mean attention distance per head against depth (Dosovitskiy et al. 2021, Fig. 7 right)."""
    (gh, gw), p = view.layout.grid, view.trace.patch_size
    st.subheader(_("How far does each head look? Mean attention distance against depth"))
    chart(viz.distance_figure(view.distance, view.uniform_distance, view.layer), alt=describe.distance_chart(view),
          key="attn-distance", theme=None, config=PLOT)
    st.markdown(sentences(
        _("For every head, the attention weights of each patch query times the pixel distance to each key patch "
          "(P = {p} px between neighbouring patch centres), averaged over queries — the ViT paper's Fig. 7 (right), "
          "on your image.").format(p=p),
        _("CLS and the registers are left out and each row renormalised over the patches.") if view.layout.prefix > 1
        else _("CLS is left out and each row renormalised over the patches."),
        _("Uniform attention over this {gh} × {gw} grid gives {uniform:.1f} px (dashed). Trained ViTs have some heads "
          "that look far already in the first layers, others local like a convolution; deeper, all heads look "
          "far.").format(gh=gh, gw=gw, uniform=view.uniform_distance)))
    download_array(_("Mean attention distance (layers × heads, px)"), view.distance, "attention-distance")
    show_source(att.mean_attention_distance)


# ---- Below the tabs -------------------------------------------------------------------------------------
def predictions(view: att.AttentionView, model_name: str, trained: bool) -> None:
    """The classifier's top 5, or why this model has none."""
    st.subheader(_("What the model predicts"))
    if view.predictions is not None:
        st.markdown(prediction_table(view.predictions))
        st.caption(sentences(describe.predictions(view), "" if trained else _(
            "Random weights: these classes are arbitrary, and so are the probabilities.")))
    else:
        st.info(sentences(
            _("{model} has **no classifier**, so there is nothing to predict:").format(model=model_name),
            _("DINO is trained by self-distillation, without labels, and its checkpoint is a backbone that outputs "
              "features, not classes.") if model_name.startswith("dino") else "",
            _("Choose DeiT-Tiny, ViT-B/16 or the DINOv2 classifier for top-5 predictions.")), icon=":material/label_off:")


def caveats() -> None:
    """What attention maps do and do not tell: the page's closing notes."""
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
