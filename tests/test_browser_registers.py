"""Page 6 (registers & token norms) and the attention page with DINOv2 + registers in headless Chromium: the tabs
clicked through, the layer slider from the keyboard, the comparison of three models, hover values on the PCA
colours, and no exception anywhere (random weights here)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .browser import assert_healthy, goto, open_tab, wait_idle

pytestmark = pytest.mark.browser


def metric(page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).first.get_by_test_id("stMetricValue")


def descriptions(page) -> tuple[list[str | None], list[str | None]]:
    """What a screen reader reads for each picture (its alt) and each chart (its label) in the main area, and every
    chart's drag mode as Plotly drew it (False: a finger scrolls the page)."""
    return page.evaluate("""() => {
        const main = document.querySelector('[data-testid=stMain]');
        const pictures = [...main.querySelectorAll('[data-testid=stImage] img')].map(i => i.getAttribute('alt'));
        const charts = [...main.querySelectorAll('[data-testid=stPlotlyChart]')].map(c => {
            const named = [c, ...c.querySelectorAll('[aria-label]')].find(e => e.hasAttribute('aria-label') && !e.closest('.modebar'));
            return [named ? named.getAttribute('aria-label') : null, c.querySelector('.js-plotly-plot')._fullLayout.dragmode];
        });
        return [pictures, charts];
    }""")


def open_registers(page, app_url, **params) -> None:
    goto(page, app_url)  # a fresh server's first run must be app.py's navigation (see test_browser)
    goto(page, app_url, "registers", **params)
    assert_healthy(page)


def test_tabs_and_the_layer_slider(page, app_url):
    open_registers(page, app_url, model="dinov2-small-reg")
    main = page.get_by_test_id("stMain")
    expect(metric(page, "High-norm patches")).to_have_text("0 of 256")
    expect(main).to_contain_text("One mode at layer 12")
    expect(main.locator(".js-plotly-plot").nth(1)).to_be_attached(timeout=30_000)  # histogram and depth plot
    expect(main.get_by_role("img", name=re.compile(r"^Token norms of the 256 patches after layer 12 "))).to_have_count(1)
    _pictures, [(histogram, drag), (depth, depth_drag)] = descriptions(page)
    assert histogram.startswith("Histogram of the 256 patch norms after layer 12,") and drag is depth_drag is False
    assert depth.startswith("Token norms through the 12 layers") and depth.endswith("Layer 12 is marked by a dotted line.")
    slider = main.get_by_role("slider").first
    slider.focus()
    slider.press("Home")
    # Streamlit rewrites the address (history.replaceState) when the rerun the key press asked for has run.
    page.wait_for_function("() => /[?&]nlayer=1(&|$)/.test(location.search)", timeout=60_000)
    wait_idle(page)
    expect(main).to_contain_text("One mode at layer 1:")
    expect(main.get_by_role("img", name=re.compile(r"^Token norms of the 256 patches after layer 1 "))).to_have_count(1)
    assert_healthy(page)
    for tab, text, shown in [("Why those patches?", "Correlation (similarity, norm)", (2, 0)),
                             ("Without vs with registers", "to the registers", (4, 0)),
                             ("Features as colours", "patches foreground", (1, 1))]:
        open_tab(page, tab)
        expect(main).to_contain_text(text, timeout=30_000)
        expect(main.get_by_test_id("stPlotlyChart").locator(".js-plotly-plot")).to_have_count(shown[1])
        pictures, charts = descriptions(page)
        assert (len(pictures), len(charts)) == shown and all(pictures) and all(label for label, _drag in charts)
        assert all(drag is False for _label, drag in charts)


def test_three_models_side_by_side_with_hover_values(page, app_url):
    open_registers(page, app_url, model="dinov2-small", rgsec="Features as colours", fgcmp="true")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stPlotlyChart")).to_have_count(3)
    for name in ("DINO ViT-S/16", "DINOv2 ViT-S/14 (self-supervised)", "DINOv2 ViT-S/14 with 4 registers"):
        expect(main).to_contain_text(name)
    chart = main.get_by_test_id("stPlotlyChart").nth(1)
    chart.locator(".js-plotly-plot").wait_for(timeout=30_000)
    chart.scroll_into_view_if_needed()
    box = chart.locator(".nsewdrag").first.bounding_box()
    for fx in (0.5, 0.45, 0.55):  # the centre patch is foreground or background: either has a hover label
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * 0.5)
        try:
            expect(page.locator(".hoverlayer .hovertext")).to_contain_text(re.compile(r"PC1 [+-]|background"),
                                                                             timeout=5_000)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("no hover label on the PCA picture")
    assert_healthy(page)


def test_attention_page_with_registers(page, app_url):
    goto(page, app_url)
    goto(page, app_url, "attention", model="dinov2-small-reg", query="patch", atsec="One head, step by step")
    assert_healthy(page)
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("to the 4 registers")
    expect(main.get_by_test_id("stPlotlyChart")).to_have_count(2)  # the clickable head and the register strip
    open_tab(page, "All heads")
    expect(main).to_contain_text("register 4")
    open_tab(page, "DINO masks")
    expect(main).to_contain_text("registers hold")
