"""The session's language: the sidebar's English / 中文 switch, kept in the URL as `lang`, defaulting to the
browser's language. Each session has its own (vitviz.i18n keeps it per run, never process-wide).

The switch is not a bound widget: a bound widget writes its *formatted* option into the URL (`lang=中文`), and the
URL must say `lang=zh` whatever the language of the page. So the URL is written here, after the switch."""
from __future__ import annotations

import streamlit as st

from vitviz import i18n
from vitviz.i18n import LANGUAGES

KEY = "lang"


def browser_language() -> str:
    """The language of the student's browser (`navigator.language`): Chinese for any zh-*, else English."""
    locale = (st.context.locale or "").lower()
    return "zh" if locale.startswith("zh") else i18n.DEFAULT


def session_language() -> str:
    """The language this session chose, else the one in the URL, else the browser's."""
    value = st.session_state.get(KEY) or st.query_params.get(KEY) or browser_language()
    return value if value in LANGUAGES else i18n.DEFAULT


def apply() -> str:
    """Set the session's language for this run (app.py, before any text; every fragment, which runs alone)."""
    lang = session_language()
    i18n.set_language(lang)
    return lang


def switch() -> None:
    """The language switch in the sidebar, and `lang` in the URL (absent at the browser's own language, as a bound
    widget drops its default). Its values are the codes: a link means the same page and settings in either
    language; only the labels on the page change."""
    if KEY not in st.session_state:  # a new session: the URL's language, else the browser's
        st.session_state[KEY] = session_language()
    lang = st.sidebar.segmented_control("Language · 语言", list(LANGUAGES), format_func=LANGUAGES.get, key=KEY,
                                        required=True, label_visibility="collapsed")
    if lang == browser_language():
        st.query_params.pop(KEY, None)
    else:
        st.query_params[KEY] = lang
