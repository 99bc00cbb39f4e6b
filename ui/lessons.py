"""Lessons: a teacher's path through the pages, read from `lessons/<id>.toml` (data only, no code).

A lesson has a title, a one-line goal and 6–10 steps. A step names a page, the URL settings it opens with (the keys
the pages already bind: every other setting starts at its default, so a step opens the same whether a student
walked there or followed a link), the open tab, two or three sentences on what to look at, and optionally a
question asked before the panel that answers it is shown (predict, then reveal). No Streamlit here: the parser and
the checks are plain Python, tested on their own.

Each lesson is also read in Chinese from `lessons/zh/<id>.toml`: the same steps in the same order holding only the
texts (title and goal; per step title and text; per question prompt, options and explanation). Pages, settings,
tabs, kinds and answers stay in the English file, and a choice is judged by the position of the option, so the
answer key is the same in every language. A missing or malformed translation is one message and that lesson is
shown in English.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from vitviz.i18n import DEFAULT, _, language, use_language

from .stages import EXTRAS, SIDEBAR_KEYS, STAGES

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a backport
    import tomli as tomllib

LESSON_DIR = Path(__file__).resolve().parent.parent / "lessons"
PAGES = {"overview": None, **{s.key: s for s in STAGES + EXTRAS}}
KINDS = ("choice", "patch", "number")
MIN_STEPS, MAX_STEPS = 6, 10
TRANSLATED = ("zh",)  # languages with their own lesson texts, in lessons/<language>/<id>.toml


class LessonError(ValueError):
    """A lesson file that cannot be used, with where: the file, the step (1-based) and the field."""

    def __init__(self, file: str, message: str, step: int | None = None, field: str | None = None):
        if step is not None and field:
            text = _("Lesson file {file}, step {step}, field `{field}`: {message}")
        elif step is not None:
            text = _("Lesson file {file}, step {step}: {message}")
        elif field:
            text = _("Lesson file {file}, field `{field}`: {message}")
        else:
            text = _("Lesson file {file}: {message}")
        super().__init__(text.format(file=file, step=step, field=field, message=message))
        self.file, self.step, self.field = file, step, field


@dataclass(frozen=True)
class Question:
    """Asked before the step's panel is shown; the panel, the verdict and the explanation come after an answer."""

    kind: str  # "choice" (pick one option), "patch" (click a patch on the image) or "number"
    prompt: str  # the question, one sentence
    answer: str | float | tuple[tuple[int, int], ...]  # the option text, the number, or the (row, col) patches
    explanation: str  # one paragraph: why the answer is what it is
    options: tuple[str, ...] = ()  # choice: the options in the order shown, in the lesson's language
    tolerance: float = 0.0  # number: answers within ± tolerance count as right
    # choice: the options as the English file writes them, the same in every language (what a class records)
    option_keys: tuple[str, ...] = ()

    @property
    def index(self) -> int | None:
        """choice: the position of the right option."""
        return self.options.index(self.answer) if self.kind == "choice" else None

    def position(self, given) -> int | None:
        """choice: the position of `given` (a position, or an option in this language or in English)."""
        if isinstance(given, int) and not isinstance(given, bool):
            return given if 0 <= given < len(self.options) else None
        for names in (self.options, self.option_keys):
            if given in names:
                return names.index(given)
        return None

    def is_right(self, given) -> bool:
        """Whether `given` (an option or its position, a number or a (row, col) patch) is the answer."""
        if self.kind == "choice":
            return given is not None and self.position(given) == self.index
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
        raise LessonError(file, _("must be a non-empty text") if value is not None else _("is missing"), step,
                          field or name)
    return " ".join(value.split())


def _options(table: dict, file: str, step: int) -> tuple[str, ...]:
    options = table.get("options")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o for o in options):
        raise LessonError(file, _("must list at least two texts"), step, "question.options")
    if len(set(options)) != len(options):
        raise LessonError(file, _("has the same option twice"), step, "question.options")
    return tuple(options)


