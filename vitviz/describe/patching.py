"""Text alternatives of the Overview, Patching and Flattening pictures, and of the patch grid a lesson question asks a
student to click: the input and its patch grid (what it drops, which patch is selected and its colour), the enlarged
patch with its values, the gallery, the flattened vector (strip and rows) and the N × P²C matrix. Each is computed
from the arrays its picture draws (`vitviz.patching` results, `vitviz.viz.patches` inputs)."""
from __future__ import annotations

import colorsys
import math

import numpy as np

from ..i18n import N_, _, sentences
from ..patching import FlatteningView, PatchingView, PipelineShapes
from ..viz.patches import CHANNEL_NAMES, PatchGrid, to_uint8
from .common import percent, span

LUMA = np.array([0.299, 0.587, 0.114])  # Rec. 601: how bright a pixel looks, for "darkest" / "brightest"
# Hue bands (upper bound in degrees, name) for naming a patch's mean colour as a student would.
_HUES = ((15, N_("red")), (45, N_("orange")), (70, N_("yellow")), (165, N_("green")), (195, N_("cyan")),
         (260, N_("blue")), (290, N_("purple")), (340, N_("pink")), (360, N_("red")))
ROWS_NAMED = 3  # the matrix's brightest and darkest rows named


def colour_name(rgb) -> str:
    """A colour (R, G, B) in 0…255 as a word: "black", "light grey", "brown", "dark green", …"""
    hue, saturation, value = colorsys.rgb_to_hsv(*(float(v) / 255 for v in rgb))
    if value < 0.2:
        return _("black")
    if saturation < 0.2:
        if value > 0.85:
            return _("white")
        name = N_("grey")
    else:
        name = next(band for bound, band in _HUES if hue * 360 < bound)
        if name == N_("orange") and value < 0.65:
            name = N_("brown")  # a dark orange is what a student calls brown (fur, wood, soil)
    if value < 0.45:
        return _("dark {colour}").format(colour=_(name))
    if value > 0.75 and saturation < 0.45:
        return _("light {colour}").format(colour=_(name))
    return _(name)


def _strips(grid: PatchGrid) -> str:
    """The strips a grid drops (P does not divide the input): "the last 3 pixel columns on the right and …"."""
    right = _("the last {n} pixel columns on the right").format(n=grid.drop_right)
    bottom = _("the last {n} pixel rows at the bottom").format(n=grid.drop_bottom)
    if grid.drop_right and grid.drop_bottom:
        return _("{right} and {bottom}").format(right=right, bottom=bottom)
    return right if grid.drop_right else bottom


def _dropped(grid: PatchGrid) -> str:
    """What the grid figure's hatched strips drop, or "" when P divides the input."""
    if not grid.dropped_pixels:
        return ""
    return _("Hatched red and labelled “dropped”: {strips}, {pixels:,} pixels ({share}) the model never sees.").format(
        strips=_strips(grid), pixels=grid.dropped_pixels,
        share=percent(grid.dropped_pixels / (grid.height * grid.width)))


def describe_grid(grid: PatchGrid, selected: int | None = None, image: np.ndarray | None = None) -> str:
    """The input cut into its patch grid (`viz.patches.grid_figure`): its size and the grid, the strips it drops and
    the selected patch (where it is, which pixels, and, given the image (H, W, 3) uint8 drawn, its colour)."""
    parts = [_("The input as the model sees it, {width} px wide and {height} px tall, cut into {rows} × {cols} = {n:,} "
               "patches of {p} × {p} px; patch 0 is the top left, {last:,} the bottom right.").format(
                   width=grid.width, height=grid.height, rows=grid.rows, cols=grid.cols, n=grid.n, p=grid.patch,
                   last=grid.n - 1), _dropped(grid)]
    if selected is not None and 0 <= selected < grid.n:
        top, left, bottom, right = grid.box(selected)
        row, col = grid.cell(selected)
        parts.append(_("Patch {index} is framed in yellow and black: row {row} of {rows}, column {col} of {cols}, "
                       "pixels x = {x}, y = {y}.").format(index=selected, row=row, rows=grid.rows, col=col,
                                                          cols=grid.cols, x=span(left, right - 1),
                                                          y=span(top, bottom - 1)))
        if image is not None:
            mean = np.asarray(image)[top:bottom, left:right, :3].reshape(-1, 3).mean(axis=0)
            parts.append(_("It is mostly {colour}.").format(colour=colour_name(mean)))
    return sentences(*parts)


def describe_input(shapes: PipelineShapes, model: str, label: str) -> str:
    """The overview's picture: the image `model` receives (`label`: its file or sample name) and how it is cut."""
    grid = PatchGrid(shapes.height, shapes.width, shapes.patch)
    return sentences(
        _("The image {model} receives ({label}), {width} px wide and {height} px tall; the model cuts it into "
          "{rows} × {cols} = {n:,} patches of {p} × {p} px.").format(
              model=model, label=label, width=grid.width, height=grid.height, rows=grid.rows, cols=grid.cols,
              n=grid.n, p=grid.patch),
        _("No whole patch fits in {strips}: the model drops them.").format(strips=_strips(grid))
        if grid.dropped_pixels else "")


