"""The training playground's drawing: the settings a run starts from (read from the widgets into a `RunConfig`), the
task's examples, the run's status and its live views (curves, position-embedding grid, CLS attention, confusion
matrix, worst mistakes), the kept runs and two of them side by side. Every figure is small on purpose: the live views
are redrawn twice a second, and a student's page may receive at most ~50 kB/s of them."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from vitviz import playground as pg
from vitviz.describe import playground as describe
from vitviz.embeddings import similarity_tiles
from vitviz.i18n import N_, _, language, ngettext
from vitviz.viz.attention import colourise
from vitviz.viz.embeddings import INK, enlarge, ink_axes
from vitviz.viz.encode import png

from ..common import chart, markdown_table, picture, shared_figure
from ..playground import STATES, open_on_pages as open_snapshot, run_number, trained_here
from ..stages import STAGES

MODELS = {"vit": N_("ViT"), "cnn": N_("CNN (baseline)"), "mlp": N_("No attention (patch MLP)")}
POSITIONS = {"learned": N_("learned"), "sincos": N_("fixed 2-D sin-cos"), "none": N_("none")}
DIMS = (16, 32, 64, 96, 128)
RATES = (3e-4, 1e-3, 3e-3, 1e-2)
BUDGETS = (50, 100, 200, 300, 600, 1000, 2000)
# Train solid blue with circles, validation dashed orange with squares: told apart without colour, both ≥ 3:1 on white.
SERIES = {"train": ("#0a4fd6", "solid", "circle"), "val": ("#a14a00", "dash", "square")}
OPENS_ON = ("patching", "projection", "position", "attention")  # the pages a trained run opens on
CELL = 56  # display pixels of one image or map in the attention pictures
GAP = 4  # white pixels between them


def _choice(key: str, options: list, default) -> None:
    """Give a widget its starting value through Session State (a lesson step or the shown run may have set it) and
    keep it among the current options (the patch sizes follow the image size, the heads follow D)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default if default in options else options[0]


def task_control(config: pg.RunConfig) -> str:
    """The task radio (`pgtask`), its question and what it teaches; returns the task's key."""
    _choice("pgtask", list(pg.TASKS), config.task)
    task = st.radio(_("Task"), list(pg.TASKS), format_func=lambda t: _(pg.TASKS[t].title), key="pgtask",
                    horizontal=True)
    st.caption(_("{question} {teaches}").format(question=_(pg.TASKS[task].question), teaches=_(pg.TASKS[task].teaches)))
    return task


@st.cache_resource(max_entries=16, show_spinner=False)
def _examples(task: str, size: int, n: int) -> pg.Examples:
    """A task's example images (the same seed for everyone: made once per task and size)."""
    return pg.TASKS[task].examples(n, seed=7, size=size)


def examples(task: str, size: int, n: int = 8) -> None:
    """A row of the task's images (the validation kind), each with its label as caption and as text alternative."""
    shown = _examples(task, size, n)
    labels = [_(shown.classes[label]) for label in shown.labels]
    st.caption(describe.examples(_(pg.TASKS[task].title), labels))
    with st.container(horizontal=True, gap="small", key="pg-examples"):
        for i, (label, data) in enumerate(zip(labels, small_pictures(("examples", task, size, n), tuple(shown.images)))):
            picture(data, alt=_("Example {n}: “{label}”").format(n=i + 1, label=label), caption=label, width=64)


def model_controls(config: pg.RunConfig) -> dict:
    """Model, image size, patch size and position embeddings (the settings the lesson compares)."""
    _choice("pgmodel", list(MODELS), config.model)
    model = st.radio(_("Model"), list(MODELS), format_func=lambda m: _(MODELS[m]), key="pgmodel", horizontal=True)
    _choice("pgsize", list(pg.IMAGE_SIZES), config.image_size)
    size = st.select_slider(_("Image side (px)"), list(pg.IMAGE_SIZES), key="pgsize")
    _choice("pgp", pg.patch_sizes(size), config.patch)
    patch = st.select_slider(_("Patch size P (px)"), pg.patch_sizes(size), key="pgp", disabled=model == "cnn",
                             help=_("The divisors of the image side: each cuts the image into whole patches."))
    _choice("pgpos", list(POSITIONS), config.pos)
    pos = st.radio(_("Position embeddings"), list(POSITIONS), format_func=lambda p: _(POSITIONS[p]), key="pgpos",
                   horizontal=True, disabled=model == "cnn")
    return dict(model=model, image_size=size, patch=patch, pos=pos)


