"""Many students' training runs on one server: one process-wide scheduler whose few worker threads (at most the
CPU cores, at low OS priority so that page requests come first) take the active runs round-robin, a short time
slice each, so every started run moves within seconds however many there are; a run stops by itself at its step
budget, or when its owner stops it or its session ends. `Run` is the thread-safe handle a page keeps.
"""
from __future__ import annotations

import atexit
import copy
import itertools
import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import replace

import torch
from PIL import Image

from ..models.common import pick_device
from ..preprocess import Preprocessing
from .models import RunConfig
from .training import RunView, Trainer

SLICE_SECONDS = 0.2  # a worker's turn on one run before it moves to the next: 30 runs make a 3 s round per worker
KEEP_PER_OWNER = 4  # runs kept per session for side-by-side comparison (older ones are stopped and dropped)
MAX_ACTIVE = 60  # runs training or waiting at once in one process; start() refuses more (PlaygroundFull)
MAX_KEPT = 4 * MAX_ACTIVE  # runs kept in one process (for sessions that never said goodbye): oldest idle go first
WORKER_NICE = 10  # OS priority added to worker threads (Linux): the app's page threads run first


class PlaygroundFull(RuntimeError):
    """More runs are training in this process than MAX_ACTIVE; try again when one finishes."""


def default_workers() -> int:
    """Worker threads: VITVIZ_PLAYGROUND_WORKERS if set, else 1 on a GPU (its work is serial anyway), else one per
    core: the workers run at nice +WORKER_NICE, so the pages' threads still come first."""
    if os.environ.get("VITVIZ_PLAYGROUND_WORKERS"):
        return max(1, int(os.environ["VITVIZ_PLAYGROUND_WORKERS"]))
    if pick_device().type != "cpu":
        return 1
    return os.cpu_count() or 1


def snapshot_preprocessing(size: int) -> Preprocessing:
    """What a snapshot's pages do to a picture: resize to the run's own side (a task image passes unchanged) and
    rescale to [0, 1], exactly the task's images; no normalisation (training saw none)."""
    return Preprocessing(size=(size, size), resample=Image.Resampling.BILINEAR, mean=None, std=None)


