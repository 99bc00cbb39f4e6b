"""The joint picture of one head's queries and keys (`vitviz.attention_qk.QueryKeyMap`) as a Plotly scatter: queries
and keys told apart by marker shape, CLS and registers by a black fill and their names, the selected query ringed
in yellow and black with lines to its largest true weights. Arrays in, a figure out; no streamlit, no model."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..attention_qk import QueryKeyMap
from ..i18n import _
from .attention import MARK_OUTLINE, SELECT_HEX, _colorbar

QK_CMAP = "Viridis"  # readable under the common colour-vision deficiencies; the shapes carry the q/k distinction
QUERY, KEY = "circle", "diamond"


def _coords(points: np.ndarray) -> dict:
    # float32 arrays travel base64-encoded (4 bytes a number), not as decimal text
    return dict(x=points[:, 0].astype(np.float32), y=points[:, 1].astype(np.float32))


def _patch_trace(view: QueryKeyMap, points: np.ndarray, values: np.ndarray, *, symbol: str, name: str,
                 colour_name: str, low: float, high: float, showscale: bool) -> dict:
    """Every patch's query or key: coloured by `values` (T,), hover naming the patch and the value."""
    pre, gw = view.layout.prefix, view.layout.grid[1]
    tokens = np.arange(pre, view.tokens)
    rows, cols = np.divmod(tokens - pre, gw)
    return dict(
        type="scatter", mode="markers", name=name, **_coords(points[pre:]),
        customdata=np.stack([rows, cols], -1).astype(np.int16),
        marker=dict(symbol=symbol, size=9 if symbol == KEY else 8, color=values[pre:].astype(np.float32),
                    colorscale=QK_CMAP, cmin=low, cmax=high, line=dict(width=0.6, color=MARK_OUTLINE),
                    showscale=showscale,
                    colorbar=dict(_colorbar(colour_name), orientation="h", y=-0.16, yanchor="top", len=0.9,
                                  title=dict(text=colour_name, side="top"))),
        hovertemplate=(name + " · " + _("patch ({r}, {c})").format(r="%{customdata[1]}", c="%{customdata[2]}")
                       + "<br>" + colour_name + " %{marker.color:.3g}<extra></extra>"))


def _prefix_trace(view: QueryKeyMap, points: np.ndarray, *, symbol: str, name: str, named: bool) -> dict:
    """CLS and the registers: black; `named` writes their names beside them (on the keys only: ten names where the
    queries and keys of CLS and registers crowd together could not be read)."""
    pre = view.layout.prefix
    labels = view.layout.prefix_labels()
    return dict(type="scatter", mode="markers+text" if named else "markers", name=name, showlegend=False,
                **_coords(points[:pre]), text=labels,
                textposition="top center", textfont=dict(size=12, color="#111"), customdata=np.arange(pre),
                marker=dict(symbol=symbol, size=12, color="#111", line=dict(width=1.5, color="white")),
                hovertemplate=name + " · %{text}<extra></extra>")


def qk_figure(view: QueryKeyMap, values: np.ndarray, *, colour_name: str, title: str, height: int = 640) -> go.Figure:
    """The scatter of `view`'s queries then keys, coloured by values (2T,) (patches only; CLS and registers black)."""
    t, pre = view.tokens, view.layout.prefix
    patch_values = np.concatenate([values[pre:t], values[t + pre:]])
    low, high = float(np.nanmin(patch_values)), float(np.nanmax(patch_values))
    query_point = view.queries[view.query]
    data = [
        _patch_trace(view, view.keys, values[t:], symbol=KEY, name=_("key"), colour_name=colour_name, low=low,
                     high=high, showscale=False),
        _patch_trace(view, view.queries, values[:t], symbol=QUERY, name=_("query"), colour_name=colour_name,
                     low=low, high=high, showscale=True),
        _prefix_trace(view, view.keys, symbol=KEY, name=_("key"), named=True),
        _prefix_trace(view, view.queries, symbol=QUERY, name=_("query"), named=False),
    ]
    for rank, (key, weight) in enumerate(zip(view.top, view.weights)):  # widths follow the true weights
        end = view.keys[key]
        data.append(dict(type="scatter", mode="lines+text", showlegend=rank == 0, name=_("its top weights"),
                         legendgroup="top", x=[float(query_point[0]), float(end[0])],
                         y=[float(query_point[1]), float(end[1])], text=["", str(rank + 1)], textposition="middle right",
                         textfont=dict(size=14, color="#111"), hoverinfo="skip",
                         line=dict(color="rgba(20,20,20,0.75)", width=0.8 + 2.6 * float(weight / view.weights[0]))))
    data += [dict(type="scatter", mode="markers", showlegend=False, hoverinfo="skip", x=[float(query_point[0])],
                  y=[float(query_point[1])], marker=dict(symbol="circle-open", size=size, color=colour,
                                                         line=dict(width=width, color=colour)))
             for size, colour, width in ((22, "black", 5), (22, SELECT_HEX, 2.5))]
    layout = dict(
        height=height, margin=dict(l=10, r=10, t=60, b=150), title=dict(text=title, font=dict(size=16)),
        font=dict(size=14), plot_bgcolor="white", dragmode=False, clickmode="event+select", hovermode="closest",
        xaxis=dict(title=dict(text=_("principal axis 1")), zeroline=False, gridcolor="#eee", showticklabels=False),
        # one unit is as long on both axes, so that distances in the picture are distances in the projection
        yaxis=dict(title=dict(text=_("principal axis 2")), zeroline=False, gridcolor="#eee", showticklabels=False,
                   scaleanchor="x"),
        legend=dict(font=dict(size=13), orientation="h", x=0, xanchor="left", yref="container", y=0,
                    yanchor="bottom"),
    )
    return go.Figure(data=data, layout=layout, _validate=False)  # validated in tests/test_attention_qk.py
