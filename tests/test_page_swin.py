"""Page 6 (Swin windows) in AppTest: every control, every window size 2–14 with every shift 0…M−1, the model notes,
the mask statistics and the worked example as displayed, the attention on the page against the traced model, and the
text alternative of every picture and chart of every tab against the descriptions of an independently computed run.
The page's six steps are lazy tabs (only the open one runs): each test opens the tab it reads."""
from __future__ import annotations

import numpy as np
import pytest

import vitviz
from vitviz.describe import swin as describe
from vitviz.images import load_sample
from vitviz.preprocess import resize_and_crop, to_pixel_values
from vitviz import swin_windows as sw

from .apptest import app, assert_clean, code_texts, open_tab, tables

PAGE = "pages/swin.py"
SECTIONS = ("Partition", "Cyclic shift", "Mask & attention", "Relative position bias", "Patch merging", "Cost")
HEADINGS = ("1 · Window partition", "2 · Cyclic shift", "3 · The shift mask", "4 · Relative position bias",
            "5 · Patch merging", "6 · What windows save")
MASK = "Mask & attention"


def open_page(**query):
    at = app(**query)
    at.switch_page(PAGE).run()
    assert_clean(at)
    return at


def visit(at, section: str):
    return open_tab(at, "swsec", section)


def texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + code_texts(at) + [c.value for c in at.caption]
                     + [w.value for w in at.warning] + [i.value for i in at.info] + [e.value for e in at.error]
                     + [c for el in at.get("image") for c in el.captions])


def notes(at) -> str:
    return "\n".join([i.value for i in at.info] + [w.value for w in at.warning])


@pytest.fixture(scope="module")
def model():
    return vitviz.load_model("swin-tiny", device="cpu")


def pixels(model, res: int = 224):
    image = resize_and_crop(load_sample("cat"), model.preprocessing, None if res == 224 else (res, res))
    return to_pixel_values(image, model.preprocessing)


def test_opens_with_defaults_and_shows_every_part():
    at = open_page()
    assert (at.slider(key="M").value, at.slider(key="shift").value) == (7, 3)
    assert at.radio(key="swstage").value == 1 and at.radio(key="swblock").value == "regular"
    assert at.select_slider(key="swp").value == 4
    assert list(at.radio(key="swstage").proto.captions) == ["56×56×96", "28×28×192", "14×14×384", "7×7×768"]
    assert [t.label for t in at.tabs] == list(SECTIONS)
    assert [h.value for h in at.subheader] == ["1 · Window partition"]  # only the open tab is drawn
    body = texts(at)
    assert "Adapted model" not in body  # the checkpoint itself: M = 7, P = 4
    assert "has shape **(64, 49, 96)**" in body and "**64 windows** of **49 tokens**" in body
    assert "not a multiple of" not in body
    latex, checks = 0, []
    for section, heading in zip(SECTIONS, HEADINGS):
        visit(at, section)
        assert [h.value for h in at.subheader if h.value.startswith(heading)] == [h.value for h in at.subheader], section
        assert len(at.subheader) == 1, section
        assert at.slider(key="M").value == 7 and at.radio(key="swstage").value == 1  # the controls stay as they were
        latex += len(at.latex)
        checks.append(texts(at))
    body = "\n".join(checks)
    assert "Random weights" in body
    assert latex >= 7
    assert "max |Δ| = 0   ✓ exact" in body and "✗" not in body


def test_a_deep_link_opens_a_tab():
    at = open_page(swsec="Cost")
    assert [h.value for h in at.subheader] == ["6 · What windows save: only the attention term"]
    at.slider(key="M").set_value(9).run()  # a window-size move keeps the tab
    assert_clean(at)
    assert [h.value for h in at.subheader] == ["6 · What windows save: only the attention term"] and "M = 9" in texts(at)


def test_mask_statistics_as_displayed_at_m7_s3_on_56x56():
    at = open_page(swsec=MASK)
    body = texts(at)
    assert "Shifted block, s = 3: **9 regions** on the map, **15 of 64 windows** have a mask" in body
    assert "edge windows: 14 × **1176 / 2401** pairs masked" in body
    assert "corner window: 1 × **1776 / 2401** pairs masked" in body
    assert "interior windows: 49 × **0 / 2401**" in body
    assert at.number_input(key="swwin").value == 63  # the corner window by default
    assert "holds **4 regions**: **1776 of 2401 pairs** (query, key) are masked" in body
    at.number_input(key="swwin").set_value(7).run()
    assert "holds **2 regions**: **1176 of 2401 pairs**" in texts(at)
    at.number_input(key="swwin").set_value(0).run()
    assert "holds **1 region**: **0 of 2401 pairs**" in texts(at)
    assert "mask vs pair-by-pair comparison of its labels" in texts(at)


