"""The shell: every page runs with a sample, an upload and a deep link; bad uploads are contained."""
from __future__ import annotations

import pytest

from ui.stages import STAGES

from .apptest import PAGES, app, assert_clean, errors, photo, upload

BAD_UPLOADS = {
    "empty.png": b"",
    "notes.png": b"these are my lecture notes, not a picture\n" * 20,
    "page.png": b"<!DOCTYPE html><html><body>Not an image</body></html>",
    "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
}


def ctx_of(at):
    return at.session_state["ctx"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_with_the_sample(page):
    at = app()
    at.switch_page(page).run()
    assert_clean(at)
    assert at.title, "every page has a title"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_after_an_upload(page):
    at = upload(app(), "holiday.jpg", photo(400, 240))
    at.switch_page(page).run()
    assert_clean(at)
    ctx = ctx_of(at)
    assert ctx.image_label == "holiday.jpg" and ctx.image.size == (400, 240)


def test_deep_link_sets_page_and_settings():
    at = app(img="coffee", model="deit-tiny", res="160", aspect="true")
    at.switch_page("pages/overview.py").run()
    assert_clean(at)
    ctx = ctx_of(at)
    assert (ctx.image_label, ctx.model_name, ctx.resolution, ctx.keep_aspect) == ("coffee", "deit-tiny", 160, True)
    shapes = [m.value for m in at.markdown if m.value.startswith("`")]  # the overview's shape of every stage
    assert len(shapes) == len(STAGES) and any("(160, " in s for s in shapes), shapes


@pytest.mark.parametrize("name", list(BAD_UPLOADS))
def test_bad_upload_shows_one_sentence_and_keeps_the_previous_image(name):
    at = upload(app(), "good.jpg", photo(seed=3))
    good = ctx_of(at).image_key
    at.file_uploader(key="upload").upload(name, BAD_UPLOADS[name], "image/png")
    at.run()
    assert_clean(at)
    assert len(errors(at)) == 1 and "Traceback" not in errors(at)[0]
    assert ctx_of(at).image_key == good
    at.switch_page("pages/overview.py").run()
    assert_clean(at)


def test_camera_photo_is_used():
    at = app()
    at.radio(key="src").set_value("camera").run()
    assert ctx_of(at).image_key.startswith("sample:")
    at.camera_input(key="camera").upload("image.jpg", photo(640, 480, seed=5), "image/jpeg").run()
    assert_clean(at)
    assert ctx_of(at).image_label == "camera photo" and ctx_of(at).image.size == (640, 480)


def test_two_sessions_never_share_an_upload():
    a = upload(app(), "alice.jpg", photo(seed=1))
    b = app()
    assert ctx_of(b).image_label != "alice.jpg" and ctx_of(b).image_key.startswith("sample:")
    b = upload(b, "bob.jpg", photo(seed=2))
    a.run()
    assert ctx_of(a).image_label == "alice.jpg" and ctx_of(b).image_label == "bob.jpg"
    assert ctx_of(a).image_key != ctx_of(b).image_key
