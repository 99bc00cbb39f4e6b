"""Train one playground run from the command line and print what it reached (the README's figures, the tests):

    python3 -m vitviz.playground --task where --pos learned --patch 8 --steps 1000 --seed 0 --json
    python3 -m vitviz.playground --tasks

torch runs on one thread unless --threads says otherwise (the issue's figures are "on one core").
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

import torch

from ..runtime import flush_denormals
from .models import MODELS, POSITIONS, RunConfig
from .tasks import TASKS
from .training import train


def parser() -> argparse.ArgumentParser:
    """The CLI's options: one per RunConfig field, with its default."""
    defaults = RunConfig()
    p = argparse.ArgumentParser(prog="python3 -m vitviz.playground", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", action="store_true", help="list the task names and exit")
    p.add_argument("--task", choices=list(TASKS), default=defaults.task)
    p.add_argument("--model", choices=MODELS, default=defaults.model)
    p.add_argument("--pos", choices=POSITIONS, default=defaults.pos)
    for f in fields(RunConfig):
        if f.name not in ("task", "model", "pos"):
            p.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
                           default=getattr(defaults, f.name))
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a line of text")
    return p


def summary(view) -> dict:
    """The run's settings and outcome as JSON-ready values."""
    cfg = view.config
    return {
        "task": cfg.task, "model": cfg.model, "pos": cfg.pos, "patch": cfg.patch, "image_size": cfg.image_size,
        "dim": cfg.dim, "depth": cfg.depth, "heads": cfg.heads, "lr": cfg.lr, "batch": cfg.batch, "seed": cfg.seed,
        "steps": view.step, "parameters": view.parameters, "seconds": round(view.seconds, 3),
        "steps_per_s": round(view.steps_per_s, 2), "val_accuracy": round(view.val_accuracy, 4),
        "val_loss": round(float(view.curves.val_loss[-1]), 4),
        "pos_grid_correlation": None if view.grid is None else round(view.pos_grid_correlation, 4),
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.tasks:
        print("\n".join(TASKS))
        return 0
    config = RunConfig(**{f.name: getattr(args, f.name) for f in fields(RunConfig)})
    problems = config.problems()
    if problems:
        print("error: " + " ".join(problems), file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    flush_denormals()
    out = summary(train(config, args.device, args.threads))
    print(json.dumps(out) if args.json else " · ".join(f"{k} {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
