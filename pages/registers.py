"""Stage 6 · Registers & token norms: the high-norm "artifact" tokens of large ViTs, what registers change
(Darcet et al., ICLR 2024), and DINOv2's features as colours (Oquab et al. 2024, Fig. 1).

The model runs once per image, model, P and resolution (`vitviz.norms.trace_norms`: every layer's token norms);
the layer slider only reads them. Four lazy tabs: a run draws the open one.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial

import streamlit as st

import vitviz
from ui.chrome import download_array, lazy_tabs, show_source, stage_footer, stage_header
from ui.common import chart, picture
from ui.context import Context, context
from ui.models import ENCODER_TOKEN_LIMIT, show_notes, vit_input, VIT_MODELS, VitInput
from vitviz import norms
from vitviz.describe import norms as describe
from vitviz.describe.explain import input_photo
from vitviz.i18n import _
from vitviz.models.vit import PRESETS, ViT
from vitviz.viz import norms as viz
from vitviz.viz.encode import jpeg

PX = 440  # width of the norm and attention pictures: shown ~420 px wide at 1400 px, ~350 on a phone
COMPARED = ("dino-vits16", "dinov2-small", "dinov2-small-reg")  # the feature-colour comparison


@st.cache_resource(max_entries=16, show_spinner=False)  # small (L × T norms) and read-only: shared, never copied
def _norms(cache_key: str, _model, _pixel_values) -> norms.NormTrace:
    return norms.trace_norms(_model, _pixel_values)


@st.cache_resource(max_entries=16, show_spinner=False)
def _features(cache_key: str, _model, _pixel_values):
    return norms.last_patch_features(_model, _pixel_values)


@st.cache_data(max_entries=64, show_spinner=False)
def _norm_picture(cache_key: str, layer: int, _layer: norms.LayerNorms, _image, patch: int) -> bytes:
    """JPEG of layer `layer`'s patch norms over the image with the high-norm patches outlined."""
    return jpeg(viz.norm_picture(_image, patch, PX, _layer))


@st.cache_data(max_entries=16, show_spinner=False)
def _photo(cache_key: str, _image) -> bytes:
    """JPEG of the input as the model receives it."""
    return jpeg(_image)


@st.cache_data(max_entries=32, show_spinner=False)
def _cls_picture(cache_key: str, _tr: norms.NormTrace, _image, patch: int) -> bytes:
    return jpeg(viz.cls_picture(_image, patch, PX, _tr))


@st.cache_data(max_entries=32, show_spinner=False)
def _neighbour_picture(cache_key: str, _tr: norms.NormTrace, _image, patch: int) -> bytes:
    return jpeg(viz.neighbour_picture(_image, patch, PX, _tr))


def _weights(one: VitInput) -> str:
    """Which weights a compared model shows, in two words (the full reason is in the page's note)."""
    return _("trained weights") if vitviz.is_trained(one.model) else _("**random weights**")


ctx = context()
vin = vit_input(ctx)
stage_header(
    "registers",
    _("After every layer each token is a vector; its **L2 norm** ‖z‖ says how large it is. In large ViTs a few "
      "**patch tokens on dull background** end up with norms many times larger than the rest: the model has "
      "repurposed them to store global information, and their patch is lost. *Vision Transformers Need Registers* "
      "(Darcet et al., ICLR 2024) found them and gave the model a few extra tokens, **registers**, to use instead. "
      "Look for them on your image, layer by layer, with and without registers."),
)
show_notes(vin)
if not vitviz.is_trained(vin.model):
    st.warning(_("**Random weights.** Untrained tokens all have about the same norm, so the histogram has one mode "
                 "and no patch stands out: that is the expected picture here, not a failure. With **Trained weights** "
                 "you see what training does to the norms."), icon=":material/casino:")
gh, gw = vin.grid
if gh * gw + vin.model.config.prefix > ENCODER_TOKEN_LIMIT:
    st.error(_("This input makes {n:,} patches: a pass through all layers would take minutes on this computer. "
               "Choose a larger patch size P or a lower resolution in the sidebar.").format(n=gh * gw),
             icon=":material/memory:")
    stage_footer("registers")
    st.stop()

with st.spinner(_("Running the model once on your image (every layer's tokens)…"), show_time=True):
    tr = _norms(vin.cache_key, vin.model, vin.pixel_values)
