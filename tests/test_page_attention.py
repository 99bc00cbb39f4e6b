"""AppTest of the attention page: every control, a clicked patch, other models and grids, no model rerun on
interaction, and the memory of dino-vits8 at 480 × 480 measured in a fresh process. The page's eight views are lazy
tabs (only the open one runs): each test opens the tab it reads."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import vitviz.attention
from vitviz.describe.common import percent

from .apptest import APP, assert_clean, open_tab, photo, probability, tables, upload

PAGE = "pages/attention.py"
SECTIONS = ("All heads", "One head, step by step", "Whole matrix", "DINO masks", "Rollout", "Distance vs depth",
            "Queries & keys", "What tokens contribute")
ONE = "One head, step by step"
ROOT = Path(__file__).resolve().parent.parent


def open_page(image: tuple[str, bytes] | None = None, **query):
    """The attention page opened by a deep link (straight to the page, as a shared URL does), then an upload if any."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = str(value)
    at.switch_page(PAGE).run()
    if image is not None:
        at = upload(at, *image)
    assert_clean(at)
    return at


def visit(at, section: str):
    return open_tab(at, "atsec", section)


def subheaders(at) -> list[str]:
    return [s.value for s in at.subheader]


def captions(at) -> list[str]:
    return [c for el in at.get("image") for c in el.captions]


def pick_key(at) -> str:
    """The key of the clickable enlarged head (it changes with the query, so each click is a new selection)."""
    ids = [c.proto.id for c in at.get("plotly_chart") if "attn-pick-" in c.proto.id]
    assert len(ids) == 1, ids
    return ids[0][ids[0].index("attn-pick-"):]


def click(at, index: int):
    """What a click on the enlarged head sends: the selection of the marker of patch `index`."""
    at.session_state[pick_key(at)] = {"selection": {"points": [{"point_index": index, "curve_number": 0}],
                                                    "point_indices": [index], "box": [], "lasso": []}}
    return at.run()


