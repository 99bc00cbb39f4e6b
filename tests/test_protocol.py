"""The headless protocol client (tests/protocol.py) against a real `streamlit run app.py`: one student's whole visit.

Needs the real server like the browser tests, but no Chromium. If this passes, the load test's protocol sessions
upload, navigate and move sliders for real, and an exception on any page would be seen.
"""
import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from ui.stages import STAGES

from .apptest import photo
from .browser import streamlit_server
from .protocol import MAIN, SIDEBAR, Answer, StreamlitSession

pytestmark = pytest.mark.browser

PHOTO = "student.jpg"


def drawn(answer: Answer) -> list[bytes]:
    """What an answer drew apart from widgets (texts, images, charts), to tell whether a slider changed it."""
    return [element.SerializeToString() for _path, element in answer.elements
            if not getattr(getattr(element, element.WhichOneof("type")), "id", "")]


async def visit(url: str) -> dict:
    """One student: open, upload, every page, sliders. Returns what the test checks."""
    seen: dict = {"render_s": {}, "slider_s": {}, "exceptions": []}

    def check(what: str, answer: Answer) -> Answer:
        seen["exceptions"] += [f"{what}: {text}" for text in answer.exceptions]
        assert answer.status == "FINISHED_SUCCESSFULLY", (what, answer.status)
        return answer

    async with StreamlitSession(url, timeout=300) as s:
        check("open", await s.open())
        seen["sample_caption"] = s.image_captions(SIDEBAR)
        check("radio", await s.set_widget("src", "Upload"))
        upload = check("upload", await s.upload("upload", PHOTO, photo(360, 240, seed=100), "image/jpeg"))
        seen["upload_caption"] = s.image_captions(SIDEBAR)
        seen["upload_texts"] = upload.texts()
        for stage in STAGES:
            page = check(stage.key, await s.navigate(stage.key))
            assert page.page == stage.key and s.page == stage.key
            seen["render_s"][stage.key] = page.seconds
            if stage.key == "patching":  # the sidebar's patch size: the page states P in its texts
                before = s.widget_value("ps").double_array_value.data[0]
                moved = check("ps", await s.step_slider("ps"))
                seen["ps"] = (before, s.widget_value("ps").double_array_value.data[0], page.texts(), moved.texts())
                page = moved
            sliders = s.sliders(MAIN)
            if sliders:
                key = sliders[0]
                before = s.widget_value(key)
                moved = check(f"{stage.key} {key}", await s.step_slider(key))
                assert s.widget_value(key) != before, key
                seen["slider_s"][f"{stage.key}:{key}"] = moved.seconds
                seen.setdefault("unchanged", [])
                if drawn(moved) == drawn(page):
                    seen["unchanged"].append(f"{stage.key}:{key}")
        seen["end_caption"] = s.image_captions(SIDEBAR)
        seen["errors"] = s.errors
        seen["media"] = s.media_fetched
    return seen


def test_one_student_over_the_protocol():
    # Its own thread: the session-scoped sync Playwright of the browser tests keeps an event loop running in this one.
    with streamlit_server() as (url, _proc), ThreadPoolExecutor(1) as pool:
        seen = pool.submit(asyncio.run, visit(url)).result()
    print("\nanswer times (s):", {k: round(v, 2) for k, v in {**seen["render_s"], **seen["slider_s"]}.items()})
    assert not seen["exceptions"], seen["exceptions"]
    assert not seen["errors"], seen["errors"]
    # The upload is what the app shows: the sidebar thumbnail is captioned with the file's name, to the end.
    assert seen["sample_caption"] != [PHOTO]
    assert seen["upload_caption"] == [PHOTO] and PHOTO in seen["upload_texts"]
    assert seen["end_caption"] == [PHOTO]
    # Moving the patch size answers with the new P, which the page did not state before.
    before, after, texts_before, texts_after = seen["ps"]
    assert after == before + 1
    assert any(f"P = {after:g} " in t for t in texts_after), texts_after
    assert not any(f"P = {after:g} " in t for t in texts_before)
    # Every page was visited and timed; each page slider changed what the page drew.
    assert list(seen["render_s"]) == [s.key for s in STAGES]
    assert all(t > 0 for t in [*seen["render_s"].values(), *seen["slider_s"].values()])
    assert len(seen["slider_s"]) >= 4, seen["slider_s"]
    assert not seen["unchanged"], seen["unchanged"]
    assert seen["media"] > 0  # the sidebar thumbnail and page pictures were fetched like a browser does
