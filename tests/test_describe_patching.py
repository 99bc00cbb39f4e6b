"""The text alternatives of the Overview, Patching and Flattening pictures, checked against the arrays and figures
they describe: the numbers, positions and colours they name are those of the data, and every word is translated."""
from __future__ import annotations

import math
import re
import string
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vitviz
from vitviz import i18n, patching
from vitviz.describe import patching as describe
from vitviz.models.vit import ViT, ViTConfig
from vitviz.viz import patches as viz

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tiny_vit(p: int) -> ViT:
    """A ViT whose patchify/flatten are the real ones, with no layers to run, and ImageNet normalisation."""
    model = ViT(replace(ViTConfig(), patch_size=p, dim=8, depth=0, heads=1, mlp_dim=8)).eval()
    model.preprocessing = vitviz.Preprocessing(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    return model


def cut(h: int, w: int, p: int, seed: int = 0) -> patching.Patches:
    """A random photo-like input (h, w) cut by the model's own patchify at P = p."""
    return patching.cut_patches(tiny_vit(p), torch.from_numpy(np.random.default_rng(seed).normal(size=(1, 3, h, w))))


@st.composite
def inputs(draw, max_side: int = 240):
    """(H, W, P, selected) with at least one whole patch; P over the slider's 4–64."""
    p = draw(st.integers(4, 64))
    h, w = draw(st.integers(p, max(p, max_side))), draw(st.integers(p, max(p, max_side)))
    return h, w, p, draw(st.integers(0, (h // p) * (w // p) - 1))


def numbers(pattern: str, text: str) -> tuple[int, ...]:
    """The integers `pattern`'s groups capture in `text` (which must match it once)."""
    (found,) = re.findall(pattern, text)
    return tuple(int(x.replace(",", "")) for x in (found if isinstance(found, tuple) else (found,)))


@pytest.mark.parametrize("rgb, name", [
    ((0, 0, 0), "black"), ((255, 255, 255), "white"), ((128, 128, 128), "grey"), ((60, 60, 60), "dark grey"),
    ((200, 200, 200), "light grey"), ((255, 0, 0), "red"), ((0, 200, 0), "green"), ((0, 0, 255), "blue"),
    ((255, 255, 0), "yellow"), ((255, 140, 0), "orange"), ((150, 90, 40), "brown"), ((120, 0, 160), "purple"),
    ((255, 105, 180), "pink"), ((0, 200, 200), "cyan"), ((40, 80, 30), "dark green"), ((170, 200, 255), "light blue"),
])
def test_colour_names(rgb, name):
    assert describe.colour_name(rgb) == name


@SETTINGS
@given(inputs())
def test_the_grid_description_is_the_figure(hwps):
    """Counts, dropped strips and the selected patch's pixels, read off the figure that `grid_figure` draws."""
    h, w, p, selected = hwps
    grid = viz.PatchGrid(h, w, p)
    image = np.random.default_rng(selected).integers(0, 256, (h, w, 3), dtype=np.uint8)
    text = describe.describe_grid(grid, selected, image)
    fig = viz.grid_figure(image, p, selected, 500)
    markers = next(t for t in fig.data if t.name == "patches")
    assert numbers(r"(\d+) px wide and (\d+) px tall", text) == (w, h)
    rows, cols, n = numbers(r"cut into (\d+) × (\d+) = ([\d,]+) patches", text)
    assert n == len(markers.x) == rows * cols and numbers(r"([\d,]+) the bottom right", text) == (n - 1,)
    assert grid.locate(float(markers.x[n - 1]), float(markers.y[n - 1])) == n - 1
    dropped = [t for t in fig.data if t.name == "dropped"]
    if grid.dropped_pixels:
        xs, ys = (np.array([v for v in values if v is not None], float) for values in (dropped[0].x, dropped[0].y))
        if grid.drop_right:  # the right strip's width on the figure, as the description says
            assert numbers(r"last (\d+) pixel columns", text) == (w - xs[xs < w].max(),)
        if grid.drop_bottom:
            assert numbers(r"last (\d+) pixel rows", text) == (h - ys[ys < h].max(),)
        covered = np.zeros((h, w), bool)
        covered[grid.rows * p:, :] = covered[:, grid.cols * p:] = True
        assert numbers(r"([\d,]+) pixels \(", text) == (covered.sum(),)
    else:
        assert not dropped and "dropped" not in text
    frame = next(s for s in fig.layout.shapes if s.fillcolor is None)  # the selected patch's outline
    x0, x1, y0, y1 = numbers(r"pixels x = (\d+)–(\d+), y = (\d+)–(\d+)", text)
    assert (x0, x1 + 1, y0, y1 + 1) == (frame.x0, frame.x1, frame.y0, frame.y1)
    row, rows_, col, cols_ = numbers(r"row (\d+) of (\d+), column (\d+) of (\d+)", text)
    assert (rows_, cols_) == (rows, cols) and (row * p, col * p) == (frame.y0, frame.x0)
    assert numbers(r"Patch (\d+) is framed", text) == (selected,)


def test_the_selected_patch_is_named_by_its_colour():
    image = np.zeros((64, 96, 3), np.uint8)
    image[..., 2] = 255  # a blue picture …
    image[16:32, 48:64] = (230, 20, 20)  # … whose patch 9 (row 1, column 3) is red
    text = describe.describe_grid(viz.PatchGrid(64, 96, 16), 9, image)
    assert "Patch 9 is framed in yellow and black: row 1 of 4, column 3 of 6, pixels x = 48–63, y = 16–31." in text
    assert text.endswith("It is mostly red.")
    assert describe.describe_grid(viz.PatchGrid(64, 96, 16)) == (
        "The input as the model sees it, 96 px wide and 64 px tall, cut into 4 × 6 = 24 patches of 16 × 16 px; "
        "patch 0 is the top left, 23 the bottom right.")


def test_the_question_grid_of_the_sample_reads_as_the_brief_says():
    text = describe.describe_grid(viz.PatchGrid(224, 230, 16))
    assert text.startswith("The input as the model sees it, 230 px wide and 224 px tall, cut into 14 × 14 = 196 "
                           "patches of 16 × 16 px; patch 0 is the top left, 195 the bottom right.")
    assert text.endswith("Hatched red and labelled “dropped”: the last 6 pixel columns on the right, 1,344 pixels "
                         "(2.6 %) the model never sees.")


@SETTINGS
@given(st.integers(1, 64), st.integers(0, 2**32 - 1))
def test_the_zoom_description_is_the_patch(p, seed):
    patch01 = np.random.default_rng(seed).random((p, p, 3))
    text = describe.describe_zoom(patch01, 5)
    shown = np.asarray(viz.patch_zoom_figure(patch01, 5).data[0].z).astype(int)  # what the figure draws
    for j, name in enumerate("RGB"):
        low, high = re.search(rf"{name} (\d+)(?:–(\d+))?[,.]", text.split("255:")[1]).groups()
        assert (int(low), int(high or low)) == (shown[..., j].min(), shown[..., j].max())
    luma = shown @ np.array([0.299, 0.587, 0.114])
    dark = numbers(r"Darkest pixel at p1 = (\d+), p2 = (\d+)", text)
    bright = numbers(r"brightest at p1 = (\d+), p2 = (\d+)", text)
    assert luma[dark] == luma.min() and luma[bright] == luma.max()
    assert f"{p} × {p} pixels × 3 channels" in text


def test_the_zoom_names_a_lone_bright_pixel():
    patch01 = np.zeros((8, 8, 3))
    patch01[2, 5] = 1.0
    text = describe.describe_zoom(patch01, 3)
    assert text == ("Patch 3 enlarged: 8 × 8 pixels × 3 channels, each pixel a square; mostly black. On a scale of 0 "
                    "to 255: R 0–255, G 0–255, B 0–255. Darkest pixel at p1 = 0, p2 = 0; brightest at p1 = 2, p2 = 5.")


def select_box(picture, colour=viz.SELECT) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the pixels of `colour` in a picture."""
    ys, xs = np.nonzero((np.asarray(picture.convert("RGB")) == colour).all(axis=-1))
    return ys.min(), xs.min(), ys.max(), xs.max()


@pytest.mark.parametrize("h, w, p, selected", [(224, 224, 16, 100), (224, 230, 17, 0), (224, 224, 4, 3135),
                                               (512, 1536, 4, 20_000), (100, 300, 13, 40)])
def test_the_gallery_description_is_the_picture(h, w, p, selected):
    """The framed tile's line and position, read off the drawn gallery, and the patches it shows."""
    view = patching.patching_view(cut(h, w, p), selected)
    text = describe.describe_gallery(view)
    picture, shown = viz.patch_gallery(view.patches.patches01, selected, patching.GALLERY_TILES)
    first, last, n, per_line = numbers(r"Patches ([\d,]+)–([\d,]+) of ([\d,]+) as tiles in raster order, (\d+) per", text)
    assert range(first, last + 1) == shown and n == view.grid.n
    lines = math.ceil(len(shown) / per_line)
    tile, line, of = numbers(r"is tile (\d+) of line (\d+) of (\d+)", text)
    top, left, _bottom, _right = select_box(picture)  # the yellow frame: 1 px left of its tile, level with its label
    assert of == lines and picture.width == per_line * (view.gallery.tile + 4) + 4
    assert (left + 1 - 4) // (view.gallery.tile + 4) == tile - 1  # tiles every tile + 4 px after a 4 px gap
    assert (top - 4) // ((picture.height - 4) // lines) == line - 1
    assert ("not drawn" in text) == (len(shown) < n) and ("Each line is one row of the grid" in text) == (
        per_line == view.grid.cols)
    if len(shown) < n:
        assert numbers(r"The other ([\d,]+) patches", text) == (n - len(shown),)


@pytest.mark.parametrize("h, w, p, selected", [(224, 224, 16, 72), (224, 224, 13, 0), (100, 60, 4, 7)])
def test_the_strip_description_lists_the_numbers_the_figure_writes(h, w, p, selected):
    view = patching.flattening_view(cut(h, w, p), selected)
    text = describe.describe_strip(view)
    fig = viz.vector_strip_figure(view.vector, view.vector01, p, 3, count=view.strip)
    said = re.findall(r"([RGB]) ([+-]\d+\.\d\d)", text)
    assert [v for _c, v in said] == [a.text for a in fig.layout.annotations[:view.strip]]
    assert [float(v) for _c, v in said] == pytest.approx(view.vector[:view.strip], abs=0.005)
    pixels = [tuple(map(int, x)) for x in re.findall(r"pixel \((\d+), (\d+)\)", text)]
    labels = [a.text.split("<br>")[1] for a in fig.layout.annotations[view.strip:]]  # "(p1,p2,C)" in each cell
    assert [f"({p1},{p2},{c})" for (p1, p2), c in zip([q for q in pixels for _ in range(3)], "RGB" * 4)] == labels
    assert f"The first {view.strip} of the {3 * p * p:,} numbers of patch {selected}'s vector" in text


@pytest.mark.parametrize("h, w, p, selected", [(224, 224, 16, 72), (224, 224, 64, 8), (90, 60, 5, 11)])
def test_the_rows_description_names_the_extremes_where_they_are(h, w, p, selected):
    view = patching.flattening_view(cut(h, w, p, seed=selected), selected)
    text = describe.describe_rows(view)
    heat = np.asarray(viz.vector_rows_figure(view.vector, view.vector01, p, 3).data[0].customdata)  # (p1, p2·C + c)
    for word, value in (("largest", heat.max()), ("smallest", heat.min())):
        said, p1, p2, c = re.search(rf"{word}, (-?\d+\.\d\d), (?:is )?at p1 = (\d+), p2 = (\d+), ([RGB])", text).groups()
        assert float(said) == pytest.approx(value, abs=0.005)
        assert heat[int(p1), int(p2) * 3 + "RGB".index(c)] == value
    for c, name in enumerate("RGB"):
        low, high = re.search(rf"{name} (-?\d+\.\d\d)…(-?\d+\.\d\d)", text).groups()
        assert (float(low), float(high)) == pytest.approx((heat[:, c::3].min(), heat[:, c::3].max()), abs=0.005)
    assert f"wrapped into {p} lines (one per p1) of {p}·3 = {3 * p}" in text


@pytest.mark.parametrize("h, w, p, selected", [(224, 224, 16, 72), (224, 224, 4, 3000), (64, 64, 32, 3),
                                               (32, 32, 32, 0)])
def test_the_matrix_description_is_the_picture(h, w, p, selected):
    view = patching.flattening_view(cut(h, w, p, seed=1), selected)
    text = describe.describe_matrix(view)
    n = view.patches.grid.n
    means = view.patches.flat01.mean(axis=1)
    if n >= 2:
        bright = [int(x) for x in re.search(r"brightest rows are patches ([\d, ]+);", text).group(1).split(", ")]
        dark = [int(x) for x in re.search(r"the darkest ([\d, ]+)\.", text).group(1).split(", ")]
        assert len(bright) == len(dark) == min(3, n // 2)
        others = np.delete(means, bright)
        assert means[bright].min() >= others.max() and list(means[bright]) == sorted(means[bright], reverse=True)
        assert means[dark].max() <= np.delete(means, dark).min()
    else:
        assert "brightest" not in text
    base = viz.matrix_base(view.patches.flat01, 3, view.matrix_box)
    frame = np.asarray(viz.mark_row(base, n, selected).convert("RGB"))[:, -1]  # the frame's right edge
    rows = np.nonzero((frame == viz.SELECT).all(axis=-1))[0]
    share = ((rows.min() + rows.max()) / 2 - 4) / (base.height - 8)  # the framed row's centre, down the matrix
    said = float(re.search(r"Row \d+, ([\d.]+) % of the way down", text).group(1))
    assert abs(said / 100 - share) <= 0.015  # a pixel of the picture, and the rounding of the percentage
    assert f"The {n:,} × {view.patches.length:,} matrix" in text and f"Row {selected}," in text
    assert ("Averaged into" in text) == view.averaged
    if view.averaged:
        assert numbers(r"Averaged into (\d+) × (\d+) pixels", text) == (base.width - viz.MATRIX_MARGIN, base.height - 8)


def shapes(h: int, w: int, p: int) -> patching.PipelineShapes:
    return patching.pipeline_shapes(tiny_vit(p), torch.zeros(1, 3, h, w))


def test_the_overview_picture_is_the_input_the_model_reads():
    assert describe.describe_input(shapes(224, 224, 16), "deit-tiny", "cat") == (
        "The image deit-tiny receives (cat), 224 px wide and 224 px tall; the model cuts it into 14 × 14 = 196 "
        "patches of 16 × 16 px.")
    assert describe.describe_input(shapes(230, 224, 16), "deit-tiny", "holiday.jpg").endswith(
        "14 × 14 = 196 patches of 16 × 16 px. No whole patch fits in the last 6 pixel rows at the bottom: the model "
        "drops them.")


class Marked:
    """A translation that writes every literal word of a message in capitals and keeps its {placeholders}: what
    a description says outside the placeholders' values then shows whether it went through `_()`."""

    @staticmethod
    def gettext(message: str) -> str:
        return "".join(literal.upper() + ("" if field is None else "{" + field + (":" + spec if spec else "") + "}")
                       for literal, field, spec, _conv in string.Formatter().parse(message))

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.gettext(singular if n == 1 else plural)


def test_every_word_of_every_description_is_translated(monkeypatch):
    monkeypatch.setattr(i18n, "translation", lambda lang: Marked())
    image = np.random.default_rng(0).integers(0, 256, (230, 224, 3), dtype=np.uint8)
    patches = cut(230, 224, 16)
    view, flat = patching.patching_view(patches, 30), patching.flattening_view(patches, 30)
    texts = [describe.describe_grid(viz.PatchGrid(230, 224, 16), 30, image),
             describe.describe_input(shapes(230, 230, 16), "DEIT", "CAT.JPG"),
             describe.describe_zoom(view.patch01, 30), describe.describe_gallery(view),
             describe.describe_gallery(patching.patching_view(cut(512, 600, 4), 9000)),
             describe.describe_strip(flat), describe.describe_rows(flat), describe.describe_matrix(flat)]
    texts += [describe.colour_name(rgb) for rgb in [(0, 0, 0), (60, 60, 60), (200, 200, 200), (150, 90, 40)]]
    for text in texts:
        assert text and not re.search("[a-z]", text), text
