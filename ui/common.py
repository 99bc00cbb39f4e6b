"""Small helpers the stage pages share: cache keys, keeping a bound widget's value in range, markdown tables, the
number formats the pages' text uses, and the two calls every picture and chart goes through (each with its text
alternative), and code blocks without Streamlit's syntax highlighter."""
from __future__ import annotations

import base64
import hashlib
import io
import threading

import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from streamlit import config as st_config
from streamlit import runtime

from vitviz.i18n import _
from vitviz.viz.code import CODE_CSS, code_html
from vitviz.viz.encode import image_format


def short_key(*parts) -> str:
    """A short stable key (16 hex digits) for a cache entry or a widget, from any printable parts."""
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


def clamp_state(key: str, low: int, high: int) -> None:
    """Keep a bound widget's stored value inside its current range (the model, grid or map may have changed)."""
    value = st.session_state.get(key)
    if isinstance(value, (int, float)) and not low <= value <= high:
        st.session_state[key] = min(max(int(value), low), high)


def forget_outside(key: str, low: int, high: int) -> None:
    """Forget a widget's stored value outside its current range, so that the widget starts from its default.

    For widgets with a default: a value set through Session State on such a widget makes Streamlit log a warning.
    """
    value = st.session_state.get(key)
    if isinstance(value, (int, float)) and not low <= value <= high:
        st.session_state.pop(key)


def markdown_table(header: list[str], rows: list[list[str]], right: tuple[int, ...] = ()) -> str:
    """A markdown table: real table markup a screen reader walks, large enough to read on a projector, and no data
    grid (st.dataframe makes each browser load 230 kB of scripts for it). Columns `right` align right (numbers)."""
    def cells(row):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |"
    rule = "|" + "".join("---:|" if i in right else "---|" for i in range(len(header)))
    return "\n".join([cells(header), rule] + [cells(row) for row in rows])


def prediction_table(predictions) -> str:
    """A classifier's top classes, (label, probability) pairs, as a markdown table with percentages."""
    return markdown_table([_("class"), _("probability")], [[label, f"{100 * p:.2f} %"] for label, p in predictions],
                          right=(1,))


def shape_text(shape) -> str:
    """A tensor shape as the pages write it: (1, 3, 224, 224)."""
    return "(" + ", ".join(str(s) for s in shape) + ")"


def picture(data: bytes, *, alt: str, where=st, **kwargs) -> None:
    """st.image of encoded bytes, sent as they are (Streamlit would re-encode a PIL image on every run), with its
    text alternative: what a sighted student reads off it, computed from the data it shows (`vitviz.describe`)."""
    where.image(data, alt=alt, output_format=image_format(data), **kwargs)


# Plotly's mode bar keeps only its PNG button: the figures set dragmode=False (a finger scrolling the page is not
# captured), and zoom, pan or select buttons would only switch dragging back on (Streamlit's own button shows a chart
# full screen). One button at the top right is the rule a title keeps clear of: titles start at the left, and
# tests/test_accessibility.py checks at 390 px that no chart's title runs under the bar.
CHART_CONFIG = {"displaylogo": False, "modeBarButtons": [["toImage"]]}


def chart(fig, *, alt: str, where=st, **kwargs):
    """st.plotly_chart with its text alternative (what a sighted student reads off it, computed from the data it
    draws: `vitviz.describe`), the shared mode bar (`CHART_CONFIG`, under the call's own `config`) and its pictures
    as cacheable files (`cacheable_pictures`); returns what st.plotly_chart returns (the selection event of a
    clickable chart)."""
    config = {**CHART_CONFIG, **kwargs.pop("config", {})}
    return where.plotly_chart(cacheable_pictures(fig), alt=alt, config=config, **kwargs)


def media_url(data: bytes, mimetype: str, name: str) -> str:
    """`data` served as one of this run's media files: its URL (under the server's base path), named by a hash of the
    bytes and type, so the same bytes keep the same URL and a browser that has them asks for nothing (ui/serving.py
    marks /media/ cacheable). `name` places the file among the run's elements. Needs Streamlit's runtime."""
    base = st_config.get_option("server.baseUrlPath").strip("/")
    url = runtime.get_instance().media_file_mgr.add(data, mimetype, name)
    return f"/{base}{url}" if base else url


