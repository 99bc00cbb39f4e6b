"""Thirty students training at once (issue 34): one real server on 127.0.0.1, every student opens the playground
within `--ramp` seconds and presses Start (the step budget `--steps`), watches until the curve moves, then goes on to
the patching and attention pages and moves a slider there three times while the runs train (what "nobody's page
stalls" means), and comes back to watch the run finish.

Prints the host line; when each run's curve first moved after Start (its first step > 0 on the page); the slider
answers on the other pages during training (p50 / p95 / max); how fast the runs and the last-started run progressed;
whether every run finished; the server's RSS over time and its peak. Before the class, one Chromium page trains alone
and the bytes the live views send it are counted for `--bytes-seconds` (CDP: websocket frames plus the pictures'
HTTP responses), the ~50 kB/s budget.

The students are the headless protocol client of tests/protocol.py (the messages a browser sends, fragments polled
every 0.5 s as the browser does), as in class where every browser runs on its own laptop.

    python bench/bench_playground_class.py [--sessions 30] [--ramp 60] [--steps 100] [--bytes-seconds 10]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from vitviz.runtime import bench_setup  # noqa: E402

from tests.browser import CHROMIUM, CHROMIUM_ARGS, goto, streamlit_server  # noqa: E402
from tests.load import RssSampler  # noqa: E402
from tests.protocol import MAIN, SIDEBAR, StreamlitSession  # noqa: E402

STEP = re.compile(r"step (\d+) of (\d+)")
POLL_S = 0.5  # the page's live part reruns this often in a browser (pages/playground.py FAST)


@dataclass
class Student:
    """What one student's session saw."""

    started: float = 0.0  # monotonic time Start was answered
    moved_s: float | None = None  # seconds from Start until the page showed a step > 0
    slider_s: list[float] = field(default_factory=list)  # answers to slider moves on the other pages
    progress: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, step shown)
    finished: bool = False  # the page said "finished" at the budget
    errors: list[str] = field(default_factory=list)


def shown_step(answer) -> tuple[int, str] | None:
    """The step and the whole line of the page's progress bar in an answer, if it drew one."""
    for _path, element in answer.elements:
        if element.WhichOneof("type") == "progress" and (found := STEP.search(element.progress.text)):
            return int(found.group(1)), element.progress.text
    return None


async def watch(s: StreamlitSession, me: Student, until: float, stop_at_move: bool) -> None:
    """Poll the live part like the browser does, recording the steps shown, until the curve moved (stop_at_move),
    the run finished, or `until`."""
    while time.monotonic() < until:
        try:
            answer = await s.poll_fragment()
        except KeyError:  # no timer on screen: the run is not in the rotation any more
            answer = await s.navigate("playground")
        if (seen := shown_step(answer)) is not None:
            step, line = seen
            me.progress.append((time.monotonic(), step))
            if step > 0 and me.moved_s is None:
                me.moved_s = time.monotonic() - me.started
            if ": finished," in line:
                me.finished = True
                return
            if stop_at_move and step > 0:
                return
        await asyncio.sleep(POLL_S)


async def student(url: str, delay: float, steps: int, deadline: float, me: Student) -> None:
    await asyncio.sleep(delay)
    s = StreamlitSession(url, timeout=300)
    try:
        await s.open("playground")
        await s.set_widget("pgsteps", str(steps))
        answer = await s.click("pg-start")
        me.started = time.monotonic()
        me.errors += answer.exceptions
        await watch(s, me, deadline, stop_at_move=True)
        for page in ("patching", "attention"):
            await s.navigate(page)
            key = (s.sliders(MAIN) or s.sliders(SIDEBAR))[0]
            for _ in range(3):
                answer = await s.step_slider(key)
                me.slider_s.append(answer.seconds)
                me.errors += answer.exceptions
                await asyncio.sleep(1.0)
        await s.navigate("playground")
        await watch(s, me, deadline, stop_at_move=False)
    except Exception as err:  # a hung run or a closed socket is a finding, not a crash of the bench
        me.errors.append(f"{type(err).__name__}: {str(err)[:200]}")
    finally:
        await s.close()
        me.errors += s.errors


async def classroom(url: str, sessions: int, ramp: float, steps: int, limit: float) -> list[Student]:
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=max(8, 4 * sessions)))
    students = [Student() for _ in range(sessions)]
    deadline = time.monotonic() + limit
    gap = ramp / max(1, sessions - 1)
    await asyncio.gather(*(student(url, i * gap, steps, deadline, me) for i, me in enumerate(students)))
    return students


