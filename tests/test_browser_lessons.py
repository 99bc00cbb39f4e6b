"""Lessons in headless Chromium: every lesson walked in presenter view at 1280×720 by PageDown (a screenshot per
step, in $VITVIZ_SHOTS when set), a teacher and two students in separate contexts (the students follow, their
answers are counted exactly, a student cannot move the class), and the follower's view at 414 px. What a phone
shows of every page and tab (nothing cut off at 320 px) is tests/test_accessibility.py's."""
from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from ui.lessons import LESSON_DIR, load_lessons
from ui.lesson_routing import SETTING_KEYS

from .browser import assert_healthy, counter, goto, press, wait_idle, wait_step

pytestmark = pytest.mark.browser
LESSONS, _ = load_lessons(LESSON_DIR)


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VITVIZ_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("lesson_id", sorted(LESSONS))
def test_lesson_walked_in_presenter_view_by_page_down(chromium, app_url, lesson_id, tmp_path):
    lesson = LESSONS[lesson_id]
    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        goto(page, app_url)  # a fresh server's first run must be app.py's navigation (see test_browser)
        goto(page, app_url, "", lesson=lesson_id, present="1", hide="code,downloads")
        expect(page.get_by_test_id("stSidebar")).not_to_be_visible()  # presenter view: sidebar collapsed
        for n, step in enumerate(lesson.steps, 1):
            wait_step(page, n)
            assert_healthy(page)
            assert counter(page) == f"{n} / {len(lesson.steps)}"
            query = parse_qs(urlsplit(page.url).query)
            assert query["lesson"] == [lesson_id] and query["step"] == [str(n)], page.url
            # the step's settings, and nothing left over from an earlier step (the URL drops values at their default)
            settings = {k: v[0] for k, v in query.items() if k in SETTING_KEYS}
            assert settings.items() <= step.query().items(), (settings, step.query())
            assert urlsplit(page.url).path.strip("/") in ({"", "overview"} if step.page == "overview" else {step.page})
            expect(page.locator(".st-key-lesson-bar h3")).to_have_text(step.title)
            for intro in page.locator(".st-key-vv-intro").all():  # the step's text stands for the page's intro
                expect(intro).not_to_be_visible()
            for source in page.locator('[class*="st-key-vv-source-"]').all():  # hide=code
                expect(source).not_to_be_visible()
            if step.question is not None:
                expect(page.get_by_test_id("stMain")).to_contain_text("Predict first:")
            page.screenshot(path=str(shots(tmp_path) / f"{lesson_id}-{n}.png"))
            press(page, "PageDown")
        wait_step(page, len(lesson.steps))  # PageDown on the last step stays there
        press(page, "PageUp")
        wait_step(page, len(lesson.steps) - 1)
    finally:
        context.close()


def test_a_class_follows_the_teacher_and_counts_answers(chromium, app_url, tmp_path):
    lesson = LESSONS["windows-and-patches"]
    question = lesson.steps[1].question
    wrong = next(o for o in question.options if o != question.answer)
    teacher_ctx = chromium.new_context(viewport={"width": 1280, "height": 720})
    student_ctx = [chromium.new_context(viewport={"width": 414, "height": 860}) for _ in range(2)]
    try:
        teacher = teacher_ctx.new_page()
        goto(teacher, app_url)
        goto(teacher, app_url, "", lesson="windows-and-patches", present="1")
        teacher.get_by_role("button", name="Start a class").click()
        teacher.wait_for_selector("[data-testid='class-code']", timeout=30_000)
        code = teacher.locator("[data-testid='class-code']").inner_text().strip()
        link = teacher.get_by_test_id("stMain").get_by_text("?join=").inner_text()
        assert link.endswith(f"/?join={code}")
        expect(teacher.get_by_test_id("stImageCaption").filter(has_text="Scan to join")).to_have_count(1)
        students = [ctx.new_page() for ctx in student_ctx]
        for student in students:
            goto(student, app_url, "", join=code)
            wait_step(student, 1)
            expect(student.get_by_test_id("stMain")).to_contain_text(f"Following the teacher · class {code}")
            assert not student.get_by_role("button", name="Start a class").count()
        expect(teacher.locator("[data-testid='class-joined']")).to_contain_text("2 students joined", timeout=10_000)
        teacher.screenshot(path=str(shots(tmp_path) / "class-teacher.png"))

        moved = time.monotonic()
        press(teacher, "PageDown")
        for student in students:
            wait_step(student, 2, timeout=30_000)
        print(f"both students on step 2 {time.monotonic() - moved:.2f} s after the teacher's PageDown")
        for student, given in zip(students, (question.answer, wrong)):
            student.get_by_test_id("stMain").get_by_text(given, exact=True).click()
            wait_idle(student)
            student.get_by_role("button", name="Answer", exact=True).click()
            wait_idle(student)
            assert_healthy(student)
        expect(students[0].get_by_test_id("stAlertContentSuccess").first).to_contain_text("Right")
        expect(students[1].get_by_test_id("stAlertContentError").first).to_contain_text("Not quite")
        answers = teacher.locator("[data-testid='class-answers']")
        expect(answers).to_contain_text(f"{question.answer}: 1", timeout=15_000)
        expect(answers).to_contain_text(f"{wrong}: 1")
        students[1].screenshot(path=str(shots(tmp_path) / "class-student.png"), full_page=True)

        # a student's Next moves only that student (who now explores alone), never the class
        students[1].get_by_role("button", name="Next").click()
        wait_step(students[1], 3)
        expect(students[1].get_by_test_id("stMain")).to_contain_text("Exploring on your own")
        teacher.wait_for_timeout(2_500)  # longer than a poll: the others would have moved by now
        assert counter(teacher) == "2 / 8" and counter(students[0]) == "2 / 8"
        press(teacher, "PageDown")
        wait_step(students[0], 3, timeout=30_000)
        press(teacher, "PageDown")
        wait_step(students[0], 4, timeout=30_000)
        assert counter(students[1]) == "3 / 8"  # exploring: stays
        students[1].get_by_role("button", name="Follow the teacher").click()
        wait_step(students[1], 4, timeout=30_000)
        for page in (teacher, *students):
            assert_healthy(page)
    finally:
        teacher_ctx.close()
        for ctx in student_ctx:
            ctx.close()
