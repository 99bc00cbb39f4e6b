"""Stage 4 · Position embeddings: prepend x_class, add E_pos (ViT Eq. 1, Fig. 7 centre), interpolated to the grid."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from PIL import Image

from ui.shell import context, get_model, selected_patch, show_notes, show_source, stage_footer, stage_header, vit_input
from vitviz import embeddings as emb
from vitviz.models.vit import ViT
from vitviz.viz import embeddings as viz


def picture(where, data: bytes, **kwargs) -> None:
    """st.image of encoded bytes, sent as they are (no re-encoding by Streamlit)."""
    where.image(data, output_format=viz.image_format(data), **kwargs)


ctx = context()
vin = vit_input(ctx)
model = vin.model
original, _ = get_model(ctx.model_name, ctx.pretrained)
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
def similarity_figure(key: str, _pos: np.ndarray | None, grid: tuple[int, int], height: int, selected: int | None) -> tuple:
    """Tiled cosine-similarity heatmap (ViT Fig. 7 centre) of position embeddings (N, D) on `grid`.

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
    return (viz.encode(Image.fromarray(pixels[: gh * patch, : gw * patch]), photo=True),
            viz.encode(Image.fromarray(shuffled), photo=True))


@st.cache_data(max_entries=32, show_spinner=False)
def shuffle_result(cache_key: str, layers: int, _model, _tokens: np.ndarray, _e_pos: np.ndarray) -> emb.ShuffleResult:
    device = next(_model.parameters()).device
    return emb.shuffle_test(_model, torch.from_numpy(_tokens)[None].to(device), torch.from_numpy(_e_pos)[None].to(device), layers)


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def thinned_note(stride: int, inner: int) -> str:
    """What a thinned similarity chart leaves out, in words."""
    parts = ([f"a tile for every {ordinal(stride)} row and column of positions"] if stride > 1 else []) + (
        [f"every {ordinal(inner)} position inside each tile"] if inner > 1 else [])
    return f" To stay under 400 KB it shows {' and '.join(parts)}."


def vec(values: np.ndarray, k: int = 3) -> str:
    """LaTeX column vector of the first k values."""
    return r"\begin{bmatrix}" + r" \\ ".join(f"{v:+.3f}" for v in values[:k]) + r" \\ \vdots\end{bmatrix}"


stage_header(
    "position",
    "Attention treats its input as a **set**: shuffle the tokens and it returns the same vectors, shuffled. So before "
    "the encoder, ViT puts a learned **class token** in front and **adds** a position vector to every token, telling "
    "the model where each patch was. This page shows both with your image's numbers, what the position vectors "
    "have in common, how they are stretched to a new grid, and what happens without them.",
)
show_notes(vin)
data = position_data(vin.cache_key, model, vin.pixel_values)
shapes = data["shapes"]
sel = selected_patch(vin)

# ---- 1. z0 = [x_class; x_p E] + E_pos -----------------------------------------------------------------------
st.header("Prepend x_class, add E_pos")
m = st.columns([1.1, 1, 1.1, 0.9, 1.3])
m[0].metric("Patch grid", f"{gh} × {gw}", help=f"{gh * P}×{gw * P} px read in {P}×{P} patches")
m[1].metric("Patch tokens N", f"{shapes['embeddings'][1]:,}")
m[2].metric("Sequence length 1+N", f"{shapes['position'][1]:,}")
m[3].metric("Token width D", f"{shapes['position'][2]}")
m[4].metric("E_pos shape", f"({shapes['e_pos'][1]}, {shapes['e_pos'][2]})")
st.latex(
    r"z_0 = \big[\,x_\text{class};\; x_p^1E;\; \dots;\; x_p^{%d}E\,\big] + E_\text{pos}"
    r"\qquad \underbrace{(1+%d)\times%d}_{\text{tokens}} \;+\; \underbrace{(1+%d)\times%d}_{E_\text{pos}}"
    r"\;=\; \underbrace{%d\times%d}_{z_0}" % (N, N, D, N, D, N + 1, D)
)
tokens, e_pos, position = data["tokens"], data["e_pos"], data["position"]
st.markdown(f"**Live numbers** — the first 3 of {D} dimensions, read from the traced tensors `tokens`, `e_pos` and `position`:")
for column, (label, row) in zip(st.columns(2), (("CLS", 0), (f"patch {sel}", 1 + sel))):
    column.latex(r"\text{%s}:\;\; \underbrace{%s}_{\text{token}} + \underbrace{%s}_{E_\text{pos}} = \underbrace{%s}_{z_0}"
                 % (label, vec(tokens[row]), vec(e_pos[row]), vec(position[row])))
