"""Pictures for the attention page: attention maps over the image, masks, the distance plot and the N × N matrix.

Arrays in, PIL images or plotly figures out; no streamlit and no model. Token maps are drawn on the patch grid with
nearest-neighbour upsampling (one flat colour per patch, as DINO's visualize_attention.py upsamples), over the
image exactly as the model received it: patch (r, c) covers pixels [r·P, (r+1)·P) × [c·P, (c+1)·P), and the strip
beyond the last whole patch, which the model never sees, is dimmed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from ..describe.common import percent
from ..i18n import _
from .encode import jpeg_uri, png_uri

CMAP = "inferno"  # perceptually uniform, dark = little attention (matplotlib name; `colorscale` gives plotly the same)
SELECT = (255, 214, 0)  # the selected query patch, as on the patching page
SELECT_HEX = "#ffd600"
HEAD_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#637939")
# Heads told apart by shape as well as colour (red and green are one colour to a deuteranope); every marker has a
# dark outline, so that even the light colours stand out from the white plot at 3:1.
HEAD_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "triangle-down", "cross", "x", "star", "hexagon",
                "pentagon", "triangle-left", "triangle-right", "hourglass", "bowtie", "star-diamond", "circle-cross")
MARK_OUTLINE = "#222222"


@lru_cache(maxsize=4)
def _lut(name: str) -> np.ndarray:
    from matplotlib import colormaps

    return np.round(colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


@lru_cache(maxsize=4)
def colorscale(name: str = CMAP, stops: int = 16) -> tuple[tuple[float, str], ...]:
    """The same colour map as a plotly colorscale, so colour bars match the pictures exactly."""
    lut = _lut(name)
    return tuple((i / (stops - 1), "rgb({},{},{})".format(*lut[round(i * 255 / (stops - 1))])) for i in range(stops))


def colourise(values: np.ndarray, vmax: float | None = None, cmap: str = CMAP) -> np.ndarray:
    """Values ≥ 0 (any shape) -> uint8 RGB (..., 3): 0 is the darkest colour, vmax (default: the maximum) the lightest."""
    v = np.asarray(values, dtype=np.float64)
    top = float(v.max()) if vmax is None else float(vmax)
    scaled = np.clip(v / top, 0, 1) if top > 0 else np.zeros_like(v)
    return _lut(cmap)[np.round(scaled * 255).astype(np.int64)]


def palette_uri(values: np.ndarray, low: float, high: float, cmap: str, levels: int = 64) -> str:
    """A 2-D map (h, w) as a PNG data URI with one pixel a cell, for a figure's image trace: `levels` steps of
    `cmap` from `low` to `high` in a palette picture (one byte a cell, white where a value is NaN).

    What a dense heatmap would send as float32 hover values (5.3 bytes a cell in base64) costs a PNG of at most one
    byte a cell here, far less where the map is smooth; the figure keeps its axes, frames and colour bar."""
    v = np.asarray(values, np.float64)
    span = high - low if high > low else 1.0
    index = np.round(np.clip(np.nan_to_num(v - low, nan=0.0) / span, 0, 1) * (levels - 1))
    index[~np.isfinite(v)] = levels
    picture = Image.fromarray(index.astype(np.uint8), mode="P")
    picture.putpalette(np.vstack([colourise(np.linspace(0, 1, levels), vmax=1.0, cmap=cmap), [[255, 255, 255]]])
                       .ravel().tolist())
    return png_uri(picture)


@dataclass(frozen=True)
class Backdrop:
    """The model's input resized for display, ready for token maps: drawn once, shared by every map of a panel."""

    photo: Image.Image  # RGB, the strip beyond the last whole patch dimmed
    patch: int  # P in input pixels
    grid: tuple[int, int]  # (gh, gw)
    scale: float  # display pixels per input pixel

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the patch area in display pixels."""
        return 0, 0, round(self.grid[1] * self.patch * self.scale), round(self.grid[0] * self.patch * self.scale)

    @property
    def patch_px(self) -> float:
        """A patch's side in display pixels."""
        return self.patch * self.scale


