"""A class on the page: the teacher's panel (join code, link and QR code, how many joined, the live count of each
answer) and the follower's (following the teacher's step, polled about once a second, or exploring alone)."""
from __future__ import annotations

import html
import io
import random
from urllib.parse import urlencode, urlsplit

import streamlit as st

from vitviz.i18n import _

from . import class_session, i18n
from .answers import answer_label, answers_alt, answers_figure
from .classroom import ClassError, ClassUnavailable
from .common import chart, picture
from .lesson_routing import enter, go_to, lesson_at, lessons
from .lessons import Lesson, Question

TEACHER_EVERY_S = 2.0  # the teacher's counts refresh this often
_POLL = "poll_s"  # session-state key: this follower's polling interval


def teacher_box(lesson: Lesson, n: int) -> None:
    """Start a class, or, once started, the teacher's live panel."""
    if class_session.teacher() is None:
        st.button(_("Start a class"), key="class-start", icon=":material/groups:", on_click=class_session.start,
                  args=(lesson.id, n), help=_("Students who open the join link follow you from step to step."))
        return
    _teacher_live(lesson.steps[n - 1].question, n)


@st.fragment(run_every=TEACHER_EVERY_S)
def _teacher_live(question: Question | None, n: int) -> None:
    i18n.apply()  # a fragment's run starts here, not in app.py
    teacher = class_session.teacher()
    if teacher is None:  # the class ended: the bar draws the start button at the next full run
        return
    store = class_session.STORE
    found = _class_now(lambda: (store.state(teacher.code), store.answers(teacher.code, n) if question else {}),
                       class_session.forget_teacher,
                       _("This class has ended (3 hours without activity). Start a new one."))
    if found is None:
        return
    state, counts = found
    link = join_link(state.code)
    if teacher.show_join:  # large at first, for the class to scan; then out of the way
        left, right = st.columns([3, 2], vertical_alignment="top")
        code = (f"**<span data-testid='class-code' style='font-size:2.2rem;letter-spacing:.2em'>{state.code}"
                "</span>**")
        left.markdown(_("Class code {code}").format(code=code), unsafe_allow_html=True)
        left.markdown(_("Join link: `{link}`").format(link=link))
        if urlsplit(link).hostname in ("localhost", "127.0.0.1", "::1"):
            left.caption(_("This address works only on this computer: for students' laptops, open the app by this "
                           "computer's network address (start it with `--server.address 0.0.0.0`)."))
        left.button(_("Hide the join code"), key="class-hide", icon=":material/visibility_off:",
                    on_click=class_session.show_join, args=(False,))
        picture(qr_png(link), alt=_("QR code of the join link {link}").format(link=link), where=right,
                caption=_("Scan to join"), width=260)
    else:
        st.button(_("Show the join code ({code})").format(code=state.code), key="class-show",
                  icon=":material/qr_code:", on_click=class_session.show_join, args=(True,))
    joined = (_("**{joined}** students joined · {here} on the page now") if state.here != state.joined else
              _("**{joined}** students joined")).format(joined=state.joined, here=state.here)
    st.markdown(f"<span data-testid='class-joined'>{joined}</span>", unsafe_allow_html=True)
    if question is not None:
        if counts:
            chart(answers_figure(question, counts), alt=answers_alt(question, counts), key=f"answers-{n}",
                  config={"displayModeBar": False})
            listed = " · ".join(f"{html.escape(answer_label(question, a))}: <b>{k}</b>"
                                for a, k in sorted(counts.items(), key=lambda item: -item[1]))
            st.markdown(f"<span data-testid='class-answers'>{listed}</span>", unsafe_allow_html=True)
        else:
            st.caption(_("No answers yet: they appear here as the students answer."))


def _class_now(read, forget, ended: str):
    """What `read()` gets from the class store, or None after saying why not: the store does not answer (the
    fragment's next refresh tries again), or the class has ended (and `forget()` forgets it in this session)."""
    try:
        return read()
    except ClassUnavailable as err:
        st.warning(str(err), icon=":material/cloud_off:")
    except ClassError:
        forget()
        st.warning(ended)
    return None


def join_link(code: str) -> str:
    """The address a student opens to join, on the server the teacher reached."""
    parts = urlsplit(st.context.url or "http://localhost:8501/")
    return f"{parts.scheme}://{parts.netloc}/?{urlencode({'join': code})}"


@st.cache_data(max_entries=32, show_spinner=False)
def qr_png(text: str) -> bytes:
    """A QR code of `text` as PNG, large enough to scan from the back of a classroom (segno: pure Python)."""
    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=12, border=2)
    return out.getvalue()


def follow() -> None:
    """A student in a class: follow the teacher's step, polled about once a second. Each session keeps its own
    interval between 0.8 and 1.2 s: the followers' timers all restart after the same move, and with one shared
    interval thirty polls would keep arriving together, each waiting for the others' runs."""
    every = st.session_state.setdefault(_POLL, round(random.uniform(0.8, 1.2), 2))
    st.fragment(_following, run_every=every)()


def _following() -> None:
    """The follower's fragment: move with the teacher, or explore alone until one click follows again."""
    i18n.apply()  # a fragment's run starts here, not in app.py
    follower = class_session.follower()
    if follower is None:  # the class ended: nothing to follow
        return
    state = _class_now(lambda: class_session.STORE.state(follower.code, class_session.member()),
                       class_session.forget_follower, _("This class has ended."))
    if state is None:
        return
    if follower.following:
        if (state.lesson, state.step) != lesson_at():
            lesson = lessons()[0].get(state.lesson)
            if lesson is not None:  # straight to the step's page: one full run per move, not two
                enter(lesson, min(max(state.step, 1), len(lesson.steps)))
        st.caption(_("Following the teacher · class {code} · {joined} joined").format(code=state.code,
                                                                                       joined=state.joined))
        st.button(_("Explore on my own"), key="class-explore", icon=":material/explore:", on_click=_explore,
                  args=(False,))
    else:
        st.caption(_("Exploring on your own · the teacher is on step {step}").format(step=state.step))
        st.button(_("Follow the teacher"), key="class-follow", icon=":material/groups:", type="primary",
                  on_click=_explore, args=(True,))


def _explore(follow_again: bool) -> None:
    if (target := class_session.follow(follow_again)) is not None:
        go_to(*target)
