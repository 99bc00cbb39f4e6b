"""Beyond the attention weight, for one layer of a traced ViT: its queries and keys as one map, and what each
attended token actually contributes to the layer's output.

- Queries and keys, one map (AttentionViz, Yeh et al., IEEE VIS 2023, §4.1 "joint embedding"): q·(k + c) = q·k + q·c
  adds the same amount to every score of one query, so translating every key by one vector c changes no softmax row;
  (s·q)·(k/s) = q·k, so trading a common scale changes no score. Keys are translated to the queries' centroid and
  both sets scaled to the same mean norm; one PCA fitted on the normalised queries and keys together gives the 2-D
  picture. How faithful it is is measured: per query, the share of its `TOP` nearest keys in the picture that are
  among its true `TOP` largest softmax weights (averaged over queries, per head).
- What each token contributes (Kobayashi et al., EMNLP 2020, "Attention is Not Only a Weight", §3, Eq. 5–8): head h's
  output for query i is Σ_j α^h_ij f_h(x_j), with f_h(x) = (x W_V^h + b_V^h) W_O^h and W_O^h the head's rows of the
  output projection; the attention sublayer's output is Σ_h Σ_j α^h_ij f_h(x_j) + b_O. The norm ‖Σ_h α^h_ij f_h(x_j)‖
  is token j's contribution to query i; it can rank tokens quite differently from α_ij. DINOv2 multiplies the
  sublayer's output by its LayerScale λ₁ (Oquab et al. 2024; CaiT §2.1) before it reaches the residual stream, so
  the norms here are of λ₁ ⊙ (…), which is 1 for the other ViTs.

Everything is recomputed from the q, k, v that `vitviz.attention.trace_attention` stored and the layer's own output
projection: a layer, head or query change runs no model. The all-query shares need ‖Σ_h α^h_ij f_h(x_j)‖ for every
pair (i, j): with G_j[h, g] = ⟨f_h(x_j), f_g(x_j)⟩ it is √(Σ_h Σ_g α^h_ij α^g_ij G_j[h, g]), H² numbers per pair
instead of a D-vector, computed in blocks of query rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange
from torch import Tensor, nn

from .attention import _BLOCK, AttentionTrace, TokenLayout, _on_grid, attention_probs
from .embeddings import correlation

TOP = 5  # keys per query whose picture neighbours and softmax ranks are compared, and keys listed beside the map


def normalise(q: Tensor, k: Tensor) -> tuple[Tensor, Tensor, float]:
    """AttentionViz's normalisation: q, k (T, d) -> q' (T, d), k' (T, d), s.

    k' = (k − mean k + mean q) / s and q' = s·q, with s² = mean‖k − mean k + mean q‖ / mean‖q‖, so that the queries'
    and the keys' mean norms are equal. Every softmax row of q' k'ᵀ equals that of q kᵀ (see the module docstring).
    """
    shifted = k - k.mean(0) + q.mean(0)
    s = float((shifted.norm(dim=-1).mean() / q.norm(dim=-1).mean()).sqrt())
    return q * s, shifted / s, s


def pca_2d(points: Tensor) -> tuple[Tensor, float]:
    """points (n, d) -> their coordinates on the first two principal axes (n, 2) and the share of the variance kept.

    Each axis's sign is chosen so that its largest loading is positive, so the picture does not flip between runs.
    The axes are the eigenvectors of the d × d scatter matrix (an SVD of the n × d points costs ~100× more here).
    """
    centred = points.double() - points.double().mean(0)
    variance, vectors = torch.linalg.eigh(centred.T @ centred)  # ascending
    axes = vectors[:, -2:].flip(-1).T  # (2, d): the largest first
    signs = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    coords = centred @ (axes * signs).T
    total = float(variance.clamp(min=0).sum())
    return coords, float(variance[-2:].sum()) / total if total > 0 else 1.0


def nearest_hits(queries: Tensor, keys: Tensor, probs: Tensor, top: int = TOP) -> Tensor:
    """For each query, how many of its `top` nearest keys (Euclidean) are among its `top` largest weights.

    queries (T, m), keys (T, m) in any space, probs (T, T) the true softmax rows -> (T,) int counts in 0…top.
    """
    top = min(top, keys.shape[0])
    # float32: at thousands of tokens each T × T matrix is tens of MB, and only the order of the distances matters
    near = torch.cdist(queries.float(), keys.float()).topk(top, dim=-1, largest=False).indices  # (T, top)
    true = probs.topk(top, dim=-1).indices  # (T, top)
    return (near[:, :, None] == true[:, None, :]).any(-1).sum(-1)


@dataclass(frozen=True)
class HeadMap:
    """One head's queries and keys after the normalisation, projected together (what `head_map` returns)."""

    queries: Tensor  # (T, 2) float64 PCA coordinates of the normalised queries
    keys: Tensor  # (T, 2) of the normalised keys
    variance: float  # share of the normalised q and k's variance the two axes keep
    scale: float  # s: queries × s, keys ÷ s
    query_norms: Tensor  # (T,) ‖q'‖
    key_norms: Tensor  # (T,) ‖k'‖
    received: Tensor  # (T,) the attention each key receives, averaged over the queries
    hits: Tensor  # (T,) of each query's TOP nearest keys in the picture, how many are among its TOP largest weights
    hits_full: Tensor  # (T,) the same in the d-dimensional normalised space, before the projection


