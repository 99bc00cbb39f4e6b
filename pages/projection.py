"""Stage 3 · Linear projection: x_p E turns every flattened patch into a D-dim token (ViT Eq. 1, Fig. 7 left)."""
from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
import torch
import torch.nn.functional as F

from ui.chrome import show_source, stage_footer, stage_header
from ui.context import context
from ui.models import get_model, show_notes, vit_input
from ui.patches import selected_patch
from vitviz import embeddings as emb
from vitviz.i18n import _, language, sentences
from vitviz.models.vit import ViT, resize_patch_kernel
from vitviz.viz import embeddings as viz
from vitviz.viz.encode import fitted, image_format

if TYPE_CHECKING:
    import plotly.graph_objects as go


def picture(where, data: bytes, **kwargs) -> None:
    """st.image of encoded bytes, sent as they are (no re-encoding by Streamlit)."""
    where.image(data, output_format=image_format(data), **kwargs)


ctx = context()
vin = vit_input(ctx)
model = vin.model
original = get_model(ctx.model_name, ctx.pretrained)[0]
trained = getattr(original, "source", ctx.model_name) != ctx.model_name  # loaded from a checkpoint, not a preset
P, C, D = model.config.patch_size, model.config.channels, model.config.dim
P0 = vin.checkpoint_patch
gh, gw = vin.grid
N = gh * gw
weights_key = f"{ctx.model_key}|{getattr(original, 'source', '')}|P{P}"


def csv_bytes(array: np.ndarray) -> bytes:
    """CSV of a 2-D array, built only when the download button is clicked."""
    buf = io.StringIO()
    np.savetxt(buf, array, delimiter=",", fmt="%.6g")
    return buf.getvalue().encode()


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


@st.cache_data(max_entries=8, show_spinner=False)
def projection_data(cache_key: str, _model, _pixel_values) -> dict:
    """Tokens from the traced taps and the Conv2d check, as float32 numpy."""
    rec = emb.embedding_trace(_model, _pixel_values)
    conv = emb.conv_tokens(_model, _pixel_values)
    return {
        "flat_shape": tuple(rec["flat"].shape),
        "tokens": rec["embeddings"][0].float().cpu().numpy(),
        "brightness": rec["flat"][0].float().mean(-1).cpu().numpy(),  # mean normalised pixel value of each patch
        "diff": emb.max_abs_difference(conv, rec["embeddings"]),
        "scale": float(rec["embeddings"].abs().max()),
        "weight_shape": tuple(_model.patch_embed.weight.shape),
        "matrix_shape": tuple(_model.projection_matrix().shape),
    }


