"""Interaction budget of pages 1–2 (Patching, Flattening), measured with AppTest on CPU, caches warm.

For each page: open it with dino-vits16 at 224, visit every patch size of the cycle once (so the model adaptation
and the page caches are warm), then time `at.run()` after each slider move, several cycles; the same for a move of
the selected-patch input. Prints the median and the slowest move (server time: the whole script, sidebar included)
and the largest payload of any one panel: a plotly figure's JSON or an image file the page sends.

    python bench/bench_patch_pages.py [--cycles 5] [--sizes 16 13 8 37 4 64]

Budget (issue 4): median ≤ 150 ms per slider move, ≤ 400 KB per panel.
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

from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage  # noqa: E402

from tests.apptest import app  # noqa: E402

PAGES = ["pages/patching.py", "pages/flattening.py"]
_media: list[tuple[str, int]] = []
_load = MemoryMediaFileStorage.load_and_get_id


def _recording_load(self, path_or_data, mimetype, kind, filename=None):
    if isinstance(path_or_data, (bytes, bytearray)):
        _media.append((f"{kind} {mimetype}", len(path_or_data)))
    return _load(self, path_or_data, mimetype, kind, filename)


MemoryMediaFileStorage.load_and_get_id = _recording_load


def panels(at) -> list[tuple[str, int]]:
    """(what, bytes) of every figure and image the last run sent."""
    sizes = [(f"plotly {el.proto.id[-12:] or ''}", len(el.proto.spec.encode())) for el in at.get("plotly_chart")]
    return sizes + list(_media)


def timed_run(at) -> float:
    _media.clear()
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    assert not at.exception, [e.message for e in at.exception]
    return elapsed


def bench(page: str, sizes: list[int], cycles: int) -> dict:
    at = app()
    at.switch_page(page).run()
    for p in sizes:  # warm: adapt the model to every P once, fill the page caches
        at.slider(key="ps").set_value(p)
        timed_run(at)
    moves, biggest = [], ("", 0)
    for _ in range(cycles):
        for p in sizes:
            at.slider(key="ps").set_value(p)
            moves.append(timed_run(at))
            for what, size in panels(at):
                if size > biggest[1]:
                    biggest = (f"{what} at P={p}", size)
    at.slider(key="ps").set_value(16)
    timed_run(at)
    picks = []
    for i in range(cycles * 3):
        at.number_input(key="patch").set_value((i * 37) % 196)
        picks.append(timed_run(at))
    return dict(page=page, slider_median=statistics.median(moves), slider_max=max(moves),
                pick_median=statistics.median(picks), biggest=biggest)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 13, 8, 37, 4, 64])
    args = parser.parse_args()
    bench_setup()
    print(f"dino-vits16 (random-init preset), 224×224, CPU, patch sizes {args.sizes}, {args.cycles} cycles")
    ok = True
    for page in PAGES:
        r = bench(page, args.sizes, args.cycles)
        ok &= r["slider_median"] <= 0.150 and r["biggest"][1] <= 400_000
        print(f"{page:22s} slider move: median {r['slider_median'] * 1e3:5.0f} ms, "
              f"slowest {r['slider_max'] * 1e3:5.0f} ms"
              f" · patch pick: median {r['pick_median'] * 1e3:5.0f} ms"
              f" · largest panel {r['biggest'][1] / 1e3:5.0f} KB ({r['biggest'][0]})")
    print("within budget (≤ 150 ms median, ≤ 400 KB per panel)" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
