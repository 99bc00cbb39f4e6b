"""vitviz.runtime's process settings, each in a fresh interpreter (they change the whole process), and the run
counter that app.py wraps every script run in."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from ui.shell import counted_run, runs_in_progress

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_keep_freed_memory_lets_a_second_trace_reuse_memory():
    """With the app's allocator settings a repeated 8 MB allocation is served from freed memory: no page faults
    (glibc's defaults give back and re-fault all 2,048 pages)."""
    out = run_python("""
        import resource
        import torch
        from vitviz.runtime import keep_freed_memory

        assert keep_freed_memory()

        def faults_of_touching_8mb():
            before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            torch.ones(2 << 20).sum()  # 8 MB, allocated, written, freed
            return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

        faults_of_touching_8mb()
        print(faults_of_touching_8mb())
    """)
    assert int(out) < 100


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
