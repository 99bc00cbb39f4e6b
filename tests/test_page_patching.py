"""Pages 1–2 (Patching, Flattening) in AppTest: every number shown equals the traced tensors' shapes, for the
sample, an upload, the slider's extremes, non-divisible sizes and tall / wide inputs; the selected patch is shared."""
from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import vitviz
from ui.image_input import model_input
from vitviz.models.vit import ViT
from vitviz.viz.patches import PatchGrid

from .apptest import APP, app, assert_clean, code_texts, image_captions, photo, upload

OVERVIEW, PATCHING, FLATTENING = "pages/overview.py", "pages/patching.py", "pages/flattening.py"
_expected: dict[tuple, dict] = {}


def traced(ctx) -> dict:
    """Shapes of the `patches` and `flat` taps recorded by `vitviz.trace` for the page's model and input.

    The model is the page's ViT at the slider's P with its encoder layers left out: the two taps come before
    them, and a full forward at P = 4 on 512 × 1536 (49,152 tokens) would take many minutes on CPU.
    `test_page_tensors_are_the_traced_tensors` checks the values against a full model's trace.
    """
    key = (ctx.model_name, ctx.patch_size, ctx.image_key, ctx.resolution, ctx.keep_aspect)
    if key not in _expected:
        base = vitviz.load_model(ctx.model_name)
        model = ViT(replace(base.config, patch_size=ctx.patch_size, depth=0)).eval()
        _, pixel_values = model_input(ctx, base.preprocessing)
        t = vitviz.trace(model, pixel_values, include=["patches", "flat"])
        _expected[key] = dict(input=tuple(pixel_values.shape), patches=tuple(t["patches"].shape),
                              flat=tuple(t["flat"].shape))
    return _expected[key]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def check_patching(at) -> dict:
    assert_clean(at)
    shapes = traced(at.session_state["ctx"])
    _, c, h, w = shapes["input"]
    _, gh, gw, p, _, c2 = shapes["patches"]
    _, n, k = shapes["flat"]
    assert metrics(at) == {"Height H": str(h), "Width W": str(w), "Patch P": str(p), "Channels C": str(c),
                           "Grid h × w": f"{gh}×{gw}", "Patches N": f"{n:,}", "Tokens N + 1": f"{n + 1:,}"}
    assert c == c2 == 3 and n == gh * gw and k == p * p * c
    grid = PatchGrid(h, w, p)
    if grid.dropped_pixels:
        (warning,) = [x.value for x in at.warning]
        assert "drops" in warning and f"{grid.dropped_pixels:,} pixels" in warning
        if grid.drop_bottom:
            assert f"last **{grid.drop_bottom} pixel rows at the bottom**" in warning
        if grid.drop_right:
            assert f"last **{grid.drop_right} pixel columns on the right**" in warning
    else:
        assert [x.value for x in at.success] and not at.warning
    assert any(f"= {gh} \\cdot {gw} \\\\ = {n:,} \\text" in x.value for x in at.latex)
    return shapes


def check_flattening(at) -> dict:
    assert_clean(at)
    shapes = traced(at.session_state["ctx"])
    _, gh, gw, p, _, c = shapes["patches"]
    _, n, k = shapes["flat"]
    table = "\n".join(x.value for x in at.markdown)
    assert f"| pixel_values | b c H W | {shapes['input']} |" in table
    assert f"| patchify | b h w p1 p2 c | (1, {gh}, {gw}, {p}, {p}, {c}) |" in table
    assert f"| flatten → x_p | b (h w) (p1 p2 c) | (1, {n:,}, {k:,}) |" in table
    code = code_texts(at)[0]
    assert "b c (h p1) (w p2) -> b (h w) (p1 p2 c)" in code and f"# -> (1, {n}, {k})" in code
    assert f"p1={p}, p2={p}" in code
    headers = [x.value for x in at.subheader]
    assert any(f"the {n:,} × {k:,} matrix" in x for x in headers)
    assert any(f"vector of {p}·{p}·{c} = {k:,} numbers" in x for x in headers)
    return shapes


def on_page(page: str, **query) -> AppTest:
    """AppTest opened straight on `page` (deep link), with `query` in the URL."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    return at.switch_page(page).run()


@pytest.fixture
def media_sizes(monkeypatch):
    """Bytes of every image file the pages send (st.image goes through the media file storage)."""
    sizes: list[int] = []
    load = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, (bytes, bytearray)):
            sizes.append(len(path_or_data))
        return load(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return sizes


def assert_light(at, media_sizes) -> None:
    """Issue 4: ≤ 400 KB per panel — every figure's JSON and every image file."""
    figures = [len(el.proto.spec.encode()) for el in at.get("plotly_chart")]
    assert figures and max(figures) <= 400_000, figures
    assert max(media_sizes, default=0) <= 400_000, media_sizes