def head_map(q: Tensor, k: Tensor, scale: float) -> HeadMap:
    """One head's q, k (T, d) and the model's score scale 1/√d -> HeadMap. The T × T softmax is dropped on return:
    a layer's heads are mapped one after another, and at thousands of tokens each matrix is tens of MB."""
    qn, kn, s = normalise(q.double(), k.double())
    coords, variance = pca_2d(torch.cat([qn, kn]))
    tokens = q.shape[0]
    probs = attention_probs(q, k, scale)  # as the model computes them
    return HeadMap(coords[:tokens], coords[tokens:], variance, s, qn.norm(dim=-1), kn.norm(dim=-1), probs.mean(0),
                   nearest_hits(coords[:tokens], coords[tokens:], probs), nearest_hits(qn, kn, probs))


def _np(x: Tensor, dtype=np.float32) -> np.ndarray:
    return x.detach().cpu().numpy().astype(dtype)


@dataclass(frozen=True, eq=False)
class QueryKeyMap:
    """What the "Queries & keys" tab shows for one layer, head and query token."""

    layer: int  # 0-based
    head: int  # 0-based
    query: int  # the selected query token (0 = CLS)
    layout: TokenLayout  # which tokens are CLS, registers and patches
    queries: np.ndarray  # (T, 2) float32 picture coordinates of every query
    keys: np.ndarray  # (T, 2) float32 of every key
    variance: float  # share of the variance of the normalised queries and keys the picture keeps
    scale: float  # s of the normalisation
    query_norms: np.ndarray  # (T,) ‖q'‖ after the normalisation
    key_norms: np.ndarray  # (T,) ‖k'‖
    received: np.ndarray  # (T,) the attention each key receives, averaged over every query of the head
    hits: np.ndarray  # (T,) int: of each query's TOP nearest keys in the picture, how many are among its TOP weights
    faithfulness: np.ndarray  # (H,) per head of the layer: mean share of the nearest keys in the picture that are true top keys
    faithfulness_full: np.ndarray  # (H,) the same before the projection (d dimensions): what the normalisation alone keeps
    top: np.ndarray  # (TOP,) the selected query's keys with the largest weights, largest first
    weights: np.ndarray  # (TOP,) their true softmax weights
    nearest: np.ndarray  # (TOP,) the keys nearest the selected query in the picture, nearest first

    @property
    def tokens(self) -> int:
        return len(self.queries)

    @property
    def agree(self) -> int:
        """How many of the selected query's nearest keys in the picture are among its true top keys."""
        return int(np.isin(self.nearest, self.top).sum())

    @property
    def chance(self) -> float:
        """The faithfulness a random picture would score: TOP/T."""
        return min(TOP, self.tokens) / self.tokens

    def coloured_by(self, what: str) -> np.ndarray:
        """(2T,) the colour values of the queries then the keys for "row", "column", "norm" or "received"; CLS and
        registers have no row or column (NaN)."""
        if what == "norm":
            return np.concatenate([self.query_norms, self.key_norms])
        if what == "received":
            return np.concatenate([self.received, self.received])
        if what not in ("row", "column"):
            raise ValueError(f"cannot colour by {what!r}")
        pre, gw = self.layout.prefix, self.layout.grid[1]
        index = np.arange(self.tokens, dtype=np.float32) - pre
        value = np.floor(index / gw) if what == "row" else np.mod(index, gw)
        value[:pre] = np.nan
        return np.concatenate([value, value])


