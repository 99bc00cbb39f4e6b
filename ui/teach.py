"""Lesson mode in the app: a lesson's steps over the pages, the presenter view, predict-then-reveal questions and a
class that follows its teacher.

URL keys (not widgets: they are kept in the URL by this module): `lesson=<id>` and `step=<n>` (1-based) open a step
with its settings; `present=1` is the projector view; `hide=sidebar,code,downloads,…` hides those controls (like
TensorFlow Playground's hide flags); `join=<code>` joins a class. `prepare` runs before any widget (a step sets the
widgets' values through st.session_state, the documented way to change a bound widget), `bar` draws the lesson at
the top of the page and `question` its question, saying whether the page's panel may be shown yet.
"""
from __future__ import annotations

import hashlib
import html
import io
import random
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitAPIException

from vitviz.i18n import _, language
from vitviz.models.vit import PRESETS
from vitviz.viz.patches import grid_figure

from . import classroom, i18n
from .classroom import ClassError, ClassStore, ClassUnavailable
from .lessons import LESSON_DIR, PAGES, Lesson, Question, Step, lesson_files, load_lessons
from .patches import cached_figure, model_patches, patch_from_event
from .models import vit_input, VIT_MODELS
from .stages import SIDEBAR_KEYS, STAGES, TAB_KEYS

STORE: ClassStore = classroom.store_from_env()  # every session of this server process (or, with Redis, of all) shares it
TEACHER_EVERY_S = 2.0  # the teacher's counts refresh this often
# Every setting a step may give; a step's page opens with the others at their defaults.
SETTING_KEYS = tuple(dict.fromkeys(SIDEBAR_KEYS + tuple(k for s in STAGES for k in s.keys) + tuple(TAB_KEYS.values())))
HIDE_FLAGS = {
    "sidebar": '[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], '
               '[data-testid="stExpandSidebarButton"] { display: none !important; }',
    "code": '[class*="st-key-vv-source-"] { display: none !important; }',
    "downloads": '[data-testid="stDownloadButton"] { display: none !important; }',
    "equations": '[data-testid="stLatex"], .katex-display { display: none !important; }',
    "footer": '[class*="st-key-vv-footer"] { display: none !important; }',
}
PRESENTER_CSS = """
html { font-size: 19px; }
[data-testid="stMainBlockContainer"] { padding-top: 1.2rem; max-width: 100%; }
/* the header holds only the sidebar's >> button, left of the content: its white band would cut the title in half */
[data-testid="stHeader"] { background: transparent; }
.st-key-lesson-text p { font-size: 1.25rem; line-height: 1.4; }
.st-key-lesson-bar h3 { font-size: 1.7rem; }
"""
# Students often follow from a phone: nothing may push the page sideways at 414 px.
PHONE_CSS = """
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-left: 0.6rem; padding-right: 0.6rem; }
  [data-testid="stMain"] { overflow-x: hidden; }  /* KaTeX's hidden MathML copy still widens the scroll area */
  .katex-display, [data-testid="stLatex"], [data-testid="stMarkdownContainer"] { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
  [data-testid="stImageContainer"], [data-testid="stImageContainer"] img, [data-testid="stPlotlyChart"] {
    max-width: 100% !important; height: auto !important; }
  [data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
  [data-testid="stCode"] pre { white-space: pre-wrap; }
}
"""
# PageDown/PageUp (a presentation clicker) and the arrow keys move between steps unless a field or slider has focus.
KEYS_JS = """<script>
if (!window.vitvizLessonKeys) {
  window.vitvizLessonKeys = true;
  document.addEventListener("keydown", (e) => {
    const which = {PageDown: "next", ArrowRight: "next", PageUp: "prev", ArrowLeft: "prev"}[e.key];
    if (!which || e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t && t.closest && t.closest('input, textarea, select, [role="slider"], [role="radio"], [role="tab"], [contenteditable="true"]')) return;
    const button = document.querySelector(".st-key-lesson-" + which + " button");
    if (button && !button.disabled) { e.preventDefault(); button.click(); }
  });
}
</script>"""


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