def test_worked_example_windows_exactly():
    at = open_page(swsec="Cyclic shift")
    code = "\n".join(code_texts(at))
    assert "B2 B3 B4 B1\nC2 C3 C4 C1\nD2 D3 D4 D1\nA2 A3 A4 A1" in code
    table = "\n".join(m.value for m in at.markdown)
    for i, (window, regions) in enumerate(zip(["B2 B3 / C2 C3", "B4 B1 / C4 C1", "D2 D3 / A2 A3", "D4 D1 / A4 A1"],
                                              [1, 2, 2, 4])):
        assert f"| {i} | {window} | {regions} |" in table


@pytest.mark.parametrize("M, stage, win, query", [
    (7, 1, 63, 24), (7, 1, 10, 0), (5, 1, 143, 7), (7, 2, 15, 48), (3, 3, 20, 4), (14, 1, 15, 195), (7, 4, 0, 30),
    (2, 2, 195, 3),
])
def test_page_attention_equals_the_traced_model(model, M, stage, win, query):
    at = open_page(M=str(M), swstage=str(stage), swwin=str(win), swq=str(query), swsec=MASK)
    assert_clean(at)
    assert (at.number_input(key="swwin").value, at.number_input(key="swq").value) == (win, query)
    t = vitviz.trace(model, pixels(model), include=[f"stages.{stage - 1}.blocks.{b}.attn.probs" for b in (0, 1)],
                     window_size=M)
    blocks = tables(at, "head")  # the regular block's, then the shifted block's
    assert len(blocks) == 2
    # Written to 4 decimals; the page's script thread and this test's thread may run torch with different thread
    # counts (OpenMP keeps the count per thread), which sums in another order: equal to float32 rounding.
    for b, table in enumerate(blocks):
        probs = t[f"stages.{stage - 1}.blocks.{b}.attn.probs"][win, :, query].numpy()  # (heads, M²)
        assert table["head"] == [str(h + 1) for h in range(probs.shape[0])]
        np.testing.assert_allclose(np.float64(table["its weight"]), probs.max(-1), rtol=0, atol=5e-5 + 1e-6)
        np.testing.assert_allclose(np.float64(table["weight on itself"]), probs[:, query], rtol=0, atol=5e-5 + 1e-6)
        m = int(round(probs.shape[-1] ** 0.5))
        keys = [int(text.split()[0]) for text in table["top key"]]
        assert table["top key"] == [f"{k} ({k // m}, {k % m})" for k in keys]
        # each named key is the largest (a key within rounding of it would be an equally true answer)
        np.testing.assert_allclose(probs[np.arange(len(keys)), keys], probs.max(-1), rtol=1e-6, atol=0)


def test_a_shift_the_checkpoint_does_not_use_reruns_the_block_and_says_so(model):
    at = open_page(shift="1", swsec=MASK)
    assert "**Shift s = 1, but the checkpoint's shifted blocks use s = ⌊7/2⌋ = 3.**" in notes(at)
    assert "(re-run with your s)" in texts(at)
    body = texts(at)
    assert "Shifted block, s = 1: **9 regions** on the map, **15 of 64 windows**" in body
    assert "edge windows: 14 × **588 / 2401**" in body and "corner window: 1 × **1032 / 2401**" in body
    x = pixels(model)
    run = sw.run_stage(model, x, 7, 0)
    view = sw.rerun_with_shift(model, run, 1)
    _regular, shifted = tables(at, "head")
    np.testing.assert_allclose(np.float64(shifted["its weight"]), view.probs[63, :, 24].max(-1), rtol=0,
                               atol=5e-5 + 1e-7)
    assert "(re-run with your s)" in texts(visit(at, "Cyclic shift"))
    at.slider(key="shift").set_value(3).run()
    assert_clean(at)
    assert "but the checkpoint's shifted blocks use" not in notes(at)
    assert "(traced)" in texts(at)


