"""Train your own ViT: the playground (issue 34). A student picks a made-up task and a tiny model, presses Start and
watches it learn, live; a trained ViT opens on the other pages as a model of the sidebar.

The page reads its controls into a `RunConfig`, acts on this session's run (`ui.playground`: the training runs in
`vitviz.playground`'s one scheduler, never in this script), and draws the run's frozen `RunView` (`run.view()`, the
one call) in two fragments: status and curves twice a second, the slower pictures every two seconds, both only
while the run is in the rotation."""
from __future__ import annotations

import streamlit as st

from ui import playground
from ui.context import context
from ui.tabs import playground as tabs
from vitviz import playground as pg
from vitviz.i18n import _

FAST, SLOW = 0.5, 2.0  # seconds between redraws of the status and curves / of the pictures while a run trains


def header() -> None:
    """Title and introduction (the presenter view of a lesson step shows the step's text instead)."""
    with st.container(key="vv-intro"):
        st.title(_("Train your own ViT"))
        st.markdown(_(
            "Pick a task, a model and its settings, press **Start**, and watch a small vision transformer learn on "
            "made-up images, live: its loss and accuracy, its position embeddings becoming (or not becoming) a grid, "
            "where its heads look. Change one thing, train again and compare two runs side by side. A trained ViT "
            "opens on the patching, projection, position and attention pages as a model of the sidebar."))


def controls(base: pg.RunConfig) -> pg.RunConfig:
    """The settings panel; returns the RunConfig its widgets describe."""
    task = tabs.task_control(base)
    tabs.examples(task, st.session_state.get("pgsize", base.image_size))
    chosen = tabs.model_controls(base)
    chosen.update(tabs.more_controls(base))
    return pg.RunConfig(task=task, **chosen)


def buttons(run: pg.Run | None, config: pg.RunConfig) -> None:
    """Start (a new run, or the shown one again with the same settings), Pause, Step and Reset, in one row."""
    same = playground.same_settings(run, config)
    with st.container(horizontal=True, key="pg-buttons"):
        start = st.button(_("Start"), type="primary", key="pg-start", disabled=playground.active(run) and same)
        pause = st.button(_("Pause"), key="pg-pause", disabled=not playground.active(run))
        step = st.button(_("Step"), key="pg-step", help=_("Train one step, then pause."),
                         disabled=playground.active(run))
        reset = st.button(_("Reset"), key="pg-reset", disabled=run is None,
                          help=_("Back to step 0 with the same seed: the same curve again."))
    if problem := st.session_state.pop("pg-problem", None):  # said by the run that acted, before its rerun
        st.error(problem)
    problem = None
    if start and same and run.state == "paused":
        run.resume()
    elif start:
        problem = playground.start(config)
    elif pause:
        run.pause()
    elif step and not same:  # a new run with these settings, created paused, then its first step
        if (problem := playground.start(config, paused=True)) is None:
            playground.shown().step(1)
    elif step:
        run.step(1)
    elif reset:
        run.reset()
    if start or pause or step or reset:  # the buttons, the timers and the runs table follow the new state
        st.session_state["pg-problem"] = problem
        st.rerun()


def fast(ticking: bool) -> None:
    """Status and curves of the shown run; ends its own timer (a full rerun) once the run leaves the rotation."""
    run = playground.shown()
    view = run.view() if run is not None else None
    tabs.status(run, view, pg.scheduler().active())
    if view is not None:
        tabs.curves(view, "pg-live")
    if ticking and not playground.active(run):
        st.rerun(scope="app")


def slow() -> None:
    """The pictures of the shown run: position-embedding grid, CLS attention, confusion matrix, worst mistakes."""
    run = playground.shown()
    view = run.view() if run is not None else None
    if view is None:
        return
    st.subheader(_("Position embeddings"))
    tabs.position_grid(view, "pg-live")
    st.subheader(_("Where the CLS token looks (last layer, each head)"))
    tabs.attention(view)
    st.subheader(_("Confusion matrix"))
    tabs.confusion(view)
    st.subheader(_("Worst mistakes"))
    tabs.mistakes(view)


def kept_runs(runs: list[pg.Run]) -> None:
    """This session's runs: a table, two of them side by side, and opening a ViT on the other pages."""
    st.subheader(_("Your runs"))
    tabs.runs_table(runs)
    if len(runs) >= 2:
        labels = {run.id: tabs.run_label(run) for run in runs}
        left, right = st.columns(2)
        for col, default, key in ((left, 1, "pgcmp-a"), (right, 0, "pgcmp-b")):
            with col:
                chosen = st.selectbox(_("Compare"), list(labels), index=default, format_func=labels.get, key=key)
                if (view := next(r for r in runs if r.id == chosen).view()) is not None:
                    tabs.curves(view, key)
                    tabs.position_grid(view, key)
    vits = [run for run in runs if run.config.model == "vit" and run.view() is not None and run.view().step > 0]
    if vits:
        tabs.open_on_pages(vits)


context()  # a deep link's first run goes through app.py (its sidebar, and a trained run opened from here)
header()
run = playground.shown()
settings, views = st.columns([1, 2], gap="large")
with settings:
    config = controls(run.config if run is not None else pg.RunConfig(steps=300))
    buttons(run, config)
run = playground.shown()
ticking = playground.active(run)
with views:
    st.fragment(fast, run_every=FAST if ticking else None)(ticking)
    st.fragment(slow, run_every=SLOW if ticking else None)()
if kept := playground.kept():
    kept_runs(kept)
