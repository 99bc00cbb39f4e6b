"""Lessons: a teacher's path through the pages, read from `lessons/<id>.toml` (data only, no code).

A lesson has a title, a one-line goal and 6–10 steps. A step names a page, the URL settings it opens with (the keys
the pages already bind: every other setting starts at its default, so a step opens the same whether a student
walked there or followed a link), the open tab, two or three sentences on what to look at, and optionally a
question asked before the panel that answers it is shown (predict, then reveal). No Streamlit here: the parser and
the checks are plain Python, tested on their own.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from .stages import SIDEBAR_KEYS, STAGES

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a backport
    import tomli as tomllib

LESSON_DIR = Path(__file__).resolve().parent.parent / "lessons"
PAGES = {"overview": None, **{s.key: s for s in STAGES}}
KINDS = ("choice", "patch", "number")
MIN_STEPS, MAX_STEPS = 6, 10


class LessonError(ValueError):
    """A lesson file that cannot be used, with where: the file, the step (1-based) and the field."""

    def __init__(self, file: str, message: str, step: int | None = None, field: str | None = None):
        where = file + (f", step {step}" if step is not None else "") + (f", field `{field}`" if field else "")
        super().__init__(f"Lesson file {where}: {message}")
        self.file, self.step, self.field = file, step, field


@dataclass(frozen=True)
class Question:
    """Asked before the step's panel is shown; the panel, the verdict and the explanation come after an answer."""

    kind: str  # "choice" (pick one option), "patch" (click a patch on the image) or "number"
    prompt: str  # the question, one sentence
    answer: str | float | tuple[tuple[int, int], ...]  # the option text, the number, or the (row, col) patches
    explanation: str  # one paragraph: why the answer is what it is
    options: tuple[str, ...] = ()  # choice: the options in the order shown
    tolerance: float = 0.0  # number: answers within ± tolerance count as right

    def is_right(self, given) -> bool:
        """Whether `given` (an option, a number or a (row, col) patch) is the answer."""
        if self.kind == "choice":
            return given == self.answer
        if self.kind == "number":
            return given is not None and abs(float(given) - float(self.answer)) <= self.tolerance + 1e-9
        return tuple(given) in self.answer


@dataclass(frozen=True)
class Step:
    """One stop of a lesson: a page opened with given settings and tab, what to look at, and maybe a question."""

    page: str  # url_path of the page (see ui.stages.STAGES), or "overview"
    title: str  # a few words, shown with the step counter
    text: str  # two or three sentences: what to look at
    settings: dict  # URL key -> value; keys of the sidebar or of this page
    tab: str = ""  # label of the page's open tab ("" for the first tab or a page without tabs)
    question: Question | None = None

    def query(self) -> dict[str, str]:
        """The step's settings and tab as URL values, written as the bound widgets write them."""
        values = {k: _url_value(v) for k, v in self.settings.items()}
        if self.tab:
            values[PAGES[self.page].tab_key] = self.tab
        return values


@dataclass(frozen=True)
class Lesson:
    id: str  # the file's name without .toml: `?lesson=<id>`
    title: str
    goal: str  # one line
    steps: tuple[Step, ...]


def _url_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def page_keys(page: str) -> tuple[str, ...]:
    """Every URL key a step on `page` may set: the sidebar's and the page's own."""
    stage = PAGES[page]
    return SIDEBAR_KEYS + (stage.keys if stage else ())


def _text(table: dict, name: str, file: str, step: int | None, field: str | None = None, required: bool = True) -> str:
    value = table.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise LessonError(file, "must be a non-empty text" if value is not None else "is missing", step, field or name)
    return " ".join(value.split())


