"""A file chosen while a script run starts (a page switch) is never dropped (ui.server.keep_upload_replies).

The cause, reproduced here at will: choosing a file makes the browser ask for an upload URL; Streamlit 1.67 queues
the answer and clears the session's queue, lifecycle messages apart, when a run starts. Without the fix, 2 of 10
files chosen as a page switch began were lost in Chromium, and 3 of 12 upload-URL answers at the protocol level.
"""
from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

from ui.server import keep_upload_replies
from ui.stages import STAGES

from .apptest import photo
from .browser import goto, wait_idle
from .load import photo_shown
from .protocol import SIDEBAR, StreamlitSession

TRIES = 20


def test_a_run_start_keeps_the_queued_upload_urls_and_drops_the_rest():
    keep_upload_replies()
    queue = ForwardMsgQueue()
    reply, delta, finished = ForwardMsg(), ForwardMsg(), ForwardMsg()
    reply.file_urls_response.response_id = "r1"
    delta.delta.new_element.markdown.body = "stale"
    delta.metadata.delta_path[:] = [0, 0]
    finished.script_finished = ForwardMsg.FINISHED_EARLY_FOR_RERUN
    for msg in (reply, delta, finished):
        queue.enqueue(msg)
    queue.clear(retain_lifecycle_msgs=True)  # what a starting run does
    assert [m.WhichOneof("type") for m in queue.flush()] == ["script_finished", "file_urls_response"]
    assert queue.is_empty()  # a flush (and a session's end) still empties the queue


async def _switch_and_upload(url: str) -> list[str]:
    problems = []
    async with StreamlitSession(url, timeout=120) as session:
        await session.open()
        await session.set_widget("src", "Upload")
        for i in range(TRIES):
            name = f"switch{i:02d}.jpg"
            target = STAGES[i % 4].key
            switched, uploaded = await session.upload_while_switching("upload", target, name, photo(300 + i, 200, seed=i),
                                                                      "image/jpeg")
            if not (switched.ok and uploaded.ok and name in session.image_captions(SIDEBAR)):
                problems.append(f"{name} on {target}: {session.image_captions(SIDEBAR)}")
    return problems


def test_files_chosen_as_a_page_switch_starts_all_arrive_protocol(app_url):
    # Its own thread: the session-scoped sync Playwright of the browser tests keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, _switch_and_upload(app_url)).result() == []


CHOOSE_DURING_SWITCH = """async ([data, name, page]) => {
  const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
  const files = new DataTransfer();
  files.items.add(new File([bytes], name, {type: "image/jpeg"}));
  const input = document.querySelector("[data-testid='stFileUploaderDropzoneInput']");
  const link = [...document.querySelectorAll("[data-testid='stSidebarNav'] a")].find(a => a.innerText.includes(page));
  link.click();                                              // the page switch's rerun leaves first,
  input.files = files.files;
  input.dispatchEvent(new Event("change", {bubbles: true}));  // the file chosen in the same moment
}"""


@pytest.mark.browser
def test_files_chosen_as_a_page_switch_starts_all_arrive_chromium(page, app_url):
    goto(page, app_url)
    page.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).click()
    wait_idle(page)
    for i in range(TRIES):
        name, stage = f"switch{i:02d}.jpg", STAGES[i % 4]
        page.evaluate(CHOOSE_DURING_SWITCH, [base64.b64encode(photo(300 + i, 200, seed=i)).decode(), name,
                                             stage.title.split("·", 1)[1].strip()])
        # The file always arrives. The page switch may not: when the uploader's rerun leaves before the browser has
        # switched, it carries the page still on screen, and Streamlit's frontend goes back to it.
        photo_shown(page, name).wait_for(timeout=60_000)
        wait_idle(page)
