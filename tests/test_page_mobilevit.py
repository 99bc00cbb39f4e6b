"""Page 7 (MobileViT) in AppTest: every control, patch sizes and input sizes that the patch does not divide, a
click on the map, the numbers on the page against the traced model, and the text alternative of every picture and
chart of every tab against the descriptions of an independently computed run. The block's steps are lazy tabs (only
the open one runs): each test opens the tab it reads."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import vitviz
from vitviz import mobilevit_blocks as mb
from vitviz.describe import mobilevit as describe
from vitviz.images import load_sample
from vitviz.models.mobilevit import patch_multiple
from vitviz.preprocess import resize_and_crop, to_pixel_values

from .apptest import app, assert_clean, code_texts, open_tab, probability, tables

PAGE = "pages/mobilevit.py"
SECTIONS = ("Local representation", "Unfold", "Global representation", "Fold", "Fusion", "Receptive field", "Cost")


def open_page(**query):
    at = app(**query)
    at.switch_page(PAGE).run()
    assert_clean(at)
    return at


def visit(at, section: str):
    return open_tab(at, "mvsec", section)


def every_tab(at) -> str:
    """The texts of every tab, each drawn in turn."""
    return "\n".join(texts(visit(at, section)) for section in SECTIONS)


def equations(at) -> list[str]:
    """The equations drawn as inline LaTeX pieces (`_equation`)."""
    return [m.value for m in at.markdown if m.value.startswith("$")]


def texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + code_texts(at) + [c.value for c in at.caption]
                     + [w.value for w in at.warning])


def page_input(model_name: str, res: int):
    """The model and the page's input: the sample photo as the checkpoint's processor makes it at 256 (shortest
    edge 288, centre crop), resized straight to res × res otherwise (as the sidebar does)."""
    model = vitviz.load_model(model_name, device="cpu")
    image = resize_and_crop(load_sample("cat"), model.preprocessing, None if res == 256 else (res, res))
    return model, to_pixel_values(image, model.preprocessing)


def reference(model_name: str, res: int, patch: tuple[int, int]):
    """The traced model on the page's input."""
    model, x = page_input(model_name, res)
    include = [f"stages.{i}.block.{t}" for i in (2, 3, 4) for t in ("local", "unfolded", "fused")]
    return vitviz.trace(model, x, include=include, patch_size=patch)


def test_opens_with_defaults_and_shows_every_part():
    at = open_page()
    assert at.selectbox(key="mvit").value == "mobilevit-xxs"
    assert at.radio(key="mvstage").value == 2
    assert (at.slider(key="ph").value, at.slider(key="pw").value) == (2, 2)
    assert [t.label for t in at.tabs] == list(SECTIONS)
    assert [s.value for s in at.subheader] == ["1 · Local representation: 3×3 conv, then 1×1 conv to d",
                                               "8 · What the model predicts"]  # the open tab, then the predictions
    assert "Random weights" in texts(at)  # the preset's predictions are said to be random
    assert [len(t["class"]) for t in tables(at, "class")] == [5]  # top-5
    bodies, steps = [], 0
    for section, needle in zip(SECTIONS, ("Local representation", "Unfold", "attention across the patches", "Fold",
                                          "Fusion", "Every pixel sees every pixel", "What attention costs")):
        visit(at, section)
        assert needle in at.subheader[0].value and len(at.subheader) == 2, section
        bodies.append(texts(at))
        # the block's equation above the tabs, then the step's own: inline pieces that wrap on a phone, no st.latex
        assert not at.latex and equations(at)[0].startswith(r"${X \in \mathbb{R}^{H\times W\times C}}$"), section
        steps += len(equations(at)) - 1
    assert "max |Δ| = 0 ✓ exact" in "\n".join(bodies)
    assert steps == 6  # every step but the receptive field has its equation


def test_stage_captions_show_each_stage_size_at_the_current_resolution():
    at = open_page(res="256")
    assert at.radio(key="mvstage").options == ["2", "3", "4"] or at.radio(key="mvstage").options == [2, 3, 4]
    captions = list(at.radio(key="mvstage").proto.captions)
    assert captions == ["32×32×64 · 1/8", "16×16×80 · 1/16", "8×8×96 · 1/32"]
    at.selectbox(key="mvit").set_value("mobilevit-s").run()
    assert_clean(at)
    assert list(at.radio(key="mvstage").proto.captions) == ["32×32×144 · 1/8", "16×16×192 · 1/16", "8×8×240 · 1/32"]


