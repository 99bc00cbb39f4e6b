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

from ui.server import counted_run, runs_in_progress
from vitviz.runtime import CycleCollector

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


ALLOCATOR_PROBE = """
    import ctypes, sys
    import torch
    from vitviz.runtime import keep_freed_memory

    class MallInfo2(ctypes.Structure):  # glibc >= 2.33
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                          "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    torch.set_num_threads(1)  # every allocation below from this thread, in glibc's main arena
    assert keep_freed_memory()
    before = libc.mallinfo2()
    kept = [torch.ones(1 << 20) for _ in range(16)]  # 16 x 4 MB alive together, as a trace keeps its intermediates
    during = libc.mallinfo2()
    del kept
    after = libc.mallinfo2()
    mb = 1 << 20
    print((during.hblkhd - before.hblkhd) // mb, (during.uordblks - before.uordblks) // mb, after.fordblks // mb)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_keep_freed_memory_serves_trace_sized_blocks_from_memory_it_keeps():
    """What the app's allocator settings guarantee, whatever glibc did earlier in the process: 4 MB blocks (a
    trace's intermediates) come from the heap rather than from their own mappings, and the 64 MB freed after a
    trace stays with the allocator for the next trace instead of going back to the kernel (which made the next
    trace page-fault it in again). The page faults themselves are measured in bench/bench_allocator.py."""
    mapped_mb, heap_mb, kept_free_mb = map(int, run_python(ALLOCATOR_PROBE).split())
    assert mapped_mb == 0
    assert heap_mb >= 64
    assert kept_free_mb >= 64


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


def test_the_apps_start_up_flushes_denormals_in_the_script_thread():
    """Streamlit runs app.py in a thread of its own per run; by the time the sidebar (and any model) runs there,
    denormals are flushed, while the interpreter's main thread, which runs no app code, is left as it was."""
    out = run_python("""
        import ui.sidebar
        from tests.apptest import app
        from vitviz.runtime import denormals_flushed

        seen = []
        real_sidebar = ui.sidebar.sidebar

        def spy():
            seen.append(denormals_flushed())
            return real_sidebar()

        ui.sidebar.sidebar = spy  # app.py imports it by name at its first run, after this
        before = denormals_flushed()
        at = app()
        assert not at.exception, [e.message for e in at.exception]
        print(before, *seen)
    """)
    assert out.split() == ["False", "True"]


def test_flushing_zeroes_only_values_below_the_smallest_normal_float():
    out = run_python("""
        import torch
        from vitviz.runtime import denormals_flushed, flush_denormals

        tiny = torch.finfo(torch.float32).tiny  # 1.18e-38, the smallest normal float32
        x = torch.tensor([tiny, 1e-39, 1e-44, 1e-30], dtype=torch.float64)
        before = (x.float() * 1).tolist()
        assert flush_denormals() and denormals_flushed()
        after = (x.float() * 1).tolist()
        print(before[1] > 0, before[2] > 0, after[0] == before[0], after[1], after[2], after[3] == before[3])
    """)
    assert out.split() == ["True", "True", "True", "0.0", "0.0", "True"]


def test_the_first_page_imports_only_what_it_draws():
    """A cold start's first page, the overview, draws no chart or table and finds no weights on a new machine: it
    imports neither pandas (0.35 s) nor huggingface_hub's download code (0.2 s). A run that may draw charts (here
    the overview in a lesson, whose questions are charts) imports pandas before drawing, and freezes its objects
    out of the collector's walks as the first run froze the other libraries'."""
    out = run_python("""
        import gc, os, sys, tempfile
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp()
        from tests.apptest import app

        at = app()
        assert not at.exception and at.title[0].value == "How a vision transformer sees your image"
        first = [name in sys.modules for name in ("pandas", "huggingface_hub.file_download")]
        frozen = gc.get_freeze_count()
        at = app(lesson="pixels-to-tokens", step="1")  # its first step is the overview, which imports no pandas
        assert not at.exception, [e.message for e in at.exception]
        print(*first, "pandas" in sys.modules, gc.get_freeze_count() - frozen > 30_000)
    """)
    assert out.split() == ["False", "False", "True", "True"]
