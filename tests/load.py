"""A classroom in a box: N concurrent student sessions against one real server on 127.0.0.1.

Each session is its own browser context (its own Streamlit session): it uploads a different photo, visits every
page through the in-app navigation (so the upload stays in its session), and moves a slider on each page. We record,
per page, the time to first render and the slider answer time as the browser sees them (from the key press to the
script run finishing), Streamlit exceptions, and the server's RSS over time. Pages without a slider of their own
(patching, flattening, the overview) move the sidebar's patch-size slider, as a student would there. Sessions can
arrive spread over `ramp_s` seconds and pause `think_s` (±50 %) before each action, as a class does, and the CPU time
of the server and of everything else (Chromium, on the same machine) is reported. Used by tests/test_load.py
(small N, in CI) and bench/bench_load.py (30 sessions).

`classroom()` drives real Chromium pages. On a 2-core machine 30 of them need about five times the server's CPU, so
that figure measures Chromium starving the server. `protocol_classroom()` runs the same visits with the headless
protocol client of tests/protocol.py (the browser's websocket messages, uploads and image fetches, no rendering),
as in class, where every browser runs on its own laptop.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from ui.stages import STAGES

from .apptest import photo
from .browser import CHROMIUM, CHROMIUM_ARGS
from .protocol import FINAL, MAIN, SIDEBAR, Answer, ProtocolError, StreamlitSession

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB, from /proc (Linux); 0 once the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time every process on the machine has used (user, nice, system, irq, softirq), from /proc/stat."""
    user, nice, system, _idle_, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """Samples the RSS of one or several processes every `period` seconds until stopped: `samples` holds
    (seconds, MiB summed over the processes), `peaks` each process's largest RSS, `cpu` each one's CPU seconds when
    last seen alive (a process killed during the run keeps its last figure)."""

    def __init__(self, *pids: int, period: float = 0.5):
        super().__init__(daemon=True)
        self.pids, self.period, self.samples = pids, period, []
        self.peaks = dict.fromkeys(pids, 0.0)
        self.cpu = {pid: cpu_seconds(pid) for pid in pids}
        self._stop_event = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self._stop_event.is_set():
            now = {pid: rss_mb(pid) for pid in self.pids}
            for pid in self.pids:
                with contextlib.suppress(FileNotFoundError):
                    self.cpu[pid] = cpu_seconds(pid)
            self.peaks = {pid: max(self.peaks[pid], mib) for pid, mib in now.items()}
            self.samples.append((time.monotonic() - start, sum(now.values())))
            self._stop_event.wait(self.period)

    def stop(self) -> list[tuple[float, float]]:
        self._stop_event.set()
        self.join()
        return self.samples


