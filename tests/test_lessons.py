"""Lesson files without Streamlit: the parser's messages name the file, the step and the field, a broken file
leaves the others working, and the shipped lessons are valid and cover what the three lessons must."""
from __future__ import annotations

import re

import pytest

from ui.lessons import LESSON_DIR, LessonError, load_lessons, parse_lesson
from ui.stages import STAGES

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
    assert set(lessons) == {"pixels-to-tokens", "attention", "windows-and-patches"}
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
    lazy_tabs shows (it takes them from the registry) and each bound key appears in its page's source."""
    for stage in STAGES:
        source = open(stage.file, encoding="utf-8").read()
        for key in stage.keys:
            assert re.search(rf'key="{re.escape(key)}"', source), (stage.key, key)
        assert bool(stage.tabs) == (f'lazy_tabs("{stage.key}"' in source), stage.key


def test_questions_judge_answers():
    text = lesson_text(GOOD_STEP * 5 + GOOD_STEP + '[steps.question]\nkind = "number"\nprompt = "?"\nanswer = 1\n'
                                                   'tolerance = 0.01\nexplanation = "e"\n')
    question = parse_lesson(text, "q.toml").steps[-1].question
    assert question.is_right(1.005) and question.is_right(0.99) and not question.is_right(1.02)
    patch = parse_lesson(text.replace('kind = "number"', 'kind = "patch"').replace("answer = 1\ntolerance = 0.01",
                                                                                   "answer = [[1, 3], [2, 3]]"), "p.toml")
    assert patch.steps[-1].question.is_right((2, 3)) and not patch.steps[-1].question.is_right((3, 1))
