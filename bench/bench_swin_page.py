"""Interaction budget of page 6 (Swin windows), measured with AppTest on CPU.

Opens the page at 224 × 224 (the checkpoint's own size) on the random-init Swin-T preset, on the tab given by
`--tab` (the page computes only the open tab; default: the first, Partition), and times `at.run()` after each move
(server time: the whole script, sidebar included):

- window-size move, cold: an M never seen in this session (M = 2 … 14 in turn) — every picture drawn anew, and
  the traced pass of Swin-T up to the chosen stage, unless the page's background prefetch of M ± 1 (after drawing
  the previous M) has finished it during the think time;
- window-size move, warm: back to an M seen before (the run and the pictures come from the caches);
- shift move, cold: a shift s ≠ ⌊M/2⌋ never seen — the shifted block alone re-run with s, its pictures drawn;
- shift move, warm: back to a shift seen before.

Prints the median and the slowest of each (wall clock), at stage 1 (the default; 56 × 56 tokens) and optionally
other stages, and the median process CPU time of the same runs: on a loaded machine the wall clock mostly measures
waiting for a core, while CPU time is about what an idle machine would need (app.py runs torch ops on half the
cores, so threads do not spin against each other).
Budget (issue 6): median ≤ 200 ms for a window-size or shift move.

Between moves the bench waits `--think` seconds (untimed, default 1 s: a student looks at the page before the next
step). `--no-prefetch` sets VITVIZ_SWIN_PREFETCH=0, so every cold window-size move runs the model in the foreground.

AppTest builds a new ScriptCache for every run, so each run also recompiles app.py and the page (the real server
compiles a page once); `--server-cache` keeps one ScriptCache across runs, as the server does, and is reported on
its own line. The machine's load average is printed: on a shared machine, other processes slow every figure.

    python bench/bench_swin_page.py [--cycles 2] [--stages 1] [--res 224] [--think 1] [--no-prefetch] [--server-cache]
                                    [--tab "Mask & attention"]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vitviz.runtime import bench_setup  # noqa: E402

import torch  # noqa: E402

from tests.apptest import app  # noqa: E402

PAGE = "pages/swin.py"
BUDGET_S = 0.200


def keep_script_cache() -> None:
    """Make AppTest reuse one ScriptCache (compiled page bytecode) across runs, as `streamlit run` does."""
    from streamlit.runtime.scriptrunner import script_cache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = script_cache.ScriptCache()
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared


CPU: list[float] = []  # process CPU seconds of every timed run, in step with the wall-clock times


def timed_run(at) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    at.run()
    elapsed = time.perf_counter() - start
    CPU.append(time.process_time() - cpu)
    assert not at.exception, [e.message for e in at.exception]
    return elapsed


def bench(stage: int, res: int, cycles: int, think: float, tab: str) -> tuple[dict, dict]:
    import streamlit as st

    st.cache_data.clear()
    at = app(res=str(res), swstage=str(stage), swsec=tab)
    at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    out = {"window, cold": [], "window, warm": [], "shift, cold": [], "shift, warm": []}
    CPU.clear()
    order: list[str] = []  # which list each timed run went to, to pair it with its CPU time
    windows = [m for m in range(2, 15) if m != 7] + [7]
    def record(what: str) -> None:
        time.sleep(think)
        out[what].append(timed_run(at))
        order.append(what)

    for m in windows:  # every M once: each traces Swin-T up to the stage
        at.slider(key="M").set_value(m)
        record("window, cold")
    for _ in range(cycles):
        for m in windows:
            at.slider(key="M").set_value(m)
            record("window, warm")
    # back at M = 7 (s = 3 is the checkpoint's): every other shift re-runs the shifted block once
    for s in (0, 1, 2, 4, 5, 6, 3):
        at.slider(key="shift").set_value(s)
        record("shift, cold" if s != 3 else "shift, warm")
    for _ in range(cycles):
        for s in range(7):
            at.slider(key="shift").set_value(s)
            record("shift, warm")
    cpu = {what: [c for c, w in zip(CPU, order) if w == what] for what in out}
    return out, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--stages", type=int, nargs="+", default=[1])
    parser.add_argument("--res", type=int, default=224)
    parser.add_argument("--server-cache", action="store_true", help="reuse compiled page bytecode across runs")
    parser.add_argument("--think", type=float, default=1.0, help="untimed seconds between moves")
    parser.add_argument("--no-prefetch", action="store_true", help="no background runs of M ± 1")
    parser.add_argument("--tab", default="Partition", help="the page's tab to measure on (only the open tab is drawn)")
    args = parser.parse_args()
    bench_setup()
    if args.no_prefetch:
        os.environ["VITVIZ_SWIN_PREFETCH"] = "0"
    if args.server_cache:
        keep_script_cache()
    load = os.getloadavg()
    print(f"random-init Swin-T preset, {args.res}×{args.res}, CPU ({os.cpu_count()} cores), "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, "
          f"{'one ScriptCache as the server' if args.server_cache else 'AppTest as is (recompiles the page per run)'}, "
          f"think {args.think:g} s, prefetch {'off' if args.no_prefetch else 'on'}, tab {args.tab!r}")
    ok = True
    for stage in args.stages:
        r, cpu = bench(stage, args.res, args.cycles, args.think, args.tab)
        for what, times in r.items():
            median = statistics.median(times)
            ok &= median <= BUDGET_S
            print(f"stage {stage}  {what:13s} median {median * 1e3:5.0f} ms · slowest {max(times) * 1e3:5.0f} ms "
                  f"· {len(times)} moves · CPU time median {statistics.median(cpu[what]) * 1e3:5.0f} ms")
        print(f"stage {stage}  torch intra-op threads during the runs: {torch.get_num_threads()} (app.py sets them)")
        every = [t for times in r.values() for t in times]
        print(f"stage {stage}  all moves     median {statistics.median(every) * 1e3:5.0f} ms · {len(every)} moves")
    print(f"within budget (median ≤ {BUDGET_S * 1e3:.0f} ms)" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
