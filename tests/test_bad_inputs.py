"""The bad-input suite (issue 8): every file in tests/corpus.py through ``load_image``, the app and the real uploader.

Each case must either load as a plain RGB picture of the expected size, or be refused with one readable sentence;
the session keeps working afterwards (the sidebar keeps the last good picture, the page still renders) and no
traceback ever reaches the page.
"""
from __future__ import annotations

import hashlib
import io
import re
import time

import pytest
from PIL import Image

from vitviz.images import MAX_SIDE, MIN_SIDE, ImageError, load_image

from .apptest import app, assert_clean, errors
from .browser import assert_healthy, goto, wait_idle
from .corpus import Case, Loads, Rejects, by_name, cases, good_photo

CASES = cases()
UPLOADS = [c for c in CASES if c.source == "upload"]

# What must never reach a student: Python internals, Pillow's wording, tracebacks.
JARGON = re.compile(
    r"Traceback|<_io\.|BytesIO|object at|0x[0-9a-fA-F]|\b[A-Za-z]*(Error|Exception|Warning)\b|\bPIL\b|Pillow"
    r"|errno|struct\.|MAX_TEXT|MAX_IMAGE|could be decompression bomb|cannot identify image file"
)


def assert_one_sentence(message: str) -> None:
    assert message, "empty message"
    assert "\n" not in message, message
    assert len(message) < 250, (len(message), message)
    assert message[0].isupper() and message.endswith("."), message
    assert not re.search(r"[.!?]\s+[A-Z]", message[:-1]), f"more than one sentence: {message}"
    assert not JARGON.search(message), f"jargon in: {message}"


def rejection(case: Case) -> str:
    """The message load_image gives for a case that must be refused (the test fails if it loads)."""
    with pytest.raises(ImageError) as info:
        load_image(case.data)
    return str(info.value)


# ------------------------------------------------------------------ the corpus itself


def test_corpus_is_deterministic_and_complete():
    again = cases.__wrapped__()
    assert [(c.name, hashlib.sha256(c.data).hexdigest()) for c in again] == \
           [(c.name, hashlib.sha256(c.data).hexdigest()) for c in CASES]
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names)
    # Unique file names: the browser test recognises each upload by its name in the sidebar caption.
    assert len({c.filename for c in UPLOADS}) == len(UPLOADS)
    required = {
        "heic_iphone", "psd_rgb", "ico_16_only", "ico_64", "png_ztxt_over_chunk_limit", "png_many_text_chunks",
        "jpeg_named_png", "png_named_jpg", "pdf_named_jpg", "html_named_png", "png_as_octet_stream",
        "empty_upload", "empty_camera", "truncated_jpeg", "truncated_png", "bomb_header", "svg_drawing",
        "plain_text", "gif_animation", "apng_animation", "cmyk_jpeg", "png_16bit", "strip_1x1000",
        "exif_rotated_jpeg", "huge_dims_small_file",
    }
    assert required <= set(names), required - set(names)
    assert any(isinstance(c.expect, Loads) for c in CASES) and any(isinstance(c.expect, Rejects) for c in CASES)


def test_corpus_files_are_what_they_claim_to_be():
    """The lying cases really lie, and the crafted files really are the formats they stand for."""
    assert by_name("jpeg_named_png").data[:3] == b"\xff\xd8\xff" and by_name("jpeg_named_png").filename.endswith(".png")
    assert by_name("png_named_jpg").data[:4] == b"\x89PNG" and by_name("png_named_jpg").filename.endswith(".jpg")
    assert by_name("pdf_named_jpg").data[:4] == b"%PDF" and by_name("pdf_named_jpg").mime == "image/jpeg"
    assert by_name("png_as_octet_stream").mime == "application/octet-stream"
    assert by_name("heic_iphone").data[4:12] == b"ftypheic"
    assert by_name("empty_upload").data == b"" == by_name("empty_camera").data
    psd = Image.open(io.BytesIO(by_name("psd_rgb").data))
    assert (psd.format, psd.mode) == ("PSD", "RGB")
    ico = Image.open(io.BytesIO(by_name("ico_16_only").data))
    assert ico.format == "ICO" and ico.info["sizes"] == {(16, 16)}
    assert Image.open(io.BytesIO(by_name("png_16bit").data)).mode == "I;16"
    assert Image.open(io.BytesIO(by_name("cmyk_jpeg").data)).mode == "CMYK"
    assert getattr(Image.open(io.BytesIO(by_name("apng_animation").data)), "n_frames", 1) == 3
    assert Image.open(io.BytesIO(by_name("exif_rotated_jpeg").data)).getexif()[0x0112] == 6
    huge = by_name("huge_dims_small_file")
    assert len(huge.data) < 20_000 and Image.open(io.BytesIO(huge.data)).size == (8000, 7000)
    # Pillow alone refuses the text-chunk PNGs: these cases test something real.
    for name in ("png_ztxt_over_chunk_limit", "png_ztxt_after_idat", "png_many_text_chunks"):
        with pytest.raises(ValueError):
            Image.open(io.BytesIO(by_name(name).data)).load()