@pytest.fixture
def trace_calls(monkeypatch):
    """Counts forward passes made by the page's trace (the store outlives tests, so use a fresh image)."""
    calls = []
    real = vitviz.attention.trace
    monkeypatch.setattr(vitviz.attention, "trace", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_page_runs_with_the_sample_and_shows_every_panel():
    at = open_page()
    assert [t.label for t in at.tabs] == list(SECTIONS)
    heads = subheaders(at)
    assert heads[0].startswith("Layer 12: where CLS looks") and len(heads) == 3  # the open tab, then the page's end
    assert sum(c.startswith("head ") and "· CLS " in c for c in captions(at)) == 6  # the head grid
    assert any("no classifier" in i.value for i in at.info)
    for section, part in zip(SECTIONS, ("where CLS looks", "enlarged", "whole attention matrix", "thresholded (DINO)",
                                        "rollout", "Mean attention distance")):
        heads = subheaders(visit(at, section))
        assert part in heads[0] and heads[1:] == ["What the model predicts",
                                                   "What attention maps do — and do not — tell you"], (section, heads)
        if section == "DINO masks":
            assert sum("of 196 patches" in c for c in captions(at)) == 6


def test_click_a_patch_then_change_layer_head_threshold_without_rerunning_the_model(trace_calls):
    at = open_page(("mine.jpg", photo(300, 260, seed=21)), atsec=ONE)
    assert trace_calls, "a new image is traced"
    trace_calls.clear()
    at = click(at, 3 * 14 + 5)
    assert_clean(at)
    assert at.session_state["patch"] == 47 and at.session_state["query"] == "patch"
    assert any("The computation for patch (3, 5)" in m.value for m in at.markdown)
    assert subheaders(visit(at, "All heads"))[0] == "Layer 12: where patch (3, 5) looks, head by head"
    at.slider(key="layer").set_value(4).run()
    assert_clean(at)
    assert subheaders(at)[0].startswith("Layer 4:")
    at.pills(key="head").set_value(3).run()
    assert_clean(at)
    assert subheaders(visit(at, ONE))[0].startswith("Head 3 enlarged")
    visit(at, "DINO masks").slider(key="t").set_value(0.3).run()
    assert_clean(at)
    assert any("holding 30% of its patch mass" in m.value for m in at.markdown)
    at = click(visit(at, ONE), 0)  # a second click, on another patch
    assert at.session_state["patch"] == 0
    assert subheaders(visit(at, "All heads"))[0].startswith("Layer 4: where patch (0, 0)")
    at.segmented_control(key="query").set_value("CLS").run()
    assert_clean(at)
    assert subheaders(at)[0].startswith("Layer 4: where CLS looks")
    for section in SECTIONS:
        visit(at, section)
    assert not trace_calls, "layer, head, query, threshold and every tab reuse the one traced forward pass"


def test_rollout_controls_and_deep_link():
    at = open_page(layer=3, head=2, t=0.4, fusion="max", discard=0.5, upto=6, atsec="Rollout")
    assert_clean(at)
    assert any("through layers 1–6 (max of heads, lowest 50% discarded)" in c for c in captions(at))
    at.slider(key="upto").set_value(12).run()
    at.segmented_control(key="fusion").set_value("min").run()
    assert_clean(at)
    assert any("through layers 1–12 (min of heads" in c for c in captions(at))
    assert subheaders(visit(at, "All heads"))[0].startswith("Layer 3:")
    assert subheaders(visit(at, ONE))[0].startswith("Head 2 enlarged")


def test_classifier_shows_top5_and_heads_are_clamped_when_the_model_changes():
    at = open_page(head=6)
    at.selectbox(key="model").set_value("deit-tiny").run()
    assert_clean(at)
    assert at.session_state["head"] == 3  # DeiT-Tiny has 3 heads
    assert sum(c.startswith("head ") and "· CLS " in c for c in captions(at)) == 3
    (table,) = tables(at, "class")
    assert list(table) == ["class", "probability"] and len(table["class"]) == 5
    p = [probability(c) for c in table["probability"]]
    assert p == sorted(p, reverse=True) and sum(p) <= 1 + 5e-4  # each rounded to 0.01 %


def test_non_square_input_with_dropped_pixels():
    at = open_page(("wide.jpg", photo(480, 240, seed=4)), aspect="true", ps=24, atsec=ONE)
    ctx = at.session_state["ctx"]
    assert ctx.keep_aspect
    at = click(at, 13)  # a patch in the first row
    assert_clean(at)
    assert subheaders(visit(at, "All heads"))[0].endswith("where patch (0, 13) looks, head by head")


def test_large_grid_shows_the_row_and_waits_for_the_rollout_button():
    at = open_page(ps=5, atsec="Whole matrix")  # 44 × 44 = 1,936 patches at 224 px: past the 40 × 40 matrix limit
    assert any("Here is the row of the selected query instead" in i.value for i in at.info)
    assert any("waits for you" in i.value for i in visit(at, "Rollout").info)
    assert not any("Rollout R[CLS" in c for c in captions(at))
    at.button(key="rollout-go").click().run()
    assert_clean(at)
    assert any("Rollout R[CLS" in c for c in captions(at))


def test_too_many_tokens_is_explained_not_computed(trace_calls):
    at = open_page(res=512, ps=4)  # 128 × 128 = 16,384 patches
    assert any("This page stops at 4,096 patches" in e.value for e in at.error)
    assert not trace_calls


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    sys.path.insert(0, {root!r})
    from tests.apptest import app
    at = app(model="dino-vits8", res="480")  # the overview first, as a student would arrive
    at.switch_page("pages/attention.py").run()
    assert not at.exception, [e.message for e in at.exception]
    at.slider(key="layer").set_value(5).run()
    at.segmented_control(key="query").set_value("patch").run()
    for section in {sections!r}:  # every tab, the rollout last
        at.session_state["atsec"] = section
        at.run()
        assert not at.exception, [e.message for e in at.exception]
    at.button(key="rollout-go").click().run()
    assert not at.exception, [e.message for e in at.exception]
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    print(json.dumps({{"vmhwm_mb": int(status["VmHWM"].split()[0]) / 1024,
                      "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "captions": [c for el in at.get("image") for c in el.captions]}}))
""")


@pytest.mark.timeout(900)
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS (VmHWM) from Linux's /proc")
def test_dino_vits8_at_480_stays_under_2_gb():
    """3,601 tokens: the whole app process (AppTest runs it in-process: overview, attention page, a layer and a query
    change, the rollout) peaks below 2 GB.

    The peak is VmHWM, the high-water mark of the child's own memory. `ru_maxrss` is printed too but not trusted:
    Linux carries the parent's high-water mark into a child across fork + exec, so after a big test in this pytest
    process it reports the parent, not the app.
    """
    script = MEMORY_SCRIPT.format(root=str(ROOT), sections=SECTIONS[:4] + SECTIONS[5:] + SECTIONS[4:5])
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=880, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert any("Rollout R[CLS, patches]" in c for c in result["captions"])
    assert result["vmhwm_mb"] < 2048, result


def alts(at) -> tuple[list[str], list[str]]:
    """The text alternatives of the main area's pictures and charts, in page order."""
    return ([img.alt for el in at.main.get("image") for img in el.proto.imgs],
            [c.proto.alt for c in at.main.get("plotly_chart")])


def test_every_picture_and_chart_says_what_it_shows():
    """Each tab's pictures and charts carry the description of what they draw, for the page's layer, head and
    query (a patch, on a model with 4 registers); the descriptions' numbers are checked against the tensors in
    tests/test_describe_attention.py."""
    at = open_page(model="dinov2-small-reg", query="patch", patch=47, layer=5, head=2)  # 16 × 16 at P = 14
    query = "Layer 5, head {h}, query patch (2, 15): "
    framed = "The query patch, row 2, column 15, is framed in yellow and black."
    pictures, charts = alts(at)
    assert len(pictures) == 6 and not charts
    for h, alt in enumerate(pictures, 1):
        spread = " of the patch attention on " in alt or "the patch attention spread almost evenly over the 256" in alt
        assert alt.startswith(query.format(h=h)) and spread and alt.endswith(framed)
        assert "the 4 registers" in alt
    pictures, (enlarged, strip) = alts(visit(at, ONE))
    assert not pictures and enlarged.startswith(query.format(h=2)) and "The largest weight on a patch" in enlarged
    assert strip.startswith(query.format(h=2)[:-2] + ", the tokens with no place on the image: CLS ")
    assert strip.count("register ") == 4
    pictures, (matrix,) = alts(visit(at, "Whole matrix"))
    assert matrix.startswith("Attention matrix of layer 5, head 2: 261 × 261 tokens")
    assert matrix.endswith("The row of the query, patch (2, 15), is framed.")
    pictures, charts = alts(visit(at, "DINO masks"))
    assert [alt.split(":")[0] for alt in pictures] == [f"Head {h}" for h in range(1, 7)] and not charts
    assert all("of 256 patches" in alt and "holding 60 % of the last layer's CLS attention" in alt for alt in pictures)
    (rolled, alone), charts = alts(visit(at, "Rollout"))
    assert rolled.startswith("Rollout R[CLS, patches] through layers 1–12 (mean of heads): ") and not charts
    assert "the registers" in rolled and alone.startswith("CLS attention in layer 12 alone (mean of heads): ")
    pictures, (distance,) = alts(visit(at, "Distance vs depth"))
    assert distance.startswith("Mean attention distance of each of the 6 heads (one marker shape each) in each of "
                               "the 12 layers") and distance.endswith("Layer 5, the one selected, is shaded and labelled.")


def test_a_large_grid_describes_the_query_row_and_deit_its_predictions():
    at = open_page(ps=5, atsec="Whole matrix")  # 44 × 44 patches: the row instead of the matrix
    (row,) = alts(at)[1]
    assert row.startswith("Layer 12, head 1, query CLS: ") and "Drawn on the 44 × 44 patch grid." in row
    at.selectbox(key="model").set_value("deit-tiny").run()
    assert_clean(at)
    (table,) = tables(at, "class")
    (said,) = [c.value for c in at.caption if c.value.startswith("The model's 5 most probable classes: ")]
    # the caption's percentages are the table's as a student reads them (the table rounds to 0.01 %, so the caption
    # may have rounded the exact value the other way)
    for label, cell in zip(table["class"], table["probability"]):
        assert any(f"{label} {percent(probability(cell) + d)}" in said for d in (0, 5e-5, -5e-5)), (label, cell, said)


def test_the_query_patch_can_be_chosen_without_a_pointer():
    """Keyboard users choose the query with the segmented control and the number box (labelled with how the index
    is counted), not by clicking the chart."""
    at = open_page(atsec=ONE)
    box = at.number_input(key="patch")
    assert box.label == "Selected patch (raster index: row × 14 + column)"
    at.segmented_control(key="query").set_value("patch").run()
    box.set_value(3 * 14 + 5).run()
    assert_clean(at)
    assert any("The computation for patch (3, 5)" in m.value for m in at.markdown)
    assert alts(at)[1][0].startswith("Layer 12, head 1, query patch (3, 5): ")


def test_queries_keys_and_contributions_follow_the_controls_and_a_click_without_the_model(trace_calls):
    """The two tabs beyond the weight on DINOv2 with registers (16 × 16 patches + CLS + 4 registers at 224): the
    joint map's colour choice, a click on a query point, a head and a layer change, then the contributions tab; the
    trace is the one the page made first (no model run after it). The numbers are tested in test_attention_qk.py
    and test_describe_attention.py."""
    at = open_page(model="dinov2-small-reg", query="patch", patch=47, layer=5, head=2, atsec="Queries & keys")
    trace_calls.clear()
    (scatter,) = alts(at)[1]
    assert scatter.startswith("Layer 5, head 2: the 261 queries (circles) and 261 keys (diamonds)")
    assert "Lines join the query patch (2, 15) to its 5 largest weights: " in scatter and "Colour: patch row." in scatter
    faithful = next(m.value for m in at.markdown if m.value.startswith("| head | in the picture |"))
    share = faithful.split("| **2** | ")[1].split(" |")[0]
    assert f"Over all queries of this head, {share} of the nearest keys in the picture are true top keys" in scatter
    at.selectbox(key="qkcol").set_value("norm").run()
    assert_clean(at)
    assert "Colour: vector length." in alts(at)[1][0]
    key = next(c.proto.id for c in at.get("plotly_chart") if "qk-pick-" in c.proto.id)
    at.session_state[key[key.index("qk-pick-"):]] = {"selection": {"points": [{"curve_number": 1, "point_index": 20}],
                                                                   "point_indices": [20], "box": [], "lasso": []}}
    at.run()
    assert_clean(at)
    assert at.session_state["patch"] == 20 and at.session_state["query"] == "patch"
    assert "Lines join the query patch (1, 4) to its 5 largest weights" in alts(at)[1][0]
    at.pills(key="head").set_value(3).run()
    assert subheaders(at)[0] == "Layer 5, head 3: queries and keys in one picture"
    pictures, charts = alts(visit(at, "What tokens contribute"))
    assert subheaders(at)[0] == "Layer 5: what each token adds to patch (1, 4)" and not charts
    assert [p.split(",")[0] for p in pictures] == ["Layer 5", "Layer 5", "Layer 5", "Layer 5"]
    assert "Off the image: CLS " in pictures[1] and ", the registers " in pictures[1]
    assert any(m.value.startswith("Rank correlation of weight and contribution over the 261 tokens: ρ = ")
               for m in at.markdown)
    assert any(m.value.startswith("Over all 261 queries of layer 5: CLS: ") and "the registers: " in m.value
               for m in at.markdown)
    at.slider(key="layer").set_value(12).run()
    assert_clean(at)
    assert subheaders(at)[0] == "Layer 12: what each token adds to patch (1, 4)"
    assert not trace_calls, "the two tabs recompute from the stored q, k, v"