@pytest.mark.parametrize("page, check", [(PATCHING, check_patching), (FLATTENING, check_flattening)])
def test_sample_at_the_checkpoints_patch_size(page, check):
    at = on_page(page)
    shapes = check(at)
    assert shapes["patches"][1:4] == (14, 14, 16) and shapes["flat"][1:] == (196, 768)


@pytest.mark.parametrize("page, check", [(PATCHING, check_patching), (FLATTENING, check_flattening)])
@pytest.mark.parametrize("ps", [4, 13, 37, 64])
def test_slider_extremes_and_non_divisible_sizes(page, check, ps, media_sizes):
    at = on_page(page)
    at.slider(key="ps").set_value(ps)
    media_sizes.clear()
    at.run()
    shapes = check(at)
    assert shapes["patches"][3] == ps
    assert_light(at, media_sizes)
    assert at.info, "the page says the checkpoint's kernel is resampled for this P"


@pytest.mark.parametrize("page, check", [(PATCHING, check_patching), (FLATTENING, check_flattening)])
def test_an_upload(page, check):
    at = on_page(page)
    at = upload(at, "holiday.jpg", photo(400, 240, seed=4))
    assert at.session_state["ctx"].image_label == "holiday.jpg"
    check(at)


@pytest.mark.parametrize("size, ps", [((200, 420), 16), ((200, 420), 13), ((520, 200), 16), ((520, 200), 37)])
@pytest.mark.parametrize("page, check", [(PATCHING, check_patching), (FLATTENING, check_flattening)])
def test_tall_and_wide_uploads_keep_their_aspect(page, check, size, ps, media_sizes):
    at = on_page(page, aspect="true", ps=str(ps))
    at = upload(at, "shape.png", photo(*size, fmt="PNG", seed=5), "image/png")
    shapes = check(at)
    _, _, h, w = shapes["input"]
    assert (h > w) == (size[1] > size[0]) and h != w
    assert_light(at, media_sizes)


def test_the_largest_input_stays_within_the_payload_budget(media_sizes):
    """512 × 1536 (a 3:1 panorama at 512 with the aspect kept) at P = 4: 49,152 patches."""
    at = on_page(PATCHING)
    at = upload(at, "panorama.jpg", photo(1200, 400, seed=6))
    at.select_slider(key="res").set_value(512)
    at.toggle(key="aspect").set_value(True)
    at.slider(key="ps").set_value(4)
    media_sizes.clear()
    at.run()
    shapes = check_patching(at)
    assert shapes["flat"][1] == 128 * 384
    assert_light(at, media_sizes)
    captions = " ".join(c for img in at.image for c in img.captions)
    assert "the gallery wraps every" in captions and "49,152 tiles would not be readable" in captions
    at.switch_page(FLATTENING).run()
    check_flattening(at)
    assert_light(at, media_sizes)
    assert any("too big to offer as a download" in x.value for x in at.info)


def test_selected_patch_is_shared_clamped_and_deep_linked():
    at = on_page(FLATTENING, patch="100")
    assert at.number_input(key="patch").value == 100
    assert any("Patch 100 read as a vector" in x.value for x in at.subheader)
    at.number_input(key="patch").set_value(150).run()
    at.switch_page(PATCHING).run()
    assert_clean(at)
    assert at.number_input(key="patch").value == 150
    assert any(x.value.startswith("Patch **150** is row **10**, column **10**") for x in at.markdown)
    at.slider(key="ps").set_value(64).run()  # 9 patches: the selection moves to the last one
    assert_clean(at)
    assert at.number_input(key="patch").value == 8
    at.switch_page(FLATTENING).run()
    assert_clean(at)
    assert any("Patch 8 read as a vector" in x.value for x in at.subheader)


def test_a_deep_link_beyond_the_grid_is_clamped():
    at = on_page(PATCHING, patch="5000", ps="32")
    assert_clean(at)
    assert 0 <= at.number_input(key="patch").value <= 48


def test_a_click_on_the_figure_selects_its_patch(monkeypatch):
    from ui import patches

    grid = PatchGrid(224, 224, 16)
    event = {"selection": {"points": [{"curve_number": 3, "point_index": 16, "x": 40, "y": 24}]}}
    assert patches.patch_from_event(event, grid) == 16  # row 1, column 2
    assert patches.patch_from_event({"selection": {"points": []}}, grid) is None
    assert patches.patch_from_event(None, grid) is None
    chosen = []
    monkeypatch.setattr(patches, "select_patch", chosen.append)
    monkeypatch.setattr(patches.st, "session_state", {"grid-x": event})
    patches._on_click("grid-x", grid)
    assert chosen == [16]


