"""Pictures and figures of the MobileViT page: the unfold layout, attention across patches, the receptive field.

MobileViT (Mehta & Rastegari 2022, §3.1) unfolds a feature map into P = ph·pw sequences, one per pixel offset inside
a patch; `vitviz.mobilevit_blocks` computes that geometry (`Unfolding`), the run and the masks drawn here. Everything
here only draws (arrays and an `Unfolding` in, PIL images or plotly figures out; no streamlit, no model), so any map
size and patch size can be tested.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from ..i18n import N_, _
from ..mobilevit_blocks import Unfolding
from .attention import colourise
from .encode import webp_uri

# Okabe & Ito's colour-blind-safe palette (black left out: the patch borders are black), plus a mid grey.
# Offsets p = 0…7 each get their own colour; beyond 8 offsets the colours repeat. Colour is never the only cue: the
# cells carry their offset's number or a dot at the offset's place inside the cell (`offset_cue`), and
# the thick patch borders show every pixel's place inside its patch.
OFFSET_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999")
OFFSET_NAMES = (N_("orange"), N_("sky blue"), N_("bluish green"), N_("yellow"), N_("blue"), N_("vermilion"),
                N_("reddish purple"), N_("grey"))  # Okabe & Ito's own names, for the text alternatives
NUMBERED_CELL = 24  # display px per map pixel from which the offset map's cells carry their numbers (`offset_cue`)
SMALL_NUMBERS_CELL = 14  # the smallest cell a number fits in (10 px type)
# Out of reach on the receptive-field pictures: stripes light enough to stand out of the darkened photo in every
# colour vision (luminance contrast ≥ 4.5:1 against any pixel darkened to a quarter), not by their hue.
HATCH_RGB = (255, 140, 140)
FEATURE_CMAP = "viridis"  # perceptually uniform and colour-blind safe, for signed feature maps (min → max)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


OFFSET_RGB = np.array([_rgb(c) for c in OFFSET_COLOURS], dtype=np.float32)


def cell_size(rows: int, cols: int, width: int = 640, max_height: int = 640) -> int:
    """Display pixels per map pixel so that a rows × cols map fits width × max_height (at least 2)."""
    return max(2, min(width // cols, max_height // rows))


@functools.lru_cache(maxsize=16)  # asked for once per cell of a patch tile
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _dot_places(u: Unfolding, cell: int) -> tuple[int, float]:
    """(margin, room): a cell's dots sit `margin` px inside its edges (clear of the 2 px patch border), one place
    every `room` px along the patch's longer side."""
    margin = max(3, cell // 6)
    return margin, (cell - 2 * margin) / max(u.ph, u.pw)


def offset_cue(u: Unfolding, width: int = 640, max_height: int = 640) -> str:
    """What `offset_picture` of this map at this size marks each offset with, besides its colour: "numbers" in large
    cells, and in smaller ones (down to 10 px type) where the colours repeat (more than 8 offsets) or dots would crowd
    (less than 3 px apart); else "dots" at the offset's place inside the cell, which hide less of the photo, where
    they fit (2 px apart); else "place": only each cell's place inside its bordered patch (one offset needs none)."""
    cell = cell_size(*u.resized, width, max_height)
    room = _dot_places(u, cell)[1]
    if u.p == 1:
        return "place"
    if cell >= NUMBERED_CELL or (cell >= SMALL_NUMBERS_CELL and (u.p > len(OFFSET_COLOURS) or room < 3)):
        return "numbers"
    return "dots" if room >= 2 else "place"


def backdrop(photo: Image.Image, rows: int, cols: int, cell: int) -> Image.Image:
    """The model's input stretched over a rows × cols map drawn cell px per map pixel (same field of view).

    A photo already of that size is returned as it is, so one backdrop can serve several pictures."""
    size = (cols * cell, rows * cell)
    photo = photo.convert("RGB")
    return photo if photo.size == size else photo.resize(size, Image.BICUBIC)


def _frame(draw: ImageDraw.ImageDraw, r: int, c: int, cell: int, rows: int = 1, cols: int = 1, width: int = 3,
           grow: int = 0) -> None:
    """A black-and-white double frame around cells (r, c) … (r+rows-1, c+cols-1), `grow` px outside them: visible
    on any colour."""
    x0, y0 = c * cell - grow, r * cell - grow
    x1, y1 = (c + cols) * cell - 1 + grow, (r + rows) * cell - 1 + grow
    draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0), width=width + 2)
    draw.rectangle([x0 + width, y0 + width, x1 - width, y1 - width], outline=(255, 255, 255), width=max(1, width - 1))