def describe_zoom(patch01: np.ndarray, index: int) -> str:
    """The enlarged patch (`viz.patches.patch_zoom_figure` of patch01 (P, P, C) in [0, 1]): its colour, each
    channel's range in the 0…255 the figure shows, and where its darkest and brightest pixels are."""
    rgb = to_uint8(patch01[..., :3]).astype(np.int64)
    p, c = patch01.shape[0], patch01.shape[-1]
    luma = rgb @ LUMA
    dark, bright = (np.unravel_index(f(luma), luma.shape) for f in (np.argmin, np.argmax))
    ranges = ", ".join(f"{name} {span(int(rgb[..., j].min()), int(rgb[..., j].max()))}"
                       for j, name in enumerate(CHANNEL_NAMES))
    return sentences(
        _("Patch {index} enlarged: {p} × {p} pixels × {c} channels, each pixel a square; mostly {colour}.").format(
            index=index, p=p, c=c, colour=colour_name(rgb.reshape(-1, 3).mean(axis=0))),
        _("On a scale of 0 to 255: {ranges}.").format(ranges=ranges),
        _("Darkest pixel at p1 = {dark_row}, p2 = {dark_col}; brightest at p1 = {bright_row}, p2 = {bright_col}."
          ).format(dark_row=int(dark[0]), dark_col=int(dark[1]), bright_row=int(bright[0]), bright_col=int(bright[1])))


def describe_gallery(view: PatchingView) -> str:
    """The gallery (`viz.patches.patch_gallery` of the view): which patches it shows, how it lays them out, and where
    the selected patch's framed tile is."""
    g, grid, index = view.gallery, view.grid, view.selected.index
    line, tile = divmod(index - g.shown.start, g.per_line)
    return sentences(
        _("Patches {first:,}–{last:,} of {n:,} as tiles in raster order, {per_line} per line, each with its index "
          "above it.").format(first=g.shown.start, last=g.shown.stop - 1, n=grid.n, per_line=g.per_line),
        _("A row of the grid ({cols} patches) takes more than one line.").format(cols=grid.cols) if g.wraps
        else _("Each line is one row of the grid."),
        _("Patch {index}, framed in yellow and black, is tile {tile} of line {line} of {lines}.").format(
            index=index, tile=tile + 1, line=line + 1, lines=math.ceil(len(g.shown) / g.per_line)),
        _("The other {hidden:,} patches are not drawn.").format(hidden=g.hidden) if g.hidden else "")


def _element(k: int, patch: int, channels: int) -> tuple[int, int, str]:
    """Element k of a flattened patch in (p1 p2 c) order -> (p1, p2, channel name)."""
    names = CHANNEL_NAMES if channels == 3 else [str(j) for j in range(channels)]
    return k // (patch * channels), k // channels % patch, names[k % channels]


def describe_strip(view: FlatteningView) -> str:
    """The strip of the first numbers of the selected patch's vector (`viz.patches.vector_strip_figure`): every
    number shown, pixel by pixel, as the figure writes it."""
    p, c, vector = view.patches.grid.patch, view.patches.channels, view.vector
    pixels = []
    for start in range(0, view.strip, c):
        p1, p2, _name = _element(start, p, c)
        values = ", ".join(f"{_element(k, p, c)[2]} {vector[k]:+.2f}" for k in range(start, min(start + c, view.strip)))
        pixels.append(_("pixel ({p1}, {p2}): {values}").format(p1=p1, p2=p2, values=values))
    return _("The first {count} of the {size:,} numbers of patch {index}'s vector, k = 0–{last}, the values the model "
             "reads: {pixels}.").format(count=view.strip, size=vector.size, index=view.selected.index,
                                        last=view.strip - 1, pixels="; ".join(pixels))


def describe_rows(view: FlatteningView) -> str:
    """The whole vector wrapped one line per p1 (`viz.patches.vector_rows_figure`): its layout, each channel's
    range and where the largest and smallest values are."""
    p, c, vector = view.patches.grid.patch, view.patches.channels, view.vector
    by_channel = vector.reshape(-1, c)
    ranges = ", ".join(f"{_element(j, p, c)[2]} {by_channel[:, j].min():.2f}…{by_channel[:, j].max():.2f}"
                       for j in range(c))
    high, low = _element(int(np.argmax(vector)), p, c), _element(int(np.argmin(vector)), p, c)
    return sentences(
        _("All {size:,} numbers of patch {index}, wrapped into {p} lines (one per p1) of {p}·{c} = {width}: along "
          "every line the channels take turns, which draws thin vertical stripes.").format(
              size=vector.size, index=view.selected.index, p=p, c=c, width=view.line),
        _("Values by channel: {ranges}.").format(ranges=ranges),
        _("The largest, {high:.2f}, is at p1 = {high_p1}, p2 = {high_p2}, {high_c}; the smallest, {low:.2f}, at "
          "p1 = {low_p1}, p2 = {low_p2}, {low_c}.").format(
              high=float(vector.max()), high_p1=high[0], high_p2=high[1], high_c=high[2],
              low=float(vector.min()), low_p1=low[0], low_p2=low[1], low_c=low[2]))


def describe_matrix(view: FlatteningView) -> str:
    """The N × P²C matrix picture (`viz.patches.matrix_base` + `mark_row`): its layout, the selected row and where it
    is, and the brightest and darkest rows (patches), by their mean displayed value."""
    n, k, index = view.patches.grid.n, view.patches.length, view.selected.index
    parts = [_("The {n:,} × {k:,} matrix: row i is patch i in raster order, column k element k in (p1 p2 c) order, "
               "each value in its channel's colour, so the columns stripe red, green, blue.").format(n=n, k=k),
             _("Row {index}, {share} of the way down, is framed in yellow and black and pointed at by an arrow on the "
               "left.").format(index=index, share=percent((index + 0.5) / n))]
    named = min(ROWS_NAMED, n // 2)
    if named:
        order = np.argsort(-view.patches.flat01.mean(axis=1), kind="stable")
        parts.append(_("The brightest rows are patches {bright}; the darkest {dark}.").format(
            bright=", ".join(map(str, order[:named])), dark=", ".join(map(str, order[::-1][:named]))))
    if view.averaged:
        width, height = view.matrix_px
        parts.append(_("Averaged into {width} × {height} pixels.").format(width=width, height=height))
    return sentences(*parts)
