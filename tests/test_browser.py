"""The real app in headless Chromium: every page, an upload, a slider, the camera, two sessions."""
from __future__ import annotations

import re

import pytest

from ui.stages import STAGES

from .apptest import photo
from .browser import assert_healthy, goto, wait_idle

pytestmark = pytest.mark.browser


def sidebar_caption(page) -> str:
    return page.locator("[data-testid='stSidebar'] [data-testid='stImage']").first.inner_text()


@pytest.mark.parametrize("path", ["", *(s.key for s in STAGES)])
def test_every_page_opens_without_exception(page, app_url, path):
    goto(page, app_url, path)
    assert_healthy(page)
    assert page.locator("h1").count() >= 1


def test_upload_then_slider_then_navigation(page, app_url, tmp_path):
    goto(page, app_url)
    page.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).click()
    wait_idle(page)
    file = tmp_path / "holiday.jpg"
    file.write_bytes(photo(480, 320, seed=7))
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(file))
    wait_idle(page)
    assert "holiday.jpg" in sidebar_caption(page)
    slider = page.get_by_test_id("stSidebar").get_by_role("slider").first
    slider.focus()
    slider.press("ArrowRight")
    wait_idle(page)
    assert re.search(r"[?&]ps=17", page.url), page.url
    page.get_by_test_id("stSidebarNav").get_by_text("Patching").click()
    wait_idle(page)
    assert "patching" in page.url and "ps=17" in page.url
    assert "holiday.jpg" in sidebar_caption(page)
    assert_healthy(page)


def test_bad_upload_shows_a_sentence_and_keeps_working(page, app_url, tmp_path):
    goto(page, app_url)
    page.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).click()
    wait_idle(page)
    bad = tmp_path / "essay.png"
    bad.write_text("<html><body>my essay</body></html>")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(bad))
    wait_idle(page)
    alert = page.get_by_test_id("stSidebar").get_by_test_id("stAlertContentError")
    assert alert.count() == 1 and "image" in alert.inner_text().lower()
    assert_healthy(page)


def test_camera_photo_with_fake_device(page, app_url):
    goto(page, app_url)
    page.get_by_test_id("stSidebar").get_by_text("Camera", exact=True).click()
    wait_idle(page)
    button = page.get_by_test_id("stCameraInputButton")
    button.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # the fake device needs a moment to deliver frames
    button.click()
    wait_idle(page)
    assert "camera photo" in sidebar_caption(page)
    assert_healthy(page)


def test_deep_link_opens_same_page_and_settings(page, app_url):
    goto(page, app_url, "patching", img="coffee", res="160", model="deit-tiny")
    assert "coffee" in sidebar_caption(page)
    assert page.get_by_test_id("stSidebar").get_by_text("deit-tiny").count() >= 1
    assert_healthy(page)


def test_two_sessions_do_not_share_uploads(chromium, app_url, tmp_path):
    a, b = (chromium.new_context(viewport={"width": 1400, "height": 900}) for _ in range(2))
    try:
        pa, pb = a.new_page(), b.new_page()
        goto(pa, app_url)
        goto(pb, app_url)
        pa.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).click()
        wait_idle(pa)
        file = tmp_path / "alice_private.jpg"
        file.write_bytes(photo(seed=11))
        pa.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(file))
        wait_idle(pa)
        pb.reload()
        wait_idle(pb)
        assert "alice_private.jpg" in sidebar_caption(pa)
        assert "alice_private.jpg" not in pb.locator("[data-testid='stApp']").inner_text()
    finally:
        a.close()
        b.close()


def test_deep_link_as_first_request_on_a_fresh_server(page):
    """A shared link is often the first thing a fresh server sees: it must open through app.py with its settings."""
    from .browser import streamlit_server

    with streamlit_server() as (url, _proc):
        goto(page, url, "position", img="rocket", ps="32")
        assert_healthy(page)
        assert "rocket" in sidebar_caption(page)
        assert page.get_by_test_id("stSidebar").get_by_role("slider", name="Patch size P (px)").input_value() == "32"