def prepare(current_page: str) -> View:
    """Before any widget of the run: follow a lesson link, a join link, a step button or the teacher's move by
    setting the step's values, and switch to the step's page when the run is on another."""
    ss, qp = st.session_state, st.query_params
    found, file_problems = lessons()
    problems: list[str] = []
    target = ss.pop("lesson_goto", None)
    code = qp.get("join")
    if target is None and code and classroom.normalise(code) != (ss.get("class") or {}).get("code"):
        target = _join(code, problems)
    asked = qp.get("lesson")
    if target is None and asked:
        step = _int(qp.get("step"), 1)
        if (asked, step) != ss.get("lesson_at"):
            target = (asked, step)
    if target is not None:
        lesson_id, step = target
        lesson = found.get(lesson_id)
        if lesson is None:
            problems.append(_("There is no lesson “{lesson}”. The lessons are: {lessons}.").format(
                lesson=lesson_id, lessons=", ".join(sorted(found))) if found else
                _("There is no lesson “{lesson}”.").format(lesson=lesson_id))
            qp.pop("lesson", None), qp.pop("step", None)
            ss.pop("lesson_at", None)
        else:
            step = min(max(step, 1), len(lesson.steps))
            _enter(lesson, step)
    at = ss.get("lesson_at")
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


def _enter(lesson: Lesson, n: int) -> None:
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
    ss["lesson_at"] = (lesson.id, n)
    qp["lesson"], qp["step"] = lesson.id, str(n)
    # Also to the page shown: the address then holds the lesson keys and whatever the widgets write back (their
    # non-default values), never a value of the previous step that a widget on this page still bound.
    kept = {k: qp[k] for k in ("lesson", "step", "present", "hide", "join", i18n.KEY) if k in qp}
    st.switch_page(_file(step.page), query_params=kept)


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


def _file(page: str) -> str:
    return "pages/overview.py" if page == "overview" else PAGES[page].file


def _join(code: str, problems: list[str]) -> tuple[str, int] | None:
    try:
        state = STORE.join(code, _member())
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
    st.session_state["class"] = {"code": state.code, "following": True}
    return state.lesson, state.step


def _member() -> str:
    """This student's id in a class: kept in the session (a reload of the page starts a new session and counts
    again, so it is derived from the browser's XSRF cookie when there is one)."""
    if "member" not in st.session_state:
        cookie = st.context.cookies.get("_streamlit_xsrf") if st.context.cookies else None
        st.session_state["member"] = (hashlib.sha256(cookie.encode()).hexdigest()[:16] if cookie
                                      else secrets.token_hex(8))
    return st.session_state["member"]


def style(view: View) -> None:
    """The view's CSS (presenter type, hide flags, the phone layout) and the step keys."""
    css = PHONE_CSS + (PRESENTER_CSS if view.present else "") + "".join(HIDE_FLAGS[f] for f in view.hide)
    if view.present and view.lesson is not None:  # the step's title and text stand for the page's introduction
        css += '.st-key-vv-intro { display: none; }'

    st.html(f"<style>{css}</style>")
    if view.lesson is not None:
        st.html(KEYS_JS, unsafe_allow_javascript=True)


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
    if problem := st.session_state.pop("class_problem", None):
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
        if st.session_state.get("class"):
            _follow()
        else:
            _teacher_box(lesson, n, st.session_state.get("teaching"))
    return box


def question(view: View, box) -> bool:
    """The step's question in the bar (after the sidebar: a patch question draws the sidebar's input). Returns
    whether the page's panel may be shown: False until the question is answered."""
    lesson, step = view.lesson, view.current
    if lesson is None:
        return True
    with box:
        answered = _question(lesson, view.step, step.question, view) if step.question else True
    if step.page != view.page:
        st.page_link(_file(step.page), label=_("Back to this step's page"), icon=":material/undo:",
                     query_params={"lesson": lesson.id, "step": str(view.step)})
    return answered


def _go(lesson_id: str, n: int) -> None:
    """Previous / Next: a teacher moves the class; a following student who steps alone explores on their own."""
    st.session_state["lesson_goto"] = (lesson_id, n)
    teacher = st.session_state.get("teaching")
    if teacher:
        try:
            STORE.move(teacher["code"], teacher["token"], n)
        except ClassUnavailable as err:
            st.session_state["class_problem"] = _("{error} The class did not move with you.").format(error=err)
        except ClassError:
            st.session_state.pop("teaching", None)
    follower = st.session_state.get("class")
    if follower:
        follower["following"] = False


# ---- the class ---------------------------------------------------------------------------------------------------

