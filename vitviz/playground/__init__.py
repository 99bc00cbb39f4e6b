"""The training playground (issue 34): students train a small ViT live on made-up tasks and open it on the other
pages. `tasks` makes the images, `models` holds the run settings and models, `training` trains one run and
describes it as a frozen `RunView`, `runs` shares the server's cores among many runs; `python3 -m
vitviz.playground` trains one from the command line (README: "The library", Benchmarks › Training playground).
"""
from .models import MODELS, POSITIONS, PRESETS, RunConfig, build_model, patch_sizes
from .runs import PlaygroundFull, Run, Scheduler, scheduler
from .tasks import IMAGE_SIZES, TASKS, Examples, Task
from .training import ClsAttention, Curves, Mistake, PositionGrid, RunView, Trainer, train

__all__ = [
    "IMAGE_SIZES", "MODELS", "POSITIONS", "PRESETS", "TASKS", "ClsAttention", "Curves", "Examples", "Mistake",
    "PlaygroundFull", "PositionGrid", "Run", "RunConfig", "RunView", "Scheduler", "Task", "Trainer", "build_model",
    "patch_sizes", "scheduler", "train",
]
