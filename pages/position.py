"""Stage 4 · Position embeddings: prepend x_class, add E_pos (ViT Eq. 1, Fig. 7 centre), interpolated to the grid."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from PIL import Image

from ui.chrome import show_source, stage_footer, stage_header
from ui.context import context
from ui.models import get_model, show_notes, vit_input
from ui.patches import selected_patch
from vitviz import embeddings as emb
from vitviz.i18n import _, language, ngettext, sentences
from vitviz.models.vit import ViT
from vitviz.viz import embeddings as viz
from vitviz.viz.encode import fitted, image_format


def picture(where, data: bytes, **kwargs) -> None:
    """st.image of encoded bytes, sent as they are (no re-encoding by Streamlit)."""
    where.image(data, output_format=image_format(data), **kwargs)


ctx = context()
vin = vit_input(ctx)
model = vin.model
original = get_model(ctx.model_name, ctx.pretrained)[0]
trained = getattr(original, "source", ctx.model_name) != ctx.model_name
P, D = model.config.patch_size, model.config.dim
gh, gw = vin.grid
N = gh * gw
g0 = model.config.grid  # the checkpoint's own grid side
HEIGHT = int(500 * min(max(gh / gw, 1.0), 1.6))  # taller charts for tall grids, so tiles stay readable


@st.cache_data(max_entries=8, show_spinner=False)
def position_data(cache_key: str, _model, _pixel_values) -> dict:
    """The traced taps `tokens`, `e_pos`, `position` (float32 numpy) and the checks on them."""
    rec = emb.embedding_trace(_model, _pixel_values)
    tokens, e_pos, position = (rec[k][0].float().cpu() for k in ("tokens", "e_pos", "position"))
    return {
        "shapes": {k: tuple(rec[k].shape) for k in ("embeddings", "tokens", "e_pos", "position")},
        "tokens": tokens.numpy(),
        "e_pos": e_pos.numpy(),
        "position": position.numpy(),
        "sum_diff": emb.max_abs_difference(position, tokens + e_pos),
        "cls_diff": emb.max_abs_difference(tokens[0], _model.cls_token[0, 0].float().cpu()),
    }


@st.cache_resource(max_entries=48, show_spinner=False)  # a shared figure: nobody mutates it, no copy per run
def similarity_figure(key: str, _pos: np.ndarray | None, grid: tuple[int, int], height: int, selected: int | None,
                      lang: str) -> tuple:
    """Tiled cosine-similarity heatmap (ViT Fig. 7 centre) of position embeddings (N, D) on `grid`, its hover texts
    and titles in `lang` (the run's language).

    _pos None: the 2-D sin-cos embeddings of width D for the grid (computed only on a cache miss).
    """
    pos = emb.sincos_2d(grid, D) if _pos is None else torch.from_numpy(_pos)
    fig, stride, inner, peaks = viz.similarity_figure(pos, grid, selected, height)
    return fig, (stride, inner), peaks


@st.cache_data(max_entries=16, show_spinner=False)
def photo_pair(cache_key: str, _image, patch: int, n: int) -> tuple[bytes, bytes]:
    """JPEGs of the input cropped to whole patches and of the same patches in the shuffle test's order."""
    pixels = np.asarray(_image.convert("RGB"))
    gh, gw = pixels.shape[0] // patch, pixels.shape[1] // patch
    shuffled = emb.shuffle_patches(pixels, patch, emb.patch_permutation(n))
    return (fitted(Image.fromarray(pixels[: gh * patch, : gw * patch]), photo=True),
            fitted(Image.fromarray(shuffled), photo=True))


@st.cache_data(max_entries=32, show_spinner=False)
def shuffle_result(cache_key: str, layers: int, _model, _tokens: np.ndarray, _e_pos: np.ndarray) -> emb.ShuffleResult:
    device = next(_model.parameters()).device
    return emb.shuffle_test(_model, torch.from_numpy(_tokens)[None].to(device), torch.from_numpy(_e_pos)[None].to(device), layers)


def ordinal(n: int) -> str:
    """2nd, 3rd, 11th … in English; in Chinese the number itself (the sentence says 每隔/每 n 个)."""
    if language() == "zh":
        return str(n)
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def thinned_note(stride: int, inner: int) -> str:
    """What a thinned similarity chart leaves out, in words (one sentence)."""
    if stride > 1 and inner > 1:
        text = _("To stay under 400 KB it shows a tile for every {stride} row and column of positions and every "
                 "{inner} position inside each tile.")
    elif stride > 1:
        text = _("To stay under 400 KB it shows a tile for every {stride} row and column of positions.")
    else:
        text = _("To stay under 400 KB it shows every {inner} position inside each tile.")
    return text.format(stride=ordinal(stride), inner=ordinal(inner))


def vec(values: np.ndarray, k: int = 3) -> str:
    """LaTeX column vector of the first k values."""
    return r"\begin{bmatrix}" + r" \\ ".join(f"{v:+.3f}" for v in values[:k]) + r" \\ \vdots\end{bmatrix}"


stage_header(
    "position",
    _("Attention treats its input as a **set**: shuffle the tokens and it returns the same vectors, shuffled. So "
      "before the encoder, ViT puts a learned **class token** in front and **adds** a position vector to every token, "
      "telling the model where each patch was. This page shows both with your image's numbers, what the position "
      "vectors have in common, how they are stretched to a new grid, and what happens without them."),
)
show_notes(vin)
data = position_data(vin.cache_key, model, vin.pixel_values)
shapes = data["shapes"]
sel = selected_patch(vin)

# ---- 1. z0 = [x_class; x_p E] + E_pos -----------------------------------------------------------------------
st.header(_("Prepend x_class, add E_pos"))
m = st.columns([1.1, 1, 1.1, 0.9, 1.3])
m[0].metric(_("Patch grid"), f"{gh} × {gw}",
            help=_("{height}×{width} px read in {p}×{p} patches").format(height=gh * P, width=gw * P, p=P))
m[1].metric(_("Patch tokens N"), f"{shapes['embeddings'][1]:,}")
m[2].metric(_("Sequence length 1+N"), f"{shapes['position'][1]:,}")
m[3].metric(_("Token width D"), f"{shapes['position'][2]}")
m[4].metric(_("E_pos shape"), f"({shapes['e_pos'][1]}, {shapes['e_pos'][2]})")
st.latex(
    r"z_0 = \big[\,x_\text{class};\; x_p^1E;\; \dots;\; x_p^{%d}E\,\big] + E_\text{pos}"
    r"\qquad \underbrace{(1+%d)\times%d}_{\text{tokens}} \;+\; \underbrace{(1+%d)\times%d}_{E_\text{pos}}"
    r"\;=\; \underbrace{%d\times%d}_{z_0}" % (N, N, D, N, D, N + 1, D)
)
tokens, e_pos, position = data["tokens"], data["e_pos"], data["position"]
st.markdown(_("**Live numbers** — the first 3 of {d} dimensions, read from the traced tensors `tokens`, `e_pos` and "
              "`position`:").format(d=D))
for column, (label, row) in zip(st.columns(2), (("CLS", 0), (f"patch {sel}", 1 + sel))):
    column.latex(r"\text{%s}:\;\; \underbrace{%s}_{\text{token}} + \underbrace{%s}_{E_\text{pos}} = \underbrace{%s}_{z_0}"
                 % (label, vec(tokens[row]), vec(e_pos[row]), vec(position[row])))
st.caption(sentences(
    _("Row 0 is the learned class token x_class, the same for every image (equal to the checkpoint's `cls_token` up "
      "to {diff:.1e}); row 1+i is patch i's token from the projection page (your selected patch is {index}).").format(
        diff=data["cls_diff"], index=sel),
    _("max |z₀ − (tokens + E_pos)| = {diff:.1e}: the addition is all there is.").format(diff=data["sum_diff"]),
    _("The CLS token's final state is what a classifier reads."),
))
registers = model.config.registers
if registers:
    st.markdown(sentences(
        _("**Then the registers.** This model inserts {r} learned **register tokens** right after x_class, once E_pos "
          "has been added: the encoder reads {tokens:,} tokens, [x_class; reg₁…reg_{r}; patches].").format(
            r=registers, tokens=1 + registers + N),
        _("Registers have no position embedding and no patch — they are extra memory the model may use for global "
          "information (Darcet et al. 2024, *Vision Transformers Need Registers*)."),
    ))
    show_source(ViT.add_cls, ViT.add_position, ViT.add_registers)
else:
    show_source(ViT.add_cls, ViT.add_position)

# ---- 2. Similarity: learned vs 2-D sin-cos -------------------------------------------------------------------
st.header(_("Which positions look alike? (ViT paper Fig. 7 centre)"))
st.markdown(sentences(
    _("Normalise each position vector to length 1 and take dot products: S = Ê Êᵀ, a {n} × {n} matrix.").format(n=N),
    _("Tile *(row r, column c)* below is row r·{gw}+c of S drawn on the {gh}×{gw} grid: how similar every position "
      "is to that one.").format(gw=gw, gh=gh),
    _("Each tile is 1 at its own position. Hover for values; the red frame is your selected patch."),
))
left, right = st.columns(2)
with left:
    st.subheader(_("Learned (the checkpoint's E_pos)"))
    fig, stride, peaks = similarity_figure(f"{vin.cache_key}|learned", e_pos[1:], (gh, gw), HEIGHT, sel, language())
    st.plotly_chart(fig, key="sim_learned", config={"displayModeBar": False})
    if (gh, gw) != (g0, g0):
        added = _("As added at this {gh}×{gw} grid (interpolated, see below).")
    else:
        added = _("As added at this {gh}×{gw} grid.")
    st.caption(sentences(
        added.format(gh=gh, gw=gw),
        _("{share:.0%} of the tiles shown peak at their own position.").format(share=peaks),
        *([thinned_note(*stride)] if stride != (1, 1) else []),
    ))
with right:
    st.subheader(_("Fixed 2-D sin-cos (MAE / MoCo v3)"))
    if D % 4:
        st.warning(_("D = {d} is not divisible by 4, which 2-D sin-cos embeddings need.").format(d=D))
    else:
        fig, stride2 = similarity_figure(f"sincos|{gh}x{gw}|{D}", None, (gh, gw), HEIGHT, sel, language())[:2]
        st.plotly_chart(fig, key="sim_sincos", config={"displayModeBar": False})
        st.caption(sentences(
            _("Not learned: patch (r, c) gets [sin(c·ω), cos(c·ω), sin(r·ω), cos(r·ω)] with ω_k = 10000^(−4k/D), "
              "k < D/4 — MAE's get_2d_sincos_pos_embed."),
            _("Similarity falls off smoothly with distance, by construction, for any grid."),
            *([thinned_note(*stride2)] if stride2 != (1, 1) else []),
        ))
if trained:
    st.markdown(_("The learned embeddings were never told about rows and columns, yet training made nearby patches "
                  "similar and the tiles show row and column structure, as in the ViT paper."))
else:
    st.markdown(_("**Random weights:** the learned E_pos here is untrained noise, so each tile is 1 at its own "
                  "position and about 0 everywhere else: no notion of neighbourhood. With *Trained weights* you see the "
                  "row-and-column structure training produces (ViT paper Fig. 7 centre); the sin-cos panel shows that "
                  "structure built in by hand."))
show_source(emb.cosine_similarity, emb.similarity_tiles, emb.sincos_2d)

# ---- 3. No position embedding: the shuffle test -----------------------------------------------------------------
st.header(_("No position embedding: a bag of patches"))
st.markdown(sentences(
    _("Self-attention and the MLP treat every token the same way, whatever its place in the sequence. So if the "
      "patches are shuffled and there is no E_pos, each output is the same vector as before, just moved — and the CLS "
      "token, which attends to all of them, comes out **identical**: the model cannot tell the two images apart."),
    _("Here is the real model on your tokens, with a fixed random shuffle Π of the patches (CLS stays first)."),
))
layers = st.columns([2, 3])[0].select_slider(
    _("Encoder layers to run"), options=list(range(1, len(model.blocks) + 1)), value=1, key="pos_layers",
    help=_("Each layer costs one forward pass of 4 sequences on this machine; 1 is enough to see it."))
original_jpeg, shuffled_jpeg = photo_pair(vin.cache_key, vin.shown, P, N)
img_l, img_r, nums = st.columns([1, 1, 1.3])
picture(img_l, original_jpeg, width="stretch", caption=_("your image (whole patches)"))
picture(img_r, shuffled_jpeg, width="stretch", caption=_("the same patches, shuffled by Π"))
with nums:
    if N + 1 > emb.MAX_LAYER_TOKENS:
        st.info(sentences(
            _("{tokens:,} tokens are too many to run the encoder on interactively (attention grows with the square of "
              "the sequence length).").format(tokens=N + 1),
            _("Choose a larger patch size or a lower resolution to run the test."),
        ), icon=":material/speed:")
    else:
        with st.spinner(ngettext("Running {n} layer on 4 × {tokens:,} tokens…",
                                 "Running {n} layers on 4 × {tokens:,} tokens…", layers).format(n=layers, tokens=N + 1),
                        show_time=True):
            result = shuffle_result(vin.cache_key, layers, model, tokens, e_pos)
        st.markdown(ngettext("Change after {n} layer, relative (‖a − b‖ / ‖b‖):",
                             "Change after {n} layers, relative (‖a − b‖ / ‖b‖):", result.layers).format(n=result.layers))
        without, with_pos = _("**without E_pos**"), _("**with E_pos**")
        st.markdown(
            _("| | all tokens: f(Πx) vs Πf(x) | CLS output |") + "\n|---|---|---|\n"
            f"| {without} | {result.without_pos:.1e} | {result.cls_without_pos:.1e} |\n"
            f"| {with_pos} | {result.with_pos:.1e} | {result.cls_with_pos:.1e} |"
        )
        st.caption(sentences(
            _("About 1e-7 is float32 rounding: without E_pos, shuffling the patches only shuffles the outputs."),
            _("With E_pos, the shuffled image is a different input."),
        ))
show_source(emb.shuffle_test)

# ---- 4. Interpolation to the current grid -------------------------------------------------------------------
st.header(_("Interpolation: from the checkpoint's {g0}×{g0} grid to {gh}×{gw}").format(g0=g0, gh=gh, gw=gw))
native = emb.native_position_grid(model)[0]
if (gh, gw) == (g0, g0):
    st.info(sentences(
        _("This input makes a {gh}×{gw} grid, the checkpoint's own: E_pos is used as trained.").format(gh=gh, gw=gw),
        _("Change the patch size, the resolution or turn on *Keep the photo's aspect ratio* to see it interpolated."),
    ), icon=":material/info:")
else:
    if model.config.antialias:
        resize = _("For {gh}×{gw}, each of the {d} dimensions is treated as a {g0}×{g0} image and resized "
                   "**bicubically** to {gh}×{gw} (`align_corners=False`, **with antialias**, as DINOv2 with registers "
                   "was trained, height and width separately so a non-square grid keeps its aspect) — as transformers "
                   "5.x does with `interpolate_pos_encoding=True`.")
    else:
        resize = _("For {gh}×{gw}, each of the {d} dimensions is treated as a {g0}×{g0} image and resized "
                   "**bicubically** to {gh}×{gw} (`align_corners=False`, no antialias, height and width separately so "
                   "a non-square grid keeps its aspect) — as transformers 5.x does with "
                   "`interpolate_pos_encoding=True`.")
    st.markdown(sentences(
        _("The checkpoint has position vectors for a {g0}×{g0} grid only.").format(g0=g0),
        resize.format(gh=gh, gw=gw, d=D, g0=g0),
        _("The CLS entry is kept as is."),
        _("(Original DINO adds 0.1 to the size as a floating-point workaround and timm antialiases: their numbers "
          "differ by a few percent.)"),
    ))
    left, right = st.columns(2)
    with left:
        st.subheader(_("Checkpoint: {g0}×{g0}").format(g0=g0))
        fig = similarity_figure(f"{ctx.model_key}|{getattr(original, 'source', '')}|native",
                                native.float().cpu().numpy(), (g0, g0), HEIGHT, None, language())[0]
        st.plotly_chart(fig, key="sim_native", config={"displayModeBar": False})
    with right:
        st.subheader(_("Interpolated: {gh}×{gw}").format(gh=gh, gw=gw))
        fig = similarity_figure(f"{vin.cache_key}|learned", e_pos[1:], (gh, gw), HEIGHT, sel, language())[0]
        st.plotly_chart(fig, key="sim_interp", config={"displayModeBar": False})
    grows = gh * gw > g0 * g0
    if grows:
        text = sentences(
            _("Enlarging keeps the pattern but spreads it: each new position is a bicubic mix of its nearest "
              "checkpoint positions, so neighbours become more alike than in the checkpoint."),
            *([] if trained else [_("With random weights the checkpoint's tiles are single dots; after enlarging "
                                    "they become small blobs — that smoothness comes from the interpolation alone.")]),
        )
    elif model.config.antialias:
        text = _("Shrinking samples the checkpoint's grid more coarsely (bicubic, antialiased): each new position mixes "
                 "the checkpoint positions around it, and the map of each tile gets coarser.")
    else:
        text = _("Shrinking samples the checkpoint's grid more coarsely (bicubic, no antialias): each new position "
                 "mixes the checkpoint positions around it, and the map of each tile gets coarser.")
    st.caption(text)
show_source(ViT.position_embeddings)
stage_footer("position")