def backdrop(image: Image.Image, patch: int, width: int) -> Backdrop:
    """The input image (H × W, as the model received it) at `width` px wide, pixels the model never sees dimmed."""
    grid = (image.height // patch, image.width // patch)
    scale = width / image.width
    photo = image.convert("RGB").resize((width, max(1, round(image.height * scale))), Image.BICUBIC)
    base = Backdrop(photo, patch, grid, scale)
    box = base.box
    if box[2] < photo.width or box[3] < photo.height:
        dim = Image.eval(photo, lambda x: x * 35 // 100)
        dim.paste(photo.crop(box), box)
        base = Backdrop(dim, patch, grid, scale)
    return base


def _outline(draw: ImageDraw.ImageDraw, cell: tuple[int, int], size: float) -> None:
    r, c = cell
    x0, y0, x1, y1 = round(c * size), round(r * size), round((c + 1) * size) - 1, round((r + 1) * size) - 1
    draw.rectangle([x0 - 2, y0 - 2, x1 + 2, y1 + 2], outline=(0, 0, 0), width=2)
    draw.rectangle([x0, y0, x1, y1], outline=SELECT, width=max(2, round(size / 12)))


def overlay(base: Backdrop, values: np.ndarray, *, alpha: float = 0.6, vmax: float | None = None, cmap: str = CMAP,
            query: tuple[int, int] | None = None) -> Image.Image:
    """A token map values (gh, gw) blended over the backdrop; `query` (row, col) is outlined in yellow.

    Each patch gets one colour (nearest upsampling, no smoothing between tokens).
    """
    if values.shape != base.grid:
        raise ValueError(f"map {values.shape} does not fit the {base.grid} patch grid")
    box = base.box
    photo = base.photo.copy()
    colour = Image.fromarray(colourise(values, vmax, cmap)).resize(box[2:], Image.NEAREST)
    photo.paste(Image.blend(photo.crop(box), colour, alpha), box)
    if query is not None:
        _outline(ImageDraw.Draw(photo), query, base.patch_px)
    return photo


def mask_overlay(base: Backdrop, mask: np.ndarray, colour: str | tuple[int, int, int] = "#00c8ff") -> Image.Image:
    """A boolean patch mask (gh, gw) over the backdrop: kept patches bright and tinted by `colour`, the rest darkened,
    and the border of the kept set outlined in white (so that the mask reads without its colour, and where a kept
    patch of a dark photo is hardly brighter than the darkened rest)."""
    if mask.shape != base.grid:
        raise ValueError(f"mask {mask.shape} does not fit the {base.grid} patch grid")
    box = base.box
    photo = base.photo.copy()
    region = photo.crop(box)
    tinted = Image.blend(region, Image.new("RGB", region.size, colour), 0.3)
    dark = Image.eval(region, lambda x: x // 4)
    keep = Image.fromarray(mask.astype(np.uint8) * 255).resize(region.size, Image.NEAREST)
    photo.paste(Image.composite(tinted, dark, keep), box)
    _mask_border(ImageDraw.Draw(photo), mask, base.patch_px)
    return photo


def _mask_border(draw: ImageDraw.ImageDraw, mask: np.ndarray, size: float) -> None:
    """A white band, inside the kept patch, on every patch edge between a kept patch and a dropped one (or the
    grid's edge)."""
    padded = np.pad(mask, 1)
    w = max(2, round(size / 12)) - 1  # the band's width less one
    for r, c in np.argwhere(mask):
        x0, y0, x1, y1 = round(c * size), round(r * size), round((c + 1) * size) - 1, round((r + 1) * size) - 1
        for outside, band in (((r, c + 1), (x0, y0, x1, y0 + w)), ((r + 2, c + 1), (x0, y1 - w, x1, y1)),
                              ((r + 1, c), (x0, y0, x0 + w, y1)), ((r + 1, c + 2), (x1 - w, y0, x1, y1))):
            if not padded[outside]:
                draw.rectangle(band, fill=(255, 255, 255))


def _axes(width: float, height: float) -> dict:
    axis = dict(showgrid=False, zeroline=False, visible=False)
    return dict(xaxis=dict(axis, range=[0, width], constrain="domain"),
                yaxis=dict(axis, range=[height, 0], scaleanchor="x", constrain="domain"))


def query_figure(picture: bytes, size: tuple[int, int], values: np.ndarray, patch_px: float, *, title: str,
                 height: int = 560, vmax: float | None = None, cmap: str = CMAP, value_name: str | None = None) -> go.Figure:
    """A rendered overlay (JPEG bytes of `overlay`, size (w, h) px) made clickable: one invisible marker per patch.

    values (gh, gw) are the numbers the colours show; patch_px is a patch's side in the picture's pixels. A click
    returns the marker's point_index, the patch's raster index; hover shows row, column and value. The colour bar
    matches the overlay. value_name names the values (default: "attention", in the run's language).
    """
    value_name = _("attention") if value_name is None else value_name
    gh, gw = values.shape
    w, h = size
    rows, cols = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    top = float(values.max()) if vmax is None else float(vmax)
    uri = jpeg_uri(picture)
    invisible = dict(marker=dict(opacity=0.01))
    markers = dict(
        type="scatter", mode="markers", showlegend=False, name=_("patches"),
        x=((cols.ravel() + 0.5) * patch_px).astype(np.float32), y=((rows.ravel() + 0.5) * patch_px).astype(np.float32),
        customdata=np.stack([rows.ravel(), cols.ravel(), values.ravel()], -1).astype(np.float32),
        marker=dict(symbol="square", size=max(4.0, min(60.0, patch_px * (height - 60) / h)), opacity=0.01,
                    color=values.ravel().astype(np.float32), colorscale=colorscale(cmap), cmin=0, cmax=top,
                    colorbar=dict(_colorbar(value_name), orientation="h", y=-0.02, yanchor="top", len=0.9,
                                  title=dict(text=value_name, side="top"))),
        selected=invisible, unselected=invisible,
        hovertemplate=(_("patch ({r}, {c})").format(r="%{customdata[0]}", c="%{customdata[1]}") + "<br>" + value_name
                       + " %{customdata[2]:.4f}<extra></extra>"),
    )
    layout = dict(
        height=height, margin=dict(l=4, r=4, t=60, b=80), title=dict(text=title, font=dict(size=16)),
        font=dict(size=14), images=[dict(source=uri, xref="x", yref="y", x=0, y=0, sizex=w, sizey=h, sizing="stretch", layer="below")],
        clickmode="event+select", dragmode=False, hovermode="closest", plot_bgcolor="white", **_axes(w, h),
    )
    return go.Figure(data=[markers], layout=layout, _validate=False)  # validated in tests/test_attention.py


def distance_figure(distance: np.ndarray, uniform: float, layer: int | None = None, height: int = 500) -> go.Figure:
    """Mean attention distance (px) of every head against depth, as in ViT Fig. 7 (right): distance (L, H).

    The dashed line is uniform attention over all patches of this grid; `layer` (0-based) is shaded.
    """
    depth, heads = distance.shape
    offsets = (np.arange(heads) - (heads - 1) / 2) * min(0.08, 0.6 / heads)
    data = [dict(type="scatter", mode="markers", name=str(h + 1), x=np.arange(1, depth + 1) + offsets[h],
                 y=distance[:, h], customdata=np.arange(1, depth + 1),
                 marker=dict(size=11, color=HEAD_COLOURS[h % len(HEAD_COLOURS)],
                             symbol=HEAD_SYMBOLS[h % len(HEAD_SYMBOLS)], line=dict(width=1, color=MARK_OUTLINE)),
                 hovertemplate=(_("layer {layer}, head {head}").format(layer="%{customdata}", head=h + 1)
                                + "<br>%{y:.1f} px<extra></extra>"))
            for h in range(heads)]
    shapes = [dict(type="line", xref="paper", x0=0, x1=1, y0=uniform, y1=uniform, line=dict(dash="dash", color="#444", width=2))]
    annotations = [dict(xref="paper", x=0.01, y=uniform, yanchor="bottom", xanchor="left", showarrow=False,
                        text=_("uniform attention: {d:.1f} px").format(d=uniform), font=dict(size=14),
                        bgcolor="rgba(255,255,255,0.85)")]  # readable over the markers it may cover
    if layer is not None:  # the selected layer: shaded, and labelled so that the shade is not its only sign
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=layer + 0.5, x1=layer + 1.5, y0=0, y1=1,
                           fillcolor=SELECT_HEX, opacity=0.25, line=dict(color="#444", width=1, dash="dot"),
                           layer="below"))
        annotations.append(dict(xref="x", yref="paper", x=layer + 1, y=1, yanchor="bottom", showarrow=False,
                                text=_("selected"), font=dict(size=12)))
    layout = dict(
        height=height, margin=dict(l=60, r=10, t=60, b=110), plot_bgcolor="white", shapes=shapes, font=dict(size=14),
        annotations=annotations, dragmode=False,
        title=dict(text=_("Mean attention distance per head"), font=dict(size=16)),
        xaxis=dict(title=dict(text=_("layer (network depth)")), dtick=1, range=[0.4, depth + 0.6], gridcolor="#eee",
                   tickfont=dict(size=14)),
        yaxis=dict(title=dict(text=_("mean attention distance (px)")), rangemode="tozero", gridcolor="#ddd",
                   tickfont=dict(size=14)),
        # At the figure's foot, across, entries named by number only: beside the plot, a legend would leave it a
        # sliver of a phone's width.
        legend=dict(font=dict(size=13), orientation="h", x=0, xanchor="left", yref="container", y=0,
                    yanchor="bottom", title=dict(text=_("head"))),
    )
    return go.Figure(data=data, layout=layout, _validate=False)  # validated in tests/test_attention.py


def _colorbar(title: str) -> dict:
    return dict(title=dict(text=title, side="right"), thickness=14, tickfont=dict(size=13), tickformat=".2~r")


def _colorbar_across(title: str) -> dict:
    """A colour bar above a square heatmap, across: beside it, it would take a third of a phone's width from the
    heatmap (the figure's top margin leaves it room)."""
    return dict(_colorbar(title), orientation="h", x=0.5, y=1.01, yanchor="bottom", len=0.8, thickness=12, nticks=4,
                tickangle=0, title=dict(text=title, side="right"))


def _frame(x0: float, x1: float, y0: float, y1: float) -> list[dict]:
    """The query's frame on a heatmap: yellow inside black, as on the pictures, so that it shows on the colour map's
    bright end and its dark end alike."""
    box = dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1)
    return [dict(box, line=dict(color="black", width=5)), dict(box, line=dict(color=SELECT_HEX, width=2))]


