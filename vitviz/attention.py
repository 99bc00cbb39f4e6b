"""Attention maps of a ViT from one traced forward pass: every layer, every head, any query token.

Algorithms (each checked in tests/test_attention.py):

- Per-head attention of one query token i in layer l: row i of A = softmax(Q Kᵀ · d^-½) (Vaswani et al. 2017, §3.2),
  computed with exactly the model's formula from the traced q and k.
- Attention rollout (Abnar & Zuidema 2020, §3): fuse the heads (mean, max or min), optionally zero the lowest
  fraction of the fused matrix (never the CLS row or column), Â = (A + I)/2 for the residual connection,
  row-normalise (with keepdim: vit-explain issue #16), R = Â_l ⋯ Â_1; the map is R[0, 1:] on the patch grid.
- Mean attention distance (Dosovitskiy et al. 2021, §4.5 and Fig. 7 right): per head
  mean_i Σ_j A[i, j] · P · ‖pos_i − pos_j‖₂ in pixels between patch centres. Convention: the CLS row and column
  are dropped and every remaining row is **renormalised** to sum to 1, so the number is a distance (a weighted
  average over patches) and attention given to CLS does not count as "distance 0". With this convention uniform
  attention on a 14×14 grid at P = 16 gives 116.49 px, and the identity gives 0.
- DINO's CLS-attention masks (Caron et al. 2021, visualize_attention.py): the last layer's A[0, h, 0, 1:] per head;
  keep the smallest set of patches holding a fraction t of that row's patch mass (sort, cumulative sum > 1 − t,
  unsort; t = 0.6 in the paper).

Register tokens (Darcet et al. 2024, §2.2) sit between CLS and the patches: a model's first `prefix` = 1 + R tokens
are not patches. They take part in every attention matrix and in the rollout as any token does; the patch maps
(DINO masks, rollout map, distances) read the patch columns only, and the page says how much mass went to registers.

Memory design. A layer's attention is heads × T × T numbers (T = 1 + R + N tokens). dino-vits8 at 480×480 has T = 3601:
one head's matrix is 52 MB in float32, one layer 311 MB, all 12 layers × 6 heads 3.7 GB. So no attention matrix is
kept. `trace_attention` runs the model **once** through `vitviz.trace`, recording only the q, k, v taps (the model
then keeps its fused attention and never materialises probabilities), keeps q, k, v per layer (3·L·T·D floats:
11 MB at 224 px / P = 16, 199 MB for dino-vits8 at 480), and reduces each head, in blocks of query rows of at most
`block` numbers, to its mean attention distance. Everything else is recomputed on demand from q and k with the
model's own formula, which costs microseconds to milliseconds and never reruns the model:

- one query's row in every head of a layer: H·T·d multiply-adds (`AttentionTrace.rows`);
- one head's full T × T matrix, only for the N × N heatmap of small grids (`AttentionTrace.matrix`);
- the rollout row e_qᵀ Â_l ⋯ Â_1, evaluated left to right as vector × matrix products (`AttentionTrace.rollout`):
  each layer's factor is built, used and dropped, so at most a few T × T matrices are alive (the fused one, one
  head's, temporaries of the same size; all heads at once only while H·T² ≤ `_BLOCK`), never L·H of them, and the
  full product R is never formed.

What the page shows for one layer, head and query is one `attention_view`: a frozen `AttentionView` with the query's
rows in every head, the selected head's `QueryBreakdown` (scores, the softmax's numerators and sum, partial sums of
a·v) and every share the page quotes; its methods compute the costlier `matrix`, `masks` (`DinoMasks`) and `rollout`
(`Rollout`) only for the tab that shows them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from einops import rearrange
from torch import Tensor, nn

from .i18n import _
from .trace import trace

FUSIONS = ("mean", "max", "min")
_BLOCK = 1 << 22  # numbers per block of attention rows (16 MB in float32) when reducing a whole head
MAX_TOKENS = 4097  # 64 × 64 patches + CLS: beyond, even one head's T × T matrix passes 67 MB
MATRIX_MAX_PATCHES = 1600  # draw the full N × N heatmap up to a 40 × 40 grid
ROLLOUT_AUTO_TOKENS = 1601  # beyond, the rollout (L·H matrices of T × T) waits for a button
SHOWN_DIMS = 6  # numbers of a head's output the page writes out


def attention_probs(q: Tensor, k: Tensor, scale: float) -> Tensor:
    """softmax(q kᵀ · scale) over the keys: q (..., r, d), k (..., T, d) -> (..., r, T), as the model computes it."""
    return ((q @ k.transpose(-2, -1)) * scale).softmax(dim=-1)


def grid_positions(grid: tuple[int, int]) -> Tensor:
    """(row, col) of every patch in raster (token) order: (gh·gw, 2) float64."""
    rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
    return torch.stack([rows, cols], -1).reshape(-1, 2).double()


def token_label(index: int, grid: tuple[int, int], prefix: int = 1) -> str:
    """Token index (0 = CLS, 1…prefix-1 registers, prefix + raster index of a patch) -> 'CLS', 'register r' or
    'patch (row, col)'."""
    if index == 0:
        return "CLS"
    if index < prefix:
        return _("register {r}").format(r=index)
    r, c = divmod(index - prefix, grid[1])
    return _("patch ({r}, {c})").format(r=r, c=c)


def short_label(index: int, grid: tuple[int, int], prefix: int = 1) -> str:
    """The same token named for a table cell or a matrix axis: 'CLS', 'reg r' or '(row,col)'."""
    if index == 0:
        return "CLS"
    if index < prefix:
        return _("reg {r}").format(r=index)
    return "({},{})".format(*divmod(int(index) - prefix, grid[1]))


@dataclass(frozen=True)
class TokenLayout:
    """The tokens of one input: CLS, the registers, then the patches in raster order, and what one head's T × T
    attention matrix of them costs (what decides whether the page traces, draws the matrix, waits for the rollout)."""

    grid: tuple[int, int]  # (gh, gw) patches
    prefix: int  # tokens before the first patch: CLS and the R registers

    @property
    def patches(self) -> int:
        """N = gh · gw."""
        return self.grid[0] * self.grid[1]

    @property
    def tokens(self) -> int:
        """T = prefix + N."""
        return self.prefix + self.patches

    @property
    def entries(self) -> int:
        """T², the numbers in one head's attention matrix."""
        return self.tokens**2

    @property
    def matrix_mb(self) -> float:
        """MB (2²⁰ bytes) of one head's matrix in float32."""
        return self.entries * 4 / 2**20

    @property
    def matrix_gb(self) -> float:
        """GB (2³⁰ bytes) of one head's matrix in float32."""
        return self.entries * 4 / 2**30

    @property
    def uniform_weight(self) -> float:
        """1/T: every weight of a uniform attention row."""
        return 1 / self.tokens

    @property
    def traceable(self) -> bool:
        """Whether the page traces this input at all (see MAX_TOKENS)."""
        return self.tokens <= MAX_TOKENS

    @property
    def patch_limit(self) -> int:
        """The most patches a model with CLS only may have here."""
        return MAX_TOKENS - 1

    @property
    def matrix_shown(self) -> bool:
        """Whether the whole T × T matrix is drawn (else the query's row)."""
        return self.patches <= MATRIX_MAX_PATCHES

    @property
    def rollout_waits(self) -> bool:
        """Whether the rollout waits for a button instead of running at once."""
        return self.tokens > ROLLOUT_AUTO_TOKENS

    def patch_token(self, index: int) -> int:
        """The token of patch `index` (raster order), clamped to the grid."""
        return self.prefix + min(max(index, 0), self.patches - 1)

    def cell(self, token: int) -> tuple[int, int] | None:
        """(row, col) of a patch token; None for CLS and the registers."""
        return None if token < self.prefix else divmod(token - self.prefix, self.grid[1])

    def label(self, token: int) -> str:
        return token_label(token, self.grid, self.prefix)

    def short(self, token: int) -> str:
        return short_label(token, self.grid, self.prefix)

    def short_labels(self) -> list[str]:
        """short(j) of every token j in order: the matrix's axis labels."""
        return [self.short(j) for j in range(self.tokens)]

    def prefix_labels(self) -> list[str]:
        """short(j) of CLS and the registers."""
        return [self.short(j) for j in range(self.prefix)]