@dataclass
class LoadReport:
    sessions: int
    render_s: dict[str, list[float]] = field(default_factory=dict)  # page -> first-render times
    slider_s: dict[str, list[float]] = field(default_factory=dict)  # page -> slider answer times
    errors: list[str] = field(default_factory=list)
    lost_uploads: list[int] = field(default_factory=list)  # sessions whose upload was gone at the end (issue 8)
    open_s: list[float] = field(default_factory=list)  # first page drawn after opening the URL
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB) of the server processes, summed
    peak_rss: dict[int, float] = field(default_factory=dict)  # pid -> largest RSS (MiB) of each server process
    cpu_by_pid: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds of each server process
    server_s: dict[str, list[float]] = field(default_factory=dict)  # page -> server time of each completed run
    server_cpu_s: float = 0.0  # CPU time the server processes used during the run, summed
    other_cpu_s: float = 0.0  # CPU time everything else used: mostly Chromium (browser client)
    client: str = "browser"  # which client drove the sessions: "browser" (Chromium) or "protocol" (headless)
    client_cpu_s: float = 0.0  # CPU time of the protocol clients (this process); not part of other_cpu_s
    killed_at: float | None = None  # monotonic time a server process was killed during the run (None: none was)
    interrupted: dict[int, float] = field(default_factory=dict)  # session -> seconds from the kill to its page
    #                                                                 drawn again by another process
    recovered: list[int] = field(default_factory=list)  # interrupted sessions that finished their visit afterwards

    def table(self) -> str:
        def pct(values, q):
            return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else float("nan"))

        def cell(values, q):
            return f"{(pct(values, q) if values else float('nan')):>11.2f}s"

        lines = [f"{'page':<12}{'render p50':>12}{'render p95':>12}{'slider p50':>12}{'slider p95':>12}{'n':>5}"
                 f"{'server p50':>12}{'server p95':>12}{'runs':>6}"]
        for page in self.render_s:
            r, s, srv = self.render_s[page], self.slider_s.get(page, []), self.server_s.get(page, [])
            lines.append(f"{page:<12}{cell(r, 50)}{cell(r, 95)}{cell(s, 50)}{cell(s, 95)}{len(r):>5}"
                         f"{cell(srv, 50)}{cell(srv, 95)}{len(srv):>6}")
        peak = max((m for _, m in self.rss), default=0)
        if self.open_s:
            lines.append(f"{'open URL':<12}{pct(self.open_s, 50):>11.2f}s{pct(self.open_s, 95):>11.2f}s{'':>24}{len(self.open_s):>5}")
        if self.client == "protocol":
            cpu = (f"protocol clients {self.client_cpu_s:.0f} s, everything else (other work on the machine) "
                   f"{self.other_cpu_s:.0f} s")
        else:
            cpu = f"everything else (Chromium) {self.other_cpu_s:.0f} s"
        lines.append(f"lost uploads {len(self.lost_uploads)} of {self.sessions} sessions · CPU: server "
                     f"{self.server_cpu_s:.0f} s, {cpu}")
        lines.append(f"errors {len(self.errors)} · server RSS start {self.rss[0][1]:.0f} MiB, peak {peak:.0f} MiB, "
                     f"end {self.rss[-1][1]:.0f} MiB" if self.rss else f"errors {len(self.errors)}")
        if self.killed_at is not None:
            back = sorted(self.interrupted.values())
            lines.append(f"a process killed mid-class: {len(self.interrupted)} sessions interrupted, "
                         f"{len(self.recovered)} recovered (page back on another process "
                         + (f"{statistics.median(back):.1f} s median, {back[-1]:.1f} s at most after the kill)"
                            if back else "—)"))
        if len(self.peak_rss) > 1:
            lines.append("per process (pid: RSS peak, CPU): " + ", ".join(
                f"{pid}: {mib:.0f} MiB, {self.cpu_by_pid.get(pid, 0):.0f} s" for pid, mib in self.peak_rss.items()))
        return "\n".join(lines)

    def all_slider_times(self) -> list[float]:
        return [t for times in self.slider_s.values() for t in times]


class RunWatcher:
    """When a page's websocket delivered the end of each script run (`script_finished` with a final status, see
    tests/protocol.FINAL), as `time.monotonic()` values in `ends`; `take_bytes()` counts what it received.

    The page's `data-test-script-state` attribute cannot time an answer: when a whole short run arrives in one burst,
    as it does from a busy server, the frontend applies "running" and "notRunning" in one render and the attribute
    never changes. Works with Playwright's sync and async pages (the sync API delivers events while it waits)."""

    def __init__(self, page):
        self.ends: list[float] = []
        self.bytes = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        self.bytes += len(payload)
        if isinstance(payload, bytes) and len(payload) < 256:  # the one small message type worth decoding
            msg = ForwardMsg()
            msg.ParseFromString(payload)
            if msg.WhichOneof("type") == "script_finished" and msg.script_finished in FINAL:
                self.ends.append(time.monotonic())

    def end_after(self, seen: int, t0: float, timeout_s: float) -> float | None:
        """The end of the first run after the `seen` runs ended before `t0` (None while there is none yet)."""
        if len(self.ends) > seen:
            return self.ends[seen]
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"no script run ended within {timeout_s:.0f} s")
        return None

    def take_bytes(self) -> int:
        """Bytes received since the last call."""
        value, self.bytes = self.bytes, 0
        return value


def nav_link(page, stage):
    """The sidebar's navigation link to a stage page (a locator: the same for Playwright's sync and async APIs)."""
    return page.get_by_test_id("stSidebarNav").get_by_text(stage.title.split("·", 1)[1].strip())