class Run:
    """One training run: a thread-safe handle (start through `Scheduler.start`). Control: pause, resume, step,
    reset, stop; read: view, snapshot. Every method returns at once; the training happens in the scheduler."""

    def __init__(self, run_id: str, config: RunConfig, owner: str, scheduler: "Scheduler"):
        self.id, self.config, self.owner = run_id, config.checked(), owner
        self._scheduler = scheduler
        self._lock = threading.Lock()  # guards state, pending steps and the published view
        self._train_lock = threading.Lock()  # held while a worker trains, a snapshot copies or a reset rebuilds
        self._trainer: Trainer | None = None
        self._state, self._pending, self._error = "paused", 0, ""
        self._view: RunView | None = None
        self._snapshot: tuple[int, torch.nn.Module] | None = None

    # --- control (any thread) ---------------------------------------------------------------------------------------
    def resume(self) -> None:
        """Start or continue training to the step budget (no effect once done or stopped)."""
        with self._lock:
            if self._state != "paused":
                return
            self._state, self._pending = "waiting", 0
        self._scheduler._enqueue(self)

    def pause(self) -> None:
        """Stop after the current step; resume() continues from there."""
        with self._lock:
            if self._state in ("waiting", "training"):
                self._state = "paused"
        self._scheduler._dequeue(self)

    def step(self, n: int = 1) -> None:
        """While paused: train `n` more steps, then pause again."""
        with self._lock:
            if self._state != "paused" or n < 1:
                return
            self._state, self._pending = "waiting", n
        self._scheduler._enqueue(self)

    def stop(self) -> None:
        """Stop for good (cancel): the view and snapshot stay readable."""
        with self._lock:
            if self._state not in ("done", "failed"):
                self._state = "stopped"
        self._scheduler._dequeue(self)

    def reset(self) -> None:
        """Back to step 0 with fresh weights from the same seed, paused (resume() starts it again)."""
        with self._lock:
            if self._state == "stopped":
                return
            self._state, self._pending = "paused", 0
        with self._train_lock:
            self._trainer, self._snapshot = None, None
            with self._lock:
                self._view = None

    # --- reading (any thread) -----------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    def view(self) -> RunView | None:
        """The latest frozen view with the current state and queue position (None before the first evaluation)."""
        with self._lock:
            view, state, error = self._view, self._state, self._error
        if view is None:
            return None
        return replace(view, state=state, error=error, queue_position=self._scheduler.queue_position(self))

    def snapshot(self) -> torch.nn.Module:
        """A frozen copy of the ViT at its current step, for the other pages: eval mode, no gradients, `source`
        "playground:<run id>@<step>" (so `vitviz.is_trained` is true and caches keyed on the source keep apart
        each step), preprocessing that reproduces the task's images. The same object while the step is unchanged;
        training on never changes it. ValueError for the CNN and patch MLP (the pages show ViTs), or before the
        run has a model."""
        if self.config.model != "vit":
            raise ValueError("only ViT runs can be opened on the other pages")
        with self._train_lock:
            trainer = self._trainer
            if trainer is None:
                raise ValueError("the run has no model yet")
            if self._snapshot is None or self._snapshot[0] != trainer.step:
                model = copy.deepcopy(trainer.model).eval().requires_grad_(False)
                model.source = f"playground:{self.id}@{trainer.step}"
                model.preprocessing = snapshot_preprocessing(self.config.image_size)
                self._snapshot = (trainer.step, model)
            return self._snapshot[1]

    # --- the worker's side ----------------------------------------------------------------------------------------------
    def _work(self, deadline: float) -> bool:
        """Train one slice; returns whether the run wants another turn."""
        with self._lock:
            if self._state != "waiting" and self._state != "training":
                return False
            self._state = "training"
            pending = self._pending
        with self._train_lock:  # the view is published under it too: a reset() waiting for it wins afterwards
            with self._lock:
                if self._state != "training":  # paused, stopped or reset since this turn began
                    return self._state == "waiting"
            try:
                if self._trainer is None:
                    self._trainer = Trainer(self.config, self._scheduler.device)
                    with self._lock:  # the step-0 evaluation, shown while the first slice trains
                        self._view = self._trainer.view(self.id)
                done = self._trainer.advance(deadline, steps=pending or None, going=lambda: self._state == "training")
                view = self._trainer.view(self.id)
            except Exception as err:  # a run's failure must not take the worker (and every other run) with it
                with self._lock:
                    self._state, self._error = "failed", f"training failed: {type(err).__name__}: {err}"
                return False
            with self._lock:
                self._view = view
                if view.step >= self.config.steps and self._state == "training":
                    self._state = "done"
                elif pending and self._state == "training":
                    self._pending = max(0, pending - done)
                    if not self._pending:
                        self._state = "paused"
                return self._state in ("waiting", "training")  # "waiting": resumed while this slice ran

    def _release(self) -> None:
        """Free the trainer (optimiser and model); the last view stays. Called when the run is dropped."""
        with self._train_lock:
            self._trainer = None


