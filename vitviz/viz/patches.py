"""Pictures for the "Patching" and "Flattening" pages: arrays in, plotly figures or PIL images out.

ViT paper §3.1: the image x ∈ R^{H×W×C} is reshaped into N = HW/P² flattened patches x_p ∈ R^{N×(P²·C)}.
Our ViT cuts with `rearrange(x, "b c (h p1) (w p2) -> b h w p1 p2 c")` after slicing off the pixels beyond the last
whole patch (as Conv2d(kernel = stride = P) does), then flattens each patch in `(p1 p2 c)` order: element
k = (p1·P + p2)·C + c. Every function here is pure (no streamlit, no model), so any P and image size can be tested.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from vitviz.i18n import _

from .encode import QUANTIZE, jpeg_uri

CHANNEL_NAMES = ("R", "G", "B")
# A value v of channel c is drawn in that channel's colour: black at 0, the pure colour at 0.5, white at 1
# (a lightness ramp, so the mid values of a photo stay vivid on a projector instead of murky).
CHANNEL_RGB = np.array([[235, 0, 0], [0, 190, 0], [0, 80, 255]], dtype=np.float32)
SELECT = (255, 214, 0)  # the selected patch / row, on every picture
SELECT_HEX = "#ffd600"
DROPPED_FILL = "rgba(210, 0, 0, 0.4)"
DROPPED_INK = "rgb(150, 0, 0)"  # the dropped strips' hatching, outline and label: 9:1 on white
# The axes' text (titles, tick labels): Streamlit's chart theme greys them to #808495, 3.7:1 on white, below the
# 4.5:1 WCAG 1.4.3 asks of text; this is its body text colour, 12.6:1.
INK = "#31333F"


@dataclass(frozen=True)
class PatchGrid:
    """How an H×W input is cut into P×P patches when the remainder is dropped (bottom rows, right columns)."""

    height: int
    width: int
    patch: int

    def __post_init__(self):
        if self.patch < 1 or self.height < self.patch or self.width < self.patch:
            raise ValueError(f"a {self.height}×{self.width} input holds no whole {self.patch}×{self.patch} patch")

    @property
    def rows(self) -> int:
        return self.height // self.patch

    @property
    def cols(self) -> int:
        return self.width // self.patch

    @property
    def n(self) -> int:
        """N, the number of patches (tokens before CLS)."""
        return self.rows * self.cols

    @property
    def drop_bottom(self) -> int:
        """Pixel rows below the last whole patch row: never seen by the model."""
        return self.height - self.rows * self.patch

    @property
    def drop_right(self) -> int:
        """Pixel columns right of the last whole patch column: never seen by the model."""
        return self.width - self.cols * self.patch

    @property
    def dropped_pixels(self) -> int:
        """Pixels (per channel) the model never sees."""
        return self.height * self.width - self.n * self.patch**2

    def cell(self, index: int) -> tuple[int, int]:
        """Raster index -> (row, col)."""
        if not 0 <= index < self.n:
            raise IndexError(f"patch {index} is outside 0…{self.n - 1}")
        return divmod(int(index), self.cols)

    def box(self, index: int) -> tuple[int, int, int, int]:
        """Raster index -> pixel box (top, left, bottom, right), bottom/right exclusive."""
        r, c = self.cell(index)
        p = self.patch
        return r * p, c * p, (r + 1) * p, (c + 1) * p

    def locate(self, x: float, y: float) -> int | None:
        """Pixel coordinates (x right, y down) -> raster index, or None in a dropped strip or outside."""
        if x < 0 or y < 0:
            return None
        c, r = int(x // self.patch), int(y // self.patch)
        if r >= self.rows or c >= self.cols:
            return None
        return r * self.cols + c


def denormalize(values: np.ndarray, mean, std) -> np.ndarray:
    """Undo `(x - mean) / std` on an array whose last axis is the channel; clipped to [0, 1] for display.

    mean/std None (no normalisation) leaves the values as they are, clipped.
    """
    x = np.asarray(values, dtype=np.float32)
    if mean is not None:
        x = x * np.asarray(std, dtype=np.float32) + np.asarray(mean, dtype=np.float32)
    return np.clip(x, 0.0, 1.0)


def to_uint8(values01: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values01, 0, 1) * 255).astype(np.uint8)


def channel_colours(values01: np.ndarray, channels: int = 3) -> np.ndarray:
    """Values in (p1 p2 c) order (any shape, last axis a multiple of C) -> uint8 RGB, each value in its own
    channel's colour: black at 0, the channel's pure colour at 0.5, white at 1, so R, G, B stay distinguishable."""
    x = np.clip(np.asarray(values01, dtype=np.float32), 0, 1)[..., None]
    pure = CHANNEL_RGB[(np.arange(x.shape[-2]) % channels) % 3]
    rgb = np.where(x <= 0.5, 2 * x * pure, pure + (2 * x - 1) * (255 - pure))
    return np.round(rgb).astype(np.uint8)


def inked(axis: dict) -> dict:
    """An axis layout with its tick labels and title in INK (an axis's own colours beat the theme's)."""
    title = axis.get("title", {})
    return {**axis, "tickfont": {**axis.get("tickfont", {}), "color": INK},
            "title": {**title, "font": {**title.get("font", {}), "color": INK}}}


def relative_luminance(rgb) -> float:
    """WCAG 2.1's relative luminance of an sRGB colour (R, G, B) in 0…255: 0 for black, 1 for white."""
    c = np.asarray(rgb, dtype=np.float64)[:3] / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


