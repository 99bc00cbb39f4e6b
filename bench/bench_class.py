"""A class following its teacher: one teacher and N followers (the protocol client) on one real server.

The teacher walks a lesson (8 steps, `--read` seconds on each), every follower polls as its browser does (once a
second) and answers each question. Prints, per step, how long the teacher's move took to reach every follower
(p50/p95/max), whether the answers the teacher's page counted are exactly those sent, and the server CPU that the
followers' polling costs (per follower per minute, measured while the class only follows).

    python bench/bench_class.py [--followers 30] [--read 4] [--follow 30]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from vitviz.runtime import bench_setup  # noqa: E402

from tests.browser import streamlit_server  # noqa: E402
from tests.classload import follow_class  # noqa: E402
from tests.load import rss_mb  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=30)
    parser.add_argument("--lesson", default="windows-and-patches")
    parser.add_argument("--read", type=float, default=4.0, help="seconds the teacher stays on each step")
    parser.add_argument("--follow", type=float, default=30.0, help="seconds of pure following measured for CPU")
    args = parser.parse_args()
    bench_setup()
    with streamlit_server() as (url, proc):
        report = follow_class(url, proc.pid, args.followers, lesson_id=args.lesson, read_s=args.read,
                              follow_s=args.follow)
        rss = rss_mb(proc.pid)
    print(f"\n{args.followers} followers, lesson {args.lesson}, teacher {args.read:g} s per step\n")
    print(report.table())
    print(f"\nstep change reaching every follower: p95 {report.p95():.2f} s, max {max(report.all_arrivals()):.2f} s "
          f"(target p95 ≤ 2 s)")
    print(f"answers counted exactly: {'yes' if report.counted == report.expected else 'NO'} "
          f"({sum(sum(c.values()) for c in report.expected.values())} answers)")
    print(f"polls answered: {report.polls}; server CPU while only following: {report.follow_cpu_s:.1f} s in "
          f"{report.follow_s:.0f} s = {100 * report.follow_cpu_s / report.follow_s:.0f} % of one core, "
          f"{report.cpu_per_follower_minute():.2f} CPU-s per follower per minute; server RSS {rss:.0f} MiB")
    print(f"errors: {len(report.errors)}")
    for error in report.errors[:10]:
        print("  ", error)


if __name__ == "__main__":
    main()
