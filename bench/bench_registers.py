"""Server time of page 6 (registers & token norms), AppTest on the CPU: dinov2-small and dinov2-large at 224 px.

First render: the page opened on an image this server has not traced yet (the model already loaded), which runs
the model once through every layer (`vitviz.norms.trace_norms`) and draws the norm picture, histogram and depth
plot. Layer move: the layer slider set to a layer not drawn before. Each figure is a median over `--repeats`
images; the large model's loading (random weights here: building and initialising 304 M parameters) is stated
apart. The library time of one trace_norms is printed beside, as a reference.

    python bench/bench_registers.py [--repeats 7] [--skip-large]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the figures are CPU figures
from vitviz.runtime import bench_setup  # noqa: E402

import torch  # noqa: E402

import vitviz  # noqa: E402
from tests.apptest import app, photo, upload  # noqa: E402
from vitviz import norms  # noqa: E402

PAGE = "pages/registers.py"


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def page_medians(model: str, repeats: int) -> dict[str, float]:
    start = time.perf_counter()
    at = app(model=model, hub="false")
    at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    cold = ms(start)
    depth = vitviz.models.vit.PRESETS[model].depth
    first, move = [], []
    for i in range(repeats):
        start = time.perf_counter()
        upload(at, f"photo{i}.jpg", photo(320, 240, seed=200 + i))  # a new image: the page traces it once
        first.append(ms(start))
        assert not at.exception, [e.message for e in at.exception]
        for step in range(3):  # layers not drawn before for this image
            start = time.perf_counter()
            at.slider(key="nlayer").set_value(1 + (3 * i + step) % (depth - 1)).run()
            move.append(ms(start))
        at.slider(key="nlayer").set_value(depth).run()
    return {"app start, model load and first page": cold, "first render (new image)": statistics.median(first),
            "layer move": statistics.median(move)}


def library_ms(model: str, repeats: int) -> float:
    m = vitviz.load_model(model, device="cpu")
    x = torch.randn(1, 3, 224, 224)
    norms.trace_norms(m, x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        norms.trace_norms(m, x)
        times.append(ms(start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    bench_setup()
    print(f"CPU, {torch.get_num_threads()} torch threads; AppTest server time at 224 px, medians of {args.repeats}:")
    for model in ["dinov2-small", *([] if args.skip_large else ["dinov2-large"])]:
        figures = page_medians(model, args.repeats)
        print(f"  {model} ({vitviz.models.vit.PRESETS[model].depth} layers, 261 tokens with registers / 257 without):")
        for name, value in figures.items():
            print(f"    {name:<40} {value:8.0f} ms")
        print(f"    {'trace_norms alone (library)':<40} {library_ms(model, args.repeats):8.0f} ms")


if __name__ == "__main__":
    main()
