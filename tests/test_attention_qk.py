"""vitviz.attention_qk against independent computations: AttentionViz's normalisation leaves every softmax row as it
was, the picture's faithfulness against a brute-force count on a numpy PCA, and Kobayashi et al.'s decomposition
Σ_h Σ_j α^h_ij f_h(x_j) + b_O against the attention sublayer's output of transformers' own modules (ViT/DeiT/DINO
layout, DINOv2, DINOv2 with registers) on non-square inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Dinov2Config, Dinov2Model, Dinov2WithRegistersConfig, Dinov2WithRegistersModel
from transformers import ViTConfig as HFViTConfig
from transformers import ViTForImageClassification, ViTModel

import vitviz
from vitviz import attention as att
from vitviz import attention_qk as qk

from .helpers import perturb_, save

ATOL = 1e-4
VIT = dict(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=2, num_attention_heads=3,
           intermediate_size=96, attn_implementation="eager")
DINOV2 = dict(image_size=56, patch_size=14, hidden_size=48, num_hidden_layers=2, num_attention_heads=3,
              attn_implementation="eager")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """transformers models (eval), each saved with save_pretrained and loaded back by vitviz."""
    root = tmp_path_factory.mktemp("qk")
    torch.manual_seed(0)
    models = {
        "deit classifier": perturb_(ViTForImageClassification(HFViTConfig(**VIT, num_labels=4)), 11),
        "dino backbone": perturb_(ViTModel(HFViTConfig(**VIT, layer_norm_eps=1e-6), add_pooling_layer=False), 12),
        "no q/k/v bias": perturb_(ViTModel(HFViTConfig(**VIT, qkv_bias=False), add_pooling_layer=False), 13),
        "dinov2": perturb_(Dinov2Model(Dinov2Config(**DINOV2)), 14),
        "dinov2 registers": perturb_(Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**DINOV2,
                                                                                        num_register_tokens=4)), 15),
    }
    out = {}
    for name, model in models.items():
        model.eval()
        out[name] = (model, vitviz.load_model(str(save(model, root / name.replace(" ", "_").replace("/", ""))),
                                              device="cpu"))
    return out


def _layers(reference) -> torch.nn.ModuleList:
    """The encoder layers of any of these transformers models (`layers`, or `encoder.layer`, after any prefix)."""
    return next(m for name, m in reference.named_modules()
                if isinstance(m, torch.nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layer", "layers"))


def _sublayer_outputs(reference, x: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention sublayer's output of `layer` (1, T, D) as transformers computes it, and what reaches the residual
    stream (after DINOv2's layer_scale1; the same tensor for ViT)."""
    block = _layers(reference)[layer]
    seen = {}

    def keep(name: str):
        def hook(_module, _inputs, output) -> None:  # returns None: the forward goes on unchanged
            seen[name] = output[0] if isinstance(output, tuple) else output
        return hook

    hooks = [block.attention.register_forward_hook(keep("attention"))]
    if hasattr(block, "layer_scale1"):
        hooks.append(block.layer_scale1.register_forward_hook(keep("scaled")))
    try:
        with torch.no_grad():  # ViT's E_pos interpolation is opt-in; DINOv2 always interpolates
            reference(x, **({} if "Dinov2" in type(reference).__name__ else {"interpolate_pos_encoding": True}))
    finally:
        for hook in hooks:
            hook.remove()
    return seen["attention"], seen.get("scaled", seen["attention"])


@pytest.mark.parametrize("name", ["deit classifier", "dino backbone", "no q/k/v bias", "dinov2", "dinov2 registers"])
def test_contributions_sum_to_the_attention_sublayer_output_of_transformers(checkpoints, name):
    reference, ours = checkpoints[name]
    p = ours.config.patch_size
    x = torch.randn(1, 3, 3 * p, 5 * p + 3, generator=torch.Generator().manual_seed(1))  # non-square, a dropped strip
    tr = att.trace_attention(ours, x)
    assert tr.grid == (3, 5) and tr.prefix == ours.config.prefix
    for layer in range(tr.depth):
        expected, scaled = _sublayer_outputs(reference, x, layer)
        _w, bias, lam = qk.output_projection(ours, layer)
        for query in (0, ours.config.prefix + 6, tr.tokens - 1):
            vectors = qk.contribution_vectors(ours, tr, layer, query)  # (H, T, D)
            total = vectors.sum((0, 1)) + bias
            torch.testing.assert_close(total, expected[0, query], rtol=0, atol=ATOL)
            torch.testing.assert_close(lam * total, scaled[0, query], rtol=0, atol=ATOL)
            got = qk.contributions(ours, tr, layer, 1, query)
            norms = (lam * vectors.sum(0)).norm(dim=-1).double().numpy()  # ‖λ₁ ⊙ Σ_h α^h_ij f_h(x_j)‖, directly
            np.testing.assert_allclose(got.contribution, norms, rtol=1e-4, atol=1e-6)
            head_f = (lam * qk.value_outputs(ours, tr, layer)[1]).norm(dim=-1).double().numpy()
            np.testing.assert_allclose(got.value_norm, head_f, rtol=1e-4, atol=1e-6)
    assert got.layer_scale == (name.startswith("dinov2"))