def _question(table, file: str, step: int) -> Question:
    if not isinstance(table, dict):
        raise LessonError(file, _("must be a table ([steps.question])"), step, "question")
    kind = table.get("kind")
    if kind not in KINDS:
        raise LessonError(file, _("must be one of {kinds}, not {kind!r}").format(kinds=", ".join(KINDS), kind=kind),
                          step, "question.kind")
    prompt = _text(table, "prompt", file, step, "question.prompt")
    explanation = _text(table, "explanation", file, step, "question.explanation")
    answer, options, tolerance = table.get("answer"), (), 0.0
    if answer is None:
        raise LessonError(file, _("is missing"), step, "question.answer")
    if kind == "choice":
        options = _options(table, file, step)
        if answer not in options:
            raise LessonError(file, _("{answer!r} is not one of the options").format(answer=answer), step,
                              "question.answer")
    elif kind == "number":
        tolerance = table.get("tolerance", 0)
        for name, value in (("answer", answer), ("tolerance", tolerance)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise LessonError(file, _("must be a number, not {value!r}").format(value=value), step,
                                  f"question.{name}")
        answer, tolerance = float(answer), float(tolerance)
    else:
        cells = answer if isinstance(answer, list) else None
        if not cells or not all(isinstance(c, list) and len(c) == 2 and all(type(i) is int and i >= 0 for i in c)
                                for c in cells):
            raise LessonError(file, _("must list the right patches as [row, column] pairs, e.g. [[0, 3], [1, 3]]"),
                              step, "question.answer")
        answer = tuple((r, c) for r, c in cells)
    unknown = set(table) - {"kind", "prompt", "explanation", "answer", "options", "tolerance"}
    if unknown:
        raise LessonError(file, _("unknown field {name!r}").format(name=sorted(unknown)[0]), step, "question")
    return Question(kind, prompt, answer, explanation, options, tolerance, options)


def _step(table, file: str, n: int) -> Step:
    if not isinstance(table, dict):
        raise LessonError(file, _("must be a table ([[steps]])"), n)
    page = table.get("page")
    if page not in PAGES:
        raise LessonError(file, _("{page!r} is not a page; pages are {pages}").format(
            page=page, pages=", ".join(PAGES)), n, "page")
    settings = table.get("settings", {})
    if not isinstance(settings, dict):
        raise LessonError(file, _("must be a table of URL settings, e.g. settings = {{ ps = 32 }}").format(), n,
                          "settings")
    allowed = page_keys(page)
    for key, value in settings.items():
        if key not in allowed:
            raise LessonError(file, _("{key!r} is not a setting of the {page} page; it has {keys}").format(
                key=key, page=page, keys=", ".join(allowed)), n, f"settings.{key}")
        if not isinstance(value, (str, int, float, bool)):
            raise LessonError(file, _("must be a text, a number or true/false, not {value!r}").format(value=value), n,
                              f"settings.{key}")
    tab = table.get("tab", "")
    stage = PAGES[page]
    tabs = stage.tabs if stage else ()
    if tab and tab not in tabs:
        message = (_("{tab!r} is not a tab of the {page} page; its tabs are {tabs}") if tabs else
                   _("{tab!r} is not a tab of the {page} page; it has no tabs"))
        raise LessonError(file, message.format(tab=tab, page=page, tabs=", ".join(tabs)), n, "tab")
    question = _question(table["question"], file, n) if "question" in table else None
    unknown = set(table) - {"page", "title", "text", "settings", "tab", "question"}
    if unknown:
        raise LessonError(file, _("unknown field {name!r}").format(name=sorted(unknown)[0]), n)
    return Step(page, _text(table, "title", file, n), _text(table, "text", file, n), dict(settings), tab, question)


def _toml(text: str, file: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise LessonError(file, _("is not valid TOML ({error})").format(error=err)) from None


def parse_lesson(text: str, file: str) -> Lesson:
    """A lesson from the text of `file` (its name gives the id), or LessonError saying what is wrong and where."""
    data = _toml(text, file)
    steps = data.get("steps")
    if not isinstance(steps, list) or not MIN_STEPS <= len(steps) <= MAX_STEPS:
        count = len(steps) if isinstance(steps, list) else 0
        raise LessonError(file, _("needs {min}–{max} [[steps]], it has {count}").format(
            min=MIN_STEPS, max=MAX_STEPS, count=count), field="steps")
    return Lesson(Path(file).stem, _text(data, "title", file, None), _text(data, "goal", file, None),
                  tuple(_step(s, file, n) for n, s in enumerate(steps, 1)))


def _unknown(table: dict, allowed: set[str], file: str, step: int | None, where: str | None) -> None:
    """A field a translation may not hold: settings, pages, tabs, kinds and answers live in the English file."""
    unknown = set(table) - allowed
    if unknown:
        raise LessonError(file, _("unknown field {name!r}: a translation holds only the texts (pages, settings, tabs, "
                                  "kinds and answers stay in the English file)").format(name=sorted(unknown)[0]),
                          step, where)


def _translated_question(question: Question, table, file: str, n: int) -> Question:
    if not isinstance(table, dict):
        raise LessonError(file, _("must be a table ([steps.question])"), n, "question")
    prompt = _text(table, "prompt", file, n, "question.prompt")
    explanation = _text(table, "explanation", file, n, "question.explanation")
    allowed = {"prompt", "explanation"}
    answer, options = question.answer, question.options
    if question.kind == "choice":
        if "options" not in table:
            raise LessonError(file, _("is missing"), n, "question.options")
        options = _options(table, file, n)
        if len(options) != len(question.options):
            raise LessonError(file, _("has {count} options, the English question has {english}: give the same "
                                      "options in the same order").format(count=len(options),
                                                                          english=len(question.options)),
                              n, "question.options")
        answer = options[question.index]  # the same position: the answer key does not depend on the language
        allowed.add("options")
    _unknown(table, allowed, file, n, "question")
    return dataclasses.replace(question, prompt=prompt, explanation=explanation, options=options, answer=answer)


def translate_lesson(lesson: Lesson, text: str, file: str) -> Lesson:
    """`lesson` with the texts of the translation `file` (e.g. zh/attention.toml), step by step; LessonError naming
    the file, the step and the field when the translation does not match the English lesson."""
    data = _toml(text, file)
    steps = data.get("steps")
    if not isinstance(steps, list) or len(steps) != len(lesson.steps):
        count = len(steps) if isinstance(steps, list) else 0
        raise LessonError(file, _("has {count} [[steps]], the English lesson has {english}: translate every step, "
                                  "in the same order").format(count=count, english=len(lesson.steps)), field="steps")
    _unknown(data, {"title", "goal", "steps"}, file, None, None)
    translated = []
    for n, (step, table) in enumerate(zip(lesson.steps, steps), 1):
        if not isinstance(table, dict):
            raise LessonError(file, _("must be a table ([[steps]])"), n)
        question = step.question
        if question is None and "question" in table:
            raise LessonError(file, _("the English step has no question"), n, "question")
        if question is not None:
            if "question" not in table:
                raise LessonError(file, _("is missing"), n, "question")
            question = _translated_question(question, table["question"], file, n)
        _unknown(table, {"title", "text", "question"}, file, n, None)
        translated.append(dataclasses.replace(step, title=_text(table, "title", file, n),
                                              text=_text(table, "text", file, n), question=question))
    return dataclasses.replace(lesson, title=_text(data, "title", file, None), goal=_text(data, "goal", file, None),
                               steps=tuple(translated))


def _read(path: Path, name: str, parse):
    try:
        return parse(path.read_text(encoding="utf-8"), name)
    except UnicodeDecodeError as err:
        raise LessonError(name, _("cannot be read ({error})").format(error=err)) from None
    except OSError as err:
        raise LessonError(name, _("cannot be read ({error})").format(error=err)) from None


def lesson_files(folder: Path = LESSON_DIR, lang: str | None = None) -> list[Path]:
    """The files a lesson in `lang` is read from: the English lessons and, for a translated language, their
    translations (to tell when one changes)."""
    lang = lang or language()
    files = sorted(folder.glob("*.toml"))
    if lang in TRANSLATED:
        files += sorted((folder / lang).glob("*.toml"))
    return files


def load_lessons(folder: Path = LESSON_DIR, lang: str | None = None) -> tuple[dict[str, Lesson], list[str]]:
    """Every lesson in `folder` by id, in `lang` (default: this run's language), and one message per file that
    cannot be used (the others still work; a lesson whose translation cannot be used is shown in English)."""
    lang = lang or language()
    lessons, problems = {}, []
    with use_language(lang):  # the messages in the language of the lessons
        for path in sorted(folder.glob("*.toml")):
            try:
                lessons[path.stem] = _read(path, path.name, parse_lesson)
            except LessonError as err:
                problems.append(str(err))
        if lang == DEFAULT or lang not in TRANSLATED:
            return lessons, problems
        for lesson_id, lesson in list(lessons.items()):
            path, name = folder / lang / f"{lesson_id}.toml", f"{lang}/{lesson_id}.toml"
            try:
                if not path.exists():
                    raise LessonError(name, _("is missing: {file} has no Chinese translation yet").format(
                        file=f"{lesson_id}.toml"))
                lessons[lesson_id] = _read(path, name, lambda text, file: translate_lesson(lesson, text, file))
            except LessonError as err:
                problems.append(_("{problem}. Until it is fixed, this lesson is shown in English.").format(problem=err))
        for path in sorted((folder / lang).glob("*.toml")):
            if not (folder / path.name).exists():
                orphan = _("translates a lesson that does not exist (there is no {file})").format(file=path.name)
                problems.append(str(LessonError(f"{lang}/{path.name}", orphan)))
    return lessons, problems