def _block_distances(q: Tensor, k: Tensor, scale: float, dist: Tensor) -> Tensor:
    """Σ_j a_ij D_ij for a block of patch queries, renormalised over the patch keys, without forming a_ij.

    q (H, r, d) patch queries, k (H, N, d) patch keys, dist (r, N) px -> (H, r). Dropping CLS and renormalising
    the softmax row is the softmax over the patch keys alone, so this is Σ_j e^(s_j − m) D_ij / Σ_j e^(s_j − m):
    one matmul and three passes over the block instead of the softmax's and the renormalisation's copies.
    """
    scores = (q @ k.transpose(-2, -1)).mul_(scale)
    scores -= scores.amax(-1, keepdim=True)
    scores.exp_()
    return torch.einsum("hrn,rn->hr", scores, dist) / scores.sum(-1)


def mean_attention_distance(attn: Tensor, grid: tuple[int, int], patch_size: int, prefix: int = 1) -> Tensor:
    """Mean attention distance in pixels: attn (..., T, T) with CLS (and registers) first -> (...).

    Drops the first `prefix` rows and columns (CLS, registers), renormalises each remaining row, and averages
    Σ_j A[i, j]·D[i, j] over the patch queries i (see the module docstring for why rows are renormalised).
    """
    patch = attn[..., prefix:, prefix:]
    rows = patch / patch.sum(-1, keepdim=True)
    pos = grid_positions(grid)
    dist = torch.cdist(pos, pos).to(rows) * patch_size  # (N, N) px between patch centres
    return (rows * dist).sum(-1).mean(-1)


