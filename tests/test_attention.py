"""vitviz.attention: rollout, mean attention distance, DINO masks and the traced q/k/v against independent versions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vitviz
from vitviz import attention as att
from vitviz.models import common
from vitviz.models.vit import ViT, ViTConfig

from .helpers import perturb_


def random_attention(heads: int, tokens: int, seed: int = 0, sharp: float = 3.0) -> torch.Tensor:
    """Row-stochastic (heads, T, T) with distinct, uneven weights."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(heads, tokens, tokens, generator=g, dtype=torch.float64) * sharp).softmax(-1)


def loop_rollout(attentions: list[np.ndarray], fusion: str, discard: float) -> np.ndarray:
    """Abnar & Zuidema's rollout written out with plain loops (vit-explain's steps, keepdim fixed, CLS kept)."""
    t = attentions[0].shape[-1]
    result = np.eye(t)
    for a in attentions:
        heads = a.shape[0]
        fused = np.zeros((t, t))
        for i in range(t):
            for j in range(t):
                values = [a[h, i, j] for h in range(heads)]
                fused[i, j] = sum(values) / heads if fusion == "mean" else max(values) if fusion == "max" else min(values)
        patch_values = sorted(fused[i, j] for i in range(1, t) for j in range(1, t))
        count = int(len(patch_values) * discard)
        if count:
            threshold = patch_values[count - 1]
            for i in range(1, t):
                for j in range(1, t):
                    if fused[i, j] <= threshold:
                        fused[i, j] = 0.0
        step = np.zeros((t, t))
        for i in range(t):
            row = [(fused[i, j] + (1.0 if i == j else 0.0)) / 2 for j in range(t)]
            total = sum(row)
            for j in range(t):
                step[i, j] = row[j] / total
        product = np.zeros((t, t))
        for i in range(t):
            for j in range(t):
                product[i, j] = sum(step[i, k] * result[k, j] for k in range(t))
        result = product
    return result


