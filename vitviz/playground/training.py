"""One playground run's training, in the calling thread: AdamW on a task's images made on the fly, evaluation on
a fixed validation set at fixed steps, and the frozen `RunView` of everything the live page draws (ViT Fig. 7's
position-embedding similarity and its grid-likeness over steps, CLS attention per head, confusion matrix, worst
mistakes). `vitviz.playground.runs` runs many of these in slices; the CLI and the benches run one directly.

Determinism: the initial weights come from `init_random`'s seeded generator, the training batch of step t from a
generator seeded with (seed, t), the validation set from (seed, a bit no training step uses), and nothing reads the
global RNG, so the same RunConfig gives the same curve on the same machine, however the run is paused and sliced.
"""
from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from ..embeddings import cosine_similarity, similarity_structure
from ..models.common import pick_device
from .models import RunConfig, build_model, parameter_count, trained_parameters
from .tasks import TASKS, to_uint8

VAL_SIZE = 512  # validation images: accuracy in steps of 0.2 %, 1.5 MB as uint8, shared by runs with the same seed
ATTENTION_IMAGES = 4  # fixed validation images whose CLS attention the live view shows
MISTAKES = 6  # worst validation mistakes kept in a view
EVAL_CHUNK = 256  # validation images per forward pass
VALIDATION_BIT = 1 << 31  # set in the validation set's generator seed and in no training step's


def train_seed(seed: int, step: int) -> int:
    """Generator seed of the training batch of `step` (0-based), disjoint from every validation seed."""
    return (int(seed) << 32) | (step % VALIDATION_BIT)


def is_eval_step(step: int, budget: int) -> bool:
    """Whether the run evaluates after `step` steps: at 0, every 10 steps up to 100 (the first seconds move the
    curves most), every 50 after, and at the budget."""
    return step == budget or (step % 10 == 0 if step <= 100 else step % 50 == 0)


@dataclass(frozen=True)
class ValidationSet:
    """A task's fixed validation images for one seed and size."""

    images: Tensor  # (VAL_SIZE, 3, S, S) uint8 (what make() gives, times 255: exact)
    labels: Tensor  # (VAL_SIZE,) int64


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with `threads` torch intra-op threads in the calling thread (OpenMP keeps the count per
    thread, so other threads, e.g. the app's pages, keep theirs). A 80 k-parameter model gains nothing from a
    second thread, and on a loaded 2-core machine two threads that wait for each other made 25 steps take 84 s
    instead of 8."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=8)
def validation_set(task: str, seed: int, size: int) -> ValidationSet:
    """The validation set of (task, seed, size); cached (8 × 1.5 MB at most) because a class's runs share seeds."""
    images, labels = TASKS[task].make(VAL_SIZE, (int(seed) << 32) | VALIDATION_BIT, size)
    return ValidationSet((images * 255).round().to(torch.uint8), labels)


class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter, ICLR 2019, Algorithm 2), the update of
    torch.optim.AdamW with its defaults (β = (0.9, 0.999), ε = 1e-8; tested equal), written out because the first
    torch.optim optimiser of a process imports torch._dynamo: 3–8 s on the 2-core machine, holding the GIL while
    every page waits."""

    def __init__(self, groups: list[tuple[list[torch.nn.Parameter], float]], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.groups = [(params, decay) for params, decay in groups if params]  # (parameters, weight decay)
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.moments = [([torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params])
                        for params, _ in self.groups]

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """θ ← θ(1 − lr·λ) − lr · m̂ / (√v̂ + ε), with m, v the running moments of the gradient."""
        self.t += 1
        (b1, b2), lr = self.betas, self.lr
        for (params, decay), (m, v) in zip(self.groups, self.moments):
            grads = [p.grad for p in params]
            if decay:
                torch._foreach_mul_(params, 1 - lr * decay)
            torch._foreach_lerp_(m, grads, 1 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
            denominator = torch._foreach_sqrt(v)
            torch._foreach_div_(denominator, (1 - b2**self.t) ** 0.5)
            torch._foreach_add_(denominator, self.eps)
            torch._foreach_addcdiv_(params, m, denominator, value=-lr / (1 - b1**self.t))


@dataclass(frozen=True)
class Curves:
    """Per evaluation point, in step order (k points): the numbers the live charts draw."""

    steps: np.ndarray  # (k,) int64 steps done at each point
    train_loss: np.ndarray  # (k,) mean training cross-entropy since the previous point (nan at step 0)
    train_accuracy: np.ndarray  # (k,) mean training accuracy since the previous point, 0–1 (nan at step 0)
    val_loss: np.ndarray  # (k,) validation cross-entropy
    val_accuracy: np.ndarray  # (k,) validation accuracy, 0–1
    grid_correlation: np.ndarray  # (k,) `PositionGrid.correlation` at each point (nan for the CNN)


@dataclass(frozen=True)
class PositionGrid:
    """The patch position embeddings' cosine similarity, as the position page shows it (ViT Fig. 7 centre)."""

    similarity: np.ndarray  # (N, N) float32 cosine similarity of the N = g·g patch embeddings (CLS left out)
    grid: tuple[int, int]  # (g, g) patch grid; row i of `similarity` reshaped to it is tile i of Fig. 7
    correlation: float  # how grid-like: Pearson r of cosine with minus the grid distance over all pairs, −1…1


