"""The page's own time (issue 31): each page that runs a transformer, its largest interaction against the bare
library call that runs the model at the same settings, in one process, round by round.

A page's time is its script run after the move: the CPU time of the script's thread (with the app's one torch thread
on 2 cores, all of its work: the figure that stays comparable on a loaded host) and `AppTest.run()` wall time;
scripts compiled once, as the server does; every value new to the process, so that nothing is cached: the page
adapts the model when P changes, runs it, computes what it shows, draws and encodes it. The bare time is the same
model work called directly, in a thread of its own as Streamlit runs a script: the PI-resize to the new P
(`with_patch_size`) and the page's model call, at the same settings and input size (the pixel values do not change
the work). Each round measures both, in alternating order; a ratio is the median of the rounds' ratios. Target:
≤ 1.3× on every page.

*Rerun* is the same page's script run with nothing new (every value cached, no widget moved): Streamlit's elements,
widgets, the sidebar and the chrome, which every run pays whatever it computes. Beside it, *0.3 × bare*: what the
target leaves for all the page's own work after a move, that rerun included.

    python bench/bench_page_time.py [--rounds 6] [--pages attention,registers]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the figures are CPU figures
os.environ.setdefault("VITVIZ_SWIN_PREFETCH", "0")  # no background runs of the neighbouring M competing for the CPU
from vitviz.runtime import bench_setup, flush_denormals  # noqa: E402

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import vitviz  # noqa: E402
from bench.bench_latency import compile_scripts_once  # noqa: E402
from tests.apptest import app  # noqa: E402
import streamlit as st  # noqa: E402
import streamlit.runtime.scriptrunner.script_runner as script_runner  # noqa: E402
from vitviz import attention as att  # noqa: E402
from vitviz import embeddings as emb  # noqa: E402
from vitviz import mobilevit_blocks as mb  # noqa: E402
from vitviz import norms  # noqa: E402
from vitviz import swin_windows as sw  # noqa: E402

PATCH_SIZES = [14, 20, 12, 24, 18, 28, 15, 22, 13, 26, 17, 21]  # ViT pages: a new P every round (none is 16)
# MobileViT: a new (ph, pw) every round, none the checkpoint's (2, 2) the page opens with (a repeated one would find
# its run in the page's cache: ph alone has 4 useful values, and rounds 5 and 6 measured a cached run)
MOBILEVIT_PATCHES = [(1, 2), (3, 2), (4, 2), (1, 3), (3, 3), (2, 4), (4, 1), (3, 1), (2, 3), (4, 4), (1, 4), (4, 3)]
SWIN_WINDOWS = [3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 2]  # Swin: a new M every round, none the checkpoint's 7
ROUNDS_MAX = len(PATCH_SIZES) - 1  # the bare side's warm-up call takes the value after the last round's
RERUNS = 7  # runs with nothing new after the rounds: their median is the page's fixed cost


@dataclass(frozen=True)
class Case:
    """One page's largest interaction and the model work it implies."""

    page: str  # key of the page (pages/<page>.py)
    interaction: str  # what the student does, for the table
    query: dict  # the URL the page is opened with
    move: Callable  # (AppTest, round) -> None: sets the widget to the round's new value
    bare: Callable  # round -> callable that does the same model work outside Streamlit


def vit_bare(call) -> Callable:
    """The bare work of a ViT page at the round's P: PI-resize dino-vits16 (the preset the page loads offline) and
    run `call(model, x)` on a 224 × 224 input."""
    base = vitviz.load_model("dino-vits16")

    def at_round(i: int):
        return lambda: call(base.with_patch_size(PATCH_SIZES[i]), torch.rand(1, 3, 224, 224))
    return at_round


def swin_bare() -> Callable:
    """Swin-T at 224 × 224, the first stage's regular and shifted blocks at the round's window size."""
    model = vitviz.load_model("swin-tiny")
    return lambda i: lambda: sw.run_stage(model, torch.rand(1, 3, 224, 224), SWIN_WINDOWS[i], 0)


def mobilevit_bare() -> Callable:
    """MobileViT-XXS at 256 × 256: the blocks at the round's patch size (the trunk is cached by the page too)."""
    model = vitviz.load_model("mobilevit-xxs")
    trunk = mb.trunk(model, torch.rand(1, 3, 256, 256))
    return lambda i: lambda: mb.run_blocks(model, trunk, MOBILEVIT_PATCHES[i])


def set_slider(key: str, values) -> Callable:
    return lambda at, i: at.slider(key=key).set_value(values(i))