def query_key_map(trace: AttentionTrace, layer: int, head: int, query: int) -> QueryKeyMap:
    """The joint map of `layer`'s head `head` (0-based) from the stored q and k, with every head's faithfulness."""
    q, k = trace.q[layer], trace.k[layer]
    maps = [head_map(q[h], k[h], trace.scale) for h in range(trace.heads)]
    m = maps[head]
    top_weights, top = attention_probs(q[head, query], k[head], trace.scale).topk(min(TOP, trace.tokens))
    nearest = torch.cdist(m.queries[query : query + 1], m.keys)[0].topk(len(top), largest=False).indices
    per = lambda attr: np.array([float(getattr(x, attr).double().mean()) / len(top) for x in maps])  # noqa: E731
    return QueryKeyMap(layer, head, query, trace.layout, _np(m.queries), _np(m.keys), m.variance, m.scale,
                       _np(m.query_norms), _np(m.key_norms), _np(m.received), _np(m.hits, np.int64),
                       per("hits"), per("hits_full"), _np(top, np.int64), _np(top_weights), _np(nearest, np.int64))


# ---- What each token contributes (Kobayashi et al. 2020) ----------------------------------------------------------
def output_projection(model: nn.Module, layer: int) -> tuple[Tensor, Tensor, Tensor]:
    """`layer`'s output projection split by head and its LayerScale: W_O (H, d, D), b_O (D,), λ₁ (D,) (ones without
    LayerScale). W_O^h are the columns of the Linear's weight that read head h's d outputs."""
    block = model.blocks[layer]
    heads = block.attn.heads
    # detached: the stored q, k, v are inference tensors, which autograd may not record
    weight = rearrange(block.attn.proj.weight.detach(), "out (heads d) -> heads d out", heads=heads)
    bias, scale = block.attn.proj.bias.detach(), getattr(block.ls1, "lambda1", None)
    return weight, bias, torch.ones_like(bias) if scale is None else scale.detach()


def value_outputs(model: nn.Module, trace: AttentionTrace, layer: int) -> Tensor:
    """f_h(x_j) = (x_j W_V^h + b_V^h) W_O^h of every head and token: (H, T, D), λ₁ not applied. The traced v already
    holds x_j W_V^h + b_V^h (H, T, d)."""
    weight, _bias, _scale = output_projection(model, layer)
    return trace.v[layer] @ weight


def contribution_vectors(model: nn.Module, trace: AttentionTrace, layer: int, query: int) -> Tensor:
    """α^h_ij f_h(x_j) for query i = `query`: (H, T, D). Summed over heads and tokens, plus b_O, it is the attention
    sublayer's output for the query (before λ₁)."""
    rows = trace.rows(layer, query)  # (H, T)
    return rows[:, :, None] * value_outputs(model, trace, layer)


def contribution_norms(probs: Tensor, outputs: Tensor) -> Tensor:
    """‖Σ_h α^h_ij f_h(x_j)‖ for a block of queries without forming the vectors: probs (H, r, T), outputs f (H, T, D)
    -> (r, T), through the Gram matrices G_j[h, g] = ⟨f_h(x_j), f_g(x_j)⟩ (T, H, H)."""
    gram = torch.einsum("htd,gtd->thg", outputs, outputs)
    mixed = torch.einsum("hrt,thg->grt", probs, gram)
    return (mixed * probs).sum(0).clamp_(min=0).sqrt_()


