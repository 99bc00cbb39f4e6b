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


def test_no_figure_captures_a_finger_and_nothing_is_told_by_colour_alone():
    """dragmode False on every figure (a finger scrolling a phone page is not taken by a chart); the heads of the
    distance plot differ by marker shape with a dark outline, the selected layer is labelled, and the query is
    framed black and yellow on the matrix and on the row, as on the pictures."""
    from vitviz.viz import attention as viz

    rng = np.random.default_rng(1)
    matrix = rng.dirichlet(np.ones(5), size=5).astype(np.float32)
    labels = ["CLS", "(0,0)", "(0,1)", "(1,0)", "(1,1)"]
    distance = viz.distance_figure(rng.uniform(0, 100, (4, 6)), 40.0, layer=2)
    framed = viz.matrix_figure(matrix, labels, title="t", query=3)
    row = viz.row_figure(matrix[4], (2, 2), title="t", query=(1, 1))
    figures = [viz.query_figure(b"\xff\xd8", (100, 60), matrix[1:, 1:], 20.0, title="t"), distance, framed, row,
               viz.prefix_strip(matrix[0, :2], ["CLS", "reg 1"], vmax=0.5)]
    assert all(fig.layout.dragmode is False for fig in figures)
    for fig, x, y in ((distance, "layer (network depth)", "mean attention distance (px)"),
                      (framed, "key token j", "query token i"), (row, "column", "row")):
        # plotly.js draws an axis title given as {"text": …} only: a bare string is silently dropped
        assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == (x, y)
    symbols = [trace.marker.symbol for trace in distance.data]
    assert len(set(symbols)) == 6 and all(trace.marker.line.color == viz.MARK_OUTLINE for trace in distance.data)
    assert [a.text for a in distance.layout.annotations][1:] == ["selected"] and distance.layout.annotations[1].x == 3
    for fig, box in ((framed, (-0.5, 4.5, 2.5, 3.5)), (row, (0.5, 1.5, 0.5, 1.5))):
        outer, inner = fig.layout.shapes
        assert (outer.line.color, inner.line.color) == ("black", viz.SELECT_HEX) and outer.line.width > inner.line.width
        assert (inner.x0, inner.x1, inner.y0, inner.y1) == box
    assert viz.row_figure(matrix[0], (2, 2), title="t").layout.shapes == ()


def test_a_mask_is_outlined_along_the_border_of_the_kept_patches():
    from PIL import Image

    from vitviz.viz import attention as viz

    base = viz.backdrop(Image.new("RGB", (40, 40), (90, 90, 90)), 8, 80)  # 5 × 5 patches of 16 display px
    mask = np.zeros((5, 5), dtype=bool)
    mask[1:3, 1:4] = True  # rows 1–2, columns 1–3
    drawn = np.asarray(viz.mask_overlay(base, mask, (90, 90, 90)))
    white = np.all(drawn == 255, -1)
    assert white[16:18, 16:64].all() and white[46:48, 16:64].all()  # top and bottom edges of the kept block, 2 px
    assert white[16:48, 16:18].all() and white[16:48, 62:64].all()  # its left and right edges
    assert not white[18:46, 18:62].any()  # no line between two kept patches
    assert not white[48:].any() and not white[:16].any()  # none on the darkened patches


# ---- What the page shows: AttentionView and its parts, against computations written out independently ----------


@pytest.fixture(scope="module")
def reg_traced():
    """A ViT with 2 registers (prefix 3) on a 5 × 7 grid, its compact trace and the materialised probabilities."""
    cfg = ViTConfig(image_size=32, patch_size=8, dim=24, depth=3, heads=3, mlp_dim=48, registers=2)
    model = perturb_(common.init_random(ViT(cfg), "attn-reg-test"), seed=2).eval()
    pixels = torch.randn(1, 3, 40, 56, generator=torch.Generator().manual_seed(3))
    probs = vitviz.trace(model, pixels, include=["blocks.*.attn.probs"])
    return att.trace_attention(model, pixels), [probs[f"blocks.{i}.attn.probs"][0].double() for i in range(3)]