def text_colour(background) -> str:
    """Black or white, whichever contrasts more with `background` (R, G, B): at least 4.58:1 on any colour."""
    # (L + 0.05) / 0.05 = 1.05 / (L + 0.05) at L = √(1.05 · 0.05) − 0.05 ≈ 0.179, where both give 4.58:1
    return "black" if relative_luminance(background) > math.sqrt(1.05 * 0.05) - 0.05 else "white"


def fit_height(height: int, width: int, plot_width: int, max_height: int = 640, min_height: int = 260) -> int:
    """Figure height (px, margins included) that shows an H×W image plot_width wide without blank bands."""
    return int(min(max_height, max(min_height, plot_width * height / width + 100)))


def grid_line_step(grid: PatchGrid, plot_px: int) -> int:
    """Draw every k-th grid line so lines stay ≥ 6 screen pixels apart when the image is plot_px tall/wide."""
    scale = plot_px / max(grid.height, grid.width)
    return max(1, math.ceil(6 / (grid.patch * scale)))


def _grid_lines(grid: PatchGrid, step: int) -> list[go.Scatter]:
    """Every step-th patch boundary (and the last) over the kept pixels, dark under light so it shows on any photo."""
    p, uh, uw = grid.patch, grid.rows * grid.patch, grid.cols * grid.patch
    xs: list[float | None] = []
    ys: list[float | None] = []
    for c in sorted({*range(0, grid.cols + 1, step), grid.cols}):
        xs += [c * p, c * p, None]
        ys += [0, uh, None]
    for r in sorted({*range(0, grid.rows + 1, step), grid.rows}):
        xs += [0, uw, None]
        ys += [r * p, r * p, None]
    return [go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=colour, width=width), hoverinfo="skip",
                       showlegend=False)
            for colour, width in (("rgba(0,0,0,0.45)", 3), ("rgba(255,255,255,0.95)", 1))]


def _patch_markers(grid: PatchGrid, plot_px: int) -> go.Scatter:
    """One invisible square marker per patch, at its centre and in raster order, so a click returns the patch."""
    p, h, w = grid.patch, grid.height, grid.width
    centre = p // 2
    cols, rows = np.meshgrid(np.arange(grid.cols), np.arange(grid.rows))
    dtype = np.uint16 if max(h, w) < 65536 else np.uint32
    scale = plot_px / max(h, w)
    return go.Scatter(
        x=(cols.ravel() * p + centre).astype(dtype), y=(rows.ravel() * p + centre).astype(dtype),
        mode="markers", showlegend=False, name="patches",
        marker=dict(symbol="square", size=max(4.0, min(80.0, p * scale)), color="#000", opacity=0.01),
        selected=dict(marker=dict(opacity=0.01)), unselected=dict(marker=dict(opacity=0.01)),
        hovertemplate=_("patch {n}").format(n="%{pointNumber}") + "<br>" + _("click to select") + "<extra></extra>",
    )