def more_controls(config: pg.RunConfig) -> dict:
    """Width, depth, heads, MLP ratio, learning rate, step budget and seed."""
    _choice("pgsteps", list(BUDGETS), config.steps)
    steps = st.select_slider(_("Steps to train"), list(BUDGETS), key="pgsteps")
    with st.expander(_("More settings: D, depth, heads, learning rate, seed")):
        _choice("pgd", list(DIMS), config.dim)
        dim = st.select_slider(_("Token width D"), list(DIMS), key="pgd")
        heads_options = [h for h in (1, 2, 4, 8) if dim % h == 0]
        _choice("pgheads", heads_options, config.heads)
        heads = st.select_slider(_("Heads"), heads_options, key="pgheads")
        _choice("pgdepth", [1, 2, 3, 4], config.depth)
        depth = st.select_slider(_("Layers"), [1, 2, 3, 4], key="pgdepth")
        _choice("pgmlp", [1, 2, 3, 4], config.mlp_ratio)
        ratio = st.select_slider(_("MLP ratio"), [1, 2, 3, 4], key="pgmlp")
        _choice("pglr", list(RATES), config.lr)
        lr = st.select_slider(_("Learning rate"), list(RATES), key="pglr", format_func=lambda r: f"{r:g}")
        if not isinstance(st.session_state.get("pgseed"), int):
            st.session_state["pgseed"] = config.seed
        seed = st.number_input(_("Seed"), 0, 9999, key="pgseed", step=1,
                               help=_("The same settings and seed give the same curve on the same machine."))
    return dict(steps=steps, dim=dim, heads=heads, depth=depth, mlp_ratio=ratio, lr=lr, seed=int(seed))


def status(run: pg.Run | None, view: pg.RunView | None, active_runs: int) -> None:
    """One line: run number, state, step of the budget, speed and the honest place in the queue."""
    if run is None:
        st.info(_("Choose a task and a model, then press **Start**: the curves move within seconds."),
                icon=":material/play_circle:")
        return
    state = run.state
    step = view.step if view is not None else 0
    parts = [_("Run {n}: {state}, step {step} of {budget}").format(
        n=run_number(run.id), state=_(STATES[state]), step=step, budget=run.config.steps)]
    if view is not None and view.steps_per_s > 0 and state in ("training", "waiting"):
        parts.append(_("{rate:.1f} steps/s").format(rate=view.steps_per_s))
    if state in ("waiting", "training") and view is not None:
        share = ngettext("{n} run trains on this server", "{n} runs share this server", active_runs).format(
            n=active_runs)
        if view.queue_position == 0:
            parts.append(_("training now; {share}").format(share=share))
        elif view.queue_position > 0:
            parts.append(ngettext("{k} run trains before its next turn ({share})",
                                  "{k} runs train before its next turn ({share})", view.queue_position).format(
                k=view.queue_position, share=share))
    if state == "failed" and view is not None and view.error:
        st.error(_("The run failed: {error}").format(error=view.error))
    st.progress(min(1.0, step / max(1, run.config.steps)), text=" · ".join(parts))


def _line(fig: go.Figure, x, y, series: str, name: str, row: int | None = None) -> None:
    colour, dash, symbol = SERIES[series]
    fig.add_trace(go.Scatter(x=list(map(int, x)), y=[None if not np.isfinite(v) else round(float(v), 3) for v in y],
                             name=name, mode="lines+markers", line=dict(color=colour, dash=dash, width=2),
                             marker=dict(symbol=symbol, size=6, color=colour)))


def _small_figure(title: str, y_title: str, height: int = 260) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=dict(text=title, x=0, font=dict(color=INK, size=15)), height=height, dragmode=False,
                      margin=dict(l=50, r=10, t=40, b=80), legend=dict(orientation="h", y=-0.4, font=dict(color=INK)),
                      xaxis_title=_("step"), yaxis_title=y_title, hovermode="x")
    return ink_axes(fig)


def _key(view: pg.RunView) -> tuple[str, int, int]:
    """What identifies a view's drawings: run, evaluation and step (a reset run redraws the same seeded views)."""
    return view.run_id, view.version, view.step


