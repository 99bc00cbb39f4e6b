"""A full classroom: 30 students on one real server, arriving within a minute, each with their own photo.

Starts `streamlit run app.py` on 127.0.0.1 and drives the sessions (tests/load.py): each session uploads a different
photo, visits every page through the in-app navigation and moves a slider on each. Prints per page p50/p95 of the
first render and of the slider answer as the client observes them, the errors, lost uploads, and the server's RSS
over time.

`--client protocol` (the default) drives the sessions with the headless client of tests/protocol.py: the messages a
browser sends, no rendering, so the figures measure the server, as in class where each browser runs on its own
laptop. `--client browser` drives headless Chromium on the same machine; on a 2-core machine Chromium then needs
about five times the server's CPU and the figures mostly measure that.

    python bench/bench_load.py [--sessions 30] [--ramp 60] [--think 4] [--client protocol|browser]
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

from tests.browser import streamlit_server  # noqa: E402
from tests.load import classroom, protocol_classroom  # noqa: E402
from tests.test_load import RSS_BUDGET_MB  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--ramp", type=float, default=60.0, help="seconds over which the sessions arrive")
    parser.add_argument("--think", type=float, default=4.0,
                        help="mean seconds a student spends on a page before the next action (0: none)")
    parser.add_argument("--client", choices=["protocol", "browser"], default="protocol",
                        help="protocol: headless websocket client (measures the server); browser: Chromium here")
    args = parser.parse_args()
    bench_setup()
    client = "headless protocol (tests/protocol.py)" if args.client == "protocol" else "Chromium on this machine"
    print(f"{args.sessions} sessions arriving over {args.ramp:.0f} s, {args.think:.0f} s (±50 %) on a page before each "
          f"action · {os.cpu_count()} cores · RSS budget {RSS_BUDGET_MB} MiB · client: {client}")
    run = protocol_classroom if args.client == "protocol" else classroom
    with tempfile.TemporaryDirectory() as tmp:
        run_log = Path(tmp) / "runs.log"
        with streamlit_server(env={"VITVIZ_RUN_LOG": str(run_log)}) as (url, proc):
            start = time.monotonic()
            report = run(url, proc.pid, args.sessions, Path(tmp), ramp_s=args.ramp, think_s=args.think,
                         run_log=run_log)
        elapsed = time.monotonic() - start
    print(report.table())
    runs = [t for times in report.server_s.values() for t in times]
    if len(runs) > 1:
        print(f"server time of all {len(runs)} script runs: p50 {statistics.median(runs):.2f} s, "
              f"p95 {statistics.quantiles(runs, n=100)[94]:.2f} s, max {max(runs):.2f} s")
    sliders = report.all_slider_times()
    if len(sliders) > 1:
        p95 = statistics.quantiles(sliders, n=100)[94]
        print(f"all slider answers: p50 {statistics.median(sliders):.2f} s, p95 {p95:.2f} s, max {max(sliders):.2f} s "
              f"(n = {len(sliders)})")
    step = max(1, len(report.rss) // 12)
    print("server RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in report.rss[::step]))
    print(f"wall time {elapsed:.0f} s")
    for error in report.errors[:20]:
        print("ERROR", error)


if __name__ == "__main__":
    main()
