"""Pictures and figures of the token-norm and feature-colour views (see `vitviz.norms`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from ..i18n import _
from ..norms import LayerNorms, NormTrace, Split
from .attention import Backdrop, backdrop, overlay

# A high-norm patch is framed in alternating black and white dashes: one of the two contrasts with any colour of the
# map below it, and the dashes, not a hue, say "high norm" (readable without colour vision, WCAG 1.4.1 and 1.4.11).
FRAME = ((0, 0, 0), (255, 255, 255))
FONT = dict(size=14)
# Chart colours (Okabe & Ito's palette, darkened where a colour writes text): each ≥ 4.5:1 on white and told apart by
# a line style or a marker too, so that no reading depends on telling two hues apart.
BARS = "#0072B2"  # the patch norms, the median
VALLEY = "#B33C00"  # the valley threshold, the largest patch norm, the high-norm count
REGISTER = "#6A3D9A"  # the registers' norms


def dashed_frame(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], width: int, dash: int) -> None:
    """A rectangle outline `width` px thick inside `box` (x0, y0, x1, y1 inclusive), in `dash`-px segments
    alternating black and white."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=FRAME[0], width=width)
    for start in range(x0 + dash, x1 + 1, 2 * dash):  # the white dashes of the top and bottom edges
        end = min(start + dash - 1, x1)
        draw.rectangle([start, y0, end, y0 + width - 1], fill=FRAME[1])
        draw.rectangle([start, y1 - width + 1, end, y1], fill=FRAME[1])
    for start in range(y0 + dash, y1 + 1, 2 * dash):  # and of the left and right edges
        end = min(start + dash - 1, y1)
        draw.rectangle([x0, start, x0 + width - 1, end], fill=FRAME[1])
        draw.rectangle([x1 - width + 1, start, x1, end], fill=FRAME[1])


def norm_overlay(base: Backdrop, values: np.ndarray, outliers: np.ndarray, vmax: float | None = None) -> Image.Image:
    """Token norms (gh, gw) over the backdrop, each outlier patch (bool (gh, gw)) framed in black-and-white dashes."""
    picture = overlay(base, values, vmax=vmax, cmap="magma")
    draw = ImageDraw.Draw(picture)
    size = base.patch_px
    width, dash = max(3, round(size / 8)), max(3, round(size / 5))
    for r, c in zip(*np.nonzero(outliers)):
        x0, y0 = round(c * size), round(r * size)
        dashed_frame(draw, (x0, y0, round((c + 1) * size) - 1, round((r + 1) * size) - 1), width, dash)
    return picture


def norm_picture(image: Image.Image, patch: int, width: int, layer: LayerNorms) -> Image.Image:
    """One layer's patch norms over the image at `width` px, its high-norm patches outlined."""
    return norm_overlay(backdrop(image, patch, width), layer.grid_values, layer.grid_outliers)


def cls_picture(image: Image.Image, patch: int, width: int, tr: NormTrace) -> Image.Image:
    """The last layer's CLS attention to the patches (mean over the heads) over the image at `width` px."""
    return overlay(backdrop(image, patch, width), tr.cls_map)


def neighbour_picture(image: Image.Image, patch: int, width: int, tr: NormTrace) -> Image.Image:
    """Each patch embedding's similarity to its 4 neighbours over the image at `width` px (1 = alike, bright)."""
    return overlay(backdrop(image, patch, width), tr.neighbour_map, vmax=1.0, cmap="viridis")


def histogram_figure(split: Split, registers: np.ndarray, *, title: str, height: int = 380) -> go.Figure:
    """The histogram of the patch norms, the valley threshold (if any) and the registers' norms as dashed lines."""
    centres = (split.edges[:-1] + split.edges[1:]) / 2
    width = float(split.edges[1] - split.edges[0])
    data = [dict(type="bar", x=centres, y=split.counts, width=width, marker=dict(color=BARS), name=_("patches"),
                 hovertemplate=(_("norm {norm}").format(norm="%{x:.1f}") + "<br>"
                                + _("{count} patches").format(count="%{y}") + "<extra></extra>"))]
    shapes, annotations = [], []
    if split.threshold is not None:
        shapes.append(dict(type="line", x0=split.threshold, x1=split.threshold, y0=0, y1=1, yref="paper",
                           line=dict(color=VALLEY, width=3)))
        annotations.append(dict(x=split.threshold, y=1, yref="paper", text=_("valley {value:.1f}").format(value=split.threshold),
                                showarrow=False, xanchor="left", yanchor="top", font=dict(color=VALLEY, size=14)))
    span = float(max(split.edges[-1], *registers) - min(split.edges[0], *registers)) if len(registers) else 1.0
    groups: list[tuple[float, list[int]]] = []  # registers within 2 % of the axis share one line and one label
    for i, value in sorted(enumerate(registers, start=1), key=lambda item: item[1]):
        if groups and value - groups[-1][0] < 0.02 * span:
            groups[-1][1].append(i)
        else:
            groups.append((float(value), [i]))
    for k, (value, members) in enumerate(groups):
        label = _("reg {r}").format(r=", ".join(map(str, sorted(members))))
        shapes.append(dict(type="line", x0=value, x1=value, y0=0, y1=0.85, yref="paper",
                           line=dict(color=REGISTER, width=2, dash="dash")))
        annotations.append(dict(x=value, y=0.85 - 0.09 * (k % 4), yref="paper", text=label, showarrow=False,
                                xanchor="left", font=dict(color=REGISTER, size=13)))
    layout = dict(height=height, margin=dict(l=60, r=20, t=40, b=50), title=dict(text=title, font=FONT), font=FONT,
                  xaxis=dict(title=dict(text=_("L2 norm of the token"))), yaxis=dict(title=dict(text=_("patches"))),
                  shapes=shapes, annotations=annotations, showlegend=False, bargap=0, dragmode=False)
    return go.Figure(data=data, layout=layout, _validate=False)  # validated in tests/test_norms.py


