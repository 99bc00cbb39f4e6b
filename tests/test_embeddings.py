"""The computations behind the "Linear projection" and "Position embeddings" pages, over the slider ranges."""
from __future__ import annotations

import base64
import io
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from einops import rearrange
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import vitviz
from vitviz import embeddings as emb
from vitviz.models.vit import ViT, ViTConfig
from vitviz.viz import embeddings as viz
from vitviz.viz import encode

from .helpers import perturb_, recording_ended

PATCH = st.integers(4, 64)  # the sidebar's patch-size slider
GRID = st.tuples(st.integers(1, 24), st.integers(1, 24))


def small_vit(patch: int = 8, dim: int = 24, depth: int = 2, seed: int = 0) -> ViT:
    cfg = ViTConfig(image_size=4 * patch, patch_size=patch, dim=dim, depth=depth, heads=3, mlp_dim=2 * dim)
    return perturb_(ViT(cfg), seed).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def model():
    return small_vit()


# ---- tracing the embedding stage ----------------------------------------------------------------------------------

def test_embedding_trace_records_what_the_full_trace_records(model):
    x = torch.randn(1, 3, 40, 24)
    mine = emb.embedding_trace(model, x)
    full = vitviz.trace(model, x, include=list(emb.EMBED_TAPS))
    assert set(mine) == set(emb.EMBED_TAPS)
    for name in emb.EMBED_TAPS:
        torch.testing.assert_close(mine[name], full[name], rtol=0, atol=0)
    assert mine["tokens"].shape == (1, 1 + 15, 24) and mine["e_pos"].shape == (1, 16, 24)
    assert recording_ended(model)


def test_embedding_trace_ends_its_recording_on_error(model):
    with pytest.raises(ValueError):
        emb.embedding_trace(model, torch.randn(1, 3, 4, 4))  # smaller than one patch
    assert recording_ended(model)


@settings(max_examples=25, deadline=None)
@given(patch=PATCH, extra=st.tuples(st.integers(0, 63), st.integers(0, 63)), cells=st.tuples(st.integers(1, 3), st.integers(1, 3)))
def test_conv2d_equals_linear_on_flat_patches(patch, extra, cells):
    """Conv2d(kernel = stride = P) and Linear(P²C → D) on the flattened patches give the same tokens, any P and size."""
    m = small_vit(patch, dim=12, depth=1, seed=patch)
    h, w = cells[0] * patch + extra[0] % patch, cells[1] * patch + extra[1] % patch
    x = torch.randn(1, 3, h, w)
    rec = emb.embedding_trace(m, x)
    conv = emb.conv_tokens(m, x)
    assert conv.shape == rec["embeddings"].shape == (1, cells[0] * cells[1], 12)
    scale = float(conv.abs().max())
    assert emb.max_abs_difference(conv, rec["embeddings"]) <= 1e-5 * max(scale, 1.0)


# ---- PCA ------------------------------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(patch=PATCH, dim=st.sampled_from([8, 32, 96, 384]), k=st.integers(1, 40))
def test_filter_pca_components_are_orthonormal_and_match_the_svd(patch, dim, k):
    weight = torch.randn(dim, 3, patch, patch, generator=torch.Generator().manual_seed(patch * dim))
    comps, explained = emb.filter_pca(weight, k)
    flat = comps.reshape(len(comps), -1)
    assert comps.shape[1:] == (3, patch, patch) and len(comps) == min(k, dim - 1, 3 * patch * patch)
    np.testing.assert_allclose(flat @ flat.T, np.eye(len(flat)), atol=1e-8)
    # Against the REFERENCE algorithm: X = W.reshape(D, 3P²), centre rows, SVD, Vᵀ[:k] (up to sign).
    x = weight.reshape(dim, -1).double()
    _, s, vt = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    n = len(flat)
    np.testing.assert_allclose(np.abs(np.sum(vt[:n].numpy() * flat, axis=1)), 1.0, atol=1e-6)
    np.testing.assert_allclose(explained, (s[:n] ** 2 / (s**2).sum()).numpy(), rtol=1e-6, atol=1e-12)
    assert np.all(np.diff(explained) <= 1e-12)


def test_pca_of_a_tall_matrix_matches_the_svd():
    x = torch.randn(500, 12, dtype=torch.float64) @ torch.diag(torch.arange(12, 0, -1).double())
    result = emb.pca(x, 5)
    _, s, vt = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(np.sum(vt[:5].numpy() * result.components, axis=1)), 1.0, atol=1e-9)
    np.testing.assert_allclose(result.explained, (s[:5] ** 2 / (s**2).sum()).numpy(), rtol=1e-9)
    assert np.all(result.components[np.arange(5), np.abs(result.components).argmax(1)] > 0)  # fixed signs