def live_bytes(url: str, seconds: float) -> tuple[float, float, int]:
    """One Chromium page trains alone: (websocket kB/s, pictures' HTTP kB/s, redraws seen) over `seconds`, counted
    once the curve moves and the charts' script has loaded (a one-time 1.4 MB, cached afterwards)."""
    from playwright.sync_api import sync_playwright

    counts = {"ws": 0, "http": 0, "frames": 0}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        goto(page, url)
        goto(page, url, "playground")
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")

        def frame(event) -> None:
            response = event["response"]
            data = response["payloadData"]
            counts["ws"] += len(base64.b64decode(data)) if response["opcode"] == 2 else len(data.encode())
            counts["frames"] += 1

        media: set[str] = set()  # request ids of pictures (the app's JS bundles load once and are cached: not counted)
        cdp.on("Network.webSocketFrameReceived", frame)
        cdp.on("Network.requestWillBeSent",
               lambda e: media.add(e["requestId"]) if "/media/" in e["request"]["url"] else None)
        cdp.on("Network.loadingFinished", lambda e: counts.__setitem__(
            "http", counts["http"] + (e["encodedDataLength"] if e["requestId"] in media else 0)))
        page.locator(".st-key-pg-start button").click()
        page.wait_for_function("() => /step [1-9]\\d* of/.test(document.querySelector("
                               "\"[data-testid='stMain'] [data-testid='stProgress']\")?.innerText || '')",
                               timeout=120_000)
        page.wait_for_timeout(3000)
        counts.update(ws=0, http=0, frames=0)
        page.wait_for_timeout(seconds * 1000)
        measured = dict(counts)
        page.locator(".st-key-pg-pause button").click()
        browser.close()
    return measured["ws"] / 1000 / seconds, measured["http"] / 1000 / seconds, measured["frames"]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else float("nan"))


def rate(progress: list[tuple[float, int]]) -> float:
    """Steps per second between the first and the last step a page showed."""
    if len(progress) < 2 or progress[-1][0] == progress[0][0]:
        return float("nan")
    return (progress[-1][1] - progress[0][1]) / (progress[-1][0] - progress[0][0])


def report(students: list[Student], rss: RssSampler, steps: int, elapsed: float) -> None:
    moved = [s.moved_s for s in students if s.moved_s is not None]
    print(f"curve moved after Start: {len(moved)} of {len(students)} runs; p50 {statistics.median(moved):.1f} s, "
          f"max {max(moved):.1f} s" if moved else "no run's curve moved")
    sliders = [t for s in students for t in s.slider_s]
    if sliders:
        print(f"slider answers on the patching and attention pages while the runs trained: p50 "
              f"{statistics.median(sliders):.2f} s, p95 {pct(sliders, 95):.2f} s, max {max(sliders):.2f} s "
              f"(n = {len(sliders)})")
    last = max(students, key=lambda s: s.started)
    print(f"the last-started run: {rate(last.progress):.1f} steps/s as its page showed it; "
          f"every run: median {statistics.median([r for s in students if (r := rate(s.progress)) == r]):.1f} steps/s"
          if any(rate(s.progress) == rate(s.progress) for s in students) else "no progress seen")
    done = [s.finished for s in students]
    ends = [s.progress[-1][0] - s.started for s in students if s.finished]
    print(f"runs finished at their {steps}-step budget: {sum(done)} of {len(students)}"
          + (f", the last {max(ends):.0f} s after its Start" if ends else ""))
    errors = [e for s in students for e in s.errors]
    print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors[:10]))
    step = max(1, len(rss.samples) // 12)
    print("server RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in rss.samples[::step]))
    print(f"server RSS peak {max(rss.peaks.values()):.0f} MiB; wall time {elapsed:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--ramp", type=float, default=60.0, help="seconds over which the students press Start")
    parser.add_argument("--steps", type=int, default=100, help="each run's step budget (a value of the page's)")
    parser.add_argument("--bytes-seconds", type=float, default=10.0, help="0: skip the bytes measurement")
    parser.add_argument("--limit", type=float, default=900.0, help="seconds before the class is given up")
    args = parser.parse_args()
    bench_setup()
    print(f"{args.sessions} students pressing Start over {args.ramp:.0f} s, {args.steps}-step budgets · "
          f"{os.cpu_count()} cores · client: headless protocol (tests/protocol.py)", flush=True)
    with streamlit_server() as (url, proc):
        if args.bytes_seconds:
            ws, http, frames = live_bytes(url, args.bytes_seconds)
            print(f"live views sent to one page training alone: {ws:.1f} kB/s over the websocket ({frames} frames) "
                  f"+ {http:.1f} kB/s of pictures over HTTP = {ws + http:.1f} kB/s (budget ~50)", flush=True)
        rss = RssSampler(proc.pid)
        rss.start()
        start = time.monotonic()
        students = asyncio.run(classroom(url, args.sessions, args.ramp, args.steps, args.limit))
        elapsed = time.monotonic() - start
        rss.stop()
    report(students, rss, args.steps, elapsed)


if __name__ == "__main__":
    main()
