"""This session's part in a class that follows its teacher: whether it teaches or follows (typed session state with
one accessor each), its member id, and the calls that change the class (join, start, move, answer, follow again).

The class itself, shared by every session (and with Redis by every server process), is `ui/classroom.py`'s store;
the panels that show a class on the page are `ui/class_panel.py`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass

import streamlit as st

from vitviz.i18n import _

from . import classroom
from .classroom import ClassError, ClassStore, ClassUnavailable

STORE: ClassStore = classroom.store_from_env()  # every session of this server process (or, with Redis, of all) shares it
_FOLLOWER, _TEACHER, _MEMBER, _PROBLEM = "class", "teaching", "member", "class_problem"  # session-state keys


@dataclass(frozen=True)
class Follower:
    """A student in a class."""

    code: str  # the class joined
    following: bool = True  # True: the page moves with the teacher; False: exploring alone


@dataclass(frozen=True)
class Teacher:
    """The session that started a class and alone may move it."""

    code: str  # the class's join code
    token: str  # the secret `STORE.move` asks for: it never leaves this session (no URL, no screen)
    show_join: bool = True  # the join code and QR code large on the page, for the class to scan


def follower() -> Follower | None:
    """This session's place in a class it joined, if any."""
    return st.session_state.get(_FOLLOWER)


def teacher() -> Teacher | None:
    """The class this session teaches, if any."""
    return st.session_state.get(_TEACHER)


def forget_teacher() -> None:
    """The class this session taught has ended."""
    st.session_state.pop(_TEACHER, None)


def forget_follower() -> None:
    """The class this session followed has ended."""
    st.session_state.pop(_FOLLOWER, None)


def member() -> str:
    """This student's id in a class: kept in the session (a reload of the page starts a new session and counts
    again, so it is derived from the browser's XSRF cookie when there is one)."""
    if _MEMBER not in st.session_state:
        cookie = st.context.cookies.get("_streamlit_xsrf") if st.context.cookies else None
        st.session_state[_MEMBER] = (hashlib.sha256(cookie.encode()).hexdigest()[:16] if cookie
                                     else secrets.token_hex(8))
    return st.session_state[_MEMBER]


def problem() -> str | None:
    """A sentence a button's callback left for the top of the lesson bar (said once, then forgotten)."""
    return st.session_state.pop(_PROBLEM, None)


def _say(sentence: str) -> None:
    st.session_state[_PROBLEM] = sentence


def join(code: str, problems: list[str]) -> tuple[str, int] | None:
    """Join the class `code` as a follower: the teacher's (lesson id, step), or None after adding to `problems` why
    not (no such class, or its store does not answer)."""
    try:
        state = STORE.join(code, member())
    except ClassUnavailable as err:
        problems.append(_("{error} The class cannot be joined right now: try the link again in a moment.").format(
            error=err))
        return None
    except ClassError:
        problems.append(_("There is no class with the code {code} (it may have ended: a class closes 3 hours after "
                          "its last activity). Check the code with your teacher.").format(
            code=classroom.normalise(code)))
        st.query_params.pop("join", None)
        return None
    st.session_state[_FOLLOWER] = Follower(state.code)
    return state.lesson, state.step


def joined_code() -> str | None:
    """The code of the class this session follows, if any."""
    current = follower()
    return current.code if current else None


def start(lesson_id: str, n: int) -> None:
    """Start a class on step n of a lesson, this session its teacher (a button's callback)."""
    try:
        code, token = STORE.create(lesson_id, n)
    except ClassUnavailable as err:
        _say(_("{error} No class was started.").format(error=err))
        return
    st.session_state[_TEACHER] = Teacher(code, token)


def show_join(show: bool) -> None:
    """Show the join code large, or put it away (a button's callback; the class may have ended since)."""
    if (current := teacher()) is not None:
        st.session_state[_TEACHER] = dataclasses.replace(current, show_join=show)


def stepped(n: int) -> None:
    """This session went to step n by itself: a teacher moves the class with it; a following student now explores
    on their own."""
    if (current := teacher()) is not None:
        try:
            STORE.move(current.code, current.token, n)
        except ClassUnavailable as err:
            _say(_("{error} The class did not move with you.").format(error=err))
        except ClassError:
            forget_teacher()
    if (current := follower()) is not None:
        st.session_state[_FOLLOWER] = dataclasses.replace(current, following=False)


def follow(again: bool) -> tuple[str, int] | None:
    """Follow the teacher again (True) or explore alone (False). Following again returns the teacher's (lesson id,
    step) to go to, or None when the class is gone or unreachable (the next poll says which)."""
    current = follower()
    if current is None:  # the class ended between drawing the button and the click
        return None
    st.session_state[_FOLLOWER] = dataclasses.replace(current, following=again)
    if not again:
        return None
    try:
        state = STORE.state(current.code)
    except ClassError:
        return None
    return state.lesson, state.step


def answer(n: int, stored: str) -> str | None:
    """Count this follower's answer to step n's question; None when counted, else why it could not be."""
    current = follower()
    if current is None:
        return None
    try:
        STORE.answer(current.code, member(), n, stored)
    except ClassError as err:
        return str(err) if isinstance(err, ClassUnavailable) else _("the class has ended.")
    return None