if not 1 <= int(st.session_state.get("nlayer") or tr.depth) <= tr.depth:
    st.session_state["nlayer"] = tr.depth
chosen = tr.layer(st.slider(_("Layer"), 1, tr.depth, value=tr.depth, key="nlayer", bind="query-params",
                            help=_("The norms after this encoder layer (before the final LayerNorm, which would "
                                   "equalise them).")) - 1)


def _norm_metrics(one: norms.LayerNorms) -> None:
    """The high-norm count, the median and largest patch norm, the registers' (or CLS's) norm."""
    m = st.columns(4)
    m[0].metric(_("High-norm patches"), _("{count} of {n:,}").format(count=one.count, n=one.patches),
                help=_("Patches above the valley of the histogram"))
    m[1].metric(_("Median patch norm"), f"{one.median:.1f}")
    m[2].metric(_("Largest patch norm"), f"{one.largest:.1f}", help=_("{ratio:.1f}× the median").format(ratio=one.ratio))
    if one.registers.size:
        low, high = one.register_range
        m[3].metric(_("Norms of the {n} registers").format(n=one.registers.size),
                    f"{low:.0f} – {high:.0f}" if high - low >= 0.5 else f"{one.register_mean:.0f}",
                    help=_("Each register's norm is marked on the histogram"))
    else:
        m[3].metric(_("CLS norm"), f"{one.cls:.1f}")


def token_norms(tr: norms.NormTrace, one: norms.LayerNorms, vin: VitInput) -> None:
    """Every patch token's norm after the chosen layer, the valley between the modes, the outliers."""
    _norm_metrics(one)
    left, right = st.columns(2, gap="large")
    picture(_norm_picture(vin.cache_key, one.layer, one, vin.shown, vin.patch_size), alt=describe.norm_map(one),
            where=left, width="stretch", caption=_("‖z‖ of every patch after layer {layer} (bright = large); "
                                                   "high-norm patches framed in black-and-white dashes").format(
                layer=one.layer + 1))
    chart(viz.histogram_figure(one.split, one.registers, title=_("Patch norms after layer {layer}").format(
        layer=one.layer + 1)), alt=describe.histogram(one), where=right, key="norm-hist", theme=None,
          config={"displaylogo": False})
    if one.split.threshold is None:
        st.info(_("**One mode at layer {layer}:** no patch norm stands clear of the others (the widest gap is "
                  "{gap:.1f} standard deviations of the lower group; {min_gap:g} would count as a second mode).").format(
                    layer=one.layer + 1, gap=one.split.gap, min_gap=norms.MIN_GAP),
                icon=":material/equalizer:")
    else:
        st.markdown(_("**Two modes at layer {layer}:** {count} patches ({share:.1%}) lie above the valley at "
                      "‖z‖ = {threshold:.1f}, a gap of {gap:.1f} standard deviations of the others.").format(
            layer=one.layer + 1, count=one.count, share=one.share, threshold=one.split.threshold, gap=one.split.gap))
    chart(viz.depth_figure(tr.norms, tr.prefix, tr.outlier_counts, one.layer + 1), alt=describe.depth(tr, one.layer),
          key="norm-depth", theme=None, config={"displaylogo": False})
    st.latex(r"\lVert z_i^{(l)} \rVert_2 = \Big(\sum_{d=1}^{D} \big(z_{i,d}^{(l)}\big)^2\Big)^{1/2}")  # the valley line: the text below
    st.markdown(_(
        "The paper drew a fixed line at 150 for its ViT-g; the right line differs per model and layer, so it is "
        "computed here from your image: Otsu's method splits the norms into two groups, and the line goes in the "
        "middle of the emptiest bins between them — only when the upper group is small (≤ 25 %) and stands clear "
        "of the rest. **Where the paper saw artifacts:** in DINOv2 from ViT-L up (not in S or B), in OpenCLIP and "
        "DeiT-III at B and L, from about a third of the depth on; not in the original DINO. A small model or a "
        "random one showing none is a finding too — compare DINOv2-L with and without registers (a 1.2 GB download "
        "each) to see them appear and vanish."))
    download_array(_("Token norms (layers × {tokens} tokens)").format(tokens=tr.norms.shape[1]), tr.norms,
                   "token-norms")
    show_source(norms.valley_split, norms.trace_norms)


