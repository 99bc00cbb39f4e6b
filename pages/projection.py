"""Stage 3 · Linear projection: x_p E turns every flattened patch into a D-dim token (ViT Eq. 1, Fig. 7 left).

The page reads its controls, makes one call (`vitviz.embeddings.projection_stage`) and draws its result."""
from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ui.chrome import download_array, show_source, stage_footer, stage_header
from ui.common import chart, code_block, picture
from ui.context import context
from ui.embedding_pages import equation_pieces, whole_patches
from ui.models import VitInput, get_model, show_notes, vit_input
from ui.patches import selected_patch
from vitviz import embeddings as emb
from vitviz.describe import embeddings as describe
from vitviz.describe.common import percent
from vitviz.embeddings import FilterStudy, KernelResize, ProjectionStage
from vitviz.i18n import _, language, sentences
from vitviz.models.vit import ViT, resize_patch_kernel
from vitviz.viz import embeddings as viz
from vitviz.viz.encode import fitted

if TYPE_CHECKING:
    import plotly.graph_objects as go

FILTER_COLUMNS, COMPONENT_COLUMNS = 8, 7  # filters and principal components per row of their mosaics


@st.cache_data(max_entries=8, show_spinner=False)  # an entry holds N × D tokens: 75 MB at the largest grid
def projection_stage(cache_key: str, selected: int, stage: str, _model, _checkpoint, _pixel_values) -> ProjectionStage:
    """The page's one call, once per input, selected patch and token stage."""
    return emb.projection_stage(_model, _checkpoint, _pixel_values, selected, stage, viz.MAX_HEATMAP_CELLS)


@st.cache_data(max_entries=16, show_spinner=False)
def filter_pictures(key: str, lang: str, _filters: FilterStudy) -> dict:
    """The first filters and the top principal components as mosaics (ViT Fig. 7 left), PNG of 256 colours (median
    cut: half the bytes of full colour, which a patch-size move sends again), and the explained-variance bar chart
    (its axis titles in `lang`, the run's language)."""
    cell = max(40, min(72, 4 * _filters.first.shape[1]))
    return {
        "filters": fitted(viz.mosaic(_filters.first, FILTER_COLUMNS, cell), colors=256),
        "pca": fitted(viz.mosaic(_filters.components, COMPONENT_COLUMNS, cell), colors=256),
        "bar": viz.as_spec(viz.explained_bar(_filters.explained)),  # small: a dict is fine
    }


@st.cache_resource(max_entries=32, show_spinner=False)  # a shared figure: nobody mutates it, no copy per run
def token_figure(cache_key: str, rb: int, cb: int, selected: int, lang: str, _s: ProjectionStage) -> "go.Figure":
    """Heatmap of the tokens' row block rb and column block cb with the selected patch's row framed (its titles in
    `lang`)."""
    view = token_block(_s, rb, cb)
    return viz.token_heatmap(view, _s.blocks.row_span(rb)[0], _s.blocks.col_span(cb)[0],
                             height=min(640, max(360, 3 * view.shape[0])), selected=selected)


def token_block(s: ProjectionStage, rb: int, cb: int):
    """The tokens of row block rb and column block cb: what the heatmap draws and its text describes."""
    (r0, r1), (c0, c1) = s.blocks.row_span(rb), s.blocks.col_span(cb)
    return s.tokens[r0 : r1 + 1, c0 : c1 + 1]


@st.cache_data(max_entries=64, show_spinner=False)
def kernel_pictures(key: str, i: int, size: int, _resize: KernelResize) -> tuple[bytes, bytes]:
    """Filter i of the checkpoint kernel and of its PI-resize, each enlarged to size × size."""
    return fitted(viz.enlarge(_resize.checkpoint[i], (size, size))), fitted(viz.enlarge(_resize.resized[i], (size, size)))


