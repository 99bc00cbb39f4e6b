"""Lesson mode in AppTest: every step of every lesson opens on its page with its settings and tab, its question
hides the panel until answered, a malformed lesson file gets its clear message, and a class follows its teacher."""
from __future__ import annotations

import pytest

from tests.apptest import app, assert_clean
from ui import class_session, lesson_routing
from ui.classroom import RedisClassStore
from ui.lessons import LESSON_DIR, PAGES, load_lessons

LESSONS, _ = load_lessons(LESSON_DIR)
STEPS = [(lid, n) for lid, lesson in LESSONS.items() for n in range(1, len(lesson.steps) + 1)]


def counter(at) -> str:
    found = [m.value for m in at.markdown if "lesson-counter" in m.value]
    assert found, "no step counter"
    return found[0].split(">")[1].split("<")[0]


def page_title(page: str) -> str:
    return "How a vision transformer sees your image" if page == "overview" else \
        PAGES[page].title.split("·", 1)[-1].strip()  # a page beyond the pipeline has no number


def answer(at, lesson_id: str, n: int, right: bool = True):
    """Answer the step's question as a student would (the right answer, or a wrong one)."""
    question = LESSONS[lesson_id].steps[n - 1].question
    key = f"{lesson_id}:{n}"
    if question.kind == "choice":
        given = question.answer if right else next(o for o in question.options if o != question.answer)
        at.radio(key=f"q-{key}").set_value(given).run()
        at.button(key=f"qa-{key}").click().run()
    elif question.kind == "number":
        at.number_input(key=f"q-{key}").set_value(question.answer + (0 if right else 7)).run()
        at.button(key=f"qa-{key}").click().run()
    else:
        row, col = question.answer[0] if right else (0, 0)
        p = at.slider(key="ps").value
        at.session_state[f"q-{key}"] = {"selection": {"points": [{"x": (col + 0.5) * p, "y": (row + 0.5) * p}]}}
        at.run()
    assert_clean(at)
    return at


@pytest.mark.parametrize("lesson_id, n", STEPS, ids=[f"{lid}-{n}" for lid, n in STEPS])
def test_every_step_opens_with_its_settings_and_its_question_hides_the_panel(lesson_id, n):
    lesson = LESSONS[lesson_id]
    step = lesson.steps[n - 1]
    at = app(lesson=lesson_id, step=str(n))
    assert_clean(at)
    assert counter(at) == f"{n} / {len(lesson.steps)}"
    assert at.markdown[0].value == f"### {step.title}"
    for key, value in step.settings.items():
        if key in ("img", "model", "ps", "hub", "res", "aspect"):  # the sidebar is drawn on every page
            assert at.session_state[key] == value, key
    titles = [t.value for t in at.title]
    if step.question is None:
        assert titles == [page_title(step.page)]
    else:
        assert titles == [], "the panel must stay hidden until the question is answered"
        assert any(m.value.startswith("**Predict first:**") for m in at.markdown)
        answer(at, lesson_id, n)
        assert [t.value for t in at.title] == [page_title(step.page)]
        assert at.success and at.success[0].value.startswith("**Right**")
    if step.tab:  # the step's tab is the open one (only its content is drawn)
        assert at.session_state[PAGES[step.page].tab_key] == step.tab
    if step.page != "overview":
        # the page's own settings from the step
        for key in PAGES[step.page].keys:
            if key in step.settings:
                assert at.session_state[key] == step.settings[key], key


def test_next_resets_what_the_next_step_does_not_set():
    at = app(lesson="pixels-to-tokens", step="3")
    assert at.slider(key="ps").value == 30
    at.button(key="lesson-next").click().run()
    assert_clean(at)
    assert counter(at) == "4 / 8"
    assert at.slider(key="ps").value == 16  # the checkpoint's own P again
    assert at.query_params["step"] == "4" and at.query_params["lesson"] == "pixels-to-tokens"
    at.button(key="lesson-prev").click().run()
    assert counter(at) == "3 / 8" and at.slider(key="ps").value == 30


def test_trained_weights_off_for_one_step_only():
    steps = LESSONS["attention"].steps
    n = next(i for i, s in enumerate(steps, 1) if s.settings.get("hub") is False)
    at = app(lesson="attention", step=str(n))
    assert at.toggle(key="hub").value is False
    at.button(key="lesson-next").click().run()
    assert_clean(at)
    assert at.toggle(key="hub").value is True


def test_a_wrong_answer_is_told_with_the_explanation_and_stays_with_the_session():
    at = app(lesson="pixels-to-tokens", step="2")
    answer(at, "pixels-to-tokens", 2, right=False)
    question = LESSONS["pixels-to-tokens"].steps[1].question
    assert at.error[0].value.startswith("**Not quite** — you answered 203; the answer is 196.")
    assert question.explanation in at.error[0].value
    assert [t.value for t in at.title] == ["Patching"]  # the panel is revealed all the same
    at.button(key="lesson-next").click().run()
    at.button(key="lesson-prev").click().run()
    assert at.error[0].value.startswith("**Not quite**")  # the answer stays with the session
    assert [t.value for t in at.title] == ["Patching"]


