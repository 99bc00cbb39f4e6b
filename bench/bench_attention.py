"""Server time of the attention page (AppTest, CPU) and peak memory of dino-vits8 at 480 × 480.

Medians of `AppTest.run()` wall time for dino-vits16 at 224 px after changing the layer, the head, the query (a
clicked patch) or the DINO threshold; every measured change draws its panel for the first time (revisits are
cheaper). Then a new image and a new resolution, which trace the model again. Finally a fresh process opens dino-vits8 at 480 × 480 (3,601 tokens),
changes layer and query, computes the rollout, and reports its peak RSS (VmHWM; ru_maxrss for reference).

    python bench/bench_attention.py [--repeats 12] [--skip-memory]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from vitviz.runtime import bench_setup  # noqa: E402
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the figures are CPU figures

import torch  # noqa: E402

import streamlit.testing.v1.app_test as app_test  # noqa: E402

from tests.apptest import app, photo, upload  # noqa: E402
from tests.test_page_attention import ONE, click  # noqa: E402

PAGE = "pages/attention.py"


def compile_scripts_once() -> None:
    """The server compiles each script once per process; AppTest compiles app.py and the page again on every run."""
    shared = app_test.ScriptCache()
    app_test.ScriptCache = lambda: shared


def timed(change) -> float:
    start = time.perf_counter()
    change()
    return (time.perf_counter() - start) * 1000


def interaction_medians(repeats: int) -> dict[str, float]:
    """Each measured change shows its panel for the first time (a new layer, head or t for a query never seen).

    The tabs are lazy, so each change is made with the tab open that shows it (opened before the timing starts): the
    layer on the head grid, the head and the clicked patch on the enlarged head, t on the DINO masks.
    """
    at = app()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    heads = 6  # dino-vits16
    changes = {
        "rerun, nothing changed": ("All heads", lambda i: at.run()),
        "layer": ("All heads", lambda i: at.slider(key="layer").set_value(1 + i % 12).run()),
        "head": (ONE, lambda i: at.pills(key="head").set_value(1 + (i + 1) % heads).run()),
        "query (click a patch)": (ONE, lambda i: click(at, (37 * i + 11) % 196)),
        "threshold t": ("DINO masks", lambda i: at.slider(key="t").set_value(round(0.05 * (1 + i % 19), 2)).run()),
    }

    def opened(tab: str):
        if at.session_state["atsec"] != tab:
            at.session_state["atsec"] = tab
            at.run()
        return at

    for tab, change in changes.values():  # warm up every path once
        opened(tab)
        change(19)
    times = {name: [] for name in changes}
    for i in range(repeats):  # round-robin, so that background load hits every change alike
        click(opened(ONE), (53 * i + 100) % 196)  # a query never seen: the next layer and head pictures are new too
        for name, (tab, change) in changes.items():
            opened(tab)
            times[name].append(timed(lambda: change(i)))
            assert not at.exception, [e.message for e in at.exception]
    return {name: statistics.median(t) for name, t in times.items()}


def retrace_medians(repeats: int) -> dict[str, float]:
    at = app()
    at.switch_page(PAGE).run()
    resolutions = [r for r in range(160, 289, 16) if r != 224]
    image, resolution = [], []
    for i in range(repeats):
        image.append(timed(lambda: upload(at, f"photo{i}.jpg", photo(320, 240, seed=100 + i))))
        resolution.append(timed(lambda: at.select_slider(key="res").set_value(resolutions[i % len(resolutions)]).run()))
        assert not at.exception, [e.message for e in at.exception]
    return {"new image (upload)": statistics.median(image), "new resolution": statistics.median(resolution)}


MEMORY_SCRIPT = textwrap.dedent("""
    import json, os, resource, sys, time
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    sys.path.insert(0, {root!r})
    from tests.apptest import app
    t0 = time.perf_counter()
    at = app(model="dino-vits8", res="480")
    at.switch_page("pages/attention.py").run()
    t1 = time.perf_counter()
    at.slider(key="layer").set_value(5).run()
    at.segmented_control(key="query").set_value("patch").run()
    t2 = time.perf_counter()
    at.session_state["atsec"] = "Rollout"  # the rollout's button is in its (lazy) tab
    at.run()
    t_tab = time.perf_counter()
    at.button(key="rollout-go").click().run()
    t3 = time.perf_counter()
    assert not at.exception, [e.message for e in at.exception]
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    print(json.dumps({{"vmhwm_mb": int(status["VmHWM"].split()[0]) / 1024,
                      "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "open_s": t1 - t0, "two_changes_s": t2 - t1, "rollout_s": t3 - t_tab}}))
""")


def memory() -> dict:
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(root=str(ROOT))], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    bench_setup()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores, load average {load:.1f}")
    print(f"dino-vits16 at 224 px (197 tokens), AppTest server time, median of {args.repeats}:")
    plain = interaction_medians(args.repeats)
    compile_scripts_once()
    compiled_once = interaction_medians(args.repeats)
    print(f"  {'':<28} {'AppTest':>8} {'scripts compiled once, as the server does':>44}")
    for name, ms in plain.items():
        print(f"  {name:<28} {ms:8.1f} ms {compiled_once[name]:8.1f} ms")
    for name, ms in retrace_medians(max(3, args.repeats // 2)).items():
        print(f"  {name:<28} {ms:8.1f} ms")
    if not args.skip_memory:
        m = memory()
        print("dino-vits8 at 480 × 480 (3,601 tokens), fresh process:")
        print(f"  peak RSS (VmHWM) {m['vmhwm_mb']:.0f} MB (ru_maxrss {m['maxrss_mb']:.0f} MB, which on Linux also counts"
              f" this bench process it was forked from) · open {m['open_s']:.1f} s · layer + query"
              f" {m['two_changes_s']:.2f} s · rollout {m['rollout_s']:.1f} s")


if __name__ == "__main__":
    main()