def photo_shown(page, name: str):
    """The sidebar's thumbnail captioned with an uploaded file's name: there once the run that read the upload has
    ended (the uploader lists the name as soon as the file is chosen, before the server has it)."""
    return page.get_by_test_id("stSidebar").get_by_test_id("stImage").filter(has_text=name)


async def _idle(page, timeout_ms: float = 120_000) -> None:
    await page.wait_for_timeout(150)
    await page.wait_for_selector(IDLE, timeout=timeout_ms)


async def _timed(watcher: RunWatcher, action, timeout_s: float = 180.0) -> float:
    """Seconds from `action` to the end of the script run it caused, as the page's websocket delivered it."""
    seen = len(watcher.ends)
    t0 = time.monotonic()
    await action()
    while (end := watcher.end_after(seen, t0, timeout_s)) is None:
        await asyncio.sleep(0.02)
    return end - t0


async def _press_slider(page, slider) -> None:
    """One keyboard step of a slider, towards the side it has room on (a layer slider starts at its maximum)."""
    at_top = await slider.evaluate("e => Number(e.value) >= Number(e.max)")  # an <input type=range>
    await slider.focus()
    await slider.press("ArrowLeft" if at_top else "ArrowRight")


async def _session(browser, url: str, index: int, report: LoadReport, tmp: Path, delay_s: float = 0.0,
                   think_s: float = 0.0) -> None:
    rng = random.Random(index)

    async def think() -> None:  # a student reads the page before the next action
        if think_s:
            await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))

    await asyncio.sleep(delay_s)
    context = await browser.new_context(viewport={"width": 1400, "height": 900}, reduced_motion="reduce")
    page = await context.new_page()
    watcher = RunWatcher(page)
    step = "open"  # named in the error if the session hangs or crashes
    try:
        start = time.monotonic()
        await page.goto(url, wait_until="domcontentloaded", timeout=180_000)
        await page.wait_for_selector("[data-testid='stApp']", timeout=180_000)
        await _idle(page)
        report.open_s.append(time.monotonic() - start)
        sidebar = page.get_by_test_id("stSidebar")
        step = "upload"
        await _timed(watcher, sidebar.get_by_text("Upload", exact=True).click)
        file = tmp / f"student{index:02d}.jpg"
        file.write_bytes(photo(360 + 8 * index, 240 + 4 * index, seed=100 + index))
        await page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(file))
        # Navigating before the upload's own run has ended would race it: that run, asked for by the uploader on
        # the overview, would replace the run of the page clicked.
        await photo_shown(page, file.name).wait_for(timeout=180_000)
        await _idle(page)
        for stage in STAGES:
            await think()
            step = f"{stage.key} render"
            report.render_s.setdefault(stage.key, []).append(await _timed(watcher, nav_link(page, stage).click))
            # The frontend changes the URL after the run's messages: wait for it, failing if the click was lost.
            await page.wait_for_url(re.compile(rf"/{stage.key}(\?|$)"), wait_until="commit", timeout=30_000)
            sliders = page.get_by_test_id("stMain").get_by_role("slider")
            if not await sliders.count():
                sliders = sidebar.get_by_role("slider")  # the patch-size slider comes first in the sidebar
            if await sliders.count():
                await think()
                slider = sliders.first
                step = f"{stage.key} slider"
                report.slider_s.setdefault(stage.key, []).append(
                    await _timed(watcher, lambda: _press_slider(page, slider)))
            found = await page.locator("[data-testid='stException']").all_inner_texts()
            report.errors += [f"session {index} {stage.key}: {text[:200]}" for text in found]
        try:
            await photo_shown(page, file.name).wait_for(timeout=30_000)
        except Exception:
            report.lost_uploads.append(index)
    except Exception as err:  # a hung page or a crash is a load-test error, reported with the others
        report.errors.append(f"session {index} at {step}: {type(err).__name__}: {str(err)[:200]}")
    finally:
        await context.close()


