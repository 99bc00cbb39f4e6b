#!/usr/bin/env python3
"""Interaction budget of the "Linear projection" and "Position embeddings" pages (issue 4).

Drives the real app with Streamlit's AppTest on CPU, dino-vits16 (offline preset: same shapes and work as the hub
checkpoint) at 224 px, and times what a student does: moving the sidebar's patch-size slider and each page's own
slider. "Warm" moves revisit settings already seen in this process (the model, its PI-resized variants and the
st.cache_data entries exist); "cold" moves are first visits. Also records each panel's payload: the JSON spec of
every plotly chart and the bytes of every image, as Streamlit would send them.

    .venv/bin/python bench/bench_projection_position.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the budget is for CPU
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from vitviz.runtime import bench_setup  # noqa: E402

from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage  # noqa: E402

from tests.apptest import app  # noqa: E402  (also makes AppTest run app.py's st.navigation on every rerun)

MEDIA: dict[str, int] = {}
_load = MemoryMediaFileStorage.load_and_get_id


def _record(self, path_or_data, mimetype, kind, filename=None):
    file_id = _load(self, path_or_data, mimetype, kind, filename)
    MEDIA[file_id] = len(path_or_data) if isinstance(path_or_data, (bytes, bytearray)) else Path(path_or_data).stat().st_size
    return file_id


MemoryMediaFileStorage.load_and_get_id = _record
PATCH_SIZES = [16, 8, 32, 14, 20]  # the checkpoint's P, a finer and a coarser divisor, two non-divisors of 224


def walk(node, out):
    for child in getattr(node, "children", {}).values():
        out.append(child)
        walk(child, out)
    return out


def payloads(at) -> list[tuple[str, int]]:
    """(kind, bytes) of every chart and image on the current page."""
    found = []
    for el in walk(at._tree, []):
        if el.type == "plotly_chart":
            found.append(("chart", len(el.proto.spec)))
        elif el.type == "image":
            for img in el.proto.imgs:
                if img.url.startswith("/mock/media/"):
                    found.append(("image", MEDIA.get(img.url.rsplit("/", 1)[1].split(".")[0], 0)))
    return found


CPU: list[float] = []  # process CPU time of every timed step, ms: what the run costs on an otherwise idle machine


def timed(step) -> float:
    """Wall time of one rerun in ms (AppTest: script run in its thread + AppTest's bookkeeping)."""
    start, cpu = time.perf_counter(), time.process_time()
    at = step()
    elapsed = time.perf_counter() - start
    CPU.append((time.process_time() - cpu) * 1000)
    assert not at.exception, [e.message for e in at.exception]
    return elapsed * 1000


def bench_page(page: str, widget: tuple[str, list], rounds: int) -> dict:
    at = app(model="dino-vits16", res="224")
    at.switch_page(page).run()
    cold, warm, widget_ms, biggest = [], [], [], []
    for p in PATCH_SIZES:  # first visits
        cold.append(timed(lambda: at.slider(key="ps").set_value(p).run()))
        biggest.append(max(payloads(at), key=lambda kv: kv[1]))
    CPU.clear()
    for _ in range(rounds):
        for p in PATCH_SIZES:
            warm.append(timed(lambda: at.slider(key="ps").set_value(p).run()))
    warm_cpu = list(CPU)
    key, values = widget
    at.slider(key="ps").set_value(8).run()
    for _ in range(rounds):
        for v in values:
            w = at.select_slider(key=key) if key == "pos_layers" else at.slider(key=key)
            widget_ms.append(timed(lambda: w.set_value(v).run()))
    return {"cold": cold, "warm": warm, "warm_cpu": warm_cpu, "widget": widget_ms, "biggest": biggest, "panels": payloads(at)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bench_setup()
    import torch

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times scale with it)")
    print(f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, dino-vits16 at 224, "
          f"patch sizes {PATCH_SIZES}, {args.rounds} rounds")
    pages = {
        "pages/projection.py": ("proj_filter", [0, 1, 2, 3, 383]),
        "pages/position.py": ("pos_layers", [1, 2, 1, 2, 1]),
    }
    worst = 0.0
    for page, widget in pages.items():
        r = bench_page(page, widget, args.rounds)
        med = statistics.median(r["warm"])
        worst = max(worst, med, statistics.median(r["widget"]))
        print(f"\n{page}")
        print(f"  sidebar P slider, warm: median {med:.0f} ms, max {max(r['warm']):.0f} ms over {len(r['warm'])} moves "
              f"(process CPU time: median {statistics.median(r['warm_cpu']):.0f} ms)")
        print(f"  sidebar P slider, cold (first visit of P = {PATCH_SIZES}): " + ", ".join(f"{t:.0f}" for t in r["cold"]) + " ms")
        print(f"  page slider {widget[0]!r}: median {statistics.median(r['widget']):.0f} ms, max {max(r['widget']):.0f} ms")
        print("  largest panel per P: " + ", ".join(f"P={p}: {k} {b / 1024:.0f} KB" for p, (k, b) in zip(PATCH_SIZES, r["biggest"])))
        print("  panels at P=8: " + ", ".join(f"{k} {b / 1024:.0f} KB" for k, b in r["panels"]))
    print(f"\nworst median {worst:.0f} ms (budget 150 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
