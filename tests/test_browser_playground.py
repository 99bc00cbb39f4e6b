"""The playground in Chromium: Start from the keyboard, the curve moves while the page stays idle between its live redraws (the step
counter grows with no click), Pause stops the timer, and the live views pass axe at 390 px with nothing cut off at
320 px and every chart's drag mode off."""
from __future__ import annotations

import re

import pytest

from .a11y import REFLOW, WIDTHS, axe_source, axe_violations, blocking, cut_off, report, tab_to
from .browser import assert_healthy, goto, wait_idle
from .test_accessibility import CHART_PROBLEMS

pytestmark = pytest.mark.browser
PROGRESS = "[data-testid='stMain'] [data-testid='stProgress']"
STEP = re.compile(r"step (\d+) of (\d+)")


def shown_step(page) -> int:
    """The step the progress line shows ("Run 3: training, step 40 of 300 · …")."""
    found = STEP.search(page.locator(PROGRESS).first.inner_text())
    return int(found.group(1)) if found else -1


def test_start_watch_the_curve_move_pause(chromium, app_url):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        goto(page, app_url)  # a fresh server's first run must be app.py's navigation (see test_browser)
        goto(page, app_url, "playground")
        tab_to(page, "Start", "button")  # by keyboard alone, as every control of the page
        page.keyboard.press("Enter")
        page.wait_for_selector(PROGRESS)
        # the live part redraws itself: the step grows twice with no click (waits for states, not seconds)
        page.wait_for_function("(s) => /step ([1-9]\\d*) of/.test(document.querySelector(s)?.innerText || '')",
                               arg=PROGRESS, timeout=120_000)
        first = shown_step(page)
        page.wait_for_function(
            "([s, n]) => { const m = /step (\\d+) of/.exec(document.querySelector(s)?.innerText || '');"
            " return m && +m[1] > n; }", arg=[PROGRESS, first], timeout=120_000)
        page.wait_for_function("() => document.querySelectorAll(\"[data-testid='stMain'] .js-plotly-plot\").length >= 2",
                               timeout=60_000)  # loss and accuracy (Plotly's script loads on first use)
        page.locator(".st-key-pg-pause button").focus()
        page.keyboard.press("Space")
        page.wait_for_function("(s) => /: paused, step/.test(document.querySelector(s)?.innerText || '')",
                               arg=PROGRESS, timeout=60_000)
        wait_idle(page)
        assert_healthy(page)
        paused = shown_step(page)
        page.wait_for_timeout(1500)  # no timer while paused: nothing moves (three redraws' worth)
        assert shown_step(page) == paused
        # the live views, every picture with its text alternative
        alts = page.locator("[data-testid='stMain'] img").evaluate_all("(imgs) => imgs.map(i => i.alt)")
        assert alts and all(alt.strip() for alt in alts), alts
        axe = axe_source()
        page.set_viewport_size({"width": WIDTHS["phone"][0], "height": WIDTHS["phone"][1]})
        page.wait_for_timeout(400)
        found = blocking(axe_violations(page, axe))
        assert not found, report(found)
        assert page.evaluate(CHART_PROBLEMS) == []
        page.set_viewport_size({"width": REFLOW[0], "height": REFLOW[1]})
        page.wait_for_timeout(400)
        assert cut_off(page) == []
    finally:
        context.close()
