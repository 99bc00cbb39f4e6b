"""The training playground's figures (issue 34), on one core unless said otherwise:

- speed: steps/s of the default configuration (and P = 4), the training step alone and with the live view's
  evaluations (what the CLI's steps_per_s reports);
- lessons: validation accuracy after training, as the CLI reports it: "where" with learned / fixed 2-D sin-cos /
  no position embeddings, "same" with the ViT and with the no-attention patch MLP, "shape" ViT vs CNN;
- grid: the position embeddings' grid-likeness (Pearson r of cosine with minus grid distance) over the steps;
- same: what the layers and heads of the trained "same" ViT look at (share of CLS attention on the two shapes'
  patches), and whether one layer or one head is enough;
- load: 30 runs started within seconds through the process's scheduler: when each curve first moves, how fast
  the 30th run goes, memory per run, and whether all stop when their sessions end.

    python bench/bench_playground.py [--only speed,lessons,grid,same,load] [--load-runs 30] [--load-seconds 60]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the figures are CPU figures
from vitviz.runtime import bench_setup  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vitviz import playground as pg  # noqa: E402
from vitviz.playground.training import torch_threads  # noqa: E402


def speed(repeats: int = 3) -> None:
    """Training steps per second, one thread: the step alone (median of `repeats` runs of 100 steps, after 10 warm-up
    steps), per wall-clock second and per second of this thread's CPU time (what one free core would do: the
    2-core machine is shared, so wall time is often unusable), and the whole run as the CLI times it (wall clock,
    evaluations included)."""
    print("\n## speed (one thread)")
    for config in (pg.RunConfig(), pg.RunConfig(patch=4), pg.RunConfig(patch=16), pg.RunConfig(model="cnn")):
        trainer = pg.Trainer(replace(config, steps=10**4))
        wall, cpu = [], []
        with torch_threads(1):
            for _ in range(10):
                trainer.train_step()
            for _ in range(repeats):
                start, start_cpu = time.perf_counter(), time.thread_time()
                for _ in range(100):
                    trainer.train_step()
                wall.append(100 / (time.perf_counter() - start))
                cpu.append(100 / (time.thread_time() - start_cpu))
        whole = pg.train(replace(config, steps=300))
        print(f"{config.model} P={config.patch} ({trainer.model.config.grid ** 2 if config.model != 'cnn' else '-'} "
              f"patches, {whole.parameters} params): step alone {statistics.median(cpu):.1f} steps per CPU second, "
              f"{statistics.median(wall):.1f} steps/s wall (runs {', '.join(f'{r:.1f}' for r in wall)}); "
              f"with evaluations {whole.steps_per_s:.1f} steps/s wall")


LESSONS = [
    ("where, learned E_pos", pg.RunConfig(task="where", steps=1000)),
    ("where, fixed 2-D sin-cos", pg.RunConfig(task="where", pos="sincos", steps=1000)),
    ("where, no E_pos", pg.RunConfig(task="where", pos="none", steps=1000)),
    ("same, ViT", pg.RunConfig(task="same", steps=2000)),
    ("same, patch MLP (no attention)", pg.RunConfig(task="same", model="mlp", steps=2000)),
    ("shape, ViT", pg.RunConfig(task="shape", steps=1000)),
    ("shape, ViT P=4", pg.RunConfig(task="shape", patch=4, steps=1000)),
    ("shape, CNN", pg.RunConfig(task="shape", model="cnn", steps=1000)),
]


def first_step_above(view: pg.RunView, accuracy: float) -> str:
    """The first evaluated step with validation accuracy >= `accuracy`, or 'never'."""
    above = np.nonzero(view.curves.val_accuracy >= accuracy)[0]
    return str(int(view.curves.steps[above[0]])) if len(above) else "never"


def lessons() -> dict[str, pg.RunView]:
    """Each lesson's run to its budget, as the CLI runs it."""
    print("\n## lessons (one thread, seed 0, validation = 512 fixed images)")
    views = {}
    for name, config in LESSONS:
        view = pg.train(config)
        views[name] = view
        grid = "-" if view.grid is None else f"{view.pos_grid_correlation:+.2f}"
        print(f"{name}: {config.steps} steps, val accuracy {view.val_accuracy:.3f} (best "
              f"{view.curves.val_accuracy.max():.3f}; ≥ 0.9 from step {first_step_above(view, 0.9)}), "
              f"grid r {grid}, {view.seconds:.1f} s, {view.steps_per_s:.1f} steps/s", flush=True)
    return views


