"""Figures of the "Linear projection" and "Position embeddings" pages: arrays in, plotly figures or PIL images out.

Pixel-resolution pictures (filters, PCA colours) are PIL images (a PNG costs a few KB); the token grid and the tiled
similarity maps are one palette PNG each inside a figure (axes, colour bar, the selected row's or tile's frame), without
hover values: as float32 heatmaps they sent 100–400 KB on every patch-size move. `payload_bytes` is what Streamlit sends for a figure.
Every figure leaves a finger's drag to the page (dragmode off: a phone scrolls past it), its colour maps read in
lightness alone (viridis, cividis: also under every colour-vision deficiency) and the selected patch is framed in
black and white, which stands out on any colour of those maps.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from PIL import Image

from vitviz.embeddings import (SimilarityStructure, similarity_structure, similarity_tiles, similarity_to, tile_queries,
                               tile_strides, to_uint8)
from vitviz.i18n import _

from .attention import colorscale, palette_uri
from .encode import MAX_PANEL_BYTES

MAX_HEATMAP_CELLS = 45_000  # float32 heatmap cells per figure: 6–8 bytes each in JSON, under the 400 KB panel budget
SIMILARITY_LEVELS = 32  # colours of a tiled similarity picture, from its smallest value to 1 (a step: 1/31 of that range)
INK = "#111111"  # the theme's text colour: Streamlit's chart theme writes axis text in a grey of 3.7:1 on white
FONT = dict(size=15, color=INK)
# A frame drawn twice, a wide white line under a narrow black one: one of the two contrasts ≥ 3:1 with any colour.
FRAME = (dict(color="white", width=5), dict(color="black", width=2))


def ink_axes(fig: go.Figure) -> go.Figure:
    """Axis titles and tick labels in `INK` (17:1 on white) rather than the chart theme's grey, which is below the
    4.5:1 that text needs (WCAG 1.4.3). The layout's font covers the rest (colour bars)."""
    for update in (fig.update_xaxes, fig.update_yaxes):
        update(title_font_color=INK, tickfont_color=INK)
    return fig


def payload_bytes(fig: go.Figure | dict) -> int:
    """Size of the JSON spec Streamlit's st.plotly_chart sends for `fig`.

    Plotly writes float32 arrays as base64 and escapes every "/" as "\\u002f", so the size depends on the values
    (numbers near 1.0 cost more): measure, don't estimate.
    """
    return len(pio.to_json(fig, validate=False))


def as_spec(fig: go.Figure) -> dict:
    """The figure as a plain dict without its (default) template: cheap to cache and to unpickle.

    st.plotly_chart validates a dict back into a figure, which re-applies the same default template.
    """
    spec = fig.to_dict()
    spec.get("layout", {}).pop("template", None)
    return spec


