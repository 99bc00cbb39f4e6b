"""Token norms, high-norm "artifact" tokens and features as colours.

- Artifacts (Darcet et al., "Vision Transformers Need Registers", ICLR 2024, §2.1, Fig. 3 and 4): large ViTs
  repurpose a few uninformative patch tokens as global memory; those tokens' outputs have a much larger L2 norm than
  the rest, so the histogram of the output norms has two modes. The paper put a hand-picked line at 150 for ViT-g;
  `valley_split` finds the valley between the modes of this image's own norms instead, and says when there is no
  second mode. §2.1 also shows that artifacts sit on patches that are very similar to their four neighbours right
  after the patch embedding (`neighbour_similarity`).
- Features as colours (Oquab et al. 2024, DINOv2, Fig. 1 and the official PCA notebook): the first principal
  component of the last layer's patch features separates foreground from background (its sign is arbitrary, so the
  border decides it); a 3-component PCA of the foreground patches, each component min–max scaled, is an RGB picture.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .attention import attention_probs
from .embeddings import pca
from .trace import trace


@dataclass(frozen=True, eq=False)
class NormTrace:
    """What the token-norm views need from one forward pass. Treat as read-only (shared between sessions)."""

    norms: np.ndarray  # (L, T) L2 norm of every token after each layer (before the final LayerNorm)
    prefix: int  # tokens before the first patch: CLS and the R registers
    grid: tuple[int, int]  # (gh, gw) patches
    neighbours: np.ndarray  # (N,) mean cosine similarity of each patch embedding x_p E to its 4 neighbours
    cls_attention: np.ndarray  # (H, T) the last layer's attention of the CLS query to every token

    @property
    def depth(self) -> int:
        return self.norms.shape[0]

    def patch_norms(self, layer: int) -> np.ndarray:
        """(N,) norms of the patch tokens after `layer` (0-based)."""
        return self.norms[layer, self.prefix:]

    def layer(self, layer: int) -> LayerNorms:
        """What the page says about the norms after `layer` (0-based): the split, the outliers, their numbers."""
        values = self.patch_norms(layer)
        split = valley_split(values)
        return LayerNorms(layer, self.grid, values, split, split.outliers(values), self.norms[layer, 1:self.prefix],
                          float(self.norms[layer, 0]), self.neighbours, pearson(self.neighbours, values))

    @property
    def outlier_counts(self) -> tuple[int, ...]:
        """(L,) how many patches lie above each layer's valley."""
        return tuple(self.layer(i).count for i in range(self.depth))

    @property
    def neighbour_map(self) -> np.ndarray:
        """(gh, gw) `neighbours` on the patch grid."""
        return self.neighbours.reshape(self.grid)

    @property
    def cls_map(self) -> np.ndarray:
        """(gh, gw) the last layer's CLS attention to the patches, mean over the heads."""
        return self.cls_attention[:, self.prefix:].mean(0).reshape(self.grid)

    @property
    def cls_to_patches(self) -> float:
        """Share of the last layer's CLS attention (mean over the heads) that goes to the patches."""
        return float(self.cls_attention.mean(0)[self.prefix:].sum())

    @property
    def cls_to_registers(self) -> float:
        """Share of it that goes to the registers (0 without registers)."""
        return float(self.cls_attention.mean(0)[1:self.prefix].sum())


@dataclass(frozen=True, eq=False)
class LayerNorms:
    """One layer of a `NormTrace` as the token-norm views read it. Read-only, like the trace."""

    layer: int  # 0-based
    grid: tuple[int, int]  # (gh, gw) patches
    values: np.ndarray  # (N,) the patch tokens' norms
    split: Split  # the valley between the histogram's modes, if any
    outliers: np.ndarray  # (N,) bool: the patches above the valley
    registers: np.ndarray  # (R,) the registers' norms (empty without registers)
    cls: float  # the CLS token's norm
    neighbours: np.ndarray  # (N,) each patch embedding's similarity to its 4 neighbours (`neighbour_similarity`)
    correlation: float  # Pearson r of `neighbours` and `values` over the patches

    @property
    def patches(self) -> int:
        return self.values.size

    @property
    def count(self) -> int:
        """How many patches are outliers."""
        return int(self.outliers.sum())

    @property
    def share(self) -> float:
        """The outliers' share of the patches."""
        return self.count / self.patches

    @property
    def median(self) -> float:
        return float(np.median(self.values))

    @property
    def largest(self) -> float:
        return float(self.values.max())

    @property
    def ratio(self) -> float:
        """The largest patch norm over the median."""
        return float(self.values.max() / np.median(self.values))

    @property
    def register_range(self) -> tuple[float, float]:
        """(smallest, largest) register norm; undefined without registers."""
        return float(self.registers.min()), float(self.registers.max())

    @property
    def register_mean(self) -> float:
        return float(self.registers.mean())

    @property
    def outlier_similarity(self) -> float | None:
        """Mean neighbour similarity of the outliers (None when there are none)."""
        return float(self.neighbours[self.outliers].mean()) if self.outliers.any() else None

    @property
    def other_similarity(self) -> float | None:
        """Mean neighbour similarity of the other patches (None when there are no outliers)."""
        return float(self.neighbours[~self.outliers].mean()) if self.outliers.any() else None

    @property
    def grid_values(self) -> np.ndarray:
        """(gh, gw) `values` on the patch grid."""
        return self.values.reshape(self.grid)

    @property
    def grid_outliers(self) -> np.ndarray:
        """(gh, gw) `outliers` on the patch grid."""
        return self.outliers.reshape(self.grid)


