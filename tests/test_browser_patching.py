"""Pages 1–2 in headless Chromium: the patch-size slider updates the numbers, a click on the figure selects a
patch, and the selection carries over to the Flattening page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .browser import assert_healthy, goto, wait_idle

pytestmark = pytest.mark.browser


def metric(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text().strip()


def assert_selected(page, index: int) -> None:
    """The selected-patch input shows `index` (the input's value can lag the script run by a frame or two)."""
    expect(page.get_by_test_id("stNumberInput").locator("input").first).to_have_value(str(index), timeout=15_000)


def click_patch(page, row: int, col: int, p: int) -> None:
    """Click the centre of patch (row, col) on the first plotly figure (the patch grid)."""
    chart = page.get_by_test_id("stPlotlyChart").first
    chart.locator(".js-plotly-plot").wait_for(timeout=30_000)  # plotly.js loads lazily, after the script run
    chart.scroll_into_view_if_needed()
    x, y = chart.evaluate(
        """(el, [x, y]) => {
            const gd = el.querySelector('.js-plotly-plot');
            const fl = gd._fullLayout, box = gd.getBoundingClientRect();
            return [box.left + fl.xaxis._offset + fl.xaxis.l2p(x), box.top + fl.yaxis._offset + fl.yaxis.l2p(y)];
        }""",
        [(col + 0.5) * p, (row + 0.5) * p],
    )
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    wait_idle(page)


def test_slider_moves_the_numbers_and_a_click_selects_a_patch(page, app_url):
    goto(page, app_url)  # a fresh server runs the entry script first (see the report on deep links)
    goto(page, app_url, "patching")
    assert_healthy(page)
    assert (metric(page, "Patch P"), metric(page, "Grid h × w"), metric(page, "Patches N")) == ("16", "14×14", "196")

    slider = page.get_by_test_id("stSidebar").get_by_role("slider").first
    slider.focus()
    slider.press("ArrowRight")
    wait_idle(page)
    expect(page).to_have_url(re.compile(r"[?&]ps=17(&|$)"), timeout=15_000)
    assert (metric(page, "Patch P"), metric(page, "Grid h × w"), metric(page, "Patches N")) == ("17", "13×13", "169")
    assert "does not divide" in page.get_by_test_id("stAlertContentWarning").first.inner_text()
    assert_healthy(page)

    assert_selected(page, 0)
    click_patch(page, row=5, col=7, p=17)
    assert_selected(page, 5 * 13 + 7)
    expect(page).to_have_url(re.compile(r"[?&]patch=72(&|$)"), timeout=15_000)
    click_patch(page, row=0, col=2, p=17)
    assert_selected(page, 2)
    assert_healthy(page)

    page.get_by_test_id("stSidebarNav").get_by_text("Flattening").click()
    wait_idle(page)
    assert "flattening" in page.url
    assert_selected(page, 2)
    assert page.get_by_text("Patch 2 read as a vector of 17·17·3 = 867 numbers").count() == 1
    click_patch(page, row=12, col=12, p=17)
    assert_selected(page, 168)
    assert_healthy(page)


def test_typed_patch_number_moves_the_outline_and_the_gallery(page, app_url):
    goto(page, app_url)
    goto(page, app_url, "patching", ps="64", patch="4")
    assert_selected(page, 4)
    assert "Patch 4 is row 1, column 1" in page.get_by_test_id("stMain").inner_text()
    number = page.get_by_test_id("stNumberInput").locator("input").first
    number.fill("8")
    number.press("Enter")
    wait_idle(page)
    assert_selected(page, 8)
    assert "Patch 8 is row 2, column 2" in page.get_by_test_id("stMain").inner_text()
    expect(page).to_have_url(re.compile(r"[?&]patch=8(&|$)"), timeout=15_000)
    assert_healthy(page)


def test_the_keyboard_alone_selects_a_patch_and_the_descriptions_follow(page, app_url):
    """WCAG 2.1.1: Tab reaches the labelled selected-patch input (the keyboard's way to choose what a click on the grid
    chooses); typing a number selects that patch, and the grid's, the zoom's and the gallery's text alternatives then
    describe it."""
    goto(page, app_url)
    goto(page, app_url, "patching", ps="32", patch="3")
    picker = page.get_by_role("spinbutton", name="Selected patch (0 – 48, raster order)")
    for _ in range(80):
        page.keyboard.press("Tab")
        if picker.evaluate("e => e === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the selected-patch input")
    page.keyboard.press("Control+A")
    page.keyboard.type("10")
    page.keyboard.press("Enter")
    wait_idle(page)
    assert_selected(page, 10)
    expect(page).to_have_url(re.compile(r"[?&]patch=10(&|$)"), timeout=15_000)
    described = {
        "figure": r"Patch 10 is framed in yellow and black: row 1 of 7, column 3 of 7, pixels x = 96–127, y = 32–63",
        "img": r"Patch 10, framed in yellow and black, is tile 4 of line 2 of 7",
    }
    for role, text in described.items():
        expect(page.get_by_role(role, name=re.compile(text))).to_have_count(1, timeout=15_000)
    expect(page.get_by_role("figure", name=re.compile(r"^Patch 10 enlarged: 32 × 32 pixels × 3 channels"))
           ).to_have_count(1, timeout=15_000)
    assert_healthy(page)