def uniform_attention_distance(grid: tuple[int, int], patch_size: int) -> float:
    """Mean attention distance (px) of uniform attention over all patches: the reference line of the plot.

    Exact and O(gh·gw): the distance depends only on the offset (dy, dx), which (gh − |dy|)(gw − |dx|) pairs share.
    """
    gh, gw = grid
    dy, dx = np.arange(1 - gh, gh), np.arange(1 - gw, gw)
    pairs = np.outer(gh - np.abs(dy), gw - np.abs(dx))
    return float(patch_size * (pairs * np.hypot(dy[:, None], dx[None, :])).sum() / (gh * gw) ** 2)


def mass_threshold_mask(attn: Tensor, t: float) -> Tensor:
    """DINO's mask: attn (..., N) -> bool (..., N) marking the smallest set of entries holding a fraction t of the mass.

    As visualize_attention.py: sort ascending, normalise to sum 1, cumulative sum, keep where it exceeds 1 − t, unsort.
    """
    values, order = torch.sort(attn, dim=-1)
    cumulative = torch.cumsum(values / values.sum(-1, keepdim=True), dim=-1)
    keep_sorted = cumulative > 1 - t
    return torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)


def fuse_heads(heads: Tensor | Iterable[Tensor], fusion: str = "mean") -> Tensor:
    """Combine the heads of one layer: (H, T, T) or an iterable of (T, T) -> (T, T) by mean, max or min.

    An iterable is consumed one head at a time, so only two T × T matrices are alive at once.
    """
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, not {fusion!r}")
    fused, count = None, 0
    for head in heads:
        count += 1
        if fused is None:
            fused = head.clone()
        elif fusion == "mean":
            fused += head
        elif fusion == "max":
            torch.maximum(fused, head, out=fused)
        else:
            torch.minimum(fused, head, out=fused)
    if fused is None:
        raise ValueError("no heads to fuse")
    return fused / count if fusion == "mean" else fused


def discard_lowest(fused: Tensor, ratio: float, prefix: int = 1) -> Tensor:
    """Zero the lowest `ratio` fraction of the patch-to-patch entries of a fused (T, T) matrix (a new tensor).

    The rows and columns of CLS and the registers (the first `prefix` tokens) are always kept (vit-explain's intent
    for CLS; its code only spares entry [0, 0]). Entries tied with the threshold value are dropped too.
    """
    out = fused.clone()
    patch = out[prefix:, prefix:]
    count = int(patch.numel() * ratio)
    if count > 0:
        threshold = patch.flatten().kthvalue(count).values
        patch[patch <= threshold] = 0
    return out