@pytest.mark.parametrize("res, stage, ph, pw", [
    (256, 2, 2, 2),  # the checkpoint's own setting
    (224, 2, 3, 5),  # 28 × 28 divided by neither
    (208, 3, 3, 5),  # 13 × 13
    (256, 4, 8, 8),  # 8 × 8 map, one patch
    (96, 4, 8, 3),  # a 3 × 3 map smaller than the patch
    (160, 2, 1, 1),  # every pixel a patch
    (176, 3, 7, 2),  # 11 × 11
])
def test_page_numbers_equal_the_traced_model(res, stage, ph, pw):
    at = open_page(res=str(res), mvstage=str(stage), ph=str(ph), pw=str(pw))
    ref = reference("mobilevit-xxs", res, (ph, pw))
    prefix = f"stages.{stage}.block"
    local = ref[f"{prefix}.local"][0]
    h, w = local.shape[-2:]
    hr, wr = patch_multiple(h, w, ph, pw)
    unfolded = ref[f"{prefix}.unfolded"]
    body = every_tab(at)
    warnings = texts(visit(at, "Unfold"))
    assert f"has shape **({', '.join(map(str, unfolded.shape))})**" in body
    assert f"**P = {ph * pw}** sequences of **N = {hr * wr // (ph * pw)}** patches" in body
    resized = (hr, wr) != (h, w)
    assert (f"from {h} × {w} up to {hr} × {wr}" in warnings) == resized
    if resized:
        assert "The resize is the one lossy step" in body
    for line in ("fold(unfold(X_L)) vs X_L", "unfold(fold(X_U)) vs X_U", "unfold(X_L) vs traced `unfolded`",
                 "fold(traced `global_`) vs traced `folded`", "vs `local`", "vs `fused`"):
        assert re.search(re.escape(line) + r".*max \|Δ\| = 0 ✓ exact", body), line
    # the selected pixel's numbers on the page are the traced X_U at (p, n)
    r, c = at.number_input(key="mvr").value, at.number_input(key="mvc").value
    p, n = (r % ph) * pw + c % pw, (r // ph) * (wr // pw) + c // pw
    assert f"| X_L[{r}, {c}, :] | X_U[{p}, {n}, :] |" in body
    for k, v in enumerate(unfolded[p, n, :3].tolist()):  # before and after unfold: the same number
        assert f"| [{k}] | {v:+.4f} | {v:+.4f} |" in body
    assert f"= {p}** (row {r % ph}, column {c % pw} inside its patch)" in body


@pytest.mark.parametrize("model", ["mobilevit-xxs", "mobilevit-s"])
def test_patch_and_stage_moves_run_clean(model):
    at = open_page(mvit=model, res="208")
    for ph, pw in [(1, 8), (8, 1), (5, 5), (2, 3), (4, 4)]:
        at.slider(key="ph").set_value(ph)
        at.slider(key="pw").set_value(pw).run()
        assert_clean(at)
        for stage in (3, 4, 2):
            at.radio(key="mvstage").set_value(stage).run()
            assert_clean(at)
            assert f"patch **{ph} × {pw}** → **P = {ph * pw}**" in texts(at)


def test_selected_pixel_inputs_and_layer_are_clamped_to_the_map():
    at = open_page(res="256", mvr="31", mvc="30", mvsec="Global representation")
    assert (at.number_input(key="mvr").value, at.number_input(key="mvc").value) == (31, 30)
    at.slider(key="mvl").set_value(2).run()
    at.radio(key="mvstage").set_value(4).run()  # an 8 × 8 map: the pixel and layer must fit
    assert_clean(at)
    assert (at.number_input(key="mvr").value, at.number_input(key="mvc").value) == (7, 7)
    at.radio(key="mvstage").set_value(3).run()
    at.slider(key="mvl").set_value(4).run()
    at.radio(key="mvstage").set_value(2).run()  # 2 layers only
    assert_clean(at)
    assert at.slider(key="mvl").value == 2


def test_number_inputs_select_the_pixel_and_its_offset_and_patch():
    at = open_page(res="256", mvsec="Unfold")
    at.number_input(key="mvr").set_value(5)
    at.number_input(key="mvc").set_value(6).run()
    assert_clean(at)
    body = texts(at) + texts(visit(at, "Global representation"))
    # 2 × 2 patches on 32 × 32: p = 1·2 + 0 = 2, n = 2·16 + 3 = 35
    assert "= 1·2 + 0 = 2** (row 1, column 0 inside its patch)" in body
    assert "= 2·16 + 3 = 35** (patch row 2, column 3)" in body
    assert "In sequence p = 2, the selected pixel is token n = 35" in body


def test_click_on_the_map_selects_the_pixel():
    at = open_page(res="256", mvsec="Unfold")
    key = next(k for k in at.session_state.keys() if str(k).startswith("mv-map-"))
    at.session_state[key] = {"selection": {"points": [{"customdata": [9, 4, 2, 66], "x": 0, "y": 0}]}}
    at.run()
    assert_clean(at)
    assert (at.number_input(key="mvr").value, at.number_input(key="mvc").value) == (9, 4)
    assert "Pixel **(r, c) = (9, 4)**" in texts(at)


def test_top5_predictions_from_the_model_logits():
    at = open_page(res="256")
    model = vitviz.load_model("mobilevit-xxs", device="cpu")
    x = vitviz.preprocess(load_sample("cat"), model.preprocessing)  # native 256: the checkpoint's processor
    with torch.inference_mode():
        probs = model(x, output_attentions=False).logits[0].softmax(-1)
    top = probs.topk(5)
    (table,) = tables(at, "class")
    assert table["class"] == [model.config.labels[i] for i in top.indices.tolist()]
    # written to 0.01 %: within half of that of the model's own probabilities
    np.testing.assert_allclose([probability(c) for c in table["probability"]], top.values.numpy(), rtol=0,
                               atol=5e-5 + 1e-7)


def test_upload_not_divisible_and_aspect_kept():
    from .apptest import photo, upload

    at = upload(app(res="112", aspect="true"), "wide.png", photo(300, 130, "PNG", seed=4), "image/png")
    at.switch_page(PAGE).run()
    assert_clean(at)
    for ph, pw in [(3, 3), (2, 5), (8, 8)]:
        at.slider(key="ph").set_value(ph)
        at.slider(key="pw").set_value(pw).run()
        assert_clean(at)
        for stage in (2, 3, 4):
            at.radio(key="mvstage").set_value(stage).run()
            assert_clean(at)
    every_tab(at)


@pytest.mark.parametrize("ph, pixel, says", [
    (2, (16, 16), "**every output pixel depends on every input pixel**"),
    (4, (16, 16), "**but not every output pixel does**"),  # 32 × 32, 4 × 4: only the border misses pixels
    (8, (0, 0), "input pixels are out of reach**"),
])
def test_receptive_field_text_follows_the_patch(ph, pixel, says):
    at = open_page(res="256", ph=str(ph), pw=str(ph), mvr=str(pixel[0]), mvc=str(pixel[1]), mvsec="Receptive field")
    assert says in texts(at)


def test_channels_chosen_on_the_first_tab_follow_to_the_other_tabs():
    at = open_page(res="256")
    at.multiselect(key="mvch3").set_value([7, 9])
    at.multiselect(key="mvch1").set_value([5, 6]).run()
    assert_clean(at)
    assert "The traced X_U for channel 5 " in texts(visit(at, "Unfold"))
    fusion = [c for el in visit(at, "Fusion").get("image") for c in el.captions]
    assert "projected: channel 7" in fusion and "fused: channel 9" in fusion
    visit(at, "Local representation")
    assert at.multiselect(key="mvch3").value == [7, 9] and at.multiselect(key="mvch1").value == [5, 6]
    at.radio(key="mvstage").set_value(4).run()  # stage 4: C = 96 and d = 80 channels, the choice still fits
    assert_clean(at)
    assert at.multiselect(key="mvch1").value == [5, 6]


def alternatives(at) -> tuple[list[str], list[str]]:
    """The alt texts of the main area's pictures and charts, in the order drawn."""
    return ([img.alt for element in at.main.get("image") for img in element.proto.imgs],
            [element.proto.alt for element in at.main.get("plotly_chart")])


@pytest.mark.parametrize("res, stage, ph, pw, pixel", [
    (256, 2, 2, 2, (5, 6)),  # the checkpoint's setting
    (208, 3, 3, 5, (14, 2)),  # 13 × 13 resized to 15 × 15: the pixel past the edge
])
def test_every_picture_and_chart_carries_the_description_of_what_it_draws(res, stage, ph, pw, pixel):
    at = open_page(res=str(res), mvstage=str(stage), ph=str(ph), pw=str(pw), mvr=str(pixel[0]), mvc=str(pixel[1]))
    model, x = page_input("mobilevit-xxs", res)
    block = mb.run_blocks(model, mb.trunk(model, x), (ph, pw)).blocks[stage]
    selected, field = block.select(*pixel), block.receptive_field(*pixel)
    attention = block.attention(0, selected.p, selected.n)
    photo, chosen = describe.photo(block), [0, 1, 2, 3]

    def row(maps, label):
        return [photo] + [describe.feature_map(maps, ch, label) for ch in chosen]

    expected = {
        "Local representation": (row(block.conv3, "3×3 conv, BN, SiLU") + row(block.taps["local"], "1×1 conv → X_L"),
                                 []),
        "Unfold": ([describe.legend(block.unfolding)],
                   [describe.offset_map(block, selected), describe.unfolded(block, 0, selected)]),
        "Global representation": ([describe.attention_head(block, attention, h) for h in range(block.heads)], []),
        "Fold": ([], []),
        "Fusion": (row(block.taps["projected"], "projected") + row(block.taps["fused"], "fused"), []),
        "Receptive field": ([describe.receptive_field(field), describe.conv_field(field)], []),
        "Cost": ([], []),
    }
    for section in SECTIONS:
        images, charts = alternatives(visit(at, section))
        assert (images, charts) == expected[section], section
        assert all(alt.strip() for alt in images + charts), section
    # what the selected pixel's description says, against the unfold geometry
    p, n = block.unfolding.locate(*pixel)
    assert f"offset p = {p} " in expected["Unfold"][1][0] and f"of patch n = {n} " in expected["Unfold"][1][0]


def test_the_pixel_inputs_are_labelled_for_a_keyboard_and_a_screen_reader():
    """Choosing a pixel needs no pointer: two labelled number inputs, bound to the address, move the selection."""
    at = open_page(res="256")
    row, col = at.number_input(key="mvr"), at.number_input(key="mvc")
    assert row.label == "Pixel row r (0–31)" and col.label == "Pixel column c (0–31)"
    assert (row.min, row.max, col.min, col.max, row.step) == (0, 31, 0, 31, 1)


def test_the_offset_maps_picture_is_a_cacheable_file_and_the_shared_figure_keeps_its_own(monkeypatch):
    """ui.common.cacheable_pictures: the map's WebP behind the axes goes out as a media URL named by its content
    (a browser keeps it; inside the websocket answer it was base64), the same URL whenever the same picture is
    drawn again; the figure shared through st.cache_resource still holds its data URI."""
    import json

    from ui.tabs import mobilevit as tabs

    def source(at) -> str:
        (image,) = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["images"]
        return image["source"]

    drawn = []
    monkeypatch.setattr(tabs, "chart", lambda fig, _chart=tabs.chart, **kw: (drawn.append(fig), _chart(fig, **kw))[1])
    at = open_page(mvsec="Unfold")
    first, row = source(at), at.number_input(key="mvr").value
    assert re.fullmatch(r"/mock/media/[0-9a-f]+\.webp", first), first[:80]
    assert drawn and drawn[0].layout.images[0].source.startswith("data:image/webp;base64,")
    at.number_input(key="mvr").set_value(row + 1).run()  # another pixel framed: another picture, another file
    assert_clean(at)
    assert source(at) != first and source(at).startswith("/mock/media/")
    at.number_input(key="mvr").set_value(row).run()  # the first picture again: its URL again, kept by the browser
    assert source(at) == first