def output_shares(trace: AttentionTrace, layer: int, outputs: Tensor, block: int = _BLOCK) -> tuple[Tensor, Tensor]:
    """For every query i, each token's share ‖c_ij‖ / Σ_j' ‖c_ij'‖ of the contribution norms, averaged over the
    queries: (T,), sums to 1; and the attention each token receives, averaged over queries and heads: (T,).
    outputs (H, T, D) are the f_h(x_j) to use (λ₁ applied by the caller)."""
    q, k = trace.q[layer], trace.k[layer]
    heads, tokens = q.shape[0], q.shape[1]
    step = max(1, block // (heads * tokens))
    total, received = torch.zeros(tokens, dtype=torch.float64), torch.zeros(tokens, dtype=torch.float64)
    for start in range(0, tokens, step):
        probs = attention_probs(q[:, start : start + step], k, trace.scale)  # (H, r, T)
        norms = contribution_norms(probs, outputs)
        total += (norms / norms.sum(-1, keepdim=True)).sum(0).double().cpu()
        received += probs.sum((0, 1)).double().cpu()
    return total / tokens, received / (tokens * heads)


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0…n−1 of values (n,), ties sharing their average rank (as Spearman's coefficient needs)."""
    _unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last = np.cumsum(counts) - 1
    return (last - (counts - 1) / 2)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two (n,) arrays: Pearson's correlation of their ranks (0 when one is constant)."""
    return correlation(ranks(np.asarray(a, np.float64)), ranks(np.asarray(b, np.float64)))


@dataclass(frozen=True, eq=False)
class Contributions:
    """What the "What tokens contribute" tab shows for one layer, head and query token. Norms are of what reaches
    the residual stream: λ₁ ⊙ (…) for DINOv2, the sublayer's output itself for the other ViTs."""

    layer: int  # 0-based
    head: int  # 0-based
    query: int  # the selected query token
    layout: TokenLayout  # which tokens are CLS, registers and patches
    weight: np.ndarray  # (T,) α_ij averaged over the heads: the layer's weight on each key
    contribution: np.ndarray  # (T,) ‖λ₁ ⊙ Σ_h α^h_ij f_h(x_j)‖: what each key adds to the query's output
    head_weight: np.ndarray  # (T,) α^h_ij of the selected head
    value_norm: np.ndarray  # (T,) ‖λ₁ ⊙ f_h(x_j)‖ of the selected head: what each key would add at weight 1
    rho: float  # Spearman's correlation of weight and contribution over the T keys
    head_rho: float  # the same for the head: α^h_ij against α^h_ij ‖λ₁ ⊙ f_h(x_j)‖
    share: np.ndarray  # (T,) each token's share of the contribution norms, averaged over all queries of the layer
    received: np.ndarray  # (T,) the attention each token receives, averaged over all queries and heads
    layer_scale: bool  # whether λ₁ was applied (DINOv2)

    @property
    def table(self) -> np.ndarray:
        """(T, 4): weight, contribution, the head's value length and the layer's output share of every token."""
        return np.stack([self.weight, self.contribution, self.value_norm, self.share], -1)

    @property
    def weight_share(self) -> np.ndarray:
        """(T,) the weights as shares (they sum to 1)."""
        return self.weight / self.weight.sum()

    @property
    def contribution_share(self) -> np.ndarray:
        """(T,) the contribution norms as shares of their sum."""
        return self.contribution / self.contribution.sum()

    @property
    def overrated(self) -> int:
        """The token whose weight share most exceeds its contribution share (much looked at, little taken)."""
        return int(np.argmax(self.weight_share - self.contribution_share))

    @property
    def underrated(self) -> int:
        """The token whose contribution share most exceeds its weight share."""
        return int(np.argmax(self.contribution_share - self.weight_share))

    def on_grid(self, values: np.ndarray) -> np.ndarray:
        """(T,) token values -> (gh, gw) the patches' part on the grid."""
        return _on_grid(values[self.layout.prefix:], self.layout.grid)


def contributions(model: nn.Module, trace: AttentionTrace, layer: int, head: int, query: int) -> Contributions:
    """Kobayashi et al.'s norms for `query` in `layer` (0-based), the head's value norms, and every token's share of
    the layer's attention output over all queries, from the stored q, k, v and the layer's output projection."""
    _weight, _bias, lam = output_projection(model, layer)
    outputs = value_outputs(model, trace, layer) * lam  # (H, T, D): λ₁ ⊙ f_h(x_j)
    rows = trace.rows(layer, query)  # (H, T)
    contribution = contribution_norms(rows[:, None], outputs)[0]
    value_norm = outputs[head].norm(dim=-1)
    weight, head_weight = _np(rows.mean(0), np.float64), _np(rows[head], np.float64)
    contribution_, value_norm_ = _np(contribution, np.float64), _np(value_norm, np.float64)
    share, received = output_shares(trace, layer, outputs)
    return Contributions(layer, head, query, trace.layout, weight, contribution_, head_weight, value_norm_,
                         spearman(weight, contribution_), spearman(head_weight, head_weight * value_norm_),
                         share.numpy(), received.numpy(),
                         bool(model.config.layer_scale))