def rollout_step(fused: Tensor) -> Tensor:
    """Â = (A + I)/2 for the residual connection, then row-normalised (keepdim, vit-explain #16): (T, T) -> (T, T)."""
    a = fused * 0.5
    a.diagonal().add_(0.5)
    return a.div_(a.sum(dim=-1, keepdim=True))


def rollout_layer(heads: Tensor | Iterable[Tensor], fusion: str = "mean", discard: float = 0.0, prefix: int = 1) -> Tensor:
    """One layer's factor Â of the rollout from its heads ((H, T, T) or an iterable of (T, T)): (T, T)."""
    fused = fuse_heads(heads, fusion)
    return rollout_step(discard_lowest(fused, discard, prefix) if discard > 0 else fused)


def attention_rollout(attentions: Sequence[Tensor], fusion: str = "mean", discard: float = 0.0) -> Tensor:
    """The full rollout matrix R = Â_L ⋯ Â_1 from per-layer attention (H, T, T), first layer first: (T, T).

    O(L·T³): for small T and for checking `rollout_row`. Row i of R says how much each input token contributes to
    token i after the last layer, under rollout's assumption that attention and residual mix tokens linearly.
    """
    result = None
    for attn in attentions:
        step = rollout_layer(attn, fusion, discard)
        result = step if result is None else step @ result
    return result


def rollout_row(step: Callable[[int], Tensor], layers: int, query: int = 0) -> Tensor:
    """Row `query` of Â_{layers-1} ⋯ Â_0 without forming the product: (T,).

    `step(j)` returns layer j's factor Â_j (T, T); e_qᵀ Â_l ⋯ Â_1 is evaluated left to right, last layer first, so
    each factor is built, used once in a vector × matrix product and dropped.
    """
    row = None
    for j in reversed(range(layers)):
        factor = step(j)
        row = factor[query].clone() if row is None else row @ factor
    return row


@dataclass(frozen=True)
class QueryBreakdown:
    """One query token's attention in one head, step by step: scores, softmax, weighted sum of values."""

    query: int  # token index (0 = CLS)
    q: np.ndarray  # (d,) the query vector
    scores: np.ndarray  # (T,) q·k_j / √d
    probs: np.ndarray  # (T,) softmax of the scores: the attention row
    top: np.ndarray  # (k,) token indices of the keys with the largest attention, largest first
    dots: np.ndarray  # (k,) q·k_j of those keys before scaling
    values: np.ndarray  # (k, d) their value vectors v_j
    output: np.ndarray  # (d,) Σ_j a_j v_j over all T keys: the head's output for this query
    scale: float  # 1/√d
    exps: np.ndarray  # (k,) e^(s_j − m) of those keys, m = max s: the softmax's numerators as the page writes them
    total: float  # Σ_j e^(s_j − m) over all T keys: the softmax's denominator
    partial: np.ndarray  # (d,) Σ_j a_j v_j over those k keys only

    @property
    def tokens(self) -> int:
        """T, the keys the softmax runs over."""
        return len(self.probs)

    @property
    def sqrt_d(self) -> float:
        return 1 / self.scale

    @property
    def top_share(self) -> float:
        """The attention the k largest weights hold together."""
        return float(self.probs[self.top].sum())

    @property
    def uniform_share(self) -> float:
        """What k keys would hold under uniform attention: k/T."""
        return len(self.top) / self.tokens

    @property
    def dims(self) -> int:
        """How many of the d output numbers the page writes out."""
        return min(SHOWN_DIMS, len(self.output))

    @property
    def sums(self) -> np.ndarray:
        """(k + 2, dims): a_j · v_j of each of the k keys, their sum, then the output o over all keys."""
        dims = self.dims
        return np.vstack([self.probs[self.top, None] * self.values[:, :dims], self.partial[:dims], self.output[:dims]])

    @property
    def decimals(self) -> int:
        """Decimals that show `sums` readably: tiny weights at thousands of tokens need more."""
        return 4 if np.abs(self.sums).max() >= 0.01 else 6