# ------------------------------------------------------------------ load_image


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_load_image(case: Case):
    if isinstance(case.expect, Loads):
        img = load_image(case.data)  # its decoding time is in bench/bench_images.py
        assert isinstance(img, Image.Image) and img.mode == "RGB"
        assert img.size == case.expect.size
        assert MIN_SIDE <= min(img.size) and max(img.size) <= MAX_SIDE
        if case.expect.probe is not None:
            xy, rgb = case.expect.probe
            got = img.getpixel(xy)
            assert all(abs(a - b) <= 24 for a, b in zip(got, rgb)), (xy, got, rgb)
    else:
        message = rejection(case)
        assert_one_sentence(message)
        for word in case.expect.words:
            assert word in message, (word, message)


# ------------------------------------------------------------------ the app (AppTest: upload and camera)


def test_every_case_in_one_apptest_session():
    """One session takes every case in turn, uploads and camera shots: the sidebar keeps the last good picture."""
    name, good = good_photo()
    at = app()
    at.radio(key="src").set_value("upload").run()
    at.file_uploader(key="upload").upload(name, good, "image/jpeg")
    at.run()
    assert_clean(at)
    last = at.session_state["ctx"].image_label
    assert last == name
    for source in ("upload", "camera"):
        if source == "camera":
            at.radio(key="src").set_value("camera").run()
            at.camera_input(key="camera").upload("image.jpg", good, "image/jpeg").run()
            assert_clean(at)
            last = "camera photo"
        for case in (c for c in CASES if c.source == source):
            widget = at.file_uploader(key="upload") if source == "upload" else at.camera_input(key="camera")
            widget.upload(case.filename if source == "upload" else "image.jpg", case.data,
                          case.mime if source == "upload" else "image/jpeg")
            at.run()
            assert_clean(at)
            ctx = at.session_state["ctx"]
            if isinstance(case.expect, Loads):
                assert errors(at) == [], (case.name, errors(at))
                last = case.filename if source == "upload" else "camera photo"
                assert ctx.image_label == last and ctx.image.size == case.expect.size, case.name
            else:
                assert errors(at) == [rejection(case)], case.name
                assert ctx.image_label == last, case.name
    at.switch_page("pages/overview.py").run()
    assert_clean(at)
    assert at.title


# ------------------------------------------------------------------ the real uploader in Chromium


def _normal(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.browser
def test_every_upload_case_through_the_real_uploader(page, app_url):
    from playwright.sync_api import expect

    sidebar = page.get_by_test_id("stSidebar")
    caption = sidebar.get_by_test_id("stImage").first
    alerts = sidebar.get_by_test_id("stAlertContentError")
    dropzone = page.get_by_test_id("stFileUploaderDropzoneInput")

    def upload(filename: str, data: bytes, mime: str) -> None:
        dropzone.set_input_files({"name": filename, "mimeType": mime, "buffer": data})
        expect(sidebar.get_by_test_id("stFileChipName")).to_have_text(filename, timeout=30_000)

    start = time.monotonic()
    goto(page, app_url)
    sidebar.get_by_text("Upload", exact=True).click()
    wait_idle(page)
    name, data = good_photo()
    upload(name, data, "image/jpeg")
    expect(caption).to_have_text(name, timeout=30_000)
    wait_idle(page)
    assert_healthy(page)
    last_good, problems = name, []
    for case in UPLOADS:
        upload(case.filename, case.data, case.mime)
        try:
            if isinstance(case.expect, Loads):
                expect(caption).to_have_text(case.filename, timeout=30_000)
                wait_idle(page)
                assert alerts.count() == 0, alerts.all_inner_texts()
                last_good = case.filename
            else:
                message = rejection(case)
                expect(alerts).to_have_count(1, timeout=30_000)
                expect(alerts).to_have_text(message, timeout=30_000)
                wait_idle(page)
                assert _normal(alerts.inner_text()) == _normal(message)
                assert caption.inner_text().strip() == last_good
            assert_healthy(page)  # no stException, no "Traceback" anywhere in the app
            main = page.get_by_test_id("stMain")
            assert main.locator("h1").count() >= 1 and main.get_by_test_id("stImage").count() >= 1
        except AssertionError as err:  # keep going: one run reports every failing case
            problems.append(f"{case.name}: {err}")
    elapsed = time.monotonic() - start
    print(f"\n{len(UPLOADS) + 1} uploads in one browser session: {elapsed:.1f} s")
    assert not problems, "\n".join(problems)
    assert page.get_by_test_id("stSidebar").get_by_role("slider").count() >= 1  # the sidebar still works