# Shared figures and pictures, one build per evaluation of a run (never mutated): 30 students' live parts redraw
# twice a second, and building a figure costs ~15–60 ms of a shared core while a PNG is already encoded.
@st.cache_resource(max_entries=256, show_spinner=False)
def curve_figures(key: tuple[str, int, int], lang: str, _view: pg.RunView) -> tuple[go.Figure, go.Figure]:
    """The loss and accuracy charts of a view, titles in `lang` (the run's language)."""
    c = _view.curves
    loss = _small_figure(_("Loss"), _("cross-entropy"))
    _line(loss, c.steps, c.train_loss, "train", _("train"))
    _line(loss, c.steps, c.val_loss, "val", _("validation"))
    accuracy = _small_figure(_("Accuracy"), _("share right"))
    _line(accuracy, c.steps, c.train_accuracy, "train", _("train"))
    _line(accuracy, c.steps, c.val_accuracy, "val", _("validation"))
    accuracy.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return shared_figure(loss), shared_figure(accuracy)


def curves(view: pg.RunView, key: str) -> None:
    """Loss and accuracy (train and validation) against step: two small charts, one alt text for both."""
    c = view.curves
    alt = describe.curves(c.steps, c.train_accuracy, c.val_accuracy, c.val_loss)
    loss, accuracy = curve_figures(_key(view), language(), view)
    left, right = st.columns(2)
    chart(loss, alt=alt, where=left, key=f"{key}-loss")
    chart(accuracy, alt=alt, where=right, key=f"{key}-acc")
    st.caption(alt)


@st.cache_resource(max_entries=128, show_spinner=False)
def grid_figure(key: tuple[str, int, int], lang: str, _view: pg.RunView) -> go.Figure:
    """Grid-likeness against step, titles in `lang`."""
    c = _view.curves
    fig = _small_figure(_("Grid-likeness"), _("correlation"), height=240)
    _line(fig, c.steps, c.grid_correlation, "val", _("grid-likeness"))
    fig.update_yaxes(range=[-1, 1])
    return shared_figure(fig)