def equation(s: ProjectionStage) -> None:
    """Section 1: x_p E with the live numbers."""
    P, C, D = s.config.patch_size, s.config.channels, s.config.dim
    (gh, gw), N = s.grid, s.n
    st.header(_("x_p E: one matrix multiply per patch"))
    m = st.columns([0.9, 1, 0.8, 1.1, 1.4])
    m[0].metric(_("Patches N"), f"{N:,}", help=_("grid {gh} × {gw}").format(gh=gh, gw=gw))
    m[1].metric(_("Patch vector P²·C"), f"{s.patch_vector:,}", help=f"{P}·{P}·{C}")
    m[2].metric(_("Token width D"), f"{D}")
    m[3].metric(_("Parameters of E"), f"{s.parameters:,}",
                help=_("{inputs}·{d} weights + {d} biases").format(inputs=s.patch_vector, d=D))
    m[4].metric(_("Tokens (N, D)"), f"({s.tokens.shape[0]}, {s.tokens.shape[1]})")
    equation_pieces(
        r"\underbrace{X_p}_{%d\times%d}\;\underbrace{E}_{%d\times%d}\;+\;\underbrace{b}_{1\times%d}"
        % (N, s.patch_vector, s.patch_vector, D, D),
        r"=\;\underbrace{X_pE + b}_{%d\times%d}\qquad" % (N, D),
        r"x_p^i E \in \mathbb{R}^{D}",
    )
    st.caption(sentences(
        _("X_p: the {n} flattened patches of the previous page, one per row (tap `flat`, shape {shape}).").format(
            n=N, shape=s.flat_shape),
        _("Each token is {per} multiply-adds per output number: {total:,.1f} M multiply-adds in all.").format(
            per=s.patch_vector, total=s.multiply_adds / 1e6),
    ))


def conv_check(s: ProjectionStage) -> None:
    """Section 2: the checkpoint's Conv2d is the same linear map."""
    P, D, (gh, gw), N = s.config.patch_size, s.config.dim, s.grid, s.n
    st.header(_("Conv2d(kernel = stride = P) is the same matrix"))
    left, right = st.columns([3, 2])
    with left:
        st.markdown(
            _("Checkpoints store E as a convolution with {d} output channels, kernel {p}×{p} and stride {p}: the "
              "kernel slides without overlap, so each output pixel is the dot product of one whole patch with one "
              "filter — exactly a row of X_p times a column of E. Reshaping the kernel `(D, C, P, P) = {weight}` "
              "to `(D, P·P·C) = {matrix}` in the flattening's `(p1 p2 c)` order gives the Linear weight.").format(
                d=D, p=P, weight=s.weight_shape, matrix=s.matrix_shape)
        )
    with right:
        st.metric(_("max |Conv2d − Linear| over all tokens"), f"{s.conv_difference:.2e}",
                  help=_("float32 rounding: the two sum the same products in a different order"))
        st.caption(_("…on {count:,} numbers whose largest magnitude is {scale:.3g}: identical up to float32 rounding "
                     "(relative {relative:.1e}).").format(count=s.tokens.size, scale=s.token_scale,
                                                           relative=s.relative_difference))
    code_block(
        f"conv   = model.patch_embed(pixel_values)         # Conv2d: (1, {D}, {gh}, {gw})\n"
        f"conv   = conv.flatten(2).transpose(1, 2)         # (1, {N}, {D}), as transformers does\n"
        f"linear = model.project(model.flatten(patches))   # x_p E + b on the flat patches: (1, {N}, {D})",
        python=True,
    )
    show_source(ViT.projection_matrix, ViT.project, emb.conv_tokens)


