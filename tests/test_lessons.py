"""Lesson files without Streamlit: the parser's messages name the file, the step and the field, a broken file
leaves the others working, and the shipped lessons are valid and cover what the three lessons must."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ui.lessons import LESSON_DIR, LessonError, load_lessons, parse_lesson
from ui.stages import EXTRAS, STAGES

GOOD_STEP = '''
[[steps]]
page = "patching"
title = "Patches"
text = "Look at the grid."
settings = { ps = 32 }
'''


def lesson_text(steps: str = GOOD_STEP * 6, head: str = 'title = "T"\ngoal = "G"\n') -> str:
    return head + steps


def test_shipped_lessons_are_valid():
    lessons, problems = load_lessons(LESSON_DIR)
    assert problems == []
    assert set(lessons) == {"pixels-to-tokens", "attention", "windows-and-patches", "train-a-vit"}
    for lesson in lessons.values():
        assert 6 <= len(lesson.steps) <= 10
        assert any(step.question for step in lesson.steps)
    kinds = {s.question.kind for lesson in lessons.values() for s in lesson.steps if s.question}
    assert kinds == {"choice", "patch", "number"}
    # what the issue asks the three lessons to cover
    steps = {lid: lesson.steps for lid, lesson in lessons.items()}
    assert any(s.settings.get("ps") == 30 for s in steps["pixels-to-tokens"])  # a patch size that does not divide 224
    assert any(s.page == "position" and s.settings.get("res", 224) != 224 for s in steps["pixels-to-tokens"])
    assert {s.tab for s in steps["attention"]} >= {"All heads", "One head, step by step", "Rollout", "DINO masks"}
    assert any(s.settings.get("hub") is False for s in steps["attention"])  # trained vs random weights
    assert {s.tab for s in steps["windows-and-patches"]} >= {"Partition", "Cyclic shift", "Mask & attention",
                                                             "Unfold", "Fold"}
    # the playground's lesson: where with and without E_pos, P = 4 and 8, ViT and CNN, no attention on "same"
    played = {tuple(sorted(s.settings.items())) for s in steps["train-a-vit"]}
    assert {"playground"} == {s.page for s in steps["train-a-vit"]}
    assert any(("pgpos", "none") in p and ("pgtask", "where") in p for p in played)
    assert {s.settings.get("pgp") for s in steps["train-a-vit"]} >= {4, 8}
    assert {s.settings.get("pgmodel") for s in steps["train-a-vit"]} >= {"vit", "cnn", "mlp"}


def test_step_query_is_what_the_widgets_write():
    lessons, _ = load_lessons(LESSON_DIR)
    step = next(s for s in lessons["attention"].steps if s.settings.get("hub") is False)
    assert step.query() == {"img": "coffee", "hub": "false", "atsec": "All heads"}


@pytest.mark.parametrize("steps, step, field, says", [
    (GOOD_STEP * 5, None, "steps", "needs 6–10"),
    (GOOD_STEP * 11, None, "steps", "needs 6–10"),
    (GOOD_STEP * 2 + GOOD_STEP.replace('"patching"', '"patchnig"') + GOOD_STEP * 3, 3, "page", "is not a page"),
    (GOOD_STEP * 3 + GOOD_STEP.replace("ps = 32", "layer = 3") + GOOD_STEP * 2, 4, "settings.layer",
     "not a setting of the patching page"),
    (GOOD_STEP + GOOD_STEP.replace('text = "Look at the grid."\n', '') + GOOD_STEP * 4, 2, "text", "missing"),
    (GOOD_STEP * 5 + GOOD_STEP.replace('page = "patching"', 'page = "swin"\ntab = "Shift"').replace("ps = 32", "M = 4"),
     6, "tab", "not a tab of the swin page"),
    (GOOD_STEP * 5 + GOOD_STEP + '[steps.question]\nkind = "choice"\nprompt = "?"\noptions = ["a", "b"]\n'
     'answer = "c"\nexplanation = "e"\n', 6, "question.answer", "not one of the options"),
    (GOOD_STEP * 5 + GOOD_STEP + '[steps.question]\nkind = "number"\nprompt = "?"\nanswer = "ten"\n'
     'explanation = "e"\n', 6, "question.answer", "must be a number"),
    (GOOD_STEP * 5 + GOOD_STEP + '[steps.question]\nkind = "patch"\nprompt = "?"\nanswer = [1, 3]\n'
     'explanation = "e"\n', 6, "question.answer", "[row, column] pairs"),
    (GOOD_STEP * 5 + GOOD_STEP + '[steps.question]\nkind = "essay"\nprompt = "?"\nanswer = 1\n'
     'explanation = "e"\n', 6, "question.kind", "must be one of"),
    (GOOD_STEP * 5 + GOOD_STEP + '[steps.question]\nkind = "number"\nprompt = "?"\nanswer = 1\n', 6,
     "question.explanation", "missing"),
])
def test_malformed_lesson_names_file_step_and_field(steps, step, field, says):
    with pytest.raises(LessonError) as err:
        parse_lesson(lesson_text(steps), "broken.toml")
    assert (err.value.file, err.value.step, err.value.field) == ("broken.toml", step, field)
    message = str(err.value)
    assert message.startswith("Lesson file broken.toml") and says in message
    assert (f"step {step}" in message) == (step is not None) and f"`{field}`" in message


def test_invalid_toml_and_a_broken_file_leave_the_others_working(tmp_path):
    (tmp_path / "good.toml").write_text(lesson_text(), encoding="utf-8")
    (tmp_path / "bad.toml").write_text('title = "unterminated\n', encoding="utf-8")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00 not utf-8")
    lessons, problems = load_lessons(tmp_path)
    assert list(lessons) == ["good"]
    assert len(problems) == 2
    assert any(p.startswith("Lesson file bad.toml: is not valid TOML") for p in problems)
    assert any(p.startswith("Lesson file binary.toml: cannot be read") for p in problems)


def test_every_tab_and_key_the_lessons_may_name_exists_on_its_page():
    """The registry the parser checks against (ui.stages) is what the pages draw: the tab labels are the ones
    lazy_tabs shows (it takes them from the registry) and each bound key appears in its page's source (the page file
    or its tabs' module, ui/tabs/<page>.py)."""
    for stage in STAGES + EXTRAS:
        page = open(stage.file, encoding="utf-8").read()
        tabs = Path("ui/tabs") / f"{stage.key}.py"
        source = page + (tabs.read_text(encoding="utf-8") if tabs.exists() else "")
        for key in stage.keys:
            assert re.search(rf'key="{re.escape(key)}"', source), (stage.key, key)
        assert bool(stage.tabs) == (f'lazy_tabs("{stage.key}"' in page), stage.key


