"""AppTest of page 6 (registers & token norms) and of the ViT pages with DINOv2 (random weights here): every tab,
the layer slider, the comparisons, the registers on the attention page, and a model switch that resets P."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from vitviz import norms

from .apptest import PAGES, assert_clean, image_captions, open_tab, page_app

PAGE = "pages/registers.py"
TABS = ("Token norms", "Why those patches?", "Without vs with registers", "Features as colours")


def open_page(page: str = PAGE, **query) -> AppTest:
    return page_app(page, **query)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.main.get("metric")}


def alts(at) -> list[str | None]:
    """The text alternative of every picture, then of every chart, in the main area (None: no alt at all)."""
    pictures = [img.alt if img.HasField("alt") else None for element in at.main.get("image") for img in element.proto.imgs]
    return pictures + [chart.proto.alt or None for chart in at.main.get("plotly_chart")]


def test_every_picture_and_chart_says_what_it_shows():
    """Each alt is computed from the result drawn: it quotes the numbers the metrics show, and follows the layer."""
    at = open_page(model="dinov2-small-reg")
    shown = metrics(at)
    norm_map, histogram, depth = alts(at)
    assert norm_map.startswith("Token norms of the 256 patches after layer 12") and "none is framed" in norm_map
    assert f"median {shown['Median patch norm']}" in norm_map and f"to {shown['Largest patch norm']} (row" in norm_map
    assert histogram.startswith("Histogram of the 256 patch norms after layer 12") and "4 registers' norms" in histogram
    assert depth.startswith("Token norms through the 12 layers") and depth.endswith("Layer 12 is marked by a dotted line.")
    at.slider(key="nlayer").set_value(3).run()
    norm_map, histogram, depth = alts(at)
    assert norm_map.startswith("Token norms of the 256 patches after layer 3 ")
    assert histogram.startswith("Histogram of the 256 patch norms after layer 3,")
    assert f"median {metrics(at)['Median patch norm']}" in norm_map and depth.endswith("Layer 3 is marked by a dotted line.")
    open_tab(at, "rgsec", "Why those patches?")
    similarity, norms_again = alts(at)
    assert f"r = {metrics(at)['Correlation (similarity, norm)']}" in similarity
    assert norms_again.startswith("Token norms of the 256 patches after layer 3")
    open_tab(at, "rgsec", "Without vs with registers")
    found = alts(at)
    assert len(found) == 4 and sum("to the registers" in a for a in found) == 1
    assert all(a.startswith(("The last layer's CLS attention", "Token norms of the 256 patches after layer 12"))
               for a in found)
    comparison = [c.value for c in at.caption if "high-norm patches, largest patch norm" in c.value]
    assert len(comparison) == 1 and "its 4 registers' norms" in comparison[0]
    open_tab(at, "rgsec", "Features as colours")
    photo, colours = alts(at)
    assert photo == "The input photo (cat), 224 × 224 px, as the model receives it"
    count = next(c.value for c in at.caption if "patches foreground" in c.value).split(" of ")[0]
    assert f": {count} of 256 patches" in colours and "DINOv2 ViT-S/14 with 4 registers" in colours


@pytest.mark.parametrize("model", ["dinov2-small-reg", "dinov2-small", "dino-vits16", "deit-tiny"])
def test_every_tab_runs_and_says_what_it_found(model):
    at = open_page(model=model)
    shown = metrics(at)
    assert shown["High-norm patches"].endswith(f"of {196 if model in ('dino-vits16', 'deit-tiny') else 256}")
    assert ("Norms of the 4 registers" in shown) == (model == "dinov2-small-reg")
    assert any("Random weights" in w.value for w in at.warning)  # the caveat on random weights
    assert any("One mode at layer" in i.value for i in at.info)  # random weights: no second mode, said plainly
    for tab in TABS[1:]:
        open_tab(at, "rgsec", tab)
    assert any("side by side" in t.label.lower() for t in at.toggle)


def test_the_layer_slider_moves_the_numbers_without_rerunning_the_model(monkeypatch):
    at = open_page(model="dinov2-small-reg")
    last = metrics(at)["Median patch norm"]
    calls = []
    monkeypatch.setattr(norms, "trace_norms", lambda *a: calls.append(a))
    at.slider(key="nlayer").set_value(1).run()
    assert_clean(at)
    assert metrics(at)["Median patch norm"] != last and not calls


def test_without_vs_with_registers_shows_both_models():
    at = open_page(model="dino-vits16", rgsec="Without vs with registers")
    texts = " ".join(m.value for m in at.markdown)
    assert "DINOv2 ViT-S/14 (self-supervised)" in texts and "DINOv2 ViT-S/14 with 4 registers" in texts
    assert texts.count("random weights") >= 2
    captions = image_captions(at)
    assert len(captions) == 4 and sum("to the registers" in c for c in captions) == 1  # only one of them has any
    assert sum("registers " in c and "high-norm" in c for c in captions) == 1


def test_feature_colours_compare_three_models_and_follow_the_threshold():
    at = open_page(model="dinov2-small", rgsec="Features as colours")
    assert len(at.main.get("plotly_chart")) == 1
    at.toggle(key="fgcmp").set_value(True).run()
    assert_clean(at)
    assert len(at.main.get("plotly_chart")) == 3
    before = [c.value for c in at.caption if "patches foreground" in c.value]
    at.slider(key="fgth").set_value(0.9).run()
    assert_clean(at)
    after = [c.value for c in at.caption if "patches foreground" in c.value]
    assert len(before) == len(after) == 3 and before != after


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_with_dinov2_registers(page):
    at = open_page(page, model="dinov2-small-reg")
    assert at.session_state["ctx"].patch_size == 14


def test_attention_page_lists_the_registers():
    at = open_page("pages/attention.py", model="dinov2-small-reg")
    tables = [m.value for m in at.markdown if "| head | CLS | register 1" in m.value]
    assert len(tables) == 1 and len(tables[0].splitlines()) == 2 + 6  # header, rule, one row per head
    open_tab(at, "atsec", "One head, step by step")
    assert any("to the 4 registers" in c.value for c in at.caption)
    open_tab(at, "atsec", "DINO masks")
    assert sum("registers hold" in c for c in image_captions(at)) == 6  # one per head
    open_tab(at, "atsec", "Rollout")
    assert any("of the flow" in c for c in image_captions(at))


def test_switching_the_model_starts_at_its_own_patch_size():
    at = open_page("pages/patching.py", model="dino-vits16")
    assert at.session_state["ctx"].patch_size == 16
    at.selectbox(key="model").set_value("dinov2-small").run()
    assert_clean(at)
    assert at.session_state["ctx"].patch_size == 14
    at.selectbox(key="model").set_value("dino-vits8").run()
    assert at.session_state["ctx"].patch_size == 8
