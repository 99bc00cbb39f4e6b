"""The "Linear projection" and "Position embeddings" pages in headless Chromium: they render their charts, moving the
sidebar's patch-size slider updates the numbers with no exception, every picture and chart carries its text
alternative, and on a 320 px phone the equations and charts fit the page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .browser import assert_healthy, goto, wait_idle

pytestmark = pytest.mark.browser


def metric(page, label: str) -> str:
    """The value shown by the st.metric with this label."""
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text().strip()


def expect_charts(page, at_least: int) -> None:
    """Wait until `at_least` plotly figures are drawn: Streamlit loads plotly.js lazily, so a figure's element
    appears some time after the script run that sent it has ended."""
    expect(page.get_by_test_id("stMain").locator(".js-plotly-plot").nth(at_least - 1)).to_be_attached(timeout=30_000)


def text_alternatives(page) -> list[str]:
    """The alt of every picture and the label of every chart in the page's main area (Streamlit writes a chart's alt
    as the aria-label of its figure)."""
    return page.get_by_test_id("stMain").evaluate("""main => [
        ...[...main.querySelectorAll('[data-testid="stImage"] img')].map(img => img.getAttribute('alt')),
        ...[...main.querySelectorAll('[data-testid="stPlotlyChart"]')].map(
            figure => figure.getAttribute('aria-label'))]""")


def assert_described(page, pictures: int, charts: int) -> None:
    """`pictures` pictures and `charts` charts, each with a text alternative of a sentence or more."""
    texts = text_alternatives(page)
    assert len(texts) == pictures + charts and all(t and len(t.split()) >= 8 for t in texts), texts


def overflowing(page) -> list[str]:
    """What of the equations and charts reaches past the right edge of the window (KaTeX's hidden MathML copy, which
    is clipped to one pixel, left out)."""
    return page.evaluate("""() => { const width = document.documentElement.clientWidth;
        return [...document.querySelectorAll('.katex-html, .js-plotly-plot, [data-testid="stImage"] img')]
            .filter(e => e.getBoundingClientRect().right > width + 0.5)
            .map(e => e.className + ' ' + Math.round(e.getBoundingClientRect().right)); }""")


def move_patch_slider(page, key: str, times: int) -> None:
    slider = page.get_by_test_id("stSidebar").get_by_role("slider").first
    slider.focus()
    for _ in range(times):
        slider.press(key)
    wait_idle(page)


def open_stage(page, app_url, path: str) -> None:
    # A fresh server runs deep links as legacy pages/ scripts until app.py's st.navigation has run once
    # (Streamlit's PagesManager.uses_pages_directory); open the app's root first so this test checks the page.
    goto(page, app_url)
    goto(page, app_url, path)


def test_projection_page_follows_the_patch_size_slider(page, app_url):
    open_stage(page, app_url, "projection")
    assert_healthy(page)
    assert metric(page, "Patches N") == "196" and metric(page, "Tokens (N, D)") == "(196, 384)"
    expect_charts(page, 2)  # variance bar and token heatmap
    assert_described(page, pictures=4, charts=2)  # filters, components, the crop, the PCA colours
    assert page.get_by_text("P = 16 is the checkpoint's own patch size").count() == 1
    move_patch_slider(page, "ArrowRight", 1)  # P = 17: 224 is not a multiple, 13 × 13 patches
    assert re.search(r"[?&]ps=17", page.url), page.url
    assert_healthy(page)
    assert metric(page, "Patches N") == "169" and metric(page, "Patch vector P²·C") == "867"
    assert float(metric(page, "max |Conv2d − Linear| over all tokens")) < 1e-4
    assert page.get_by_text("PI-resized filter 0: 17×17", exact=False).count() >= 1


def test_position_page_follows_the_patch_size_slider(page, app_url):
    open_stage(page, app_url, "position")
    assert_healthy(page)
    assert metric(page, "Patch grid") == "14 × 14" and metric(page, "Sequence length 1+N") == "197"
    expect_charts(page, 2)  # learned and sin-cos similarity grids
    assert_described(page, pictures=2, charts=2)  # the crop and the shuffled patches
    move_patch_slider(page, "ArrowLeft", 2)  # P = 14: a 16 × 16 grid, E_pos interpolated from 14 × 14
    assert re.search(r"[?&]ps=14", page.url), page.url
    assert_healthy(page)
    assert metric(page, "Patch grid") == "16 × 16" and metric(page, "E_pos shape") == "(257, 384)"
    assert page.get_by_role("heading", name="Interpolated: 16×16").count() == 1
    expect_charts(page, 4)
    assert_described(page, pictures=2, charts=4)
    assert any(t.startswith("Position similarity, E_pos interpolated to 16 × 16: ") for t in text_alternatives(page))


@pytest.mark.parametrize("path", ["projection", "position"])
def test_a_phone_shows_the_whole_equations_and_charts(page, app_url, path):
    """At 320 CSS px (WCAG 1.4.10) the long equations wrap in pieces and the charts and pictures fit the width."""
    page.set_viewport_size({"width": 320, "height": 720})
    open_stage(page, app_url, path)
    assert_healthy(page)
    expect_charts(page, 2)
    assert page.locator(".katex-html").count() >= 3
    assert overflowing(page) == []