def neighbours(tr: norms.NormTrace, one: norms.LayerNorms, vin: VitInput) -> None:
    """The paper's check: outliers sit on patches that look like their neighbours right after the patch embedding."""
    left, right = st.columns(2, gap="large")
    picture(_neighbour_picture(vin.cache_key, tr, vin.shown, vin.patch_size), alt=describe.neighbours(tr, one),
            where=left, width="stretch",
            caption=_("Cosine similarity of each patch embedding x_p E to its 4 neighbours (bright = 1, alike)"))
    picture(_norm_picture(vin.cache_key, one.layer, one, vin.shown, vin.patch_size), alt=describe.norm_map(one),
            where=right, width="stretch", caption=_("‖z‖ after layer {layer}, high-norm patches framed in "
                                                    "black-and-white dashes").format(layer=one.layer + 1))
    m = st.columns(3)
    m[0].metric(_("Correlation (similarity, norm)"), f"{one.correlation:+.2f}", help=_("Pearson r over all patches"))
    if one.outlier_similarity is not None:
        m[1].metric(_("Similarity of high-norm patches"), f"{one.outlier_similarity:.3f}")
        m[2].metric(_("Similarity of the others"), f"{one.other_similarity:.3f}")
    else:
        m[1].metric(_("High-norm patches"), "0")  # a word would be cut off in a third of a projector's width
    st.latex(r"\begin{gathered}s_i = \frac{1}{|\mathcal N(i)|}\sum_{j \in \mathcal N(i)} \frac{e_i \cdot e_j}"
             r"{\lVert e_i\rVert\,\lVert e_j\rVert},\\ e_i = x_p^i E,\quad"
             r"\mathcal N(i) = \{\uparrow, \downarrow, \leftarrow, \rightarrow\}\end{gathered}")  # two lines fit a phone
    st.markdown(_(
        "Darcet et al. (§2.1, Fig. 5) found that high-norm tokens appear on patches that are **redundant**: right after "
        "the patch embedding they are very similar to their four neighbours (sky, wall, blur). The model can overwrite "
        "such a patch without losing much — and uses it as scratch memory for global information. Here the "
        "correlation is computed on your image; with trained DINOv2-L you should see the outlined patches on the "
        "brightest areas of the left picture."))
    show_source(norms.neighbour_similarity)


def _compared(ctx: Context, name: str) -> norms.LayerNorms:
    """Model `name` of the with/without comparison at the sidebar's image and resolution, P = 14: its last layer's
    CLS attention and token norms, with captions; returns that last layer."""
    other = vit_input(replace(ctx, model_name=name, patch_size=14))
    st.markdown(f"**{_(VIT_MODELS[name])}** · {_weights(other)}")
    with st.spinner(_("Running {model}…").format(model=name), show_time=True):
        tr_other = _norms(other.cache_key, other.model, other.pixel_values)
    last = tr_other.layer(tr_other.depth - 1)
    registers = last.registers.size > 0
    picture(_cls_picture(other.cache_key, tr_other, other.shown, 14), alt=describe.cls_attention(tr_other),
            width="stretch",
            caption=_("CLS attention, last layer · {share:.1%} to patches").format(share=tr_other.cls_to_patches)
            + (_(", {share:.1%} to the registers").format(share=tr_other.cls_to_registers) if registers else ""))
    picture(_norm_picture(other.cache_key, last.layer, last, other.shown, 14), alt=describe.norm_map(last),
            width="stretch",
            caption=_("‖z‖ after the last layer · {count} high-norm patches · largest {largest:.0f}, "
                      "median {median:.0f}").format(count=last.count, largest=last.largest, median=last.median)
            + (" · " + _("registers {values}").format(values=", ".join(f"{x:.0f}" for x in last.registers))
               if registers else ""))
    return last


