"""vitviz.runtime's process settings, each in a fresh interpreter (they change the whole process), and the run
counter that app.py wraps every script run in."""
from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import weakref
from pathlib import Path

import pytest

from ui.shell import counted_run, runs_in_progress
from vitviz.runtime import CycleCollector

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


TRACE_LIKE_ROUNDS = """
    import resource, sys
    import torch
    from vitviz.runtime import keep_freed_memory

    torch.set_num_threads(1)  # every page fault on this thread, where RUSAGE_THREAD counts it
    if sys.argv[1] == "app":
        assert keep_freed_memory()

    def faults_of_one_round():
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        kept = [torch.ones(1 << 20) for _ in range(16)]  # 16 x 4 MB alive together, as a trace keeps its intermediates
        del kept
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

    print(*[faults_of_one_round() for _ in range(6)])
"""


def fault_rounds(setting: str) -> list[int]:
    return [int(n) for n in run_python(TRACE_LIKE_ROUNDS, setting).split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_keep_freed_memory_lets_later_traces_reuse_memory():
    """A trace keeps its intermediates alive together, then frees them all. glibc's defaults hand the freed 64 MB
    back to the kernel, and the next trace page-faults all 16,384 pages in again (later rounds vary: glibc's dynamic
    thresholds follow the history of frees). With the app's settings every later round is served from kept memory,
    but for at most one 4 MB block re-placed in the second round."""
    defaults, app = fault_rounds("defaults"), fault_rounds("app")
    assert defaults[1] > 12_000, defaults
    assert sum(app[1:]) < 1_500, app


def test_freeze_loaded_objects_takes_the_imports_out_of_every_collection():
    """After freezing, a full collection walks only what was created since: a few hundred objects, not the
    hundreds of thousands that the app's imports hold."""
    out = run_python("""
        import gc
        import pandas, plotly.graph_objects, streamlit, torch
        import vitviz
        from vitviz.runtime import freeze_loaded_objects

        before = len(gc.get_objects())
        frozen = freeze_loaded_objects()
        again = freeze_loaded_objects()  # app.py calls it on every run: the first call does the work
        garbage = [[i] for i in range(1000)]
        print(before, frozen, again, len(gc.get_objects()), gc.collect(2))
    """)
    before, frozen, again, tracked, collected = map(int, out.split())
    assert before > 100_000  # torch, streamlit, plotly and pandas
    assert frozen >= 0.9 * before and again == frozen
    assert tracked < 5_000  # the 1,001 lists made since and little else
    assert collected == 0


def test_counted_run_counts_runs_in_progress_until_they_end_however():
    base = runs_in_progress()
    entered, leave = threading.Event(), threading.Event()

    def other_session() -> None:
        with counted_run():
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=other_session)
    thread.start()
    entered.wait(10)
    with pytest.raises(RuntimeError), counted_run():
        assert runs_in_progress() == base + 2
        raise RuntimeError("a run that stops early (st.rerun, st.stop, an exception) must not stay counted")
    assert runs_in_progress() == base + 1
    leave.set()
    thread.join(10)
    assert runs_in_progress() == base


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cycle_collector_frees_cycles_at_most_once_per_interval():
    clock = FakeClock()
    collector = CycleCollector(every_s=20, clock=clock)

    class Node:
        pass

    def make_cycle() -> weakref.ref:
        a, b = Node(), Node()
        a.other, b.other = b, a
        return weakref.ref(a)

    gc.disable()  # only the collector under test may free the cycle
    try:
        cycle = make_cycle()
        clock.now = 19.9
        assert not collector.maybe_collect() and cycle() is not None
        clock.now = 20.0
        assert collector.maybe_collect() and cycle() is None
        cycle = make_cycle()
        clock.now = 39.9
        assert not collector.maybe_collect() and cycle() is not None
        clock.now = 40.0
        assert collector.maybe_collect() and cycle() is None
    finally:
        gc.enable()


def test_cycle_collector_lets_one_of_many_finishing_runs_collect():
    clock = FakeClock()
    collector = CycleCollector(every_s=20, clock=clock)
    clock.now = 25.0
    start = threading.Barrier(8)
    results = []

    def finishing_run() -> None:
        start.wait(10)
        results.append(collector.maybe_collect())

    threads = [threading.Thread(target=finishing_run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 7 + [True]


def test_server_config_replaces_streamlits_collection_after_every_run():
    """Streamlit's per-run gc.collect(2) is off; app.py calls the server's collector after every run instead."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    assert "COLLECTOR.maybe_collect()" in (ROOT / "app.py").read_text()