@settings(max_examples=20, deadline=None)
@given(grid=GRID, dim=st.sampled_from([3, 16, 64]))
def test_token_pca_rgb_is_an_image_over_the_grid(grid, dim):
    tokens = torch.randn(grid[0] * grid[1], dim)
    rgb, explained = emb.tokens_pca_rgb(tokens, grid)
    assert rgb.shape == (*grid, 3) and rgb.dtype == np.float32
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert len(explained) <= 3 and np.all(explained >= 0) and explained.sum() <= 1 + 1e-9


def test_token_pca_first_channel_follows_a_dominant_direction():
    """Tokens that vary mostly along one direction: the red channel is that coordinate (up to sign)."""
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(-1, 1, 36)
    tokens = t[:, None] * torch.randn(1, 16, generator=g) * 10 + 0.01 * torch.randn(36, 16, generator=g)
    rgb, explained = emb.tokens_pca_rgb(tokens, (6, 6))
    assert explained[0] > 0.99
    assert abs(np.corrcoef(rgb[..., 0].ravel(), t.numpy())[0, 1]) > 0.99


# ---- position embeddings ----------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(grid=GRID, kind=st.sampled_from(["random", "sincos"]))
def test_similarity_tiles_peak_at_their_own_position(grid, kind):
    gh, gw = grid
    n = gh * gw
    pos = emb.sincos_2d(grid, 64) if kind == "sincos" else torch.randn(n, 64, generator=torch.Generator().manual_seed(n))
    sim = emb.cosine_similarity(pos)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-6)
    tiles = emb.similarity_tiles(sim, grid)
    assert tiles.shape == (gh * (gh + 1) - 1, gw * (gw + 1) - 1) and tiles.size == emb.tile_cells(grid, 1, 1)
    for r in range(gh):
        for c in range(gw):
            tile = tiles[r * (gh + 1) : r * (gh + 1) + gh, c * (gw + 1) : c * (gw + 1) + gw]
            assert not np.isnan(tile).any()
            assert np.unravel_index(np.argmax(tile), tile.shape) == (r, c)
            assert tile[r, c] == pytest.approx(1.0, abs=1e-6)
            if n > 1:
                assert np.delete(tile.ravel(), r * gw + c).max() < 1 - 1e-6
    if gh > 1:
        assert np.isnan(tiles[gh]).all()  # the gap row between tiles


@settings(max_examples=30, deadline=None)
@given(grid=st.tuples(st.integers(1, 128), st.integers(1, 128)), budget=st.sampled_from([2_000, 45_000]))
def test_tile_strides_fit_the_budget_and_keep_own_positions(grid, budget):
    choices = emb.tile_strides(grid, budget)
    stride, inner = choices[0]
    fits = emb.tile_cells(grid, stride, inner) <= budget
    assert fits or (stride, inner) == (max(grid), max(grid))
    if max(grid) <= 14 and budget == 45_000:
        assert (stride, inner) == (1, 1)  # the checkpoints' 14×14 grids are shown whole
    if fits and max(grid) <= 40:
        sim = np.eye(grid[0] * grid[1], dtype=np.float32)
        tiles = emb.similarity_tiles(sim, grid, stride, inner=inner)
        assert tiles.size == emb.tile_cells(grid, stride, inner)
        # Each tile samples the lattice through its own position, so every shown tile contains its peak.
        assert np.nansum(tiles) == len(range(0, grid[0], stride)) * len(range(0, grid[1], stride))
        rows = emb.tile_positions(grid[0], stride, inner)
        assert all(t in shown for t, shown in rows)