def test_a_patch_question_is_answered_by_clicking_the_patch():
    lesson_id, n = next((lid, i) for lid, lesson in LESSONS.items() for i, s in enumerate(lesson.steps, 1)
                        if s.question and s.question.kind == "patch")
    at = app(lesson=lesson_id, step=str(n))
    answer(at, lesson_id, n, right=False)
    assert at.error[0].value.startswith("**Not quite** — you answered 0,0;")


def test_presenter_view_can_reveal_and_hide_flags_are_checked():
    at = app(lesson="attention", step="1", present="1", hide="code,downloads,frobs")
    assert_clean(at)
    assert any("Unknown hide flag frobs" in w.value for w in at.warning)
    assert [t.value for t in at.title] == []
    at.button(key="reveal-attention:1").click().run()
    assert_clean(at)
    assert at.info and at.info[0].value.startswith("**Answer:** 6.")
    assert [t.value for t in at.title] == ["Attention maps"]


def test_an_unknown_lesson_and_a_malformed_file_get_a_clear_sentence(tmp_path, monkeypatch):
    good = (LESSON_DIR / "attention.toml").read_text(encoding="utf-8")
    (tmp_path / "attention.toml").write_text(good, encoding="utf-8")
    (tmp_path / "broken.toml").write_text(good.replace('tab = "Rollout"', 'tab = "Roll out"'), encoding="utf-8")
    monkeypatch.setattr(lesson_routing, "LESSON_DIR", tmp_path)
    at = app(lesson="attention")
    assert_clean(at)
    assert counter(at) == "1 / 10"
    problems = [w.value for w in at.warning]
    assert any(p.startswith("Lesson file broken.toml, step 6, field `tab`: 'Roll out' is not a tab of the "
                            "attention page") for p in problems), problems
    at = app(lesson="broken")
    assert_clean(at)
    assert any(w.value.startswith("There is no lesson “broken”. The lessons are: attention.") for w in at.warning)
    assert [t.value for t in at.title] == ["How a vision transformer sees your image"]  # the app still works


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_class_follows_its_teacher_and_counts_answers_exactly(kind, request, monkeypatch):
    if kind == "redis":  # as on a server of several processes (VITVIZ_REDIS_URL)
        monkeypatch.setattr(class_session, "STORE", RedisClassStore(request.getfixturevalue("redis_url")))
    teacher = app(lesson="windows-and-patches")
    teacher.button(key="class-start").click().run()
    assert_clean(teacher)
    code = teacher.session_state["teaching"].code
    token = teacher.session_state["teaching"].token
    assert any(code in m.value for m in teacher.markdown)
    assert not any(token in m.value for m in teacher.markdown)  # the secret is never drawn
    students = [app(join=code) for _ in range(2)]
    for s in students:
        assert_clean(s)
        assert counter(s) == "1 / 8"
        assert not any(b.key == "class-start" for b in s.button)  # a student cannot start or move the class
    assert class_session.STORE.state(code).joined == 2
    teacher.button(key="lesson-next").click().run()
    assert class_session.STORE.state(code).step == 2
    for s in students:
        s.run()  # the follower's poll (AppTest reruns the whole script for a fragment)
        assert_clean(s)
        assert counter(s) == "2 / 8"
    answer(students[0], "windows-and-patches", 2, right=True)
    answer(students[1], "windows-and-patches", 2, right=False)
    question = LESSONS["windows-and-patches"].steps[1].question
    wrong = next(o for o in question.options if o != question.answer)
    assert class_session.STORE.answers(code, 2) == {question.answer: 1, wrong: 1}
    teacher.run()
    assert any(f"{question.answer}: <b>1</b>" in m.value for m in teacher.markdown)
    # a student stepping alone explores on their own and does not move the class
    students[1].button(key="lesson-next").click().run()
    assert counter(students[1]) == "3 / 8" and class_session.STORE.state(code).step == 2
    assert students[1].session_state["class"].following is False
    teacher.button(key="lesson-next").click().run()
    students[1].run()
    assert counter(students[1]) == "3 / 8"  # exploring: not moved
    students[1].button(key="class-follow").click().run()
    assert counter(students[1]) == "3 / 8" and students[1].session_state["class"].following is True
    teacher.button(key="lesson-next").click().run()
    for s in students:
        s.run()
        assert counter(s) == "4 / 8"


def test_a_wrong_join_code_says_so():
    at = app(join="ZZZZZZZ")
    assert_clean(at)
    assert any(w.value.startswith("There is no class with the code ZZZZZZZ") for w in at.warning)
