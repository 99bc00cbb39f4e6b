"""Lesson routing: which lesson and step this run shows, read from the URL (`lesson=<id>`, `step=<n>`, 1-based;
`join=<code>`, `present=1`, `hide=…`) and from the session, and opening a step: its settings and tab set through
st.session_state (the documented way to change a bound widget) before any widget of the run, then its page.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from vitviz.i18n import _, language
from vitviz.models.vit import PRESETS

from . import classroom, i18n
from .class_session import join, joined_code
from .lessons import LESSON_DIR, PAGES, Lesson, Step, lesson_files, load_lessons
from .models import VIT_MODELS
from .presenter import HIDE_FLAGS
from .stages import EXTRAS, SIDEBAR_KEYS, STAGES, TAB_KEYS

# Every setting a step may give; a step's page opens with the others at their defaults.
SETTING_KEYS = tuple(dict.fromkeys(SIDEBAR_KEYS + tuple(k for s in STAGES + EXTRAS for k in s.keys) + tuple(TAB_KEYS.values())))
_AT, _GOTO = "lesson_at", "lesson_goto"  # session-state keys: the step shown (lesson id, n); the step to open next


@dataclass(frozen=True)
class View:
    """The lesson state of this run."""

    page: str  # url_path of the page this run shows ("overview" for the default page)
    lesson: Lesson | None  # the lesson open in this session, if any
    step: int  # 1-based
    present: bool  # presenter view
    hide: tuple[str, ...]  # hide flags in force
    problems: tuple[str, ...]  # sentences for the top of the page (a bad link, an unusable lesson file)

    @property
    def current(self) -> Step | None:
        return self.lesson.steps[self.step - 1] if self.lesson else None


@st.cache_resource(max_entries=8, show_spinner=False)
def _lessons(folder: str, signature: tuple, lang: str) -> tuple[dict[str, Lesson], list[str]]:
    return load_lessons(Path(folder), lang)


def lessons() -> tuple[dict[str, Lesson], list[str]]:
    """The lessons on disk by id, in the session's language, and one message per unusable file (in that language),
    re-read when a file or its translation changes."""
    lang = language()
    signature = tuple((str(p.relative_to(LESSON_DIR)), p.stat().st_mtime_ns) for p in lesson_files(LESSON_DIR, lang))
    return _lessons(str(LESSON_DIR), signature, lang)


def presenting() -> bool:
    """Whether the URL asks for the presenter view (read before st.set_page_config)."""
    return st.query_params.get("present") in ("1", "true")


def lesson_at() -> tuple[str, int] | None:
    """(lesson id, 1-based step) this session is on, if it is in a lesson."""
    return st.session_state.get(_AT)


def go_to(lesson_id: str, n: int) -> None:
    """Open step n of a lesson at the start of the next run (from a button's callback)."""
    st.session_state[_GOTO] = (lesson_id, n)


def prepare(current_page: str) -> View:
    """Before any widget of the run: follow a lesson link, a join link, a step button or the teacher's move by
    setting the step's values, and switch to the step's page when the run is on another."""
    ss, qp = st.session_state, st.query_params
    found, file_problems = lessons()
    problems: list[str] = []
    target = ss.pop(_GOTO, None)
    code = qp.get("join")
    if target is None and code and classroom.normalise(code) != joined_code():
        target = join(code, problems)
    asked = qp.get("lesson")
    if target is None and asked:
        step = _int(qp.get("step"), 1)
        if (asked, step) != ss.get(_AT):
            target = (asked, step)
    if target is not None:
        lesson_id, step = target
        lesson = found.get(lesson_id)
        if lesson is None:
            problems.append(_("There is no lesson “{lesson}”. The lessons are: {lessons}.").format(
                lesson=lesson_id, lessons=", ".join(sorted(found))) if found else
                _("There is no lesson “{lesson}”.").format(lesson=lesson_id))
            qp.pop("lesson", None), qp.pop("step", None)
            ss.pop(_AT, None)
        else:
            step = min(max(step, 1), len(lesson.steps))
            enter(lesson, step)
    at = ss.get(_AT)
    lesson = found.get(at[0]) if at else None
    if lesson is not None and at[1] > len(lesson.steps):  # the file was edited and lost steps
        at = (at[0], len(lesson.steps))
    if lesson is not None:  # page navigation drops keys no widget binds: keep them while in a lesson
        for name, want in (("lesson", lesson.id), ("step", str(at[1]))):
            if qp.get(name) != want:
                qp[name] = want
    hide = tuple(f.strip() for f in qp.get("hide", "").split(",") if f.strip())
    unknown = [f for f in hide if f not in HIDE_FLAGS]
    if unknown:
        problems.append(_("Unknown hide flag {unknown}: the flags are {flags}.").format(
            unknown=", ".join(unknown), flags=", ".join(HIDE_FLAGS)))
    if lesson is not None or asked or code:
        problems += file_problems  # a teacher who uses lessons must hear about a broken file
    return View(current_page, lesson, at[1] if lesson else 1, presenting(), tuple(f for f in hide if f in HIDE_FLAGS), tuple(problems))


def _int(text, default: int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def enter(lesson: Lesson, n: int) -> None:
    """Open step n: its settings and tab in session state (every other setting back to its default), then its page."""
    ss, qp = st.session_state, st.query_params
    step = lesson.steps[n - 1]
    values = dict(step.settings)
    stage = PAGES[step.page]
    if stage is not None and stage.tabs:
        values[stage.tab_key] = step.tab or stage.tabs[0]
    for key in SETTING_KEYS:
        if key in values:
            ss[key] = values[key]
        else:
            ss.pop(key, None)
            try:  # else the URL would seed the old value again when the widget next appears
                qp.pop(key, None)
            except StreamlitAPIException:  # bound on the page shown: its widget must be set to its default
                if (default := _widget_default(key)) is not None:
                    ss[key] = default
    if "ps" not in values:  # the sidebar's P starts at the model's own, as a model change in the sidebar does
        ss["ps"] = PRESETS[ss.get("model") or next(iter(VIT_MODELS))].patch_size
    ss[_AT] = (lesson.id, n)
    qp["lesson"], qp["step"] = lesson.id, str(n)
    # Also to the page shown: the address then holds the lesson keys and whatever the widgets write back (their
    # non-default values), never a value of the previous step that a widget on this page still bound.
    kept = {k: qp[k] for k in ("lesson", "step", "present", "hide", "join", i18n.KEY) if k in qp}
    st.switch_page(page_file(step.page), query_params=kept)


def _widget_default(key: str):
    """The default of the widget bound to URL key `key` on the page shown, as Streamlit itself restores it on a
    history navigation (`metadata.deserializer(None)`). Popping the session value is not enough there: the browser
    sends the widget's current value with the run, and the URL still holds it. Streamlit has no public call for it;
    the lesson tests in Chromium fail if this stops working."""
    from streamlit.runtime.state.session_state_proxy import get_session_state

    state = get_session_state()._state
    binding = state.query_params._bindings_by_param.get(key)
    metadata = state._new_widget_state.widget_metadata.get(binding.widget_id) if binding else None
    return metadata.deserializer(None) if metadata else None


def page_file(page: str) -> str:
    return "pages/overview.py" if page == "overview" else PAGES[page].file
