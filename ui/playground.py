"""The training playground's session side: which runs belong to this session (only their ids are kept in it; the
runs live in `vitviz.playground`'s one scheduler), Start / Pause / Step / Reset, the end of a session's runs when the
session ends, and a trained run opened as a model of the sidebar ("your model, everywhere")."""
from __future__ import annotations

import threading
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import streamlit as st
import torch

from vitviz import playground as pg
from vitviz.i18n import N_, _

_SHOWN = "pg_run"  # session key: id of the run the page shows (a str; the run itself stays in the scheduler)
_OWNER = "pg_owner"  # session key: the session's `_Owner` (its finalizer ends the session's runs)
_OPENED = "pg_opened"  # session key: names of the runs this session opened on the other pages, newest first
EXAMPLES = 8  # task images offered as the sidebar's sample photos of an opened run
OPENED_PER_SESSION = 4  # opened runs a session offers in the sidebar, newest first
OPENED_LIMIT = 32  # opened snapshots kept in the process (each a tiny ViT, ~0.3 MB): the oldest are forgotten
STATES = {"waiting": N_("waiting for its turn"), "training": N_("training"), "paused": N_("paused"),
          "done": N_("finished"), "stopped": N_("stopped"), "failed": N_("failed")}


class _Owner:
    """Lives in one session's state; when Streamlit drops the session (its tab closed for longer than
    server.disconnectedSessionTTL) the state is collected and the finalizer stops the session's runs."""

    def __init__(self, session_id: str):
        # the session id, made unique: AppTest gives every session the same id, and a session's old state must not
        # end the runs of its successor
        self.session, self.id = session_id, f"{session_id}/{uuid.uuid4().hex[:8]}"
        weakref.finalize(self, pg.scheduler().end_session, self.id)


def _session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "script"


def owner() -> str:
    """This session's owner id for the scheduler (its Streamlit session id, made unique)."""
    if _OWNER not in st.session_state:
        st.session_state[_OWNER] = made = _Owner(_session_id())
        with _OWNERS_LOCK:
            _OWNERS[made.id] = made.session
    return st.session_state[_OWNER].id


_OWNERS: dict[str, str] = {}  # owner id -> Streamlit session id, of the sessions that opened the page (for `reap`)
_OWNERS_LOCK = threading.Lock()


def reap() -> None:
    """End the runs of sessions Streamlit no longer holds. The finalizer does it when the session's state is
    collected; this catches a session whose state is still referenced somewhere (called at every Start)."""
    from streamlit.runtime import Runtime

    # Streamlit has no public "is this session still held"; AppTest's runtime is a mock without a session manager
    manager = getattr(Runtime.instance(), "__dict__", {}).get("_session_mgr") if Runtime.exists() else None
    if manager is None:
        return
    with _OWNERS_LOCK:
        gone = [o for o, session in _OWNERS.items() if manager.get_session_info(session) is None]
        for o in gone:
            del _OWNERS[o]
    for owner_id in gone:
        pg.scheduler().end_session(owner_id)


def shown() -> pg.Run | None:
    """The run the page shows (None before the first Start, or once the scheduler dropped it)."""
    run_id = st.session_state.get(_SHOWN)
    run = pg.scheduler().get(run_id) if run_id else None
    return run if run is not None and run.owner == owner() else None


def show(run_id: str) -> None:
    """Show one of this session's kept runs (the runs table's choice)."""
    st.session_state[_SHOWN] = run_id


def kept() -> list[pg.Run]:
    """This session's kept runs, newest first (the scheduler keeps the last few)."""
    return pg.scheduler().runs(owner())


def start(config: pg.RunConfig, paused: bool = False) -> str | None:
    """Start a new run with `config` (created paused: for Step) and show it; returns a sentence saying why it
    cannot start, else None."""
    reap()
    try:
        run = pg.scheduler().start(config, owner=owner(), paused=paused)
    except pg.PlaygroundFull:
        return _("Too many runs are training on this server right now; try again in a minute.")
    except ValueError as err:
        return _("These settings cannot train: {why}").format(why=err)
    st.session_state[_SHOWN] = run.id
    return None