@pytest.mark.parametrize("fusion", att.FUSIONS)
@pytest.mark.parametrize("discard", [0.0, 0.3, 0.9])
def test_rollout_matches_a_loop_implementation_and_rows_sum_to_one(fusion, discard):
    layers = [random_attention(3, 10, seed=i) for i in range(4)]
    rollout = att.attention_rollout(layers, fusion, discard)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(10, dtype=torch.float64))
    expected = loop_rollout([a.numpy() for a in layers], fusion, discard)
    np.testing.assert_allclose(rollout.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fusion", att.FUSIONS)
def test_rollout_row_equals_the_row_of_the_full_product(fusion):
    layers = [random_attention(4, 13, seed=10 + i) for i in range(5)]
    full = att.attention_rollout(layers[:3], fusion, 0.2)
    for query in (0, 7):
        row = att.rollout_row(lambda j: att.rollout_layer(layers[j], fusion, 0.2), 3, query)
        torch.testing.assert_close(row, full[query])


def test_rollout_step_normalises_rows_with_keepdim():
    """vit-explain #16: dividing by a.sum(-1) without keepdim divides columns, and rows stop summing to 1."""
    fused = torch.tensor([[0.2, 0.1, 0.0], [0.0, 0.9, 0.0], [0.3, 0.3, 0.3]], dtype=torch.float64)
    step = att.rollout_step(fused)
    torch.testing.assert_close(step.sum(-1), torch.ones(3, dtype=torch.float64))
    a = (fused + torch.eye(3, dtype=torch.float64)) / 2
    torch.testing.assert_close(step, a / a.sum(-1, keepdim=True))
    assert not torch.allclose((a / a.sum(-1)).sum(-1), torch.ones(3, dtype=torch.float64))


def test_fusion_and_discard():
    a = random_attention(5, 8, seed=3)
    torch.testing.assert_close(att.fuse_heads(a, "mean"), a.mean(0))
    torch.testing.assert_close(att.fuse_heads(a, "max"), a.amax(0))
    torch.testing.assert_close(att.fuse_heads(iter(a), "min"), a.amin(0))
    fused = att.fuse_heads(a, "mean")
    kept = att.discard_lowest(fused, 0.5)
    assert int((kept[1:, 1:] == 0).sum()) == int(49 * 0.5)
    assert torch.equal(kept[0], fused[0]) and torch.equal(kept[:, 0], fused[:, 0])
    assert torch.equal(att.discard_lowest(fused, 0.0), fused)
    with pytest.raises(ValueError):
        att.fuse_heads(a, "median")


def brute_mean_distance(attn: np.ndarray, grid: tuple[int, int], patch: int) -> float:
    """One head (T, T), CLS dropped and rows renormalised, by explicit loops over pixel distances."""
    gh, gw = grid
    n = gh * gw
    total = 0.0
    for i in range(n):
        row = attn[1 + i, 1:] / attn[1 + i, 1:].sum()
        for j in range(n):
            (ri, ci), (rj, cj) = divmod(i, gw), divmod(j, gw)
            total += row[j] * patch * math.hypot(ri - rj, ci - cj)
    return total / n


def test_mean_attention_distance_reference_values():
    grid, t = (14, 14), 197
    identity = torch.eye(t, dtype=torch.float64)
    assert float(att.mean_attention_distance(identity, grid, 16)) == 0.0
    uniform = torch.full((t, t), 1.0 / t, dtype=torch.float64)
    assert float(att.mean_attention_distance(uniform, grid, 16)) == pytest.approx(116.49, abs=0.01)
    assert att.uniform_attention_distance(grid, 16) == pytest.approx(116.49, abs=0.01)


@pytest.mark.parametrize("grid,patch", [((3, 5), 7), ((6, 2), 16), ((1, 1), 8)])
def test_mean_attention_distance_matches_loops_on_non_square_grids(grid, patch):
    t = 1 + grid[0] * grid[1]
    a = random_attention(2, t, seed=5)
    got = att.mean_attention_distance(a, grid, patch)
    expected = [brute_mean_distance(a[h].numpy(), grid, patch) for h in range(2)]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    uniform = torch.full((t, t), 1.0 / t, dtype=torch.float64)
    assert att.uniform_attention_distance(grid, patch) == pytest.approx(float(att.mean_attention_distance(uniform, grid, patch)))


def dino_reference_mask(attn: np.ndarray, t: float) -> np.ndarray:
    """visualize_attention.py, ported to numpy: sort, normalise, cumsum > 1 - t, unsort."""
    order = np.argsort(attn, axis=-1)
    val = np.take_along_axis(attn, order, -1)
    val = val / val.sum(-1, keepdims=True)
    keep = np.cumsum(val, -1) > (1 - t)
    back = np.argsort(order, axis=-1)
    return np.take_along_axis(keep, back, -1)


@pytest.mark.parametrize("t", [0.1, 0.6, 0.9, 1.0])
def test_dino_masks_keep_the_requested_mass(t):
    cls = random_attention(6, 50, seed=7)[:, 0, 1:]  # not renormalised, as DINO takes A[0, :, 0, 1:]
    mask = att.mass_threshold_mask(cls, t)
    share = cls / cls.sum(-1, keepdim=True)
    for h in range(6):
        kept = share[h][mask[h]]
        assert float(kept.sum()) >= t - 1e-9  # the kept patches hold at least t of the mass
        assert float(kept.sum() - kept.min()) < t  # and no smaller set of the largest ones would
        if (~mask[h]).any():  # and they are the largest ones
            assert float(kept.min()) >= float(share[h][~mask[h]].max())
    np.testing.assert_array_equal(mask.numpy(), dino_reference_mask(cls.numpy(), t))


@pytest.fixture(scope="module")
def model():
    cfg = ViTConfig(image_size=32, patch_size=8, dim=24, depth=3, heads=3, mlp_dim=48, labels=tuple("abcdefg"))
    return perturb_(common.init_random(ViT(cfg), "attn-test"), seed=1).eval()


@pytest.fixture(scope="module")
def pixels():
    return torch.randn(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))  # a 5 × 7 grid: non-square