def mosaic(images: np.ndarray, cols: int, cell_px: int, gap_px: int = 3, background: int = 255) -> Image.Image:
    """Lay out k small RGB images (k, h, w, 3) in [0, 1] on a grid, each enlarged (nearest) to about cell_px wide."""
    k, h, w = images.shape[:3]
    scale = max(1, round(cell_px / w))
    rows = -(-k // cols)
    ch, cw = h * scale, w * scale
    canvas = np.full((rows * (ch + gap_px) - gap_px, cols * (cw + gap_px) - gap_px, 3), background, np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        big = to_uint8(images[i]).repeat(scale, 0).repeat(scale, 1)
        canvas[r * (ch + gap_px) : r * (ch + gap_px) + ch, c * (cw + gap_px) : c * (cw + gap_px) + cw] = big
    return Image.fromarray(canvas)


def enlarge(rgb: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """An (h, w, 3) image, in [0, 1] or already uint8, enlarged with nearest-neighbour to size = (width, height),
    cells kept sharp."""
    pixels = rgb if rgb.dtype == np.uint8 else to_uint8(rgb)
    return Image.fromarray(pixels).resize(size, Image.Resampling.NEAREST)


def grey(rgb: np.ndarray, channel: int, size: tuple[int, int]) -> Image.Image:
    """One channel of an (h, w, 3) image in [0, 1] as grey levels (lighter = larger), enlarged as `enlarge` does: a
    component of the PCA colours that does not depend on telling hues apart."""
    return enlarge(np.repeat(rgb[..., channel : channel + 1], 3, axis=-1), size)


def token_heatmap(z: np.ndarray, row0: int, col0: int, height: int = 520, selected: int | None = None) -> go.Figure:
    """Tokens × dimensions map of a slice z (n, k) of the N × D token matrix starting at (row0, col0), the row of
    token `selected` framed when it is in the slice.

    Cividis centred on 0 (dark blue negative, grey 0, yellow positive): the sign reads in lightness alone, which a
    red-white-blue map's two dark ends do not. The cells are one picture (`palette_uri`) under the axes and a colour
    bar: as float32 hover values they sent 220–250 KB on every patch-size move; the numbers are in the download.
    """
    n, k = z.shape
    top = max(float(np.abs(z).max()), 1e-12)
    cells = dict(type="image", source=palette_uri(z, -top, top, "cividis"), x0=col0, dx=1, y0=row0, dy=1,
                 hoverinfo="skip")
    scale = dict(type="heatmap", z=[[-top, top]], x=[col0, col0 + 1], y=[row0, row0], zmin=-top, zmax=top, zmid=0,
                 opacity=0, hoverinfo="skip", colorscale=colorscale("cividis"),
                 colorbar=dict(title=dict(text=_("value")), thickness=14))
    fig = go.Figure(data=[scale, cells])
    fig.update_layout(height=height, margin=dict(l=70, r=20, t=10, b=60), font=FONT, dragmode=False, hovermode=False,
                      xaxis_title=_("embedding dimension d (showing {first}–{last})").format(first=col0,
                                                                                            last=col0 + k - 1),
                      yaxis_title=_("token = patch index (showing {first}–{last})").format(first=row0,
                                                                                          last=row0 + n - 1))
    fig.update_xaxes(range=[col0 - 0.5, col0 + k - 0.5], showgrid=False, zeroline=False)
    ink_axes(fig).update_yaxes(range=[row0 + n - 0.5, row0 - 0.5], showgrid=False, zeroline=False)
    if selected is not None and row0 <= selected < row0 + n:
        for line in FRAME:
            fig.add_hrect(y0=selected - 0.5, y1=selected + 0.5, line=line, fillcolor="rgba(0,0,0,0)")
    return fig


def _similarity_spec(tiles: np.ndarray, height: int) -> dict:
    """The tiled cosine-similarity image of `similarity_tiles` (ViT Fig. 7 centre) as a picture in a figure's dict.

    Each tile is one query position's similarity to every position, in viridis from the smallest value shown to 1
    (a position's similarity to itself), gaps and padding white, with a horizontal colour bar below. The tiles are
    one PNG (one pixel a cell, drawn without smoothing): tens of thousands of cells as float32 hover values cost
    100–400 KB per chart and per slider move, which the page's text and the text alternative do not need (they quote
    the numbers); the axes count cells from 0. Plain dicts, without plotly's validation: validating and updating the
    figure took ~25 ms of the ~50 a chart costs, twice per patch-size move (tests/test_embeddings.py validates the
    same spec).
    """
    z = np.asarray(tiles, np.float32)
    low = min(float(np.nanmin(z)) if np.isfinite(z).any() else -1.0, 0.99)
    # a palette picture: a random model's noisy tiles compress to 40 % of an RGB PNG's bytes
    picture = dict(type="image", source=palette_uri(z, low, 1.0, "viridis", SIMILARITY_LEVELS),
                   x0=0, dx=1, y0=0, dy=1, hoverinfo="skip")
    scale = dict(type="heatmap", z=[[low, 1.0]], x=[0, 1], y=[0, 0], zmin=low, zmax=1, opacity=0, hoverinfo="skip",
                 colorscale=colorscale("viridis"), showscale=True,
                 colorbar=dict(title=dict(text=_("cosine"), side="right"), thickness=12, orientation="h", y=-0.02,
                               yanchor="top", len=0.9))
    axis = dict(showticklabels=False, showgrid=False, ticks="", zeroline=False, tickfont=dict(color=INK))
    layout = dict(height=height, margin=dict(l=30, r=10, t=10, b=70), font=FONT,
                  plot_bgcolor="white", dragmode=False, hovermode=False,
                  xaxis=dict(axis, side="top", range=[-0.5, z.shape[1] - 0.5],
                             title=dict(text=_("patch column →"), font=dict(color=INK))),
                  yaxis=dict(axis, range=[z.shape[0] - 0.5, -0.5], scaleanchor="x", constrain="domain",
                             title=dict(text=_("← patch row"), font=dict(color=INK))))
    # the colour bar's trace first: `SimilarityChart.low`
    return dict(data=[scale, picture], layout=layout)


def explained_bar(explained: np.ndarray, height: int = 260) -> go.Figure:
    """Fraction of variance along each principal component."""
    k = len(explained)
    fig = go.Figure(go.Bar(x=np.arange(1, k + 1), y=np.asarray(explained) * 100, marker_color="#4c78a8",
                           hovertemplate=_("component {k}: {share} % (of the variance)").format(k="%{x}", share="%{y:.2f}")
                           + "<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=60, r=10, t=10, b=50), font=FONT, dragmode=False,
                      xaxis_title=_("principal component"), yaxis_title=_("variance explained (%)"))
    return ink_axes(fig)


class SimilarityChart(NamedTuple):
    """A tiled similarity chart and what it shows of S (a tuple: `fig, stride, inner, structure = …` unpacks it)."""

    figure: go.Figure  # the heatmap, the selected position's tile framed
    stride: int  # every stride-th row and column of positions has a tile (1: all)
    inner: int  # every inner-th position is shown inside a tile (1: all)
    structure: SimilarityStructure  # what the shown tiles' rows of S say about the grid (neighbours, distance)

    @property
    def peaks(self) -> float:
        """Fraction of the shown tiles whose maximum is their own position."""
        return self.structure.own_peaks

    @property
    def low(self) -> float:
        """The value at the dark end of the colour scale (the top end is 1)."""
        return float(self.figure.data[0].zmin)

    @property
    def thinned(self) -> bool:
        """Whether the chart leaves positions out to fit the panel budget."""
        return (self.stride, self.inner) != (1, 1)


def similarity_figure(pos, grid: tuple[int, int], selected: int | None = None, height: int = 520,
                      max_bytes: int = MAX_PANEL_BYTES) -> SimilarityChart:
    """The tiled cosine-similarity heatmap of position embeddings pos (N, D) on `grid` (ViT Fig. 7 centre).

    Thinned (see `tile_strides`) until the chart fits max_bytes (its size depends on the values and on the hover
    labels' language, so it is measured); only the shown tiles' rows of S are computed, so any grid works.
    `selected` (a raster index) gets a black-and-white frame around its tile when that tile is shown.
    """
    gh, gw = grid
    for stride, inner in tile_strides(grid, MAX_HEATMAP_CELLS):
        queries = tile_queries(grid, stride)
        rows = similarity_to(pos, queries)
        spec = _similarity_spec(similarity_tiles(rows, grid, stride, inner=inner), height)
        # measured on the plain spec: a figure object's size would include plotly's template (a constant ~7 kB that
        # the websocket's compression sends once) and cost a deep copy of it
        if payload_bytes(spec) <= max_bytes:
            break
    if selected is not None:
        r, c = divmod(selected, gw)
        if r % stride == 0 and c % stride == 0:
            ih, iw = len(range(0, gh, inner)), len(range(0, gw, inner))
            r, c = r // stride, c // stride
            spec["layout"]["shapes"] = [
                dict(type="rect", xref="x", yref="y", line=line, x0=c * (iw + 1) - 1, x1=c * (iw + 1) + iw,
                     y0=r * (ih + 1) - 1, y1=r * (ih + 1) + ih) for line in FRAME]
    fig = go.Figure(spec, _validate=False)
    return SimilarityChart(fig, stride, inner, similarity_structure(rows, queries, grid))