st.caption(
    f"Row 0 is the learned class token x_class, the same for every image (equal to the checkpoint's `cls_token` up to "
    f"{data['cls_diff']:.1e}); row 1+i is patch i's token from the projection page (your selected patch is {sel}). "
    f"max |z₀ − (tokens + E_pos)| = {data['sum_diff']:.1e}: the addition is all there is. "
    "The CLS token's final state is what a classifier reads."
)
registers = model.config.registers
if registers:
    st.markdown(
        f"**Then the registers.** This model inserts {registers} learned **register tokens** right after x_class, once "
        f"E_pos has been added: the encoder reads {1 + registers + N:,} tokens, [x_class; reg₁…reg_{registers}; patches]. "
        "Registers have no position embedding and no patch — they are extra memory the model may use for global "
        "information (Darcet et al. 2024, *Vision Transformers Need Registers*).")
    show_source(ViT.add_cls, ViT.add_position, ViT.add_registers)
else:
    show_source(ViT.add_cls, ViT.add_position)

# ---- 2. Similarity: learned vs 2-D sin-cos -------------------------------------------------------------------
st.header("Which positions look alike? (ViT paper Fig. 7 centre)")
st.markdown(
    f"Normalise each position vector to length 1 and take dot products: S = Ê Êᵀ, a {N} × {N} matrix. Tile *(row r, "
    f"column c)* below is row r·{gw}+c of S drawn on the {gh}×{gw} grid: how similar every position is to that one. "
    "Each tile is 1 at its own position. Hover for values; the red frame is your selected patch."
)
left, right = st.columns(2)
with left:
    st.subheader("Learned (the checkpoint's E_pos)")
    fig, stride, peaks = similarity_figure(f"{vin.cache_key}|learned", e_pos[1:], (gh, gw), HEIGHT, sel)
    st.plotly_chart(fig, key="sim_learned", config={"displayModeBar": False})
    st.caption(
        f"As added at this {gh}×{gw} grid{' (interpolated, see below)' if (gh, gw) != (g0, g0) else ''}. "
        f"{100 * peaks:.0f}% of the tiles shown peak at their own position."
        + (thinned_note(*stride) if stride != (1, 1) else "")
    )
with right:
    st.subheader("Fixed 2-D sin-cos (MAE / MoCo v3)")
    if D % 4:
        st.warning(f"D = {D} is not divisible by 4, which 2-D sin-cos embeddings need.")
    else:
        fig, stride2, _ = similarity_figure(f"sincos|{gh}x{gw}|{D}", None, (gh, gw), HEIGHT, sel)
        st.plotly_chart(fig, key="sim_sincos", config={"displayModeBar": False})
        st.caption("Not learned: patch (r, c) gets [sin(c·ω), cos(c·ω), sin(r·ω), cos(r·ω)] with ω_k = 10000^(−4k/D), "
                   "k < D/4 — MAE's get_2d_sincos_pos_embed. Similarity falls off smoothly with distance, by "
                   "construction, for any grid." + (thinned_note(*stride2) if stride2 != (1, 1) else ""))
if trained:
    st.markdown("The learned embeddings were never told about rows and columns, yet training made nearby patches "
                "similar and the tiles show row and column structure, as in the ViT paper.")
else:
    st.markdown("**Random weights:** the learned E_pos here is untrained noise, so each tile is 1 at its own position "
                "and about 0 everywhere else: no notion of neighbourhood. With *Trained weights* you see the "
                "row-and-column structure training produces (ViT paper Fig. 7 centre); the sin-cos panel shows that "
                "structure built in by hand.")
show_source(emb.cosine_similarity, emb.similarity_tiles, emb.sincos_2d)

# ---- 3. No position embedding: the shuffle test -----------------------------------------------------------------
st.header("No position embedding: a bag of patches")
st.markdown(
    "Self-attention and the MLP treat every token the same way, whatever its place in the sequence. So if the patches "
    "are shuffled and there is no E_pos, each output is the same vector as before, just moved — and the CLS token, "
    "which attends to all of them, comes out **identical**: the model cannot tell the two images apart. "
    "Here is the real model on your tokens, with a fixed random shuffle Π of the patches (CLS stays first)."
)
layers = st.columns([2, 3])[0].select_slider(
    "Encoder layers to run", options=list(range(1, len(model.blocks) + 1)), value=1, key="pos_layers",
    help="Each layer costs one forward pass of 4 sequences on this machine; 1 is enough to see it.")