def _patch_tile(u: Unfolding, cell: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A transparent ph×pw patch tile (cell px per pixel). Whatever is drawn on it repeats in every patch when
    tiled nh × nw times (`_tile_over`); a border on its top and left edges borders every patch but the map's right
    and bottom edges (`_outer_border`)."""
    tile = Image.new("RGBA", (u.pw * cell, u.ph * cell), (0, 0, 0, 0))
    draw = ImageDraw.Draw(tile)
    return tile, draw


def _tile_over(base: Image.Image, tile: Image.Image, u: Unfolding) -> Image.Image:
    """The RGBA patch tile repeated over every patch of an RGB base picture (alpha-composited) -> RGB."""
    nh, nw = u.grid
    overlay = Image.fromarray(np.tile(np.asarray(tile), (nh, nw, 1)), "RGBA")
    return Image.alpha_composite(base.convert("RGBA"), overlay).convert("RGB")


def _outer_border(draw: ImageDraw.ImageDraw, u: Unfolding, cell: int, border: int) -> None:
    h, w = u.resized
    if border:
        draw.line([(w * cell - 1, 0), (w * cell - 1, h * cell)], fill=(0, 0, 0), width=border)
        draw.line([(0, h * cell - 1), (w * cell, h * cell - 1)], fill=(0, 0, 0), width=border)


def _offset_dot(draw: ImageDraw.ImageDraw, u: Unfolding, cell: int, i: int, j: int) -> None:
    """The non-colour cue of offset (i, j) where a cell is too small for its number: a black dot with a white ring
    at the offset's place inside the cell (top left for offset 0 …), clear of the patch border (2 px)."""
    margin, room = _dot_places(u, cell)
    side = max(2, round(room * 0.6))
    cx = j * cell + margin + (j + 0.5) * (cell - 2 * margin) / u.pw
    cy = i * cell + margin + (i + 0.5) * (cell - 2 * margin) / u.ph
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    draw.rectangle([x0 - 1, y0 - 1, x0 + side, y0 + side], fill=(255, 255, 255, 255))
    draw.rectangle([x0, y0, x0 + side - 1, y0 + side - 1], fill=(0, 0, 0, 255))


def _offset_cell(draw: ImageDraw.ImageDraw, u: Unfolding, cell: int, p: int, chosen: bool, cue: str) -> None:
    """Offset p's pixel of the patch tile, marked as `cue` says: its number (white on black for the chosen
    sequence), or its dot (an inner black square for the chosen sequence, filled in small cells)."""
    i, j = divmod(p, u.pw)
    x0, y0 = j * cell, i * cell
    if cue == "numbers":
        font = _font(max(10, min(22, int(cell * 0.55))))
        centre = (x0 + cell / 2, y0 + cell / 2)
        if chosen:
            draw.rectangle([x0 + 1, y0 + 1, x0 + cell - 2, y0 + cell - 2], fill=(0, 0, 0, 255))
            draw.text(centre, str(p), fill=(255, 255, 255, 255), font=font, anchor="mm")
        else:
            draw.text(centre, str(p), fill=(0, 0, 0, 255), font=font, anchor="mm", stroke_width=2,
                      stroke_fill=(255, 255, 255, 255))
    elif chosen and cell >= 8:
        inset = max(2, cell // 8)
        draw.rectangle([x0 + inset, y0 + inset, x0 + cell - 1 - inset, y0 + cell - 1 - inset],
                       outline=(0, 0, 0, 255), width=max(2, cell // 9))
    elif chosen:
        draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(0, 0, 0, 255))
    elif cue == "dots":
        _offset_dot(draw, u, cell, i, j)


def offset_picture(photo: Image.Image, u: Unfolding, selected: tuple[int, int] | None = None,
                   width: int = 640, max_height: int = 640, alpha: float = 0.5) -> Image.Image:
    """The H'×W' map over the image: every pixel tinted with its offset's colour and marked as `offset_cue` says
    (its number, or a dot at the offset's place inside the cell), thick black lines between patches,
    thin white ones between pixels. `selected` (r, c): that pixel is framed and every pixel at the same offset (its
    sequence in X_U) is marked: its number white on black, or an inner black square where there are no numbers (a
    filled one when the cells are small).

    Everything but the photo and the frame repeats from patch to patch: drawn once on a patch tile, then tiled.
    """
    h, w = u.resized
    cell = cell_size(h, w, width, max_height)
    border = 3 if cell * min(u.ph, u.pw) >= 12 else 1
    tile, draw = _patch_tile(u, cell)
    chosen = None if selected is None else u.locate(*selected)[0]
    cue = offset_cue(u, width, max_height)
    for p in range(u.p):
        i, j = divmod(p, u.pw)
        x0, y0 = j * cell, i * cell
        colour = tuple(int(v) for v in OFFSET_RGB[p % len(OFFSET_RGB)])
        draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(*colour, round(alpha * 255)))
        if cell >= 6:
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], outline=(255, 255, 255, 110), width=1)
        _offset_cell(draw, u, cell, p, p == chosen, cue)
    draw.line([(0, 0), (u.pw * cell, 0)], fill=(0, 0, 0, 255), width=border)
    draw.line([(0, 0), (0, u.ph * cell)], fill=(0, 0, 0, 255), width=border)
    picture = _tile_over(backdrop(photo, h, w, cell), tile, u)
    draw = ImageDraw.Draw(picture)
    _outer_border(draw, u, cell, border)
    if selected is not None:
        _frame(draw, *selected, cell, width=max(2, min(4, cell // 5)), grow=max(2, cell // 3))
    return picture


def legend_picture(u: Unfolding, cell: int = 44) -> Image.Image:
    """One ph×pw patch enlarged: each pixel in its offset's colour with p and (row, col) written in it."""
    picture = Image.new("RGB", (u.pw * cell + 4, u.ph * cell + 4), "white")
    draw = ImageDraw.Draw(picture)
    font = _font(max(11, cell // 3))
    small = _font(max(9, cell // 5))
    for i in range(u.ph):
        for j in range(u.pw):
            p = i * u.pw + j
            x, y = 2 + j * cell, 2 + i * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=tuple(int(v) for v in OFFSET_RGB[p % len(OFFSET_RGB)]),
                           outline=(255, 255, 255))
            draw.text((x + cell / 2, y + cell * 0.4), str(p), fill=(0, 0, 0), font=font, anchor="mm",
                      stroke_width=2, stroke_fill=(255, 255, 255))
            if cell >= 40:
                draw.text((x + cell / 2, y + cell * 0.78), f"{i},{j}", fill=(0, 0, 0), font=small, anchor="mm")
    draw.rectangle([0, 0, picture.width - 1, picture.height - 1], outline=(0, 0, 0), width=2)
    return picture


def clickable_map(picture: Image.Image, u: Unfolding, *, title: str, height: int = 600) -> go.Figure:
    """The offset picture as a plotly figure with one invisible marker per map pixel, so a click returns the
    pixel: customdata [r, c, p, n]. Hover tells the pixel's offset and patch.

    Sent compactly (a move of ph or pw sends it again): the axes count map pixels, so the markers' places and
    customdata are int16 (6 bytes a pixel, not 24), and the picture is a WebP (half a JPEG's bytes at the same
    look, with its numbers and grid lines). Built without plotly's validation (~30 ms a figure);
    tests/test_viz_mobilevit.py validates the same spec."""
    h, w = u.resized
    r, c = np.mgrid[0:h, 0:w]
    offsets, patches = u.offsets(), u.patches()
    invisible = dict(marker=dict(opacity=0.01))
    plot_h = height - 50
    markers = dict(
        type="scatter", x=c.ravel().astype(np.int16), y=r.ravel().astype(np.int16),
        customdata=np.stack([r.ravel(), c.ravel(), offsets.ravel(), patches.ravel()], -1).astype(np.int16),
        mode="markers", showlegend=False, name="pixels",
        marker=dict(symbol="square", size=max(3.0, min(60.0, plot_h / h)), color="#000", opacity=0.01),
        selected=invisible, unselected=invisible,
        # plotly's %{…} fields go in as placeholder values, so the translated sentences keep them
        hovertemplate=(_("pixel (row {row}, col {col})").format(row="%{customdata[0]}", col="%{customdata[1]}")
                       + "<br>" + _("offset p = {p}, patch n = {n}").format(p="%{customdata[2]}", n="%{customdata[3]}")
                       + "<extra></extra>"),
    )
    axis = dict(showgrid=False, zeroline=False, visible=False)
    layout = dict(
        height=height, margin=dict(l=4, r=4, t=56, b=4), title=dict(text=title, font=dict(size=15)),
        images=[dict(source=webp_uri(picture), xref="x", yref="y", x=-0.5, y=-0.5, sizex=w, sizey=h, sizing="stretch",
                     layer="below")],
        xaxis=dict(axis, range=[-0.5, w - 0.5], constrain="domain"),
        yaxis=dict(axis, range=[h - 0.5, -0.5], scaleanchor="x", constrain="domain", constraintoward="top"),
        clickmode="event+select", dragmode=False, hovermode="closest", plot_bgcolor="white",
    )
    return go.Figure(dict(data=[markers], layout=layout), _validate=False)


def pixel_from_event(event) -> tuple[int, int] | None:
    """A plotly selection event on `clickable_map` -> the clicked pixel (r, c), or None.

    The browser sends an integer customdata row as {"0": r, "1": c, …} (a typed array), AppTest as a list."""
    try:
        data = event["selection"]["points"][0]["customdata"]
        if isinstance(data, dict):
            data = [data[str(i)] for i in range(2)]
        return int(round(data[0])), int(round(data[1]))
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def unfolded_figure(values: np.ndarray, u: Unfolding, channel: int, selected: tuple[int, int] | None = None,
                    height: int | None = None) -> go.Figure:
    """One channel of X_U as a P × N heatmap (row = offset p, column = patch n), with hover values.

    values (P, N) are the model's numbers; the row labels carry their offset's colour; `selected` (p, n) is framed.
    Built without plotly's validation (~35 ms a figure); tests/test_viz_mobilevit.py validates the same spec.
    """
    p_count, n = values.shape
    labels = [f"p={p}" for p in range(p_count)]  # each row's offset in words: its colour is not the only cue
    step = max(1, math.ceil(p_count / 16))
    ticktext = [f"<span style='color:{OFFSET_COLOURS[p % len(OFFSET_COLOURS)]}'>■</span> p={p}"
                for p in range(0, p_count, step)]
    heatmap = dict(
        type="heatmap", z=values.astype(np.float32), y=labels, colorscale=FEATURE_CMAP.capitalize(),
        colorbar=dict(title=dict(text="X_U", side="top"), thickness=14, tickfont=dict(size=13)),
        hovertemplate=(_("offset {p}, patch n={n}").format(p="%{y}", n="%{x}") + "<br>"
                       + _("value {v}").format(v="%{z:.4f}") + "<extra></extra>"),
    )
    shapes = []
    if selected is not None:
        p, k = selected
        shapes = [dict(type="rect", x0=k - 0.5, x1=k + 0.5, y0=p - 0.5, y1=p + 0.5, line=dict(color="black", width=4)),
                  dict(type="rect", x0=k - 0.5, x1=k + 0.5, y0=p - 0.5, y1=p + 0.5, line=dict(color="white", width=2))]
    layout = dict(
        height=height or int(min(440, 140 + 26 * p_count)), margin=dict(l=80, r=10, t=56, b=50), shapes=shapes,
        # two short lines: a title does not wrap, and a phone shows the chart about 300 px wide
        title=dict(text=_("X_U[:, :, {channel}]: {sequences} sequences (offsets)").format(
            channel=channel, sequences=p_count) + "<br>" + _("× {patches} patches").format(patches=n),
                   font=dict(size=15)),
        xaxis=dict(title=dict(text=_("patch n (raster order)")), tickfont=dict(size=13)),  # short: fits a phone
        yaxis=dict(type="category", autorange="reversed", tickmode="array", tickvals=labels[::step], ticktext=ticktext,
                   tickfont=dict(size=14)),
        dragmode=False,  # a finger scrolling the page on a phone must not zoom the chart
    )
    return go.Figure(dict(data=[heatmap], layout=layout), _validate=False)


def attention_picture(photo: Image.Image, u: Unfolding, row: np.ndarray, query: tuple[int, int],
                      width: int = 480, max_height: int = 480, alpha: float = 0.65) -> Image.Image:
    """One attention row over the image: the query pixel (offset p, patch n) reads the N pixels at offset p, one
    per patch, with the weights row (N,). Each patch is tinted with the weight of its offset-p pixel, from the row's
    minimum (dark) to its maximum (bright); those N pixels are outlined in white, the query pixel is framed."""
    h, w = u.resized
    nh, nw = u.grid
    if row.shape != (u.n,):
        raise ValueError(f"row of {row.shape} does not fit {u.n} patches")
    cell = cell_size(h, w, width, max_height)
    low, high = float(row.min()), float(row.max())
    stretched = (row - low) / (high - low) if high > low else np.ones_like(row)
    tint = Image.fromarray(colourise(stretched.reshape(nh, nw), 1.0)).resize((w * cell, h * cell), Image.NEAREST)
    base = Image.blend(backdrop(photo, h, w, cell), tint, alpha)
    p, n = query
    i, j = divmod(p, u.pw)
    border = 1 if cell * min(u.ph, u.pw) >= 8 else 0
    tile, draw = _patch_tile(u, cell)
    if border:
        draw.line([(0, 0), (u.pw * cell, 0)], fill=(0, 0, 0, 255), width=1)
        draw.line([(0, 0), (0, u.ph * cell)], fill=(0, 0, 0, 255), width=1)
    if cell >= 4:
        x0, y0 = j * cell, i * cell
        draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], outline=(255, 255, 255, 255), width=1)
    picture = _tile_over(base, tile, u)
    draw = ImageDraw.Draw(picture)
    _outer_border(draw, u, cell, border)
    r, c = u.pixel(p, n)
    _frame(draw, r, c, cell, width=max(2, min(4, cell // 4)))
    return picture


def feature_picture(channel_map: np.ndarray, cell: int) -> Image.Image:
    """One channel (H, W) in viridis from its minimum (dark) to its maximum (yellow), cell px per map pixel."""
    v = np.asarray(channel_map, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    scaled = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    rgb = colourise(scaled, 1.0, FEATURE_CMAP)
    return Image.fromarray(rgb.repeat(cell, 0).repeat(cell, 1))


def dependency_picture(photo: Image.Image, mask: np.ndarray, pixel: tuple[int, int], width: int = 480,
                       max_height: int = 480) -> Image.Image:
    """The block-input map over the image: pixels the output pixel depends on as they are, the others darkened
    and hatched in light red (`HATCH_RGB`); the output pixel framed."""
    h, w = mask.shape
    cell = cell_size(h, w, width, max_height)
    base = backdrop(photo, h, w, cell)
    hatched = Image.eval(base, lambda v: v // 4)
    stripes = np.zeros((6, 6), dtype=bool)
    stripes[(np.arange(6)[:, None] + np.arange(6)[None]) % 6 < 2] = True
    hatch = np.tile(stripes, (h * cell // 6 + 1, w * cell // 6 + 1))[:h * cell, :w * cell]
    hatched.paste(HATCH_RGB, mask=Image.fromarray(hatch.astype(np.uint8) * 255))
    keep = Image.fromarray(mask.astype(np.uint8) * 255).resize(base.size, Image.NEAREST)
    picture = Image.composite(base, hatched, keep)
    _frame(ImageDraw.Draw(picture), *pixel, cell, width=max(2, min(4, cell // 4)))
    return picture
