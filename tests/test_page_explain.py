"""AppTest of page 9 (which patches decided?): every classifier's maps, the deletion/insertion tab and its verdicts,
the logit lens, a class change that reuses the random band, the sidebar's model and P, an upload, bad sizes."""
from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from vitviz import explain as ex

from .apptest import assert_clean, image_captions, open_tab, page_app, photo, tables, upload
from .test_page_registers import alts

PAGE = "pages/explain.py"


def open_page(**query) -> AppTest:
    return page_app(PAGE, timeout=180, **query)


def downloads(at) -> list[str]:
    return [b.proto.label for b in at.main.get("download_button")]


@pytest.mark.parametrize("model, methods", [("deit-tiny", 4), ("dinov2-small-cls", 4), ("swin-tiny", 1),
                                            ("mobilevit-xxs", 1), ("mobilevit-s", 1)])
def test_every_classifier_draws_its_maps(model, methods):
    at = open_page(xmodel=model)
    captions = image_captions(at)
    assert len(captions) == 1 + methods and captions[0].startswith("The input")
    assert any(c.startswith("Grad-CAM · “") for c in captions)  # class-specific maps name the class
    assert any("Random weights" in w.value for w in at.warning)
    grid = (16, 16) if model == "dinov2-small-cls" else (14, 14) if methods == 4 else (7, 7)
    assert f"The maps ({methods} × {grid[0]} × {grid[1]}) · CSV" in downloads(at)
    assert ("Why only Grad-CAM here?" in " ".join(i.value for i in at.info)) == (methods == 1)
    assert len(at.radio(key="xclass").options) == 5


@pytest.mark.parametrize("model, rows", [("deit-tiny", 4), ("mobilevit-xxs", 1)])
def test_the_deletion_tab_gives_a_verdict_for_every_method(model, rows):
    at = open_page(xmodel=model, xsec="Deletion & insertion")
    (table,) = tables(at, "Method")
    assert len(table["Method"]) == rows + 1 and table["Method"][-1].startswith(f"random ({ex.SEEDS} orders)")
    assert set(table["Deletion verdict"][:-1]) <= {"beats random", "not better than random"}
    texts = " ".join(m.value for m in at.markdown)
    assert "On this image, for “" in texts
    assert ("taken out of the sequence" in texts) == (model == "deit-tiny")
    assert ("blurred copy" in texts) == (model != "deit-tiny")
    assert len(at.main.get("plotly_chart")) == 2


def test_every_picture_and_chart_says_what_it_shows():
    """Each alt is computed from the result drawn: the maps name their class, the curves quote the table's areas, the
    lens quotes its metrics."""
    # top-4: the class-change test below expects top-2's curves not to be cached yet (the caches outlive an AppTest)
    at = open_page(xmodel="deit-tiny", xclass="top-4")
    label = at.radio(key="xclass").proto.captions[3].split(" · ")[0]
    photo, *maps = alts(at)
    assert photo == "The input photo (cat), 224 × 224 px, as the model receives it"
    assert [m.split(" (scaled")[0] for m in maps] == ["CLS attention (last layer)", "Attention rollout",
                                                      f"Gradient rollout for “{label}”", f"Grad-CAM for “{label}”"]
    assert all(" 196 patches" in m and re.search(r"\brows? \d", m) for m in maps)  # where the weight lies
    assert any(c.value.startswith("Spearman's rank correlation between the 4 maps: most alike") for c in at.caption)
    open_tab(at, "xsec", "Deletion & insertion")
    (table,) = tables(at, "Method")
    deletion, insertion = alts(at)
    assert deletion.startswith(f"Deletion for “{label}”") and insertion.startswith(f"Insertion for “{label}”")
    for method, d_area, i_area in zip(table["Method"][:-1], table["Deletion area ↓"], table["Insertion area ↑"]):
        assert f"{method} {d_area}" in deletion and f"{method} {i_area}" in insertion
    beats = [m for m, v in zip(table["Method"][:-1], table["Deletion verdict"]) if v == "beats random"]
    assert deletion.endswith(f"{', '.join(beats)} beat{'s' if len(beats) == 1 else ''} the random band."
                             if beats else "No map beats the random band.")
    open_tab(at, "xsec", "When does the decision form?")
    metrics = {m.label: m.value for m in at.main.get("metric")}
    heatmap, ranks = alts(at)
    assert heatmap.startswith("Probability of the last layer's top classes after each of the 12 layers")
    assert f"“{label}” from" in heatmap and "(the class explained, marked ▶)" in heatmap
    assert ranks.startswith(f"Rank of “{label}” after each of the 12 layers (1 = top): "
                            f"{metrics[f'Rank of “{label}” after layer 1']} after layer 1")
    assert ranks.endswith(f"Probability at the last layer: {metrics['Probability at the last layer']}.")


def test_a_class_change_reuses_the_random_band(monkeypatch):
    at = open_page(xmodel="deit-tiny", xsec="Deletion & insertion")
    first = at.radio(key="xclass").proto.captions[1].split(" · ")[0]
    calls = []
    real = ex.token_curves
    monkeypatch.setattr(ex, "token_curves", lambda *a, **k: calls.append(a[2].shape[0]) or real(*a, **k))
    at.radio(key="xclass").set_value("top-2").run()
    assert_clean(at)
    assert calls == [4]  # the four maps' rankings; the random orders' curves hold every class already
    assert f"On this image, for “{first}”" in " ".join(m.value for m in at.markdown)


def test_the_logit_lens_tab():
    at = open_page(xmodel="deit-tiny", xsec="When does the decision form?")
    metrics = {m.label: m.value for m in at.main.get("metric")}
    assert "Top-1 from layer" in metrics and metrics["Probability at the last layer"].endswith("%")
    (lens,) = tables(at, "layer")
    assert lens["layer"] == [str(layer) for layer in range(1, 13)]  # one row per layer
    assert all(" · " in cell and cell.endswith("%") for cell in lens["top 1"])
    assert len(at.main.get("plotly_chart")) == 2
    swin = open_page(xmodel="swin-tiny", xsec="When does the decision form?")
    assert any("no such token" in i.value for i in swin.info)


def test_the_sidebars_classifier_and_patch_size_are_used():
    at = open_page(model="deit-tiny", ps=32)
    assert "The maps (4 × 7 × 7) · CSV" in downloads(at)
    assert any("FlexiViT" in i.value for i in at.info)  # the adaptation is said, as on pages 1–5
    dino = open_page(model="dino-vits16")  # no classifier: the page starts at DeiT-Tiny
    assert dino.selectbox(key="xmodel").value == "deit-tiny"


def test_an_upload_and_a_deep_link():
    at = open_page(xmodel="mobilevit-xxs", xclass="top-3")
    assert at.radio(key="xclass").value == "top-3"
    assert "“" + at.radio(key="xclass").proto.captions[2].split(" · ")[0] + "”" in image_captions(at)[1]
    at = upload(at, "mine.png", photo(300, 200, "PNG"), "image/png")
    assert_clean(at)
    assert len(image_captions(at)) == 2
    open_tab(at, "xsec", "Deletion & insertion")


def test_too_many_tokens_is_said_not_crashed():
    at = open_page(xmodel="vit-base-16", res=512)
    assert any("tokens" in e.value and "lower resolution" in e.value for e in at.error)
    assert not image_captions(at)