def test_page_tensors_are_the_traced_tensors():
    """ui.patches computes patches/flat by calling the model's own stages; they equal what the taps record."""
    from ui.patches import _patches

    model = vitviz.load_model("dino-vits16").with_patch_size(13)
    model.preprocessing = vitviz.load_model("dino-vits16").preprocessing
    pixel_values = torch.randn(1, 3, 224, 160)
    t = vitviz.trace(model, pixel_values, include=["patches", "flat"])
    got = _patches("test-key", model, pixel_values)
    torch.testing.assert_close(torch.tensor(got.patches), t["patches"][0])
    torch.testing.assert_close(torch.tensor(got.flat), t["flat"][0])
    assert got.grid.n == t["flat"].shape[1] and got.input_shape == (1, 3, 224, 160)
    assert 0 <= got.flat01.min() and got.flat01.max() <= 1


def test_overview_link_reaches_both_pages():
    at = app()
    for page in (PATCHING, FLATTENING):
        at.switch_page(page).run()
        assert_clean(at)
        assert at.title[0].value in {"Patching", "Flattening"}


@pytest.mark.parametrize("ps", [16, 13])
def test_overview_quotes_the_traced_shapes(ps):
    at = on_page(OVERVIEW, ps=str(ps))
    assert_clean(at)
    shapes = traced(at.session_state["ctx"])
    _, c, h, w = shapes["input"]
    _, gh, gw, p, _, _ = shapes["patches"]
    flow = [m.value for m in at.markdown if m.value.startswith("`")]
    assert f"`image (H, W, C) = ({h}, {w}, {c}) → patches ({gh}, {gw}, {p}, {p}, {c})`" in flow
    assert f"`→ (N, P²·C) = {shapes['flat'][1:]}`" in flow
    assert f"`→ per layer (heads, 1+N, 1+N) = (6, {gh * gw + 1}, {gh * gw + 1})`" in flow
    assert f"What dino-vits16 receives: {h}×{w} px, {gh}×{gw} = {gh * gw} patches of {p}×{p}" in image_captions(at)
    assert any(x.value.startswith("Model: dino-vits16, random-init sandbox · D = 384") for x in at.caption)


@pytest.mark.parametrize("page", [OVERVIEW, PATCHING, FLATTENING])
def test_pages_import_neither_torch_nor_numpy(page):
    """Pages draw, the library computes: every number comes from a vitviz result."""
    tree = ast.parse((Path(APP).parent / page).read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m.split(".")[0] for m in modules} & {"torch", "numpy"}, modules


def alts(at) -> tuple[list[str], list[str]]:
    """The text alternatives of the main area's pictures and of the page's charts, in order."""
    pictures = [img.alt for element in at.main.get("image") for img in element.proto.imgs]
    return pictures, [element.proto.alt for element in at.get("plotly_chart")]


@pytest.mark.parametrize("ps, selected", [(13, 20), (16, 195)])
def test_every_picture_and_chart_says_what_it_shows(ps, selected):
    """Each alt is the description of the page's own result: the traced grid, the selected patch, its vector."""
    at = on_page(OVERVIEW, ps=str(ps), patch=str(selected))
    shapes = traced(at.session_state["ctx"])
    _, _, h, w = shapes["input"]
    _, gh, gw, p, _, _ = shapes["patches"]
    _, n, k = shapes["flat"]
    cut = f"{gh} × {gw} = {n:,} patches of {p} × {p} px"
    pictures, charts = alts(at)
    assert charts == [] and len(pictures) == 1
    assert pictures[0].startswith(f"The image dino-vits16 receives (cat), {w} px wide and {h} px tall")
    assert cut in pictures[0]

    at.switch_page(PATCHING).run()
    (gallery,), (grid, zoom) = alts(at)
    assert grid.startswith(f"The input as the model sees it, {w} px wide and {h} px tall, cut into {cut}")
    row, col = divmod(selected, gw)
    assert f"Patch {selected} is framed in yellow and black: row {row} of {gh}, column {col} of {gw}" in grid
    assert ("dropped" in grid) == (h % p + w % p > 0)
    assert zoom.startswith(f"Patch {selected} enlarged: {p} × {p} pixels × 3 channels")
    assert gallery.startswith(f"Patches 0–{n - 1:,} of {n:,} as tiles in raster order, {gw} per line")

    at.switch_page(FLATTENING).run()
    (matrix,), (grid_again, zoom_again, strip, rows) = alts(at)
    assert (grid_again, zoom_again) == (grid, zoom)
    assert strip.startswith(f"The first 12 of the {k:,} numbers of patch {selected}'s vector")
    assert rows.startswith(f"All {k:,} numbers of patch {selected}, wrapped into {p} lines")
    assert matrix.startswith(f"The {n:,} × {k:,} matrix") and f"Row {selected}, " in matrix