CASES = {
    "attention": lambda: Case("attention", "patch-size move (sidebar P)", {}, set_slider("ps", PATCH_SIZES.__getitem__),
                              vit_bare(att.trace_attention)),
    "registers": lambda: Case("registers", "patch-size move (sidebar P)", {}, set_slider("ps", PATCH_SIZES.__getitem__),
                              vit_bare(norms.trace_norms)),
    "position": lambda: Case("position", "patch-size move (sidebar P)", {}, set_slider("ps", PATCH_SIZES.__getitem__),
                             vit_bare(lambda m, x: emb.position_stage(m, x, Image.new("RGB", (224, 224)), 1))),
    "swin": lambda: Case("swin", "window size M", {"swsec": "Mask & attention"},
                         set_slider("M", SWIN_WINDOWS.__getitem__), swin_bare()),
    "mobilevit": lambda: Case("mobilevit", "patch size (ph, pw)", {"mvsec": "Global representation"},
                              lambda at, i: (at.slider(key="ph").set_value(MOBILEVIT_PATCHES[i][0]),
                                             at.slider(key="pw").set_value(MOBILEVIT_PATCHES[i][1])),
                              mobilevit_bare()),
}


SCRIPT_CPU: list[float] = []  # CPU seconds of each script run, measured in its own thread


def _timed_script(run):
    """Streamlit's script execution, recording the CPU time of the thread that runs the script."""
    def timed(*args, **kwargs):
        start = time.thread_time()
        try:
            return run(*args, **kwargs)
        finally:
            SCRIPT_CPU.append(time.thread_time() - start)
    return timed


script_runner.exec_func_with_error_handling = _timed_script(script_runner.exec_func_with_error_handling)


def seconds(fn) -> tuple[float, float]:
    """(wall, CPU of the calling thread) seconds of `fn`."""
    start, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - start, time.thread_time() - cpu


def seconds_in_thread(fn) -> tuple[float, float]:
    """`seconds(fn)` in a new thread with denormals flushed, as Streamlit runs a script (in this process's main
    thread torch's parallel team measured up to 10× slower on the shared 2-core host)."""
    out = []
    worker = threading.Thread(target=lambda: (flush_denormals(), out.append(seconds(fn))))
    worker.start()
    worker.join()
    return out[0]


def measure(case: Case, rounds: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]], float]:
    """(page (wall, CPU) seconds, bare (wall, CPU) seconds) of every round, and the median CPU seconds of the page's
    run with nothing new. The page's CPU is its script thread's, the bare CPU its thread's: with one torch thread
    (the app's setting on 2 cores) that is all the work, and it does not grow when other jobs load the host."""
    # Nothing from the page measured before: the ViT pages step through the same patch sizes, and a model adapted to P
    # by one page is in Streamlit's cache for the next (page times below the bare ones, once)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = app(**case.query)
    at.switch_page(f"pages/{case.page}.py").run(timeout=300)
    assert not at.exception, [e.message for e in at.exception]
    seconds_in_thread(case.bare(rounds))  # warm: the bare side's first call pays one-off costs too
    page, bare = [], []
    for i in range(rounds):
        def moved():
            case.move(at, i)
            SCRIPT_CPU.clear()
            start = time.perf_counter()
            at.run(timeout=300)
            return time.perf_counter() - start, sum(SCRIPT_CPU)
        work = case.bare(i)
        if i % 2:
            bare.append(seconds_in_thread(work))
            page.append(moved())
        else:
            page.append(moved())
            bare.append(seconds_in_thread(work))
        assert not at.exception, [e.message for e in at.exception]
    reruns = []
    for _ in range(RERUNS):
        SCRIPT_CPU.clear()
        at.run(timeout=300)
        reruns.append(sum(SCRIPT_CPU))
    return page, bare, statistics.median(reruns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pages", default=",".join(CASES))
    args = parser.parse_args()
    if not 1 <= args.rounds <= ROUNDS_MAX:
        parser.error(f"--rounds must be 1 … {ROUNDS_MAX}: every round takes a value no earlier round took")
    bench_setup()
    compile_scripts_once()
    print(f"load average {os.getloadavg()[0]:.1f} · AppTest · medians of {args.rounds} rounds · ratio = median of the "
          "rounds' page / bare")
    print(f"{'page':<11}{'interaction':<30}{'page CPU ms':>12}{'bare CPU ms':>12}{'CPU ratio':>10}"
          f"{'page wall ms':>13}{'bare wall ms':>13}{'wall ratio':>11}{'rerun CPU ms':>13}{'0.3 × bare':>11}")
    for name in args.pages.split(","):
        case = CASES[name]()
        page, bare, rerun = measure(case, args.rounds)
        row = f"{name:<11}{case.interaction:<30}"
        for k in (1, 0):  # CPU first: the comparable figure on a loaded host
            ratio = statistics.median(p[k] / b[k] for p, b in zip(page, bare))
            row += (f"{statistics.median(p[k] for p in page) * 1e3:>{12 + k}.0f}"
                    f"{statistics.median(b[k] for b in bare) * 1e3:>{12 + k}.0f}{ratio:>{10 + k}.2f}")
        row += f"{rerun * 1e3:>13.1f}{0.3 * statistics.median(b[1] for b in bare) * 1e3:>11.1f}"
        print(row, flush=True)
    print(f"torch threads {torch.get_num_threads()} (app.py's setting once the app has run) · load average "
          f"{os.getloadavg()[0]:.1f} at the end")

if __name__ == "__main__":
    main()
