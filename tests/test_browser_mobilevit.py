"""The MobileViT page in headless Chromium: patch sizes and input sizes the patch does not divide (every tab of
each, every picture and chart with its text alternative), the patch and stage controls, a click on the offset map,
and choosing a pixel with the keyboard alone, with no exception."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .a11y import tab_to
from .browser import assert_healthy, goto, open_tab, wait_idle

pytestmark = pytest.mark.browser


def open_mobilevit(page, app_url, **params) -> None:
    goto(page, app_url)  # the overview first: a fresh server's very first run must be app.py's navigation
    goto(page, app_url, "mobilevit", **params)
    assert_healthy(page)


def main_text(page) -> str:
    return page.get_by_test_id("stMain").inner_text()


def alternatives(page) -> list[str]:
    """The text alternative of every picture (alt) and chart (aria-label) in the main area."""
    return page.evaluate("""() => [
      ...[...document.querySelectorAll('[data-testid="stMain"] img')].map(i => i.getAttribute('alt')),
      ...[...document.querySelectorAll('[data-testid="stMain"] [data-testid="stPlotlyChart"]')]
        .map(c => c.getAttribute('aria-label'))]""")


TABS = ("Local representation", "Unfold", "Global representation", "Fold", "Fusion", "Receptive field", "Cost")


@pytest.mark.parametrize("params, resized", [
    (dict(), False),  # 224 px: 28 × 28, 2 × 2 patches
    (dict(res="208", ph="3", pw="5", mvstage="3", mvit="mobilevit-s"), True),  # 13 × 13
    (dict(res="256", ph="8", pw="8", mvstage="4"), False),  # one 8 × 8 patch
    (dict(res="96", ph="7", pw="1", mvstage="2"), True),  # 12 × 12
    (dict(img="coffee", aspect="true", res="128", ph="5", pw="3"), True),  # non-square input
])
def test_opens_across_patch_and_input_sizes(page, app_url, params, resized):
    open_mobilevit(page, app_url, **params)
    images = 0
    for label in TABS:
        open_tab(page, label)
        if label == "Unfold":
            assert ("is not a multiple of the" in main_text(page)) == resized
            expect(page.get_by_test_id("stPlotlyChart")).to_have_count(2)  # the offset map and X_U (drawn async)
        if label == "Fold":  # code blocks fill in asynchronously: wait for the fold check's text
            expect(page.locator(".vv-code").filter(has_text="fold(unfold(X_L)) vs X_L")).to_contain_text(
                "✓ exact")
        images += page.get_by_test_id("stMain").get_by_test_id("stImage").count()
        alts = alternatives(page)
        assert all(alt and alt.strip() for alt in alts), (label, alts)  # every picture and chart says what it shows
    assert images >= 25  # photo, feature maps, legend, heads, fields


def test_patch_slider_stage_and_click(page, app_url):
    open_mobilevit(page, app_url, res="256", mvsec="Unfold")
    main = page.get_by_test_id("stMain")
    width = main.get_by_role("slider").nth(1)  # ph, pw: the patch width
    width.focus()
    width.press("ArrowRight")
    wait_idle(page)
    assert re.search(r"[?&]pw=3(&|$)", page.url), page.url
    assert "32 × 32 is not a multiple of the 2 × 3 patch" in main_text(page)
    assert_healthy(page)

    main.get_by_role("radiogroup").get_by_text("3", exact=True).click()
    wait_idle(page)
    assert "mvstage=3" in page.url, page.url
    assert "Stage 3 at this input: H × W = 16 × 16" in main_text(page)
    assert_healthy(page)

    chart = page.get_by_test_id("stPlotlyChart").first  # the offset map: 16 × 18 after the resize
    chart.scroll_into_view_if_needed()
    box = chart.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * (4.5 / 18), box["y"] + box["height"] * (2.5 / 16))
    wait_idle(page)
    assert re.search(r"[?&]mvr=2(&|$)", page.url) and re.search(r"[?&]mvc=4(&|$)", page.url), page.url
    assert "Pixel (r, c) = (2, 4)" in main_text(page)
    assert_healthy(page)


def test_pixel_chosen_with_the_keyboard_alone(page, app_url):
    """From the model control, Tab reaches the labelled pixel inputs; typing a row and a column moves the selection,
    and the offset map's text alternative follows it (2 × 2 patches on 32 × 32: p = 1·2 + 0 = 2, n = 2·16 + 3 = 35)."""
    open_mobilevit(page, app_url, res="256", mvsec="Unfold")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stPlotlyChart")).to_have_count(2)  # the Unfold tab drawn (its charts arrive async)
    main.get_by_role("combobox").first.focus()  # the model: the first control of the page
    for label, value, param in (("Pixel row r (0–31)", "5", "mvr"), ("Pixel column c (0–31)", "6", "mvc")):
        tab_to(page, label, role="number")
        page.keyboard.press("Control+A")
        page.keyboard.type(value)
        page.keyboard.press("Enter")
        wait_idle(page)
        assert re.search(rf"[?&]{param}={value}(&|$)", page.url), page.url
    assert "Pixel (r, c) = (5, 6)" in main_text(page)
    assert_healthy(page)
    expect(main.get_by_test_id("stPlotlyChart").first).to_have_attribute("aria-label", re.compile(
        r"The selected pixel, row 5, column 6, is framed: offset p = 2 \(row 1, column 0 inside its patch\) of patch "
        r"n = 35 "))
