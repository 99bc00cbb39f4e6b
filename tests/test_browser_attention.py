"""The attention page in headless Chromium: its six tabs clicked through, a click on a patch of the enlarged head,
layer and head changes, and a non-square input, with no exception."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from .a11y import tab_to
from .browser import assert_healthy, goto, open_tab, wait_idle

pytestmark = pytest.mark.browser


def open_attention(page, app_url, **params) -> None:
    goto(page, app_url)  # the overview first: a fresh server's very first run must be app.py's navigation
    goto(page, app_url, "attention", **params)
    assert_healthy(page)


def click_enlarged_head(page, fx: float, fy: float) -> None:
    """Click at a fraction (fx, fy) of the enlarged head's plot area (the first plotly chart on the page) and wait
    until the app has taken the click (the URL then says query=patch)."""
    chart = page.get_by_test_id("stPlotlyChart").first
    for attempt in range(3):
        chart.scroll_into_view_if_needed()
        page.wait_for_timeout(500)  # let the pictures above finish their layout
        box = chart.locator(".nsewdrag").first.bounding_box()
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        try:
            # On a loaded machine plotly may still be laying the chart out: then the click misses, and a student
            # would click again.
            wait_until(page, "query=patch", timeout=20_000)
            return
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise


def wait_until(page, in_url: str, timeout: float = 60_000) -> None:
    """Wait for a rerun that puts `in_url` into the address (Streamlit rewrites it with history.replaceState)."""
    page.wait_for_function(f"() => location.search.includes({in_url!r})", timeout=timeout)
    wait_idle(page)


def first_subheader(page) -> str:
    return page.locator("h3").first.inner_text()


TABS = {"All heads": "where CLS looks", "One head, step by step": "enlarged", "Whole matrix": "whole attention matrix",
        "DINO masks": "thresholded (DINO)", "Rollout": "rollout", "Distance vs depth": "Mean attention distance"}


def test_every_tab(page, app_url):
    open_attention(page, app_url)
    for label, heading in TABS.items():
        open_tab(page, label)
        assert heading in first_subheader(page), label
        assert [t for t, h in TABS.items() if h in page.get_by_test_id("stMain").inner_text()] == [label]


def test_click_a_patch_then_change_layer_and_head(page, app_url):
    open_attention(page, app_url, atsec="One head, step by step")
    assert "Head 1 enlarged" in first_subheader(page)
    click_enlarged_head(page, 0.5 / 14 + 5 / 14, 0.5 / 14 + 3 / 14)  # patch (3, 5) of the 14 × 14 grid
    assert re.search(r"[?&]patch=47(&|$)", page.url) and "query=patch" in page.url, page.url
    assert "The computation for patch (3, 5)" in page.get_by_test_id("stMain").inner_text()
    open_tab(page, "All heads")
    assert "where patch (3, 5) looks" in first_subheader(page)

    slider = page.get_by_test_id("stMain").get_by_role("slider").first  # the layer slider
    slider.focus()
    slider.press("ArrowLeft")
    wait_until(page, "layer=11")
    assert first_subheader(page).startswith("Layer 11: where patch (3, 5)")

    page.get_by_role("radiogroup", name="Head").get_by_role("radio", name="3", exact=True).click()
    wait_until(page, "head=3")
    open_tab(page, "One head, step by step")
    assert page.get_by_text("Head 3 enlarged").count() == 1
    assert_healthy(page)


def test_non_square_input_click(page, app_url):
    open_attention(page, app_url, img="coffee", aspect="true", ps="24", atsec="One head, step by step")
    click_enlarged_head(page, 0.02, 0.05)  # top-left corner: patch (0, 0)
    assert "query=patch" in page.url, page.url  # patch 0 is the number input's default: not in the URL
    open_tab(page, "All heads")
    assert "where patch (0, 0) looks" in first_subheader(page)
    assert_healthy(page)


def test_the_query_patch_is_chosen_with_the_keyboard_alone(page, app_url):
    """From the layer slider, Tab reaches the query control (a radio group: an arrow moves to *patch*, Space picks
    it), then the patch's number box (typing 47 and Enter picks patch (3, 5)): no pointer on the chart."""
    open_attention(page, app_url, atsec="One head, step by step")
    page.get_by_test_id("stMain").get_by_role("slider").first.focus()
    tab_to(page, "CLS", role="radio")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.innerText.trim()") == "patch"
    page.keyboard.press("Space")
    wait_until(page, "query=patch")
    tab_to(page, "Selected patch", role="number")
    page.keyboard.press("Control+A")
    page.keyboard.type("47")
    page.keyboard.press("Enter")
    wait_until(page, "patch=47")
    assert "The computation for patch (3, 5)" in page.get_by_test_id("stMain").inner_text()
    chart = page.get_by_test_id("stMain").get_by_role("figure").first  # what a screen reader announces
    assert (chart.get_attribute("aria-label") or "").startswith("Layer 12, head 1, query patch (3, 5): ")
    assert_healthy(page)
