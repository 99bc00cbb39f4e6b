"""Computations behind the "Linear projection" and "Position embeddings" pages (no plotting, no streamlit).

ViT paper (Dosovitskiy et al. 2021) §3.1 Eq. 1, z_0 = [x_class; x_p¹E; …; x_pᴺE] + E_pos, and Fig. 7 (left: principal
components of the patch filters E; centre: cosine similarity of the position embeddings). The 2-D sin-cos
embeddings are those of MAE (He et al. 2022, `util/pos_embed.py: get_2d_sincos_pos_embed`), which MoCo v3 also uses.
Every function takes and returns plain tensors / arrays; `projection_stage` and `position_stage` gather, in one
frozen result each, every array and number those pages draw or quote.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from .models.vit import ViTConfig
from .trace import trace
from .weights import is_trained

if TYPE_CHECKING:
    from PIL import Image

EMBED_TAPS = ("flat", "embeddings", "tokens", "e_pos", "position")
MAX_LAYER_TOKENS = 4097  # longest sequence the pages run encoder layers on (P = 4 at 224 px: 3137 tokens)


def embedding_trace(model, pixel_values: Tensor) -> dict[str, Tensor]:
    """Record the taps of Eq. 1 while running only `model.embed` (no encoder layers, so a slider move stays cheap).

    Returns {"flat" (b, N, P²C), "embeddings" (b, N, D), "tokens" (b, 1+N, D), "e_pos" (1, 1+N, D),
    "position" (b, 1+N, D)}, detached, on the model's device.
    """
    return trace(model, pixel_values, include=list(EMBED_TAPS), method="embed").records


def conv_tokens(model, pixel_values: Tensor) -> Tensor:
    """The checkpoint's own Conv2d(kernel = stride = P) on the image, as tokens: (b, C, H, W) -> (b, N, D).

    This is what transformers' ViTPatchEmbeddings computes: `projection(x).flatten(2).transpose(1, 2)`.
    """
    with torch.inference_mode():
        return rearrange(model.patch_embed(pixel_values), "b d h w -> b (h w) d")


def max_abs_difference(a: Tensor, b: Tensor) -> float:
    """max |a − b| over all entries, in float64."""
    return float((a.double() - b.double()).abs().max())


@dataclass(frozen=True)
class PCA:
    """Principal components of the rows of a matrix (rows are samples)."""

    components: np.ndarray  # (k, features), orthonormal rows: Vᵀ[:k]
    explained: np.ndarray  # (k,) fraction of the total variance along each component
    mean: np.ndarray  # (features,) the mean row that was subtracted


def pca(x: Tensor, k: int) -> PCA:
    """PCA of the rows of x (n, f): the top right-singular vectors Vᵀ[:k] of the centred matrix X − mean.

    Computed in float64 from the smaller Gram matrix (the same Vᵀ and singular values as the SVD, and
    ~10× faster for a 384 × 12 288 filter matrix): with f ≤ n, eigh(XᵀX) = V S² Vᵀ; otherwise
    eigh(XXᵀ) = U S² Uᵀ and Vᵀ = S⁻¹UᵀX. k is clipped to the number of non-zero singular values.
    Signs are fixed so each component's largest-magnitude entry is positive (SVD signs are arbitrary).
    """
    x = x.detach().double().cpu()
    mean = x.mean(0)
    centred = x - mean
    n, f = centred.shape
    if f <= n:
        values, vectors = torch.linalg.eigh(centred.T @ centred)
        var, vt = values.flip(0).clamp_min(0), vectors.flip(1).T
    else:
        values, u = torch.linalg.eigh(centred @ centred.T)
        var, u = values.flip(0).clamp_min(0), u.flip(1)
        rank = int((var > var[0] * 1e-10).sum()) if var[0] > 0 else 0
        var, u = var[:rank], u[:, :rank]
        vt = (u.T @ centred) / var.sqrt()[:, None]
    k = max(1, min(k, vt.shape[0]))
    vt = vt[:k]
    idx = vt.abs().argmax(1)
    signs = torch.sign(vt[torch.arange(k), idx])
    signs[signs == 0] = 1
    vt = vt * signs[:, None]
    total = float(var.sum())
    explained = (var[:k] / total).numpy() if total > 0 else np.zeros(k)
    return PCA(vt.numpy(), explained, mean.numpy())


def filter_pca(weight: Tensor, k: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """ViT Fig. 7 left: principal components of the patch filters.

    weight (D, C, P, P), the Conv2d kernel; X = W.reshape(D, C·P·P), rows centred, SVD, components
    Vᵀ[:k].reshape(k, C, P, P). Returns (components (k, C, P, P), explained-variance fractions (k,)).
    """
    d, c, p = weight.shape[:3]
    result = pca(weight.reshape(d, c * p * p), k)
    return result.components.reshape(-1, c, p, p), result.explained


def robust_unit(x: np.ndarray, axis=None, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Scale x to [0, 1] between its `low` and `high` percentiles (along `axis`), clipping the rest."""
    lo = np.percentile(x, low, axis=axis, keepdims=True)
    hi = np.percentile(x, high, axis=axis, keepdims=True)
    return np.clip((x - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)


def tokens_pca_rgb(tokens: Tensor, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The tokens' first three principal components as RGB over the patch grid.

    tokens (N, D) in raster order -> (rgb (gh, gw, 3) in [0, 1], explained-variance fractions (3,)).
    Each channel is one component's score, scaled between its 1st and 99th percentile.
    """
    result = pca(tokens, 3)
    scores = (tokens.detach().double().cpu().numpy() - result.mean) @ result.components.T  # (N, k)
    if scores.shape[1] < 3:
        scores = np.pad(scores, ((0, 0), (0, 3 - scores.shape[1])))
    rgb = robust_unit(scores, axis=0).reshape(*grid, 3)
    return rgb.astype(np.float32), result.explained


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 (rounded half up, as a picture shows them)."""
    return (np.clip(unit, 0, 1) * 255 + 0.5).astype(np.uint8)


def normalise_filters(filters: np.ndarray) -> np.ndarray:
    """(k, C, P, P) -> (k, P, P, C) in [0, 1], each filter min-max scaled on its own (as ViT Fig. 7 shows them)."""
    f = np.asarray(filters, dtype=np.float64)
    lo = f.min(axis=(1, 2, 3), keepdims=True)
    hi = f.max(axis=(1, 2, 3), keepdims=True)
    unit = (f - lo) / np.maximum(hi - lo, 1e-12)
    return unit.transpose(0, 2, 3, 1).astype(np.float32)


def cosine_similarity(pos: Tensor) -> np.ndarray:
    """ViT Fig. 7 centre: S = Ê Êᵀ for position embeddings pos (N, D), rows L2-normalised -> (N, N) float32."""
    e = F.normalize(pos.detach().double().cpu(), dim=-1)
    return (e @ e.T).float().numpy()


def tile_queries(grid: tuple[int, int], stride: int = 1) -> list[int]:
    """Raster indices of the positions that get a tile in `similarity_tiles`, in tile order."""
    gh, gw = grid
    return [r * gw + c for r in range(0, gh, stride) for c in range(0, gw, stride)]


def similarity_to(pos: Tensor | np.ndarray, queries: list[int]) -> np.ndarray:
    """Rows `queries` of S = Ê Êᵀ (pos (N, D)) without forming the N × N matrix: (len(queries), N) float32."""
    e = F.normalize(torch.as_tensor(pos).detach().double().cpu(), dim=-1)
    return (e[queries] @ e.T).float().numpy()


@dataclass(frozen=True)
class SimilarityStructure:
    """What rows of S = Ê Êᵀ say about the grid (ViT Fig. 7 centre, in numbers): whether similar positions are
    near each other. Computed from the rows a similarity chart draws (`similarity_structure`)."""

    queries: np.ndarray  # (q,) raster indices of the positions whose rows of S were taken
    nearest: np.ndarray  # (q,) raster index of each one's most similar other position (-1 on a one-position grid)
    nearest_cosine: np.ndarray  # (q,) that cosine similarity (nan on a one-position grid)
    own_peaks: float  # share of the rows whose maximum is at their own position
    neighbour_share: float  # share of the rows whose most similar other position is a row or column neighbour
    distance_correlation: float  # Pearson r of cosine with grid distance over all (query, other position) pairs
    same_line: float  # mean cosine to the other positions of the query's row or column (nan when there are none)
    elsewhere: float  # mean cosine to the positions in neither its row nor its column (nan when there are none)


STRUCTURE_CHUNK = 32 * 49_152  # (query, position) pairs handled at a time: a few MB per array at any grid; a grid of
# a few hundred positions is one chunk (chunks of 32 rows spent 15 ms of numpy calls on the 17 × 17 grid of P = 13)


def pearson_from_sums(n: float, sx: float, sy: float, sxx: float, syy: float, sxy: float) -> float:
    """Pearson's r from the running sums of n pairs (x, y); 0 when it is undefined (fewer than 2 pairs, or either
    constant), as `correlation` says."""
    vx, vy = n * sxx - sx * sx, n * syy - sy * sy
    if n < 2 or vx <= 1e-12 * n * n or vy <= 1e-12 * n * n:
        return 0.0
    return float(np.clip((n * sxy - sx * sy) / np.sqrt(vx * vy), -1.0, 1.0))


def similarity_structure(rows: np.ndarray, queries: list[int], grid: tuple[int, int]) -> SimilarityStructure:
    """rows (q, N) = rows `queries` of S on `grid` (N = gh·gw, `similarity_to`) -> their `SimilarityStructure`.

    Grid distance is Euclidean in patches; a neighbour is at distance 1 (left, right, above, below). The sums are
    accumulated a chunk of rows at a time (a 49 152-position grid has millions of pairs)."""
    gw = grid[1]
    row_of, col_of = np.divmod(np.arange(grid[0] * gw), gw)
    sums = np.zeros(6)  # pairs, Σcos, Σdist, Σcos², Σdist², Σcos·dist
    line = np.zeros(4)  # Σcos and count in the query's row or column, Σcos and count elsewhere
    nearest, nearest_cosine, peaks = [], [], []
    chunk = max(1, STRUCTURE_CHUNK // len(row_of))
    for start in range(0, len(queries), chunk):
        q = np.asarray(queries[start : start + chunk])
        cos = np.asarray(rows[start : start + len(q)], dtype=np.float64)
        dr, dc = row_of[None] - (q // gw)[:, None], col_of[None] - (q % gw)[:, None]
        dist = np.hypot(dr, dc)
        other, same = dist > 0, (dr == 0) | (dc == 0)
        x, y = cos[other], dist[other]
        sums += [x.size, x.sum(), y.sum(), x @ x, y @ y, x @ y]
        line += [cos[other & same].sum(), (other & same).sum(), cos[~same].sum(), (~same).sum()]
        peaks.append(cos.argmax(1) == q)
        masked = np.where(other, cos, -np.inf)
        best, found = masked.argmax(1), other.any(1)
        nearest.append(np.where(found, best, -1))
        nearest_cosine.append(np.where(found, masked[np.arange(len(q)), best], np.nan))
    q, near = np.asarray(queries), np.concatenate(nearest)
    steps = np.abs(q // gw - near // gw) + np.abs(q % gw - near % gw)
    return SimilarityStructure(
        queries=q, nearest=near, nearest_cosine=np.concatenate(nearest_cosine),
        own_peaks=float(np.mean(np.concatenate(peaks))), neighbour_share=float(np.mean((steps == 1) & (near >= 0))),
        distance_correlation=pearson_from_sums(*sums),
        same_line=float(line[0] / line[1]) if line[1] else float("nan"),
        elsewhere=float(line[2] / line[3]) if line[3] else float("nan"))


def similarity_tiles(sim: np.ndarray, grid: tuple[int, int], stride: int = 1, gap: int = 1, inner: int = 1) -> np.ndarray:
    """Tile the similarity matrix as ViT Fig. 7 does: tile (r, c) is row r·gw + c of S reshaped to the grid.

    sim: S (N, N), or only its rows `tile_queries(grid, stride)` in that order (`similarity_to`), with
    N = gh·gw. Only every `stride`-th row and column of positions gets a tile
    (stride 1: all), and each tile shows every `inner`-th position (inner 1: all) on the lattice through its own
    position, so every tile keeps its peak (`tile_positions` says which). Tiles are separated by `gap` NaN cells
    (and padded with NaN where a lattice is one shorter). Returns (th·(ih+gap) − gap, tw·(iw+gap) − gap) with
    th, tw tiles of ih × iw cells.
    """
    gh, gw = grid
    rows, cols = range(0, gh, stride), range(0, gw, stride)
    if sim.shape[0] not in (gh * gw, len(rows) * len(cols)):
        raise ValueError("sim holds neither all rows nor the tiles' rows")
    full = sim.shape[0] == gh * gw
    ih, iw = len(range(0, gh, inner)), len(range(0, gw, inner))
    out = np.full((len(rows) * (ih + gap) - gap, len(cols) * (iw + gap) - gap), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            y, x = i * (ih + gap), j * (iw + gap)
            row = sim[r * gw + c] if full else sim[i * len(cols) + j]
            tile = row.reshape(gh, gw)[r % inner :: inner, c % inner :: inner]
            out[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return out


def tile_positions(size: int, stride: int, inner: int) -> list[tuple[int, list[int]]]:
    """Along one axis of `similarity_tiles`: (query position, the positions shown inside its tile) per tile."""
    return [(t, list(range(t % inner, size, inner))) for t in range(0, size, stride)]


def tile_cells(grid: tuple[int, int], stride: int, inner: int, gap: int = 1) -> int:
    """Number of cells of `similarity_tiles(…, stride, gap, inner)` for `grid`."""
    gh, gw = grid
    th, tw = len(range(0, gh, stride)), len(range(0, gw, stride))
    ih, iw = len(range(0, gh, inner)), len(range(0, gw, inner))
    return (th * (ih + gap) - gap) * (tw * (iw + gap) - gap)


def tile_strides(grid: tuple[int, int], max_cells: int, limit: int = 6) -> list[tuple[int, int]]:
    """Up to `limit` (stride, inner) choices for `similarity_tiles` that fit max_cells, finest first.

    Ordered by the larger of the two, then by stride: when something must go, every position keeps its tile
    and the tiles get coarser first, then fewer tiles are shown. Never empty: the coarsest choice comes last.
    """
    top = max(grid)
    fits = []
    for m in range(1, top + 1):
        pairs = [(s, m) for s in range(1, m + 1)] + [(m, i) for i in range(1, m)]
        for si in sorted(pairs):
            if tile_cells(grid, *si) <= max_cells:
                fits.append(si)
                if len(fits) == limit:
                    return fits
    return fits or [(top, top)]


def sincos_2d(grid: tuple[int, int], dim: int, temperature: float = 10000.0) -> Tensor:
    """Fixed 2-D sin-cos position embeddings (MAE's get_2d_sincos_pos_embed; MoCo v3 uses the same formula).

    For the patch at row r, column c (raster index r·gw + c) and ω_k = temperature^(−k / (dim/4)),
    k = 0 … dim/4 − 1: E = [sin(c·ω), cos(c·ω), sin(r·ω), cos(r·ω)]. dim must be a multiple of 4.
    Returns (gh·gw, dim) float32 (no CLS row; MAE prepends a zero row for CLS).
    """
    if dim % 4:
        raise ValueError(f"2-D sin-cos embeddings need dim divisible by 4, got {dim}")
    gh, gw = grid
    quarter = dim // 4
    omega = 1.0 / temperature ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    r, c = torch.meshgrid(torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64), indexing="ij")
    out_c = c.flatten()[:, None] * omega[None]
    out_r = r.flatten()[:, None] * omega[None]
    return torch.cat([out_c.sin(), out_c.cos(), out_r.sin(), out_r.cos()], dim=1).float()


def native_position_grid(model) -> tuple[Tensor, tuple[int, int]]:
    """The checkpoint's patch position embeddings (g·g, D) (CLS entry dropped) and their grid (g, g)."""
    g = model.config.grid
    return model.pos_embed[0, 1:].detach(), (g, g)


@dataclass(frozen=True)
class ShuffleResult:
    """Outcome of running encoder layers on tokens and on the same tokens with the patches shuffled."""

    layers: int  # encoder layers run
    without_pos: float  # ‖f(Πx) − Πf(x)‖ / ‖f(x)‖ with no position embedding: ~1e-7, outputs only move
    with_pos: float  # the same with E_pos added to both inputs: clearly non-zero, the model sees another image
    cls_without_pos: float  # ‖CLS out(Πx) − CLS out(x)‖ / ‖CLS out(x)‖ without E_pos: ~1e-7, CLS cannot tell
    cls_with_pos: float  # the same with E_pos


def patch_permutation(n: int, seed: int = 0) -> Tensor:
    """A fixed random order Π of n patches (raster indices), the same for a given seed."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def shuffle_patches(image: np.ndarray, patch: int, order: Tensor) -> np.ndarray:
    """An (H, W, C) image cropped to whole patches with its P×P patches rearranged: new patch j = old patch order[j]."""
    gh, gw = image.shape[0] // patch, image.shape[1] // patch
    patches = rearrange(image[: gh * patch, : gw * patch], "(h p1) (w p2) c -> (h w) p1 p2 c", p1=patch, p2=patch)
    return rearrange(patches[order.numpy()], "(h w) p1 p2 c -> (h p1) (w p2) c", h=gh)


def shuffle_test(model, tokens: Tensor, e_pos: Tensor, layers: int = 1, seed: int = 0) -> ShuffleResult:
    """Permutation equivariance of self-attention, on the real layers and tokens.

    tokens (1, 1+N, D) = [x_class; x_p E] (tap `tokens`), e_pos (1, 1+N, D) (tap `e_pos`). The patch tokens are
    shuffled by a fixed random permutation Π (CLS stays first) and the first `layers` encoder layers run on x and Πx,
    with and without E_pos. Without E_pos the outputs are the same vectors in the shuffled order; with it they differ.
    """
    n = tokens.shape[1] - 1
    perm = patch_permutation(n, seed) + 1
    order = torch.cat([torch.zeros(1, dtype=torch.long), perm]).to(tokens.device)
    x = tokens[:1]
    batch = torch.cat([x, x[:, order], x + e_pos, x[:, order] + e_pos])
    with torch.inference_mode():
        for block in model.blocks[:layers]:
            batch = block(batch)[0]
    plain, shuffled, plain_pos, shuffled_pos = batch.double().unbind(0)

    def rel(a: Tensor, b: Tensor) -> float:
        return float((a - b).norm() / b.norm().clamp_min(1e-30))

    return ShuffleResult(
        layers=min(layers, len(model.blocks)),
        without_pos=rel(shuffled, plain[order]),
        with_pos=rel(shuffled_pos, plain_pos[order]),
        cls_without_pos=rel(shuffled[0], plain[0]),
        cls_with_pos=rel(shuffled_pos[0], plain_pos[0]),
    )


def pi_resize_check(weight: Tensor, resized: Tensor, patch: Tensor) -> tuple[float, float]:
    """FlexiViT's promise ⟨B x, w'⟩ = ⟨x, w⟩ on one real patch.

    weight (D, C, p, p) the checkpoint kernel, resized (D, C, s, s) its PI-resize, patch (C, p, p) pixels at the
    checkpoint's patch size. B is the bilinear resize p -> s. Returns (max |token difference|, max |token|):
    zero up to rounding when s ≥ p (B has full column rank), a least-squares residual when s < p.
    The bias is the same on both sides and left out.
    """
    s = resized.shape[-1]
    up = F.interpolate(patch[None].double(), size=(s, s), mode="bilinear", align_corners=False)[0]
    original = torch.einsum("dcij,cij->d", weight.double(), patch.double())
    new = torch.einsum("dcij,cij->d", resized.double(), up)
    return float((original - new).abs().max()), float(original.abs().max())


# ---- what each page draws and quotes, from one call ---------------------------------------------------------------

@dataclass(frozen=True)
class FilterStudy:
    """E as D small RGB filters (ViT Fig. 7 left): the first ones and the top principal components."""

    first: np.ndarray  # (count, P, P, C) the first filters, each min-max scaled to [0, 1] on its own
    components: np.ndarray  # (k, P, P, C) the top principal components, each min-max scaled to [0, 1]
    explained: np.ndarray  # (k,) fraction of the filters' variance along each component

    @property
    def count(self) -> int:
        """How many filters `first` holds."""
        return len(self.first)

    @property
    def k(self) -> int:
        """How many components `components` holds."""
        return len(self.components)


def filter_study(weight: Tensor, k: int = 28, max_pixels: int = 120_000) -> FilterStudy:
    """The first filters and the top k principal components of a Conv2d kernel weight (D, C, P, P).

    Random filters are incompressible noise, so for large P fewer are shown: 8 to 64 (a multiple of 8, a mosaic
    row) and at most ~max_pixels filter pixels.
    """
    w = weight.detach().float().cpu()
    p = w.shape[-1]
    count = min(64, max(8, max_pixels // (p * p) // 8 * 8))
    components, explained = filter_pca(w, k)
    return FilterStudy(normalise_filters(w[:count].numpy()), normalise_filters(components), explained)


@dataclass(frozen=True)
class KernelResize:
    """FlexiViT's PI-resize of the patch kernel (Beyer et al. 2023, §3.4), seen filter by filter and checked on
    one real patch."""

    checkpoint: np.ndarray  # (D, P0, P0, C) uint8: each checkpoint filter min-max scaled, as its picture shows it
    resized: np.ndarray  # (D, P, P, C) uint8: each PI-resized filter min-max scaled (one byte: 4.7 MB at P = 64)
    checkpoint_range: np.ndarray  # (D, 2) float32: min and max weight of each checkpoint filter
    resized_range: np.ndarray  # (D, 2) float32: min and max weight of each PI-resized filter
    difference: float  # max |⟨Bx, w′⟩ − ⟨x, w⟩| over all filters, x the selected patch resampled to P0
    scale: float  # max |⟨x, w⟩|: how large the tokens compared are


def kernel_resize(checkpoint: Tensor, resized: Tensor, pixel_values: Tensor, selected: int) -> KernelResize:
    """Both kernels (D, C, P0, P0) and (D, C, P, P) as pictures and ranges, and `pi_resize_check` on patch
    `selected` (raster index) of pixel_values (1, C, H, W), bilinearly resampled from P to P0 pixels."""
    p, p0 = resized.shape[-1], checkpoint.shape[-1]
    r, c = divmod(selected, pixel_values.shape[-1] // p)
    patch = pixel_values[0, :, r * p : (r + 1) * p, c * p : (c + 1) * p].detach().float().cpu()
    x = F.interpolate(patch[None], size=(p0, p0), mode="bilinear", align_corners=False)[0]
    old, new = checkpoint.detach().float().cpu(), resized.detach().float().cpu()
    difference, scale = pi_resize_check(old, new, x)

    def ranges(w: Tensor) -> np.ndarray:
        return torch.stack([w.amin((1, 2, 3)), w.amax((1, 2, 3))], dim=1).numpy()

    return KernelResize(to_uint8(normalise_filters(old.numpy())), to_uint8(normalise_filters(new.numpy())),
                        ranges(old), ranges(new), difference, scale)


@dataclass(frozen=True)
class TokenColours:
    """The tokens' top three principal components as colours over the patch grid."""

    stage: str  # "projection" (x_p E + b) or "last" (after every encoder layer): where the tokens come from
    rgb: np.ndarray  # (gh, gw, 3) float32 in [0, 1]: red, green, blue = components 1, 2, 3 (`tokens_pca_rgb`)
    explained: np.ndarray  # (≤ 3,) fraction of the tokens' variance along each component
    brightness_correlation: float  # Pearson r of the red channel with each patch's mean pixel value; 0 if either is flat


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r of two equally long vectors; 0 when either is constant (r is undefined there)."""
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def token_colours(model, pixel_values: Tensor, tokens: Tensor, brightness: np.ndarray, grid: tuple[int, int],
                  stage: str) -> TokenColours:
    """`tokens_pca_rgb` of the projection's tokens (N, D) (stage "projection") or of the last layer's patch tokens
    (stage "last": one encoder pass), and the red channel's correlation with brightness (N,)."""
    if stage == "last":
        with torch.inference_mode():
            tokens = model(pixel_values, output_attentions=False).last_hidden_state[0, model.config.prefix :]
    rgb, explained = tokens_pca_rgb(tokens, grid)
    return TokenColours(stage, rgb, explained, correlation(rgb[..., 0].reshape(-1), brightness))


@dataclass(frozen=True)
class TokenBlocks:
    """The N × D token matrix cut into blocks a heatmap can send: rows of tokens × columns of dimensions."""

    n: int  # tokens N
    d: int  # dimensions D
    rows: int  # tokens per block
    cols: int  # dimensions per block

    @property
    def row_blocks(self) -> int:
        return -(-self.n // self.rows)

    @property
    def col_blocks(self) -> int:
        return -(-self.d // self.cols)

    def row_span(self, block: int) -> tuple[int, int]:
        """First and last token of a row block."""
        return block * self.rows, min(self.n, (block + 1) * self.rows) - 1

    def col_span(self, block: int) -> tuple[int, int]:
        """First and last dimension of a column block."""
        return block * self.cols, min(self.d, (block + 1) * self.cols) - 1

    def shape(self, row_block: int, col_block: int) -> tuple[int, int]:
        """(tokens, dimensions) in a block: the last row and column blocks may be shorter."""
        (r0, r1), (c0, c1) = self.row_span(row_block), self.col_span(col_block)
        return r1 - r0 + 1, c1 - c0 + 1


def token_blocks(n: int, d: int, max_cells: int) -> TokenBlocks:
    """Blocks of at most ~max_cells numbers: all tokens (in equal row blocks of at least 16 dimensions' worth when
    N · 16 exceeds the budget), then as many dimensions as fit, in equal column blocks."""
    row_blocks = -(-n // max(1, max_cells // 16)) if n * 16 > max_cells else 1
    rows = -(-n // row_blocks)
    col_blocks = -(-d // max(1, max_cells // rows))
    return TokenBlocks(n, d, rows, -(-d // col_blocks))


@dataclass(frozen=True)
class ProjectionStage:
    """Everything the "Linear projection" page draws and quotes for one input (ViT Eq. 1: x_p E + b)."""

    config: ViTConfig  # the model's configuration at the patch size shown (P, C, D, depth)
    checkpoint_patch: int  # P0: the checkpoint's own patch size
    grid: tuple[int, int]  # (gh, gw) patches
    trained: bool  # checkpoint weights, not a preset's random ones
    flat_shape: tuple[int, ...]  # shape of tap `flat`: (1, N, P·P·C)
    weight_shape: tuple[int, ...]  # the Conv2d kernel (D, C, P, P)
    matrix_shape: tuple[int, ...]  # the same as the Linear weight (D, P·P·C)
    tokens: np.ndarray  # (N, D) float32: x_p E + b for every patch (tap `embeddings`)
    conv_difference: float  # max |Conv2d − Linear| over all N·D token entries
    token_scale: float  # max |token entry|
    filters: FilterStudy  # E as filters and its principal components
    resize: KernelResize | None  # the PI-resize of E and its check; None at the checkpoint's P
    selected: int  # the selected patch (raster index) the PI-resize check used
    colours: TokenColours  # the tokens' top principal components as colours
    blocks: TokenBlocks  # how the token heatmap is cut to fit its panel

    @property
    def n(self) -> int:
        """Patches N = gh · gw."""
        return self.grid[0] * self.grid[1]

    @property
    def patch_vector(self) -> int:
        """P · P · C: the length of a flattened patch x_p."""
        return self.config.patch_size**2 * self.config.channels

    @property
    def parameters(self) -> int:
        """Weights and biases of E: P·P·C·D + D."""
        return self.patch_vector * self.config.dim + self.config.dim

    @property
    def multiply_adds(self) -> int:
        """N · P·P·C · D: what the projection of one image costs."""
        return self.n * self.patch_vector * self.config.dim

    @property
    def relative_difference(self) -> float:
        """conv_difference relative to the largest token entry."""
        return self.conv_difference / max(self.token_scale, 1e-30)

    @property
    def row(self) -> int:
        """Grid row of the selected patch."""
        return self.selected // self.grid[1]

    @property
    def col(self) -> int:
        """Grid column of the selected patch."""
        return self.selected % self.grid[1]


def projection_stage(model, checkpoint, pixel_values: Tensor, selected: int, stage: str, max_cells: int) -> ProjectionStage:
    """The "Linear projection" page's numbers for pixel_values (1, C, H, W): the traced tokens and the Conv2d check,
    the filters of E, the PI-resize against `checkpoint` (the model before `with_patch_size`) on patch `selected`,
    the token colours of `stage` ("last" falls back to "projection" beyond MAX_LAYER_TOKENS) and the heatmap blocks
    of at most max_cells numbers."""
    rec = embedding_trace(model, pixel_values)
    embeddings = rec["embeddings"]
    n, d = embeddings.shape[1:]
    grid = (pixel_values.shape[-2] // model.config.patch_size, pixel_values.shape[-1] // model.config.patch_size)
    tokens = embeddings[0].float().cpu()
    brightness = rec["flat"][0].float().mean(-1).cpu().numpy()  # mean normalised pixel value of each patch
    if n + 1 > MAX_LAYER_TOKENS:
        stage = "projection"
    weight = model.patch_embed.weight
    resized = None if weight.shape == checkpoint.patch_embed.weight.shape else kernel_resize(
        checkpoint.patch_embed.weight, weight, pixel_values, selected)
    return ProjectionStage(
        config=model.config, checkpoint_patch=checkpoint.config.patch_size, grid=grid, trained=is_trained(model),
        flat_shape=tuple(rec["flat"].shape), weight_shape=tuple(weight.shape),
        matrix_shape=tuple(model.projection_matrix().shape), tokens=tokens.numpy(),
        conv_difference=max_abs_difference(conv_tokens(model, pixel_values), embeddings),
        token_scale=float(embeddings.abs().max()), filters=filter_study(weight), resize=resized, selected=selected,
        colours=token_colours(model, pixel_values, tokens, brightness, grid, stage),
        blocks=token_blocks(n, d, max_cells),
    )


@dataclass(frozen=True)
class PositionStage:
    """Everything the "Position embeddings" page draws and quotes for one input (ViT Eq. 1: z_0 = [x_class; x_p E]
    + E_pos, Fig. 7 centre)."""

    config: ViTConfig  # the model's configuration (P, D, depth, registers, antialias, native grid)
    grid: tuple[int, int]  # (gh, gw) patches
    trained: bool  # checkpoint weights, not a preset's random ones
    shapes: dict[str, tuple[int, ...]]  # shape of each traced tap: embeddings, tokens, e_pos, position
    tokens: np.ndarray  # (1+N, D) float32: [x_class; x_p E] (tap `tokens`)
    e_pos: np.ndarray  # (1+N, D) float32: E_pos at this grid (tap `e_pos`)
    position: np.ndarray  # (1+N, D) float32: z_0 = tokens + E_pos (tap `position`)
    sum_difference: float  # max |z_0 − (tokens + E_pos)|
    cls_difference: float  # max |row 0 of tokens − the checkpoint's cls_token|
    native: np.ndarray  # (g0·g0, D) float32: the checkpoint's patch position embeddings on its own grid
    sincos: np.ndarray | None  # (N, D) float32: MAE's fixed 2-D sin-cos embeddings; None when D is not a multiple of 4
    order: np.ndarray  # (N,) the shuffle test's Π: patch j of the shuffled image is patch order[j] of the input
    shuffled: np.ndarray  # (gh·P, gw·P, 3) uint8: the input's whole patches in the order Π of the shuffle test
    shuffle: ShuffleResult | None  # the shuffle test; None beyond MAX_LAYER_TOKENS (too slow to run interactively)

    @property
    def n(self) -> int:
        """Patches N = gh · gw."""
        return self.grid[0] * self.grid[1]

    @property
    def checkpoint_grid(self) -> tuple[int, int]:
        """(g0, g0): the grid the checkpoint's E_pos was trained for."""
        return self.config.grid, self.config.grid

    @property
    def interpolated(self) -> bool:
        """Whether E_pos was resized to this grid."""
        return self.grid != self.checkpoint_grid

    @property
    def grows(self) -> bool:
        """Whether this grid has more positions than the checkpoint's."""
        return self.n > self.config.grid**2


def position_stage(model, pixel_values: Tensor, image: Image.Image, layers: int) -> PositionStage:
    """The "Position embeddings" page's numbers for pixel_values (1, C, H, W) and the picture it was made from
    (H × W): the traced taps of Eq. 1 and their checks, the checkpoint's and the sin-cos embeddings,
    and the shuffle test over the first `layers` encoder layers."""
    rec = embedding_trace(model, pixel_values)
    tokens, e_pos, position = (rec[k][0].float().cpu() for k in ("tokens", "e_pos", "position"))
    p, d = model.config.patch_size, model.config.dim
    grid = (pixel_values.shape[-2] // p, pixel_values.shape[-1] // p)
    n = grid[0] * grid[1]
    order = patch_permutation(n)
    shuffle = None
    if n + 1 <= MAX_LAYER_TOKENS:
        shuffle = shuffle_test(model, rec["tokens"][:1], rec["e_pos"], layers)
    return PositionStage(
        config=model.config, grid=grid, trained=is_trained(model),
        shapes={k: tuple(rec[k].shape) for k in ("embeddings", "tokens", "e_pos", "position")},
        tokens=tokens.numpy(), e_pos=e_pos.numpy(), position=position.numpy(),
        sum_difference=max_abs_difference(position, tokens + e_pos),
        cls_difference=max_abs_difference(tokens[0], model.cls_token[0, 0].float().cpu()),
        native=native_position_grid(model)[0].float().cpu().numpy(),
        sincos=None if d % 4 else sincos_2d(grid, d).numpy(),
        order=order.numpy(), shuffled=shuffle_patches(np.asarray(image.convert("RGB")), p, order), shuffle=shuffle,
    )