def _teacher_box(lesson: Lesson, n: int, teacher: dict | None) -> None:
    if teacher is None:
        st.button(_("Start a class"), key="class-start", icon=":material/groups:", on_click=_start,
                  args=(lesson.id, n), help=_("Students who open the join link follow you from step to step."))
        return
    _teacher_live(lesson.steps[n - 1].question, n)


def _start(lesson_id: str, n: int) -> None:
    try:
        code, token = STORE.create(lesson_id, n)
    except ClassUnavailable as err:
        st.session_state["class_problem"] = _("{error} No class was started.").format(error=err)
        return
    st.session_state["teaching"] = {"code": code, "token": token}  # the token never leaves this session


@st.fragment(run_every=TEACHER_EVERY_S)
def _teacher_live(question: Question | None, n: int) -> None:
    i18n.apply()  # a fragment's run starts here, not in app.py
    teacher = st.session_state["teaching"]
    found = _class_now(lambda: (STORE.state(teacher["code"]), STORE.answers(teacher["code"], n) if question else {}),
                       "teaching", _("This class has ended (3 hours without activity). Start a new one."))
    if found is None:
        return
    state, counts = found
    link = join_link(state.code)
    if teacher.get("show_join", True):  # large at first, for the class to scan; then out of the way
        left, right = st.columns([3, 2], vertical_alignment="top")
        code = (f"**<span data-testid='class-code' style='font-size:2.2rem;letter-spacing:.2em'>{state.code}"
                "</span>**")
        left.markdown(_("Class code {code}").format(code=code), unsafe_allow_html=True)
        left.markdown(_("Join link: `{link}`").format(link=link))
        if urlsplit(link).hostname in ("localhost", "127.0.0.1", "::1"):
            left.caption(_("This address works only on this computer: for students' laptops, open the app by this "
                           "computer's network address (start it with `--server.address 0.0.0.0`)."))
        left.button(_("Hide the join code"), key="class-hide", icon=":material/visibility_off:",
                    on_click=teacher.__setitem__, args=("show_join", False))
        right.image(qr_png(link), caption=_("Scan to join"), width=260)
    else:
        st.button(_("Show the join code ({code})").format(code=state.code), key="class-show",
                  icon=":material/qr_code:", on_click=teacher.__setitem__, args=("show_join", True))
    joined = (_("**{joined}** students joined · {here} on the page now") if state.here != state.joined else
              _("**{joined}** students joined")).format(joined=state.joined, here=state.here)
    st.markdown(f"<span data-testid='class-joined'>{joined}</span>", unsafe_allow_html=True)
    if question is not None:
        if counts:
            st.plotly_chart(answers_figure(question, counts), key=f"answers-{n}", config={"displayModeBar": False})
            listed = " · ".join(f"{html.escape(_answer_label(question, a))}: <b>{k}</b>"
                                for a, k in sorted(counts.items(), key=lambda item: -item[1]))
            st.markdown(f"<span data-testid='class-answers'>{listed}</span>", unsafe_allow_html=True)
        else:
            st.caption(_("No answers yet: they appear here as the students answer."))


def _class_now(read, forget: str, ended: str):
    """What `read()` gets from the class store, or None after saying why not: the store does not answer (the
    fragment's next refresh tries again), or the class has ended (and is forgotten from the session's `forget`)."""
    try:
        return read()
    except ClassUnavailable as err:
        st.warning(str(err), icon=":material/cloud_off:")
    except ClassError:
        st.session_state.pop(forget, None)
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


def _answer_label(question: Question, stored: str) -> str:
    """An answer as the class recorded it, as this session shows it (a choice in the question's language)."""
    if question.kind == "choice":
        position = question.position(stored)
        return stored if position is None else question.options[position]
    return stored


def _stored(question: Question, given) -> str:
    """An answer as the class records it: the same in every language (a choice as its English option)."""
    if question.kind == "choice":
        position = question.position(given)
        keys = question.option_keys or question.options
        return keys[position] if position is not None else str(given)
    return _text(given)


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


def _follow() -> None:
    """A student in a class: follow the teacher's step, polled about once a second. Each session keeps its own
    interval between 0.8 and 1.2 s: the followers' timers all restart after the same move, and with one shared
    interval thirty polls would keep arriving together, each waiting for the others' runs."""
    every = st.session_state.setdefault("poll_s", round(random.uniform(0.8, 1.2), 2))
    st.fragment(_following, run_every=every)()