def _is_data_uri(source) -> bool:
    return isinstance(source, str) and source.startswith("data:") and ";base64," in source[:40]


def _axis_range(layout: dict, ref: str) -> list | None:
    """The explicit [start, end] range of axis `ref` ("x", "y2", …) in a figure's layout dict, else None."""
    axis = layout.get(f"{ref[0]}axis{ref[1:]}") or {}
    rng = axis.get("range")
    return list(rng) if isinstance(rng, (list, tuple)) and len(rng) == 2 and None not in rng else None


def behind_axes(trace: dict, layout: dict) -> dict | None:
    """An image trace that only draws (a data URI, no hover) as the layout image that draws the same pixels behind the
    axes, or None where the two could differ: an axis without an explicit range (the trace takes part in autorange,
    a layout image does not) or a y axis not reversed (an image trace is drawn downwards from y0 only then)."""
    if trace.get("type") != "image" or not _is_data_uri(trace.get("source")) or trace.get("hoverinfo") != "skip":
        return None
    xref, yref = trace.get("xaxis", "x"), trace.get("yaxis", "y")
    xrange, yrange = _axis_range(layout, xref), _axis_range(layout, yref)
    if xrange is None or yrange is None or not yrange[0] > yrange[1] or trace.get("visible", True) is not True:
        return None
    width, height = Image.open(io.BytesIO(base64.b64decode(trace["source"].split(",", 1)[1]))).size
    dx, dy = trace.get("dx", 1), trace.get("dy", 1)
    return dict(source=trace["source"], xref=xref, yref=yref, x=trace.get("x0", 0) - dx / 2,
                y=trace.get("y0", 0) - dy / 2, sizex=width * dx, sizey=height * dy, sizing="stretch",
                layer="below", opacity=trace.get("opacity", 1))


def move_behind_axes(spec: dict) -> dict:
    """`spec` (a figure's dict) with each image trace that only draws moved behind its axes (`behind_axes`), its
    axes given what plotly gives an image trace's axes by default: square cells (the y axis anchored to the x axis)
    and the domain, not the range, constrained. Only an image no earlier trace draws under (an invisible colour-bar
    heatmap may): behind the axes it is below every trace. A new dict: what it changes is copied, the rest shared."""
    layout = dict(spec.get("layout") or {})
    kept, moved = [], []
    for trace in spec.get("data", ()):
        under = any(t.get("opacity", 1) != 0 and t.get("visible", True) is True for t in kept)
        image = None if under else behind_axes(trace, layout)
        (kept if image is None else moved).append(trace if image is None else image)
    for image in moved:
        xname, yname = f"xaxis{image['xref'][1:]}", f"yaxis{image['yref'][1:]}"
        xaxis, yaxis = dict(layout[xname]), dict(layout[yname])
        if "scaleanchor" not in xaxis:
            yaxis.setdefault("scaleanchor", image["xref"])
        xaxis.setdefault("constrain", "domain")
        yaxis.setdefault("constrain", "domain")
        layout[xname], layout[yname] = xaxis, yaxis
    if moved:
        layout["images"] = [*moved, *layout.get("images", ())]
    return {**spec, "data": kept, "layout": layout}


class SentFigure(go.Figure):
    """A shared figure that nobody changes, whose dict, as st.plotly_chart sends it, is made once. Plotly's `to_dict`
    deep-copies a figure and walks it for arrays to write in base64 on every call, and st.plotly_chart calls it on
    every run that draws the chart (~1 ms for a chart of a few thousand cells, on every run of a page with four);
    Streamlit 1.67 only serialises and reads that dict (tests/test_network.py checks that it is left as it was)."""

    def to_dict(self) -> dict:
        sent = self.__dict__.get("_sent")
        if sent is None:
            sent = self._sent = super().to_dict()
        return sent


def shared_figure(fig) -> SentFigure:
    """`fig` (a figure or a figure's dict) as a `SentFigure`, for a cache of figures (st.cache_resource) that every
    run and session draws again; not validated again."""
    if isinstance(fig, SentFigure):
        return fig
    return SentFigure(fig if isinstance(fig, dict) else fig.to_plotly_json(), _validate=False)