def test_all_query_shares_and_received_attention_match_a_loop(checkpoints):
    _reference, ours = checkpoints["dinov2 registers"]
    x = torch.randn(1, 3, 42, 70, generator=torch.Generator().manual_seed(2))
    tr = att.trace_attention(ours, x)
    got = qk.contributions(ours, tr, 1, 2, 0)
    _w, _b, lam = qk.output_projection(ours, 1)
    shares, received = np.zeros(tr.tokens), np.zeros(tr.tokens)
    for i in range(tr.tokens):  # one query at a time, the vectors formed and measured directly
        norms = (lam * qk.contribution_vectors(ours, tr, 1, i).sum(0)).norm(dim=-1).double().numpy()
        shares += norms / norms.sum()
        received += tr.rows(1, i).double().mean(0).numpy()
    np.testing.assert_allclose(got.share, shares / tr.tokens, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got.received, received / tr.tokens, rtol=1e-4, atol=1e-7)
    # a block of a few query rows gives the same shares as one block
    small, _received = qk.output_shares(tr, 1, qk.value_outputs(ours, tr, 1) * lam, block=3 * 3 * tr.tokens)
    np.testing.assert_allclose(small.numpy(), got.share, rtol=1e-5, atol=1e-8)
    assert got.on_grid(got.share).shape == tr.grid


def _random_qk(tokens: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries and keys with different centroids and scales, as trained heads have."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(tokens, d, generator=g, dtype=torch.float64) * 2 + torch.randn(d, generator=g, dtype=torch.float64)
    k = torch.randn(tokens, d, generator=g, dtype=torch.float64) * 0.5 + 3 * torch.randn(d, generator=g, dtype=torch.float64)
    return q, k


@pytest.mark.parametrize("tokens, d", [(1 + 4 * 7, 8), (1 + 4 + 3 * 5, 16), (2, 4)])
def test_normalisation_leaves_every_softmax_row_unchanged(tokens, d):
    q, k = _random_qk(tokens, d, seed=tokens)
    qn, kn, s = qk.normalise(q, k)
    scale = d**-0.5
    torch.testing.assert_close(att.attention_probs(qn, kn, scale), att.attention_probs(q, k, scale), rtol=0, atol=1e-5)
    torch.testing.assert_close(kn.mean(0) * s, q.mean(0))  # keys moved to the queries' centroid, before the scaling
    torch.testing.assert_close(qn.norm(dim=-1).mean(), kn.norm(dim=-1).mean())


def test_normalisation_on_real_weights_of_every_head(checkpoints):
    _reference, ours = checkpoints["dinov2 registers"]
    tr = att.trace_attention(ours, torch.randn(1, 3, 28, 70, generator=torch.Generator().manual_seed(3)))
    for layer in range(tr.depth):
        for head in range(tr.heads):
            q, k = tr.q[layer][head], tr.k[layer][head]
            qn, kn, _s = qk.normalise(q, k)
            torch.testing.assert_close(att.attention_probs(qn, kn, tr.scale), tr.matrix(layer, head), rtol=0, atol=1e-5)


def _brute_faithfulness(q: np.ndarray, k: np.ndarray, scale: float, top: int = qk.TOP) -> tuple[float, float]:
    """AttentionViz's normalisation and a PCA by the covariance's eigenvectors, then each query's nearest keys
    counted against its largest weights with plain loops: (faithfulness, variance kept)."""
    shifted = k - k.mean(0) + q.mean(0)
    s = np.sqrt(np.linalg.norm(shifted, axis=1).mean() / np.linalg.norm(q, axis=1).mean())
    both = np.concatenate([q * s, shifted / s])
    centred = both - both.mean(0)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    coords = centred @ eigenvectors[:, ::-1][:, :2]
    n = len(q)
    total = 0
    for i in range(n):
        scores = [float(q[i] @ k[j]) * scale for j in range(n)]
        true = sorted(range(n), key=lambda j: -scores[j])[:top]
        distances = [float(np.hypot(*(coords[i] - coords[n + j]))) for j in range(n)]
        near = sorted(range(n), key=lambda j: distances[j])[:top]
        total += len(set(true) & set(near))
    return total / (n * top), float(eigenvalues[::-1][:2].sum() / eigenvalues.sum())


def test_faithfulness_and_variance_match_a_brute_force_count(checkpoints):
    _reference, ours = checkpoints["dino backbone"]
    tr = att.trace_attention(ours, torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(4)))
    view = qk.query_key_map(tr, 1, 2, query=5)
    for head in range(tr.heads):
        expected, variance = _brute_faithfulness(tr.q[1][head].double().numpy(), tr.k[1][head].double().numpy(), tr.scale)
        assert view.faithfulness[head] == pytest.approx(expected, abs=1e-9)
        if head == 2:
            assert view.variance == pytest.approx(variance, rel=1e-6)
    assert view.faithfulness_full.shape == (tr.heads,) and np.all((0 <= view.faithfulness_full) & (view.faithfulness_full <= 1))
    probs = tr.matrix(1, 2)[5].numpy()
    assert list(view.top) == list(np.argsort(-probs)[: qk.TOP])
    np.testing.assert_allclose(view.weights, probs[view.top], rtol=1e-6)
    distances = np.hypot(*(view.keys - view.queries[5]).T)
    assert list(view.nearest) == list(np.argsort(distances)[: qk.TOP])
    assert view.agree == view.hits[5] and view.chance == qk.TOP / tr.tokens