@pytest.fixture(scope="module")
def traced(model, pixels):
    probs = vitviz.trace(model, pixels, include=["blocks.*.attn.probs", "blocks.*.attn.v"])
    return att.trace_attention(model, pixels), probs


def test_selected_query_attention_equals_the_traced_row(traced):
    tr, probs = traced
    assert tr.grid == (5, 7) and tr.tokens == 36 and (tr.depth, tr.heads) == (3, 3)
    for layer in range(3):
        a = probs[f"blocks.{layer}.attn.probs"][0]
        for query in (0, 1, 17, 35):
            torch.testing.assert_close(tr.rows(layer, query), a[:, query])
        torch.testing.assert_close(tr.matrix(layer, 2), a[2])
        torch.testing.assert_close(tr.cls_attention(layer), a[:, 0, 1:])


def test_query_breakdown_is_the_head_output(traced):
    tr, probs = traced
    a, v = probs["blocks.1.attn.probs"][0, 2], probs["blocks.1.attn.v"][0, 2]
    b = tr.breakdown(1, 2, 9, top=5)
    np.testing.assert_allclose(b.probs, a[9].double().numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b.output, (a @ v)[9].double().numpy(), rtol=1e-4, atol=1e-6)
    assert list(b.top) == torch.argsort(a[9], descending=True)[:5].tolist()
    np.testing.assert_allclose(b.scores, (tr.k[1][2] @ tr.q[1][2][9]).double().numpy() * b.scale, rtol=1e-6)
    np.testing.assert_allclose(b.values, v[b.top].double().numpy(), rtol=1e-5, atol=1e-6)


def test_trace_distances_and_rollout_equal_the_definitions_on_traced_probs(traced):
    tr, probs = traced
    layers = [probs[f"blocks.{i}.attn.probs"][0].double() for i in range(3)]
    expected = torch.stack([att.mean_attention_distance(a, (5, 7), 8) for a in layers]).numpy()
    np.testing.assert_allclose(tr.distance, expected, rtol=1e-5)
    for fusion, discard in (("mean", 0.0), ("max", 0.4)):
        full = att.attention_rollout(layers[:2], fusion, discard)
        torch.testing.assert_close(tr.rollout(2, fusion, discard).double(), full[0], rtol=1e-5, atol=1e-7)
        assert float(tr.rollout(3, fusion, discard).sum()) == pytest.approx(1.0, abs=1e-5)


def test_distances_do_not_depend_on_the_block_size(model, pixels, traced):
    small = att.trace_attention(model, pixels, block=50)  # many blocks of one or two query rows
    np.testing.assert_allclose(small.distance, traced[0].distance, rtol=1e-5)


def test_trace_runs_fused_attention_and_keeps_only_q_k_v(model, pixels, monkeypatch):
    """One forward, SDPA in every layer (no probabilities materialised), and only 3·L·T·D floats kept."""
    fused, forwards = [], []
    real = common.F.scaled_dot_product_attention
    monkeypatch.setattr(common.F, "scaled_dot_product_attention", lambda *a, **k: fused.append(1) or real(*a, **k))
    handle = model.register_forward_hook(lambda *a: forwards.append(1))
    try:
        tr = att.trace_attention(model, pixels)
    finally:
        handle.remove()
    assert len(forwards) == 1 and len(fused) == 3
    assert tr.nbytes == 3 * 3 * 36 * 24 * 4
    tr.rows(2, 5), tr.matrix(0, 1), tr.rollout(3), tr.breakdown(2, 0, 3)
    assert len(forwards) == 1, "nothing after the trace runs the model again"


def test_top_predictions_and_labels(traced, model, pixels):
    tr, _ = traced
    top = att.top_predictions(tr.logits, model.config.labels, k=5)
    probs = model(pixels, output_attentions=False).logits[0].softmax(-1)
    assert [p for _, p in top] == pytest.approx(sorted(probs.tolist(), reverse=True)[:5], abs=1e-6)
    assert top[0][0] == model.config.labels[int(probs.argmax())]
    assert att.token_label(0, (5, 7)) == "CLS" and att.token_label(1 + 2 * 7 + 3, (5, 7)) == "patch (2, 3)"