def matrix_figure(matrix: np.ndarray, labels: list[str], *, title: str, query: int | None = None,
                  height: int = 620) -> go.Figure:
    """A head's attention matrix (T, T): rows are queries, columns keys, labels[i] names token i (every few tokens
    on the axes). The cells are one picture (`palette_uri`), without hover values: at 197 tokens their float32
    values were 227 KB per layer or head change; the tab's text and the text alternative quote the numbers, and the
    *One head* tab reads any weight."""
    t = matrix.shape[0]
    top = max(float(matrix.max()), 1e-12)
    cells = dict(type="image", source=palette_uri(matrix, 0.0, top, CMAP), x0=0, dx=1, y0=0, dy=1, hoverinfo="skip")
    scale = dict(type="heatmap", z=[[0.0, top]], x=[0, 1], y=[0, 0], zmin=0, zmax=top, opacity=0, hoverinfo="skip",
                 colorscale=colorscale(), colorbar=_colorbar_across(_("attention")))
    step = max(1, math.ceil(t / 16))
    ticks = dict(tickmode="array", tickvals=list(range(0, t, step)), ticktext=labels[::step], tickfont=dict(size=12),
                 showgrid=False, zeroline=False, automargin=True)
    shapes = [] if query is None else _frame(-0.5, t - 0.5, query - 0.5, query + 0.5)
    layout = dict(height=height, margin=dict(l=10, r=10, t=100, b=10), title=dict(text=title, font=dict(size=16)),
                  shapes=shapes, font=dict(size=14), plot_bgcolor="white", dragmode=False, hovermode=False,
                  xaxis=dict(ticks, title=dict(text=_("key token j")), range=[-0.5, t - 0.5]),
                  # On a narrow screen the square matrix is shorter than the figure: keep it under its colour bar.
                  yaxis=dict(ticks, title=dict(text=_("query token i")), range=[t - 0.5, -0.5], scaleanchor="x",
                             constrain="domain", constraintoward="top"))
    return go.Figure(data=[scale, cells], layout=layout, _validate=False)  # validated in tests/test_attention.py