def test_token_layout_counts_limits_and_labels():
    layout = att.TokenLayout((5, 7), prefix=3)
    assert (layout.patches, layout.tokens, layout.entries) == (35, 38, 1444)
    assert layout.matrix_mb == 1444 * 4 / 2**20 and layout.matrix_gb == 1444 * 4 / 2**30
    assert layout.uniform_weight == 1 / 38
    assert [layout.short(j) for j in (0, 1, 2, 3, 4, 3 + 2 * 7 + 3, 37)] == ["CLS", "reg 1", "reg 2", "(0,0)", "(0,1)",
                                                                           "(2,3)", "(4,6)"]
    assert [layout.label(j) for j in (0, 2, 3 + 2 * 7 + 3)] == ["CLS", "register 2", "patch (2, 3)"]
    assert layout.short_labels()[:4] == ["CLS", "reg 1", "reg 2", "(0,0)"] and len(layout.short_labels()) == 38
    assert layout.prefix_labels() == ["CLS", "reg 1", "reg 2"]
    assert (layout.cell(2), layout.cell(3 + 15)) == (None, (2, 1))
    assert [layout.patch_token(i) for i in (-4, 0, 20, 35, 99)] == [3, 3, 23, 37, 37]
    # The page traces up to 64 × 64 patches with CLS, draws the matrix up to 40 × 40, runs the rollout at once up to
    # 1,601 tokens.
    assert att.TokenLayout((64, 64), 1).traceable and not att.TokenLayout((64, 64), 2).traceable
    assert att.TokenLayout((64, 64), 1).patch_limit == 4096
    assert att.TokenLayout((40, 40), 5).matrix_shown and not att.TokenLayout((40, 41), 1).matrix_shown
    assert not att.TokenLayout((40, 40), 1).rollout_waits and att.TokenLayout((40, 40), 2).rollout_waits