def test_overlay_is_aligned_with_the_patch_grid_on_a_non_square_image():
    """Patch (r, c) colours exactly display pixels [2·8r, 2·8(r+1)) × [2·8c, 2·8(c+1)) at scale 2; the 4-pixel
    strip below the last whole patch row is dimmed and carries no colour."""
    from PIL import Image

    from vitviz.viz import attention as viz

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (44, 56, 3), dtype=np.uint8))  # H = 44 = 5·8 + 4, W = 56 = 7·8
    base = viz.backdrop(image, 8, 112)
    assert base.grid == (5, 7) and base.box == (0, 0, 112, 80) and base.photo.size == (112, 88)
    values = np.zeros((5, 7))
    values[2, 5] = 1.0
    lit = np.asarray(viz.overlay(base, values), dtype=int)
    dark = np.asarray(viz.overlay(base, np.zeros((5, 7)) + 1e-9, vmax=1.0), dtype=int)
    changed = np.argwhere(np.abs(lit - dark).sum(-1) > 0)
    assert changed[:, 0].min() == 32 and changed[:, 0].max() == 47  # rows of patch row 2
    assert changed[:, 1].min() == 80 and changed[:, 1].max() == 95  # columns of patch column 5
    resized = np.asarray(image.resize((112, 88), Image.BICUBIC), dtype=int)
    np.testing.assert_array_equal(lit[80:], resized[80:] * 35 // 100)  # the never-seen strip, dimmed
    outlined = np.asarray(viz.overlay(base, values, query=(4, 0)), dtype=int)
    assert tuple(outlined[64, 8]) == viz.SELECT and tuple(outlined[72, 15]) == viz.SELECT  # patch (4, 0)'s frame
    assert np.array_equal(outlined[:60], lit[:60])  # and nothing else
    mask = np.zeros((5, 7), dtype=bool)
    mask[0, 0] = True
    masked = np.asarray(viz.mask_overlay(base, mask), dtype=int)
    assert masked[:16, :16].mean() > masked[16:80].mean()  # the kept patch is brighter than the darkened rest


def test_query_figure_markers_are_the_patches_in_raster_order():
    from vitviz.viz import attention as viz

    values = np.arange(15, dtype=np.float32).reshape(3, 5) / 100
    fig = viz.query_figure(b"\xff\xd8", (100, 60), values, 20.0, title="t")
    markers = fig.data[0]
    for index in (0, 7, 14):
        r, c = divmod(index, 5)
        assert (markers.x[index], markers.y[index]) == ((c + 0.5) * 20, (r + 0.5) * 20)
        assert list(markers.customdata[index]) == pytest.approx([r, c, values[r, c]])
    assert fig.layout.clickmode == "event+select" and fig.layout.images[0].sizex == 100
    assert viz.colorscale()[0][1] == "rgb({},{},{})".format(*viz.colourise(np.zeros(1), vmax=1.0)[0])


def test_figures_are_valid_plotly():
    """The page's figures are built without validation (for speed): validating the same specs must not raise."""
    import plotly.graph_objects as go

    from vitviz.viz import attention as viz

    rng = np.random.default_rng(0)
    matrix = rng.dirichlet(np.ones(5), size=5).astype(np.float32)
    labels = ["CLS", "(0,0)", "(0,1)", "(1,0)", "(1,1)"]
    figures = [viz.query_figure(b"\xff\xd8", (100, 60), matrix[1:, 1:], 20.0, title="t"),
               viz.distance_figure(rng.uniform(0, 100, (4, 3)), 40.0, layer=2),
               viz.matrix_figure(matrix, labels, title="t", query=1),
               viz.row_figure(matrix[0], (2, 2), title="t")]
    for fig in figures:
        go.Figure(fig.to_dict())  # raises on any invalid property
    with pytest.raises(ValueError):  # and validation is really on there
        go.Figure({"layout": {"heigth": 3}})