def prefix_strip(weights: np.ndarray, labels: list[str], *, vmax: float, height: int = 130) -> go.Figure:
    """The attention a query gives to the tokens that have no place on the image (CLS, registers): weights (k,) as
    a one-row strip on the patch map's colour scale (0 … vmax), each cell labelled with its name and share, on two
    lines (five cells share a phone's width)."""
    z = np.asarray(weights, dtype=np.float32)[None, :]
    text = [[f"{label}<br>{percent(w)}" for label, w in zip(labels, z[0])]]
    heatmap = dict(type="heatmap", z=z, x=labels, y=[""], colorscale=colorscale(), zmin=0, zmax=max(float(vmax), 1e-12),
                   showscale=False, text=text, texttemplate="%{text}", textfont=dict(size=14),
                   hovertemplate="%{x}<br>" + _("attention") + " %{z:.5f}<extra></extra>", xgap=3, ygap=3)
    layout = dict(height=height, margin=dict(l=10, r=10, t=34, b=6), font=dict(size=14), dragmode=False,
                  title=dict(text=_("Tokens with no place on the image (same colour scale)"), font=dict(size=14)),
                  xaxis=dict(showgrid=False, showticklabels=False, ticks=""),
                  yaxis=dict(showgrid=False, showticklabels=False, ticks=""))
    return go.Figure(data=[heatmap], layout=layout, _validate=False)  # validated in tests/test_attention.py