def filters(s: ProjectionStage, weights_key: str) -> None:
    """Section 3: E as D filters and their principal components (ViT Fig. 7 left)."""
    P, C, D, f = s.config.patch_size, s.config.channels, s.config.dim, s.filters
    st.header(_("E as {d} filters of {p}×{p}×{c}").format(d=D, p=P, c=C))
    pics = filter_pictures(weights_key, language(), f)
    left, right = st.columns(2)
    with left:
        st.subheader(_("The first {count} filters").format(count=f.count))
        picture(pics["filters"], alt=describe.filters(f, D, FILTER_COLUMNS), width="stretch")
        st.caption(_("Filters 0–{last} of {d}, row by row; each shown as an RGB patch scaled to its own min–max "
                     "(grey = 0 weight only if the filter is balanced).").format(last=f.count - 1, d=D))
    with right:
        st.subheader(_("Top {k} principal components").format(k=f.k))
        picture(pics["pca"], alt=describe.components(f, COMPONENT_COLUMNS), width="stretch")
        st.caption(_("Rows of E reshaped to {p}×{p}×{c}, centred, SVD; components 1–{k} left to right, row by row "
                     "(ViT paper Fig. 7 left).").format(p=P, c=C, k=f.k))
    chart(pics["bar"], alt=describe.explained_bar(f.explained), key="explained", config={"displayModeBar": False})
    if s.trained:
        st.markdown(_("These are **trained** weights. In the ViT paper the top components look like smooth, "
                      "low-frequency patterns — a basis for the fine structure inside a patch, much like the first "
                      "layer of a CNN."))
    else:
        st.markdown(_("These are **random** weights (the offline sandbox): the filters are noise and the variance is "
                      "spread almost evenly over the components. With *Trained weights* in the sidebar you see the "
                      "smooth, low-frequency components a trained ViT learns (ViT paper Fig. 7 left)."))
    show_source(emb.filter_pca, emb.pca)


def pi_resize(s: ProjectionStage, weights_key: str) -> None:
    """Section 4: how the kernel is resampled when P is not the checkpoint's patch size."""
    P, P0 = s.config.patch_size, s.checkpoint_patch
    st.header(_("When P is not the checkpoint's patch size"))
    if s.resize is None:
        st.info(_("P = {p} is the checkpoint's own patch size: E is used exactly as trained. Move the sidebar's "
                  "patch-size slider to see how the kernel is adapted.").format(p=P), icon=":material/info:")
        return
    if P > P0:
        why = _("With B the bilinear resize of a {p0}×{p0} patch to {p}×{p}, the new kernel is w′ = pinv(B)ᵀ w, chosen "
                "so that ⟨B x, w′⟩ = ⟨x, w⟩ — an enlarged patch gives the same token the original patch gave (exact, "
                "since B only enlarges).")
    else:
        why = _("With B the bilinear resize of a {p0}×{p0} patch to {p}×{p}, the new kernel is w′ = pinv(B)ᵀ w, chosen "
                "so that ⟨B x, w′⟩ = ⟨x, w⟩ — an enlarged patch gives the same token the original patch gave; when "
                "shrinking this holds only in the least-squares sense.")
    st.markdown(sentences(
        _("The checkpoint's kernel is {p0}×{p0}. For {p}×{p} patches vitviz does what FlexiViT (Beyer et al. 2023, "
          "§3.4) does: **PI-resize**.").format(p0=P0, p=P),
        why.format(p0=P0, p=P),
        _("Every other weight is the checkpoint's. Nothing is retrained: deeper layers still expect the original "
          "patches."),
    ))
    i = st.columns([2, 3])[0].slider(_("Filter to compare"), 0, s.config.dim - 1, 0, key="proj_filter")
    big = 256
    a, b, c = st.columns(3)
    png0, png1 = kernel_pictures(weights_key, i, big, s.resize)
    (lo0, hi0), (lo1, hi1) = s.resize.checkpoint_range[i], s.resize.resized_range[i]
    alt0, alt1 = describe.kernels(s.resize, i)
    picture(png0, alt=alt0, where=a, width=big,
            caption=_("checkpoint filter {i}: {p}×{p}, values {lo:.3g} … {hi:.3g}").format(i=i, p=P0, lo=lo0, hi=hi0))
    picture(png1, alt=alt1, where=b, width=big,
            caption=_("PI-resized filter {i}: {p}×{p}, values {lo:.3g} … {hi:.3g}").format(i=i, p=P, lo=lo1, hi=hi1))
    with c:
        st.metric(_("max |⟨Bx, w′⟩ − ⟨x, w⟩| over all filters"), f"{s.resize.difference:.2e}")
        st.caption(sentences(
            _("x: your selected patch {index} (row {row}, column {col}) resampled to {p0}×{p0}; Bx: x enlarged back "
              "to {p}×{p} bilinearly.").format(index=s.selected, row=s.row, col=s.col, p0=P0, p=P),
            _("Tokens reach {scale:.3g} in magnitude.").format(scale=s.resize.scale),
        ))
    show_source(ViT.with_patch_size, resize_patch_kernel, emb.pi_resize_check)


