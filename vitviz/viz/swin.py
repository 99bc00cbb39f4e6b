"""Pictures and figures of the Swin page: windows over the image, the cyclic shift, the shift regions and mask,
the relative position bias, patch merging and the cost of attention (Liu et al. 2021, §3.1–3.2, Eq. 1–4, Fig. 2–4).

They draw what `vitviz.swin_windows` computed with the real model functions: numpy arrays and `WindowPartition`s
in, PIL images or plotly figure dicts out (no streamlit, no model in here).
"""
from __future__ import annotations

import html
import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..i18n import _
from ..models.swin import MASK_VALUE
from ..swin_windows import MERGE_CORNER, MERGE_OFFSETS, CostCurves, WindowPartition, merge_corner, rolled, runs
from .attention import colourise

# Okabe & Ito's colour-blind-safe palette. Windows: a 2×2 checker of four light colours, the four of Okabe–Ito that
# stay furthest apart at 55 % over a photo under simulated protanopia, deuteranopia and tritanopia (ΔE ≥ 10,
# tests/test_viz_swin.py); windows that touch differ (unless a wrapped window meets the window it wrapped to; window
# borders are drawn as well). Wrapped strips: vermilion rows, blue columns, each with its own hatch direction, so
# they are told apart without colour too.
WINDOW_COLOURS = ("#E69F00", "#56B4E9", "#F0E442", "#CC79A7")  # orange, sky blue, yellow, reddish purple
ROW_STRIP = "#D55E00"  # rows that wrap from the top to the bottom
COL_STRIP = "#0072B2"  # columns that wrap from the left to the right
# The nine shift-mask regions: 0 (everything that did not wrap) light grey, 1–8 the rest of Okabe–Ito (black last).
REGION_COLOURS = ("#DDDDDD", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
# Patch merging: x0 … x3, the 2×2 neighbours in the order of the concatenation.
MERGE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#F0E442")
PAD_GREY = (90, 90, 90)
CMAP = "inferno"  # attention: dark = little
# The bias, symmetric around 0: cividis (Nuñez et al. 2018) rises monotonically in lightness, so negative (dark blue),
# 0 (grey) and positive (yellow) stay in order under every colour-vision deficiency and in greyscale, where a
# red-white-blue map shows both signs as the same darker grey.
BIAS_SCALE = "Cividis"  # the name as plotly.js spells it: the figures are sent unvalidated
# -100 dark, 0 light: a contrast of 16:1, which WCAG's 1.4.1 counts as a distinction besides hue; the masked cells are
# also crossed out where the cells are large enough to hold a cross (MASK_CROSSES)
MASK_SCALE = ((0.0, "#111111"), (1.0, "#F2F2F2"))
MASK_CROSSES = 64  # the most tokens per window (M ≤ 8) whose mask cells get a cross: ≥ 6 px a cell at 460 px


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _rgb_array(colours) -> np.ndarray:
    return np.array([_rgb(c) for c in colours], dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Pictures (PIL): token grids over the image
# ---------------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def cell_size(rows: int, cols: int, width: int = 520, max_height: int = 560) -> int:
    """Display pixels per token so that a rows × cols grid fits width × max_height (at least 2)."""
    return max(2, min(width // cols, max_height // rows))


@lru_cache(maxsize=16)
def _hatch(height: int, width: int, direction: str, period: int = 8, thickness: int = 2) -> np.ndarray:
    """(H, W) bool stripes: "\\" or "/" diagonals, "-" rows, "|" columns."""
    y, x = np.mgrid[0:height, 0:width]
    k = {"\\": x - y, "/": x + y, "-": y, "|": x}[direction]
    return (k % period) < thickness


def _upscale(values: np.ndarray, cell: int) -> np.ndarray:
    return np.repeat(np.repeat(values, cell, 0), cell, 1)


def _photo_canvas(photo: Image.Image, token_px: int, padded: tuple[int, int], cell: int) -> np.ndarray:
    """The model's input drawn under a padded Hp×Wp token grid, cell px per token: (Hp·cell, Wp·cell, 3) uint8.

    Token (r, c) of a stage whose tokens each cover token_px × token_px input pixels sits over pixels
    [r·token_px, (r+1)·token_px) × [c·token_px, (c+1)·token_px); what lies beyond the image (zero padding) is grey.
    """
    hp, wp = padded
    scale = cell / token_px
    size = max(1, round(photo.width * scale)), max(1, round(photo.height * scale))
    canvas = Image.new("RGB", (wp * cell, hp * cell), PAD_GREY)
    canvas.paste(photo.convert("RGB").resize(size, Image.BILINEAR), (0, 0))  # PIL clips what lies beyond
    return np.asarray(canvas)


def token_canvas(photo: Image.Image, token_px: int, padded: tuple[int, int], cell: int) -> np.ndarray:
    """`_photo_canvas` as float: (Hp·cell, Wp·cell, 3) float32, for pictures that blend colours over it."""
    return _photo_canvas(photo, token_px, padded, cell).astype(np.float32)


def _boundaries(ids: np.ndarray, cell: int, width: int = 1) -> np.ndarray:
    """Pixel mask (Hp·cell, Wp·cell) of the borders between tokens of different ids (Hp, Wp): `width` px on each
    side of a border. Made from the token grid's borders (a border left of token column c covers pixel columns
    c·cell − width … c·cell + width − 1 along its token's rows), not by comparing every pixel of the upscaled map."""
    h, w = ids.shape
    edge = np.zeros((h * cell, w * cell), bool)
    across = np.repeat(ids[:, 1:] != ids[:, :-1], cell, 0)  # (Hp·cell, Wp − 1): a border left of columns 1 … Wp − 1
    down = np.repeat(ids[1:] != ids[:-1], cell, 1)  # (Hp − 1, Wp·cell): a border above rows 1 … Hp − 1
    for offset in range(-width, width):
        x = np.arange(1, w) * cell + offset
        keep = (x >= 0) & (x < w * cell)
        edge[:, x[keep]] |= across[:, keep]
        y = np.arange(1, h) * cell + offset
        keep = (y >= 0) & (y < h * cell)
        edge[y[keep]] |= down[keep]
    return edge


def _paint(canvas: np.ndarray, mask_px: np.ndarray, colour, alpha: float) -> None:
    canvas[mask_px] = canvas[mask_px] * (1 - alpha) + np.asarray(colour, np.float32) * alpha


def _to_image(canvas: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8))


def _frame_cells(draw: ImageDraw.ImageDraw, cells, cell: int, colour=(255, 214, 0)) -> None:
    """A black-and-yellow frame around each (r, c) cell: visible on any colour."""
    for r, c in cells:
        x0, y0, x1, y1 = c * cell, r * cell, (c + 1) * cell - 1, (r + 1) * cell - 1
        draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0), width=max(1, min(4, cell // 6 + 1)))
        if cell >= 8:
            draw.rectangle([x0 + 2, y0 + 2, x1 - 2, y1 - 2], outline=colour, width=max(1, min(3, cell // 10)))


def _outline_region(canvas: np.ndarray, region: np.ndarray, cell: int, colour=(255, 214, 0)) -> None:
    """A line in `colour` edged in black on both sides along the border of a token region (Hp, Wp) bool, also where
    the region meets the map's edge: visible on any background. Drawn edge by edge (a few dozen token edges), not
    as pixel masks of the whole canvas: a border between tokens c − 1 and c at pixel c·cell gets 3 px of black and
    then 1 px of `colour` on each side."""
    height, width = canvas.shape[:2]
    padded = np.pad(region, 1)  # one token around, so the map's edge is a border too
    columns = np.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])  # (r, c): between columns c − 1 and c of row r
    rows = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])  # (r, c): between rows r − 1 and r of column c
    for half, value in ((3, 0), (1, colour)):
        for r, c in zip(*columns):
            canvas[r * cell:(r + 1) * cell, max(0, c * cell - half):min(width, c * cell + half)] = value
        for r, c in zip(*rows):
            canvas[max(0, r * cell - half):min(height, r * cell + half), c * cell:(c + 1) * cell] = value


def _mark_padding(canvas: np.ndarray, pad: np.ndarray, cell: int) -> None:
    px = _upscale(pad, cell)
    stripes = _hatch(*px.shape, "/", 10, 3)
    canvas[px] = canvas[px] * 0.15 + np.float32(PAD_GREY[0]) * 0.85  # dark grey: darker than any window tint
    canvas[px & stripes] = 30


def _mark_strips(canvas: np.ndarray, rows: np.ndarray, cols: np.ndarray, cell: int) -> None:
    """Wrapped strips: vermilion with "\\" hatching for rows, blue with "/" for columns (both on the corner)."""
    for mask, colour, direction in ((rows, ROW_STRIP, "\\"), (cols, COL_STRIP, "/")):
        if not mask.any():
            continue
        px = _upscale(mask, cell)
        _paint(canvas, px, _rgb(colour), 0.45)
        _paint(canvas, px & _hatch(*px.shape, direction, 8, 3), _rgb(colour), 1.0)
        canvas[_boundaries(px.astype(np.int8), 1, 1) & px] = _rgb(colour)


def partition_picture(photo: Image.Image, part: WindowPartition, cell: int, selected: int | None = None,
                      mark_strips: bool = True) -> Image.Image:
    """The stage's token grid over the image, each token tinted with its window's colour, window borders black,
    padding tokens grey-hatched. With a shift, the windows are those of the rolled map drawn where their tokens are
    in the image (Fig. 2 right): the wrapped strips (first s rows / columns) are hatched and join the window on the
    far side. `selected`: that window's tokens framed in yellow."""
    ids, _tok = part.index_map()
    nw = part.window_grid[1]
    # checker colours by the window's row and column in the partition
    colour_index = (ids // nw % 2) * 2 + ids % nw % 2
    canvas = token_canvas(photo, part.token_px, part.padded, cell)
    tint = _rgb_array(WINDOW_COLOURS)[_upscale(colour_index, cell)]
    canvas = canvas * 0.45 + tint * 0.55
    _mark_padding(canvas, part.padding(), cell)
    if part.shift and mark_strips:
        _mark_strips(canvas, *part.strips(), cell)
    canvas[_boundaries(ids, cell, 1 if cell < 8 else 2)] = 0
    if selected is not None:
        _outline_region(canvas, ids == selected, cell)
    return _to_image(canvas)


def feature_picture(rgb: np.ndarray, window: int, cell: int, *, strips=None, padding: np.ndarray | None = None,
                    window_lines: bool = True) -> Image.Image:
    """A map in PCA colours (Hp, Wp, 3) in [0, 1], cell px per token: white window borders of the partition that
    follows (on the map as it is, rolled or not), `padding` (Hp, Wp) bool tokens hatched grey, and optional
    (rows, cols) strip masks marked."""
    canvas = _upscale(np.asarray(rgb, np.float32) * 255, cell)
    padded = rgb.shape[:2]
    if padding is not None and padding.any():
        _mark_padding(canvas, padding, cell)
    if strips is not None:
        _mark_strips(canvas, *strips, cell)
    if window_lines:
        r, c = np.mgrid[0:padded[0], 0:padded[1]]
        canvas[_boundaries((r // window) * padded[1] + c // window, cell, 1)] = 255
    return _to_image(canvas)


def rolled_feature_picture(rgb: np.ndarray, part: WindowPartition, cell: int, moved: int, *, roll_map: bool,
                           window_lines: bool) -> Image.Image:
    """A step of the cyclic shift: the PCA-coloured map (Hp, Wp, 3) with the strips that wrap and the padding
    marked where they are after a roll by (-moved, -moved); `roll_map` rolls the map too (a map given before the
    roll), else it is drawn as given (the traced `shifted` map, already rolled by s)."""
    rows, cols = part.strips()
    return feature_picture(rolled(rgb, moved) if roll_map else rgb, part.window, cell,
                           strips=(rolled(rows, moved), rolled(cols, moved)), padding=rolled(part.padding(), moved),
                           window_lines=window_lines)


def labels_picture(labels: np.ndarray, window: int, cell: int, *, back: int = 0) -> Image.Image:
    """The nine-region label map (Hp, Wp) in colour, the region number written in each region where it fits, region
    borders dashed and window borders solid.

    `back` = s rolls the map back by (+s, +s) to show the regions where their tokens are in the image (the window
    borders then follow the shifted windows)."""
    labels = np.asarray(labels)
    hp, wp = labels.shape
    r, c = np.mgrid[0:hp, 0:wp]
    win = (r // window) * wp + c // window
    if back:
        labels = np.roll(labels, (back, back), (0, 1))
        win = np.roll(win, (back, back), (0, 1))
    colours = _upscale(_rgb_array(REGION_COLOURS).astype(np.uint8)[labels], cell)  # (Hp·cell, Wp·cell, 3)
    # region borders dashed, window borders solid: regions are told apart by their outlines without their colours
    border = _boundaries(labels, cell, 1)
    colours[border & _hatch(*border.shape, "/", 6, 3)] = 40  # dashes: 3 px on, 3 px off along any border
    colours[_boundaries(win, cell, 1 if cell < 8 else 2)] = 0
    picture = Image.fromarray(colours)
    draw = ImageDraw.Draw(picture)
    size = max(14, min(30, cell * 2))
    font = _font(size)
    # one number per connected piece of each region: at the centre of each run of rows × columns with that label
    for value in np.unique(labels):
        rows = np.nonzero((labels == value).any(1))[0]
        cols = np.nonzero((labels == value).any(0))[0]
        for rr in runs(rows):
            for cc in runs(cols):
                if not (labels[rr[0]:rr[1] + 1, cc[0]:cc[1] + 1] == value).all():
                    continue
                x = (cc[0] + cc[1] + 1) * cell / 2
                y = (rr[0] + rr[1] + 1) * cell / 2
                if (rr[1] - rr[0] + 1) * cell < size * 0.8 or (cc[1] - cc[0] + 1) * cell < size * 0.6:
                    continue
                dark = value in (5, 8)
                ink, halo = ((255, 255, 255), (0, 0, 0)) if dark else ((0, 0, 0), (255, 255, 255))
                draw.text((x, y), str(int(value)), fill=ink, font=font, anchor="mm", stroke_width=2, stroke_fill=halo)
    return picture


def window_attention_picture(photo: Image.Image, part: WindowPartition, cell: int, selected: int, query: int,
                             values: np.ndarray) -> Image.Image:
    """Where window `selected` of the (rolled) partition lies in the image, coloured by `values` (M²,) — a query's
    attention to each key of the window — over the image; the rest of the map darkened, its padding hatched; the
    query framed."""
    ids, tok = part.index_map()
    inside = ids == selected
    pad = part.padding() & ~inside
    top = float(values.max()) if values.size else 1.0
    # every pixel is photo · scale + offset of its token: 80 % colour inside the window, 45 % of the photo outside,
    # and the padding outside darkened further to 15 % of that over 85 % grey (one multiply-add over the canvas)
    scale = np.where(inside, np.float32(0.2), np.float32(0.45))
    scale[pad] *= np.float32(0.15)
    offset = np.zeros((*part.padded, 3), np.float32)
    offset[inside] = colourise(np.asarray(values)[tok[inside]], top if top > 0 else 1.0, CMAP) * np.float32(0.8)
    offset[pad] = np.float32(PAD_GREY[0] * 0.85)
    canvas = _photo_canvas(photo, part.token_px, part.padded, cell) * _upscale(scale, cell)[..., None]
    canvas += _upscale(offset, cell)
    pad_px = _upscale(pad, cell)
    canvas[pad_px & _hatch(*pad_px.shape, "/", 10, 3)] = 30
    _outline_region(canvas, inside, cell, (255, 255, 255))
    picture = _to_image(canvas)
    r, c = np.nonzero(inside & (tok == query))
    _frame_cells(ImageDraw.Draw(picture), zip(r.tolist(), c.tolist()), cell)
    return picture


def head_mosaic(maps: np.ndarray, query: int, cell: int, masked: np.ndarray | None = None,
                columns: int | None = None, gap: int = 6) -> Image.Image:
    """Each head's M×M attention of one query inside its window (heads, M, M), inferno stretched per head, the
    query framed; keys with `masked` (M, M) True (mask −100) crossed out."""
    heads, m, _m = maps.shape
    columns = columns or heads
    rows = -(-heads // columns)
    size = m * cell
    canvas = Image.new("RGB", (columns * (size + gap) - gap, rows * (size + gap) - gap), (255, 255, 255))
    qr, qc = divmod(query, m)
    for h in range(heads):
        tile = Image.fromarray(colourise(maps[h], None, CMAP)).resize((size, size), Image.NEAREST)
        draw = ImageDraw.Draw(tile)
        if masked is not None and cell >= 6:
            for r, c in zip(*np.nonzero(masked)):
                x0, y0 = c * cell + cell // 4, r * cell + cell // 4
                x1, y1 = (c + 1) * cell - cell // 4 - 1, (r + 1) * cell - cell // 4 - 1
                draw.line([x0, y0, x1, y1], fill=(120, 120, 120), width=max(1, cell // 10))
                draw.line([x0, y1, x1, y0], fill=(120, 120, 120), width=max(1, cell // 10))
        _frame_cells(draw, [(qr, qc)], cell)
        r, c = divmod(h, columns)
        canvas.paste(tile, (c * (size + gap), r * (size + gap)))
    return canvas


def merge_picture(photo: Image.Image, token_px: int, grid: tuple[int, int], width: int = 440,
                  tokens: int = MERGE_CORNER) -> tuple[Image.Image, tuple[int, int]]:
    """The top-left corner (at most `tokens`×`tokens`, whole 2×2 groups) of the stage's token grid over the image,
    each token tinted by its place in its 2×2 group (x0 … x3, the order of the concatenation) and labelled, thick
    black borders around groups, thin white ones between tokens; padding to even sides hatched.
    Returns the picture and the (rows, cols) of tokens shown."""
    h, w = grid
    rows, cols = merge_corner(grid, tokens)
    cell = max(8, width // cols)
    # only the corner is shown: resizing the whole image to cell / token_px (9× at stage 1) would cost 20× as much
    corner = photo.crop((0, 0, min(photo.width, cols * token_px), min(photo.height, rows * token_px)))
    canvas = token_canvas(corner, token_px, (rows, cols), cell)
    r, c = np.mgrid[0:rows, 0:cols]
    order = np.zeros((rows, cols), np.int64)
    for i, (dh, dw) in enumerate(MERGE_OFFSETS):
        order[(r % 2 == dh) & (c % 2 == dw)] = i
    canvas = canvas * 0.45 + _rgb_array(MERGE_COLOURS)[_upscale(order, cell)] * 0.55
    pad = (r >= h) | (c >= w)
    _mark_padding(canvas, pad, cell)
    canvas[_boundaries(r * cols + c, cell, 1)] = 255
    canvas[_boundaries((r // 2) * cols + c // 2, cell, 2)] = 0
    picture = _to_image(canvas)
    draw = ImageDraw.Draw(picture)
    font = _font(max(10, min(24, cell // 2)))
    for rr in range(rows):
        for cc in range(cols):
            draw.text(((cc + 0.5) * cell, (rr + 0.5) * cell), f"x{order[rr, cc]}", fill=(0, 0, 0), font=font,
                      anchor="mm", stroke_width=2, stroke_fill=(255, 255, 255))
    return picture, (rows, cols)


def grid_picture(photo: Image.Image, token_px: int, grid: tuple[int, int], width: int = 240) -> Image.Image:
    """The image with a stage's token grid drawn over it in thin dark lines: one per token border when tokens are at
    least 6 px on screen, else one every 2nd, 4th, … token (the caption says how many tokens there are)."""
    h, w = grid
    cell = max(1, width // w)
    canvas = token_canvas(photo, token_px, grid, cell)
    step = 1
    while cell * step < 6:
        step *= 2
    lines = np.zeros((h * cell, w * cell), bool)
    lines[::cell * step, :] = True
    lines[:, ::cell * step] = True
    canvas[lines] = canvas[lines] * 0.3 + 255 * 0.7
    return _to_image(canvas)


def _css_colour(colour) -> str:
    """A "#RRGGBB" colour as given, an (r, g, b) tuple as "#rrggbb"."""
    return colour if isinstance(colour, str) else "#{:02x}{:02x}{:02x}".format(*colour)


def legend_html(items, size: int = 22) -> str:
    """A legend as HTML (for st.markdown with unsafe_allow_html): items [(colours, label), …] or [(colours, label,
    hatch), …], each one or more swatches followed by its label; `hatch` "\\" or "/" stripes the swatches as the
    pictures stripe what they stand for (so that swatch and picture match without their colours). The browser draws
    the words (any language, the page's own font, large enough for a projector); the label is escaped. One line,
    wrapping on a narrow screen; no blank line inside (a blank line would end the HTML block in markdown)."""
    swatch = (f"display:inline-block;width:{size}px;height:{size}px;border:1px solid #333;border-radius:2px;"
              "flex:none")
    groups = []
    for colours, label, *hatch in items:
        boxes = "".join(f'<span style="{swatch};background:{_swatch_fill(_css_colour(c), *hatch)}"></span>'
                        for c in colours)
        text = f"<span>{html.escape(label)}</span>" if label else ""
        groups.append(f'<span style="display:inline-flex;align-items:center;gap:5px">{boxes}{text}</span>')
    return ('<div style="display:flex;flex-wrap:wrap;align-items:center;gap:8px 24px;font-size:1.05rem;'
            f'line-height:1.5;margin:0.2rem 0 0.6rem 0">{"".join(groups)}</div>')


def _swatch_fill(colour: str, hatch: str | None = None) -> str:
    """A swatch's CSS background: the colour, or the colour striped with its paler self along `hatch`."""
    if hatch is None:
        return colour
    angle = {"\\": "45deg", "/": "-45deg"}[hatch]  # CSS stripes run across the gradient's direction
    return f"repeating-linear-gradient({angle},{colour} 0 3px,{colour}80 3px 7px)"


# ---------------------------------------------------------------------------------------------------------------
# Figures (plotly dicts, hover values)
# ---------------------------------------------------------------------------------------------------------------

def _outline(x0: float, x1: float, y0: float, y1: float, **ref) -> list[dict]:
    """A rectangle outlined black outside and white inside: it stands out on every colour of every map."""
    return [dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line=dict(color=colour, width=width), **ref)
            for colour, width in (("#000000", 5), ("#FFFFFF", 2))]


def _layout(title: str, height: int, **kwargs) -> dict:
    """What every figure of the page shares: its title and fonts, a white plot, and no dragging (a finger scrolling
    the page on a phone must not pan or zoom the chart; hover and clicks still work)."""
    return dict(height=height, title=dict(text=title, font=dict(size=16)), font=dict(size=14), plot_bgcolor="white",
                dragmode=False, **kwargs)


def _mask_crosses(mask: np.ndarray, tokens: list[str]) -> dict:
    """A grey × on every masked cell (-100), on the heat map's category axes."""
    queries, keys = np.nonzero(np.asarray(mask) == MASK_VALUE)
    return dict(type="scatter", mode="markers", x=[tokens[k] for k in keys], y=[tokens[q] for q in queries],
                marker=dict(symbol="x-thin", size=6, line=dict(color="#8C8C8C", width=1.5)), hoverinfo="skip",
                showlegend=False)


def mask_figure(mask: np.ndarray, labels: np.ndarray, *, title: str, query: int | None = None,
                height: int = 460) -> dict:
    """The M²×M² mask of one window (0 or -100), rows = queries, columns = keys; hover: both tokens' (row, col)
    in the window and their regions. labels (M, M) are the window's region labels. `query` row is outlined; masked
    cells are crossed out when the window has at most `MASK_CROSSES` tokens."""
    n = mask.shape[0]
    m = labels.shape[0]
    flat = np.asarray(labels).reshape(-1)
    tokens = [f"{i} ({i // m},{i % m}) r{flat[i]}" for i in range(n)]
    heat = dict(type="heatmap", z=np.asarray(mask, np.float32), zmin=MASK_VALUE, zmax=0, colorscale=MASK_SCALE,
                x=tokens, y=tokens, xgap=0, ygap=0,
                colorbar=dict(title=dict(text=_("mask"), side="right"), tickvals=[MASK_VALUE, 0], thickness=14,
                              tickfont=dict(size=13)),
                hovertemplate=_("query") + " %{y}<br>" + _("key") + " %{x}<br>" + _("mask") + " %{z:.0f}<extra></extra>")
    data = [heat]
    if n <= MASK_CROSSES and (np.asarray(mask) == MASK_VALUE).any():
        data.append(_mask_crosses(mask, tokens))
    ticks = dict(type="category", showticklabels=False, showgrid=False, ticks="")
    shapes = [] if query is None else _outline(-0.5, n - 0.5, query - 0.5, query + 0.5)
    layout = _layout(title, height, margin=dict(l=40, r=10, t=40, b=40), shapes=shapes,
                     xaxis=dict(ticks, title=dict(text=_("key token j (row-major in the window)")), constrain="domain"),
                     yaxis=dict(ticks, title=dict(text=_("query token i")), autorange="reversed", scaleanchor="x",
                                constrain="domain"))
    return dict(data=data, layout=layout)


def _bias_colorbar(title: str) -> dict:
    return dict(title=dict(text=title, side="right"), thickness=14, tickfont=dict(size=13))


def bias_table_figure(table: np.ndarray, window: int, *, title: str, height: int = 520) -> dict:
    """The relative position bias table ((2M-1)², heads) as stored: one row per relative offset (dy, dx), one column
    per head; hover gives the row index, the offset and the value."""
    rows, heads = table.shape
    side = 2 * window - 1
    idx = np.arange(rows)
    labels = [f"{i}: (dy {i // side - window + 1:+d}, dx {i % side - window + 1:+d})" for i in idx]
    vmax = float(np.abs(table).max()) or 1.0
    heat = dict(type="heatmap", z=np.asarray(table, np.float32), y=labels, x=[str(h + 1) for h in range(heads)],
                zmin=-vmax, zmax=vmax, colorscale=BIAS_SCALE, colorbar=_bias_colorbar(_("bias")),
                hovertemplate=_("row") + " %{y}<br>" + _("head") + " %{x}<br>" + _("bias") + " %{z:.4f}<extra></extra>")
    layout = _layout(title, height, margin=dict(l=30, r=10, t=40, b=50),
                     xaxis=dict(title=dict(text=_("head")), side="bottom", type="category", tickfont=dict(size=12)),
                     yaxis=dict(title=dict(text=_("row idx of the table (0 … {last})").format(last=rows - 1)),
                                autorange="reversed", type="category", showticklabels=False))
    return dict(data=[heat], layout=layout)


# seven parameters: the table and what to outline in it, the title, and a display default
def bias_grid_figure(table: np.ndarray, window: int, head: int, query: int, used: int | None = None, *, title: str,
                     height: int = 430) -> dict:
    """One head's table ((2M-1)², heads) reshaped to its (2M-1)×(2M-1) grid of offsets (dy, dx), with the m×m block
    that query (qi, qj) of an m×m window reads outlined (m = `used`, default M): offsets dy = qi - ki, dx = qj - kj
    for every key, i.e. rows qi + M - m … qi + M - 1 and the same for columns (the central rows when m < M)."""
    side = 2 * window - 1
    m = used or window
    grid = np.asarray(table[:, head], np.float32).reshape(side, side)
    vmax = float(np.abs(table[:, head]).max()) or 1.0
    offsets = [f"{v:+d}" for v in range(-(window - 1), window)]
    qi, qj = divmod(query, m)
    r0, c0 = qi + window - m, qj + window - m
    heat = dict(type="heatmap", z=grid, x=offsets, y=offsets, zmin=-vmax, zmax=vmax, colorscale=BIAS_SCALE,
                colorbar=_bias_colorbar(_("bias")),
                hovertemplate="dy %{y}, dx %{x}<br>" + _("bias") + " %{z:.4f}<extra></extra>")
    layout = _layout(title, height, margin=dict(l=60, r=10, t=40, b=50),
                     shapes=_outline(c0 - 0.5, c0 + m - 0.5, r0 - 0.5, r0 + m - 0.5, xref="x", yref="y"),
                     xaxis=dict(title=dict(text=_("dx = query col − key col")), type="category", constrain="domain"),
                     yaxis=dict(title=dict(text=_("dy = query row − key row")), type="category", autorange="reversed",
                                scaleanchor="x", constrain="domain"))
    return dict(data=[heat], layout=layout)


def bias_query_figure(bias: np.ndarray, query: int, *, title: str, height: int = 430) -> dict:
    """The M×M bias (M²,) that one query adds to its scores over the window's keys (traced `rel_bias` row)."""
    m = math.isqrt(bias.shape[0])
    z = np.asarray(bias, np.float32).reshape(m, m)
    vmax = float(np.abs(z).max()) or 1.0
    qi, qj = divmod(query, m)
    heat = dict(type="heatmap", z=z, zmin=-vmax, zmax=vmax, colorscale=BIAS_SCALE, colorbar=_bias_colorbar(_("bias")),
                hovertemplate=_("key") + " (%{y}, %{x})<br>" + _("bias") + " %{z:.4f}<extra></extra>")
    layout = _layout(title, height, margin=dict(l=60, r=10, t=40, b=50),
                     shapes=_outline(qj - 0.5, qj + 0.5, qi - 0.5, qi + 0.5),
                     xaxis=dict(title=dict(text=_("key column in the window")), dtick=1, constrain="domain"),
                     yaxis=dict(title=dict(text=_("key row")), autorange="reversed", scaleanchor="x", dtick=1,
                                constrain="domain"))
    return dict(data=[heat], layout=layout)


def cost_figure(curves: CostCurves, resolution: int, height: int = 520) -> dict:
    """Multiply-adds of one attention layer of a stage against the (square) input resolution, log scale: the shared
    projection term and the two attention terms (`vitviz.swin_windows.cost_curves`). `resolution` is marked.
    MSA and W-MSA differ by their markers (circles, squares) as well as their colours; totals are dashed."""
    xs, proj, glob, win = list(curves.resolutions), curves.projections, curves.msa, curves.wmsa
    lines = [
        (_("4hwC² (projections, both)"), proj, "#000000", "dot", None),
        (_("2(hw)²C (MSA attention)"), glob, "#D55E00", "solid", "circle"),
        (_("2M²hwC (W-MSA attention, M = {m})").format(m=curves.window), win, "#0072B2", "solid", "square"),
        (_("Ω(MSA) total"), [a + b for a, b in zip(proj, glob)], "#D55E00", "dash", "circle-open"),
        (_("Ω(W-MSA) total"), [a + b for a, b in zip(proj, win)], "#0072B2", "dash", "square-open"),
    ]
    data = [dict(type="scatter", mode="lines+markers" if symbol else "lines", name=name, x=xs, y=ys,
                 line=dict(color=colour, dash=dash, width=3),
                 marker=dict(symbol=symbol or "circle", size=9, color=colour, maxdisplayed=12),
                 hovertemplate="%{x} px: %{y:.3s} " + _("multiply-adds") + "<extra>" + name + "</extra>")
            for name, ys, colour, dash, symbol in lines]
    # two lines: one would run past a 320 px phone's edge
    title = (_("One attention layer of stage {stage}").format(stage=curves.stage + 1)
             + f"<br>C = {curves.channels}, P = {curves.patch}")
    layout = _layout(
        title, height, margin=dict(l=80, r=10, t=60, b=50),
        xaxis=dict(title=dict(text=_("input resolution (px, square)")), gridcolor="#eee"),
        yaxis=dict(title=dict(text=_("multiply-adds")), type="log", gridcolor="#ddd", exponentformat="SI"),
        legend=dict(font=dict(size=13), orientation="h", x=0, y=-0.18, yanchor="top"),
        shapes=[dict(type="line", xref="x", yref="paper", x0=resolution, x1=resolution, y0=0, y1=1,
                     line=dict(color="#555", width=2, dash="dot"))],
        annotations=[dict(xref="x", yref="paper", x=resolution, y=0.02, xanchor="left", showarrow=False,
                          text=f" {resolution} px", font=dict(size=13))],
    )
    return dict(data=data, layout=layout)