def niced_chromium(tmp: Path) -> str:
    """A launcher running Chromium at the lowest CPU priority. In class every student's browser runs on their own
    laptop; here all of them share the server's cores, and must not take the CPU the server needs to answer."""
    launcher = tmp / "chromium-niced"
    launcher.write_text(f'#!/bin/sh\nexec nice -n 19 {CHROMIUM} "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


async def _run(url: str, sessions: int, tmp: Path, report: LoadReport, ramp_s: float, think_s: float) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=niced_chromium(tmp), args=CHROMIUM_ARGS, headless=True)
        try:
            step = ramp_s / max(sessions - 1, 1)
            await asyncio.gather(*(_session(browser, url, i, report, tmp, i * step, think_s) for i in range(sessions)))
        finally:
            await browser.close()


def _measured(report: LoadReport, server_pid: int | list[int], run_log: Path | None, sessions) -> LoadReport:
    """Run the coroutine `sessions()` in a thread of its own while sampling the RSS and CPU time of the server
    (one process, or the list of processes behind a balancer), of this process (protocol clients) and of the
    machine; return `report` with those figures."""
    pids = server_pid if isinstance(server_pid, list) else [server_pid]
    sampler = RssSampler(*pids)
    sampler.start()
    cpu_start = dict(sampler.cpu), machine_cpu_seconds(), time.process_time()
    # Its own thread: pytest's sync Playwright fixtures may already run an event loop in this one.
    worker = threading.Thread(target=lambda: asyncio.run(sessions()))
    try:
        worker.start()
        worker.join()
    finally:
        report.rss, report.peak_rss = sampler.stop(), sampler.peaks
        for pid in pids:
            with contextlib.suppress(FileNotFoundError):
                sampler.cpu[pid] = cpu_seconds(pid)
        report.cpu_by_pid = {pid: sampler.cpu[pid] - cpu_start[0][pid] for pid in pids}
        report.server_cpu_s = sum(report.cpu_by_pid.values())
        if report.client == "protocol":
            report.client_cpu_s = time.process_time() - cpu_start[2]
        # /proc/stat and the per-process counters tick separately: an idle rest can come out a little below 0.
        report.other_cpu_s = max(0.0, machine_cpu_seconds() - cpu_start[1] - report.server_cpu_s - report.client_cpu_s)
    if run_log is not None and run_log.exists():
        for line in run_log.read_text().splitlines():
            page, seconds = line.split()
            report.server_s.setdefault(page, []).append(float(seconds))
    return report


def classroom(url: str, server_pid: int, sessions: int, tmp: Path, ramp_s: float = 0.0, think_s: float = 0.0,
              run_log: Path | None = None) -> LoadReport:
    """Run `sessions` concurrent students in Chromium against the server at `url`, the i-th arriving
    i·ramp_s/(sessions−1) seconds after the first and pausing think_s·U(0.5, 1.5) seconds before each action; return
    what was measured. `run_log`: the server's VITVIZ_RUN_LOG file, whose per-run server times the report then
    includes."""
    report = LoadReport(sessions)
    return _measured(report, server_pid, run_log, lambda: _run(url, sessions, tmp, report, ramp_s, think_s))


def _note(report: LoadReport, index: int, what: str, answer: Answer) -> None:
    """Record an answer's exceptions, and a run that did not finish normally, as load-test errors."""
    report.errors += [f"session {index} {what}: {text[:200]}" for text in answer.exceptions]
    if answer.status != "FINISHED_SUCCESSFULLY":
        report.errors.append(f"session {index} {what}: script run ended {answer.status}")


