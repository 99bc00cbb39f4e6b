"""中文 in Chromium: every page and tab with `lang=zh` runs without an exception and leaves no English sentence in
the main area outside code, equations and model names; the switch keeps page, tab, image and settings; a browser
whose language is Chinese opens in Chinese; a link copied in one language opens the same settings in the other."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ui.stages import STAGES

from .browser import assert_healthy, goto, wait_idle

pytestmark = pytest.mark.browser

# Four or more English words in a row: a sentence or a phrase a student would have to read in English.
ENGLISH_RUN = re.compile(r"\b[A-Za-z][a-z]{1,}(?:[ ,;:'’-]+[A-Za-z][a-z]{1,}){3,}\b")
# What stays English by design: model and method names, the ImageNet class names (labels of the checkpoints), the
# sample photos' names, file formats, the titles of the papers cited.
ALLOWED = re.compile(
    r"(?i)\b(?:self-supervised|ImageNet|DINO|DINOv2|DeiT|ViT|Swin|MobileViT|FlexiViT|Grad-CAM|PyTorch|einops"
    r"|Vision Transformers Need Registers|Attention is Not Only)\b")
STRIP = """(root) => {
  const clone = root.cloneNode(true);
  clone.querySelectorAll('.vv-code, pre, code, .katex, .katex-display, [data-testid="stLatex"], '
    + '[data-testid="stImageCaption"], .js-plotly-plot .xtick, .js-plotly-plot .ytick, script, style')
    .forEach(n => n.remove());  // a detached clone's innerText would include the page's scripts
  return clone.innerText;
}"""


def english_sentences(page) -> list[str]:
    text = page.get_by_test_id("stMain").evaluate(STRIP)
    return [m.group(0) for m in ENGLISH_RUN.finditer(text) if not ALLOWED.search(m.group(0))]


VISITS = [("", None)] + [(s.key, None) for s in STAGES if not s.tabs] + \
    [(s.key, (s.tab_key, tab)) for s in STAGES for tab in s.tabs]


@pytest.mark.parametrize("path,tab", VISITS, ids=[f"{p or 'overview'}-{t[1] if t else ''}" for p, t in VISITS])
def test_every_page_and_tab_in_chinese_has_no_english_sentence(page, app_url, path, tab):
    params = {"lang": "zh", **({tab[0]: tab[1]} if tab else {})}
    goto(page, app_url, path, **params)
    assert_healthy(page)
    expect(page.get_by_test_id("stMain").locator("h1").first).to_be_visible(timeout=60_000)
    found = english_sentences(page)
    assert not found, found[:10]


def test_switching_language_keeps_page_tab_image_and_settings(page, app_url):
    goto(page, app_url, "swin", M="5", swsec="Cost", img="coffee", ps="20")
    before = page.url
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("radio", name="中文").click()
    wait_idle(page)
    assert_healthy(page)
    expect(page.get_by_test_id("stMain").get_by_role("tab", selected=True)).to_have_text("计算成本", timeout=30_000)
    after = page.url
    assert "lang=zh" in after
    for part in ("M=5", "swsec=Cost", "img=coffee", "ps=20"):
        assert part in after, (part, after)
    assert after.replace("&lang=zh", "").replace("lang=zh&", "") == before
    # the Chinese link opened elsewhere, without lang, is the same page, tab and settings in English
    goto(page, app_url, "swin", M="5", swsec="Cost", img="coffee", ps="20")
    expect(page.get_by_test_id("stMain").get_by_role("tab", selected=True)).to_have_text("Cost", timeout=30_000)


def test_a_chinese_browser_opens_in_chinese(chromium, app_url):
    context = chromium.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        goto(page, app_url, "patching")
        assert_healthy(page)
        expect(page.get_by_test_id("stMain").locator("h1").first).to_have_text("图像分块", timeout=30_000)
        assert "lang=" not in page.url  # the browser's own language is the default: the link stays neutral
        page.get_by_test_id("stSidebar").get_by_role("radio", name="English").click()
        wait_idle(page)
        expect(page.get_by_test_id("stMain").locator("h1").first).to_have_text("Patching", timeout=30_000)
        assert "lang=en" in page.url
    finally:
        context.close()
