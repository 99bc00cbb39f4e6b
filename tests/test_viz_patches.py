"""Properties of the Patching / Flattening pictures over the slider ranges (P 4–64, any input size)."""
from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vitviz.images import load_sample
from vitviz.models.vit import ViT, ViTConfig
from vitviz.viz import patches as viz
from vitviz.viz import encode

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def grids(draw, max_side: int = 600):
    """(H, W, P) with at least one whole patch: P over the slider's 4–64, sides up to max_side."""
    p = draw(st.integers(4, 64))
    h = draw(st.integers(p, max(p, max_side)))
    w = draw(st.integers(p, max(p, max_side)))
    return h, w, p


def tiny_vit(p: int) -> ViT:
    """A ViT whose patchify/flatten are the real ones, with no layers to run."""
    return ViT(replace(ViTConfig(), patch_size=p, dim=8, depth=0, heads=1, mlp_dim=8)).eval()


def coded_input(h: int, w: int) -> torch.Tensor:
    """pixel_values whose every value names its own (channel, y, x): c·10⁶ + y·10³ + x."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(h), np.arange(w), indexing="ij")
    return torch.from_numpy((c * 1_000_000 + y * 1_000 + x).astype(np.float64))[None]


@SETTINGS
@given(grids())
def test_grid_counts_match_the_models_patchify(hwp):
    h, w, p = hwp
    grid = viz.PatchGrid(h, w, p)
    patches = tiny_vit(p).patchify(torch.zeros(1, 3, h, w))
    assert patches.shape[1:3] == (grid.rows, grid.cols)
    assert grid.n == grid.rows * grid.cols
    assert grid.rows * p + grid.drop_bottom == h and 0 <= grid.drop_bottom < p
    assert grid.cols * p + grid.drop_right == w and 0 <= grid.drop_right < p
    assert grid.dropped_pixels == h * w - grid.n * p * p


@SETTINGS
@given(grids(), st.data())
def test_locate_inverts_box_and_refuses_dropped_pixels(hwp, data):
    h, w, p = hwp
    grid = viz.PatchGrid(h, w, p)
    i = data.draw(st.integers(0, grid.n - 1))
    top, left, bottom, right = grid.box(i)
    assert (bottom - top, right - left) == (p, p)
    assert grid.locate(left, top) == grid.locate(right - 0.5, bottom - 0.5) == i
    assert grid.cell(i) == (top // p, left // p)
    if grid.drop_right:
        assert grid.locate(w - 0.5, 0) is None
    if grid.drop_bottom:
        assert grid.locate(0, h - 0.5) is None
    with pytest.raises(IndexError):
        grid.box(grid.n)


def test_grid_refuses_inputs_smaller_than_a_patch():
    with pytest.raises(ValueError):
        viz.PatchGrid(63, 200, 64)


@settings(max_examples=25, deadline=None)
@given(st.integers(4, 64), st.integers(1, 3), st.integers(1, 3), st.integers(0, 63), st.integers(0, 63))
def test_vector_labels_follow_the_models_flatten_order(p, gh, gw, extra_h, extra_w):
    """The (p1, p2, c) label of element k is where the real `ViT.flatten` took element k from."""
    h, w = gh * p + extra_h % p, gw * p + extra_w % p
    flat = tiny_vit(p).flatten(tiny_vit(p).patchify(coded_input(h, w)))[0].numpy()
    labels = viz._vector_labels(p, 3)
    assert flat.shape == (gh * gw, p * p * 3) and len(labels) == flat.shape[1]
    i = (gh * gw) - 1  # the last patch: row gh-1, column gw-1
    for k in {0, 1, 2, 3, p * 3, p * p * 3 - 1, (p * p * 3) // 2}:
        p1, p2, c = labels[k].strip("()").split(",")
        c = viz.CHANNEL_NAMES.index(c)
        y, x = (gh - 1) * p + int(p1), (gw - 1) * p + int(p2)
        assert flat[i, k] == c * 1_000_000 + y * 1_000 + x
        assert k == (int(p1) * p + int(p2)) * 3 + c


@SETTINGS
@given(st.lists(st.floats(0, 1), min_size=3, max_size=3), st.sampled_from([None, (0.485, 0.456, 0.406)]))
def test_denormalize_inverts_the_normalisation(rgb, mean):
    std = None if mean is None else (0.229, 0.224, 0.225)
    x = np.asarray(rgb, dtype=np.float32)
    normalised = x if mean is None else (x - np.asarray(mean)) / np.asarray(std)
    np.testing.assert_allclose(viz.denormalize(normalised, mean, std), x, atol=1e-6)


def test_channel_colours_ramp_black_pure_white():
    colours = viz.channel_colours(np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]]))
    assert (colours[0] == 0).all() and (colours[2] == 255).all()
    np.testing.assert_array_equal(colours[1], viz.CHANNEL_RGB.astype(np.uint8))
    # each channel keeps its hue: red cells are reddest, green greenest, blue bluest
    mid = colours[1].astype(int)
    assert [int(np.argmax(mid[c])) for c in range(3)] == [0, 1, 2]


@SETTINGS
@given(grids(max_side=400), st.data())
def test_grid_figure_markers_click_back_to_their_patch(hwp, data):
    h, w, p = hwp
    grid = viz.PatchGrid(h, w, p)
    selected = data.draw(st.integers(0, grid.n - 1))
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    fig = viz.grid_figure(image, p, selected=selected, height=500)
    markers = next(t for t in fig.data if t.name == "patches")
    assert len(markers.x) == grid.n
    for j in {0, grid.n - 1, selected}:
        assert grid.locate(float(markers.x[j]), float(markers.y[j])) == j
    dropped = [s for s in fig.layout.shapes if s.fillcolor == viz.DROPPED_FILL]
    assert len(dropped) == (grid.drop_right > 0) + (grid.drop_bottom > 0)
    top, left, bottom, right = grid.box(selected)
    outlines = [s for s in fig.layout.shapes if s.fillcolor is None]
    assert outlines and all((s.x0, s.y0, s.x1, s.y1) == (left, top, right, bottom) for s in outlines)
    texts = " ".join(a.text for a in fig.layout.annotations)
    if grid.drop_right:
        assert f"{grid.drop_right} px" in texts
    if grid.drop_bottom:
        assert f"{grid.drop_bottom} px dropped" in texts


@pytest.mark.parametrize("h, w, p", [(512, 1536, 4), (1536, 512, 4), (512, 512, 4), (224, 224, 64), (224, 224, 13)])
def test_grid_figure_payload_stays_under_400_kb(h, w, p):
    image = np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)
    size = len(viz.grid_figure(image, p, selected=0).to_json())
    assert size <= 400_000, size


@SETTINGS
@given(grids(max_side=320), st.data())
def test_gallery_shows_the_patches_in_raster_order(hwp, data):
    h, w, p = hwp
    grid = viz.PatchGrid(h, w, p)
    rng = np.random.default_rng(2)
    patches = rng.random((grid.rows, grid.cols, p, p, 3)).astype(np.float32)
    selected = data.draw(st.integers(0, grid.n - 1))
    max_tiles = data.draw(st.sampled_from([9, 64, 324]))
    picture, shown = viz.patch_gallery(patches, selected=selected, max_tiles=max_tiles)
    cols, tile = viz.gallery_layout(grid)
    assert len(shown) <= max(max_tiles, cols) and shown.start % cols == 0 and shown.stop <= grid.n
    assert selected in shown
    if grid.n <= max_tiles:
        assert shown == range(grid.n)
    assert picture.width <= max(880, tile + 8) + 8
    # the first tile holds the first shown patch, enlarged by nearest neighbour
    label = (picture.height - 4) // -(-len(shown) // cols) - tile - 4  # rows of (label + tile + gap 4)
    x0, y0 = 4, 4 + label
    r, c = divmod(shown.start, grid.cols)
    expected = viz.to_uint8(patches[r, c])
    got = np.asarray(picture)[y0 + tile // 2, x0 + tile // 2]
    np.testing.assert_array_equal(got, expected[(tile // 2) * p // tile, (tile // 2) * p // tile])


@settings(max_examples=25, deadline=None)
@given(st.integers(4, 64), st.data())
def test_vector_figures_hold_the_whole_vector(p, data):
    k = p * p * 3
    vector = np.random.default_rng(p).normal(size=k).astype(np.float32)
    vector01 = viz.denormalize(vector.reshape(-1, 3), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).reshape(-1)
    rows = viz.vector_rows_figure(vector, vector01, p, 3)
    heat = rows.data[0]
    np.testing.assert_array_equal(np.asarray(heat.customdata).reshape(-1), vector)
    assert len(heat.x) == p * 3 and len(heat.y) == p
    j = data.draw(st.integers(0, p * 3 - 1))
    assert heat.x[j] == f"p2={j // 3} {viz.CHANNEL_NAMES[j % 3]}"
    strip = viz.vector_strip_figure(vector, vector01, p, 3, count=12)
    assert len(strip.layout.annotations) == 12
    assert strip.layout.xaxis.ticktext[4] == "k=4<br>(0,1,G)"
    assert len(rows.to_json()) <= 400_000


@st.composite
def matrices(draw):
    """(N, P) of real inputs: N·P²·3 = H·W·3 pixels at most 512 × 1536 (the sidebar's largest input)."""
    p = draw(st.integers(4, 64))
    n = draw(st.integers(1, min(5000, 512 * 1536 // (p * p))))
    return n, p


@SETTINGS
@given(matrices(), st.data())
def test_matrix_picture_bounds_and_marked_row(np_, data):
    n, p = np_
    k = p * p * 3
    flat01 = np.random.default_rng(n).random((n, k), dtype=np.float32)
    size = (860, int(min(520, max(160, n * 2))))
    base = viz.matrix_base(flat01, 3, size)
    width, height = base.width - viz.MATRIX_MARGIN, base.height - 8
    assert width <= size[0] and height <= size[1]
    if k <= size[0]:
        assert width % k == 0
    if n <= size[1]:
        assert height % n == 0
    selected = data.draw(st.integers(0, n - 1))
    marked = np.asarray(viz.mark_row(base, n, selected))
    mid = int(4 + (selected + 0.5) * height / n)
    assert tuple(marked[mid, 10]) == viz.SELECT  # the marker points at the row


@pytest.mark.parametrize("p", [4, 8, 13, 16, 37, 64])
def test_matrix_of_a_photo_stays_under_400_kb(p):
    photo = np.asarray(load_sample("coffee").resize((224, 224)), dtype=np.float32) / 255
    g = 224 // p
    flat01 = photo[: g * p, : g * p].reshape(g, p, g, p, 3).transpose(0, 2, 1, 3, 4).reshape(g * g, -1)
    base = viz.matrix_base(flat01, 3, (860, int(min(520, max(160, g * g * 2))))).quantize(250)
    assert len(encode.png(viz.mark_row(base, g * g, g * g // 2))) <= 400_000


def test_png_bytes_are_a_png():
    data = encode.png(Image.new("RGB", (10, 10), "red"), colors=8)
    assert Image.open(io.BytesIO(data)).format == "PNG"


def test_zoom_figure_is_the_patch():
    patch = np.random.default_rng(3).random((7, 7, 3))
    fig = viz.patch_zoom_figure(patch, 5)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), viz.to_uint8(patch))
    assert "patch 5" in json.loads(fig.to_json())["layout"]["title"]["text"]
