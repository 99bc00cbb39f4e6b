"""Answers to a lesson's questions as the class records them (the same in every language: a choice as its
English option) and as a session shows them (in its own language), and the class's answers as a bar chart."""
from __future__ import annotations

import plotly.graph_objects as go

from vitviz.i18n import _

from .lessons import Question


def answers_figure(question: Question, counts: dict[str, int]) -> go.Figure:
    """The class's answers to the question as horizontal bars, the right answer in green, hatched and its count
    marked ✓ (not by colour alone). A choice is recorded as its English option and shown in the question's
    language, so a class may answer in both."""
    labels, values, right = _tally(question, counts)
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h",
                           marker=dict(color=["#1a9850" if r else "#8c8c8c" for r in right],  # 3.7:1, 3.4:1 on white
                                       pattern=dict(shape=["/" if r else "" for r in right], fgcolor="#ffffff")),
                           text=[f"✓ {v}" if r else str(v) for v, r in zip(values, right)], textposition="outside",
                           cliponaxis=False))
    fig.update_layout(height=80 + 34 * max(len(labels), 1), margin=dict(l=8, r=40, t=30, b=8), dragmode=False,
                      title=_("Answers so far: {count}").format(count=sum(counts.values())),
                      xaxis=dict(dtick=1, rangemode="tozero"), yaxis=dict(autorange="reversed"))
    return fig


def answers_alt(question: Question, counts: dict[str, int]) -> str:
    """What the class's chart shows, as a sentence: the total, then each answer's count, the right one named."""
    labels, values, right = _tally(question, counts)
    parts = [(_("{answer}: {count} (the right answer)") if r else _("{answer}: {count}")).format(answer=a, count=v)
             for a, v, r in zip(labels, values, right)]
    return _("Answers so far: {count}").format(count=sum(counts.values())) + " — " + "; ".join(parts) + "."


def _tally(question: Question, counts: dict[str, int]) -> tuple[list[str], list[int], list[bool]]:
    """The chart's rows: each answer as shown, its count, and whether it is right (a choice's options in order,
    other answers as recorded, shortest first)."""
    if question.kind == "choice":
        stored = list(question.option_keys or question.options)
        labels = list(question.options)
    else:
        stored = labels = sorted(counts, key=lambda a: (len(a), a))
    return labels, [counts.get(a, 0) for a in stored], [question.is_right(_parse(question, a)) for a in stored]


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
