"""Computations behind the "Linear projection" and "Position embeddings" pages (no plotting, no streamlit).

ViT paper (Dosovitskiy et al. 2021) §3.1 Eq. 1, z_0 = [x_class; x_p¹E; …; x_pᴺE] + E_pos, and Fig. 7 (left: principal
components of the patch filters E; centre: cosine similarity of the position embeddings). The 2-D sin-cos
embeddings are those of MAE (He et al. 2022, `util/pos_embed.py: get_2d_sincos_pos_embed`), which MoCo v3 also uses.
Every function takes and returns plain tensors / arrays, so the pages only draw what is computed here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from .trace import trace

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


def similarity_to(pos: Tensor, queries: list[int]) -> np.ndarray:
    """Rows `queries` of S = Ê Êᵀ without forming the N × N matrix: (len(queries), N) float32."""
    e = F.normalize(pos.detach().double().cpu(), dim=-1)
    return (e[queries] @ e.T).float().numpy()


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
    if sim.shape[0] != gh * gw:
        assert sim.shape[0] == len(rows) * len(cols), "sim holds neither all rows nor the tiles' rows"
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