def token_matrix(s: ProjectionStage, cache_key: str) -> None:
    """Section 5: the N × D tokens as a heatmap, a block at a time, and their downloads."""
    N, D, blocks = s.n, s.config.dim, s.blocks
    st.header(_("The tokens: an N × D = {n} × {d} matrix").format(n=N, d=D))
    controls = st.columns(2)
    cb = rb = 0
    if blocks.col_blocks > 1:
        cb = controls[0].selectbox(_("Dimensions shown"), range(blocks.col_blocks), key="proj_dims",
                                   format_func=lambda k: "{}–{}".format(*blocks.col_span(k)))
    if blocks.row_blocks > 1:
        rb = controls[1].selectbox(_("Tokens shown"), range(blocks.row_blocks), key="proj_rows",
                                   format_func=lambda k: "{}–{}".format(*blocks.row_span(k)))
    rows, cols = blocks.shape(rb, cb)
    described = describe.token_heatmap(token_block(s, rb, cb), blocks.row_span(rb)[0], blocks.col_span(cb)[0],
                                       s.selected)
    chart(token_figure(cache_key, rb, cb, s.selected, language(), s), alt=described, key="tokens",
          config={"displayModeBar": False})
    shown_note = [] if rows * cols == s.tokens.size else [
        _("To keep the chart under 400 KB it shows {rows} tokens × {cols} dimensions at a time ({shown:,} of {total:,} "
          "numbers); pick another block above, or download all of them.").format(
            rows=rows, cols=cols, shown=rows * cols, total=s.tokens.size)]
    st.caption(sentences(
        _("Row i is token x_p^i E + b for patch i (raster order); the black-and-white frame marks your selected "
          "patch {index}.").format(index=s.selected),
        _("The colour bar gives the values; the download below has every number."),
        *shown_note,
    ))
    download_array(_("All tokens (N × D)"), s.tokens, f"tokens_{N}x{D}")


@st.cache_data(max_entries=32, show_spinner=False)
def colour_picture(cache_key: str, stage: str, view: str, _s: ProjectionStage) -> bytes:
    """The token colours, one P × P square per patch: the three components as RGB (view "rgb") or component
    int(view) alone in grey."""
    (gh, gw), p = _s.grid, _s.config.patch_size
    size = (gw * p, gh * p)
    return fitted(viz.enlarge(_s.colours.rgb, size) if view == "rgb" else viz.grey(_s.colours.rgb, int(view) - 1, size))


def colour_view(s: ProjectionStage) -> str:
    """The control under the colours: all three components as RGB, or one alone in grey (which reads without
    telling red from green)."""
    views = ["rgb"] + [str(k) for k in range(1, len(s.colours.explained) + 1)]
    labels = {"rgb": _("components 1–3 as red, green, blue")}
    return st.radio(_("Colours"), views, horizontal=True, key="proj_pca_view",
                    format_func=lambda v: labels.get(v) or _("component {k} alone, in grey").format(k=v))