@dataclass(frozen=True)
class ClsAttention:
    """Where the CLS token looks, per layer and head, on a few fixed validation images."""

    images: np.ndarray  # (m, S, S, 3) uint8 the images
    labels: np.ndarray  # (m,) int64 their true classes
    predicted: np.ndarray  # (m,) int64 the model's classes for them
    maps: np.ndarray  # (m, layers, heads, g, g) float32: softmax row of CLS over the patches (CLS's own share left out)


@dataclass(frozen=True)
class Mistake:
    """One wrongly classified validation image."""

    image: np.ndarray  # (S, S, 3) uint8
    label: int  # true class index
    predicted: int  # the model's class index
    confidence: float  # the model's probability for `predicted`, 0–1


@dataclass(frozen=True)
class RunView:
    """Everything the live page draws of a run at one moment; replaced, never changed, as the run goes on."""

    run_id: str  # the run's id ("" for a run outside the scheduler)
    config: RunConfig  # its settings
    state: str  # "waiting", "training", "paused", "done", "stopped" or "failed"
    step: int  # steps done
    queue_position: int  # runs that get a slice before this one (0: being trained now; -1: not in the rotation)
    seconds: float  # time spent training and evaluating so far
    steps_per_s: float  # steps / seconds (0 before the first step)
    parameters: int  # model size
    curves: Curves  # loss and accuracy against step
    grid: PositionGrid | None  # latest position-embedding similarity (None for the CNN)
    attention: ClsAttention | None  # latest CLS attention (None for the CNN and the patch MLP)
    confusion: np.ndarray  # (classes, classes) int64 validation counts: row = true class, column = predicted
    mistakes: tuple[Mistake, ...]  # the worst validation mistakes (highest confidence), at most MISTAKES
    error: str = ""  # why the run failed (state "failed"), one sentence
    version: int = 0  # increases with every new evaluation: skip redrawing an unchanged view

    @property
    def val_accuracy(self) -> float:
        """Latest validation accuracy, 0–1."""
        return float(self.curves.val_accuracy[-1])

    @property
    def pos_grid_correlation(self) -> float:
        """Latest grid-likeness of E_pos (nan for the CNN)."""
        return float(self.curves.grid_correlation[-1])


@dataclass(frozen=True)
class Evaluation:
    """What one pass over the validation set found (internal; becomes part of a RunView)."""

    loss: float  # mean cross-entropy
    accuracy: float  # 0–1
    confusion: np.ndarray  # (classes, classes) int64
    mistakes: tuple[Mistake, ...]  # worst ones first
    predicted: np.ndarray = field(repr=False)  # (VAL_SIZE,) int64


class Trainer:
    """A run's model, optimiser and history; not thread-safe (the scheduler gives it to one worker at a time)."""

    def __init__(self, config: RunConfig, device: str | torch.device | None = None, threads: int | None = 1):
        self.config = config.checked()
        self.device = pick_device(device)
        self.threads = threads  # torch threads while this trainer works, in the calling thread only (None: as is)
        self.model = build_model(config).to(self.device).train()
        decay, no_decay = trained_parameters(self.model, config)
        self.optimizer = AdamW([(decay, config.weight_decay), (no_decay, 0.0)], config.lr)
        self.val = validation_set(config.task, config.seed, config.image_size)
        self.step, self.seconds, self.version = 0, 0.0, 0
        self.points: list[tuple[float, ...]] = []  # (step, train loss, train acc, val loss, val acc, grid r)
        self.window = [0.0, 0.0, 0]  # training loss sum, correct count, images since the last point
        self.latest: tuple = ()  # (Evaluation, PositionGrid | None, ClsAttention | None) of the last point
        with torch_threads(threads):
            self.evaluate()

    @property
    def done(self) -> bool:
        return self.step >= self.config.steps

    def advance(self, deadline: float = float("inf"), steps: int | None = None,
                going: Callable[[], bool] = lambda: True) -> int:
        """Train until `steps` more were done, the budget is reached, perf_counter() passes `deadline` or `going()`
        turns false (checked before every step; at least one step is done); evaluates at the fixed evaluation
        steps. Returns the steps done."""
        done, limit = 0, self.config.steps if steps is None else min(self.config.steps, self.step + steps)
        with torch_threads(self.threads):
            while self.step < limit and (done == 0 or (time.perf_counter() < deadline and going())):
                start = time.perf_counter()
                self.train_step()
                self.step += 1
                done += 1
                if is_eval_step(self.step, self.config.steps):
                    self.evaluate()
                self.seconds += time.perf_counter() - start
        return done

    def train_step(self) -> None:
        """One AdamW step on a fresh batch from train_seed(seed, step)."""
        cfg = self.config
        images, labels = TASKS[cfg.task].make(cfg.batch, train_seed(cfg.seed, self.step), cfg.image_size, self.device)
        logits = self.model(images, output_attentions=False).logits
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.window[0] += float(loss.detach()) * len(labels)
        self.window[1] += int((logits.argmax(1) == labels).sum())
        self.window[2] += len(labels)

    def evaluate(self) -> None:
        """Evaluate on the validation set and append a point to the curves."""
        evaluation = evaluate(self.model, self.val, self.device)
        grid = position_grid(self.model)
        attention = cls_attention(self.model, self.val, evaluation.predicted, self.device)
        loss_sum, correct, seen = self.window
        self.points.append((self.step, loss_sum / seen if seen else np.nan, correct / seen if seen else np.nan,
                            evaluation.loss, evaluation.accuracy, grid.correlation if grid else np.nan))
        self.window = [0.0, 0.0, 0]
        self.latest = (evaluation, grid, attention)
        self.version += 1

    def view(self, run_id: str = "", state: str = "training", queue_position: int = -1) -> RunView:
        """The run now, as a frozen RunView."""
        evaluation, grid, attention = self.latest
        columns = [np.asarray(c) for c in zip(*self.points)]
        curves = Curves(columns[0].astype(np.int64), *columns[1:])
        return RunView(run_id, self.config, state, self.step, queue_position, self.seconds,
                       self.step / self.seconds if self.seconds else 0.0, parameter_count(self.model), curves, grid,
                       attention, evaluation.confusion, evaluation.mistakes, version=self.version)


