"""What the Overview, Patching and Flattening pages compute: the model's own patches of an input, the shapes of the
embedding stages, and every number those pages quote (no plotting, no streamlit).

ViT paper (Dosovitskiy et al. 2021) §3.1: the image x ∈ R^{H×W×C} is cut into N = HW/P² patches, flattened
to x_p ∈ R^{N×(P²·C)}. Our ViT slices off the pixels beyond the last whole patch (as Conv2d(kernel = stride = P)
does), so N = ⌊H/P⌋·⌊W/P⌋, and flattens each patch in (p1 p2 c) order.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .explain import STEPS
from .trace import trace
from .viz.patches import CHANNEL_NAMES, PatchGrid, denormalize, gallery_layout, gallery_window, matrix_extent
from .weights import is_trained

PATCH_SIZES = range(4, 65)  # the sidebar's patch-size slider
GALLERY_TILES = 324  # gallery tiles drawn at most: more would be neither readable nor light (payload)
MATRIX_PX = 860  # the matrix picture's width at most: the main column at 1400 px with the sidebar open
MATRIX_DOWNLOAD_MAX = 1_000_000  # values: beyond this the matrix is only offered as code, not as a file


@dataclass(frozen=True)
class Patches:
    """The model's patchify/flatten outputs for one input, as numpy, plus their [0, 1] display versions."""

    input_shape: tuple[int, ...]  # pixel_values (1, C, H, W)
    patches: np.ndarray  # (gh, gw, P, P, C): the model's values (normalised)
    flat: np.ndarray  # (N, P·P·C) in (p1 p2 c) order: the model's values
    patches01: np.ndarray  # patches de-normalised to [0, 1] for display
    flat01: np.ndarray  # flat de-normalised to [0, 1] for display

    @property
    def grid(self) -> PatchGrid:
        return PatchGrid(self.input_shape[2], self.input_shape[3], self.patches.shape[2])

    @property
    def channels(self) -> int:
        """C, the input's channels."""
        return self.input_shape[1]

    @property
    def length(self) -> int:
        """P²·C, the length of one flattened patch."""
        return self.flat.shape[1]


def cut_patches(model: nn.Module, pixel_values: torch.Tensor) -> Patches:
    """The input cut and flattened by the model's own `patchify` and `flatten`, read-only numpy arrays.

    pixel_values (1, C, H, W) -> patches (gh, gw, P, P, C), flat (N, P²·C) and their [0, 1] versions.
    """
    # The same calls and Tap outputs `trace(model, x, include=["patches", "flat"])` records, without running the
    # encoder layers after them (tests/test_page_patching.py checks they are equal).
    with torch.inference_mode():
        patches = model.patchify(pixel_values)
        flat = model.flatten(patches)
    prep = model.preprocessing
    patches_np = patches[0].float().cpu().numpy()
    flat_np = flat[0].float().cpu().numpy()
    n, c = flat_np.shape[0], patches_np.shape[-1]
    patches01 = denormalize(patches_np, prep.mean, prep.std)
    flat01 = denormalize(flat_np.reshape(n, -1, c), prep.mean, prep.std).reshape(n, -1)
    for array in (patches_np, flat_np, patches01, flat01):
        array.setflags(write=False)
    return Patches(tuple(pixel_values.shape), patches_np, flat_np, patches01, flat01)


@dataclass(frozen=True)
class SelectedPatch:
    """Where the selected patch sits: its grid cell and the pixels it covers (last ones included)."""

    index: int  # raster index i = row · gw + col
    row: int  # grid row r
    col: int  # grid column q
    top: int  # first pixel row y it covers
    left: int  # first pixel column x it covers
    bottom: int  # last pixel row y it covers (inclusive)
    right: int  # last pixel column x it covers (inclusive)


def select(grid: PatchGrid, index: int) -> SelectedPatch:
    """The patch at raster `index` of `grid` (IndexError outside 0 … N-1)."""
    row, col = grid.cell(index)
    top, left, bottom, right = grid.box(index)
    return SelectedPatch(int(index), row, col, top, left, bottom - 1, right - 1)


