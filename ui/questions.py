"""Predict, then reveal: a lesson step's question in the lesson bar, asked before the page's panel is shown; once
answered (or revealed by the teacher, or in the presenter view) the verdict and the explanation. The answers stay
with the session (Previous and Next keep them); a follower's answer is counted for the class."""
from __future__ import annotations

import numpy as np
import streamlit as st

from vitviz.describe.patching import describe_grid
from vitviz.i18n import _, language
from vitviz.viz.patches import grid_figure

from . import class_session
from .answers import shown_answer, stored_answer
from .common import chart
from .context import context
from .lesson_routing import View, page_file
from .lessons import Lesson, Question
from .models import vit_input
from .patches import cached_figure, model_patches, patch_from_event

_ANSWERS = "answers"  # session-state key: {"<lesson id>:<step>": the answer given, or "revealed"}


def question(view: View, box) -> bool:
    """The step's question in the bar (after the sidebar: a patch question draws the sidebar's input). Returns
    whether the page's panel may be shown: False until the question is answered."""
    lesson, step = view.lesson, view.current
    if lesson is None:
        return True
    with box:
        answered = _question(lesson, view.step, step.question, view) if step.question else True
    if step.page != view.page:
        st.page_link(page_file(step.page), label=_("Back to this step's page"), icon=":material/undo:",
                     query_params={"lesson": lesson.id, "step": str(view.step)})
    return answered


def _question(lesson: Lesson, n: int, question: Question, view: View) -> bool:
    """The step's question; once answered (or revealed by the teacher) the verdict and the explanation. Returns
    whether the panel may be shown."""
    answers = st.session_state.setdefault(_ANSWERS, {})
    key = f"{lesson.id}:{n}"
    st.markdown(_("**Predict first:** {prompt}").format(prompt=question.prompt))
    if key not in answers:
        given = _ask(question, key)
        if given is not None:
            answers[key] = given
            if (why := class_session.answer(n, stored_answer(question, given))) is not None:
                st.warning(_("Your answer could not be counted for the class: {why}").format(why=why),
                           icon=":material/cloud_off:")
        elif class_session.teacher() is not None or view.present:
            if st.button(_("Reveal the answer"), key=f"reveal-{key}", icon=":material/visibility:"):
                answers[key] = "revealed"
                st.rerun()
            return False
        else:
            st.caption(_("The panel that answers it appears once you have answered."))
            return False
    given = answers[key]
    if given == "revealed":
        st.info(_("**Answer:** {answer}. {explanation}").format(answer=shown_answer(question, question.answer),
                                                                explanation=question.explanation),
                icon=":material/lightbulb:")
    elif question.is_right(given):
        st.success(_("**Right** — {given}. {explanation}").format(given=shown_answer(question, given),
                                                                 explanation=question.explanation),
                   icon=":material/check_circle:")
    else:
        st.error(_("**Not quite** — you answered {given}; the answer is {answer}. {explanation}").format(
            given=shown_answer(question, given), answer=shown_answer(question, question.answer),
            explanation=question.explanation), icon=":material/cancel:")
    return True


def _ask(question: Question, key: str):
    """The answer input of a question; returns the answer once given, else None."""
    if question.kind == "choice":  # the options in the session's language; the answer is kept as a position
        choice = st.radio(_("Your answer"), question.options, index=None, key=f"q-{key}",
                          label_visibility="collapsed")
        if st.button(_("Answer"), key=f"qa-{key}", disabled=choice is None):
            return question.position(choice)
        return None
    if question.kind == "number":
        field, button = st.columns([2, 1, 4], vertical_alignment="bottom")[:2]
        value = field.number_input(_("Your answer"), value=None, key=f"q-{key}", placeholder=_("a number"))
        if button.button(_("Answer"), key=f"qa-{key}", disabled=value is None, width="stretch"):
            return float(value)
        return None
    return _ask_patch(key)


def _ask_patch(key: str):
    """Click the patch on the image as the model sees it, on the step's patch grid, or type its row and column (the
    keyboard's and the screen reader's way): returns (row, col)."""
    vin = vit_input(context())
    grid = model_patches(vin).grid
    # shared read-only like the patch pages' grids: built (and validated) once per input, not on every run
    fig = cached_figure(f"question-grid:{language()}", vin.cache_key, -1, 420,  # its hover text is in words
                        lambda: grid_figure(np.asarray(vin.shown.convert("RGB")), grid.patch, None, 420))
    st.caption(_("Click the patch on the image, or type its row and column (both counted from 0) and press Answer."))
    event = chart(fig, alt=describe_grid(grid), key=f"q-{key}", on_select="rerun", selection_mode="points")
    index = patch_from_event(event, grid)
    if index is not None:
        return divmod(index, grid.cols)
    row_field, col_field, button = st.columns(3, vertical_alignment="bottom")  # from 0: ↑ / ↓ or + / − step them
    row = row_field.number_input(_("Row"), min_value=0, max_value=grid.rows - 1, value=0, step=1, key=f"qr-{key}")
    col = col_field.number_input(_("Column"), min_value=0, max_value=grid.cols - 1, value=0, step=1, key=f"qc-{key}")
    if button.button(_("Answer"), key=f"qa-{key}", width="stretch"):
        return int(row), int(col)
    return None
