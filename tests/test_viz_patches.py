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

from .colour import DEFICIENCIES, contrast, luminance

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
    dropped = [t for t in fig.data if t.name == "dropped"]
    assert len(dropped) == (grid.dropped_pixels > 0)
    if dropped:  # one closed outline per strip
        assert list(dropped[0].x).count(None) == (grid.drop_right > 0) + (grid.drop_bottom > 0)
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
    values, labels = strip.layout.annotations[:12], strip.layout.annotations[12:]
    assert [v.text for v in values] == [f"{x:+.2f}" for x in vector[:12]]
    assert labels[4].text == "k=4<br>(0,1,G)"
    # two pixels a line: element k in line k // 6, column k % 6, its value above its label
    assert [(v.x, round(v.y)) for v in values] == [(k % 6, k // 6) for k in range(12)]
    assert all(v.y < a.y and v.x == a.x for v, a in zip(values, labels))
    np.testing.assert_array_equal(np.asarray(strip.data[0].z).reshape(-1, 3), viz.channel_colours(vector01[:12]))
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


def rgb_of(colour: str) -> tuple[int, ...]:
    """A plotly colour as this module writes them ("black", "white", "#ffd600", "rgb(150, 0, 0)")."""
    named = {"black": (0, 0, 0), "white": (255, 255, 255)}
    if colour in named:
        return named[colour]
    if colour.startswith("#"):
        return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return tuple(int(v) for v in colour[colour.index("(") + 1:-1].split(",")[:3])


def every_figure() -> list:
    """One of each Plotly figure the Patching and Flattening pages draw."""
    rng = np.random.default_rng(4)
    vector = rng.normal(size=16 * 16 * 3).astype(np.float32)
    return [viz.grid_figure(rng.integers(0, 255, (224, 230, 3), dtype=np.uint8), 16, 3),
            viz.patch_zoom_figure(rng.random((16, 16, 3)), 3),
            viz.vector_strip_figure(vector, rng.random(vector.size), 16),
            viz.vector_rows_figure(vector, rng.random(vector.size), 16)]


def test_every_figure_leaves_a_finger_free_to_scroll_the_page():
    """dragmode=False: a touch drag over a chart scrolls the page on a phone (clicks still select)."""
    assert [fig.layout.dragmode for fig in every_figure()] == [False] * 4


def test_every_axis_label_is_readable():
    """Tick labels and axis titles ≥ 4.5:1 on the white page (Streamlit's chart theme would grey them to 3.7:1)."""
    for fig in every_figure():
        for axis in (a for a in (fig.layout.xaxis, fig.layout.yaxis) if a.visible is not False):
            assert contrast(rgb_of(axis.tickfont.color), (255, 255, 255)) >= 4.5
            assert contrast(rgb_of(axis.title.font.color), (255, 255, 255)) >= 4.5


@SETTINGS
@given(st.integers(4, 64), st.integers(0, 2**32 - 1))
def test_the_numbers_written_on_the_strip_are_readable(p, seed):
    """Each value written in a strip cell contrasts ≥ 4.5:1 with the cell's colour (WCAG 1.4.3)."""
    rng = np.random.default_rng(seed)
    vector01 = rng.random(p * p * 3) ** rng.choice([0.3, 1, 3])  # dark, even and light patches
    strip = viz.vector_strip_figure(vector01 - 0.5, vector01, p, 3, count=12)
    cells = np.asarray(strip.data[0].z).reshape(-1, 3)
    for note, cell in zip(strip.layout.annotations, [*cells, *cells]):  # the values, then the labels
        assert contrast(rgb_of(note.font.color), cell) >= 4.5, (note.font.color, cell)


@pytest.mark.parametrize("deficiency", sorted(DEFICIENCIES))
def test_the_selected_frame_stands_out_on_any_photo_with_any_colour_vision(deficiency):
    """The frame is yellow between black borders of 2 px: on any background one of the two contrasts ≥ 3:1
    (WCAG 1.4.11), also as seen with each colour-vision deficiency Chromium emulates."""
    fig = viz.grid_figure(np.full((64, 64, 3), 255, np.uint8), 16, 5)
    (outer, inner) = [s.line for s in fig.layout.shapes if s.fillcolor is None]
    assert outer.width - inner.width >= 4 and (rgb_of(outer.color), rgb_of(inner.color)) == ((0, 0, 0), viz.SELECT)
    backgrounds = [(v, v, v) for v in range(0, 256, 5)]
    backgrounds += [tuple(c) for c in np.random.default_rng(5).integers(0, 256, (500, 3))]
    for background in backgrounds:
        assert max(contrast(colour, background, deficiency) for colour in ((0, 0, 0), viz.SELECT)) >= 3, background


def test_the_dropped_strips_read_without_colour():
    """Hatched, outlined dashed and labelled in words, the label ≥ 4.5:1 on the white margin it sits on."""
    fig = viz.grid_figure(np.zeros((230, 224, 3), np.uint8), 16, 0)
    (strips,) = [t for t in fig.data if t.name == "dropped"]
    assert strips.fill == "toself" and strips.fillpattern.shape == "/" and strips.line.dash == "dash"
    assert contrast(rgb_of(strips.line.color), (255, 255, 255)) >= 3
    (label,) = fig.layout.annotations
    assert label.text == "↑ 6 px dropped" and contrast(rgb_of(label.font.color), (255, 255, 255)) >= 4.5


@pytest.mark.parametrize("background", [(0, 0, 0), (255, 255, 255), (0, 190, 0), (235, 0, 0), (0, 80, 255),
                                        (118, 118, 118), (128, 128, 128), (255, 214, 0)])
def test_text_colour_contrasts_at_least_4_5(background):
    assert contrast(rgb_of(viz.text_colour(background)), background) >= 4.5
    assert viz.relative_luminance(background) == pytest.approx(luminance(background))