def _following() -> None:
    """The follower's fragment: move with the teacher, or explore alone until one click follows again."""
    i18n.apply()  # a fragment's run starts here, not in app.py
    follower = st.session_state["class"]
    state = _class_now(lambda: STORE.state(follower["code"], _member()), "class", _("This class has ended."))
    if state is None:
        return
    if follower["following"]:
        if (state.lesson, state.step) != st.session_state.get("lesson_at"):
            lesson = lessons()[0].get(state.lesson)
            if lesson is not None:  # straight to the step's page: one full run per move, not two
                _enter(lesson, min(max(state.step, 1), len(lesson.steps)))
        st.caption(_("Following the teacher · class {code} · {joined} joined").format(code=state.code,
                                                                                       joined=state.joined))
        st.button(_("Explore on my own"), key="class-explore", icon=":material/explore:", on_click=_explore,
                  args=(False,))
    else:
        st.caption(_("Exploring on your own · the teacher is on step {step}").format(step=state.step))
        st.button(_("Follow the teacher"), key="class-follow", icon=":material/groups:", type="primary",
                  on_click=_explore, args=(True,))


def _explore(follow: bool) -> None:
    st.session_state["class"]["following"] = follow
    if follow:
        try:
            state = STORE.state(st.session_state["class"]["code"])
        except ClassError:  # gone or unreachable: the next poll says which
            return
        st.session_state["lesson_goto"] = (state.lesson, state.step)


# ---- predict, then reveal ------------------------------------------------------------------------------------------

def _question(lesson: Lesson, n: int, question: Question, view: View) -> bool:
    """The step's question; once answered (or revealed by the teacher) the verdict and the explanation. Returns
    whether the panel may be shown."""
    answers = st.session_state.setdefault("answers", {})
    key = f"{lesson.id}:{n}"
    st.markdown(_("**Predict first:** {prompt}").format(prompt=question.prompt))
    if key not in answers:
        given = _ask(question, key)
        if given is not None:
            answers[key] = given
            follower = st.session_state.get("class")
            if follower:
                try:
                    STORE.answer(follower["code"], _member(), n, _stored(question, given))
                except ClassError as err:
                    why = err if isinstance(err, ClassUnavailable) else _("the class has ended.")
                    st.warning(_("Your answer could not be counted for the class: {why}").format(why=why),
                               icon=":material/cloud_off:")
        elif st.session_state.get("teaching") or view.present:
            if st.button(_("Reveal the answer"), key=f"reveal-{key}", icon=":material/visibility:"):
                answers[key] = "revealed"
                st.rerun()
            return False
        else:
            st.caption(_("The panel that answers it appears once you have answered."))
            return False
    given = answers[key]
    if given == "revealed":
        st.info(_("**Answer:** {answer}. {explanation}").format(answer=_shown(question, question.answer),
                                                                explanation=question.explanation),
                icon=":material/lightbulb:")
    elif question.is_right(given):
        st.success(_("**Right** — {given}. {explanation}").format(given=_shown(question, given),
                                                                 explanation=question.explanation),
                   icon=":material/check_circle:")
    else:
        st.error(_("**Not quite** — you answered {given}; the answer is {answer}. {explanation}").format(
            given=_shown(question, given), answer=_shown(question, question.answer),
            explanation=question.explanation), icon=":material/cancel:")
    return True


def _shown(question: Question, value) -> str:
    """An answer in a verdict: a choice as its option in quotes (in the session's language), else as `_text`."""
    if question.kind == "choice":
        position = question.position(value)
        return f"“{value if position is None else question.options[position]}”"
    return _text(value)


def _text(value) -> str:
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return _(" or ").join(_("row {row}, column {col}").format(row=r, col=c) for r, c in value)
    if isinstance(value, tuple):
        return f"{value[0]},{value[1]}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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
    """Click a patch of the image as the model sees it, on the step's patch grid: returns (row, col)."""
    vin = vit_input(st.session_state["ctx"])
    grid = model_patches(vin).grid
    # shared read-only like the patch pages' grids: built (and validated) once per input, not on every run
    fig = cached_figure(f"question-grid:{language()}", vin.cache_key, -1, 420,  # its hover text is in words
                        lambda: grid_figure(np.asarray(vin.shown.convert("RGB")), grid.patch, None, 420))
    st.caption(_("Click the patch on the image."))
    event = st.plotly_chart(fig, key=f"q-{key}", on_select="rerun", selection_mode="points",
                            config={"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]})
    index = patch_from_event(event, grid)
    return None if index is None else divmod(index, grid.cols)