def _question(table, file: str, step: int) -> Question:
    if not isinstance(table, dict):
        raise LessonError(file, "must be a table ([steps.question])", step, "question")
    kind = table.get("kind")
    if kind not in KINDS:
        raise LessonError(file, f"must be one of {', '.join(KINDS)}, not {kind!r}", step, "question.kind")
    prompt = _text(table, "prompt", file, step, "question.prompt")
    explanation = _text(table, "explanation", file, step, "question.explanation")
    answer, options, tolerance = table.get("answer"), (), 0.0
    if answer is None:
        raise LessonError(file, "is missing", step, "question.answer")
    if kind == "choice":
        options = table.get("options")
        if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o for o in options):
            raise LessonError(file, "must list at least two texts", step, "question.options")
        if len(set(options)) != len(options):
            raise LessonError(file, "has the same option twice", step, "question.options")
        if answer not in options:
            raise LessonError(file, f"{answer!r} is not one of the options", step, "question.answer")
        options = tuple(options)
    elif kind == "number":
        tolerance = table.get("tolerance", 0)
        for name, value in (("answer", answer), ("tolerance", tolerance)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise LessonError(file, f"must be a number, not {value!r}", step, f"question.{name}")
        answer, tolerance = float(answer), float(tolerance)
    else:
        cells = answer if isinstance(answer, list) else None
        if not cells or not all(isinstance(c, list) and len(c) == 2 and all(type(i) is int and i >= 0 for i in c)
                                for c in cells):
            raise LessonError(file, "must list the right patches as [row, column] pairs, e.g. [[0, 3], [1, 3]]",
                              step, "question.answer")
        answer = tuple((r, c) for r, c in cells)
    unknown = set(table) - {"kind", "prompt", "explanation", "answer", "options", "tolerance"}
    if unknown:
        raise LessonError(file, f"unknown field {sorted(unknown)[0]!r}", step, "question")
    return Question(kind, prompt, answer, explanation, options, tolerance)


def _step(table, file: str, n: int) -> Step:
    if not isinstance(table, dict):
        raise LessonError(file, "must be a table ([[steps]])", n)
    page = table.get("page")
    if page not in PAGES:
        raise LessonError(file, f"{page!r} is not a page; pages are {', '.join(PAGES)}", n, "page")
    settings = table.get("settings", {})
    if not isinstance(settings, dict):
        raise LessonError(file, "must be a table of URL settings, e.g. settings = { ps = 32 }", n, "settings")
    allowed = page_keys(page)
    for key, value in settings.items():
        if key not in allowed:
            raise LessonError(file, f"{key!r} is not a setting of the {page} page; it has {', '.join(allowed)}", n,
                              f"settings.{key}")
        if not isinstance(value, (str, int, float, bool)):
            raise LessonError(file, f"must be a text, a number or true/false, not {value!r}", n, f"settings.{key}")
    tab = table.get("tab", "")
    stage = PAGES[page]
    tabs = stage.tabs if stage else ()
    if tab and tab not in tabs:
        raise LessonError(file, f"{tab!r} is not a tab of the {page} page" +
                          (f"; its tabs are {', '.join(tabs)}" if tabs else "; it has no tabs"), n, "tab")
    question = _question(table["question"], file, n) if "question" in table else None
    unknown = set(table) - {"page", "title", "text", "settings", "tab", "question"}
    if unknown:
        raise LessonError(file, f"unknown field {sorted(unknown)[0]!r}", n)
    return Step(page, _text(table, "title", file, n), _text(table, "text", file, n), dict(settings), tab, question)


def parse_lesson(text: str, file: str) -> Lesson:
    """A lesson from the text of `file` (its name gives the id), or LessonError saying what is wrong and where."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise LessonError(file, f"is not valid TOML ({err})") from None
    steps = data.get("steps")
    if not isinstance(steps, list) or not MIN_STEPS <= len(steps) <= MAX_STEPS:
        count = len(steps) if isinstance(steps, list) else 0
        raise LessonError(file, f"needs {MIN_STEPS}–{MAX_STEPS} [[steps]], it has {count}", field="steps")
    return Lesson(Path(file).stem, _text(data, "title", file, None), _text(data, "goal", file, None),
                  tuple(_step(s, file, n) for n, s in enumerate(steps, 1)))


def load_lessons(folder: Path = LESSON_DIR) -> tuple[dict[str, Lesson], list[str]]:
    """Every lesson in `folder` by id, and one message per file that cannot be used (the others still work)."""
    lessons, problems = {}, []
    for path in sorted(folder.glob("*.toml")):
        try:
            lessons[path.stem] = parse_lesson(path.read_text(encoding="utf-8"), path.name)
        except (LessonError, UnicodeDecodeError, OSError) as err:
            problems.append(str(err) if isinstance(err, LessonError) else f"Lesson file {path.name}: cannot be read ({err})")
    return lessons, problems