@pytest.mark.parametrize("M", range(2, 15))
def test_every_window_size_and_every_shift_runs_clean(M):
    at = open_page(swsec="Cyclic shift")
    at.slider(key="M").set_value(M).run()
    assert_clean(at)
    assert at.slider(key="shift").value == M // 2  # a new M starts at its own default shift
    assert ("Adapted model: M = " in notes(at)) == (M != 7)
    for section in ("Cyclic shift", MASK):  # the two tabs that draw the shift
        visit(at, section)
        for s in range(M):
            at.slider(key="shift").set_value(s).run()
            assert_clean(at)
            body = texts(at)
            if section == MASK:
                assert f"Shifted block, s = {s}:" in body if s else "No shift here: the mask is all zeros" in body
            else:
                assert f"by **(−{s}, −{s})**" in body
            assert ("but the checkpoint's shifted blocks use" in notes(at)) == (s != M // 2)


@pytest.mark.parametrize("stage", [2, 3, 4])
@pytest.mark.parametrize("M", [2, 6, 13])
def test_other_stages_across_window_sizes_and_shifts(stage, M):
    at = open_page(swstage=str(stage), M=str(M))
    for s in sorted({0, 1, M // 2, M - 1}):
        at.slider(key="shift").set_value(s).run()
        assert_clean(at)
    at.radio(key="swblock").set_value("shifted").run()
    assert_clean(at)
    for section in SECTIONS:
        visit(at, section)


def test_window_size_adaptation_is_stated_exactly():
    at = open_page(M="5")
    note = notes(at)
    assert "**Adapted model: M = 5 instead of the checkpoint's 7.**" in note
    assert "(13)² = 169 offsets" in note and "(9)² = 81 offsets" in note
    assert "bicubically" in note and "resize_rel_pos_bias_table" in note and "s = ⌊5/2⌋ = 2" in note
    assert "**56 × 56 is not a multiple of the 5 × 5 window.**" in notes(at)
    assert "to **60 × 60** (4 rows, 4 columns" in notes(at)
    assert "has shape **(144, 25, 96)**" in texts(at)
    assert "resampled bicubically from the checkpoint's (13)² = 169 rows" in texts(visit(at, "Relative position bias"))


@pytest.mark.parametrize("query, stage, M, text", [
    ({}, 4, 7, "its map is 7×7 and min(7, 7) = 7 ≤ M = 7"),
    ({}, 3, 14, "its map is 14×14 and min(14, 14) = 14 ≤ M = 14"),
    ({"res": "64"}, 3, 7, "its map is 4×4 and min(4, 4) = 4 ≤ M = 7"),
])
def test_a_stage_no_larger_than_a_window_is_one_unshifted_window(query, stage, M, text):
    at = open_page(swstage=str(stage), M=str(M), swsec=MASK, **query)
    note = notes(at)
    assert text in note and "window and shift 0** (1 window)" in note
    assert "No shift here" in texts(at)


def test_patch_size_adaptation():
    at = open_page(swp="8")
    note = notes(at)
    assert "**Adapted model: P = 8 instead of the checkpoint's 4.**" in note and "pseudo-inverse" in note
    assert list(at.radio(key="swstage").proto.captions) == ["28×28×96", "14×14×192", "7×7×384", "4×4×768"]
    assert "**16 windows** of **49 tokens**" in texts(at)
    at.select_slider(key="swp").set_value(16).run()
    assert_clean(at)
    assert list(at.radio(key="swstage").proto.captions) == ["14×14×96", "7×7×192", "4×4×384", "2×2×768"]
    assert "is no larger than one window" not in notes(at)  # stage 1: 14×14, four 7×7 windows
    at.radio(key="swstage").set_value(2).run()
    assert_clean(at)
    assert "its map is 7×7 and min(7, 7) = 7 ≤ M = 7" in notes(at)


def test_patch_merging_numbers():
    at = open_page(swsec="Patch merging")
    body = texts(at)
    assert "**56×56×96 → 28×28×192 → 14×14×384 → 7×7×768**" in body
    assert "`stages.0.merged` **(1, 784, 192)**" in body
    assert "merge(x) vs cat[x0, x1, x2, x3] by hand" in body
    at.radio(key="swstage").set_value(4).run()
    assert "Stage 4 is the last stage: no merging after it." in notes(at)
    at.radio(key="swstage").set_value(3).run()
    assert "`stages.2.merged` **(1, 49, 768)**" in texts(at)


def test_cost_numbers_for_the_current_stage():
    at = open_page(swsec="Cost")
    body = texts(at)
    assert "2(hw)²C = **1.89 G**" in body and "2M²hwC = **29.50 M**" in body
    assert "shrinks **64.0×** (= hw / M² = 3136 / 49)" in body
    assert body.count("115.61 M") >= 2  # the projection term is the same for both


def test_selection_is_reset_by_a_new_window_size_and_by_a_stage_it_does_not_fit():
    at = open_page()
    at.number_input(key="swwin").set_value(5)
    at.number_input(key="swq").set_value(40).run()
    at.slider(key="M").set_value(8).run()
    assert_clean(at)
    assert (at.number_input(key="swwin").value, at.number_input(key="swq").value) == (48, 32)  # 7×7 windows of 64
    at.radio(key="swstage").set_value(4).run()
    at.slider(key="swhead").set_value(20).run()
    assert_clean(at)
    at.radio(key="swstage").set_value(1).run()
    assert_clean(at)
    assert at.slider(key="swhead").value == 1  # head 20 of 3: back to the slider's default


def test_deep_link_selects_everything():
    at = open_page(M="5", shift="1", swstage="2", swblock="shifted", swwin="3", swq="12", swhead="4", swsec=MASK)
    assert (at.slider(key="M").value, at.slider(key="shift").value) == (5, 1)
    assert at.radio(key="swstage").value == 2 and at.radio(key="swblock").value == "shifted"
    assert (at.number_input(key="swwin").value, at.number_input(key="swq").value) == (3, 12)
    assert at.slider(key="swhead").value == 4
    assert any("What the real model attends to in window 3, query token 12" in m.value for m in at.markdown)


def test_non_square_input():
    at = open_page(aspect="true", img="coffee", res="160", M="6")
    assert_clean(at)
    for stage in (2, 3, 4):
        at.radio(key="swstage").set_value(stage).run()
        assert_clean(at)
        for section in SECTIONS:
            visit(at, section)


def alternatives(at) -> tuple[list[str], list[str]]:
    """The alt texts of the main area's pictures and charts, in the order drawn."""
    return ([img.alt for element in at.main.get("image") for img in element.proto.imgs],
            [element.proto.alt for element in at.main.get("plotly_chart")])


def test_every_picture_and_chart_carries_the_description_of_what_it_draws(model):
    """M = 5 on 56×56 (padded to 60, shift 2), the defaults: window 143 (the corner), query 12, roll step 1, head 1."""
    at = open_page(M="5")
    view = sw.stage_view(model, pixels(model), sw.Selection(5, 2, 0, 0, 143, 12, 0))
    part, labels = view.partition, view.shifted.labels
    expected = {
        "Partition": ([describe.partition(v.partition, 143, v.block) for v in view.blocks], []),
        "Cyclic shift": ([describe.roll(part, 0, False), describe.roll(part, 1, False), describe.roll(part, 2, True),
                          describe.regions(labels, 5, 0), describe.regions(labels, 5, 2)], []),
        MASK: ([describe.window_regions(view.selected_labels, 143),
                *(describe.footprint(att, v.partition, 143, v.block) for v, att in zip(view.blocks, view.attention)),
                *(describe.head_mosaic(att, v.block) for v, att in zip(view.blocks, view.attention))],
               [describe.mask(view.selected_mask, view.selected_labels, 143, 12)]),
        "Relative position bias": ([], [describe.bias_table(view.chosen.bias_table, 5, 0),
                                        describe.bias_grid(view.chosen.bias_table, 5, 0, 12, 5),
                                        describe.query_bias(view.query_bias, 12, 0)]),
        "Patch merging": ([*(describe.stage_grid(layout, i) for i, layout in enumerate(view.plan.stages)),
                           describe.merge(view.run.merge, 0)], []),
        "Cost": ([], [describe.cost(view.cost_curves, 224)]),
    }
    for section in SECTIONS:
        images, charts = alternatives(visit(at, section))
        assert (images, charts) == expected[section], section
        assert all(alt.strip() for alt in images + charts), section
    # the numbers a student reads off the mask: 3 regions mixed in the corner window, (5 − 2)² = 9 tokens of its own
    mask_alt = expected[MASK][1][0]
    assert "Mask of window 143: 25×25 = 625 pairs" in mask_alt and "may attend to 9 of the 25 keys" in mask_alt
