"""The playground page in AppTest: a run started with a tiny step budget trains in the scheduler and its views appear
(with the numbers of the run itself), Pause / Step / Reset act on it, and a trained run opens on the patching and
position pages as a model of the sidebar, named as trained here, on the task's images at its own size."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ui import playground as session
from vitviz import playground as pg
from vitviz.describe import playground as describe

from .apptest import assert_clean, page_app

PAGE = "pages/playground.py"


def wait_for(run: pg.Run, states: tuple[str, ...], limit_s: float = 120) -> None:
    """Wait until the run is in one of `states` (a failure guard only, far above what it takes)."""
    deadline = time.monotonic() + limit_s
    while run.state not in states:
        assert time.monotonic() < deadline, (run.id, run.state)
        time.sleep(0.05)


def shown_run(at) -> pg.Run:
    run = pg.scheduler().get(at.session_state[session._SHOWN])
    assert run is not None
    return run


def start(at, steps: int, **settings):
    for key, value in {"pgsteps": steps, **settings}.items():
        at.session_state[key] = value
    at.button(key="pg-start").click().run()
    assert_clean(at)
    return shown_run(at)


@pytest.fixture
def at():
    at = page_app(PAGE)
    yield at
    pg.scheduler().end_session(at.session_state[session._OWNER].id) if session._OWNER in at.session_state else None


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_a_run_trains_and_its_views_show_its_numbers(at):
    assert [b.label for b in at.button] == ["Start", "Pause", "Step", "Reset"]
    run = start(at, 50, pgtask="where", pgp=8)
    assert run.config == pg.RunConfig(task="where", patch=8, steps=50)
    wait_for(run, ("done",))
    at.run()
    assert_clean(at)
    view = run.view()
    assert view.step == 50
    c = view.curves
    # the alt text of the curves quotes the run's own last evaluation (independently formatted here)
    expected = f"After 50 steps, validation accuracy {100 * c.val_accuracy[-1]:.0f} %"
    assert any(text.startswith(expected) for text in captions(at)), captions(at)
    assert describe.curves(c.steps, c.train_accuracy, c.val_accuracy, c.val_loss) in captions(at)
    confusion = view.confusion
    assert confusion.sum() == 512
    table = next(m.value for m in at.markdown if m.value.startswith("| true"))
    for t, name in enumerate(("top left", "top right", "bottom left", "bottom right")):
        cells = [str(n) for n in confusion[t]]
        cells[t] = f"**{cells[t]}**"
        assert f"| **{name}** | " + " | ".join(cells) + " |" in table
    runs = next(m.value for m in at.markdown if m.value.startswith("| run"))
    assert f"| {run.id[1:]} | Where is it? | ViT | 8 | learned | 50 / 50 |" in runs
    assert f"{100 * view.val_accuracy:.0f} %" in runs
    progress = at.get("progress")[0].proto.text
    assert progress.startswith(f"Run {run.id[1:]}: finished, step 50 of 50")


def wait_step(run: pg.Run, step: int) -> None:
    """Wait until a stepped run has trained to `step` and paused again (a failure guard only)."""
    deadline = time.monotonic() + 60
    while run.state != "paused" or run.view() is None or run.view().step < step:
        assert time.monotonic() < deadline, (run.state, run.view() and run.view().step)
        time.sleep(0.05)


def test_step_reset_start_and_pause(at):
    at.session_state["pgsteps"] = 2000
    at.button(key="pg-step").click().run()  # no run yet: Step makes one, trains one step and pauses
    assert_clean(at)
    run = shown_run(at)
    wait_step(run, 1)
    assert run.view().step == 1
    at.run()  # in a browser the live part's timer reruns the page when the step is done
    at.button(key="pg-reset").click().run()
    assert_clean(at)
    assert run.state == "paused" and run.view() is None  # back to step 0, nothing trained
    at.button(key="pg-step").click().run()
    wait_step(run, 1)
    assert run.view().step == 1 and shown_run(at).id == run.id  # the same settings: the same run
    at.run()
    at.button(key="pg-start").click().run()  # the same settings: Start resumes the shown run
    assert_clean(at)
    assert shown_run(at).id == run.id and run.state in ("waiting", "training")
    assert at.button(key="pg-start").disabled and not at.button(key="pg-pause").disabled
    at.button(key="pg-pause").click().run()
    assert_clean(at)
    assert run.state == "paused" and not at.button(key="pg-start").disabled and at.button(key="pg-pause").disabled
    run.stop()


def test_a_trained_run_opens_on_the_other_pages(at):
    run = start(at, 50, pgtask="where", pgp=8)
    wait_for(run, ("done",))
    at.run()
    at.button(key="pg-open").click().run()
    assert_clean(at)
    name = at.session_state["model"]
    assert name == f"playground-{run.id}@50"
    opened = session.trained_here(name)
    assert opened.model.source == f"playground:{run.id}@50" and opened.model is not run  # a frozen copy
    named = f"Trained in the playground: run {run.id[1:]}, step 50"
    assert any(s.value.startswith(named) for s in at.success)
    at.switch_page("pages/patching.py").run()
    assert_clean(at)
    assert any(i.value.startswith(named) for i in at.info), [i.value for i in at.info]
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Height H"], metrics["Width W"], metrics["Patch P"]) == ("32", "32", "8")
    assert metrics["Grid h × w"] == "4×4" and metrics["Patches N"] == "16"
    assert at.selectbox(key="model").value == name
    assert at.selectbox(key="pgimg").options[0] == f"1 · {opened.sample_names()[0].split(' · ')[1]}"
    at.switch_page("pages/position.py").run()
    assert_clean(at)
    assert any(i.value.startswith(named) for i in at.info)
    # the page's E_pos is the snapshot's own: 1 + 16 positions of the 4 × 4 grid
    assert np.asarray(opened.model.pos_embed).shape == (1, 17, 64)
