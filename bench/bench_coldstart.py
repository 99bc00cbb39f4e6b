"""Cold start: `streamlit run app.py` (what `tasks.py run` starts) from process spawn to the overview drawn and idle
in Chromium, with the time to the health endpoint and to the page's HTML, so that the parts can be told apart.
Offline, empty weights: the overview opens on the random preset.

    python bench/bench_coldstart.py [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from vitviz.runtime import bench_setup  # noqa: E402

PHASES = ("health answers", "page HTML loaded", "title drawn", "run finished")


def cold_start(browser, cache: str) -> list[float]:
    """Seconds from spawn to each of PHASES."""
    from tests.browser import free_port
    from tests.school import healthy

    port = free_port()
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address", "127.0.0.1",
                             "--server.port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_CACHE": cache})
    try:
        while not healthy(f"http://127.0.0.1:{port}/_stcore/health"):
            if proc.poll() is not None or time.monotonic() - start > 120:
                raise SystemExit(f"the server did not start (exit status {proc.poll()}): run `python3 tasks.py run`")
            time.sleep(0.05)
        times = [time.monotonic() - start]
        page.goto(f"http://127.0.0.1:{port}", wait_until="domcontentloaded")
        times.append(time.monotonic() - start)
        page.get_by_text("How a vision transformer sees your image").wait_for(timeout=120_000)
        times.append(time.monotonic() - start)
        page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=120_000)
        return times + [time.monotonic() - start]
    finally:
        proc.terminate()
        proc.wait(30)
        page.context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bench_setup()
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with tempfile.TemporaryDirectory() as cache, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        runs = [cold_start(browser, cache) for _ in range(args.runs)]
        browser.close()
    print(f"streamlit run app.py: seconds from spawn, {args.runs} runs")
    for i, phase in enumerate(PHASES):
        values = [run[i] for run in runs]
        print(f"  {phase:<20} median {statistics.median(values):.2f}   runs: {' '.join(f'{v:.2f}' for v in values)}")


if __name__ == "__main__":
    main()