def depth_figure(norms: np.ndarray, prefix: int, outliers: Sequence[int], layer: int, height: int = 380) -> go.Figure:
    """Per layer (x, 1-based): the median and the largest patch norm, the largest register norm, and how many
    patches are above that layer's valley (`outliers`, one count per layer, on the right axis)."""
    layers = np.arange(1, norms.shape[0] + 1)
    patches = norms[:, prefix:]
    data = [dict(type="scatter", x=layers, y=np.median(patches, 1), name=_("median patch"), mode="lines+markers",
                 line=dict(color=BARS), marker=dict(symbol="circle", size=7)),
            dict(type="scatter", x=layers, y=patches.max(1), name=_("largest patch"), mode="lines+markers",
                 line=dict(color=VALLEY), marker=dict(symbol="diamond", size=8))]
    if prefix > 1:
        data.append(dict(type="scatter", x=layers, y=norms[:, 1:prefix].max(1), name=_("largest register"),
                         mode="lines+markers", line=dict(color=REGISTER, dash="dash"),
                         marker=dict(symbol="square", size=7)))
    data.append(dict(type="bar", x=layers, y=list(outliers), name=_("high-norm patches"), yaxis="y2",
                     marker=dict(color="rgba(179, 60, 0, 0.25)", line=dict(color=VALLEY, width=1.5)),
                     hovertemplate=_("layer {layer}: {count} high-norm patches").format(layer="%{x}", count="%{y}")
                     + "<extra></extra>"))
    layout = dict(height=height, margin=dict(l=60, r=60, t=40, b=50), font=FONT,
                  title=dict(text=_("Token norms through the depth"), font=FONT),
                  xaxis=dict(title=dict(text=_("layer")), dtick=1 if len(layers) <= 24 else 2),
                  yaxis=dict(title=dict(text=_("L2 norm"))),
                  yaxis2=dict(title=dict(text=_("high-norm patches")), overlaying="y", side="right",
                              range=[0, max(4, max(outliers, default=0)) * 1.1], tickformat="d", showgrid=False),
                  # well below the axis title: on a phone the legend takes four rows and Plotly's automatic margin
                  # shrinks the plot to hold them, which would bring a closer legend up onto the title
                  legend=dict(orientation="h", yanchor="top", y=-0.4), dragmode=False,
                  shapes=[dict(type="line", x0=layer, x1=layer, y0=0, y1=1, yref="paper",
                               line=dict(color="#666", width=1.5, dash="dot"))])
    return go.Figure(data=data, layout=layout, _validate=False)  # validated in tests/test_norms.py


def colour_figure(rgb: np.ndarray, components: np.ndarray, foreground: np.ndarray, *, title: str,
                  height: int = 420) -> go.Figure:
    """The PCA colours (gh, gw, 3) in [0, 1], one square per patch; hover gives the patch and its three components."""
    gh, gw, _channels = rgb.shape
    background = _("background")
    text = np.array([f"PC1 {a:+.3g} · PC2 {b:+.3g} · PC3 {c:+.3g}" if fg else background
                     for (a, b, c), fg in zip(components, foreground)], dtype=object).reshape(gh, gw)
    image = dict(type="image", z=np.round(rgb * 255).astype(np.uint8), text=text,
                 hovertemplate=_("patch ({r}, {c})").format(r="%{y}", c="%{x}") + "<br>%{text}<extra></extra>")
    layout = dict(height=height, margin=dict(l=10, r=10, t=40, b=10), title=dict(text=title, font=FONT), font=FONT,
                  xaxis=dict(visible=False, constrain="domain"),
                  yaxis=dict(visible=False, scaleanchor="x", constrain="domain"), dragmode=False)
    return go.Figure(data=[image], layout=layout, _validate=False)  # validated in tests/test_norms.py
