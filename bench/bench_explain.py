"""Library time of the explanation page's computations (`vitviz.explain`) on the CPU, at 224 px, random weights.

For each classifier: all maps of one class (one forward and one backward pass), the deletion and insertion curves of
those maps (what a class change recomputes), the random band (once per image, every class at once), the logit lens.
Medians over `--repeats` images; torch threads as the app uses them (half the cores) and with every core.

    python bench/bench_explain.py [--repeats 5] [--models deit-tiny vit-base-16 ...]
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
from vitviz import explain as ex  # noqa: E402

MODELS = ("deit-tiny", "vit-base-16", "dinov2-small-cls", "swin-tiny", "mobilevit-xxs", "mobilevit-s")


def seconds(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(name: str, repeats: int) -> dict[str, float]:
    model = vitviz.load_model(name)
    vit = ex.is_vit(model)
    times: dict[str, list[float]] = {"maps": [], "curves": [], "random": [], "lens": []}
    for seed in range(repeats + 1):  # the first image warms up
        x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(seed))
        target = ex.predict(model, x, k=1).classes[0]
        t_maps, e = seconds(lambda: ex.explain(model, x, target))
        t_random, band = seconds(lambda: ex.random_curves(model, x, e.grid))
        t_curves, _ = seconds(lambda: ex.faithfulness(model, x, e, band))  # what a class change recomputes
        t_lens = seconds(lambda: ex.lens(model, x))[0] if vit else float("nan")
        if seed:
            for key, value in zip(times, (t_maps, t_curves, t_random, t_lens)):
                times[key].append(value)
    return {key: statistics.median(values) for key, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    args = parser.parse_args()
    cores = os.cpu_count() or 2
    for threads in sorted({max(1, cores // 2), cores}):
        bench_setup(threads)
        print(f"torch threads {threads} ({'as the app runs' if threads == max(1, cores // 2) else 'every core'}); "
              f"{len(ex.STEPS)} steps, {ex.SEEDS} random orders; seconds, median of {args.repeats} images")
        print(f"{'model':18} {'maps':>6} {'curves':>7} {'random':>7} {'lens':>6}  (curves: all maps, deletion + insertion)")
        for name in args.models:
            t = measure(name, args.repeats)
            print(f"{name:18} {t['maps']:6.2f} {t['curves']:7.2f} {t['random']:7.2f} {t['lens']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