def mae_2d_sincos(embed_dim: int, grid_size: int) -> np.ndarray:
    """MAE's util/pos_embed.py get_2d_sincos_pos_embed (cls_token=False), transcribed."""
    def one_d(dim, pos):
        omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
        omega = 1.0 / 10000**omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(grid_w, grid_h), axis=0).reshape([2, 1, grid_size, grid_size])
    return np.concatenate([one_d(embed_dim // 2, grid[0]), one_d(embed_dim // 2, grid[1])], axis=1)


@settings(max_examples=25, deadline=None)
@given(grid=GRID, quarter=st.integers(1, 96))
def test_sincos_known_values(grid, quarter):
    dim = 4 * quarter
    e = emb.sincos_2d(grid, dim).double()
    gh, gw = grid
    assert e.shape == (gh * gw, dim)
    # Position (0, 0): sin 0 = 0, cos 0 = 1 in every frequency.
    np.testing.assert_allclose(e[0].numpy(), np.r_[np.zeros(quarter), np.ones(quarter), np.zeros(quarter), np.ones(quarter)], atol=1e-7)
    r, c = gh - 1, gw - 1
    row = e[r * gw + c].numpy()
    # ω_0 = 1: the first entries of each quarter are sin c, cos c, sin r, cos r.
    np.testing.assert_allclose(row[[0, quarter, 2 * quarter, 3 * quarter]], [math.sin(c), math.cos(c), math.sin(r), math.cos(r)], atol=1e-6)
    if quarter > 1:  # the last frequency is 10000^(-(q-1)/q)
        w = 10000 ** (-(quarter - 1) / quarter)
        assert row[quarter - 1] == pytest.approx(math.sin(c * w), abs=1e-6)
    # Every (sin, cos) pair has length 1, so every row has norm √(D/2).
    np.testing.assert_allclose(e.norm(dim=1).numpy(), math.sqrt(dim / 2), rtol=1e-6)


@pytest.mark.parametrize("grid_size,dim", [(14, 384), (7, 192), (1, 8), (16, 768)])
def test_sincos_equals_mae(grid_size, dim):
    np.testing.assert_allclose(emb.sincos_2d((grid_size, grid_size), dim).numpy(), mae_2d_sincos(dim, grid_size), atol=1e-5)


def test_sincos_needs_dim_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        emb.sincos_2d((3, 3), 10)


def test_native_position_grid_is_the_checkpoint_entries(model):
    native, grid = emb.native_position_grid(model)
    assert grid == (4, 4) and native.shape == (16, 24)
    torch.testing.assert_close(native, model.pos_embed[0, 1:])


# ---- no position embedding: permutation equivariance --------------------------------------------------------

@pytest.mark.parametrize("layers", [1, 2])
def test_shuffle_test_without_pos_only_moves_the_outputs(layers):
    m = small_vit(8, dim=24, depth=2, seed=3)
    with torch.no_grad():
        m.pos_embed.mul_(20)  # a position embedding as large as a trained one
    rec = emb.embedding_trace(m, torch.randn(1, 3, 32, 40))
    result = emb.shuffle_test(m, rec["tokens"], rec["e_pos"], layers)
    assert result.layers == layers
    assert result.without_pos < 1e-5 and result.cls_without_pos < 1e-5
    assert result.with_pos > 1e-2 and result.cls_with_pos > 1e-3


def test_shuffle_patches_is_the_same_permutation():
    img = np.arange(12 * 8 * 3).reshape(12, 8, 3) % 251
    order = emb.patch_permutation(6, seed=0)
    assert torch.equal(order, emb.patch_permutation(6, seed=0)) and sorted(order.tolist()) == list(range(6))
    out = emb.shuffle_patches(img, 4, order)
    assert out.shape == (12, 8, 3)
    for j, i in enumerate(order.tolist()):
        r, c = divmod(j, 2)
        r0, c0 = divmod(i, 2)
        np.testing.assert_array_equal(out[4 * r : 4 * r + 4, 4 * c : 4 * c + 4], img[4 * r0 : 4 * r0 + 4, 4 * c0 : 4 * c0 + 4])


# ---- FlexiViT PI-resize --------------------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(native=st.sampled_from([8, 16]), new=PATCH)
def test_pi_resized_kernel_gives_the_same_token_for_an_enlarged_patch(native, new):
    m = small_vit(native, dim=12, depth=1, seed=native)
    resized = m.with_patch_size(new)
    patch = torch.rand(3, native, native, generator=torch.Generator().manual_seed(new))
    diff, scale = emb.pi_resize_check(m.patch_embed.weight, resized.patch_embed.weight, patch)
    if new >= native:
        assert diff <= 1e-4 * max(scale, 1.0)
    else:  # shrinking: least squares, not exact
        assert diff >= 0


# ---- figures ------------------------------------------------------------------------------------------------------------

@settings(max_examples=12, deadline=None)
@given(grid=st.tuples(st.integers(1, 128), st.integers(1, 128)), kind=st.sampled_from(["random", "sincos"]))
def test_similarity_figure_fits_the_panel_budget(grid, kind):
    n = grid[0] * grid[1]
    pos = emb.sincos_2d(grid, 64) if kind == "sincos" else torch.randn(n, 64)
    fig, stride, inner, structure = viz.similarity_figure(pos, grid, selected=0)
    assert viz.payload_bytes(fig) <= 400_000 and structure.own_peaks == 1.0
    tiles = emb.similarity_tiles(emb.similarity_to(pos, emb.tile_queries(grid, stride)), grid, stride, inner=inner)
    assert picture_levels(fig).shape == tiles.shape  # one pixel a cell, no hover values sent
    # patch 0 always has a tile: it is framed, a black line over a wider white one
    assert [(shape.line.color, shape.line.width) for shape in fig.layout.shapes] == [("white", 5), ("black", 2)]
    assert structure.queries.tolist() == emb.tile_queries(grid, stride)
    assert fig.layout.dragmode is False  # a finger dragging on a phone scrolls the page


def picture_levels(fig) -> np.ndarray:
    """The palette indices of a similarity chart's picture (its image trace's PNG data URI)."""
    picture = Image.open(io.BytesIO(base64.b64decode(fig.data[1].source.split(",", 1)[1])))
    assert picture.mode == "P"
    return np.asarray(picture)


def test_similarity_picture_shows_every_cell_in_its_colour():
    """Each cell's colour is its similarity's step of viridis between the colour bar's ends (the smallest value and 1),
    gaps and padding are white, and the frame sits around the selected tile."""
    pos = torch.randn(6, 16, generator=torch.Generator().manual_seed(3))
    chart = viz.similarity_figure(pos, (2, 3), selected=4)
    assert (chart.stride, chart.inner) == (1, 1)
    go.Figure(chart.figure.to_dict())  # built without validation: the spec is valid (raises otherwise)
    tiles = emb.similarity_tiles(emb.cosine_similarity(pos), (2, 3))
    low, steps = chart.low, viz.SIMILARITY_LEVELS
    assert low == pytest.approx(np.nanmin(tiles)) and chart.figure.data[0].zmax == 1
    levels = picture_levels(chart.figure)
    shown = np.isfinite(tiles)
    np.testing.assert_array_equal(levels[shown], np.round((tiles[shown] - low) / (1 - low) * (steps - 1)))
    assert (levels[~shown] == steps).all()
    palette = np.asarray(Image.open(io.BytesIO(base64.b64decode(chart.figure.data[1].source.split(",", 1)[1])))
                         .getpalette()[: 3 * (steps + 1)]).reshape(-1, 3)
    assert palette[-1].tolist() == [255, 255, 255] and palette[-2].tolist() == [253, 231, 37]  # viridis' yellow end
    assert palette[0].tolist() == [68, 1, 84]  # and its dark violet start
    # patch 4 is tile (1, 1): cells 4…6 across, 3…4 down; its frame runs through the middle of the gaps around it
    (white, black) = chart.figure.layout.shapes
    assert (black.x0, black.x1, black.y0, black.y1) == (3, 7, 2, 5)


def test_token_heatmap_and_mosaic():
    z = np.random.default_rng(0).standard_normal((196, 192)).astype(np.float32)
    fig = viz.token_heatmap(z, 0, 192)
    assert fig.data[1].x0 == 192 and viz.payload_bytes(fig) <= 150_000  # a palette PNG, not 37,632 float32 values
    assert fig.data[0].zmin == -fig.data[0].zmax == -np.abs(z).max()  # the colour bar, centred on 0
    assert fig.layout.dragmode is False and not fig.layout.shapes  # no selected patch: nothing framed
    framed = viz.token_heatmap(z[:50], 100, 0, selected=120)
    assert [(shape.y0, shape.y1, shape.line.color) for shape in framed.layout.shapes] == [
        (119.5, 120.5, "white"), (119.5, 120.5, "black")]
    assert not viz.token_heatmap(z[:50], 100, 0, selected=99).layout.shapes  # row 99 is not in this block
    spec = viz.as_spec(fig)
    assert "template" not in spec["layout"]
    img = viz.mosaic(np.random.default_rng(0).random((64, 16, 16, 3)), 8, 48, gap_px=3)
    assert img.size == (8 * 48 + 7 * 3, 8 * 48 + 7 * 3)
    rgb = np.random.default_rng(1).random((3, 5, 3)).astype(np.float32)
    grey = np.asarray(viz.grey(rgb, 2, (10, 6)))  # (width, height): 2 × 2 px per cell
    assert grey.shape == (6, 10, 3) and (grey[..., 0] == grey[..., 1]).all() and (grey[..., 0] == grey[..., 2]).all()
    np.testing.assert_array_equal(grey[::2, ::2, 0], emb.to_uint8(rgb[..., 2]))
    filters = emb.normalise_filters(np.random.default_rng(0).standard_normal((5, 3, 4, 4)))
    assert filters.shape == (5, 4, 4, 3) and filters.min() == 0 and filters.max() == 1


@pytest.mark.parametrize("size,photo", [((64, 64), False), ((1536, 512), False), ((1536, 512), True)])
def test_encode_fits_the_panel_budget(size, photo):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    data = encode.fitted(noise, photo=photo)
    assert len(data) <= encode.MAX_PANEL_BYTES
    decoded = Image.open(io.BytesIO(data))
    assert decoded.width <= 1460  # st.image would re-encode anything wider
    kind = decoded.format
    assert kind == ("PNG" if size == (64, 64) and not photo else "JPEG")


# ---- the pages' one call each ------------------------------------------------------------------------------------

def independent_tokens(m: ViT, x: torch.Tensor) -> torch.Tensor:
    """x_p E + b by a strided convolution written out with unfold: (1, C, H, W) -> (N, D)."""
    p = m.config.patch_size
    cols = torch.nn.functional.unfold(x, kernel_size=p, stride=p)[0].T  # (N, C·P·P) in (c p1 p2) order
    return cols.double() @ m.patch_embed.weight.reshape(m.config.dim, -1).double().T + m.patch_embed.bias.double()


def test_projection_stage_quotes_the_traced_numbers(model):
    x = torch.randn(1, 3, 40, 28, generator=torch.Generator().manual_seed(1))  # 5 × 3 patches, 4 px left over
    s = emb.projection_stage(model, model, x, selected=4, stage="projection", max_cells=100)
    assert s.grid == (5, 3) and s.n == 15 and s.checkpoint_patch == 8
    assert s.patch_vector == 192 and s.parameters == 192 * 24 + 24 and s.multiply_adds == 15 * 192 * 24
    assert s.flat_shape == (1, 15, 192) and s.weight_shape == (24, 3, 8, 8) and s.matrix_shape == (24, 192)
    expected = independent_tokens(model, x[..., :40, :24]).numpy()
    np.testing.assert_allclose(s.tokens, expected, atol=1e-5)
    assert s.token_scale == pytest.approx(np.abs(expected).max(), rel=1e-5)
    assert 0 <= s.conv_difference < 1e-5 and s.relative_difference == s.conv_difference / s.token_scale
    assert s.resize is None and (s.row, s.col) == (1, 1)
    # The red channel against each patch's mean normalised pixel, both computed here.
    brightness = rearrange(x[0, :, :40, :24], "c (h p1) (w p2) -> (h w) (p1 p2 c)", p1=8, p2=8).mean(1).numpy()
    rgb, explained = emb.tokens_pca_rgb(torch.from_numpy(expected).float(), (5, 3))
    assert s.colours.stage == "projection"
    np.testing.assert_allclose(s.colours.explained, explained, rtol=1e-4)
    red = s.colours.rgb[..., 0].ravel()
    assert s.colours.brightness_correlation == pytest.approx(np.corrcoef(red, brightness)[0, 1], abs=1e-6)


def test_projection_stage_filters_are_the_kernel_scaled(model):
    s = emb.projection_stage(model, model, torch.randn(1, 3, 32, 32), 0, "projection", 45_000)
    w = model.patch_embed.weight.detach().double().numpy()  # (24, 3, 8, 8): fewer than 64 filters, all shown
    lo, hi = w.min(axis=(1, 2, 3), keepdims=True), w.max(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(s.filters.first, ((w - lo) / (hi - lo)).transpose(0, 2, 3, 1), atol=1e-6)
    assert s.filters.count == 24 and s.filters.k == min(28, 24 - 1)
    centred = w.reshape(24, -1) - w.reshape(24, -1).mean(0)
    sv = np.linalg.svd(centred, compute_uv=False)
    np.testing.assert_allclose(s.filters.explained, (sv**2 / (sv**2).sum())[: s.filters.k], rtol=1e-6)


def test_projection_stage_last_layer_colours(model):
    x = torch.randn(1, 3, 32, 40, generator=torch.Generator().manual_seed(2))
    s = emb.projection_stage(model, model, x, 0, "last", 45_000)
    with torch.inference_mode():
        last = model(x, output_attentions=False).last_hidden_state[0, 1:]
    rgb, explained = emb.tokens_pca_rgb(last, (4, 5))
    assert s.colours.stage == "last"
    np.testing.assert_allclose(s.colours.rgb, rgb, atol=1e-6)


def test_projection_stage_falls_back_to_the_projection_for_long_sequences(model, monkeypatch):
    monkeypatch.setattr(emb, "MAX_LAYER_TOKENS", 10)
    s = emb.projection_stage(model, model, torch.randn(1, 3, 32, 40), 0, "last", 45_000)
    assert s.n + 1 > 10 and s.colours.stage == "projection"


@pytest.mark.parametrize("new", [12, 5])
def test_projection_stage_pi_resize(new):
    checkpoint = small_vit(8, dim=12, depth=1, seed=4)
    resized = checkpoint.with_patch_size(new)
    x = torch.rand(1, 3, 3 * new, 2 * new, generator=torch.Generator().manual_seed(new))
    s = emb.projection_stage(resized, checkpoint, x, selected=3, stage="projection", max_cells=45_000)
    k = s.resize
    assert s.checkpoint_patch == 8 and (s.row, s.col) == (1, 1)
    for kernel, picture, ranges in ((checkpoint, k.checkpoint, k.checkpoint_range), (resized, k.resized, k.resized_range)):
        w = kernel.patch_embed.weight.detach().double().numpy()
        lo, hi = w.min(axis=(1, 2, 3)), w.max(axis=(1, 2, 3))
        np.testing.assert_allclose(ranges, np.stack([lo, hi], 1), rtol=1e-6)
        unit = (w - lo[:, None, None, None]) / (hi - lo)[:, None, None, None]
        expected = np.floor(unit.transpose(0, 2, 3, 1) * 255 + 0.5)
        assert picture.dtype == np.uint8 and np.abs(picture.astype(int) - expected).max() <= 1  # float32 vs float64
    # x: patch 3 (row 1, column 1) resampled to 8 × 8; ⟨x, w⟩ as a convolution of that one patch.
    patch = x[:, :, new : 2 * new, new : 2 * new]
    small = torch.nn.functional.interpolate(patch, size=(8, 8), mode="bilinear", align_corners=False)
    tokens = torch.nn.functional.conv2d(small.double(), checkpoint.patch_embed.weight.double())
    assert k.scale == pytest.approx(float(tokens.abs().max()), rel=1e-6)
    if new > 8:  # enlarging: PI-resize is exact
        assert k.difference <= 1e-5 * k.scale
    else:  # shrinking: a least-squares fit, off by a visible amount
        assert k.difference > 1e-3 * k.scale


def test_token_blocks_cover_the_matrix_within_the_budget():
    b = emb.token_blocks(196, 384, 45_000)  # the checkpoints' 14 × 14 tokens: two column blocks
    assert (b.rows, b.cols, b.row_blocks, b.col_blocks) == (196, 192, 1, 2)
    assert [b.col_span(k) for k in range(2)] == [(0, 191), (192, 383)]
    assert b.shape(0, 1) == (196, 192)
    assert emb.token_blocks(15, 24, 100).shape(2, 1) == (5, 12)  # 3 × 2 blocks of 5 tokens × 12 dimensions
    for n, d, cells in [(15, 24, 100), (49_152, 384, 45_000), (3_136, 768, 45_000), (1, 1, 45_000)]:
        b = emb.token_blocks(n, d, cells)
        assert b.rows * b.cols <= max(cells, 16 * b.rows) and b.cols >= 1
        assert b.row_span(b.row_blocks - 1)[1] == n - 1 and b.col_span(b.col_blocks - 1)[1] == d - 1
        assert b.row_span(0)[0] == 0 and b.col_span(0)[0] == 0


def test_correlation_known_values():
    a = np.arange(10.0)
    assert emb.correlation(a, 2 * a + 1) == pytest.approx(1.0)
    assert emb.correlation(a, -a) == pytest.approx(-1.0)
    assert emb.correlation(a, np.ones(10)) == 0.0  # undefined for a constant: the page says 0
    assert emb.correlation(np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4])) == pytest.approx(0.8)


def test_position_stage_quotes_the_traced_numbers():
    m = small_vit(8, dim=24, depth=2, seed=5)  # native grid 4 × 4
    x = torch.randn(1, 3, 40, 24, generator=torch.Generator().manual_seed(5))  # 5 × 3 patches
    image = Image.fromarray(np.random.default_rng(5).integers(0, 256, (40, 24, 3), dtype=np.uint8))
    s = emb.position_stage(m, x, image, layers=2)
    assert s.grid == (5, 3) and s.n == 15 and s.checkpoint_grid == (4, 4) and s.interpolated and not s.grows
    assert s.shapes == {"embeddings": (1, 15, 24), "tokens": (1, 16, 24), "e_pos": (1, 16, 24), "position": (1, 16, 24)}
    np.testing.assert_array_equal(s.tokens[0], m.cls_token[0, 0].numpy())
    np.testing.assert_allclose(s.tokens[1:], independent_tokens(m, x).numpy(), atol=1e-5)
    np.testing.assert_allclose(s.position, s.tokens + s.e_pos, atol=1e-6)
    assert s.cls_difference == 0 and s.sum_difference < 1e-6
    np.testing.assert_array_equal(s.native, m.pos_embed[0, 1:].numpy())
    np.testing.assert_allclose(s.sincos, mae_2d_sincos_grid(24, 5, 3), atol=1e-5)
    order = emb.patch_permutation(15).tolist()
    assert s.order.tolist() == order and sorted(order) == list(range(15))
    pixels = np.asarray(image)
    for j, i in enumerate(order):
        (r, c), (r0, c0) = divmod(j, 3), divmod(i, 3)
        np.testing.assert_array_equal(s.shuffled[8 * r : 8 * r + 8, 8 * c : 8 * c + 8], pixels[8 * r0 : 8 * r0 + 8, 8 * c0 : 8 * c0 + 8])
    assert s.shuffle.layers == 2 and s.shuffle.without_pos < 1e-5 < s.shuffle.with_pos


def test_position_stage_without_sincos_or_shuffle(monkeypatch):
    m = small_vit(8, dim=30, depth=1, seed=6)  # D = 30: no 2-D sin-cos embedding
    monkeypatch.setattr(emb, "MAX_LAYER_TOKENS", 10)
    x = torch.randn(1, 3, 48, 48)  # 6 × 6 patches: more positions than the checkpoint's 4 × 4
    s = emb.position_stage(m, x, Image.new("RGB", (48, 48)), layers=1)
    assert s.sincos is None and s.shuffle is None and s.grows and s.interpolated
    assert s.shuffled.shape == (48, 48, 3)


def mae_2d_sincos_grid(embed_dim: int, gh: int, gw: int) -> np.ndarray:
    """MAE's formula on a gh × gw grid: [sin, cos](column ω) then [sin, cos](row ω), transcribed in numpy."""
    omega = 1.0 / 10000 ** (np.arange(embed_dim // 4) / (embed_dim / 4))
    r, c = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    oc, orow = np.outer(c.ravel(), omega), np.outer(r.ravel(), omega)
    return np.concatenate([np.sin(oc), np.cos(oc), np.sin(orow), np.cos(orow)], axis=1)


def test_similarity_chart_counts_the_tiles_that_peak_elsewhere():
    pos = torch.eye(6)
    pos[1] = pos[0]  # positions 0 and 1 are the same vector: position 1's row peaks first at position 0
    chart = viz.similarity_figure(pos, (2, 3), selected=1)
    assert chart.peaks == pytest.approx(5 / 6) and (chart.stride, chart.inner) == (1, 1) and not chart.thinned
    assert len(chart.figure.layout.shapes) == 2  # one frame, drawn in white and in black
    big = viz.similarity_figure(emb.sincos_2d((60, 60), 64), (60, 60))
    assert big.thinned and big.peaks == 1.0


# ---- what the similarity charts say, in numbers ----------------------------------------------------------------------

def full_structure(pos: torch.Tensor, grid: tuple[int, int]) -> dict:
    """The similarity structure from the whole N × N matrix and explicit loops over position pairs."""
    gh, gw = grid
    sim = emb.cosine_similarity(pos).astype(np.float64)
    cos, dist, same, other, nearest, neighbour = [], [], [], [], [], []
    for q in range(gh * gw):
        best = max((j for j in range(gh * gw) if j != q), key=lambda j: sim[q, j])
        nearest.append(best)
        neighbour.append(abs(best // gw - q // gw) + abs(best % gw - q % gw) == 1)
        for j in range(gh * gw):
            if j != q:
                cos.append(sim[q, j])
                dist.append(math.dist(divmod(q, gw), divmod(j, gw)))
                (same if q // gw == j // gw or q % gw == j % gw else other).append(sim[q, j])
    return {"r": np.corrcoef(cos, dist)[0, 1], "nearest": nearest, "share": np.mean(neighbour),
            "same": np.mean(same), "other": np.mean(other) if other else float("nan")}


@pytest.mark.parametrize("kind, grid", [("sincos", (6, 5)), ("random", (4, 7)), ("sincos", (1, 6))])
def test_similarity_structure_is_what_the_whole_matrix_says(kind, grid):
    n = grid[0] * grid[1]
    pos = emb.sincos_2d(grid, 32) if kind == "sincos" else torch.randn(n, 32, generator=torch.Generator().manual_seed(3))
    queries = list(range(n))
    s = emb.similarity_structure(emb.similarity_to(pos, queries), queries, grid)
    want = full_structure(pos, grid)
    assert s.distance_correlation == pytest.approx(want["r"], abs=1e-6)
    assert s.neighbour_share == pytest.approx(want["share"]) and s.same_line == pytest.approx(want["same"], abs=1e-6)
    if grid[0] == 1:
        assert math.isnan(s.elsewhere)  # one row: every other position shares it
    else:
        assert s.elsewhere == pytest.approx(want["other"], abs=1e-6)
    sim = emb.cosine_similarity(pos)
    # ties (sin-cos is symmetric) may pick another position, at the same similarity
    np.testing.assert_allclose(sim[np.arange(n), s.nearest], sim[np.arange(n), want["nearest"]], atol=1e-6)
    np.testing.assert_allclose(s.nearest_cosine, sim[np.arange(n), s.nearest], atol=1e-6)
    assert s.own_peaks == 1.0
    if kind == "sincos":
        assert s.distance_correlation < -0.5 and s.neighbour_share == 1.0  # built to fall off with distance
    else:
        assert abs(s.distance_correlation) < 0.3


def test_similarity_structure_of_the_shown_tiles_only():
    """A thinned chart describes the rows it draws: its queries, every position of each row."""
    grid = (9, 9)
    pos = emb.sincos_2d(grid, 32)
    queries = emb.tile_queries(grid, 3)
    s = emb.similarity_structure(emb.similarity_to(pos, queries), queries, grid)
    sim = emb.cosine_similarity(pos).astype(np.float64)
    cos = [sim[q, j] for q in queries for j in range(81) if j != q]
    dist = [math.dist(divmod(q, 9), divmod(j, 9)) for q in queries for j in range(81) if j != q]
    assert s.queries.tolist() == queries == [0, 3, 6, 27, 30, 33, 54, 57, 60]
    assert s.distance_correlation == pytest.approx(np.corrcoef(cos, dist)[0, 1], abs=1e-6)


def test_similarity_structure_chunks_add_up(monkeypatch):
    pos = torch.randn(40, 16, generator=torch.Generator().manual_seed(1))
    queries = list(range(40))
    whole = emb.similarity_structure(emb.similarity_to(pos, queries), queries, (5, 8))
    monkeypatch.setattr(emb, "STRUCTURE_CHUNK", 3 * 40)  # three rows of 40 positions at a time
    chunked = emb.similarity_structure(emb.similarity_to(pos, queries), queries, (5, 8))
    assert chunked.distance_correlation == pytest.approx(whole.distance_correlation, abs=1e-9)
    assert chunked.nearest.tolist() == whole.nearest.tolist() and chunked.same_line == pytest.approx(whole.same_line)


def test_similarity_structure_of_a_single_position():
    s = emb.similarity_structure(np.ones((1, 1), np.float32), [0], (1, 1))
    assert s.nearest.tolist() == [-1] and math.isnan(s.nearest_cosine[0]) and s.neighbour_share == 0.0
    assert s.distance_correlation == 0.0 and math.isnan(s.same_line) and math.isnan(s.elsewhere)


def test_pearson_from_sums_known_values():
    x, y = np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4])
    assert emb.pearson_from_sums(4, x.sum(), y.sum(), x @ x, y @ y, x @ y) == pytest.approx(0.8)
    assert emb.pearson_from_sums(4, 4.0, y.sum(), 4.0, y @ y, y.sum()) == 0.0  # x constant: undefined, 0


def luminance(colour: str) -> float:
    """WCAG relative luminance of "#rrggbb" or "rgb(r,g,b)"."""
    if colour.startswith("rgb("):
        channels = [int(v) / 255 for v in colour[4:-1].split(",")]
    else:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_figures_leave_dragging_to_the_page_and_read_in_lightness():
    """dragmode off on every figure; the heatmaps' colour scales grow lighter from end to end, so that their values
    (the sign of a token value included: darker than the middle grey is negative) read without colour vision."""
    assert viz.explained_bar(np.array([0.5, 0.3, 0.2])).layout.dragmode is False
    similarity = viz.similarity_figure(torch.eye(3), (1, 3)).figure
    tokens = viz.token_heatmap(np.zeros((3, 4), np.float32), 0, 0)
    for fig in (similarity, tokens):
        assert fig.layout.dragmode is False
        stops = [luminance(colour) for _, colour in fig.data[0].colorscale]
        assert all(a < b for a, b in zip(stops, stops[1:])), stops
        assert (stops[-1] + 0.05) / (stops[0] + 0.05) >= 7  # the ends far apart in lightness
    assert tokens.data[0].zmid == 0  # the middle of the scale is 0
    bar = viz.explained_bar(np.array([0.5, 0.3, 0.2]))
    for fig in (similarity, tokens, bar):  # text at 17:1, not the chart theme's grey of 3.7:1
        for axis in (fig.layout.xaxis, fig.layout.yaxis):
            assert axis.title.font.color == axis.tickfont.color == viz.INK == fig.layout.font.color
    assert (1.05) / (luminance(viz.INK) + 0.05) >= 4.5