def row_figure(row: np.ndarray, grid: tuple[int, int], *, title: str, height: int = 520, prefix: int = 1,
               query: tuple[int, int] | None = None) -> go.Figure:
    """One query's attention row (T,) with CLS (and registers) first: the patch part as a heatmap on the grid,
    hover values; `query` (row, col), the query patch, is framed."""
    patches = row[prefix:]
    heatmap = dict(type="heatmap", z=patches.reshape(grid).astype(np.float32), colorscale=colorscale(),
                   zmin=0, zmax=float(patches.max()),
                   colorbar=_colorbar_across(_("attention")),
                   hovertemplate=(_("key patch ({r}, {c})").format(r="%{y}", c="%{x}") + "<br>" + _("attention")
                                  + " %{z:.5f}<extra></extra>"))
    shapes = [] if query is None else _frame(query[1] - 0.5, query[1] + 0.5, query[0] - 0.5, query[0] + 0.5)
    layout = dict(height=height, margin=dict(l=10, r=10, t=100, b=10), title=dict(text=title, font=dict(size=16)),
                  font=dict(size=14), shapes=shapes, dragmode=False,
                  xaxis=dict(title=dict(text=_("column")), showgrid=False, constrain="domain", automargin=True),
                  yaxis=dict(title=dict(text=_("row")), autorange="reversed", scaleanchor="x", showgrid=False,
                             constrain="domain", constraintoward="top", automargin=True))
    return go.Figure(data=[heatmap], layout=layout, _validate=False)  # validated in tests/test_attention.py