class Scheduler:
    """The process's training scheduler: a rotation of active runs served by `workers` threads, slice by slice.
    Thread-safe; worker threads start with the first run."""

    def __init__(self, workers: int | None = None, slice_seconds: float = SLICE_SECONDS,
                 device: str | torch.device | None = None, nice: int = WORKER_NICE):
        self.workers = workers or default_workers()
        self.nice = nice  # added to the workers' OS priority (0: as the pages; tests on a busy machine)
        self.slice_seconds = slice_seconds
        self.device = pick_device(device)
        self._cond = threading.Condition()
        self._rotation: deque[Run] = deque()  # runs waiting for a turn, next first
        self._busy: set[Run] = set()  # runs in a worker now
        self._runs: OrderedDict[str, Run] = OrderedDict()  # every kept run, oldest first
        self._ids = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._closing = False  # set by shutdown(): workers end after their slice

    def start(self, config: RunConfig, owner: str, paused: bool = False) -> Run:
        """A new run of `config` for session `owner`, training at once unless `paused`. The owner's oldest runs
        beyond KEEP_PER_OWNER are stopped and dropped, and the process's oldest idle runs beyond MAX_KEPT. ValueError for settings that cannot train; PlaygroundFull
        when MAX_ACTIVE runs are active."""
        config.checked()
        with self._cond:
            if not paused and self.active() >= MAX_ACTIVE:
                raise PlaygroundFull(f"{MAX_ACTIVE} runs are already training")
            run = Run(f"r{next(self._ids)}", config, owner, self)
            self._runs[run.id] = run
            dropped = self._runs_of(owner)[KEEP_PER_OWNER:]
            idle = [r for r in self._runs.values() if r not in self._rotation and r not in self._busy]
            dropped += [r for r in idle if r not in dropped][:max(0, len(self._runs) - len(dropped) - MAX_KEPT)]
            for old in dropped:
                del self._runs[old.id]
        for old in dropped:
            old.stop()
            old._release()
        if not paused:
            run.resume()
        return run

    def get(self, run_id: str) -> Run | None:
        """The kept run with this id, or None."""
        with self._cond:
            return self._runs.get(run_id)

    def runs(self, owner: str) -> list[Run]:
        """The owner's kept runs, newest first (at most KEEP_PER_OWNER)."""
        with self._cond:
            return self._runs_of(owner)

    def end_session(self, owner: str) -> None:
        """Stop and drop every run of `owner` (its session ended)."""
        with self._cond:
            runs = self._runs_of(owner)
            for run in runs:
                del self._runs[run.id]
        for run in runs:
            run.stop()
            run._release()

    def active(self) -> int:
        """Runs training or waiting for a turn."""
        with self._cond:
            return len(self._rotation) + len(self._busy)

    def queue_position(self, run: Run) -> int:
        """Runs served before `run`'s next turn: 0 while a worker trains it, k when k runs are ahead of it in the
        rotation (served `workers` at a time), -1 when it is not in the rotation."""
        with self._cond:
            if run in self._busy:
                return 0
            try:
                return self._rotation.index(run) + 1
            except ValueError:
                return -1

    def _runs_of(self, owner: str) -> list[Run]:
        return [r for r in reversed(self._runs.values()) if r.owner == owner]

    def _dequeue(self, run: Run) -> None:
        """Take a paused or stopped run out of the rotation at once, so that the queue positions stay honest."""
        with self._cond:
            if run in self._rotation:
                self._rotation.remove(run)

    def _enqueue(self, run: Run) -> None:
        with self._cond:
            if run not in self._rotation and run not in self._busy:
                self._rotation.append(run)
            self._start_workers()
            self._cond.notify()

    def shutdown(self) -> None:
        """Let the workers finish their slices and end (at interpreter exit: a daemon thread killed inside a torch op
        aborts the process). Runs left in the rotation stay there; no new worker starts."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _start_workers(self) -> None:
        if not self._threads:
            atexit.register(self.shutdown)
        while len(self._threads) < self.workers and not self._closing:
            thread = threading.Thread(target=self._serve, name=f"playground-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self) -> None:
        """A worker: take the next run, train it for one slice, put it back at the end if it wants more."""
        lower_priority(self.nice)
        while True:
            with self._cond:
                while not self._rotation and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                run = self._rotation.popleft()
                self._busy.add(run)
            again = run._work(time.perf_counter() + self.slice_seconds)
            with self._cond:
                self._busy.discard(run)
                if again and run.id in self._runs:
                    self._rotation.append(run)
                    self._cond.notify()


def lower_priority(nice: int) -> None:
    """Lower the calling thread's OS priority by `nice` (Linux threads have their own nice value; elsewhere nothing
    happens)."""
    if not nice:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)
    except (AttributeError, OSError):
        pass


_SCHEDULER: Scheduler | None = None
_SCHEDULER_LOCK = threading.Lock()


def scheduler() -> Scheduler:
    """The process's one scheduler (created on first use)."""
    global _SCHEDULER
    with _SCHEDULER_LOCK:
        if _SCHEDULER is None:
            _SCHEDULER = Scheduler()
        return _SCHEDULER