def query_breakdown(q: Tensor, k: Tensor, v: Tensor, query: int, top: int = 5) -> QueryBreakdown:
    """The computation behind row `query` of one head: q, k, v (T, d) of that head -> QueryBreakdown."""
    scale = q.shape[-1] ** -0.5
    dots = k @ q[query]  # (T,)
    scores = dots * scale
    probs = scores.softmax(-1)
    order = torch.argsort(probs, descending=True)[: min(top, probs.numel())]
    cpu = lambda x: x.detach().double().cpu().numpy()  # noqa: E731
    scores_, probs_, values, top_ = cpu(scores), cpu(probs), cpu(v[order]), order.cpu().numpy()
    shifted = scores_ - scores_.max()  # the softmax's shift for numbers that cannot overflow, as the page explains it
    return QueryBreakdown(query, cpu(q[query]), scores_, probs_, top_, cpu(dots[order]), values, cpu(probs @ v), scale,
                          np.exp(shifted[top_]), float(np.exp(shifted).sum()), probs_[top_] @ values)


def top_predictions(logits: Tensor, labels: Sequence[str], k: int = 5) -> list[tuple[str, float]]:
    """(label, probability) of the k most probable classes of one image's logits (classes,)."""
    probs = logits.float().softmax(-1)
    values, indices = probs.topk(min(k, probs.numel()))
    return [(labels[i] if i < len(labels) else _("class {i}").format(i=i), float(p)) for p, i in zip(values.tolist(), indices.tolist())]


@dataclass(frozen=True, eq=False)
class AttentionTrace:
    """q, k, v of every layer from one forward pass, plus what needs the whole of every attention matrix.

    Treat as read-only: the app shares one instance between sessions.
    """

    q: tuple[Tensor, ...]  # per layer (H, T, d)
    k: tuple[Tensor, ...]
    v: tuple[Tensor, ...]
    grid: tuple[int, int]  # (gh, gw) patches
    patch_size: int  # P in pixels
    distance: np.ndarray  # (L, H) mean attention distance in px
    logits: Tensor | None  # (classes,) when the model has a classifier
    prefix: int = 1  # tokens before the first patch: CLS and the R registers

    @property
    def depth(self) -> int:
        return len(self.q)

    @property
    def heads(self) -> int:
        return self.q[0].shape[0]

    @property
    def tokens(self) -> int:
        """T = 1 + R + N."""
        return self.q[0].shape[1]

    @property
    def d_head(self) -> int:
        """d, the dimension of one head's q, k and v."""
        return self.q[0].shape[-1]

    @property
    def scale(self) -> float:
        return self.d_head**-0.5

    @property
    def layout(self) -> TokenLayout:
        return TokenLayout(self.grid, self.prefix)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.q, *self.k, *self.v))

    def rows(self, layer: int, query: int) -> Tensor:
        """Attention of token `query` in every head of `layer`: (H, T)."""
        return attention_probs(self.q[layer][:, query : query + 1], self.k[layer], self.scale)[:, 0]

    def matrix(self, layer: int, head: int) -> Tensor:
        """The full attention matrix of one head: (T, T)."""
        return attention_probs(self.q[layer][head], self.k[layer][head], self.scale)

    def cls_attention(self, layer: int = -1) -> Tensor:
        """DINO's A[0, h, 0, 1+R:] per head: the CLS query's attention to the patches, not renormalised: (H, N)."""
        return self.rows(layer, 0)[:, self.prefix:]

    def breakdown(self, layer: int, head: int, query: int, top: int = 5) -> QueryBreakdown:
        return query_breakdown(self.q[layer][head], self.k[layer][head], self.v[layer][head], query, top)

    def rollout(self, layers: int, fusion: str = "mean", discard: float = 0.0, query: int = 0) -> Tensor:
        """Row `query` of the rollout through the first `layers` layers: (T,), sums to 1.

        A layer's heads are computed together when they fit in `_BLOCK` numbers, else one T × T head at a time.
        """
        def heads(j: int) -> Tensor | Iterable[Tensor]:
            if self.heads * self.tokens**2 <= _BLOCK:
                return attention_probs(self.q[j], self.k[j], self.scale)
            return (self.matrix(j, h) for h in range(self.heads))

        return rollout_row(lambda j: rollout_layer(heads(j), fusion, discard, self.prefix), layers, query)


