"""Small helpers the stage pages share: cache keys, keeping a bound widget's value in range, markdown tables and
the number formats the pages' text uses."""
from __future__ import annotations

import hashlib

import streamlit as st


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


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table (cheaper to send than a dataframe, and large enough to read on a projector)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def shape_text(shape) -> str:
    """A tensor shape as the pages write it: (1, 3, 224, 224)."""
    return "(" + ", ".join(str(s) for s in shape) + ")"
