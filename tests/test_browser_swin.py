"""The Swin page in headless Chromium at 1400 × 900: its six tabs clicked through, every window size 2–14 with the
shift slider stepped through every shift 0 … M−1, the window-size slider from the keyboard, and deep links across
stages and patch sizes (every tab of each), with no exception; and on a 390 px phone, every tab: each picture and chart
named by its description, the page's tables and pictures within the screen, the charts leaving a finger's scroll to
the page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .browser import assert_healthy, goto, open_tab, wait_idle

pytestmark = pytest.mark.browser


def open_swin(page, app_url, **params) -> None:
    goto(page, app_url)  # the overview first: a fresh server's very first run must be app.py's navigation
    goto(page, app_url, "swin", **params)
    assert_healthy(page)


TABS = {  # tab label -> the heading drawn inside it, and the plotly charts it holds
    "Partition": ("1 · Window partition", 0),
    "Cyclic shift": ("2 · Cyclic shift", 0),
    "Mask & attention": ("3 · The shift mask", 1),  # the mask
    "Relative position bias": ("4 · Relative position bias", 3),  # table, offsets grid, a query's bias
    "Patch merging": ("5 · Patch merging", 0),
    "Cost": ("6 · What windows save", 1),
}


def main_text(page) -> str:
    return page.get_by_test_id("stMain").inner_text()


def slider(page, label: str):
    return page.get_by_test_id("stMain").get_by_test_id("stSlider").filter(has_text=label).get_by_role("slider")


def test_opens_with_every_part(page, app_url):
    open_swin(page, app_url)
    text = main_text(page)
    assert all(label in text for label in TABS)  # the tab bar
    assert "1 · Window partition" in text and "2 · Cyclic shift" not in text  # only the open tab is drawn
    partition = page.get_by_test_id("stMain").get_by_test_id("stImage").first.locator("img")
    partition.scroll_into_view_if_needed()
    assert partition.bounding_box()["width"] >= 400  # two partition pictures side by side at 1400 px
    for label, (heading, charts) in TABS.items():
        open_tab(page, label)
        assert re.search(r"[?&]swsec=", page.url) or label == "Partition", page.url  # a link opens the same tab
        text = main_text(page)
        assert heading in text, label
        assert [h for h, _ in TABS.values() if h in text] == [heading], label
        expect(page.get_by_test_id("stPlotlyChart")).to_have_count(charts)
        if label == "Cyclic shift":
            # The worked example's st.code blocks render only once the browser has fetched the code component's
            # script, which a cold browser may still be doing when the script run ends.
            expect(page.get_by_test_id("stMain")).to_contain_text("B4 B1 / C4 C1", timeout=30_000)
        if label == "Mask & attention":
            assert "15 of 64 windows" in text


@pytest.mark.parametrize("M", range(2, 15))
def test_every_window_size_and_every_shift(page, app_url, M):
    open_swin(page, app_url, M=str(M), shift="0", swsec="Cyclic shift")
    assert "by (−0, −0)" in main_text(page)
    shift = slider(page, "Shift s")
    assert shift.get_attribute("max") == str(M - 1)
    for s in range(1, M):
        shift.focus()
        shift.press("ArrowRight")
        wait_idle(page)
        assert shift.input_value() == str(s)
        assert_healthy(page)
        assert f"by (−{s}, −{s})" in main_text(page)
    if M != 7:
        assert f"Adapted model: M = {M} instead of the checkpoint's 7." in main_text(page)


def test_window_size_slider_from_the_keyboard_resets_the_shift(page, app_url):
    open_swin(page, app_url, swsec="Cyclic shift")
    m = slider(page, "Window size M")
    m.focus()
    m.press("ArrowRight")
    wait_idle(page)
    assert re.search(r"[?&]M=8(&|$)", page.url), page.url
    assert "shift=" not in page.url  # back at its default, ⌊8/2⌋ = 4
    assert slider(page, "Shift s").input_value() == "4"
    text = main_text(page)
    assert "Adapted model: M = 8 instead of the checkpoint's 7." in text and "(15)² = 225 offsets" in text
    assert "by (−4, −4)" in text
    assert_healthy(page)


@pytest.mark.parametrize("params", [
    dict(swstage="2", swblock="shifted", M="5", shift="1"),
    dict(swstage="3", M="14"),  # 14×14 ≤ 14: one window, no shift
    dict(swstage="4", M="2", swhead="24"),
    dict(swp="16", swstage="2"),
    dict(img="coffee", aspect="true", res="128", M="6", swstage="2"),
    dict(res="64", M="3", swstage="4"),
])
def test_deep_links_across_stages_and_patch_sizes(page, app_url, params):
    open_swin(page, app_url, **params)
    assert "1 · Window partition" in main_text(page)
    images = page.get_by_test_id("stMain").get_by_test_id("stImage")
    images.nth(1).wait_for(timeout=60_000)  # the two partition pictures (the legend is HTML)
    for label, (heading, _) in TABS.items():
        open_tab(page, label)
        assert heading in main_text(page), label
        for key, value in params.items():  # the tab click keeps the deep link's settings
            assert re.search(rf"[?&]{key}={value}(&|$)", page.url), (key, page.url)


PICTURES = {"Partition": 2, "Cyclic shift": 5, "Mask & attention": 5, "Relative position bias": 0, "Patch merging": 5,
            "Cost": 0}  # the pictures of each tab: partitions; roll steps and regions; labels, footprints, mosaics; …


def right_edges(locator) -> list[float]:
    return [box["x"] + box["width"] for box in (element.bounding_box() for element in locator.all())]


def test_a_phone_gets_every_tab_whole_and_described(page, app_url):
    page.set_viewport_size({"width": 390, "height": 844})
    open_swin(page, app_url)
    main = page.get_by_test_id("stMain")
    width = page.evaluate("document.documentElement.clientWidth")
    stages = main.get_by_test_id("stExpander").filter(has_text="The four stages")
    stages.locator("summary").click()
    wait_idle(page)
    tables = main.get_by_test_id("stMarkdownContainer").locator("table")
    assert max(right_edges(stages.locator("table"))) <= width  # five wrapping columns, no sideways scrolling
    for label, (heading, charts) in TABS.items():
        open_tab(page, label)
        images = main.get_by_test_id("stImage").locator("img")
        expect(images).to_have_count(PICTURES[label])
        alts = images.evaluate_all("els => els.map(e => e.getAttribute('alt'))")
        assert all(alt and len(alt.strip()) > 40 for alt in alts), (label, alts)  # a description, not a label
        plots = main.get_by_test_id("stPlotlyChart")
        expect(plots).to_have_count(charts)
        expect(main.locator(".js-plotly-plot")).to_have_count(charts)  # drawn by plotly.js
        names = plots.evaluate_all("els => els.map(e => [e.getAttribute('role'), e.getAttribute('aria-label')])")
        assert all(role == "figure" and name and len(name) > 40 for role, name in names), (label, names)
        drag = main.locator(".js-plotly-plot").evaluate_all("els => els.map(e => e._fullLayout.dragmode)")
        assert drag == [False] * charts, label
        # pictures, charts and the tables of the page's own text (the stage table, the worked example's windows,
        # the first merged group, the costs) within the screen
        assert max(right_edges(images) + right_edges(plots) + right_edges(tables), default=0) <= width, label
        if label == "Cyclic shift":
            expect(tables.filter(has_text="B4 B1 / C4 C1")).to_have_count(1)
        if label == "Mask & attention":
            assert "1776 of them are masked at −100" in names[0][1]
        assert_healthy(page)