@torch.no_grad()
def evaluate(model: torch.nn.Module, val: ValidationSet, device: torch.device) -> Evaluation:
    """Loss, accuracy, confusion matrix and worst mistakes of `model` on `val` (eval mode for the pass: the CNN's
    batch norm uses its running statistics)."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(chunk.to(device).float() / 255, output_attentions=False).logits.float().cpu()
                        for chunk in val.images.split(EVAL_CHUNK)])
    model.train(was_training)
    classes = logits.shape[1]
    losses = F.cross_entropy(logits, val.labels, reduction="none")
    probs = logits.softmax(1)
    predicted = logits.argmax(1)
    confusion = torch.bincount(val.labels * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    wrong = (predicted != val.labels).nonzero()[:, 0]
    worst = wrong[probs[wrong, predicted[wrong]].argsort(descending=True, stable=True)[:MISTAKES]]
    pictures = to_uint8(val.images[worst].float() / 255)
    mistakes = tuple(Mistake(pictures[k], int(val.labels[i]), int(predicted[i]), float(probs[i, predicted[i]]))
                     for k, i in enumerate(worst.tolist()))
    return Evaluation(float(losses.mean()), float((predicted == val.labels).float().mean()), confusion.numpy(),
                      mistakes, predicted.numpy())


def position_grid(model: torch.nn.Module) -> PositionGrid | None:
    """The patch position embeddings' similarity and grid-likeness (None for a model without E_pos)."""
    pos = getattr(model, "pos_embed", None)
    if pos is None:
        return None
    patches = pos[0, -model.config.grid ** 2:].detach()  # the ViT's CLS entry comes first and is left out
    g = model.config.grid
    similarity = cosine_similarity(patches)
    structure = similarity_structure(similarity, list(range(g * g)), (g, g))
    return PositionGrid(similarity, (g, g), 0.0 - structure.distance_correlation)  # not -0.0 when r is 0


@torch.no_grad()
def cls_attention(model: torch.nn.Module, val: ValidationSet, predicted: np.ndarray,
                  device: torch.device) -> ClsAttention | None:
    """CLS attention rows (every layer and head) on the first ATTENTION_IMAGES validation images (None unless ViT)."""
    if not hasattr(model, "blocks"):
        return None
    m, g = ATTENTION_IMAGES, model.config.grid
    was_training = model.training
    model.eval()
    attentions = model(val.images[:m].to(device).float() / 255, output_attentions=True).attentions
    model.train(was_training)
    rows = torch.stack([a[:, :, 0, 1:] for a in attentions], dim=1).float().cpu()  # (m, layers, heads, g·g)
    maps = rearrange(rows, "m layers heads (gh gw) -> m layers heads gh gw", gh=g)
    return ClsAttention(to_uint8(val.images[:m].float() / 255), val.labels[:m].numpy(), predicted[:m], maps.numpy())


def train(config: RunConfig, device: str | torch.device | None = None, threads: int | None = 1) -> RunView:
    """Train one run to its step budget in the calling thread and return its final view (CLI, benches, tests)."""
    trainer = Trainer(config, device, threads)
    trainer.advance()
    return trainer.view(state="done")