def test_questions_judge_answers():
    text = lesson_text(GOOD_STEP * 5 + GOOD_STEP + '[steps.question]\nkind = "number"\nprompt = "?"\nanswer = 1\n'
                                                   'tolerance = 0.01\nexplanation = "e"\n')
    question = parse_lesson(text, "q.toml").steps[-1].question
    assert question.is_right(1.005) and question.is_right(0.99) and not question.is_right(1.02)
    patch = parse_lesson(text.replace('kind = "number"', 'kind = "patch"').replace("answer = 1\ntolerance = 0.01",
                                                                                   "answer = [[1, 3], [2, 3]]"), "p.toml")
    assert patch.steps[-1].question.is_right((2, 3)) and not patch.steps[-1].question.is_right((3, 1))


# ---- the lessons in Chinese: lessons/zh/<id>.toml holds only the texts ------------------------------------------------

ZH_DIR = LESSON_DIR / "zh"
CJK = re.compile(r"[\u4e00-\u9fff]")


def both():
    """The shipped lessons in English and in Chinese."""
    english, problems = load_lessons(LESSON_DIR, "en")
    assert problems == []
    chinese, problems = load_lessons(LESSON_DIR, "zh")
    assert problems == [], problems
    return english, chinese


def test_every_shipped_lesson_has_a_complete_chinese_translation():
    english, chinese = both()
    assert sorted(p.stem for p in ZH_DIR.glob("*.toml")) == sorted(english)
    assert set(chinese) == set(english)
    for lesson_id, en in english.items():
        zh = chinese[lesson_id]
        assert zh.id == en.id and len(zh.steps) == len(en.steps), lesson_id
        for text in (zh.title, zh.goal):
            assert CJK.search(text), (lesson_id, text)
        for n, (a, b) in enumerate(zip(en.steps, zh.steps), 1):
            where = f"{lesson_id} step {n}"
            # everything but the texts is the English file's: the step opens the same page, settings and tab
            assert (b.page, b.settings, b.tab, b.query()) == (a.page, a.settings, a.tab, a.query()), where
            assert CJK.search(b.title) and CJK.search(b.text), where
            assert b.title != a.title and b.text != a.text, where
            assert (a.question is None) == (b.question is None), where
            if a.question is None:
                continue
            qa, qb = a.question, b.question
            assert (qb.kind, qb.tolerance, qb.option_keys) == (qa.kind, qa.tolerance, qa.options), where
            assert CJK.search(qb.prompt) and CJK.search(qb.explanation), where
            assert len(qb.options) == len(qa.options), where
            if qa.kind == "choice":
                assert qb.index == qa.index and qb.answer == qb.options[qa.index], where
                assert len(set(qb.options)) == len(qb.options), where
            else:
                assert qb.answer == qa.answer and qb.options == (), where