def grid(views: dict[str, pg.RunView]) -> None:
    """The grid-likeness of E_pos over the steps, for the runs that have one."""
    print("\n## position-embedding grid-likeness over steps (Pearson r of cosine with −distance)")
    for name, view in views.items():
        if view.grid is None:
            continue
        curve = view.curves
        marks = [i for i, s in enumerate(curve.steps) if s in (0, 50, 100, 200, 500, 1000, 2000)]
        above = np.nonzero(curve.grid_correlation >= 0.3)[0]
        print(f"{name}: " + ", ".join(f"step {curve.steps[i]} {curve.grid_correlation[i]:+.2f}" for i in marks)
              + f"; r ≥ 0.3 from step {int(curve.steps[above[0]]) if len(above) else 'never'}")
        sim = view.grid.similarity
        g = view.grid.grid[0]
        neighbour = np.mean([sim[i, i + 1] for i in range(g * g) if (i + 1) % g])
        far = np.mean([sim[i, j] for i in range(g * g) for j in range(g * g)
                       if abs(i // g - j // g) + abs(i % g - j % g) >= g])
        print(f"    final cosine: right-hand neighbour {neighbour:+.2f}, positions ≥ {g} steps apart {far:+.2f}")


def attention_on_shapes(model: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    """Share of each layer's and head's CLS attention on the patches holding shape pixels: (layers, heads), mean over
    the images."""
    p = model.config.patch_size
    bright = (images.amax(1) > 0.5).float()  # (n, S, S)
    holds = torch.nn.functional.max_pool2d(bright[:, None], p).flatten(1) > 0  # (n, patches)
    with torch.no_grad():
        attentions = model.eval()(images, output_attentions=True).attentions
    shares = [(a[:, :, 0, 1:] * holds[:, None]).sum(-1) / a[:, :, 0, 1:].sum(-1) for a in attentions]
    return torch.stack(shares, 1).mean(0).numpy(), float(holds.float().mean())


def same() -> None:
    """What the trained "same" ViT's heads look at, and whether one layer or one head learns the task."""
    print("\n## same or different: layers and heads")
    trainer = pg.Trainer(pg.RunConfig(task="same", steps=2000))
    trainer.advance()
    images, _ = pg.TASKS["same"].make(256, seed=123)
    shares, uniform = attention_on_shapes(trainer.model, images)
    print(f"default ViT ({trainer.view().val_accuracy:.3f}): CLS attention on the shapes' patches "
          f"(uniform attention would give {uniform:.2f}):")
    for layer, row in enumerate(shares):
        print(f"    layer {layer + 1}: " + ", ".join(f"head {h + 1} {s:.2f}" for h, s in enumerate(row)))
    for name, config in (("one layer", pg.RunConfig(task="same", depth=1, steps=2000)),
                         ("one head per layer", pg.RunConfig(task="same", heads=1, steps=2000))):
        view = pg.train(config)
        print(f"{name}: val accuracy {view.val_accuracy:.3f} after {config.steps} steps "
              f"(≥ 0.85 from step {first_step_above(view, 0.85)})", flush=True)


def rss_mb() -> float:
    """This process's resident memory in MB (Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def load(runs: int, seconds: float, workers: int | None, nice: int) -> None:
    """`runs` runs (different seeds, 1000-step budgets) started one every 0.3 s through one Scheduler; progress
    sampled every 0.25 s for `seconds`, then every session ends."""
    scheduler = pg.Scheduler(workers=workers, nice=nice)
    print(f"\n## {runs} runs at once: {scheduler.workers} worker thread(s), nice +{scheduler.nice}, slices "
          f"{scheduler.slice_seconds} s")
    before = rss_mb()
    started, first_move, handles = {}, {}, []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if len(handles) < runs and now - start >= 0.3 * len(handles):
            handles.append(scheduler.start(pg.RunConfig(seed=len(handles), steps=1000), owner=f"s{len(handles)}"))
            started[handles[-1].id] = now
        for run in handles:
            view = run.view()
            if run.id not in first_move and view is not None and view.step > 0:
                first_move[run.id] = now - started[run.id]
        time.sleep(0.25)
    views = [run.view() for run in handles]
    steps = [view.step if view else 0 for view in views]
    waited = [first_move.get(run.id, float("inf")) for run in handles]
    print(f"started {len(handles)} runs in {0.3 * (len(handles) - 1):.1f} s; first step after: median "
          f"{statistics.median(waited):.1f} s, max {max(waited):.1f} s (the 30th: {waited[-1]:.1f} s)")
    print(f"after {seconds:.0f} s: steps per run min {min(steps)}, median {statistics.median(steps)}, max {max(steps)};"
          f" the last-started run {steps[-1]} steps in {seconds - 0.3 * (len(handles) - 1):.0f} s "
          f"({steps[-1] / (seconds - 0.3 * (len(handles) - 1)):.2f} steps/s); all runs together "
          f"{sum(steps) / seconds:.1f} steps/s; runs that never moved {sum(s == 0 for s in steps)}")
    grown = rss_mb() - before
    print(f"memory: RSS grew {grown:.0f} MB for {len(handles)} runs ({grown / len(handles):.1f} MB per run, "
          f"validation sets shared by seed included)")
    stop = time.monotonic()
    for run in handles:
        scheduler.end_session(run.owner)
    while scheduler.active():
        time.sleep(0.01)
    print(f"every session ended: {scheduler.active()} runs active {time.monotonic() - stop:.2f} s later, states "
          f"{sorted({run.state for run in handles})}")
    scheduler.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="speed,lessons,grid,same,load")
    parser.add_argument("--load-runs", type=int, default=30)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=None, help="scheduler workers (default: the cores)")
    parser.add_argument("--nice", type=int, default=pg.runs.WORKER_NICE, help="the workers' added OS priority")
    args = parser.parse_args()
    bench_setup(threads=1)
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    only = set(args.only.split(","))
    if "speed" in only:
        speed()
    if only & {"lessons", "grid"}:
        views = lessons()
        if "grid" in only:
            grid(views)
    if "same" in only:
        same()
    if "load" in only:
        load(args.load_runs, args.load_seconds, args.workers, args.nice)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
