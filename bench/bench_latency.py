"""Per-page latency and payload: the table the README keeps (issue 8).

1. Server time (AppTest, CPU, scripts compiled once as the server does): per page, the first render after a new
   upload and the median answer to a move of the page's first slider (the sidebar's patch size on pages that have
   no slider of their own).
2. Browser-observed, one session in headless Chromium against `streamlit run`: the cold start (process spawn to the
   first page drawn), then per page the first render (click in the navigation → script finished), the median
   slider answer (key press → script finished) and the bytes the server sent over the websocket for each.

    python bench/bench_latency.py [--moves 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from vitviz.runtime import bench_setup  # noqa: E402
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import streamlit.testing.v1.app_test as app_test  # noqa: E402

from tests.apptest import app, photo, upload  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402
from tests.load import IDLE, RunWatcher, nav_link, photo_shown  # noqa: E402
from ui.stages import STAGES  # noqa: E402

PAGES = [("overview", "pages/overview.py"), *((s.key, s.file) for s in STAGES)]


def compile_scripts_once() -> None:
    """The server compiles each script once per process; AppTest would compile app.py and the page every run."""
    shared = app_test.ScriptCache()
    app_test.ScriptCache = lambda: shared


def _slider(at, k: int):
    """The page's first main-area slider (else the sidebar's patch size) and its k-th new value: every move shows
    a value not seen before, as a student stepping through the range does."""
    if len(at.main.slider):
        widget = at.main.slider[0]
        step = widget.step or 1
        return widget, min(widget.max, widget.min + step * (k + 1))
    if len(at.main.select_slider):
        widget = at.main.select_slider[0]
        return widget, widget.options[min(len(widget.options) - 1, k + 1)]
    return at.slider(key="ps"), 17 + k


def server_times(moves: int) -> dict[str, tuple[float, float]]:
    """page -> (first render after an upload, median slider answer), in seconds of AppTest server time."""
    compile_scripts_once()
    out = {}
    for i, (key, file) in enumerate(PAGES):
        at = app()
        at.switch_page(file).run()  # warm: models loaded, as in class after the first student
        at.switch_page("pages/overview.py").run()
        upload(at, f"student{i}.jpg", photo(480, 360, seed=500 + i))
        at.switch_page(file)
        start = time.perf_counter()
        at.run()
        first = time.perf_counter() - start
        assert not at.exception, [e.message for e in at.exception]
        answers = []
        for k in range(moves):
            widget, value = _slider(at, k)
            widget.set_value(value)
            start = time.perf_counter()
            at.run()
            answers.append(time.perf_counter() - start)
            assert not at.exception, [e.message for e in at.exception]
        out[key] = (first, statistics.median(answers))
    return out


def _idle(page) -> None:
    page.wait_for_timeout(150)
    page.wait_for_selector(IDLE, timeout=180_000)


def _answer(page, watcher: RunWatcher, action, run_log: Path) -> tuple[float, float]:
    """(seconds from `action` to the end of the script run it caused, as the page's websocket delivered it; the
    server's own time for that run, from its VITVIZ_RUN_LOG)."""
    runs = len(run_log.read_text().splitlines()) if run_log.exists() else 0
    seen = len(watcher.ends)
    t0 = time.monotonic()
    action()
    while (end := watcher.end_after(seen, t0, 180)) is None:
        page.wait_for_timeout(10)  # the sync API delivers websocket events only while it waits
    answered = end - t0
    deadline = time.monotonic() + 10
    while len(run_log.read_text().splitlines()) <= runs and time.monotonic() < deadline:
        time.sleep(0.05)
    return answered, float(run_log.read_text().splitlines()[-1].split()[1])


def browser_times(moves: int) -> tuple[float, dict[str, tuple[float, ...]]]:
    """(cold start s, page -> (first render s seen, its server s, median slider s seen, its server s,
    bytes of the first render, bytes per slider answer))."""
    from playwright.sync_api import sync_playwright

    out = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        watcher = RunWatcher(page)
        run_log = Path(tmp) / "runs.log"
        start = time.monotonic()
        with streamlit_server(env={"VITVIZ_RUN_LOG": str(run_log)}) as (url, _proc):
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("[data-testid='stApp']", timeout=180_000)
            _idle(page)
            cold = time.monotonic() - start
            watcher.take_bytes()
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_text("Upload", exact=True).click()
            _idle(page)
            file = Path(tmp) / "student.jpg"
            file.write_bytes(photo(480, 360, seed=7))
            page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(file))
            photo_shown(page, file.name).wait_for(timeout=180_000)
            _idle(page)
            watcher.take_bytes()
            for stage in STAGES:
                first, first_server = _answer(page, watcher, nav_link(page, stage).click, run_log)
                first_bytes = watcher.take_bytes()
                sliders = page.get_by_test_id("stMain").get_by_role("slider")
                if not sliders.count():
                    sliders = sidebar.get_by_role("slider")
                slider, answers, servers, sent = sliders.first, [], [], []

                def press() -> None:
                    slider.focus()
                    at_top = slider.evaluate("e => Number(e.value) >= Number(e.max)")  # an <input type=range>
                    slider.press("ArrowLeft" if at_top else "ArrowRight")

                for _ in range(moves):
                    seen, server = _answer(page, watcher, press, run_log)
                    answers.append(seen)
                    servers.append(server)
                    sent.append(watcher.take_bytes())
                out[stage.key] = (first, first_server, statistics.median(answers), statistics.median(servers),
                                  first_bytes, int(statistics.median(sent)))
        browser.close()
    return cold, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=5)
    args = parser.parse_args()
    bench_setup()
    server = server_times(args.moves)
    cold, seen = browser_times(args.moves)
    print(f"CPU, {os.cpu_count()} cores · dino-vits16 / swin-tiny / mobilevit-xxs presets at 224 px · 480×360 upload")
    print(f"cold start (streamlit run → first page drawn in Chromium): {cold:.1f} s")
    print("times in ms; 'AppTest' = server time of the script run in AppTest; 'browser' = click or key press to the end"
          " of the run as Chromium saw it, with the real server's own time for that run in brackets")
    print(f"{'page':<12}{'AppTest first':>14}{'AppTest slider':>15}{'browser first':>20}{'browser slider':>20}"
          f"{'KB first':>10}{'KB slider':>11}")
    for key, _file in PAGES[1:]:
        s_first, s_slider = server[key]
        b_first, b_first_srv, b_slider, b_slider_srv, kb_first, kb_slider = seen[key]
        print(f"{key:<12}{s_first * 1e3:>14.0f}{s_slider * 1e3:>15.0f}"
              f"{f'{b_first * 1e3:.0f} ({b_first_srv * 1e3:.0f})':>20}{f'{b_slider * 1e3:.0f} ({b_slider_srv * 1e3:.0f})':>20}"
              f"{kb_first / 1e3:>10.0f}{kb_slider / 1e3:>11.0f}")


if __name__ == "__main__":
    main()