def test_breakdown_recomputes_the_softmax_row_by_hand(traced):
    """Scores, exponentials, the softmax's sum, the weights and Σ a·v of one query, with plain Python arithmetic."""
    tr, _ = traced
    q, k, v = (x[1][2].double().tolist() for x in (tr.q, tr.k, tr.v))
    i, d = 9, len(q[0])
    scores = [sum(a * b for a, b in zip(q[i], k[j])) / math.sqrt(d) for j in range(36)]
    m = max(scores)
    exps = [math.exp(s - m) for s in scores]
    total = sum(exps)
    weights = [e / total for e in exps]
    top = sorted(range(36), key=lambda j: -weights[j])[:5]
    output = [sum(weights[j] * v[j][c] for j in range(36)) for c in range(d)]
    partial = [sum(weights[j] * v[j][c] for j in top) for c in range(d)]

    b = tr.breakdown(1, 2, i, top=5)
    assert list(b.top) == top and b.tokens == 36 and b.sqrt_d == pytest.approx(math.sqrt(8))
    np.testing.assert_allclose(b.scores, scores, rtol=1e-5)
    np.testing.assert_allclose(b.probs, weights, rtol=1e-5)
    np.testing.assert_allclose(b.dots, [scores[j] * math.sqrt(d) for j in top], rtol=1e-5)
    np.testing.assert_allclose(b.exps, [exps[j] for j in top], rtol=1e-5)
    assert b.total == pytest.approx(total, rel=1e-5)
    assert b.top_share == pytest.approx(sum(weights[j] for j in top), rel=1e-5)
    assert b.uniform_share == 5 / 36
    assert b.dims == 6 and b.sums.shape == (7, 6)
    np.testing.assert_allclose(b.sums[:5], [[weights[j] * v[j][c] for c in range(6)] for j in top], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(b.sums[5], partial[:6], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(b.sums[6], output[:6], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(b.partial, partial, rtol=1e-4, atol=1e-7)
    assert b.decimals == (4 if max(abs(x) for row in b.sums for x in row) >= 0.01 else 6)


def test_breakdown_writes_more_decimals_for_tiny_sums():
    g = torch.Generator().manual_seed(4)
    q, k = torch.randn(40, 16, generator=g), torch.randn(40, 16, generator=g)
    big = att.query_breakdown(q, k, torch.ones(40, 16), 3)
    tiny = att.query_breakdown(q, k, torch.full((40, 16), 1e-3), 3)
    assert big.decimals == 4 and big.sums[6] == pytest.approx([1.0] * 6)  # Σ a_j = 1, times v = 1
    assert tiny.decimals == 6 and tiny.sums[6] == pytest.approx([1e-3] * 6)
    assert att.query_breakdown(q[:, :4], k[:, :4], k[:, :4], 0).dims == 4  # d < 6: all of them


def test_view_rows_shares_and_maps_equal_the_traced_probabilities(traced, model, pixels):
    tr, probs = traced
    view = att.attention_view(tr, 2, 1, 17, model.config.labels)
    a = probs["blocks.2.attn.probs"][0, :, 17].double().numpy()  # (H, T)
    assert (view.label, view.cell, view.layout) == ("patch (2, 2)", (2, 2), att.TokenLayout((5, 7), 1))
    np.testing.assert_allclose(view.rows, a, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(view.row, a[1], rtol=1e-5, atol=1e-7)
    for h in range(3):
        patches = [a[h, 1 + r * 7 + c] for r in range(5) for c in range(7)]
        np.testing.assert_allclose(view.patch_rows[h].ravel(), patches, rtol=1e-5, atol=1e-7)
        assert view.patch_low[h] == pytest.approx(min(patches), rel=1e-5)
        assert view.patch_high[h] == pytest.approx(max(patches), rel=1e-5)
        assert view.patch_share[h] == pytest.approx(sum(patches), rel=1e-5)
        assert view.cls_share[h] == pytest.approx(a[h, 0], rel=1e-5)
        assert view.cls_share[h] + view.patch_share[h] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(view.register_share, np.zeros(3))
    np.testing.assert_allclose(view.matrix(), probs["blocks.2.attn.probs"][0, 1].numpy(), rtol=1e-5, atol=1e-7)
    assert view.breakdown.query == 17 and list(view.breakdown.top) == list(np.argsort(-a[1], kind="stable")[:5])
    logits = model(pixels, output_attentions=False).logits[0].softmax(-1)
    assert [p for _, p in view.predictions] == pytest.approx(sorted(logits.tolist(), reverse=True)[:5], abs=1e-6)
    uniform = np.full((36, 36), 1 / 36)
    assert view.uniform_distance == pytest.approx(brute_mean_distance(uniform, (5, 7), 8))
    np.testing.assert_array_equal(view.distance, tr.distance)
    assert view.rollout_gflop(3) == pytest.approx(2 * 3 * 3 * 36**2 * 8 / 1e9)


def test_view_of_a_model_without_classifier_has_no_predictions(reg_traced):
    tr, _ = reg_traced
    assert tr.logits is None and att.attention_view(tr, 0, 0, 0, ()).predictions is None


def test_view_with_registers_splits_cls_registers_and_patches(reg_traced):
    tr, layers = reg_traced
    view = att.attention_view(tr, 1, 2, 3 + 20, ())
    a = layers[1][:, 23].numpy()
    assert view.label == "patch (2, 6)" and view.layout.tokens == 38
    for h in range(3):
        assert view.cls_share[h] == pytest.approx(a[h, 0], rel=1e-5)
        assert view.register_share[h] == pytest.approx(a[h, 1] + a[h, 2], rel=1e-5)
        assert view.patch_share[h] == pytest.approx(sum(a[h, 3:]), rel=1e-5)
        assert view.patch_high[h] == pytest.approx(max(a[h, 3:]), rel=1e-5)
    np.testing.assert_allclose(view.patch_rows.reshape(3, -1), a[:, 3:], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("t", [0.3, 0.6, 1.0])
def test_view_masks_are_dinos_on_the_last_layer(reg_traced, t):
    tr, layers = reg_traced
    masks = att.attention_view(tr, 0, 0, 0, ()).masks(t)
    cls = layers[-1][:, 0].numpy()  # (H, T)
    expected = dino_reference_mask(cls[:, 3:], t)
    assert masks.t == t and masks.masks.shape == (3, 5, 7)
    np.testing.assert_array_equal(masks.masks.reshape(3, -1), expected)
    np.testing.assert_array_equal(masks.kept, expected.sum(-1))
    np.testing.assert_allclose(masks.shares, expected.sum(-1) / 35)
    np.testing.assert_allclose(masks.registers, cls[:, 1] + cls[:, 2], rtol=1e-5)


@pytest.mark.parametrize("fusion,discard", [("mean", 0.0), ("max", 0.4), ("min", 0.0)])
def test_view_rollout_is_the_row_of_the_full_product(traced, fusion, discard):
    tr, probs = traced
    layers = [probs[f"blocks.{i}.attn.probs"][0].double() for i in range(3)]
    rolled = att.attention_view(tr, 0, 0, 0, ()).rollout(2, fusion, discard)
    full = loop_rollout([a.numpy() for a in layers[:2]], fusion, discard)[0]
    fuse = {"mean": np.mean, "max": np.max, "min": np.min}[fusion]
    alone = fuse(layers[1][:, 0].numpy(), axis=0)
    assert (rolled.layers, rolled.fusion, rolled.discard) == (2, fusion, discard)
    np.testing.assert_allclose(rolled.row, full, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(rolled.alone, alone, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(rolled.patch_map.ravel(), full[1:], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(rolled.alone_map.ravel(), alone[1:], rtol=1e-5, atol=1e-7)
    assert (rolled.low, rolled.high, rolled.cls) == pytest.approx((full[1:].min(), full[1:].max(), full[0]), rel=1e-4)
    assert rolled.registers == 0


def test_view_rollout_counts_the_flow_into_registers(reg_traced):
    tr, layers = reg_traced
    rolled = att.attention_view(tr, 0, 0, 0, ()).rollout(3)
    full = att.attention_rollout(layers, "mean", 0.0)[0].numpy()
    np.testing.assert_allclose(rolled.row, full, rtol=1e-4, atol=1e-7)
    assert rolled.registers == pytest.approx(full[1] + full[2], rel=1e-4)
    assert rolled.row.sum() == pytest.approx(1.0, abs=1e-5)