@st.cache_data(max_entries=16, show_spinner=False)
def filter_pictures(key: str, lang: str, _weight) -> dict:
    """The first filters and the top 28 principal components as mosaics (ViT Fig. 7 left), PNG when ≤ 390 KB, and
    the explained-variance bar chart (its axis titles in `lang`, the run's language).

    Random filters are incompressible noise, so for large P fewer are shown: at most ~120 000 filter pixels.
    """
    w = _weight.detach().float().cpu()
    p = w.shape[-1]
    count = min(64, max(8, 120_000 // (p * p) // 8 * 8))
    first = emb.normalise_filters(w[:count].numpy())
    comps, explained = emb.filter_pca(w, 28)
    cell = max(40, min(72, 4 * w.shape[-1]))
    return {
        "filters": fitted(viz.mosaic(first, 8, cell)),
        "count": count,
        "pca": fitted(viz.mosaic(emb.normalise_filters(comps), 7, cell)),
        "explained": explained,
        "bar": viz.as_spec(viz.explained_bar(explained)),  # small: a dict is fine
        "k": len(comps),
    }


@st.cache_data(max_entries=32, show_spinner=False)
def pca_colours(cache_key: str, stage: str, grid: tuple[int, int], patch: int, _model, _pixel_values,
                _tokens: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """PNG of the tokens' top-3 principal components as RGB (one cell per patch), explained fractions, red channel."""
    if stage == "last":
        with torch.inference_mode():
            tokens = _model(_pixel_values, output_attentions=False).last_hidden_state[0, _model.config.prefix:]
    else:
        tokens = torch.from_numpy(_tokens)
    rgb, explained = emb.tokens_pca_rgb(tokens, grid)
    return fitted(viz.enlarge(rgb, (grid[1] * patch, grid[0] * patch))), explained, rgb[..., 0].reshape(-1)


@st.cache_resource(max_entries=32, show_spinner=False)  # a shared figure: nobody mutates it, no copy per run
def token_figure(cache_key: str, r0: int, c0: int, rows: int, cols: int, selected: int, lang: str,
                 _tokens: np.ndarray) -> "go.Figure":
    """Heatmap of tokens[r0:r0+rows, c0:c0+cols] with the selected patch's row framed (its titles in `lang`)."""
    view = _tokens[r0 : r0 + rows, c0 : c0 + cols]
    fig = viz.token_heatmap(view, r0, c0, height=min(640, max(360, 3 * view.shape[0])))
    if r0 <= selected < r0 + view.shape[0]:
        fig.add_hrect(y0=selected - 0.5, y1=selected + 0.5, line=dict(color="black", width=2), fillcolor="rgba(0,0,0,0)")
    return fig


@st.cache_data(max_entries=64, show_spinner=False)
def kernel_pictures(key: str, i: int, _original, _resized, size: int) -> tuple[tuple[bytes, float, float], ...]:
    """Filter i of the checkpoint kernel and of its PI-resize, each enlarged to size × size: (image, min, max)."""
    out = []
    for weight in (_original, _resized):
        w = weight[i].detach().float().cpu()
        image = viz.enlarge(emb.normalise_filters(w[None].numpy())[0], (size, size))
        out.append((fitted(image), float(w.min()), float(w.max())))
    return tuple(out)


@st.cache_data(max_entries=64, show_spinner=False)
def pi_check(cache_key: str, selected: int, _original, _resized, _pixel_values) -> tuple[float, float]:
    """PI-resize check on a real patch: the selected patch resampled to the checkpoint's P is x."""
    p, p0 = _resized.shape[-1], _original.shape[-1]
    r, c = divmod(selected, _pixel_values.shape[-1] // p)
    patch = _pixel_values[0, :, r * p : (r + 1) * p, c * p : (c + 1) * p].detach().float().cpu()
    x = F.interpolate(patch[None], size=(p0, p0), mode="bilinear", align_corners=False)[0]
    return emb.pi_resize_check(_original.detach().cpu(), _resized.detach().cpu(), x)


@st.cache_data(max_entries=16, show_spinner=False)
def image_jpeg(cache_key: str, _image, width: int, height: int) -> bytes:
    """The model's input image cropped to whole patches (what the conv reads), as JPEG."""
    return fitted(_image.crop((0, 0, width, height)), photo=True)


stage_header(
    "projection",
    _("Every flattened patch **x_p** (a vector of P·P·C pixel values) is multiplied by one learned matrix **E** and "
      "becomes a **token** of D numbers. The same E is used for every patch. This page shows E, proves that the "
      "checkpoint's Conv2d is exactly this matrix multiply, and shows the tokens it produces for your image."),
)
show_notes(vin)
data = projection_data(vin.cache_key, model, vin.pixel_values)
tokens = data["tokens"]
assert tokens.shape == (N, D)

# ---- 1. The equation with the live numbers --------------------------------------------------------------------
st.header(_("x_p E: one matrix multiply per patch"))
m = st.columns([0.9, 1, 0.8, 1.1, 1.4])
m[0].metric(_("Patches N"), f"{N:,}", help=_("grid {gh} × {gw}").format(gh=gh, gw=gw))
m[1].metric(_("Patch vector P²·C"), f"{P * P * C:,}", help=f"{P}·{P}·{C}")
m[2].metric(_("Token width D"), f"{D}")
m[3].metric(_("Parameters of E"), f"{P * P * C * D + D:,}",
            help=_("{inputs}·{d} weights + {d} biases").format(inputs=P * P * C, d=D))
m[4].metric(_("Tokens (N, D)"), f"({tokens.shape[0]}, {tokens.shape[1]})")
st.latex(
    r"\underbrace{X_p}_{%d\times%d}\;\underbrace{E}_{%d\times%d}\;+\;\underbrace{b}_{1\times%d}"
    r"\;=\;\underbrace{X_pE + b}_{%d\times%d}\qquad x_p^i E \in \mathbb{R}^{D}"
    % (N, P * P * C, P * P * C, D, D, N, D)
)
st.caption(sentences(
    _("X_p: the {n} flattened patches of the previous page, one per row (tap `flat`, shape {shape}).").format(
        n=N, shape=data["flat_shape"]),
    _("Each token is {per} multiply-adds per output number: {total:,.1f} M multiply-adds in all.").format(
        per=P * P * C, total=N * P * P * C * D / 1e6),
))

# ---- 2. Conv2d is the same linear map ---------------------------------------------------------------------------
st.header(_("Conv2d(kernel = stride = P) is the same matrix"))
left, right = st.columns([3, 2])
with left:
    st.markdown(
        _("Checkpoints store E as a convolution with {d} output channels, kernel {p}×{p} and stride {p}: the kernel "
          "slides without overlap, so each output pixel is the dot product of one whole patch with one filter — "
          "exactly a row of X_p times a column of E. Reshaping the kernel `(D, C, P, P) = {weight}` "
          "to `(D, P·P·C) = {matrix}` in the flattening's `(p1 p2 c)` order gives the Linear weight.").format(
            d=D, p=P, weight=data["weight_shape"], matrix=data["matrix_shape"])
    )
with right:
    st.metric(_("max |Conv2d − Linear| over all tokens"), f"{data['diff']:.2e}",
              help=_("float32 rounding: the two sum the same products in a different order"))
    st.caption(_("…on {count:,} numbers whose largest magnitude is {scale:.3g}: identical up to float32 rounding "
                 "(relative {relative:.1e}).").format(count=N * D, scale=data["scale"],
                                                       relative=data["diff"] / max(data["scale"], 1e-30)))
st.code(
    f"conv   = model.patch_embed(pixel_values)         # Conv2d: (1, {D}, {gh}, {gw})\n"
    f"conv   = conv.flatten(2).transpose(1, 2)         # (1, {N}, {D}), as transformers does\n"
    f"linear = model.project(model.flatten(patches))   # x_p E + b on the flat patches: (1, {N}, {D})",
    language="python",
)
show_source(ViT.projection_matrix, ViT.project, emb.conv_tokens)

# ---- 3. The filters and their principal components ----------------------------------------------------------
st.header(_("E as {d} filters of {p}×{p}×{c}").format(d=D, p=P, c=C))
pics = filter_pictures(weights_key, language(), model.patch_embed.weight)
left, right = st.columns(2)
with left:
    st.subheader(_("The first {count} filters").format(count=pics["count"]))
    picture(st, pics["filters"], width="stretch")
    st.caption(_("Filters 0–{last} of {d}, row by row; each shown as an RGB patch scaled to its own min–max "
                 "(grey = 0 weight only if the filter is balanced).").format(last=pics["count"] - 1, d=D))
with right:
    st.subheader(_("Top {k} principal components").format(k=pics["k"]))
    picture(st, pics["pca"], width="stretch")
    st.caption(_("Rows of E reshaped to {p}×{p}×{c}, centred, SVD; components 1–{k} left to right, row by row "
                 "(ViT paper Fig. 7 left).").format(p=P, c=C, k=pics["k"]))
st.plotly_chart(pics["bar"], key="explained", config={"displayModeBar": False})
if trained:
    st.markdown(_("These are **trained** weights. In the ViT paper the top components look like smooth, low-frequency "
                  "patterns — a basis for the fine structure inside a patch, much like the first layer of a CNN."))
else:
    st.markdown(_("These are **random** weights (the offline sandbox): the filters are noise and the variance is "
                  "spread almost evenly over the components. With *Trained weights* in the sidebar you see the smooth, "
                  "low-frequency components a trained ViT learns (ViT paper Fig. 7 left)."))
show_source(emb.filter_pca, emb.pca)

# ---- 4. Another patch size: the kernel is resampled -----------------------------------------------------------
st.header(_("When P is not the checkpoint's patch size"))
if P == P0:
    st.info(_("P = {p} is the checkpoint's own patch size: E is used exactly as trained. Move the sidebar's "
              "patch-size slider to see how the kernel is adapted.").format(p=P), icon=":material/info:")
else:
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
    i = st.columns([2, 3])[0].slider(_("Filter to compare"), 0, D - 1, 0, key="proj_filter")
    big = 256
    a, b, c = st.columns(3)
    (png0, lo0, hi0), (png1, lo1, hi1) = kernel_pictures(weights_key, i, original.patch_embed.weight, model.patch_embed.weight, big)
    picture(a, png0, width=big, caption=_("checkpoint filter {i}: {p}×{p}, values {lo:.3g} … {hi:.3g}").format(
        i=i, p=P0, lo=lo0, hi=hi0))
    picture(b, png1, width=big, caption=_("PI-resized filter {i}: {p}×{p}, values {lo:.3g} … {hi:.3g}").format(
        i=i, p=P, lo=lo1, hi=hi1))
    sel = selected_patch(vin)
    r, col = divmod(sel, gw)
    diff, scale = pi_check(vin.cache_key, sel, original.patch_embed.weight, model.patch_embed.weight, vin.pixel_values)
    with c:
        st.metric(_("max |⟨Bx, w′⟩ − ⟨x, w⟩| over all filters"), f"{diff:.2e}")
        st.caption(sentences(
            _("x: your selected patch {index} (row {row}, column {col}) resampled to {p0}×{p0}; Bx: x enlarged back "
              "to {p}×{p} bilinearly.").format(index=sel, row=r, col=col, p0=P0, p=P),
            _("Tokens reach {scale:.3g} in magnitude.").format(scale=scale),
        ))
    show_source(ViT.with_patch_size, resize_patch_kernel, emb.pi_resize_check)

# ---- 5. The token matrix -------------------------------------------------------------------------------------
st.header(_("The tokens: an N × D = {n} × {d} matrix").format(n=N, d=D))
budget = viz.MAX_HEATMAP_CELLS
row_blocks = -(-N // max(1, budget // 16)) if N * 16 > budget else 1
rows_per = -(-N // row_blocks)
col_blocks = -(-D // max(1, budget // rows_per))
cols_per = -(-D // col_blocks)
controls = st.columns(2)
cb = rb = 0
if col_blocks > 1:
    cb = controls[0].selectbox(_("Dimensions shown"), range(col_blocks), key="proj_dims",
                               format_func=lambda k: f"{k * cols_per}–{min(D, (k + 1) * cols_per) - 1}")
if row_blocks > 1:
    rb = controls[1].selectbox(_("Tokens shown"), range(row_blocks), key="proj_rows",
                               format_func=lambda k: f"{k * rows_per}–{min(N, (k + 1) * rows_per) - 1}")
r0, c0 = rb * rows_per, cb * cols_per
view = tokens[r0 : r0 + rows_per, c0 : c0 + cols_per]
sel = selected_patch(vin)
st.plotly_chart(token_figure(vin.cache_key, r0, c0, rows_per, cols_per, sel, language(), tokens), key="tokens",
                config={"displayModeBar": False})
shown_note = [] if view.size == tokens.size else [
    _("To keep the chart under 400 KB it shows {rows} tokens × {cols} dimensions at a time ({shown:,} of {total:,} "
      "numbers); pick another block above, or download all of them.").format(
        rows=view.shape[0], cols=view.shape[1], shown=view.size, total=tokens.size)]
st.caption(sentences(
    _("Row i is token x_p^i E + b for patch i (raster order); the black frame marks your selected patch "
      "{index}.").format(index=sel),
    _("Hover for values."),
    *shown_note,
))
downloads = st.columns(2)
downloads[0].download_button(_("All tokens (N × D)") + " · CSV", lambda: csv_bytes(tokens), f"tokens_{N}x{D}.csv", "text/csv",
                             on_click="ignore", key="tokens_csv")
downloads[1].download_button(_("All tokens (N × D)") + " · NPY", lambda: npy_bytes(tokens), f"tokens_{N}x{D}.npy",
                             "application/octet-stream", on_click="ignore", key="tokens_npy")

# ---- 6. Principal components of the tokens as colours -------------------------------------------------------
st.header(_("The tokens' top three principal components as colours"))
stage = st.radio(_("Tokens from"), ["projection", "last"], horizontal=True, key="proj_pca_stage",
                 format_func={"projection": _("this page: x_p E + b"),
                              "last": _("after all {layers} encoder layers").format(layers=len(model.blocks))}.get)
if stage == "last" and N + 1 > emb.MAX_LAYER_TOKENS:
    st.info(sentences(
        _("{tokens:,} tokens are too many to run all encoder layers on interactively (attention grows with the square "
          "of the sequence length): showing the projection's tokens.").format(tokens=N + 1),
        _("Choose a larger patch size or a lower resolution."),
    ), icon=":material/speed:")
    stage = "projection"
with st.spinner(_("Running all {layers} encoder layers on {tokens:,} tokens…").format(layers=len(model.blocks),
                                                                                      tokens=N + 1), show_time=True):
    pca_png, explained, red = pca_colours(vin.cache_key, stage, (gh, gw), P, model, vin.pixel_values, tokens)
left, right = st.columns(2)
picture(left, image_jpeg(vin.cache_key, vin.shown, gw * P, gh * P), width="stretch",
        caption=_("the input, cropped to the {gh}×{gw} whole patches the model reads ({height}×{width} px)").format(
            gh=gh, gw=gw, height=gh * P, width=gw * P))
picture(right, pca_png, width="stretch",
        caption=_("red, green, blue = principal components 1, 2, 3 of the {n} tokens ({shares} of the variance); one "
                  "square per patch").format(n=N, shares=", ".join(f"{100 * e:.1f}%" for e in explained)))
corr = float(np.corrcoef(red, data["brightness"])[0, 1]) if red.std() > 0 and data["brightness"].std() > 0 else 0.0
if stage == "projection":
    if abs(corr) > 0.8:
        colours = _("Right after the projection each token depends only on its own patch's pixels, through one linear "
                    "map, so these colours describe pixels, not objects: here red (component 1) correlates with the "
                    "patches' mean pixel value at **r = {r:+.2f}** — it is essentially brightness.")
    else:
        colours = _("Right after the projection each token depends only on its own patch's pixels, through one linear "
                    "map, so these colours describe pixels, not objects: here red (component 1) correlates with the "
                    "patches' mean pixel value at **r = {r:+.2f}**.")
    st.markdown(sentences(
        colours.format(r=corr),
        _("What makes DINO famous is the **last layer**: there, with pretrained weights, the first components separate "
          "the object from the background and its parts from each other (choose *after all encoder layers* above)."),
        "" if trained else _("With the random weights shown now, the deep tokens carry no such meaning: mostly noise."),
    ))
else:
    st.markdown(
        _("With these pretrained weights, tokens of the same object part point in similar directions after the "
          "encoder, so the colours group into parts of the scene.") if trained else
        _("These are **random** weights: nothing was learned, so the colours carry no meaning beyond what leaks "
          "through the residual connections from the pixels. With pretrained DINO weights the same picture separates "
          "the object from the background.")
    )
show_source(emb.tokens_pca_rgb)
stage_footer("projection")
