"""Page 9 (which patches decided?) in headless Chromium: the maps, a class picked by a click, the deletion and
insertion charts with the verdict table, the logit lens, and no exception anywhere (random weights here)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .browser import assert_healthy, goto, open_tab, wait_idle
from .test_browser_registers import descriptions

pytestmark = pytest.mark.browser


def test_maps_a_class_click_curves_and_lens(page, app_url):
    goto(page, app_url)  # a fresh server's first run must be app.py's navigation (see test_browser)
    goto(page, app_url, "explain")
    assert_healthy(page)
    main = page.get_by_test_id("stMain")
    for caption in ("CLS attention (last layer)", "Attention rollout", "Gradient rollout · “", "Grad-CAM · “"):
        expect(main.get_by_test_id("stImageCaption").filter(has_text=caption)).to_have_count(1)
    top3 = main.get_by_test_id("stRadio").first.locator("label").filter(has_text="top-3")
    lines = [line.strip() for line in main.get_by_test_id("stRadio").first.inner_text().splitlines() if line.strip()]
    name = lines[lines.index("top-3") + 1].split(" · ")[0]  # the caption under the option: the class's name
    top3.click()
    page.wait_for_function("() => /[?&]xclass=top-3(&|$)/.test(location.search)", timeout=60_000)
    wait_idle(page)
    expect(main.get_by_test_id("stImageCaption").filter(has_text=f"Grad-CAM · “{name}”")).to_have_count(1)
    pictures, _charts = descriptions(page)
    assert pictures[0].startswith("The input photo (") and pictures[-1].startswith(f"Grad-CAM for “{name}” (scaled 0…1")
    assert len(pictures) == 5 and all(" 196 patches" in alt and re.search(r"\brows? \d", alt) for alt in pictures[1:])
    open_tab(page, "Deletion & insertion")
    expect(main).to_contain_text(f"On this image, for “{name}”", timeout=60_000)
    expect(main.locator(".js-plotly-plot").nth(1)).to_be_attached(timeout=30_000)
    verdicts = main.locator("table").filter(has_text="Deletion verdict")  # a real table: a screen reader walks it
    expect(verdicts.locator("th")).to_have_count(5)
    _pictures, [(deletion, drag), (insertion, insertion_drag)] = descriptions(page)
    assert deletion.startswith(f"Deletion for “{name}”") and insertion.startswith(f"Insertion for “{name}”")
    assert drag is insertion_drag is False  # a finger scrolling the page is not captured by the chart
    open_tab(page, "When does the decision form?")
    expect(main).to_contain_text("Top-1 from layer", timeout=30_000)
    expect(main.locator(".js-plotly-plot").nth(1)).to_be_attached(timeout=30_000)
    _pictures, [(heatmap, drag), (ranks, rank_drag)] = descriptions(page)
    assert heatmap.startswith("Probability of the last layer's top classes") and f"“{name}” from" in heatmap
    assert ranks.startswith(f"Rank of “{name}” after each of the") and drag is rank_drag is False
    assert_healthy(page)


def test_swin_explains_with_grad_cam_and_says_why(page, app_url):
    goto(page, app_url)
    goto(page, app_url, "explain", xmodel="swin-tiny")
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("Why only Grad-CAM here?")
    expect(main.get_by_test_id("stImageCaption")).to_have_count(2)
    assert_healthy(page)
