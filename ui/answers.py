"""Answers to a lesson's questions as the class records them (the same in every language: a choice as its
English option) and as a session shows them (in its own language), and the class's answers as a bar chart."""
from __future__ import annotations

import plotly.graph_objects as go

from vitviz.i18n import _

from .lessons import Question


def answers_figure(question: Question, counts: dict[str, int]) -> go.Figure:
    """The class's answers to the question as horizontal bars, the right answer in green. A choice is recorded as
    its English option and shown in the question's language, so a class may answer in both."""
    if question.kind == "choice":
        stored = list(question.option_keys or question.options)
        labels = list(question.options)
    else:
        stored = labels = sorted(counts, key=lambda a: (len(a), a))
    right = [question.is_right(_parse(question, a)) for a in stored]
    values = [counts.get(a, 0) for a in stored]
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h",
                           marker_color=["#1a9850" if r else "#8c8c8c" for r in right],
                           text=values, textposition="auto"))
    fig.update_layout(height=80 + 34 * max(len(labels), 1), margin=dict(l=8, r=8, t=30, b=8),
                      title=_("Answers so far: {count}").format(count=sum(counts.values())),
                      xaxis=dict(dtick=1, rangemode="tozero"), yaxis=dict(autorange="reversed"))
    return fig


def answer_label(question: Question, stored: str) -> str:
    """An answer as the class recorded it, as this session shows it (a choice in the question's language)."""
    if question.kind == "choice":
        position = question.position(stored)
        return stored if position is None else question.options[position]
    return stored


def stored_answer(question: Question, given) -> str:
    """An answer as the class records it: the same in every language (a choice as its English option)."""
    if question.kind == "choice":
        position = question.position(given)
        keys = question.option_keys or question.options
        return keys[position] if position is not None else str(given)
    return answer_text(given)


def _parse(question: Question, text: str):
    """An answer as stored (a text) back to what `Question.is_right` takes."""
    if question.kind == "choice":
        return text
    try:
        if question.kind == "number":
            return float(text)
        row, col = text.split(",")
        return int(row), int(col)
    except ValueError:
        return None if question.kind == "number" else (-1, -1)


def shown_answer(question: Question, value) -> str:
    """An answer in a verdict: a choice as its option in quotes (in the session's language), else as `answer_text`."""
    if question.kind == "choice":
        position = question.position(value)
        return f"“{value if position is None else question.options[position]}”"
    return answer_text(value)


def answer_text(value) -> str:
    """A number, a patch (row, col) or the patches a patch question accepts, as words."""
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return _(" or ").join(_("row {row}, column {col}").format(row=r, col=c) for r, c in value)
    if isinstance(value, tuple):
        return f"{value[0]},{value[1]}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