SENT_FIGURES = 32  # figure objects with pictures whose sent form is kept (by identity): converted once


class _SentFigures:
    """The sent form of recent figure objects, with the data URIs it serves as files: a figure shared through
    st.cache_resource is never changed, so a rerun that draws it again reuses its conversion (a deep copy of the
    figure and a new Figure: ~5 ms for a big one) and only registers its files for the run again."""

    def __init__(self, size: int):
        self.size, self.entries, self.lock = size, {}, threading.Lock()

    def get(self, fig):
        with self.lock:
            entry = self.entries.get(id(fig))
        return entry[1:] if entry is not None and entry[0] is fig else None

    def put(self, fig, sent, uris: tuple[str, ...]) -> None:
        with self.lock:
            self.entries.pop(id(fig), None)
            self.entries[id(fig)] = (fig, sent, uris)  # holding `fig` keeps its id from being reused
            while len(self.entries) > self.size:
                self.entries.pop(next(iter(self.entries)))


_SENT = _SentFigures(SENT_FIGURES)


def cacheable_pictures(fig):
    """The figure as sent: each picture given as a `data:` URI (a photo or map behind the axes, a map's cells) is
    served instead from Streamlit's media endpoint, named by its content, so the browser keeps it (ui/serving.py
    marks /media/ cacheable) and a revisit, or a move that leaves the picture as it was, downloads nothing for it;
    inside the websocket answer it was base64 that no cache could keep. An image *trace* that only draws (no hover)
    becomes the layout image that draws the same pixels (`behind_axes`): plotly.js sizes an image trace from its
    source as it draws, so a trace whose source is a URL still loading would draw nothing. `fig` is never changed
    (figures are shared through st.cache_resource): what changes is copied, the rest shared; a figure object drawn
    again is converted once (`_SENT`). Without Streamlit's runtime (bare mode), `fig`."""
    if not runtime.exists():
        return fig

    def url(uri: str) -> str:
        head, data = uri.split(",", 1)
        # the coordinates name the picture by its content: one file however often a run draws it
        return media_url(base64.b64decode(data), head[5:].split(";")[0], f"vitviz.figure.{short_key(uri)}")

    is_object = not isinstance(fig, dict)
    known = _SENT.get(fig) if is_object else None
    if known is not None:
        sent, uris = known
        for uri in uris:  # the run's files: a file no run names is dropped
            url(uri)
        return sent
    if is_object:  # read through the object first: a deep copy (to_plotly_json) only where there is a picture
        pictures = [image.source for image in fig.layout.images] + [getattr(t, "source", None) for t in fig.data]
    else:
        pictures = ([image.get("source") for image in (fig.get("layout") or {}).get("images", ())]
                    + [trace.get("source") for trace in fig.get("data", ())])
    uris = tuple(source for source in pictures if _is_data_uri(source))
    if not uris:
        return fig
    sent = move_behind_axes(fig.to_plotly_json() if is_object else fig)
    sent["layout"]["images"] = [{**image, "source": url(image["source"])} if _is_data_uri(image.get("source"))
                                else image for image in sent["layout"].get("images", ())]
    if not is_object:  # a dict given as such: Streamlit checks it
        return sent
    sent = SentFigure(sent, _validate=False)  # built from a valid figure's own dict: nothing to check again
    _SENT.put(fig, sent, uris)
    return sent


def code_block(text: str, *, python: bool = False, where=st) -> None:
    """Preformatted code or text, highlighted by `vitviz.viz.code` when `python`: st.code would make the browser load
    Streamlit's 1.5 MB syntax highlighter. The text stays selectable (copy by selecting); a block too wide or long
    for its box scrolls, focusable by keyboard and named for a screen reader; it wraps on a phone."""
    # a blank line between them: the <style> and the <pre> are two raw-HTML blocks for the markdown parser
    block = code_html(text, python, _("Code (scrolls)"))
    where.markdown(f"<style>{CODE_CSS}</style>\n\n{block}", unsafe_allow_html=True)
