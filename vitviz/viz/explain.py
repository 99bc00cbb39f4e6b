"""Pictures and figures of the explanation page (see `vitviz.explain`): maps over the image, deletion and insertion
curves against the random band, the logit lens."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from ..explain import normalised
from ..i18n import _
from .attention import backdrop, colourise, overlay

CMAP = "inferno"  # one colour map for every explanation map
# Each method's curve: a colour (Okabe & Ito's palette, darkened to ≥ 4.5:1 on white), a line style and a marker, so
# the curves stay apart under any colour-vision deficiency and in grey.
STYLES = {"attention": ("#0072B2", "solid", "circle"), "rollout": ("#007A5A", "dash", "square"),
          "grad_rollout": ("#B33C00", "solid", "diamond"), "gradcam": ("#6A3D9A", "dashdot", "triangle-up")}
BAND = "rgba(120, 120, 120, 0.25)"
BAND_EDGE = "#8a8a8a"  # 3.4:1 on white: the band's extent is readable without its fill
FONT = dict(size=14)


def map_picture(image: Image.Image, values: np.ndarray, width: int, patch: int | None = None) -> Image.Image:
    """A map (gh, gw) over the image at `width` px, scaled to 0…1 as every map is (`normalised`), one colour per
    cell. With `patch` (a ViT) the cells are P×P patches and the strip the model never sees is dimmed; without it
    (Swin, MobileViT) the cells split the whole image evenly, as `vitviz.explain.cell_masks` does."""
    scaled = normalised(values)
    if patch is not None:
        return overlay(backdrop(image, patch, width), scaled, vmax=1.0, cmap=CMAP)
    photo = image.convert("RGB").resize((width, max(1, round(image.height * width / image.width))), Image.BICUBIC)
    colour = Image.fromarray(colourise(scaled, 1.0, CMAP)).resize(photo.size, Image.NEAREST)
    return Image.blend(photo, colour, 0.6)


def curves_figure(steps: Sequence[int], curves: dict[str, np.ndarray], names: dict[str, str], random: np.ndarray, *,
                  title: str | None, height: int = 480) -> go.Figure:
    """Probability of the class against k % for each method (curves: method -> (K,), named by `names`, which the
    page gives in the run's language), and the random rankings (S, K) as their mean and a band of ± 2 standard
    deviations."""
    x = list(steps)
    mean, std = random.mean(axis=0), random.std(axis=0, ddof=1)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x + x[::-1], y=list(np.clip(mean + 2 * std, 0, 1)) + list(np.clip(mean - 2 * std, 0, 1))[::-1],
                             fill="toself", fillcolor=BAND, line=dict(width=1, color=BAND_EDGE), hoverinfo="skip",
                             name=_("random ± 2σ ({n} orders)").format(n=len(random))))
    fig.add_trace(go.Scatter(x=x, y=mean, name=_("random (mean)"), line=dict(color="#666", dash="dot", width=2),
                             hovertemplate="k = %{x} %<br>p = %{y:.3f}<extra>" + _("random") + "</extra>"))
    for method, y in curves.items():
        colour, dash, symbol = STYLES[method]
        fig.add_trace(go.Scatter(x=x, y=y, name=names[method], mode="lines+markers",
                                 line=dict(color=colour, width=2.5, dash=dash), marker=dict(symbol=symbol, size=8),
                                 hovertemplate="k = %{x} %<br>p = %{y:.3f}<extra>" + names[method] + "</extra>"))
    # r=30: room for the "100 %" tick label at the right edge, which a phone-wide chart would clip
    fig.update_layout(title=title, height=height, margin=dict(l=60, r=30, t=20 if title is None else 40, b=10), font=FONT,
                      legend=dict(orientation="h", yanchor="top", y=-0.3, x=0), plot_bgcolor="white", dragmode=False)
    # "%" as a field: a bare "% o" would make the catalog take the message for a printf format
    # short enough for a 320 px screen; the heading above each chart says which patches go first
    fig.update_xaxes(title=_("k ({percent} of the patches)").format(percent="%"), ticksuffix=" %",
                     gridcolor="#eee", range=[-2, 102])
    fig.update_yaxes(title=_("probability of the class"), gridcolor="#eee", rangemode="tozero", tickformat=".2~%")
    return fig


def lens_figure(probs: np.ndarray, labels: Sequence[str], *, chosen: int, height: int = 360) -> go.Figure:
    """Probabilities (rows: classes named by `labels`, columns: layers 1…L) as a heatmap from 0 to their maximum;
    row `chosen` marked."""
    depth = probs.shape[1]
    names = [("▶ " if i == chosen else "") + label for i, label in enumerate(labels)]
    fig = go.Figure(go.Heatmap(z=probs, x=list(range(1, depth + 1)), y=names, colorscale="Blues", zmin=0,
                               zmax=max(float(probs.max()), 1e-6),
                               colorbar=dict(title="p"),
                               hovertemplate=_("layer %{x}") + "<br>%{y}<br>p = %{z:.3f}<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=50), font=FONT, dragmode=False,
                      title=dict(text=_("The final top classes, layer by layer"), font=FONT))  # fits 320 px
    fig.update_xaxes(title=_("layer"), dtick=1)
    fig.update_yaxes(autorange="reversed", automargin=True)
    return fig


def rank_figure(ranks: np.ndarray, label: str, *, height: int = 360) -> go.Figure:
    """The chosen class's rank (1 = top) after every layer: ranks (L,), on a reversed log axis."""
    layers = list(range(1, len(ranks) + 1))
    fig = go.Figure(go.Scatter(x=layers, y=ranks, mode="lines+markers", line=dict(color="#d62728", width=2.5),
                               hovertemplate=_("layer %{x}: rank %{y}") + "<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=60, r=10, t=40, b=50), font=FONT, plot_bgcolor="white",
                      dragmode=False, title=dict(text=_("Rank of “{label}” by depth").format(label=label), font=FONT))
    fig.update_xaxes(title=_("layer"), dtick=1 if len(ranks) <= 12 else 2, gridcolor="#eee")
    fig.update_yaxes(title=_("rank (1 = top)"), type="log", autorange="reversed", gridcolor="#eee")
    return fig