@dataclass(frozen=True)
class Division:
    """size = quotient · P + remainder: how a side of the input splits into whole patches."""

    size: int  # the side, px
    quotient: int  # whole patches along it
    remainder: int  # pixels left over (dropped), 0 … P-1


@dataclass(frozen=True)
class Gallery:
    """Which patches the gallery draws and how it lays them out."""

    shown: range  # raster indices drawn: whole gallery lines around the selected patch
    per_line: int  # tiles per gallery line
    tile: int  # tile side, px
    enlarged: int  # tile // P: the nearest-neighbour enlargement (1: actual size)
    wraps: bool  # a grid row is longer than a gallery line, so lines are not the grid's rows
    hidden: int  # patches not drawn


@dataclass(frozen=True, eq=False)
class PatchingView:
    """Everything the Patching page shows for one input and one selected patch."""

    patches: Patches  # the model's own patches of the input
    height: Division  # H = ⌊H/P⌋ · P + dropped rows
    width: Division  # W = ⌊W/P⌋ · P + dropped columns
    dropped_share: float  # dropped pixels / (H · W)
    fits: tuple[int, ...]  # the slider's patch sizes that divide both H and W (drop nothing)
    tokens: int  # N + 1: the patch tokens and CLS
    pairs: int  # (N + 1)²: token pairs attention compares per head and layer
    selected: SelectedPatch  # the selected patch
    patch01: np.ndarray  # (P, P, C) the selected patch in [0, 1], for the zoom
    gallery: Gallery  # the gallery's window and layout

    @property
    def grid(self) -> PatchGrid:
        return self.patches.grid


