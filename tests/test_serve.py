"""A school's server: `deploy/serve.py --replicas 2` (two Streamlit processes behind Debian's HAProxy, Redis for the
class state), driven by Chromium. Sessions land on both processes and stay on theirs through uploads and sliders,
a teacher on one process and a student on the other are in one class, and a process killed with SIGKILL is taken
out by HAProxy, its student reconnects to the other process (told to add the photo again) and `serve` starts the
process again."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import threading
import time

import pytest
from playwright.sync_api import expect

from .apptest import photo
from .browser import goto, wait_idle
from .protocol import ProtocolError, StreamlitSession
from .school import class_across, healthy, replica_pids, serving

pytestmark = pytest.mark.browser


def require_servers() -> None:
    for program in ("haproxy", "redis-server"):
        if not shutil.which(program):
            if os.environ.get("VITVIZ_REQUIRE_SERVERS"):
                pytest.fail(f"{program} is missing but VITVIZ_REQUIRE_SERVERS is set")
            pytest.skip(f"{program} not installed")


@pytest.fixture(scope="module")
def school(tmp_path_factory):
    require_servers()
    with serving(tmp_path_factory.mktemp("serve")) as found:
        yield found


def server_of(context) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "SERVERID")


def upload(page, name: str, data: bytes) -> None:
    page.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).click()
    wait_idle(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        {"name": name, "mimeType": "image/jpeg", "buffer": data})
    # While the run that reads the file draws, the sidebar may show the previous picture's caption too (Streamlit
    # keeps a run's old elements until it ends): wait for the new one, then for the run's end.
    captions = page.get_by_test_id("stSidebar").get_by_test_id("stImageCaption")
    expect(captions.filter(has_text=name)).to_have_count(1, timeout=60_000)
    wait_idle(page)
    expect(captions).to_have_text(name)


def test_two_processes_keep_their_sessions_share_a_class_and_survive_a_kill(chromium, school):
    url, base, log_path = school
    contexts = [chromium.new_context(viewport={"width": 1280, "height": 800}) for _ in range(2)]
    try:
        pages = [ctx.new_page() for ctx in contexts]
        for page in pages:
            goto(page, url, "patching")
        servers = [server_of(ctx) for ctx in contexts]
        assert sorted(servers) == ["app1", "app2"], servers  # round robin: one session on each process
        for i, page in enumerate(pages):  # an upload reaches the process that holds the session: the cookie
            upload(page, f"student{i}.jpg", photo(320, 240, seed=40 + i))
            slider = page.get_by_test_id("stSidebar").get_by_role("slider").first
            slider.focus()
            page.keyboard.press("ArrowRight")
            wait_idle(page)
            expect(page.get_by_test_id("stSidebar").get_by_test_id("stImageCaption")).to_have_text(f"student{i}.jpg")
        assert [server_of(ctx) for ctx in contexts] == servers

        # one class across the two processes (its state in Redis)
        teacher, student = pages
        class_across(teacher, student, url)
        assert server_of(contexts[0]) != server_of(contexts[1])
        expect(teacher.locator("[data-testid='class-joined']")).to_contain_text("1 students joined", timeout=10_000)

        # the student's process dies mid-class
        goto(student, url, "patching", ps="20")
        upload(student, "mine.jpg", photo(300, 200, seed=77))
        port = base + int(server_of(contexts[1])[-1])
        os.kill(replica_pids(log_path)[port], signal.SIGKILL)
        killed = time.monotonic()
        while healthy(f"http://127.0.0.1:{port}/_stcore/health"):
            time.sleep(0.1)
        # the student's next action reaches the other process (HAProxy redispatches the dead one's cookie): a new
        # session whose page and settings come from the URL, and which says the photo must be added again
        sidebar = student.get_by_test_id("stSidebar")
        student.wait_for_timeout(3_000)  # HAProxy's checks (every 1 s, out after 2 failures)
        slider = sidebar.get_by_role("slider").nth(1)  # the resolution
        slider.focus()
        student.keyboard.press("ArrowRight")
        expect(sidebar).to_contain_text("Your photo is no longer on the server", timeout=60_000)
        print(f"reconnected {time.monotonic() - killed:.1f} s after the SIGKILL")
        assert "/patching" in student.url and "ps=20" in student.url
        upload(student, "mine.jpg", photo(300, 200, seed=77))  # and it works there
        # serve starts the process again and HAProxy takes it back
        deadline = time.monotonic() + 120
        while not healthy(f"http://127.0.0.1:{port}/_stcore/health"):
            assert time.monotonic() < deadline, "the killed process was not started again"
            time.sleep(0.5)
        assert "starting it again" in log_path.read_text(errors="replace")
        fresh = chromium.new_context()
        try:
            seen = set()
            for _ in range(4):  # new visitors reach both processes again
                page = fresh.new_page()
                fresh.clear_cookies()
                page.goto(url + "/_stcore/health")
                page.goto(url, wait_until="domcontentloaded")
                seen.add(server_of(fresh))
                page.close()
            assert seen == {"app1", "app2"}, seen
        finally:
            fresh.close()
    finally:
        for ctx in contexts:
            ctx.close()


def uploads_refused(url: str, count: int) -> list[bool]:
    """One protocol client (a browser's cookie jar) opens the app through the balancer and uploads `count`
    photos; for each, whether the upload was refused."""
    async def run() -> list[bool]:
        refused = []
        async with StreamlitSession(url, fetch_media=False) as session:
            await session.open()
            await session.set_widget("src", "Upload")
            for i in range(count):
                try:
                    await session.upload("upload", f"p{i}.jpg", photo(200, 150, seed=i), "image/jpeg")
                    refused.append(False)
                except ProtocolError:
                    refused.append(True)
        return refused

    result: list[list[bool]] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(run())))  # Playwright may own this loop
    worker.start()
    worker.join()
    return result[0]


def test_without_the_sticky_cookie_uploads_reach_the_wrong_process(school, tmp_path):
    """Why the cookie is needed: an upload is a separate HTTP request (PUT /_stcore/upload_file/<session>/…), and only
    the process holding the session accepts it. Round robin without the cookie sends every other request elsewhere."""
    url, _base, _log = school
    assert uploads_refused(url, 4) == [False] * 4  # sticky: every upload reaches the session's process
    with serving(tmp_path, "--no-sticky") as (loose, _b, _l):
        refused = uploads_refused(loose, 4)
    assert any(refused) and not all(refused), refused


def test_ctrl_c_stops_every_process_even_when_started_in_the_background(tmp_path):
    """A shell's background job starts with SIGINT ignored, and children inherit that: serve must still stop on
    Ctrl-C (SIGINT), with its Streamlit process, HAProxy and all, instead of running on unseen. `serving` fails
    unless serve exits with status 0 within 60 s."""
    require_servers()
    with serving(tmp_path, replicas=1, stop=signal.SIGINT, background=True) as (_url, base, log_path):
        children = list(replica_pids(log_path).values())
    assert "serve: stopped" in log_path.read_text(errors="replace")
    assert not healthy(f"http://127.0.0.1:{base}/_stcore/health")  # HAProxy is gone
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