def test_colours_name_rows_and_columns_of_patches_only(checkpoints):
    _reference, ours = checkpoints["dinov2 registers"]
    tr = att.trace_attention(ours, torch.randn(1, 3, 28, 42, generator=torch.Generator().manual_seed(5)))
    view = qk.query_key_map(tr, 0, 0, query=0)
    rows, cols = view.coloured_by("row")[: tr.tokens], view.coloured_by("column")[: tr.tokens]
    assert np.isnan(rows[:5]).all() and np.isnan(cols[:5]).all()
    np.testing.assert_array_equal(rows[5:], [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(cols[5:], [0, 1, 2, 0, 1, 2])
    np.testing.assert_allclose(view.coloured_by("received")[: tr.tokens], tr.matrix(0, 0).mean(0).numpy(), rtol=1e-5)
    with pytest.raises(ValueError):
        view.coloured_by("colour")


def _loop_ranks(values: list[float]) -> list[float]:
    return [sum(v < x for v in values) + (sum(v == x for v in values) - 1) / 2 for x in values]


def test_spearman_against_pearson_of_loop_ranks_with_ties():
    g = np.random.default_rng(0)
    for _ in range(5):
        a, b = g.integers(0, 6, 30).astype(float), g.normal(size=30)
        ra, rb = np.array(_loop_ranks(list(a))), np.array(_loop_ranks(list(b)))
        np.testing.assert_allclose(qk.ranks(a), ra)
        assert qk.spearman(a, b) == pytest.approx(float(np.corrcoef(ra, rb)[0, 1]), abs=1e-12)
    assert qk.spearman([1, 2, 3], [30, 20, 10]) == -1.0
    assert qk.spearman([1, 1, 1], [1, 2, 3]) == 0.0


def test_gram_norms_equal_the_norms_of_the_summed_vectors():
    g = torch.Generator().manual_seed(6)
    probs = torch.rand(3, 4, 9, generator=g, dtype=torch.float64)
    outputs = torch.randn(3, 9, 7, generator=g, dtype=torch.float64)
    direct = torch.einsum("hrt,htd->rtd", probs, outputs).norm(dim=-1)
    torch.testing.assert_close(qk.contribution_norms(probs, outputs), direct)


def test_the_joint_figure_is_valid_plotly_with_shapes_for_queries_and_keys(checkpoints):
    import plotly.graph_objects as go

    from vitviz.viz.attention_qk import qk_figure

    _reference, ours = checkpoints["dinov2 registers"]
    tr = att.trace_attention(ours, torch.randn(1, 3, 28, 42, generator=torch.Generator().manual_seed(8)))
    view = qk.query_key_map(tr, 1, 0, query=7)
    fig = qk_figure(view, view.coloured_by("norm"), colour_name="length", title="t")
    go.Figure(fig.to_dict())  # raises on any invalid property
    keys, queries, prefix_keys, prefix_queries = fig.data[:4]
    assert (keys.marker.symbol, queries.marker.symbol) == ("diamond", "circle") == (prefix_keys.marker.symbol,
                                                                                  prefix_queries.marker.symbol)
    np.testing.assert_array_equal(queries.customdata, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    np.testing.assert_allclose(queries.x, view.queries[5:, 0], rtol=1e-6)
    assert list(prefix_keys.text) == ["CLS", "reg 1", "reg 2", "reg 3", "reg 4"]
    lines = [t for t in fig.data if t.mode == "lines+text"]
    assert len(lines) == qk.TOP and [list(t.x) for t in lines][0][1] == pytest.approx(float(view.keys[view.top[0], 0]))
    assert fig.layout.dragmode is False and fig.layout.yaxis.scaleanchor == "x"