def token_colours(s: ProjectionStage, vin: VitInput, label: str, requested: str) -> None:
    """Section 6 below its controls: the input beside its tokens' principal components as colours."""
    P, (gh, gw), N, colours = s.config.patch_size, s.grid, s.n, s.colours
    if colours.stage != requested:
        st.info(sentences(
            _("{tokens:,} tokens are too many to run all encoder layers on interactively (attention grows with the "
              "square of the sequence length): showing the projection's tokens.").format(tokens=N + 1),
            _("Choose a larger patch size or a lower resolution."),
        ), icon=":material/speed:")
    view = colour_view(s)
    left, right = st.columns(2)
    crop = _("the input, cropped to the {gh}×{gw} whole patches the model reads ({height}×{width} px)").format(
        gh=gh, gw=gw, height=gh * P, width=gw * P)
    picture(whole_patches(vin.cache_key, vin.shown, gw * P, gh * P), alt=describe.whole_patches(label, s.grid, P),
            where=left, width="stretch", caption=crop)
    shares = ", ".join(f"{100 * e:.1f}%" for e in colours.explained)
    if view == "rgb":
        alt = describe.token_colours(colours)
        caption = _("red, green, blue = principal components 1, 2, 3 of the {n} tokens ({shares} of the variance); one "
                    "square per patch").format(n=N, shares=shares)
    else:
        k = int(view)
        alt = describe.token_component(colours, k - 1)
        caption = _("principal component {k} of the {n} tokens ({share} of the variance) in grey, lighter for a "
                    "larger score; one square per patch").format(k=k, n=N, share=percent(colours.explained[k - 1]))
    picture(colour_picture(vin.cache_key, colours.stage, view, s), alt=alt, where=right, width="stretch",
            caption=caption)
    if colours.stage == "projection":
        if abs(colours.brightness_correlation) > 0.8:
            text = _("Right after the projection each token depends only on its own patch's pixels, through one linear "
                     "map, so these colours describe pixels, not objects: here red (component 1) correlates with the "
                     "patches' mean pixel value at **r = {r:+.2f}** — it is essentially brightness.")
        else:
            text = _("Right after the projection each token depends only on its own patch's pixels, through one linear "
                     "map, so these colours describe pixels, not objects: here red (component 1) correlates with the "
                     "patches' mean pixel value at **r = {r:+.2f}**.")
        st.markdown(sentences(
            text.format(r=colours.brightness_correlation),
            _("What makes DINO famous is the **last layer**: there, with pretrained weights, the first components "
              "separate the object from the background and its parts from each other (choose *after all encoder "
              "layers* above)."),
            "" if s.trained else _("With the random weights shown now, the deep tokens carry no such meaning: mostly noise."),
        ))
    else:
        st.markdown(
            _("With these pretrained weights, tokens of the same object part point in similar directions after the "
              "encoder, so the colours group into parts of the scene.") if s.trained else
            _("These are **random** weights: nothing was learned, so the colours carry no meaning beyond what leaks "
              "through the residual connections from the pixels. With pretrained DINO weights the same picture "
              "separates the object from the background.")
        )
    show_source(emb.tokens_pca_rgb)


ctx = context()
vin = vit_input(ctx)
stage_header(
    "projection",
    _("Every flattened patch **x_p** (a vector of P·P·C pixel values) is multiplied by one learned matrix **E** and "
      "becomes a **token** of D numbers. The same E is used for every patch. This page shows E, proves that the "
      "checkpoint's Conv2d is exactly this matrix multiply, and shows the tokens it produces for your image."),
)
show_notes(vin)
body = st.container()  # sections 1–5, drawn once the page's one call has run: section 6's radio is one of its inputs
st.header(_("The tokens' top three principal components as colours"))
depth, (gh, gw) = vin.model.config.depth, vin.grid  # for the labels the call's controls and spinner show before it runs
stage = st.radio(_("Tokens from"), ["projection", "last"], horizontal=True, key="proj_pca_stage",
                 format_func={"projection": _("this page: x_p E + b"),
                              "last": _("after all {layers} encoder layers").format(layers=depth)}.get)
with st.spinner(_("Running all {layers} encoder layers on {tokens:,} tokens…").format(layers=depth, tokens=gh * gw + 1),
                show_time=True):
    result = projection_stage(vin.cache_key, selected_patch(vin), stage, vin.model,
                              get_model(ctx.model_name, ctx.pretrained)[0], vin.pixel_values)
weights_key = f"{ctx.model_key}|{vin.model.source}|P{vin.patch_size}"
with body:
    equation(result)
    conv_check(result)
    filters(result, weights_key)
    pi_resize(result, weights_key)
    token_matrix(result, vin.cache_key)
token_colours(result, vin, ctx.image_label, stage)
stage_footer("projection")