def _dropped_strips(grid: PatchGrid) -> tuple[list[go.Scatter], list[dict]]:
    """The strips the model drops, shaded red, hatched and outlined dashed (so that they read without colour), as
    one filled trace, and their widths written beside them ("dropped", as annotations)."""
    h, w, uh, uw = grid.height, grid.width, grid.rows * grid.patch, grid.cols * grid.patch
    xs: list[float | None] = []
    ys: list[float | None] = []
    for x0, y0, x1, y1 in ((uw, 0, w, h), (0, uh, uw, h)):
        if x1 > x0 and y1 > y0:
            xs += [x0, x1, x1, x0, x0, None]
            ys += [y0, y0, y1, y1, y0, None]
    # A fill pattern is a trace's, not a layout shape's: hence a trace, drawn over the image, under the click markers.
    strips = [go.Scatter(x=xs, y=ys, name="dropped", mode="lines", fill="toself", fillcolor=DROPPED_FILL,
                         fillpattern=dict(shape="/", fgcolor=DROPPED_INK, size=8, solidity=0.3),
                         line=dict(color=DROPPED_INK, width=2, dash="dash"), hoverinfo="skip", showlegend=False)]
    red = dict(color=DROPPED_INK, size=14)
    notes = []
    if grid.drop_right:
        notes.append(dict(x=w, y=h / 2, text=_("← {px} px<br>dropped").format(px=grid.drop_right), showarrow=False,
                          xanchor="left", xshift=4, font=red))
    if grid.drop_bottom:
        notes.append(dict(x=uw / 2, y=h, text=_("↑ {px} px dropped").format(px=grid.drop_bottom), showarrow=False,
                          yanchor="top", yshift=-2, font=red))
    return strips if xs else [], notes


