"""The keyboard alone, in Chromium: Tab / Shift+Tab, the arrows, Enter and Space, never the mouse (WCAG 2.1.1), each
focused control showing its focus (2.4.7). On the attention page: a slider, the query, a patch (its number field) and
a tab; in a lesson: a patch question answered by its row and column, a step, a choice question; in a class: a student
on a phone joins from the link, follows the teacher's steps and answers. Each move asserts the app's state (the URL's
bound settings, the open tab, the step, the verdict); the lesson bar, its questions and the class panels (which
tests/test_accessibility.py's tour does not open) are checked with axe-core on the way."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from ui.lessons import LESSON_DIR, load_lessons

from .a11y import WIDTHS, axe_source, axe_violations, blocking, focus_is_visible, focused, report, tab_to
from .browser import assert_healthy, counter, goto, press, wait_idle, wait_step

pytestmark = pytest.mark.browser
LESSONS, _ = load_lessons(LESSON_DIR)


def query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def step_to(page, value: int, limit: int = 12) -> None:
    """Press ↑ or ↓ in the focused number field until it shows `value` (Streamlit applies each step: a rerun, waited
    for before the next key), then Enter."""
    for _ in range(limit):
        now = focused(page)["value"]
        if now == str(value):
            break
        page.keyboard.press("ArrowUp" if now in ("", None) or int(now) < value else "ArrowDown")
        wait_idle(page)
    assert focused(page)["value"] == str(value)
    page.keyboard.press("Enter")
    wait_idle(page)


def answer_choice(page, question) -> None:
    """Answer a choice question rightly: Tab into its options (a radio group: the first option), ↓ to the right one,
    Space, Tab to Answer, Enter; the verdict says Right."""
    tab_to(page, question.options[0], role="radio")
    for _ in range(question.index):
        page.keyboard.press("ArrowDown")
    assert focused(page)["name"] == question.options[question.index]
    page.keyboard.press("Space")
    wait_idle(page)
    tab_to(page, "Answer", role="button")
    page.keyboard.press("Enter")
    wait_idle(page)
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text("Right")


def assert_axe_clean(page, where: str) -> None:
    found = blocking(axe_violations(page, axe_source()))
    assert not found, f"{where}:\n" + report(found)


def test_a_slider_the_query_a_patch_and_a_tab_by_keyboard(page, app_url):
    goto(page, app_url, "attention")
    depth = int(page.get_by_role("slider", name="Layer").get_attribute("max"))
    tab_to(page, "Layer", role="range")
    page.keyboard.press("ArrowLeft")
    wait_idle(page)
    assert query(page)["layer"] == str(depth - 1)
    assert focus_is_visible(page)

    tab_to(page, "CLS", role="radio")  # the query token: CLS, or (the next option) the selected patch
    page.keyboard.press("ArrowRight")  # moves the focus in the group; Space chooses
    page.keyboard.press("Space")
    wait_idle(page)
    assert query(page)["query"] == "patch"
    assert focus_is_visible(page)

    tab_to(page, "Selected patch", role="number")
    step_to(page, 3)
    assert query(page)["patch"] == "3"
    assert focus_is_visible(page)

    tab_to(page, "All heads", role="tab")
    page.keyboard.press("ArrowRight")  # the next tab, opened at once
    wait_idle(page)
    assert query(page)["atsec"] == "One head, step by step"
    expect(page.get_by_test_id("stMain").get_by_role("tab", selected=True)).to_have_text("One head, step by step")
    assert focused(page)["name"] == "One head, step by step"  # the keyboard stays there
    assert focus_is_visible(page)
    assert_healthy(page)


def test_a_tab_that_drops_the_focus_during_a_long_run_gets_it_back(page, app_url):
    """Streamlit disables the tab bar while a run that a tab started lasts longer than a moment: the open tab loses
    its tabindex and the browser moves the focus to the page, so the next Tab would start again from the top (seen
    on a loaded host). The accessibility script gives the focus back once the tab takes it again, and only then:
    not when the student has moved the focus elsewhere meanwhile. Streamlit's two attribute changes are made here by
    hand, so that the test does not depend on how long a run takes."""
    goto(page, app_url, "attention")
    tab_to(page, "All heads", role="tab")
    disable = """() => { const t = document.activeElement; t.setAttribute('aria-disabled', 'true');
      t.removeAttribute('tabindex'); t.setAttribute('data-vv-test', ''); }"""
    enable = """() => { const t = document.querySelector('[data-vv-test]'); t.removeAttribute('aria-disabled');
      t.setAttribute('tabindex', '0'); t.removeAttribute('data-vv-test'); }"""
    page.evaluate(disable)
    page.wait_for_function("() => document.activeElement === document.body")
    page.evaluate(enable)
    page.wait_for_function("() => document.activeElement.getAttribute('role') === 'tab'")
    assert focused(page)["name"] == "All heads" and focus_is_visible(page)

    page.evaluate(disable)
    page.wait_for_function("() => document.activeElement === document.body")
    elsewhere = tab_to(page, "Layer", role="range")  # the student moves on meanwhile
    page.evaluate(enable)
    page.wait_for_timeout(300)
    assert focused(page)["name"] == elsewhere["name"]


RUNS = """() => { window.vvRuns = 0;
  new MutationObserver(() => { if (document.querySelector('[data-testid="stApp"]')
    .getAttribute('data-test-script-state') === 'running') window.vvRuns++; })
    .observe(document.querySelector('[data-testid="stApp"]'), {attributes: true}); }"""


def test_a_letter_key_does_not_rerun_the_page(page, app_url):
    """WCAG 2.1.4: Streamlit reruns on a bare "r" (ui/presenter.py's script stops it) and opens its clear-cache
    dialog on "c" (off with client.toolbarMode = "minimal"). A rerun shows as the app's script state going to
    "running": the same watch sees the run that a real change starts."""
    goto(page, app_url, "attention")
    page.evaluate(RUNS)
    for key in ("r", "R", "c"):
        page.keyboard.press(key)
    page.wait_for_timeout(1_000)  # a rerun request is sent at once; nothing may have started after a second
    assert page.evaluate("() => window.vvRuns") == 0
    assert page.get_by_role("dialog").count() == 0
    tab_to(page, "Layer", role="range")
    page.keyboard.press("ArrowLeft")
    wait_idle(page)
    assert page.evaluate("() => window.vvRuns") >= 1


def test_a_lesson_by_keyboard_a_patch_question_a_step_and_a_choice(page, app_url):
    lesson = LESSONS["pixels-to-tokens"]
    n = next(i for i, s in enumerate(lesson.steps, 1) if s.question and s.question.kind == "patch")
    (row, col), = lesson.steps[n - 1].question.answer
    goto(page, app_url, "", lesson="pixels-to-tokens", step=str(n))
    tab_to(page, "Row", role="number")
    step_to(page, row)
    tab_to(page, "Column", role="number")
    step_to(page, col)
    tab_to(page, "Answer", role="button")
    page.keyboard.press("Enter")
    wait_idle(page)
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text(f"Right — {row},{col}.")
    assert_axe_clean(page, "a lesson step's patch question, answered")

    tab_to(page, "Next", role="button", key="Shift+Tab")
    page.keyboard.press("Enter")
    wait_step(page, n + 1)
    assert focus_is_visible(page)
    assert counter(page) == f"{n + 1} / {len(lesson.steps)}" and query(page)["step"] == str(n + 1)

    answer_choice(page, lesson.steps[n].question)
    assert_healthy(page)


def test_a_student_on_a_phone_joins_and_follows_a_class_by_keyboard(chromium, app_url):
    teacher_ctx = chromium.new_context(viewport={"width": WIDTHS["projector"][0], "height": WIDTHS["projector"][1]})
    student_ctx = chromium.new_context(viewport={"width": WIDTHS["phone"][0], "height": WIDTHS["phone"][1]})
    try:
        teacher, student = teacher_ctx.new_page(), student_ctx.new_page()
        goto(teacher, app_url, "", lesson="windows-and-patches", present="1")
        tab_to(teacher, "Start a class", role="button")
        teacher.keyboard.press("Enter")
        teacher.wait_for_selector("[data-testid='class-code']", timeout=30_000)
        code = teacher.locator("[data-testid='class-code']").inner_text().strip()

        goto(student, app_url, "", join=code)
        wait_step(student, 1)
        expect(student.get_by_test_id("stMain")).to_contain_text(f"Following the teacher · class {code}")
        press(teacher, "PageDown")
        wait_step(student, 2, timeout=30_000)

        question = LESSONS["windows-and-patches"].steps[1].question
        answer_choice(student, question)
        expect(teacher.locator("[data-testid='class-answers']")).to_contain_text(f"{question.answer}: 1",
                                                                                 timeout=15_000)
        assert_axe_clean(student, "a following student's phone, question answered")
        assert_axe_clean(teacher, "the teacher's panel with the class's answers")

        press(teacher, "PageDown")  # the class moves on, and the student's page with it
        wait_step(student, 3, timeout=30_000)
        assert counter(student) == counter(teacher) == "3 / 8"
        for each in (teacher, student):
            assert_healthy(each)
    finally:
        teacher_ctx.close()
        student_ctx.close()
