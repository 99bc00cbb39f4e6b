"""AppTest of the "Linear projection" and "Position embeddings" pages: sample, upload, slider extremes,
non-divisible patch sizes, tall and wide images; the numbers shown equal the traced tensors' shapes."""
from __future__ import annotations

import re

import pytest

import vitviz
from ui.image_input import model_input
from vitviz import embeddings as emb

from .apptest import app, assert_clean, photo, upload

PROJECTION, POSITION = "pages/projection.py", "pages/position.py"
PANEL_BUDGET = 400_000
MEDIA: dict[str, int] = {}  # media file id -> bytes, for every st.image the app sends


@pytest.fixture(autouse=True)
def _record_media(monkeypatch):
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    load = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = load(self, path_or_data, mimetype, kind, filename)
        MEDIA[file_id] = len(path_or_data) if isinstance(path_or_data, (bytes, bytearray)) else -1
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    MEDIA.clear()
    yield


def open_page(page: str, image: tuple[str, bytes] | None = None, **query):
    at = app(**{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in query.items()})
    if image is not None:
        at = upload(at, *image)
    at.switch_page(page).run()
    assert_clean(at)
    return at


def traced(at) -> dict:
    """The taps of Eq. 1 for the app's current settings, computed here independently of the page."""
    ctx = at.session_state["ctx"]
    model = vitviz.load_model(ctx.model_name, device="cpu")
    preprocessing = model.preprocessing
    if ctx.patch_size != model.config.patch_size:
        model = model.with_patch_size(ctx.patch_size)
    _, pixel_values = model_input(ctx, preprocessing)
    rec = emb.embedding_trace(model, pixel_values)
    grid = (pixel_values.shape[-2] // ctx.patch_size, pixel_values.shape[-1] // ctx.patch_size)
    return {"shapes": {k: tuple(v.shape) for k, v in rec.items()}, "P": ctx.patch_size, "model": model, "grid": grid}


def image_captions(at) -> list[str]:
    return [caption for el in at.get("image") for caption in el.captions]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def charts(at) -> list[int]:
    """JSON sizes of the plotly charts on the page (what Streamlit sends)."""
    return [len(c.proto.spec) for c in at.get("plotly_chart")]


def images(at) -> list[int]:
    """Byte sizes of the images on the page (what Streamlit serves for each st.image)."""
    return [MEDIA[url.rsplit("/", 1)[1].split(".")[0]] for el in at.get("image") for url in el.value
            if url.startswith("/mock/media/")]


def alts(at) -> list[str]:
    """The text alternative of every picture and chart of the page (not the sidebar's), pictures first."""
    return ([img.alt for el in at.main.get("image") for img in el.proto.imgs]
            + [c.proto.alt for c in at.main.get("plotly_chart")])


def assert_described(at) -> None:
    """Every picture and chart has a text alternative that says something (none is left empty or decorative)."""
    texts = alts(at)
    assert texts and all(len(t.split()) >= 8 for t in texts), texts


def latex_row(at, marker: str) -> str:
    """The pieces of the displayed equation whose first piece contains `marker`, joined (a page writes a long
    equation in pieces that wrap on a phone)."""
    values = [latex.value for latex in at.latex]
    first = next(i for i, v in enumerate(values) if marker in v)
    return " ".join(values[first : first + 4])


def assert_panels_fit(at) -> None:
    sizes = charts(at) + images(at)
    assert sizes and all(0 < size <= PANEL_BUDGET for size in sizes), sizes


def check_projection(at) -> None:
    t = traced(at)
    n, d = t["shapes"]["embeddings"][1:]
    p2c = t["shapes"]["flat"][2]
    m = metrics(at)
    assert m["Patches N"] == f"{n:,}" and n == t["grid"][0] * t["grid"][1]
    assert m["Patch vector P²·C"] == f"{p2c:,}" and p2c == t["P"] ** 2 * 3
    assert m["Token width D"] == str(d)
    assert m["Tokens (N, D)"] == f"({n}, {d})"
    assert m["Parameters of E"] == f"{p2c * d + d:,}"
    assert float(m["max |Conv2d − Linear| over all tokens"]) < 1e-4
    assert any(f"({t['shapes']['flat'][0]}, {n}, {p2c})" in c.value for c in at.caption), "the flat tap's shape is quoted"
    assert_panels_fit(at)
    assert_described(at)
    assert len(images(at)) >= 4  # filters, components, input, PCA colours
    assert at.header[0].value.startswith("x_p E")


def check_position(at) -> None:
    t = traced(at)
    gh, gw = t["grid"]
    n, d = t["shapes"]["embeddings"][1:]
    m = metrics(at)
    assert m["Patch grid"] == f"{gh} × {gw}" and n == gh * gw
    assert m["Patch tokens N"] == f"{n:,}"
    assert m["Sequence length 1+N"] == f"{t['shapes']['position'][1]:,}" == f"{n + 1:,}"
    assert m["Token width D"] == str(t["shapes"]["position"][2])
    assert m["E_pos shape"] == f"({t['shapes']['e_pos'][1]}, {t['shapes']['e_pos'][2]})"
    assert len(charts(at)) >= 2
    assert_panels_fit(at)
    assert_described(at)
    g0 = t["model"].config.grid
    subheaders = [s.value for s in at.subheader]
    if (gh, gw) == (g0, g0):
        assert any("checkpoint's own" in i.value for i in at.info)
    else:
        assert f"Interpolated: {gh}×{gw}" in subheaders and f"Checkpoint: {g0}×{g0}" in subheaders
    if n + 1 > emb.MAX_LAYER_TOKENS:
        assert any("too many to run the encoder" in i.value for i in at.info)
        return
    table = next(md.value for md in at.markdown if md.value.startswith("| | all tokens"))
    without = re.search(r"\*\*without E_pos\*\* \| (\S+) \| (\S+) \|", table)
    with_pos = re.search(r"\*\*with E_pos\*\* \| (\S+) \| (\S+) \|", table)
    assert float(without[1]) < 1e-5 < float(with_pos[1]), table
    assert float(without[2]) < 1e-5, table  # the CLS output does not change when the patches are shuffled


CHECK = {PROJECTION: check_projection, POSITION: check_position}


@pytest.mark.parametrize("page", [PROJECTION, POSITION])
def test_sample_at_the_checkpoint_patch_size(page):
    at = open_page(page)
    CHECK[page](at)
    assert at.session_state["ctx"].patch_size == 16


@pytest.mark.parametrize("page", [PROJECTION, POSITION])
@pytest.mark.parametrize("ps", [4, 64, 13, 37])
def test_slider_extremes_and_non_divisible_sizes(page, ps):
    at = open_page(page, img="coffee", ps=ps)
    CHECK[page](at)
    if page == PROJECTION:
        assert any("PI-resize" in md.value for md in at.markdown), "the kernel adaptation is explained"
        captions = image_captions(at)
        assert any(c.startswith(f"PI-resized filter 0: {ps}×{ps}") for c in captions), captions
        assert any(c.startswith("checkpoint filter 0: 16×16") for c in captions), captions


@pytest.mark.parametrize("page", [PROJECTION, POSITION])
def test_after_an_upload(page):
    at = open_page(page, image=("holiday.jpg", photo(400, 240, seed=5)))
    assert at.session_state["ctx"].image_label == "holiday.jpg"
    CHECK[page](at)


@pytest.mark.parametrize("page", [PROJECTION, POSITION])
@pytest.mark.parametrize("shape,ps", [((200, 420), 37), ((480, 160), 13)], ids=["tall-37", "wide-13"])
def test_tall_and_wide_images_with_aspect(page, shape, ps):
    w, h = shape
    at = open_page(page, image=("shape.png", photo(w, h, fmt="PNG", seed=w)), aspect=True, ps=ps)
    gh, gw = traced(at)["grid"]
    assert (gh > gw) == (h > w) and gh != gw, (gh, gw)
    CHECK[page](at)


def test_projection_page_widgets():
    at = open_page(PROJECTION)
    assert any("P = 16 is the checkpoint's own patch size" in i.value for i in at.info)
    dims = at.selectbox(key="proj_dims")
    assert dims.options == ["0–191", "192–383"]  # 196 × 384 floats would exceed 400 KB: two blocks
    dims.set_value(1).run()
    assert_clean(at)
    at.radio(key="proj_pca_stage").set_value("last").run()
    assert_clean(at)
    assert any("12 encoder layers" in o for o in at.radio(key="proj_pca_stage").options)
    assert at.radio(key="proj_pca_view").options == ["components 1–3 as red, green, blue"] + [
        f"component {k} alone, in grey" for k in (1, 2, 3)]
    at.radio(key="proj_pca_view").set_value("2").run()  # a component alone reads without telling hues apart
    assert_clean(at)
    assert any(a.startswith("Principal component 2 of the last layer's tokens as grey levels") for a in alts(at))
    assert any(c.startswith("principal component 2 of the 196 tokens (") for c in image_captions(at))
    at.slider(key="ps").set_value(20).run()
    at.slider(key="proj_filter").set_value(383).run()
    assert_clean(at)
    assert float(metrics(at)["max |⟨Bx, w′⟩ − ⟨x, w⟩| over all filters"]) < 1e-4  # enlarging: exact


def test_position_page_follows_the_selected_patch_and_layers():
    at = app()
    at.session_state["patch"] = 5
    at.switch_page(POSITION).run()
    assert_clean(at)
    assert any(r"\text{patch 5}" in latex.value for latex in at.latex)
    at.select_slider(key="pos_layers").set_value(2).run()
    assert_clean(at)
    assert any("after 2 layers" in md.value for md in at.markdown)


def test_live_numbers_are_the_traced_values():
    at = open_page(POSITION)
    t = traced(at)
    model = t["model"]
    ctx = at.session_state["ctx"]
    _, pixel_values = model_input(ctx, vitviz.load_model(ctx.model_name, device="cpu").preprocessing)
    rec = emb.embedding_trace(model, pixel_values)
    cls = [f"{v:+.3f}" for v in rec["position"][0, 0, :3].tolist()]
    line = latex_row(at, r"\text{CLS}")
    assert all(v in line for v in cls), (cls, line)
    assert re.search(r"\(1\+196\)\\times384", latex_row(at, "z_0 ="))


@pytest.mark.parametrize("page", [PROJECTION, POSITION])
def test_the_largest_grid_the_sliders_allow(page):
    """P = 4 on a 3:1 photo at 512 px with the aspect kept: 128 × 384 = 49 152 tokens. The page stays within its
    panel budget and says why it does not run the encoder layers on them."""
    from streamlit.testing.v1 import AppTest

    from .apptest import APP

    at = AppTest.from_file(APP, default_timeout=300)
    for key, value in dict(ps="4", res="512", aspect="true").items():
        at.query_params[key] = value
    at.switch_page(page).run()  # start on this page: the overview would trace attention over all 49 153 tokens
    at.radio(key="src").set_value("upload").run()
    at.file_uploader(key="upload").upload("panorama.jpg", photo(900, 300, seed=9), "image/jpeg")
    at.run()
    assert_clean(at)
    assert traced(at)["grid"] == (128, 384)
    CHECK[page](at)
    if page == PROJECTION:
        at.radio(key="proj_pca_stage").set_value("last").run()
        assert_clean(at)
        assert any("too many to run all encoder layers" in i.value for i in at.info)