original_jpeg, shuffled_jpeg = photo_pair(vin.cache_key, vin.shown, P, N)
img_l, img_r, nums = st.columns([1, 1, 1.3])
picture(img_l, original_jpeg, width="stretch", caption="your image (whole patches)")
picture(img_r, shuffled_jpeg, width="stretch", caption="the same patches, shuffled by Π")
with nums:
    if N + 1 > emb.MAX_LAYER_TOKENS:
        st.info(f"{N + 1:,} tokens are too many to run the encoder on interactively (attention grows with the square "
                "of the sequence length). Choose a larger patch size or a lower resolution to run the test.",
                icon=":material/speed:")
    else:
        with st.spinner(f"Running {layers} layer{'s' if layers > 1 else ''} on 4 × {N + 1:,} tokens…", show_time=True):
            result = shuffle_result(vin.cache_key, layers, model, tokens, e_pos)
        st.markdown(f"Change after {result.layers} layer{'s' if result.layers > 1 else ''}, relative (‖a − b‖ / ‖b‖):")
        st.markdown(
            "| | all tokens: f(Πx) vs Πf(x) | CLS output |\n|---|---|---|\n"
            f"| **without E_pos** | {result.without_pos:.1e} | {result.cls_without_pos:.1e} |\n"
            f"| **with E_pos** | {result.with_pos:.1e} | {result.cls_with_pos:.1e} |"
        )
        st.caption("About 1e-7 is float32 rounding: without E_pos, shuffling the patches only shuffles the outputs. "
                   "With E_pos, the shuffled image is a different input.")
show_source(emb.shuffle_test)

# ---- 4. Interpolation to the current grid -------------------------------------------------------------------
st.header(f"Interpolation: from the checkpoint's {g0}×{g0} grid to {gh}×{gw}")
native, _ = emb.native_position_grid(model)
if (gh, gw) == (g0, g0):
    st.info(f"This input makes a {gh}×{gw} grid, the checkpoint's own: E_pos is used as trained. Change the patch size, "
            "the resolution or turn on *Keep the photo's aspect ratio* to see it interpolated.", icon=":material/info:")
else:
    st.markdown(
        f"The checkpoint has position vectors for a {g0}×{g0} grid only. For {gh}×{gw}, each of the {D} dimensions is "
        f"treated as a {g0}×{g0} image and resized **bicubically** to {gh}×{gw} (`align_corners=False`, "
        + ("**with antialias**, as DINOv2 with registers was trained" if model.config.antialias else "no antialias")
        + ", height and width separately so a non-square grid keeps its aspect) — as transformers 5.x does with "
        "`interpolate_pos_encoding=True`. The CLS entry is kept as is. (Original DINO adds 0.1 to the size as a "
        "floating-point workaround and timm antialiases: their numbers differ by a few percent.)"
    )
    left, right = st.columns(2)
    with left:
        st.subheader(f"Checkpoint: {g0}×{g0}")
        fig, _, _ = similarity_figure(f"{ctx.model_key}|{getattr(original, 'source', '')}|native", native.float().cpu().numpy(),
                                          (g0, g0), HEIGHT, None)
        st.plotly_chart(fig, key="sim_native", config={"displayModeBar": False})
    with right:
        st.subheader(f"Interpolated: {gh}×{gw}")
        fig, _, _ = similarity_figure(f"{vin.cache_key}|learned", e_pos[1:], (gh, gw), HEIGHT, sel)
        st.plotly_chart(fig, key="sim_interp", config={"displayModeBar": False})
    grows = gh * gw > g0 * g0
    st.caption(
        ("Enlarging keeps the pattern but spreads it: each new position is a bicubic mix of its nearest checkpoint "
         "positions, so neighbours become more alike than in the checkpoint."
         + (" With random weights the checkpoint's tiles are single dots; after enlarging they become small blobs — "
            "that smoothness comes from the interpolation alone." if not trained else ""))
        if grows else
        (f"Shrinking samples the checkpoint's grid more coarsely (bicubic, {'antialiased' if model.config.antialias else 'no antialias'}): each new position mixes the "
         "checkpoint positions around it, and the map of each tile gets coarser.")
    )
show_source(ViT.position_embeddings)
stage_footer("position")
