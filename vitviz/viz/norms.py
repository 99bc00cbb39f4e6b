"""Pictures and figures of the token-norm and feature-colour views (see `vitviz.norms`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from ..i18n import _
from ..norms import LayerNorms, NormTrace, Split
from .attention import Backdrop, backdrop, overlay

OUTLIER = (255, 40, 40)  # outline of a high-norm patch
FONT = dict(size=14)


def norm_overlay(base: Backdrop, values: np.ndarray, outliers: np.ndarray, vmax: float | None = None) -> Image.Image:
    """Token norms (gh, gw) over the backdrop, each outlier patch (bool (gh, gw)) outlined in red."""
    picture = overlay(base, values, vmax=vmax, cmap="magma")
    draw = ImageDraw.Draw(picture)
    size = base.patch_px
    width = max(2, round(size / 10))
    for r, c in zip(*np.nonzero(outliers)):
        x0, y0 = round(c * size), round(r * size)
        draw.rectangle([x0, y0, round((c + 1) * size) - 1, round((r + 1) * size) - 1], outline=OUTLIER, width=width)
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
    data = [dict(type="bar", x=centres, y=split.counts, width=width, marker=dict(color="#5470c6"), name=_("patches"),
                 hovertemplate=(_("norm {norm}").format(norm="%{x:.1f}") + "<br>"
                                + _("{count} patches").format(count="%{y}") + "<extra></extra>"))]
    shapes, annotations = [], []
    if split.threshold is not None:
        shapes.append(dict(type="line", x0=split.threshold, x1=split.threshold, y0=0, y1=1, yref="paper",
                           line=dict(color="#d62728", width=3)))
        annotations.append(dict(x=split.threshold, y=1, yref="paper", text=_("valley {value:.1f}").format(value=split.threshold),
                                showarrow=False, xanchor="left", yanchor="top", font=dict(color="#d62728", size=14)))
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
                           line=dict(color="#2ca02c", width=2, dash="dash")))
        annotations.append(dict(x=value, y=0.85 - 0.09 * (k % 4), yref="paper", text=label, showarrow=False,
                                xanchor="left", font=dict(color="#2ca02c", size=13)))
    layout = dict(height=height, margin=dict(l=60, r=20, t=40, b=50), title=dict(text=title, font=FONT), font=FONT,
                  xaxis=dict(title=_("L2 norm of the token")), yaxis=dict(title=_("patches")), shapes=shapes,
                  annotations=annotations, showlegend=False, bargap=0)
    return go.Figure(data=data, layout=layout, _validate=False)  # validated in tests/test_norms.py


def depth_figure(norms: np.ndarray, prefix: int, outliers: Sequence[int], layer: int, height: int = 380) -> go.Figure:
    """Per layer (x, 1-based): the median and the largest patch norm, the largest register norm, and how many
    patches are above that layer's valley (`outliers`, one count per layer, on the right axis)."""
    layers = np.arange(1, norms.shape[0] + 1)
    patches = norms[:, prefix:]
    data = [dict(type="scatter", x=layers, y=np.median(patches, 1), name=_("median patch"), mode="lines+markers",
                 line=dict(color="#5470c6")),
            dict(type="scatter", x=layers, y=patches.max(1), name=_("largest patch"), mode="lines+markers",
                 line=dict(color="#d62728"))]
    if prefix > 1:
        data.append(dict(type="scatter", x=layers, y=norms[:, 1:prefix].max(1), name=_("largest register"),
                         mode="lines+markers", line=dict(color="#2ca02c", dash="dash")))
    data.append(dict(type="bar", x=layers, y=list(outliers), name=_("high-norm patches"), yaxis="y2", opacity=0.35,
                     marker=dict(color="#d62728"),
                     hovertemplate=_("layer {layer}: {count} high-norm patches").format(layer="%{x}", count="%{y}")
                     + "<extra></extra>"))
    layout = dict(height=height, margin=dict(l=60, r=60, t=40, b=50), font=FONT,
                  title=dict(text=_("Token norms through the depth"), font=FONT),
                  xaxis=dict(title=_("layer"), dtick=1 if len(layers) <= 24 else 2),
                  yaxis=dict(title=_("L2 norm")), yaxis2=dict(title=_("high-norm patches"), overlaying="y", side="right",
                                                          range=[0, max(4, max(outliers, default=0)) * 1.1],
                                                          tickformat="d", showgrid=False),
                  legend=dict(orientation="h", y=-0.2),
                  shapes=[dict(type="line", x0=layer, x1=layer, y0=0, y1=1, yref="paper",
                               line=dict(color="#888", width=1, dash="dot"))])
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
                  yaxis=dict(visible=False, scaleanchor="x", constrain="domain"))
    return go.Figure(data=[image], layout=layout, _validate=False)  # validated in tests/test_norms.py