def patching_view(patches: Patches, selected: int) -> PatchingView:
    """The Patching page's numbers for `patches` with patch `selected` chosen."""
    grid = patches.grid
    h, w, p = grid.height, grid.width, grid.patch
    where = select(grid, selected)
    per_line, tile = gallery_layout(grid)
    shown = gallery_window(grid, selected, GALLERY_TILES)
    gallery = Gallery(shown, per_line, tile, tile // p, per_line < grid.cols, grid.n - len(shown))
    return PatchingView(
        patches=patches, height=Division(h, *divmod(h, p)), width=Division(w, *divmod(w, p)),
        dropped_share=grid.dropped_pixels / (h * w),
        fits=tuple(q for q in PATCH_SIZES if h % q == 0 and w % q == 0),
        tokens=grid.n + 1, pairs=(grid.n + 1) ** 2, selected=where, patch01=patches.patches01[where.row, where.col],
        gallery=gallery,
    )


@dataclass(frozen=True, eq=False)
class FlatteningView:
    """Everything the Flattening page shows for one input and one selected patch."""

    patches: Patches  # the model's own patches of the input
    selected: SelectedPatch  # the selected patch
    patch01: np.ndarray  # (P, P, C) the selected patch in [0, 1], for the zoom
    vector: np.ndarray  # (P²·C,) the selected patch's row of flat: the values the model reads
    vector01: np.ndarray  # (P²·C,) the same de-normalised to [0, 1], for colour
    strip: int  # numbers the strip shows: the first four pixels' channels, at most P²·C
    line: int  # P·C: numbers per wrapped line (one row p1 of the patch)
    kept: tuple[int, int]  # (gh·P, gw·P): the pixels `patchify` slices the input to
    matrix_box: tuple[int, int]  # (width, height) px the matrix picture may take
    matrix_px: tuple[int, int]  # (width, height) px the matrix takes in it
    averaged: bool  # the matrix has more rows or columns than the picture has pixels
    values: int  # N · P²·C, the matrix's values
    mib: float  # the matrix as float32, MiB
    downloadable: bool  # the matrix is small enough to offer as a file


def flattening_view(patches: Patches, selected: int) -> FlatteningView:
    """The Flattening page's numbers for `patches` with patch `selected` chosen."""
    grid = patches.grid
    n, k = patches.flat.shape
    p, c = grid.patch, patches.channels
    box = (MATRIX_PX, int(min(520, max(160, n * 2))))
    where = select(grid, selected)
    return FlatteningView(
        patches=patches, selected=where, patch01=patches.patches01[where.row, where.col],
        vector=patches.flat[selected], vector01=patches.flat01[selected], strip=min(4 * c, k), line=p * c,
        kept=(grid.rows * p, grid.cols * p), matrix_box=box, matrix_px=matrix_extent(n, k, box),
        averaged=k > box[0] or n > box[1], values=n * k, mib=n * k * 4 / 2**20,
        downloadable=n * k <= MATRIX_DOWNLOAD_MAX,
    )


def vector_csv(vector: np.ndarray, patch: int, channels: int) -> str:
    """One flattened patch (P²·C,) as CSV, one line per element: k, p1, p2, c and the value the model reads."""
    names = CHANNEL_NAMES if channels == 3 else [str(i) for i in range(channels)]
    lines = [f"{j},{j // (patch * channels)},{j // channels % patch},{names[j % channels]},{v:.7g}"
             for j, v in enumerate(vector)]
    return "k,p1,p2,c,value\n" + "\n".join(lines) + "\n"


def matrix_csv(array: np.ndarray) -> str:
    """A 2-D array as CSV, one line per row, 6 significant digits."""
    buf = io.StringIO()
    np.savetxt(buf, array, delimiter=",", fmt="%.6g")
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    """An array as a float32 .npy file."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array, dtype=np.float32))
    return buf.getvalue()


@dataclass(frozen=True)
class PipelineShapes:
    """The shapes of the embedding stages for one input, read from the real stage methods, and the model's sizes
    the overview quotes."""

    input: tuple[int, ...]  # pixel_values (1, C, H, W)
    patches: tuple[int, ...]  # patchify (1, gh, gw, P, P, C)
    flat: tuple[int, ...]  # flatten (1, N, P²·C)
    embeddings: tuple[int, ...]  # projection (1, N, D)
    position: tuple[int, ...]  # CLS and E_pos added (1, 1+N, D)
    height: int  # H
    width: int  # W
    rows: int  # gh = ⌊H/P⌋, the grid's rows
    cols: int  # gw = ⌊W/P⌋, the grid's columns
    n: int  # N = gh · gw, the patches
    tokens: int  # the encoder's sequence length 1 + R + N (the registers join after E_pos)
    channels: int  # C
    patch: int  # P
    dim: int  # D
    depth: int  # encoder layers
    heads: int  # attention heads per layer
    registers: int  # R register tokens (DINOv2 with registers), 0 for most models
    steps: int  # points of the deletion / insertion curves
    trained: bool  # checkpoint weights (hub repo or folder), not a random preset


def pipeline_shapes(model: nn.Module, pixel_values: torch.Tensor) -> PipelineShapes:
    """pixel_values (1, C, H, W) -> the shapes of the embedding stages, run through the real stage methods (no
    encoder: cheap at any size), and the model's sizes."""
    t = trace(model, pixel_values, include=["patches", "flat", "embeddings", "position"], method="embed")
    c = model.config
    _, _, height, width = pixel_values.shape
    _, rows, cols, *_ = t["patches"].shape
    return PipelineShapes(
        input=tuple(pixel_values.shape), patches=tuple(t["patches"].shape), flat=tuple(t["flat"].shape),
        embeddings=tuple(t["embeddings"].shape), position=tuple(t["position"].shape), height=height, width=width,
        rows=rows, cols=cols, n=rows * cols, tokens=t["position"].shape[1] + c.registers,
        channels=c.channels, patch=c.patch_size, dim=c.dim, depth=c.depth, heads=c.heads, registers=c.registers,
        steps=len(STEPS), trained=is_trained(model),
    )