def with_without(ctx: Context) -> None:
    """The same image through DINOv2 without and with registers: last-layer CLS attention and norms."""
    pair = ("dinov2-large", "dinov2-large-reg") if "large" in ctx.model_name else ("dinov2-small", "dinov2-small-reg")
    st.markdown(_("The same image through **{without}** and **{with_registers}**, at this page's resolution and "
                  "P = 14. Top: the last layer's CLS attention to the patches (mean of the heads); bottom: the last "
                  "layer's token norms with the high-norm patches outlined.").format(
        without=_(VIT_MODELS[pair[0]]), with_registers=_(VIT_MODELS[pair[1]])))
    last = []
    for column, name in zip(st.columns(2, gap="large"), pair):
        with column:
            last.append(_compared(ctx, name))
    st.caption(describe.comparison(*((_(VIT_MODELS[name]), one) for name, one in zip(pair, last))))
    st.markdown(_(
        "With registers, the paper's DINOv2-L loses its high-norm patches: the large norms move into the registers, "
        "the CLS attention stops jumping to background spots and outlines the object, and dense tasks get better "
        "(Darcet et al., Fig. 1, 7 and Table 2). Small models show little either way."))
    show_source(ViT.add_registers)


@st.cache_data(max_entries=32, show_spinner=False)
def _colours(cache_key: str, threshold: float, _features_tensor, grid: tuple[int, int]) -> norms.FeatureColours:
    return norms.feature_colours(_features_tensor, grid, threshold)


def colours(ctx: Context, vin: VitInput) -> None:
    """DINOv2's Fig. 1: the first three principal components of the last layer's patch features as RGB, for the
    sidebar's model (`vin`) or side by side for the three COMPARED."""
    threshold = st.slider(_("Foreground threshold on the first component"), 0.0, 1.0, 0.5, 0.05, key="fgth",
                          bind="query-params", help=_("Patches whose first component (scaled to 0…1) is above it are "
                                                      "foreground; the rest is drawn black."))
    compare = st.toggle(_("Side by side: DINO, DINOv2 and DINOv2 with registers"), key="fgcmp", bind="query-params")
    shown = [(ctx.model_name, vin)] if not compare else [  # vit_input's caches make the current model's free
        (name, vit_input(replace(ctx, model_name=name, patch_size=PRESETS[name].patch_size))) for name in COMPARED]
    columns = st.columns(len(shown) + (0 if compare else 1), gap="medium")
    if not compare:
        picture(_photo(vin.cache_key, vin.shown), alt=input_photo(ctx.image_label, vin.shown.size), where=columns[0],
                width="stretch", caption=_("The input"))
        columns = columns[1:]
    for column, (name, one) in zip(columns, shown):
        with column:
            features = _features(one.cache_key, one.model, one.pixel_values)
            out = _colours(one.cache_key, float(threshold), features, one.grid)
            chart(viz.colour_figure(out.rgb, out.components, out.foreground, title=_(VIT_MODELS[name])),
                  alt=describe.feature_colours(out, one.grid, _(VIT_MODELS[name])), key=f"colours-{name}", theme=None,
                  config={"displaylogo": False})
            st.caption(_("{foreground} of {n} patches foreground · the 3 components explain {share:.0%} of the "
                         "foreground's variance · {weights}").format(
                foreground=out.foreground_count, n=out.patches, share=out.explained_share, weights=_weights(one)))
    st.latex(r"\begin{gathered}u = \operatorname{minmax}(\bar F v_1),\quad \text{fg} = \{i : u_i > t\},\\ "
             r"\text{RGB}_i = \operatorname{minmax}\big(\bar F_{\text{fg}}\, [v_1'\, v_2'\, v_3']\big)_i\end{gathered}")
    st.caption(_("F̄: the last layer's patch features after the final LayerNorm, centred (N × D); v₁: their first "
                 "principal direction; v′₁…v′₃: the first three of the foreground patches alone; minmax scales each "
                 "column to 0…1."))
    st.markdown(_(
        "Each patch's last-layer feature (D numbers) is reduced to three by **PCA**, and the three become red, green "
        "and blue. First, one PCA over all patches: its first component separates foreground from background "
        "(its sign is arbitrary, so it is flipped to make most border patches background); then a second PCA on the "
        "foreground patches alone gives the colours, each channel scaled to 0…1. Trained DINOv2 paints matching "
        "parts of objects in matching colours (Oquab et al. 2024, Fig. 1); random weights give colours without "
        "meaning. Hover a patch for its three component values."))
    show_source(norms.feature_colours)


lazy_tabs("registers", (partial(token_norms, tr, chosen, vin), partial(neighbours, tr, chosen, vin),
                        partial(with_without, ctx), partial(colours, ctx, vin)))
stage_footer("registers")
