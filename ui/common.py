"""Small helpers the stage pages share: cache keys, keeping a bound widget's value in range, markdown tables, the
number formats the pages' text uses, and the two calls every picture and chart goes through (each with its text
alternative), and code blocks without Streamlit's syntax highlighter."""
from __future__ import annotations

import base64
import copy
import hashlib

import plotly.graph_objects as go
import streamlit as st
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


def _is_data_uri(source) -> bool:
    return isinstance(source, str) and source.startswith("data:") and ";base64," in source[:40]


def cacheable_pictures(fig):
    """The figure as sent: each layout image given as a `data:` URI (a photo or map behind the axes) is served
    instead from Streamlit's media endpoint, named by its content, so the browser keeps it (ui/serving.py marks
    /media/ cacheable) and a revisit, or a move that leaves the picture as it was, downloads nothing for it; inside
    the websocket answer it was base64 that no cache could keep. Image *traces* keep their data URIs: plotly.js
    sizes such a trace from its source as it draws, and a source still loading draws nothing. A copy is changed,
    never `fig` (figures are shared through st.cache_resource); without Streamlit's runtime (bare mode), `fig`."""
    spec = fig if isinstance(fig, dict) else None  # a figure given as its dict: copied below like an object's
    images = (spec.get("layout") or {}).get("images", ()) if spec is not None else fig.layout.images
    pictures = [image.get("source") if spec is not None else image.source for image in images]
    if not runtime.exists() or not any(_is_data_uri(source) for source in pictures):
        return fig
    media = runtime.get_instance().media_file_mgr
    base = st_config.get_option("server.baseUrlPath").strip("/")

    def url(uri: str) -> str:
        head, data = uri.split(",", 1)
        # the coordinates name the picture by its content: one file however often a run draws it
        file_url = media.add(base64.b64decode(data), head[5:].split(";")[0], f"vitviz.figure.{short_key(uri)}")
        return f"/{base}{file_url}" if base else file_url

    sent = fig.to_dict() if spec is None else copy.deepcopy(spec)
    for image in (sent.get("layout") or {}).get("images", ()):
        if _is_data_uri(image.get("source")):
            image["source"] = url(image["source"])
    # built from a valid figure's own dict: nothing to check again (a dict given as such: Streamlit checks it)
    return sent if spec is not None else go.Figure(sent, _validate=False)


def code_block(text: str, *, python: bool = False, where=st) -> None:
    """Preformatted code or text, highlighted by `vitviz.viz.code` when `python`: st.code would make the browser load
    Streamlit's 1.5 MB syntax highlighter. The text stays selectable (copy by selecting); a block too wide or long
    for its box scrolls, focusable by keyboard and named for a screen reader; it wraps on a phone."""
    # a blank line between them: the <style> and the <pre> are two raw-HTML blocks for the markdown parser
    block = code_html(text, python, _("Code (scrolls)"))
    where.markdown(f"<style>{CODE_CSS}</style>\n\n{block}", unsafe_allow_html=True)
