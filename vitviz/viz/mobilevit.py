"""Pictures and arrays for the MobileViT page: the unfold layout, attention across patches, the receptive field.

MobileViT (Mehta & Rastegari 2022, §3.1) unfolds a feature map X_L ∈ R^{H×W×d} into X_U ∈ R^{P×N×d}: P = ph·pw
sequences, one per pixel offset inside a ph×pw patch, each holding the N = H'W'/P pixels at that offset
(`vitviz.models.mobilevit.unfold`). When H or W is not a multiple of the patch, the map is first resized bilinearly
to H'×W' = `patch_multiple(H, W, ph, pw)`. Everything here is pure (arrays in, PIL images or plotly figures out; no
streamlit, no model), so any map size and patch size can be tested.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from einops import reduce
from torch import nn
from PIL import Image, ImageDraw, ImageFont

from ..i18n import _
from ..models.mobilevit import patch_multiple
from .attention import colourise
from .encode import jpeg_uri

# Okabe & Ito's colour-blind-safe palette (black left out: the patch borders are black), plus a mid grey.
# Offsets p = 0…7 each get their own colour; beyond 8 offsets the colours repeat and the numbers in the cells
# (and the marked offset) tell them apart.
OFFSET_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999")
FEATURE_CMAP = "viridis"  # perceptually uniform and colour-blind safe, for signed feature maps (min → max)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


OFFSET_RGB = np.array([_rgb(c) for c in OFFSET_COLOURS], dtype=np.float32)


@dataclass(frozen=True)
class Unfolding:
    """How MobileViT unfolds an H×W map with ph×pw patches (after resizing it to a multiple of the patch)."""

    height: int  # H of the map given to the block's unfold
    width: int  # W
    ph: int  # patch height
    pw: int  # patch width

    @property
    def resized(self) -> tuple[int, int]:
        """(H', W'): the map size actually unfolded (the smallest multiple of the patch ≥ (H, W))."""
        return patch_multiple(self.height, self.width, self.ph, self.pw)

    @property
    def needs_resize(self) -> bool:
        return self.resized != (self.height, self.width)

    @property
    def grid(self) -> tuple[int, int]:
        """(nh, nw): patches per column and per row."""
        h, w = self.resized
        return h // self.ph, w // self.pw

    @property
    def p(self) -> int:
        """P = ph·pw: pixels per patch, the number of sequences."""
        return self.ph * self.pw

    @property
    def n(self) -> int:
        """N = H'W'/P: patches, the length of every sequence."""
        nh, nw = self.grid
        return nh * nw

    def locate(self, r: int, c: int) -> tuple[int, int]:
        """Pixel (r, c) of the unfolded H'×W' map -> (offset p, patch n), as `unfold` places it."""
        h, w = self.resized
        if not (0 <= r < h and 0 <= c < w):
            raise IndexError(f"pixel ({r}, {c}) is outside the {h}×{w} map")
        return (r % self.ph) * self.pw + c % self.pw, (r // self.ph) * self.grid[1] + c // self.pw

    def pixel(self, p: int, n: int) -> tuple[int, int]:
        """(offset p, patch n) -> pixel (r, c) of the H'×W' map: the inverse of `locate`."""
        i, j = divmod(p, self.pw)
        a, b = divmod(n, self.grid[1])
        return a * self.ph + i, b * self.pw + j

    def offsets(self) -> np.ndarray:
        """(H', W') int array: the offset p of every pixel."""
        h, w = self.resized
        r, c = np.mgrid[0:h, 0:w]
        return (r % self.ph) * self.pw + c % self.pw

    def patches(self) -> np.ndarray:
        """(H', W') int array: the patch n of every pixel."""
        h, w = self.resized
        r, c = np.mgrid[0:h, 0:w]
        return (r // self.ph) * self.grid[1] + c // self.pw


def offset_label(u: Unfolding, p: int) -> str:
    """'p = 3 (row 1, col 1 in the patch)'."""
    i, j = divmod(p, u.pw)
    return _("p = {p} (row {row}, col {col} in the patch)").format(p=p, row=i, col=j)


def cell_size(rows: int, cols: int, width: int = 640, max_height: int = 640) -> int:
    """Display pixels per map pixel so that a rows × cols map fits width × max_height (at least 2)."""
    return max(2, min(width // cols, max_height // rows))


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


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


def offset_picture(photo: Image.Image, u: Unfolding, selected: tuple[int, int] | None = None,
                   width: int = 640, max_height: int = 640, alpha: float = 0.5) -> Image.Image:
    """The H'×W' map over the image: every pixel tinted with its offset's colour (numbered when there is room and
    the colours alone cannot tell more than 8 offsets apart, or when the cells are large),
    thick black lines between patches, thin white ones between pixels. `selected` (r, c): that pixel is framed and
    every pixel at the same offset (its sequence in X_U) is marked: its number white on black, or an inner black
    square where there are no numbers (a filled one when the cells are small).

    Everything but the photo and the frame repeats from patch to patch: drawn once on a patch tile, then tiled.
    """
    h, w = u.resized
    cell = cell_size(h, w, width, max_height)
    border = 3 if cell * min(u.ph, u.pw) >= 12 else 1
    tile, draw = _patch_tile(u, cell)
    chosen = None if selected is None else u.locate(*selected)[0]
    numbered = cell >= 24 or (u.p > len(OFFSET_COLOURS) and cell >= 14)
    font = _font(max(10, min(22, int(cell * 0.55)))) if numbered else None
    for i in range(u.ph):
        for j in range(u.pw):
            p = i * u.pw + j
            x0, y0 = j * cell, i * cell
            colour = tuple(int(v) for v in OFFSET_RGB[p % len(OFFSET_RGB)])
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(*colour, round(alpha * 255)))
            if cell >= 6:
                draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], outline=(255, 255, 255, 110), width=1)
            centre = (x0 + cell / 2, y0 + cell / 2)
            if p == chosen and font is not None:  # the selected pixel's sequence: white on black
                draw.rectangle([x0 + 1, y0 + 1, x0 + cell - 2, y0 + cell - 2], fill=(0, 0, 0, 255))
                draw.text(centre, str(p), fill=(255, 255, 255, 255), font=font, anchor="mm")
            elif font is not None:
                draw.text(centre, str(p), fill=(0, 0, 0, 255), font=font, anchor="mm", stroke_width=2,
                          stroke_fill=(255, 255, 255, 255))
            elif p == chosen and cell >= 8:  # an inner black square
                inset = max(2, cell // 8)
                draw.rectangle([x0 + inset, y0 + inset, x0 + cell - 1 - inset, y0 + cell - 1 - inset],
                               outline=(0, 0, 0, 255), width=max(2, cell // 9))
            elif p == chosen:
                draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(0, 0, 0, 255))
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

    Built without plotly's validation (~30 ms a figure); tests/test_viz_mobilevit.py validates the same spec."""
    h, w = u.resized
    cell = picture.width / w
    r, c = np.mgrid[0:h, 0:w]
    offsets, patches = u.offsets(), u.patches()
    invisible = dict(marker=dict(opacity=0.01))
    plot_h = height - 50
    markers = dict(
        type="scatter",
        x=((c.ravel() + 0.5) * cell).astype(np.float32), y=((r.ravel() + 0.5) * cell).astype(np.float32),
        customdata=np.stack([r.ravel(), c.ravel(), offsets.ravel(), patches.ravel()], -1).astype(np.int32),
        mode="markers", showlegend=False, name="pixels",
        marker=dict(symbol="square", size=max(3.0, min(60.0, cell * plot_h / picture.height)), color="#000", opacity=0.01),
        selected=invisible, unselected=invisible,
        # plotly's %{…} fields go in as placeholder values, so the translated sentences keep them
        hovertemplate=(_("pixel (row {row}, col {col})").format(row="%{customdata[0]}", col="%{customdata[1]}")
                       + "<br>" + _("offset p = {p}, patch n = {n}").format(p="%{customdata[2]}", n="%{customdata[3]}")
                       + "<extra></extra>"),
    )
    axis = dict(showgrid=False, zeroline=False, visible=False)
    layout = dict(
        height=height, margin=dict(l=4, r=4, t=40, b=4), title=dict(text=title, font=dict(size=16)),
        images=[dict(source=jpeg_uri(picture), xref="x", yref="y", x=0, y=0, sizex=picture.width,
                     sizey=picture.height, sizing="stretch", layer="below")],
        xaxis=dict(axis, range=[0, picture.width], constrain="domain"),
        yaxis=dict(axis, range=[picture.height, 0], scaleanchor="x", constrain="domain", constraintoward="top"),
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
    labels = [f"p={p}" for p in range(p_count)]
    step = max(1, math.ceil(p_count / 16))
    ticktext = [f"<span style='color:{OFFSET_COLOURS[p % len(OFFSET_COLOURS)]}'>■</span> p={p}"
                for p in range(0, p_count, step)]
    heatmap = dict(
        type="heatmap", z=values.astype(np.float32), y=labels, colorscale=FEATURE_CMAP.capitalize(),
        colorbar=dict(title=dict(text=f"X_U[p, n, {channel}]", side="right"), thickness=14, tickfont=dict(size=13)),
        hovertemplate=(_("offset {p}, patch n={n}").format(p="%{y}", n="%{x}") + "<br>"
                       + _("value {v}").format(v="%{z:.4f}") + "<extra></extra>"),
    )
    shapes = []
    if selected is not None:
        p, k = selected
        shapes = [dict(type="rect", x0=k - 0.5, x1=k + 0.5, y0=p - 0.5, y1=p + 0.5, line=dict(color="black", width=4)),
                  dict(type="rect", x0=k - 0.5, x1=k + 0.5, y0=p - 0.5, y1=p + 0.5, line=dict(color="white", width=2))]
    layout = dict(
        height=height or int(min(420, 120 + 26 * p_count)), margin=dict(l=80, r=10, t=40, b=50), shapes=shapes,
        title=dict(text=_("X_U[:, :, {channel}] — {sequences} sequences (offsets) × {patches} patches, channel "
                          "{channel}").format(channel=channel, sequences=p_count, patches=n),
                   font=dict(size=16)),
        xaxis=dict(title=dict(text=_("patch n (raster order over the nh × nw patch grid)")), tickfont=dict(size=13)),
        yaxis=dict(type="category", autorange="reversed", tickmode="array", tickvals=labels[::step], ticktext=ticktext,
                   tickfont=dict(size=14)),
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


def interpolation_support(src: int, dst: int) -> np.ndarray:
    """(dst, src) bool: which source positions each output position of a 1-D bilinear resize (align_corners=False,
    as MobileViT resizes) reads with a nonzero weight. Identity when src == dst. 2-D bilinear is this per axis."""
    if src == dst:
        return np.eye(src, dtype=bool)
    eye = torch.eye(src, dtype=torch.float64)[None]  # (1, src channels, src positions)
    weights = F.interpolate(eye, size=dst, mode="linear", align_corners=False)[0]  # (src, dst)
    return (weights != 0).numpy().T


def _axis_reach(length: int, patch: int, index: int, kernel: int) -> np.ndarray:
    """Input positions along one axis that output position `index` of a MobileViT block depends on (bool, length).

    fusion n×n conv: output ← folded and input within ±n//2; folded ← (resize back) unfolded positions; attention
    mixes all positions with the same residue mod patch; unfolded ← (resize up) local positions; local ← input
    within ±n//2 (the n×n conv; the 1×1 conv mixes channels only).
    """
    radius = kernel // 2
    resized = math.ceil(length / patch) * patch
    up = interpolation_support(length, resized)  # (resized, length)
    down = interpolation_support(resized, length)  # (length, resized)
    near = np.zeros(length, dtype=bool)
    near[max(0, index - radius):index + radius + 1] = True  # the fusion conv's window (also the direct input path)
    folded_from = down[near].any(0)  # unfolded positions feeding those folded ones
    residues = np.unique(np.nonzero(folded_from)[0] % patch)
    attended = np.isin(np.arange(resized) % patch, residues)  # attention: every patch, same offset
    local = up[attended].any(0)
    reach = np.zeros(length, dtype=bool)
    for k in np.nonzero(local)[0]:
        reach[max(0, k - radius):k + radius + 1] = True
    return reach | near


def dependency_mask(height: int, width: int, ph: int, pw: int, pixel: tuple[int, int], kernel: int = 3) -> np.ndarray:
    """(H, W) bool: the block-input pixels that output pixel (r, c) of a MobileViT block depends on.

    Structural (which weights connect them, not their size); separable, because the convs, the resize and the
    unfold act on rows and columns independently. Along an axis, the fusion conv reaches n offsets, the local conv
    widens them to 2n - 1 = 5 for n = 3, fewer at the border: with patches of at most 3 px every output pixel depends
    on every input pixel ("every pixel sees every pixel"); 4 and 5 px leave gaps next to the border only, larger
    patches everywhere.
    """
    r, c = pixel
    return np.outer(_axis_reach(height, ph, r, kernel), _axis_reach(width, pw, c, kernel))


@functools.lru_cache(maxsize=256)  # ~25 ms per (size, patch), asked on every run of the page
def sees_everything(height: int, width: int, ph: int, pw: int, kernel: int = 3) -> bool:
    """Whether every output pixel of the block depends on every input pixel (checked row by row and column by
    column: the dependency is separable)."""
    return (all(_axis_reach(height, ph, i, kernel).all() for i in range(height))
            and all(_axis_reach(width, pw, j, kernel).all() for j in range(width)))


def conv_only_mask(height: int, width: int, pixel: tuple[int, int], kernel: int = 3) -> np.ndarray:
    """(H, W) bool: what output pixel (r, c) would depend on through the block's two n×n convs alone (local and
    fusion, no attention): a (2n - 1) × (2n - 1) window, 5 × 5 for n = 3."""
    r, c = pixel
    reach = 2 * (kernel // 2)
    mask = np.zeros((height, width), dtype=bool)
    mask[max(0, r - reach):r + reach + 1, max(0, c - reach):c + reach + 1] = True
    return mask


def dependency_picture(photo: Image.Image, mask: np.ndarray, pixel: tuple[int, int], width: int = 480,
                       max_height: int = 480) -> Image.Image:
    """The block-input map over the image: pixels the output pixel depends on as they are, the others darkened
    and hatched red; the output pixel framed."""
    h, w = mask.shape
    cell = cell_size(h, w, width, max_height)
    base = backdrop(photo, h, w, cell)
    hatched = Image.eval(base, lambda v: v // 4)
    stripes = np.zeros((6, 6), dtype=bool)
    stripes[(np.arange(6)[:, None] + np.arange(6)[None]) % 6 < 2] = True
    hatch = np.tile(stripes, (h * cell // 6 + 1, w * cell // 6 + 1))[:h * cell, :w * cell]
    hatched.paste((200, 30, 30), mask=Image.fromarray(hatch.astype(np.uint8) * 255))
    keep = Image.fromarray(mask.astype(np.uint8) * 255).resize(base.size, Image.NEAREST)
    picture = Image.composite(base, hatched, keep)
    _frame(ImageDraw.Draw(picture), *pixel, cell, width=max(2, min(4, cell // 4)))
    return picture


@dataclass(frozen=True)
class AttentionCost:
    """Multiply-adds of the attention products (QKᵀ and A·V) of one transformer layer, for one image."""

    mobilevit: int  # P sequences of N tokens: 2·P·N²·d
    vit_pixels: int  # one sequence of all H'W' pixels as tokens: 2·(H'W')²·d
    vit_patches: int  # one sequence of the N patches as tokens (ViT's patch-level attention): 2·N²·d


def attention_cost(u: Unfolding, d: int) -> AttentionCost:
    """MobileViT's O(N²Pd) against attention over every pixel and ViT's O(N²d) over patch tokens."""
    h, w = u.resized
    return AttentionCost(2 * u.p * u.n**2 * d, 2 * (h * w) ** 2 * d, 2 * u.n**2 * d)


# ---- One traced forward pass, reduced to what the page shows --------------------------------------------------

MOBILEVIT_STAGES = (2, 3, 4)  # the stages that end in a MobileViT block
BLOCK_TAPS = ("input", "local", "unfolded", "global_", "folded", "projected", "fused")
SHOWN_TAPS = ("local", "unfolded", "projected", "fused")  # the block taps the page draws (all are checked)
TRUNK_TAPS = ("stem_out", "stages.0.out", "stages.1.out")


@dataclass(frozen=True, eq=False)
class BlockView:
    """One MobileViT block of one traced forward pass (batch 0), as numpy, and the page's live checks."""

    stage: int
    unfolding: Unfolding
    taps: dict[str, np.ndarray]  # traced: local (d,H,W), unfolded (P,N,d), projected (C,H,W), fused (C,H,W)
    conv3: np.ndarray  # (C, H, W): local_conv (3×3 conv, BN, SiLU) of the traced input, recomputed
    resized: np.ndarray  # (d, H', W'): the map unfolded (the traced `local`, resized when needed)
    q: tuple[np.ndarray, ...]  # per transformer layer (P, heads, N, d/heads), traced
    k: tuple[np.ndarray, ...]
    scale: float  # (d/heads)^-0.5
    checks: dict[str, float]  # max |difference| of each recomputation against the traced tensor

    @property
    def depth(self) -> int:
        return len(self.q)

    @property
    def heads(self) -> int:
        return self.q[0].shape[1]

    @property
    def dim(self) -> int:
        return self.taps["local"].shape[0]

    @property
    def channels(self) -> int:
        return self.taps["fused"].shape[0]

    def attention_rows(self, layer: int, p: int, n: int) -> np.ndarray:
        """(heads, N): softmax(q kᵀ · scale) of query patch n in the sequence of offset p, layer `layer`
        (0-based), computed from the traced q and k exactly as the model's attention computes its probabilities."""
        q = torch.from_numpy(self.q[layer][p, :, n:n + 1])  # (heads, 1, dh)
        k = torch.from_numpy(self.k[layer][p])  # (heads, N, dh)
        scores = (q @ k.transpose(-2, -1)).mul_(self.scale)
        return torch.softmax(scores, dim=-1)[:, 0].numpy()


@dataclass(frozen=True, eq=False)
class MobileViTRun:
    """What the MobileViT page shows of one forward pass at one patch size."""

    blocks: dict[int, BlockView]  # by stage index 2, 3, 4
    shapes: dict[str, tuple[int, ...]]  # traced shape (batch included) of every trunk tap and block tap
    logits: np.ndarray | None  # (classes,) when the model has a classifier


@dataclass(frozen=True, eq=False)
class Trunk:
    """The part of a MobileViT forward pass that no patch size changes: stem, stages 0–1 (MobileNetV2) and stage 2's
    strided MobileNetV2 block. About half of the forward pass's time on a CPU; computed once per input."""

    features: torch.Tensor  # (1, C, H/8, W/8): what enters the first MobileViT block (`stages.2.block.input`)
    shapes: dict[str, tuple[int, ...]]  # shapes of the trunk taps


class _AfterTrunk(nn.Module):
    """MobileViT from the first MobileViT block on: the same module objects under the same names, so `vitviz.trace`
    records the same taps (`stages.{2,3,4}.block.*`) as on the whole model. tests/test_viz_mobilevit.py checks
    that every tap and the logits equal those of the whole model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.stages, self.expand, self.head = model.stages, model.expand, model.head

    def forward(self, x: torch.Tensor, output_attentions: bool = False, patch_size: tuple[int, int] = (2, 2)):
        """`stages.2.block.input` (b, C, H, W) -> logits (b, classes) or None, as `MobileViT.forward` ends."""
        x, _attn = self.stages[2].block(x, patch_size, output_attentions)
        for stage in self.stages[3:]:
            x, _attn = stage(x, patch_size, output_attentions)
        x = self.expand(x)
        return self.head(reduce(x, "b c h w -> b c", "mean")) if self.head is not None else None


def trunk(model: nn.Module, pixel_values: torch.Tensor) -> Trunk:
    """Run the patch-independent trunk of a vitviz MobileViT once: pixel_values (1, 3, H, W) -> Trunk."""
    shapes = {}
    with torch.inference_mode():
        x = model.stem_out(model.stem(pixel_values))
        shapes["stem_out"] = tuple(x.shape)
        for i in (0, 1):
            x = model.stages[i](x)
            shapes[f"stages.{i}.out"] = tuple(x.shape)
        x = model.stages[2].downsample(x)
    return Trunk(x, shapes)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a.float() - b.float()).abs().max())


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.float().cpu().numpy()


def run_blocks(model: nn.Module, trunk_out: Trunk, patch: tuple[int, int]) -> MobileViTRun:
    """Trace the three MobileViT blocks (and the classifier) of a vitviz MobileViT at patch size (ph, pw), from the
    trunk's output, and keep for each block its shown taps, q and k of every layer, and the live checks: local_rep,
    unfold, fold and fusion recomputed with the block's own modules and the module functions `unfold` / `fold` on
    the traced tensors.

    Attention probabilities are not recorded (at 4,096 patches one layer's would be 268 MB):
    `BlockView.attention_rows` recomputes the rows it needs from q and k.
    """
    from ..models.mobilevit import fold, unfold
    from ..trace import trace

    ph, pw = patch
    include = []
    for i in MOBILEVIT_STAGES:
        include += [f"stages.{i}.block.{name}" for name in BLOCK_TAPS]
        include += [f"stages.{i}.block.layers.*.attn.q", f"stages.{i}.block.layers.*.attn.k"]
    t = trace(_AfterTrunk(model), trunk_out.features, include=include, patch_size=(ph, pw))
    blocks = {}
    with torch.inference_mode():
        for i in MOBILEVIT_STAGES:
            block = model.stages[i].block
            tap = {name: t[f"stages.{i}.block.{name}"] for name in BLOCK_TAPS}
            x, local = tap["input"], tap["local"]
            size = tuple(local.shape[-2:])
            u = Unfolding(*size, ph, pw)
            conv3 = block.local_conv(x)
            resized = local
            if u.needs_resize:
                resized = F.interpolate(local, size=u.resized, mode="bilinear", align_corners=False)
            refolded = fold(tap["global_"], ph, pw, *u.resized)
            if u.needs_resize:
                refolded = F.interpolate(refolded, size=size, mode="bilinear", align_corners=False)
            checks = {
                "local_rep": _max_diff(block.local_proj(conv3), local),
                "unfold": _max_diff(unfold(resized, ph, pw), tap["unfolded"]),
                "fold_unfold": _max_diff(fold(unfold(resized, ph, pw), ph, pw, *u.resized), resized),
                "unfold_fold": _max_diff(unfold(fold(tap["unfolded"], ph, pw, *u.resized), ph, pw), tap["unfolded"]),
                "fold": _max_diff(refolded, tap["folded"]),
                "projection": _max_diff(block.proj(tap["folded"]), tap["projected"]),
                "fusion": _max_diff(block.fuse(torch.cat([x, tap["projected"]], 1)), tap["fused"]),
            }
            if u.needs_resize:  # the one lossy step: bilinear up to H'×W' and back is not the identity
                back = F.interpolate(resized, size=size, mode="bilinear", align_corners=False)
                checks["resize_round_trip"] = _max_diff(back, local)
            layers = range(len(block.layers))
            blocks[i] = BlockView(
                stage=i, unfolding=u,
                # (b·P, N, d) with b = 1 is already (P, N, d); the maps drop their batch axis
                taps={name: _numpy(tap[name] if name == "unfolded" else tap[name][0]) for name in SHOWN_TAPS},
                conv3=_numpy(conv3[0]), resized=_numpy(resized[0]),
                q=tuple(_numpy(t[f"stages.{i}.block.layers.{k}.attn.q"]) for k in layers),
                k=tuple(_numpy(t[f"stages.{i}.block.layers.{k}.attn.k"]) for k in layers),
                scale=block.layers[0].attn.scale, checks=checks)
    shapes = {**trunk_out.shapes, **{name: tuple(v.shape) for name, v in t.records.items()}}
    logits = t.output
    return MobileViTRun(blocks, shapes, None if logits is None else _numpy(logits[0]))