@st.cache_data(max_entries=128, show_spinner=False)
def grid_picture(key: tuple[str, int, int], _grid: pg.PositionGrid, width: int = 240) -> bytes:
    """ViT Fig. 7's tiles of the position-embedding cosine similarity: tile (r, c) = row r·g + c of S on the grid,
    magma from −1 (dark) to 1 (light), the gaps white; PNG at about `width` px."""
    tiles = similarity_tiles(_grid.similarity, _grid.grid)
    rgb = colourise((np.nan_to_num(tiles, nan=-1.0) + 1) / 2, vmax=1.0)
    rgb[np.isnan(tiles)] = 255
    scale = max(1, width // tiles.shape[1])
    return png(enlarge(rgb, (tiles.shape[1] * scale, tiles.shape[0] * scale)))


def position_grid(view: pg.RunView, key: str) -> None:
    """The position-embedding similarity grid and its grid-likeness against step."""
    c = view.curves
    pos = view.config.pos if view.config.model != "cnn" else "none"
    grid = view.grid.grid if view.grid is not None else (0, 0)
    alt = describe.grid_likeness(c.steps, c.grid_correlation, grid, pos)
    if view.grid is None or pos == "none":
        st.caption(alt)
        return
    left, right = st.columns([2, 3])
    picture(grid_picture(_key(view), view.grid), alt=alt, where=left, caption=_("E_pos similarity, {g} × {g} tiles").format(
        g=grid[0]))
    chart(grid_figure(_key(view), language(), view), alt=alt, where=right, key=f"{key}-grid")
    st.caption(_("Grid-likeness: the correlation between two positions' similarity and their closeness on the "
                 "grid (1: neighbours are the most alike)."))


@st.cache_data(max_entries=128, show_spinner=False)
def attention_rows(key: tuple[str, int, int], _att: pg.ClsAttention) -> list[bytes]:
    """One PNG per fixed validation image: the image, then each head's last-layer CLS map (magma, light = more
    attention), white between them."""
    rows = []
    for i in range(len(_att.labels)):
        cells = [np.asarray(enlarge(c, (CELL, CELL))) for c in [_att.images[i]] + [colourise(m) for m in _att.maps[i, -1]]]
        gap = np.full((CELL, GAP, 3), 255, np.uint8)
        rows.append(png(Image.fromarray(np.concatenate([part for c in cells for part in (c, gap)][:-1], axis=1))))
    return rows


def attention(view: pg.RunView) -> None:
    """CLS attention of each head of the last layer on the fixed validation images, each with its label and guess."""
    att = view.attention
    if att is None:
        st.caption(_("This model has no attention to show."))
        return
    classes = view.config.classes
    with st.container(horizontal=True, gap="medium", key="pg-attention"):
        for i, row in enumerate(attention_rows(_key(view), att)):
            maps = att.maps[i, -1]  # (heads, g, g), the last layer
            label, guess = _(classes[att.labels[i]]), _(classes[att.predicted[i]])
            picture(row, alt=describe.attention(maps, label), caption=_("“{label}”, predicted “{guess}”; heads 1–{h}").format(
                label=label, guess=guess, h=len(maps)))


def confusion(view: pg.RunView) -> None:
    """The confusion matrix as a table (counts; the diagonal in bold) and its most confused pair."""
    classes = [_(c) for c in view.config.classes]
    rows = [[f"**{classes[t]}**"] + [f"**{n}**" if t == p else str(n) for p, n in enumerate(row)]
            for t, row in enumerate(view.confusion.tolist())]
    st.markdown(markdown_table([_("true ↓ / predicted →")] + classes, rows))
    st.caption(describe.confusion(view.confusion, classes))


@st.cache_data(max_entries=128, show_spinner=False)
def small_pictures(key, _images: tuple) -> list[bytes]:
    """Small RGB images (S, S, 3) uint8 as 64 px PNGs, once per `key` (a view's mistakes, a task's examples)."""
    return [png(enlarge(image, (64, 64))) for image in _images]


def mistakes(view: pg.RunView) -> None:
    """The most confident wrong answers, each with its label and the model's guess."""
    classes = view.config.classes
    wrong = view.mistakes
    true = [_(classes[m.label]) for m in wrong]
    guess = [_(classes[m.predicted]) for m in wrong]
    st.caption(describe.mistakes(true, guess, [m.confidence for m in wrong]))
    with st.container(horizontal=True, gap="small", key="pg-mistakes"):
        for m, t, g, data in zip(wrong, true, guess, small_pictures(_key(view), tuple(m.image for m in wrong))):
            picture(data, alt=_("“{true}” taken for “{guess}”").format(true=t, guess=g),
                    caption=f"{t} → {g}", width=64)


def runs_table(runs: list[pg.Run]) -> None:
    """The session's kept runs with their settings and final validation accuracy."""
    header = [_("run"), _("task"), _("model"), "P", _("E_pos"), _("steps"), _("val. accuracy"), _("state")]
    rows = []
    for run in runs:
        view, c = run.view(), run.config
        accuracy = f"{100 * view.val_accuracy:.0f} %" if view is not None and np.isfinite(view.val_accuracy) else "–"
        rows.append([str(run_number(run.id)), _(pg.TASKS[c.task].title), _(MODELS[c.model]),
                     "–" if c.model == "cnn" else str(c.patch), "–" if c.model == "cnn" else _(POSITIONS[c.pos]),
                     f"{view.step if view else 0} / {c.steps}", accuracy, _(STATES[run.state])])
    st.markdown(markdown_table(header, rows))


def run_label(run: pg.Run) -> str:
    """A kept run as the comparison's choices name it: "run 3 · Where is it? · ViT, P = 8, none"."""
    c = run.config
    model = _(MODELS[c.model]) if c.model == "cnn" else f"{_(MODELS[c.model])}, P = {c.patch}, {_(POSITIONS[c.pos])}"
    return _("run {n} · {task} · {model}").format(n=run_number(run.id), task=_(pg.TASKS[c.task].title), model=model)


def open_on_pages(runs: list[pg.Run]) -> None:
    """Open a trained ViT on the other pages: its snapshot becomes a model of the sidebar (the task's images its
    sample photos), then links to the pages that show it."""
    st.subheader(_("Your model, everywhere"))
    labels = {run.id: run_label(run) for run in runs}
    chosen = st.selectbox(_("Trained ViT"), list(labels), format_func=labels.get, key="pgopen")
    run = next(r for r in runs if r.id == chosen)
    st.button(_("Open it on the other pages"), key="pg-open", on_click=_open, args=(run,),
              help=_("Its weights at the current step are frozen into a copy; training on does not change it."))
    if (name := st.session_state.get("model")) and (opened := trained_here(name)) is not None:
        st.success(opened.describe(), icon=":material/check_circle:")
        with st.container(horizontal=True, key="pg-links"):
            for stage in STAGES:
                if stage.key in OPENS_ON:
                    st.page_link(stage.file, label=_(stage.title), query_params={"model": name})


def _open(run: pg.Run) -> None:
    open_snapshot(run)