def same_settings(run: pg.Run | None, config: pg.RunConfig) -> bool:
    """Whether the shown run was started with the settings the controls show now (then Start resumes it)."""
    return run is not None and run.config == config


def active(run: pg.Run | None) -> bool:
    """Whether a run is in the rotation (its live views must keep updating)."""
    return run is not None and run.state in ("waiting", "training")


def run_number(run_id: str) -> int:
    """The number students read for a run ("run 12"): the scheduler's ids are "r" + a number unique in the process."""
    return int(run_id.lstrip("r") or 0)


# --- "your model, everywhere": a trained run as a model of the sidebar ---------------------------------------------
@dataclass(frozen=True)
class Opened:
    """A run's frozen snapshot opened as a model of the sidebar, with the task images it offers as sample photos."""

    name: str  # the sidebar's option for it, e.g. "playground-r12@600" (unique in the process)
    model: torch.nn.Module  # the snapshot: a frozen copy of the run's ViT, never trained on (run.snapshot())
    run: int  # the run's number, as students read it
    step: int  # the step it was taken at
    task: str  # key of vitviz.playground.TASKS
    examples: pg.Examples  # EXAMPLES validation-style images of the task (the sidebar's sample photos)

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    @property
    def patch_size(self) -> int:
        return self.model.config.patch_size

    def sample_names(self) -> list[str]:
        """The sample photos' option names: "1 · top left", … (class names translated)."""
        return [f"{i + 1} · {_(self.examples.classes[label])}" for i, label in enumerate(self.examples.labels)]

    def describe(self) -> str:
        """How every page names it: trained here, not a hub checkpoint or a random preset."""
        return _("Trained in the playground: run {run}, step {step} — “{task}”, P = {p}, {size} × {size} px "
                 "images. Not a hub checkpoint, not random weights: the model you trained.").format(
            run=self.run, step=self.step, task=_(pg.TASKS[self.task].title), p=self.patch_size, size=self.image_size)


_REGISTRY: OrderedDict[str, Opened] = OrderedDict()  # name -> Opened, oldest first, at most OPENED_LIMIT
_REGISTRY_LOCK = threading.Lock()
EXAMPLES_SEED = 12345  # the sample photos: the same task images for every opened run of a task


def open_on_pages(run: pg.Run) -> str:
    """Freeze the run's model at its current step as a model of the sidebar; returns its name (also selected)."""
    model = run.snapshot()
    step = int(model.source.rsplit("@", 1)[1])
    name = f"playground-{run.id}@{step}"
    opened = Opened(name, model, run_number(run.id), step, run.config.task,
                    pg.TASKS[run.config.task].examples(EXAMPLES, EXAMPLES_SEED, run.config.image_size))
    with _REGISTRY_LOCK:
        _REGISTRY[name] = opened
        _REGISTRY.move_to_end(name)
        while len(_REGISTRY) > OPENED_LIMIT:
            _REGISTRY.popitem(last=False)
    names = [n for n in st.session_state.get(_OPENED, []) if n != name]
    st.session_state[_OPENED] = [name, *names][:OPENED_PER_SESSION]
    st.session_state["model"] = name
    return name


def opened_names() -> list[str]:
    """The sidebar's extra model options: this session's opened runs still in the registry, newest first."""
    with _REGISTRY_LOCK:
        return [n for n in st.session_state.get(_OPENED, []) if n in _REGISTRY]


def trained_here(name: str | None) -> Opened | None:
    """The opened run of that sidebar name, or None for a preset (or a run the registry has forgotten)."""
    with _REGISTRY_LOCK:
        return _REGISTRY.get(name) if name else None
