"""A full classroom: 30 students on one real server, arriving within a minute, each with their own photo.

Starts `streamlit run app.py` on 127.0.0.1 and drives the sessions (tests/load.py): each session uploads a different
photo, visits every page through the in-app navigation and moves a slider on each. Prints per page p50/p95 of the
first render and of the slider answer as the client observes them, the errors, lost uploads, and the server's RSS
over time.

`--client protocol` (the default) drives the sessions with the headless client of tests/protocol.py: the messages a
browser sends, no rendering, so the figures measure the server, as in class where each browser runs on its own
laptop. `--client browser` drives headless Chromium on the same machine; on a 2-core machine Chromium then needs
about five times the server's CPU and the figures mostly measure that.

`--replicas N [M ...]` runs the class through `deploy/serve.py` instead (N Streamlit processes behind HAProxy, Redis
for N > 1), once per count given, one after the other in one run, and ends with a table of the runs side by side:
slider p50/p95 per page, errors, lost uploads, RSS peak and CPU per process.

    python bench/bench_load.py [--sessions 30] [--ramp 60] [--think 4] [--client protocol|browser]
    python bench/bench_load.py --sessions 30 --think 4 --replicas 1 2     # one process vs two, side by side
    python bench/bench_load.py --sessions 60 --think 10 --replicas 2
    python bench/bench_load.py --sessions 30 --think 4 --replicas 2 --kill-after 45   # a process dies mid-class
"""
from __future__ import annotations

import argparse
import os
import statistics
from signal import SIGKILL
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from vitviz.runtime import bench_setup  # noqa: E402

from tests.browser import streamlit_server  # noqa: E402
from tests.load import LoadReport, classroom, protocol_classroom  # noqa: E402
from tests.school import healthy, replica_pids, serving  # noqa: E402
from tests.test_load import RSS_BUDGET_MB  # noqa: E402


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else float("nan"))


def report_run(report: LoadReport, elapsed: float) -> None:
    print(report.table())
    runs = [t for times in report.server_s.values() for t in times]
    if len(runs) > 1:
        print(f"server time of all {len(runs)} script runs: p50 {statistics.median(runs):.2f} s, "
              f"p95 {pct(runs, 95):.2f} s, max {max(runs):.2f} s")
    sliders = report.all_slider_times()
    if len(sliders) > 1:
        print(f"all slider answers: p50 {statistics.median(sliders):.2f} s, p95 {pct(sliders, 95):.2f} s, "
              f"max {max(sliders):.2f} s (n = {len(sliders)})")
    step = max(1, len(report.rss) // 12)
    print("server RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in report.rss[::step]))
    print(f"wall time {elapsed:.0f} s")
    for error in report.errors[:20]:
        print("ERROR", error)


def wait_healthy(url: str, timeout_s: float) -> bool:
    """True once `url` answers 200 within `timeout_s`."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if healthy(url):
            return True
        time.sleep(0.5)
    return False


def side_by_side(runs: dict[int, LoadReport]) -> None:
    """One column per replica count: the slider answers per page and over all pages, the faults, the processes."""
    counts = list(runs)
    print("\n| | " + " | ".join(f"{n} process{'es' if n > 1 else ''}" for n in counts) + " |")
    print("|---|" + "---|" * len(counts))
    pages = list(next(iter(runs.values())).slider_s)
    for page in pages:
        print(f"| slider p50 / p95 {page} | " + " | ".join(
            f"{pct(r.slider_s.get(page, []), 50):.2f} / {pct(r.slider_s.get(page, []), 95):.2f} s" for r in runs.values()) + " |")
    print("| **all sliders p50 / p95 (max)** | " + " | ".join(
        f"**{pct(r.all_slider_times(), 50):.2f} / {pct(r.all_slider_times(), 95):.2f} s** "
        f"({max(r.all_slider_times(), default=float('nan')):.2f})" for r in runs.values()) + " |")
    print("| errors · lost uploads | " + " | ".join(f"{len(r.errors)} · {len(r.lost_uploads)}" for r in runs.values()) + " |")
    print("| RSS peak per process | " + " | ".join(
        " · ".join(f"{m:.0f}" for m in r.peak_rss.values()) + " MiB" for r in runs.values()) + " |")
    print("| server CPU per process | " + " | ".join(
        " · ".join(f"{c:.0f}" for c in r.cpu_by_pid.values()) + " s" for r in runs.values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--ramp", type=float, default=60.0, help="seconds over which the sessions arrive")
    parser.add_argument("--think", type=float, default=4.0,
                        help="mean seconds a student spends on a page before the next action (0: none)")
    parser.add_argument("--client", choices=["protocol", "browser"], default="protocol",
                        help="protocol: headless websocket client (measures the server); browser: Chromium here")
    parser.add_argument("--replicas", type=int, nargs="+", metavar="N",
                        help="through deploy/serve.py with N processes behind HAProxy, once per N given")
    parser.add_argument("--kill-after", type=float, metavar="S",
                        help="with --replicas N > 1: SIGKILL the first process S seconds into the class (serve "
                             "starts it again); the report counts the sessions interrupted and recovered")
    args = parser.parse_args()
    bench_setup()
    client = "headless protocol (tests/protocol.py)" if args.client == "protocol" else "Chromium on this machine"
    print(f"{args.sessions} sessions arriving over {args.ramp:.0f} s, {args.think:.0f} s (±50 %) on a page before each "
          f"action · {os.cpu_count()} cores · RSS budget {RSS_BUDGET_MB} MiB · client: {client}")
    run = protocol_classroom if args.client == "protocol" else classroom
    runs: dict[int, LoadReport] = {}
    for replicas in args.replicas or [0]:
        with tempfile.TemporaryDirectory() as tmp:
            run_log = Path(tmp) / "runs.log"
            env = {"VITVIZ_RUN_LOG": str(run_log)}
            start = time.monotonic()
            if replicas:
                print(f"\n== {replicas} process{'es' if replicas > 1 else ''} behind HAProxy (deploy/serve.py)", flush=True)
                with serving(Path(tmp), replicas=replicas, env=env) as (url, base, log_path):
                    kill = {}
                    if args.kill_after is not None and replicas > 1:
                        kill = {"kill": (args.kill_after, lambda: os.kill(replica_pids(log_path)[base + 1], SIGKILL))}
                    start = time.monotonic()
                    report = run(url, list(replica_pids(log_path).values()), args.sessions, Path(tmp),
                                 ramp_s=args.ramp, think_s=args.think, run_log=run_log, **kill)
                    if kill:
                        back = wait_healthy(f"http://127.0.0.1:{base + 1}/_stcore/health", 120)
                        print(f"the killed process (port {base + 1}) "
                              + ("is back: serve started it again" if back else "did NOT come back within 120 s"))
            else:
                with streamlit_server(env=env) as (url, proc):
                    start = time.monotonic()
                    report = run(url, proc.pid, args.sessions, Path(tmp), ramp_s=args.ramp, think_s=args.think,
                                 run_log=run_log)
            report_run(report, time.monotonic() - start)
            runs[replicas] = report
    if args.replicas:
        side_by_side(runs)


if __name__ == "__main__":
    main()