def test_a_chinese_answer_to_a_choice_question_is_judged_like_the_english_one():
    from ui import answers

    english, chinese = both()
    choices = [(lid, n, s.question, chinese[lid].steps[n - 1].question) for lid, lesson in english.items()
               for n, s in enumerate(lesson.steps, 1) if s.question and s.question.kind == "choice"]
    assert len(choices) >= 6
    for lesson_id, n, en, zh in choices:
        for i, (option_en, option_zh) in enumerate(zip(en.options, zh.options)):
            verdict = en.is_right(option_en)
            assert verdict == (i == en.index), (lesson_id, n, i)
            # the option in Chinese, its position and the English option: one verdict
            assert zh.is_right(option_zh) == zh.is_right(i) == zh.is_right(option_en) == en.is_right(i) == verdict
            # a class records the English option, whichever language the student answered in
            assert answers.stored_answer(zh, i) == answers.stored_answer(en, i) == option_en
            assert answers.answer_label(zh, option_en) == option_zh
        assert not zh.is_right(None) and not zh.is_right("something else") and not zh.is_right(len(zh.options))
    # the teacher's chart in Chinese counts the answers the class recorded (in English), the right one in green
    lesson_id, n, en, zh = choices[0]
    counts = {en.options[0]: 3, en.options[1]: 2}
    bars = answers.answers_figure(zh, counts).data[0]
    assert list(bars.y) == list(zh.options)
    assert list(bars.x) == [3, 2] + [0] * (len(zh.options) - 2)
    assert [c == "#1a9850" for c in bars.marker.color] == [i == zh.index for i in range(len(zh.options))]
    assert answers.answers_figure(en, counts).data[0].x == bars.x


def zh_lesson(tmp_path, translation: str | None, lesson_id: str = "windows-and-patches"):
    """A lesson folder holding one shipped lesson and `translation` as its zh file (None: no zh file)."""
    (tmp_path / f"{lesson_id}.toml").write_text((LESSON_DIR / f"{lesson_id}.toml").read_text(encoding="utf-8"),
                                               encoding="utf-8")
    (tmp_path / "zh").mkdir()
    if translation is not None:
        (tmp_path / "zh" / f"{lesson_id}.toml").write_text(translation, encoding="utf-8")
    return tmp_path