def trace_attention(model: nn.Module, pixel_values: Tensor, block: int = _BLOCK) -> AttentionTrace:
    """Run the ViT once on pixel_values (1, C, H, W) and keep what the attention page needs (see module docstring)."""
    recorded = trace(model, pixel_values[:1], include=["blocks.*.attn.q", "blocks.*.attn.k", "blocks.*.attn.v"])
    depth = len(model.blocks)
    q, k, v = ([recorded[f"blocks.{i}.attn.{name}"][0] for i in range(depth)] for name in "qkv")
    p, prefix = model.config.patch_size, model.config.prefix
    grid = (pixel_values.shape[-2] // p, pixel_values.shape[-1] // p)
    heads, tokens, _d = q[0].shape
    pos = grid_positions(grid)
    step = max(1, block // (heads * tokens))
    sums = torch.zeros(depth, heads, dtype=torch.float64)
    scale = q[0].shape[-1] ** -0.5
    patches = tokens - prefix
    for start in range(0, patches, step):  # blocks of patch queries; the distances are shared by all layers
        stop = min(start + step, patches)
        dist = torch.cdist(pos[start:stop], pos).to(q[0]) * p
        for layer in range(depth):
            rows = _block_distances(q[layer][:, prefix + start : prefix + stop], k[layer][:, prefix:], scale, dist)
            sums[layer] += rows.sum(-1).double().cpu()
    logits = recorded.output.logits
    return AttentionTrace(tuple(q), tuple(k), tuple(v), grid, p, (sums / patches).numpy(),
                          None if logits is None else logits[0], prefix)


def _on_grid(values: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Patch values in raster order onto the grid: (..., gh·gw) -> (..., gh, gw)."""
    return rearrange(values, "... (h w) -> ... h w", h=grid[0], w=grid[1])


@dataclass(frozen=True)
class DinoMasks:
    """DINO's masks of the last layer's CLS attention at one mass fraction t, per head (Caron et al. 2021, Fig. 3)."""

    t: float  # the fraction of each head's patch mass kept
    masks: np.ndarray  # (H, gh, gw) bool: the smallest set of patches holding t of that mass
    registers: np.ndarray  # (H,) CLS's attention to the registers, left out of the mass (zeros without registers)

    @property
    def kept(self) -> np.ndarray:
        """(H,) patches kept per head."""
        return self.masks.sum((1, 2))

    @property
    def shares(self) -> np.ndarray:
        """(H,) the kept fraction of the patches."""
        return self.kept / self.masks[0].size


@dataclass(frozen=True)
class Rollout:
    """The CLS row of the attention rollout through the first layers (Abnar & Zuidema 2020, §3), and for comparison
    the last of those layers' fused CLS row alone."""

    layers: int  # rolled through layers 1…layers
    fusion: str  # how the heads were merged: mean, max or min
    discard: float  # the lowest fraction of fused patch weights zeroed in each layer
    row: np.ndarray  # (T,) R[CLS]: sums to 1
    alone: np.ndarray  # (T,) fuse_h A_layers[CLS] of that layer alone
    layout: TokenLayout  # which of the T tokens are patches

    @property
    def patch_map(self) -> np.ndarray:
        """(gh, gw) R[CLS, patches] on the grid."""
        return _on_grid(self.row[self.layout.prefix:], self.layout.grid)

    @property
    def alone_map(self) -> np.ndarray:
        """(gh, gw) the single layer's fused CLS row on the grid."""
        return _on_grid(self.alone[self.layout.prefix:], self.layout.grid)

    @property
    def low(self) -> float:
        return self.row[self.layout.prefix:].min()

    @property
    def high(self) -> float:
        return self.row[self.layout.prefix:].max()

    @property
    def cls(self) -> float:
        """R[CLS, CLS]."""
        return self.row[0]

    @property
    def registers(self) -> float:
        """The share of the flow that ends in the registers."""
        return self.row[1:self.layout.prefix].sum()


@dataclass(frozen=True, eq=False)
class AttentionView:
    """What the attention page shows for one layer, head and query token, from one stored trace.

    The query's rows in every head and the selected head's computation are computed at once (H·T·d multiply-adds);
    what costs more — a head's whole matrix, DINO's masks, the rollout — is computed by a method, only for the tab
    that shows it. Row arrays are float32 as the model computed them, so the numbers quoted are the model's.
    """

    trace: AttentionTrace  # the stored q, k, v everything is computed from (shared between sessions, read-only)
    layer: int  # 0-based
    head: int  # 0-based
    query: int  # token index of the query (0 = CLS)
    rows: np.ndarray  # (H, T) the query's attention row in every head of the layer
    breakdown: QueryBreakdown  # the selected head's scores, softmax and weighted sum for the query
    predictions: tuple[tuple[str, float], ...] | None  # the top 5 (label, probability); None without a classifier
    uniform_distance: float  # px: the mean attention distance of uniform attention over this grid

    @property
    def layout(self) -> TokenLayout:
        return self.trace.layout

    @property
    def label(self) -> str:
        """The query token's name: 'CLS', 'register r' or 'patch (row, col)'."""
        return self.layout.label(self.query)

    @property
    def cell(self) -> tuple[int, int] | None:
        """(row, col) of the query patch, None for CLS and the registers."""
        return self.layout.cell(self.query)

    @property
    def row(self) -> np.ndarray:
        """(T,) the selected head's row."""
        return self.rows[self.head]

    @property
    def patch_rows(self) -> np.ndarray:
        """(H, gh, gw) every head's row on the patch grid."""
        return _on_grid(self.rows[:, self.layout.prefix:], self.layout.grid)

    @property
    def patch_low(self) -> np.ndarray:
        """(H,) the smallest weight on a patch per head."""
        return self.rows[:, self.layout.prefix:].min(-1)

    @property
    def patch_high(self) -> np.ndarray:
        """(H,) the largest weight on a patch per head."""
        return self.rows[:, self.layout.prefix:].max(-1)

    @property
    def cls_share(self) -> np.ndarray:
        """(H,) the weight on the CLS key per head."""
        return self.rows[:, 0]

    @property
    def register_share(self) -> np.ndarray:
        """(H,) the weight on all registers together per head (zeros without registers)."""
        return self.rows[:, 1:self.layout.prefix].sum(-1)

    @property
    def patch_share(self) -> np.ndarray:
        """(H,) the weight on all patches together per head."""
        return self.rows[:, self.layout.prefix:].sum(-1)

    @property
    def distance(self) -> np.ndarray:
        """(L, H) mean attention distance in px."""
        return self.trace.distance

    def matrix(self) -> np.ndarray:
        """The selected head's whole attention matrix: (T, T)."""
        return self.trace.matrix(self.layer, self.head).cpu().numpy()

    def masks(self, t: float) -> DinoMasks:
        """DINO's masks of the last layer's CLS attention at mass fraction t."""
        tr = self.trace
        masks = _on_grid(mass_threshold_mask(tr.cls_attention(-1), t).cpu().numpy(), tr.grid)
        cls_rows = tr.rows(tr.depth - 1, 0).cpu().numpy()
        return DinoMasks(t, masks, cls_rows[:, 1:tr.prefix].sum(-1))

    def rollout(self, layers: int, fusion: str = "mean", discard: float = 0.0) -> Rollout:
        """The CLS rollout through layers 1…layers, and that last layer's fused CLS row alone."""
        tr = self.trace
        alone = fuse_heads(tr.rows(layers - 1, 0)[:, None], fusion)[0].cpu().numpy()
        return Rollout(layers, fusion, discard, tr.rollout(layers, fusion, discard).cpu().numpy(), alone, tr.layout)

    def rollout_gflop(self, layers: int) -> float:
        """GFLOP of the rollout through `layers` layers: every head's T × T matrix from q and k."""
        tr = self.trace
        return 2 * layers * tr.heads * tr.tokens**2 * tr.d_head / 1e9


def attention_view(trace: AttentionTrace, layer: int, head: int, query: int, labels: Sequence[str]) -> AttentionView:
    """What the page shows for `layer` and `head` (0-based) and token `query`; labels name the classifier's classes."""
    predictions = None if trace.logits is None else tuple(top_predictions(trace.logits, labels))
    return AttentionView(trace, layer, head, query, trace.rows(layer, query).cpu().numpy(),
                         trace.breakdown(layer, head, query, top=5), predictions,
                         uniform_attention_distance(trace.grid, trace.patch_size))
