"""Page chrome every stage page shares: title and introduction, the step tabs, the source-code panels, the
downloads of a panel's numbers, and the previous / next links."""
from __future__ import annotations

import functools
import hashlib
import inspect
import io
import textwrap
from collections.abc import Callable

import numpy as np
import streamlit as st

from vitviz.i18n import _

from .common import code_block
from .stages import neighbours
from .stages import stage as stage_of


def stage_header(key: str, intro: str) -> None:
    """Title and one-paragraph introduction of a stage page (keyed: the presenter view of a lesson step shows the
    step's title and text instead)."""
    with st.container(key="vv-intro"):
        st.title(_(stage_of(key).title).split("·", 1)[1].strip())
        st.markdown(intro)


def stage_footer(key: str) -> None:
    """← previous / next → links, keeping the shared settings in the URL."""
    before, after = neighbours(key)
    params = {k: v for k, v in st.query_params.to_dict().items()}
    st.divider()
    left, _gap, right = st.container(key="vv-footer").columns([2, 3, 2])
    with left:
        if before is not None:
            st.page_link(before.file, label=f"← {_(before.title)}", query_params=params)
        else:
            st.page_link("pages/overview.py", label=f"← {_('Overview')}", query_params=params)
    with right:
        if after is not None:
            st.page_link(after.file, label=f"{_(after.title)} →", query_params=params)


def lazy_tabs(page: str, steps: tuple[Callable[[], None], ...]) -> None:
    """One tab per step of the page (`STAGES`' labels, one function each that draws it), the open tab in the URL
    under the stage's tab key. Only the open tab's function runs (st.tabs with on_change): a run computes and draws
    one step, not all of them.

    The URL and `st.session_state[tab_key]` hold the tab's English label whatever the language, so a link opens
    the same tab in both; the st.tabs widget (its own key) shows the labels in the session's language. It is not
    bound to the URL itself because a bound st.tabs writes its label, which would change with the language."""
    stage = stage_of(page)
    assert len(steps) == len(stage.tabs), (page, stage.tabs)
    ids, labels = stage.tabs, [_(label) for label in stage.tabs]
    ss, qp, widget = st.session_state, st.query_params, f"vv-tabs-{stage.tab_key}"
    current = ss.get(stage.tab_key) or qp.get(stage.tab_key)
    if current not in ids:  # also a hostile or outdated link
        current = ids[0]
    ss[stage.tab_key] = current
    ss[widget] = labels[ids.index(current)]

    def opened() -> None:
        ss[stage.tab_key] = ids[labels.index(ss[widget])]

    if current == ids[0]:
        qp.pop(stage.tab_key, None)
    else:
        qp[stage.tab_key] = current
    tabs = st.tabs(labels, key=widget, on_change=opened)
    for tab, draw in zip(tabs, steps):
        if tab.open:
            with tab:
                draw()


@functools.cache  # the source of an imported function is fixed for the life of the process; reading it takes ~1 ms
def _source(fn) -> str:
    return textwrap.dedent(inspect.getsource(fn))  # a method's lines start at column 0, shorter on a phone


def show_source(*functions) -> None:
    """The real source of the functions a panel visualises, read from the imported modules' files (inspect), so it
    cannot drift."""
    # keyed, so that a lesson's presenter view can hide the code panels (`hide=code`)
    key = "vv-source-" + hashlib.sha1("|".join(f.__qualname__ for f in functions).encode()).hexdigest()[:10]
    with st.container(key=key), st.expander(_("The code that computed this"), icon=":material/code:"):
        for fn in functions:
            st.caption(f"`{fn.__module__}.{fn.__qualname__}`")
            code_block(_source(fn), python=True)


def download_array(label: str, array: np.ndarray, name: str) -> None:
    """CSV (2-D view) and NPY downloads of a panel's numbers, encoded only when clicked."""
    arr = np.asarray(array)

    def as_csv() -> str:
        flat = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr[:, None]
        out = io.StringIO()
        np.savetxt(out, flat, delimiter=",", fmt="%.6g")
        return out.getvalue()

    def as_npy() -> bytes:
        out = io.BytesIO()
        np.save(out, arr)
        return out.getvalue()

    a, b = st.columns(2)
    a.download_button(f"{label} · CSV", as_csv, f"{name}.csv", "text/csv", on_click="ignore", key=f"csv-{name}")
    b.download_button(f"{label} · NPY", as_npy, f"{name}.npy", "application/octet-stream", on_click="ignore", key=f"npy-{name}")