def grid_figure(image: np.ndarray, patch: int, selected: int | None = None, height: int = 600,
                max_side: int = 640) -> go.Figure:
    """The image (H, W, 3) uint8 in pixel coordinates, the P×P grid over it, the dropped strips shaded red,
    the selected patch outlined, and one invisible marker per patch so a click returns the patch.

    Click events carry x, y of the patch centre; `PatchGrid.locate(x, y)` turns them back into the raster index.
    Images larger than max_side are sent downscaled (same coordinates), keeping the payload small.
    Payload: the JPEG (q 85) plus 4 bytes per patch for the click markers.
    """
    h, w = image.shape[:2]
    grid = PatchGrid(h, w, patch)
    f = max(h, w) / max_side  # the figure is at most ~640 px: a bigger image would only add payload
    shown = image if f <= 1 else np.asarray(Image.fromarray(image).resize((round(w / f), round(h / f)), Image.BOX))
    dx, dy = w / shown.shape[1], h / shown.shape[0]
    traces = [go.Image(source=jpeg_uri(Image.fromarray(shown), 85), x0=dx / 2, dx=dx, y0=dy / 2, dy=dy,
                       hoverinfo="skip")]

    plot_px = height - 90
    step = grid_line_step(grid, plot_px)
    strips, notes = _dropped_strips(grid)
    traces += [*strips, *_grid_lines(grid, step), _patch_markers(grid, plot_px)]
    shapes = []
    if selected is not None and 0 <= selected < grid.n:
        top, left, bottom, right = grid.box(selected)
        # Yellow between two black borders (2 px each): one of the two stands out on any photo, light or dark.
        for colour, width in (("black", 7), (SELECT_HEX, 3)):
            shapes.append(dict(type="rect", x0=left, y0=top, x1=right, y1=bottom, line=dict(color=colour, width=width)))

    tick = patch * max(1, math.ceil(max(grid.rows, grid.cols) / 10))  # ≤ ~10 labelled patch boundaries per axis
    axis = dict(showgrid=False, zeroline=False, tickmode="linear", tick0=0, dtick=tick, ticks="outside",
                tickfont=dict(size=13))
    title = _("{rows} × {cols} = {n} patches of {p}×{p} px").format(rows=grid.rows, cols=grid.cols, n=grid.n, p=patch)
    if step > 1:  # on a line of its own, smaller: a plotly title does not wrap on a phone
        lines = _("grid lines every {step} patches (too dense to draw all)").format(step=step)
        title += f'<br><span style="font-size:12px">{lines}</span>'
    # One constructor call: plotly validates the whole figure once (add_shape/update_layout re-validate each time).
    return go.Figure(data=traces, layout=dict(
        height=height, margin=dict(l=55, r=75 if grid.drop_right else 20, t=40 if step == 1 else 56,
                                   b=60 if grid.drop_bottom else 40),
        title=dict(text=title, font=dict(size=16), x=0, xanchor="left"), shapes=shapes, annotations=notes,
        xaxis=inked(dict(axis, range=[0, w], title=dict(text="x (px)", font=dict(size=13)), constrain="domain",
                         constraintoward="left")),
        yaxis=inked(dict(axis, range=[h, 0], title=dict(text="y (px)", font=dict(size=13)), scaleanchor="x",
                         constrain="domain", constraintoward="top")),
        clickmode="event+select", dragmode=False, hovermode="closest", hoverdistance=-1,
        plot_bgcolor="white", uirevision=f"{h}x{w}x{patch}",
    ))


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def gallery_layout(grid: PatchGrid, max_width: int = 880, min_tile: int = 36) -> tuple[int, int]:
    """(columns, tile px) of the gallery: grid rows kept as gallery rows when they fit, else wrapped."""
    gap = 4
    scale = max(1, math.ceil(min_tile / grid.patch))
    tile = grid.patch * scale
    while scale > 1 and grid.cols * (tile + gap) > max_width and tile > min_tile:
        scale -= 1
        tile = grid.patch * scale
    cols = grid.cols if grid.cols * (tile + gap) <= max_width else max(1, max_width // (tile + gap))
    return cols, tile


def gallery_window(grid: PatchGrid, selected: int, max_tiles: int = 324, max_width: int = 880) -> range:
    """The raster indices the gallery draws: all N when they fit in max_tiles, else whole gallery lines (of
    `gallery_layout`'s columns) centred on `selected` as far as the ends allow."""
    cols, _tile = gallery_layout(grid, max_width)
    lines_all = math.ceil(grid.n / cols)
    lines_max = lines_all if grid.n <= max_tiles else max(1, max_tiles // cols)
    first_line = min(max(0, selected // cols - lines_max // 2), max(0, lines_all - lines_max))
    return range(first_line * cols, min(grid.n, (first_line + lines_max) * cols))


def patch_gallery(patches: np.ndarray, selected: int = 0, max_tiles: int = 324,
                  max_width: int = 880) -> tuple[Image.Image, range]:
    """Patches (rows, cols, P, P, C) in [0, 1] as ONE picture in raster order, each tile labelled with its index.

    At most max_tiles patches, whole gallery lines, the window centred on (and always holding) `selected`,
    which is framed. Tiles are enlarged by an integer factor (nearest). Returns the picture and the indices shown.
    """
    rows, cols_grid, p = patches.shape[:3]
    grid = PatchGrid(rows * p, cols_grid * p, p)
    cols, tile = gallery_layout(grid, max_width)
    selected = min(max(0, int(selected)), grid.n - 1)
    shown = gallery_window(grid, selected, max_tiles, max_width)
    flat = to_uint8(patches.reshape(grid.n, p, p, -1)[shown.start:shown.stop, ..., :3])
    digits = len(str(grid.n - 1))
    font_px = max(10, min(16, int(tile / (0.62 * digits))))
    font = _font(font_px)
    label = font_px + 4
    gap = 4
    lines = math.ceil(len(shown) / cols)
    canvas = Image.new("RGB", (cols * (tile + gap) + gap, lines * (tile + label + gap) + gap), "white")
    draw = ImageDraw.Draw(canvas)
    for j, index in enumerate(shown):
        r, c = divmod(j, cols)
        x, y = gap + c * (tile + gap), gap + r * (tile + label + gap)
        img = Image.fromarray(flat[j]).resize((tile, tile), Image.NEAREST)
        canvas.paste(img, (x, y + label))
        colour = (0, 0, 0)
        if index == selected:
            draw.rectangle([x - 2, y - 1, x + tile + 1, y + label + tile + 1], outline=(0, 0, 0), width=4)
            draw.rectangle([x - 1, y, x + tile, y + label + tile], fill=None, outline=SELECT, width=2)
            colour = (120, 80, 0)
        draw.text((x + tile / 2, y + label / 2), str(index), fill=colour, font=font, anchor="mm")
    return canvas, shown


def patch_zoom_figure(patch01: np.ndarray, index: int, height: int = 380) -> go.Figure:
    """One patch (P, P, C) in [0, 1] enlarged with nearest-neighbour pixels; hover gives p1, p2 and its values."""
    p = patch01.shape[0]
    rgb = to_uint8(patch01[..., :3])
    tick = max(1, math.ceil(p / 8))
    return go.Figure(
        data=[go.Image(z=rgb, hovertemplate="p1 = %{y}, p2 = %{x}<br>R G B = %{z}<extra></extra>")],
        layout=dict(
            height=height, margin=dict(l=50, r=10, t=36, b=45), dragmode=False,
            title=dict(text=_("patch {index}: {p}×{p} pixels × {c} channels").format(index=index, p=p,
                                                                                     c=patch01.shape[-1]),
                       font=dict(size=15)),
            xaxis=inked(dict(title=dict(text=_("p2 (column in the patch)")), dtick=tick, showgrid=False)),
            yaxis=inked(dict(title=dict(text=_("p1 (row)")), dtick=tick, showgrid=False)),
        ),
    )


def _vector_labels(patch: int, channels: int) -> list[str]:
    return [f"({k // (patch * channels)},{k // channels % patch},{CHANNEL_NAMES[k % channels]})"
            for k in range(patch * patch * channels)]


def vector_strip_figure(vector: np.ndarray, vector01: np.ndarray, patch: int, channels: int = 3,
                        count: int = 12) -> go.Figure:
    """The first `count` elements of one flattened patch as labelled cells in reading order, two pixels (2·C cells)
    a line so that the numbers fit a phone's width: each cell shaded in its channel's colour, with the value the
    model reads and, under it, k and (p1, p2, c).

    vector: the model's values (normalised); vector01: the same de-normalised to [0, 1] for colour.
    """
    count = min(count, vector.size)
    per_line = min(count, 2 * channels)
    lines = math.ceil(count / per_line)
    rgb = np.full((lines * per_line, 3), 255, np.uint8)  # a short last line ends in white
    rgb[:count] = channel_colours(vector01[:count], channels)
    labels = _vector_labels(patch, channels)[:count]
    notes = []
    for k in range(count):  # values first, then the labels: each in black or white, whichever reads on its cell
        line, x = divmod(k, per_line)
        ink = text_colour(rgb[k])
        notes.append(dict(x=x, y=line - 0.2, text=f"{vector[k]:+.2f}", font=dict(size=15, color=ink)))
        notes.append(dict(x=x, y=line + 0.22, text=f"k={k}<br>{labels[k]}", font=dict(size=12, color=ink)))
    notes = [dict(note, showarrow=False) for note in notes[0::2] + notes[1::2]]
    return go.Figure(data=[go.Image(z=rgb.reshape(lines, per_line, 3), x0=0, dx=1, hoverinfo="skip")], layout=dict(
        height=50 + 72 * lines, margin=dict(l=10, r=10, t=34, b=6), annotations=notes, dragmode=False,
        title=dict(text=_("x_p[k] for k = 0…{last} (of {size})").format(last=count - 1, size=vector.size),
                   font=dict(size=15)),
        xaxis=dict(visible=False), yaxis=dict(visible=False),
    ))


def vector_rows_figure(vector: np.ndarray, vector01: np.ndarray, patch: int, channels: int = 3,
                       height: int | None = None) -> go.Figure:
    """A whole flattened patch (P²C,) wrapped into P rows of P·C (one row per p1): in each row R G B repeat for
    every p2, which is the channel interleaving of (p1 p2 c). Hover gives (p1, p2, c), k and the model's value."""
    p, c = patch, channels
    width = p * c
    shift = np.arange(vector.size) % c  # channel index of each element
    z = (shift + np.clip(vector01, 0, 0.999)).reshape(p, width).astype(np.float32)
    scale = []
    for ch in range(c):  # the same black → pure colour → white ramp as channel_colours, one block per channel
        lo, hi = ch / c, (ch + 1) / c
        colour = CHANNEL_RGB[ch % 3].astype(int)
        scale += [[lo, "rgb(0,0,0)"], [(lo + hi) / 2, f"rgb({colour[0]},{colour[1]},{colour[2]})"],
                  [hi, "rgb(255,255,255)"]]
    x = [f"p2={j // c} {CHANNEL_NAMES[j % c]}" for j in range(width)]
    y = [f"p1={i}" for i in range(p)]
    every = max(1, math.ceil(p / 16))
    ticks = [x[j] for j in range(0, width, c * every)]
    heatmap = go.Heatmap(
        z=z, x=x, y=y, zmin=0, zmax=c, colorscale=scale, showscale=False,
        customdata=vector.reshape(p, width).astype(np.float32),
        hovertemplate="%{y}, %{x}<br>" + _("value {value}").format(value="%{customdata:.3f}") + "<extra></extra>",
    )
    return go.Figure(data=[heatmap], layout=dict(
        height=height or int(min(520, max(200, 60 + p * 22))), margin=dict(l=60, r=10, t=36, b=50),
        dragmode=False,
        # short enough for a phone's width (a plotly title does not wrap); the page's text says the rest
        title=dict(text=_("{size:,} numbers, {p} rows (p1) of {p}·{c} = {width}").format(
            size=vector.size, p=p, c=c, width=width), font=dict(size=15)),
        xaxis=inked(dict(type="category", tickmode="array", tickvals=ticks, ticktext=[t.split()[0] for t in ticks],
                         tickfont=dict(size=12), showgrid=False)),
        yaxis=inked(dict(type="category", autorange="reversed", tickmode="array",
                         tickvals=[y[i] for i in range(0, p, every)], tickfont=dict(size=12))),
    ))


MATRIX_MARGIN = 28  # px left of the matrix picture, for the selected-row marker


def matrix_extent(n: int, k: int, size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) px an N × K matrix takes within `size`: a whole number of pixels per column and row when it
    fits (crisp stripes), else all of the side (box-averaged)."""
    width = k * (size[0] // k) if k <= size[0] else size[0]
    height = n * (size[1] // n) if n <= size[1] else size[1]
    return width, height


def matrix_base(flat01: np.ndarray, channels: int = 3, size: tuple[int, int] = (860, 480),
                colours: int | None = None) -> Image.Image:
    """The N × P²C matrix (rows = patches in raster order, columns k in (p1 p2 c) order) as one RGB picture,
    each value in its channel's colour, `matrix_extent` px within `size` (width, height), with a white margin on
    the left. colours: quantise to a palette of that many colours (`encode.QUANTIZE`), to keep the PNG light."""
    width, height = matrix_extent(*flat01.shape, size)
    img = Image.fromarray(channel_colours(flat01, channels)).resize((width, height), Image.BOX)
    canvas = Image.new("RGB", (width + MATRIX_MARGIN, height + 8), "white")
    canvas.paste(img, (MATRIX_MARGIN, 4))
    return canvas if colours is None else canvas.quantize(colours, method=QUANTIZE)


def mark_row(picture: Image.Image, n: int, selected: int) -> Image.Image:
    """A copy of a `matrix_base` picture of n rows with row `selected` framed in yellow and pointed at."""
    out = picture.copy()
    if not 0 <= selected < n:
        return out
    width, height = out.width - MATRIX_MARGIN, out.height - 8
    draw = ImageDraw.Draw(out)
    top = 4 + selected * height / n
    bottom = 4 + (selected + 1) * height / n
    mid = (top + bottom) / 2
    top, bottom = min(top, mid - 2), max(bottom, mid + 2)
    m = MATRIX_MARGIN
    draw.rectangle([m - 2, top - 3, m + width + 1, bottom + 3], outline=(0, 0, 0), width=2)
    draw.rectangle([m - 1, top - 2, m + width, bottom + 2], outline=SELECT, width=2)
    draw.polygon([(2, mid - 9), (2, mid + 9), (m - 5, mid)], fill=SELECT, outline=(0, 0, 0))
    return out


def matrix_image(flat01: np.ndarray, channels: int = 3, selected: int | None = None,
                 size: tuple[int, int] = (860, 480)) -> Image.Image:
    """`matrix_base` with the selected patch's row marked (see `mark_row`)."""
    picture = matrix_base(flat01, channels, size)
    return picture if selected is None else mark_row(picture, flat01.shape[0], selected)