SHIPPED_ZH = (ZH_DIR / "windows-and-patches.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("translation, step, field, says", [
    (None, None, None, "is missing"),
    (SHIPPED_ZH.replace('"h/2 × w/2 × 4C", ', ""), 4, "question.options", "has 3 options, the English question has 4"),
    (SHIPPED_ZH.replace('title = "掩码"\n', ""), 3, "title", "is missing"),
    (SHIPPED_ZH.replace('title = "掩码"\n', 'title = "掩码"\npage = "swin"\n'), 3, None, "unknown field 'page'"),
    (SHIPPED_ZH.replace('prompt = "为什么移位窗口的块需要掩码？"\n', 'prompt = "为什么移位窗口的块需要掩码？"\nanswer = "x"\n'),
     3, "question", "unknown field 'answer'"),
    (SHIPPED_ZH.replace('[steps.question]\nprompt = "为什么移位窗口的块需要掩码？"',
                        '[steps.question]\nprompt = ""'), 3, "question.prompt", "must be a non-empty text"),
    (SHIPPED_ZH.rsplit("[[steps]]", 1)[0], None, "steps", "has 7 [[steps]], the English lesson has 8"),
    (SHIPPED_ZH.replace('title = "折叠回去"\n', 'title = "折叠回去"\n[steps.question]\nprompt = "?"\n'
                                                'explanation = "e"\n'), 8, "question", "has no question"),
    (SHIPPED_ZH.replace('title = "窗口与 patch"', 'title = "窗口与 patch'), None, None, "is not valid TOML"),
])
def test_a_malformed_translation_names_file_step_and_field_and_the_lesson_stays_english(
        tmp_path, monkeypatch, translation, step, field, says):
    import gettext

    from vitviz import i18n

    # the messages' words are checked in English here (the catalog has its own tests); the lessons are read in zh
    monkeypatch.setattr(i18n, "translation", lambda lang: gettext.NullTranslations())
    folder = zh_lesson(tmp_path, translation)
    english, problems = load_lessons(folder, "en")
    assert problems == [] and english["windows-and-patches"].title == "Windows and patches"
    lessons, problems = load_lessons(folder, "zh")
    assert len(problems) == 1, problems
    where = "Lesson file zh/windows-and-patches.toml" + (f", step {step}" if step else "") + (
        f", field `{field}`" if field else "") + ":"
    assert problems[0].startswith(where) and says in problems[0], problems[0]
    assert problems[0].endswith(". Until it is fixed, this lesson is shown in English.")
    # the lesson still works: in English, the same as for an English session
    assert lessons["windows-and-patches"] == english["windows-and-patches"]


def test_a_translation_error_names_where_like_the_lesson_errors():
    from ui.lessons import translate_lesson

    lesson = load_lessons(LESSON_DIR, "en")[0]["windows-and-patches"]
    with pytest.raises(LessonError) as err:
        translate_lesson(lesson, SHIPPED_ZH.replace('options = ["它们绕回到底部和右边", "它们被丢弃", "它们被补零"]\n', ""),
                         "zh/windows-and-patches.toml")
    assert (err.value.file, err.value.step, err.value.field) == ("zh/windows-and-patches.toml", 2, "question.options")
    assert str(err.value) == "Lesson file zh/windows-and-patches.toml, step 2, field `question.options`: is missing"


def test_an_english_lesson_without_a_translation_file_and_an_orphan_translation(tmp_path, monkeypatch):
    import gettext

    from vitviz import i18n

    monkeypatch.setattr(i18n, "translation", lambda lang: gettext.NullTranslations())
    folder = zh_lesson(tmp_path, SHIPPED_ZH)
    (folder / "zh" / "gone.toml").write_text(SHIPPED_ZH, encoding="utf-8")
    lessons, problems = load_lessons(folder, "zh")
    assert lessons["windows-and-patches"].title == "窗口与 patch"
    assert problems == ["Lesson file zh/gone.toml: translates a lesson that does not exist (there is no gone.toml)"]
