"""A classroom in a box: N concurrent browser sessions against one real server on 127.0.0.1.

Each session is its own browser context (its own Streamlit session): it uploads a different photo, visits every
page through the in-app navigation (so the upload stays in its session), and moves a slider on each page. We record,
per page, the time to first render and the slider answer time as the browser sees them (from the key press to the
script run finishing), Streamlit exceptions, and the server's RSS over time. Used by tests/test_load.py (small N,
in CI) and bench/bench_load.py (30 sessions).
"""
from __future__ import annotations

import asyncio
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ui.stages import STAGES

from .apptest import photo
from .browser import CHROMIUM, CHROMIUM_ARGS

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    """Samples a process's RSS every `period` seconds until stopped."""

    def __init__(self, pid: int, period: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.period, self.samples = pid, period, []
        self._stop_event = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self._stop_event.is_set():
            self.samples.append((time.monotonic() - start, rss_mb(self.pid)))
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
    rss: list[tuple[float, float]] = field(default_factory=list)

    def table(self) -> str:
        def pct(values, q):
            return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else float("nan"))

        lines = [f"{'page':<12}{'render p50':>12}{'render p95':>12}{'slider p50':>12}{'slider p95':>12}{'n':>5}"]
        for page in self.render_s:
            r, s = self.render_s[page], self.slider_s.get(page, [])
            lines.append(f"{page:<12}{pct(r, 50):>11.2f}s{pct(r, 95):>11.2f}s"
                         f"{(pct(s, 50) if s else float('nan')):>11.2f}s{(pct(s, 95) if s else float('nan')):>11.2f}s{len(r):>5}")
        peak = max((m for _, m in self.rss), default=0)
        lines.append(f"lost uploads {len(self.lost_uploads)} of {self.sessions} sessions")
        lines.append(f"errors {len(self.errors)} · server RSS start {self.rss[0][1]:.0f} MiB, peak {peak:.0f} MiB, "
                     f"end {self.rss[-1][1]:.0f} MiB" if self.rss else f"errors {len(self.errors)}")
        return "\n".join(lines)

    def all_slider_times(self) -> list[float]:
        return [t for times in self.slider_s.values() for t in times]


async def _idle(page, timeout_ms: float = 120_000) -> None:
    await page.wait_for_timeout(150)
    await page.wait_for_selector(IDLE, timeout=timeout_ms)


async def _timed(page, action) -> float:
    start = time.monotonic()
    await action()
    await _idle(page)
    return time.monotonic() - start - 0.15


async def _session(browser, url: str, index: int, report: LoadReport, tmp: Path) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    try:
        await page.goto(url, wait_until="domcontentloaded")
        await page.wait_for_selector("[data-testid='stApp']", timeout=120_000)
        await _idle(page)
        sidebar = page.get_by_test_id("stSidebar")
        await sidebar.get_by_text("Upload", exact=True).click()
        await _idle(page)
        file = tmp / f"student{index:02d}.jpg"
        file.write_bytes(photo(360 + 8 * index, 240 + 4 * index, seed=100 + index))
        await page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(file))
        await _idle(page)
        for stage in STAGES:
            link = page.get_by_test_id("stSidebarNav").get_by_text(stage.title.split("·", 1)[1].strip())
            report.render_s.setdefault(stage.key, []).append(await _timed(page, link.click))
            sliders = page.get_by_test_id("stMain").get_by_role("slider")
            if await sliders.count():
                slider = sliders.first
                await slider.focus()
                report.slider_s.setdefault(stage.key, []).append(await _timed(page, lambda: slider.press("ArrowRight")))
            found = await page.locator("[data-testid='stException']").all_inner_texts()
            report.errors += [f"session {index} {stage.key}: {text[:200]}" for text in found]
        try:
            await sidebar.get_by_text(file.name).first.wait_for(timeout=30_000)
        except Exception:
            report.lost_uploads.append(index)
    except Exception as err:  # a hung page or a crash is a load-test error, reported with the others
        report.errors.append(f"session {index}: {type(err).__name__}: {str(err)[:200]}")
    finally:
        await context.close()


async def _run(url: str, sessions: int, tmp: Path, report: LoadReport) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            await asyncio.gather(*(_session(browser, url, i, report, tmp) for i in range(sessions)))
        finally:
            await browser.close()


def classroom(url: str, server_pid: int, sessions: int, tmp: Path) -> LoadReport:
    """Run `sessions` concurrent students against the server at `url`; return what was measured."""
    report = LoadReport(sessions)
    sampler = RssSampler(server_pid)
    sampler.start()
    # Its own thread: pytest's sync Playwright fixtures may already run an event loop in this one.
    worker = threading.Thread(target=lambda: asyncio.run(_run(url, sessions, tmp, report)))
    try:
        worker.start()
        worker.join()
    finally:
        report.rss = sampler.stop()
    return report
