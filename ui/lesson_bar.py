"""The lesson bar at the top of a page in a lesson: title, step counter, Previous / Next, the step's text and the
class panel (the step's question is `ui/questions.py`)."""
from __future__ import annotations

import streamlit as st

from vitviz.i18n import _

from . import class_session
from .class_panel import follow, teacher_box
from .lesson_routing import View, go_to


def bar(view: View):
    """The lesson at the top of the page: title, step counter, Previous / Next, the step's text and the class. Drawn
    before the sidebar, so that a follower's page shows the new step as early in the run as it can. Returns the
    bar's container (for `question`), or None outside a lesson."""
    for problem in view.problems:
        st.warning(problem, icon=":material/school:")
    lesson, step = view.lesson, view.current
    if lesson is None:
        return None
    n, total = view.step, len(lesson.steps)
    box = st.container(key="lesson-bar", border=True)
    if problem := class_session.problem():
        box.warning(problem, icon=":material/cloud_off:")
    with box:
        head, counter, prev, nxt = st.columns([9, 2, 2, 2], vertical_alignment="center")
        head.markdown(f"### {step.title}")
        head.caption(_("Lesson · **{title}** — {goal}").format(title=lesson.title, goal=lesson.goal))
        counter.markdown(f"<div style='font-size:1.6rem;text-align:center' data-testid='lesson-counter'>"
                         f"{n} / {total}</div>", unsafe_allow_html=True)
        prev.button(_("Previous"), key="lesson-prev", icon=":material/arrow_back:", disabled=n == 1, width="stretch",
                    on_click=_go, args=(lesson.id, n - 1), help=_("PageUp or ←"))
        nxt.button(_("Next"), key="lesson-next", icon=":material/arrow_forward:", disabled=n == total, type="primary",
                   width="stretch", on_click=_go, args=(lesson.id, n + 1), help=_("PageDown or →"))
        with st.container(key="lesson-text"):
            st.markdown(step.text)
        if class_session.follower() is not None:
            follow()
        else:
            teacher_box(lesson, n)
    return box


def _go(lesson_id: str, n: int) -> None:
    """Previous / Next: a teacher moves the class; a following student who steps alone explores on their own."""
    go_to(lesson_id, n)
    class_session.stepped(n)