def neighbour_similarity(tokens: Tensor, grid: tuple[int, int]) -> Tensor:
    """Mean cosine similarity of each patch token to its 4-neighbours (up, down, left, right; fewer at the border).

    tokens (N, D) in raster order -> (N,).
    """
    x = rearrange(F.normalize(tokens.double(), dim=-1), "(h w) d -> h w d", h=grid[0], w=grid[1])
    total = torch.zeros(grid, dtype=torch.float64, device=x.device)
    count = torch.zeros(grid, dtype=torch.float64, device=x.device)
    vertical = (x[1:] * x[:-1]).sum(-1)  # (gh-1, gw): each pair of vertical neighbours
    horizontal = (x[:, 1:] * x[:, :-1]).sum(-1)  # (gh, gw-1)
    total[1:] += vertical
    total[:-1] += vertical
    total[:, 1:] += horizontal
    total[:, :-1] += horizontal
    count[1:] += 1
    count[:-1] += 1
    count[:, 1:] += 1
    count[:, :-1] += 1
    return (total / count.clamp(min=1)).flatten()


def trace_norms(model: nn.Module, pixel_values: Tensor) -> NormTrace:
    """Run the ViT once on pixel_values (1, C, H, W): every layer's token norms, the patch embeddings' neighbour
    similarity and the last layer's CLS attention (only that layer's probabilities are materialised)."""
    last = len(model.blocks) - 1
    recorded = trace(model, pixel_values[:1], include=["embeddings", "blocks.*.out", f"blocks.{last}.attn.q",
                                                       f"blocks.{last}.attn.k"])
    p = model.config.patch_size
    grid = (pixel_values.shape[-2] // p, pixel_values.shape[-1] // p)
    norms = torch.stack([recorded[f"blocks.{i}.out"][0].float().norm(dim=-1) for i in range(last + 1)])  # (L, T)
    neighbours = neighbour_similarity(recorded["embeddings"][0], grid)
    q, k = recorded[f"blocks.{last}.attn.q"][0], recorded[f"blocks.{last}.attn.k"][0]  # (H, T, d)
    cls = attention_probs(q[:, :1], k, q.shape[-1] ** -0.5)[:, 0]  # (H, T): the CLS row only, never T × T
    return NormTrace(norms.cpu().numpy(), model.config.prefix, grid, neighbours.float().cpu().numpy(),
                     cls.float().cpu().numpy())


@dataclass(frozen=True)
class Split:
    """Where a set of norms splits into a low and a high mode, if it does."""

    threshold: float | None  # the valley between the two modes; None when the histogram has one mode
    separation: float  # Otsu's effectiveness σ²_between / σ²_total in [0, 1]: 2/π ≈ 0.64 for one Gaussian
    gap: float  # empty width between the two classes, in standard deviations of the low one
    edges: np.ndarray  # (bins + 1,) histogram bin edges
    counts: np.ndarray  # (bins,) histogram counts

    def outliers(self, values: np.ndarray) -> np.ndarray:
        """bool mask of the values above the threshold (none when there is no second mode)."""
        if self.threshold is None:
            return np.zeros(np.shape(values), dtype=bool)
        return np.asarray(values) > self.threshold


MIN_GAP = 3.0  # the high values must stand this many standard deviations of the low ones clear of them
MAX_HIGH_SHARE = 0.25  # a "high mode" holding more than this share of the tokens is not a few artifacts


def valley_split(values: np.ndarray, bins: int = 48) -> Split:
    """The threshold at the valley of the histogram between its two modes.

    Otsu's method (the cut that maximises the between-class variance) finds the two modes; the threshold is then the
    middle of the emptiest histogram bins between the two class means, so it sits in the gap, not at its edge. There
    is no split (threshold None) when the empty gap between the classes is narrower than MIN_GAP standard deviations
    of the low class (one Gaussian: Otsu cuts it in the middle, where there is no gap), or when the upper class holds
    more than MAX_HIGH_SHARE of the values: then nothing stands out.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    counts, edges = np.histogram(v, bins=bins)
    total_var = v.var()
    if v.size < 4 or total_var <= 0:
        return Split(None, 0.0, 0.0, edges, counts)
    order = np.sort(v)
    cumsum = np.cumsum(order)
    k = np.arange(1, v.size)  # cut after the k smallest values
    w0 = k / v.size
    mu0 = cumsum[:-1] / k
    mu1 = (cumsum[-1] - cumsum[:-1]) / (v.size - k)
    between = w0 * (1 - w0) * (mu1 - mu0) ** 2
    cut = int(np.argmax(between))
    separation = float(between[cut] / total_var)
    high_share = 1 - w0[cut]
    gap = float((order[cut + 1] - order[cut]) / max(order[: cut + 1].std(), 1e-12 * abs(mu0[cut]), 1e-30))
    if gap < MIN_GAP or high_share > MAX_HIGH_SHARE:
        return Split(None, separation, gap, edges, counts)
    centres = (edges[:-1] + edges[1:]) / 2
    between_means = (centres > mu0[cut]) & (centres < mu1[cut])
    if between_means.any():
        idx = np.flatnonzero(between_means)
        emptiest = idx[counts[idx] == counts[idx].min()]  # a wide gap has many: take the middle of them
        threshold = float((centres[emptiest[0]] + centres[emptiest[-1]]) / 2)
    else:
        threshold = float((order[cut] + order[cut + 1]) / 2)
    # The valley bin's centre may lie above the lowest high value when the gap is narrow: never cut a mode.
    threshold = min(max(threshold, float(order[cut])), float(order[cut + 1]) - 1e-9 * abs(float(order[cut + 1])))
    return Split(threshold, separation, gap, edges, counts)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally long vectors (0 when either is constant)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sa, sb = a.std(), b.std()
    if sa == 0 or sb == 0:
        return 0.0
    return float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb))


@dataclass(frozen=True)
class FeatureColours:
    """PCA of patch features as a picture."""

    rgb: np.ndarray  # (gh, gw, 3) in [0, 1]; background patches black
    components: np.ndarray  # (N, 3) the foreground PCA scores (0 for background patches)
    first: np.ndarray  # (N,) first component over all patches, min–max scaled to [0, 1], sign chosen by the border
    foreground: np.ndarray  # (N,) bool: first > threshold
    explained: np.ndarray  # (3,) explained-variance fractions of the foreground PCA

    @property
    def patches(self) -> int:
        return self.foreground.size

    @property
    def foreground_count(self) -> int:
        return int(self.foreground.sum())

    @property
    def explained_share(self) -> float:
        """The share of the foreground's variance the three components explain."""
        return float(self.explained.sum())


def _principal(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Scores (n, k) and explained-variance fractions (k,) of the rows of x (n, D), by `vitviz.embeddings.pca`."""
    result = pca(x, k)
    return (x - torch.from_numpy(result.mean)) @ torch.from_numpy(result.components).T, torch.from_numpy(result.explained)


def _unit(x: Tensor) -> Tensor:
    """Each column min–max scaled to [0, 1] (a constant column becomes 0)."""
    lo, hi = x.min(0).values, x.max(0).values
    return (x - lo) / (hi - lo).clamp(min=1e-12)


def border_mask(grid: tuple[int, int]) -> np.ndarray:
    """(N,) bool: the patches on the outer ring of the grid."""
    mask = np.zeros(grid, dtype=bool)
    mask[0], mask[-1], mask[:, 0], mask[:, -1] = True, True, True, True
    return mask.ravel()


def feature_colours(features: Tensor, grid: tuple[int, int], threshold: float = 0.5) -> FeatureColours:
    """DINOv2's PCA picture of patch features (N, D) on `grid` (see the module docstring).

    The first component is flipped so that most border patches fall below the threshold (the border is usually
    background); with fewer than 3 foreground patches the second PCA runs on all patches.
    """
    x = features.detach().double().cpu()
    n = x.shape[0]
    first = _unit(_principal(x, 1)[0])[:, 0]
    border = torch.from_numpy(border_mask(grid))
    if (first[border] > threshold).float().mean() > 0.5:
        first = 1 - first
    foreground = first > threshold
    split = int(foreground.sum()) >= 3
    chosen = foreground if split else torch.ones(n, dtype=torch.bool)
    scores, explained = _principal(x[chosen], 3)
    components = torch.zeros(n, 3, dtype=torch.float64)
    components[chosen, : scores.shape[1]] = scores
    rgb = torch.zeros(n, 3, dtype=torch.float64)  # background stays black
    rgb[chosen, : scores.shape[1]] = _unit(scores)
    explained = torch.nn.functional.pad(explained, (0, 3 - explained.numel()))
    return FeatureColours(rgb.reshape(*grid, 3).float().numpy(), components.float().numpy(), first.float().numpy(),
                          foreground.numpy(), explained.float().numpy())


def last_patch_features(model: nn.Module, pixel_values: Tensor) -> Tensor:
    """The last layer's patch tokens after the final LayerNorm: pixel_values (1, C, H, W) -> (N, D)."""
    with torch.inference_mode():
        return model(pixel_values[:1], output_attentions=False).last_hidden_state[0, model.config.prefix:]