async def _protocol_session(url: str, index: int, report: LoadReport, delay_s: float = 0.0,
                            think_s: float = 0.0) -> None:
    """One student over the protocol, the same visit as `_session` in Chromium: open the app, choose Upload, upload
    their own photo, then every page through the navigation, each time one step of the page's first slider (the
    sidebar's patch size where the page has none).

    When the run kills a server process (`report.killed_at`), an action that finds its websocket closed does what
    the browser does: it reconnects to the same URL with the same cookies and widget states (HAProxy sends the dead
    process's cookie to a live one: a new session, its page and settings from the URL), checks that the page says
    the photo must be added again, uploads it again and repeats the action. The old session's broken images are not counted as
    errors: the page was reloaded."""
    rng = random.Random(index)
    name = f"student{index:02d}.jpg"
    data = photo(360 + 8 * index, 240 + 4 * index, seed=100 + index)
    session = StreamlitSession(url, timeout=180)

    async def think() -> None:  # a student reads the page before the next action
        if think_s:
            await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))

    async def upload() -> None:
        _note(report, index, "source", await session.set_widget("src", "Upload"))
        _note(report, index, "upload", await session.upload("upload", name, data, "image/jpeg"))

    async def act(action) -> Answer:
        nonlocal session
        try:
            return await action()
        except (ProtocolError, websockets.ConnectionClosed, OSError):
            if report.killed_at is None or index in report.interrupted:
                raise
        old, session = session, StreamlitSession(url, timeout=180)
        with contextlib.suppress(Exception):
            await old.close()
        answer = await session.reopen(old)
        report.interrupted[index] = time.monotonic() - report.killed_at
        _note(report, index, "reconnect", answer)
        if not any("no longer on the server" in text for text in answer.texts()):
            report.errors.append(f"session {index}: reconnected, but the page did not say the photo was gone")
        await upload()
        return await action()

    await asyncio.sleep(delay_s)
    try:
        start = time.monotonic()
        _note(report, index, "open", await session.open())
        report.open_s.append(time.monotonic() - start)
        await upload()
        for stage in STAGES:
            await think()
            answer = await act(lambda stage=stage: session.navigate(stage.key))
            report.render_s.setdefault(stage.key, []).append(answer.seconds)
            _note(report, index, stage.key, answer)
            sliders = session.sliders(MAIN) or session.sliders(SIDEBAR)  # the patch size comes first there
            if sliders:
                await think()
                answer = await act(lambda key=sliders[0]: session.step_slider(key))
                report.slider_s.setdefault(stage.key, []).append(answer.seconds)
                _note(report, index, f"{stage.key} slider {sliders[0]}", answer)
        if name not in session.image_captions(SIDEBAR):
            report.lost_uploads.append(index)
        elif index in report.interrupted:
            report.recovered.append(index)
    except Exception as err:  # a hung run, a refused upload or a closed socket is a load-test error
        report.errors.append(f"session {index}: {type(err).__name__}: {str(err)[:200]}")
    finally:
        await session.close()
        report.errors += [f"session {index}: {error}" for error in session.errors]


async def _run_protocol(url: str, sessions: int, report: LoadReport, ramp_s: float, think_s: float,
                        kill: tuple[float, Callable[[], None]] | None = None) -> None:
    # Uploads and image fetches are blocking stdlib HTTP calls in threads; a browser has its own connections, so
    # give every session a few threads rather than queueing all of them behind asyncio's default handful.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=max(8, 4 * sessions)))
    step = ramp_s / max(sessions - 1, 1)

    async def killer(after_s: float, kill_process: Callable[[], None]) -> None:
        await asyncio.sleep(after_s)
        report.killed_at = time.monotonic()
        kill_process()

    await asyncio.gather(*(_protocol_session(url, i, report, i * step, think_s) for i in range(sessions)),
                         *([killer(*kill)] if kill else []))


def protocol_classroom(url: str, server_pid: int | list[int], sessions: int, tmp: Path, ramp_s: float = 0.0,
                       think_s: float = 0.0, run_log: Path | None = None,
                       kill: tuple[float, Callable[[], None]] | None = None) -> LoadReport:
    """`classroom()` with the headless protocol client instead of Chromium (same visits, arrivals and think
    times); returns the same LoadReport, its render_s the page-change answer times and slider_s the slider answer
    times. `tmp` is unused (the photos never touch the disk); it keeps the two signatures alike. `kill`
    (seconds, function): the function is called that many seconds after the first arrival, to kill a server
    process in the middle of the class; the report then counts the sessions interrupted and recovered."""
    report = LoadReport(sessions, client="protocol")
    return _measured(report, server_pid, run_log,
                     lambda: _run_protocol(url, sessions, report, ramp_s, think_s, kill))
