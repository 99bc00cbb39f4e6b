"""The training playground's library (vitviz.playground): task labels against independent renderings and pixel
statistics, determinism, the optimiser against torch's, the no-attention control's additivity, frozen snapshots,
the scheduler's round-robin and cancelling, and the CLI's JSON. Small step counts; no timing or accuracy threshold
that could fail by chance (a seeded run is deterministic on one machine)."""
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import vitviz
from vitviz import playground as pg
from vitviz.playground import runs as runs_module
from vitviz.playground.__main__ import main as cli_main
from vitviz.playground.models import PatchMLP, vit_config
from vitviz.playground.tasks import KINDS, PALETTE
from vitviz.playground.training import AdamW

ROOT = Path(__file__).resolve().parent.parent


def reference_mask(cx: float, cy: float, r: float, kind: int, size: int) -> np.ndarray:
    """One shape's pixels, pixel by pixel in plain Python, from the shapes' definitions (pixel centres at i + 0.5)."""
    mask = np.zeros((size, size), bool)
    for row in range(size):
        for col in range(size):
            dx, dy = col + 0.5 - cx, row + 0.5 - cy
            box = abs(dx) <= r and abs(dy) <= r
            mask[row, col] = [box, math.hypot(dx, dy) <= r, box and abs(dx) <= (dy + r) / 2,
                              box and (abs(dx) <= r / 3 or abs(dy) <= r / 3)][kind]
    return mask


def layout(task: pg.Task, n: int, seed: int, size: int):
    """What make() drew for `seed`: shapes (n, m, 5) and labels, from the same generator make() uses."""
    return task.draw(n, torch.Generator().manual_seed(seed), size)


@pytest.mark.parametrize("name", list(pg.TASKS))
def test_images_are_the_shapes_the_labels_say(name):
    task, size, n = pg.TASKS[name], 32, 12
    images, labels = task.make(n, seed=3, size=size)
    shapes, drawn_labels, _ = layout(task, n, 3, size)
    assert images.shape == (n, 3, size, size) and images.dtype == torch.float32
    assert torch.equal(labels, drawn_labels) and torch.equal(images * 255, (images * 255).round())
    for i in range(n):
        expected = np.zeros((size, size), bool)
        for cx, cy, r, kind, colour in shapes[i].tolist():
            shape = reference_mask(cx, cy, r, int(kind), size)
            expected |= shape
            # every pixel of the shape has its palette colour (the second shape may cover none of the first)
            assert np.allclose(images[i][:, torch.from_numpy(shape)].T, PALETTE[int(colour)], atol=1 / 255)
        assert np.array_equal(images[i].amax(0).numpy() > 0.5, expected)  # background stays dark
        kinds = [int(k) for k in shapes[i, :, 3]]
        quadrants = [int(cy >= size / 2) * 2 + int(cx >= size / 2) for cx, cy in shapes[i, :, :2].tolist()]
        truth = {"shape": kinds[0], "where": quadrants[0], "same": int(len(set(kinds)) == 1)}[name]
        assert labels[i] == truth
        if name == "same":
            assert quadrants[0] != quadrants[1]


def test_where_labels_from_the_pixels_alone():
    """The quadrant of the bright pixels' centroid, and every bright pixel in that quadrant."""
    images, labels = pg.TASKS["where"].make(200, seed=11, size=48)
    bright = images.amax(1) > 0.5  # (n, S, S)
    rows, cols = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    count = bright.sum((1, 2))
    cy, cx = (bright * rows).sum((1, 2)) / count, (bright * cols).sum((1, 2)) / count
    assert torch.equal(labels, (cy >= 24).long() * 2 + (cx >= 24).long())
    quadrant_of_pixel = (rows >= 24).long() * 2 + (cols >= 24).long()
    assert all(torch.all(quadrant_of_pixel[bright[i]] == labels[i]) for i in range(200))


def test_tasks_are_seeded_and_balanced():
    task = pg.TASKS["same"]
    a, b, c = task.make(400, 1)[1], task.make(400, 1)[1], task.make(400, 2)[1]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 150 < int(a.sum()) < 250  # about half "same" (binomial, sd 10: fixed seed, so no chance involved)
    for name in ("shape", "where"):
        counts = torch.bincount(pg.TASKS[name].make(800, 4)[1], minlength=4)
        assert counts.min() > 150
    assert len(KINDS) == 4 and pg.TASKS["where"].examples(3, 0).pil(0).size == (32, 32)


def test_config_problems_are_sentences():
    assert pg.RunConfig().problems() == []
    problems = pg.RunConfig(task="count", patch=5, dim=66, lr=2.0).problems()
    assert len(problems) == 4 and all(p.endswith(".") for p in problems)
    with pytest.raises(ValueError, match="patch size 5 must be one of 2, 4, 8, 16"):
        pg.RunConfig(patch=5).checked()


def test_models_have_matching_sizes_and_fixed_position_embeddings():
    sizes = {m: sum(p.numel() for p in pg.build_model(pg.RunConfig(model=m)).parameters()) for m in pg.MODELS}
    assert max(sizes.values()) / min(sizes.values()) < 1.1  # the comparisons are between equals
    sincos = pg.build_model(pg.RunConfig(pos="sincos"))
    assert sincos.config.position == "sincos"
    assert torch.equal(sincos.pos_embed[0, 1:], vitviz.embeddings.sincos_2d((4, 4), 64))
    trainer = pg.Trainer(pg.RunConfig(pos="none", steps=3))
    trainer.advance()
    assert not trainer.model.pos_embed.any()  # "none" stays zero: never trained, no weight decay applied


def test_adamw_is_torchs():
    """The written-out AdamW makes torch.optim.AdamW's updates (two groups, one without weight decay)."""
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt_ours = AdamW([([ours[0]], 0.05), ([ours[1]], 0.0)], lr=1e-2)
    opt_theirs = torch.optim.AdamW([{"params": [theirs[0]], "weight_decay": 0.05},
                                    {"params": [theirs[1]], "weight_decay": 0.0}], lr=1e-2)
    for step in range(4):
        for params, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            ((params[0].sin().sum(0) * params[1]) ** 2).sum().mul(step + 1).backward()
            opt.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_patch_mlp_adds_one_term_per_patch():
    """The no-attention control cannot relate two shapes: with A and B in different quadrants,
    logits(A+B) − logits(A) − logits(B) + logits(neither) is 0 (up to rounding); the ViT's is not."""
    images, _ = pg.TASKS["same"].make(8, seed=5)
    shapes, _, background = layout(pg.TASKS["same"], 8, 5, 32)
    quadrant = [(shapes[:, j, 1] >= 16).long() * 2 + (shapes[:, j, 0] >= 16).long() for j in range(2)]
    blank = torch.full_like(images, 0.1)
    only = []
    for j in range(2):  # each image with only shape j: its quadrant taken from the image, the rest blank
        keep = torch.zeros(8, 1, 32, 32, dtype=torch.bool)
        for i in range(8):
            q = int(quadrant[j][i])
            keep[i, :, (q // 2) * 16:(q // 2) * 16 + 16, (q % 2) * 16:(q % 2) * 16 + 16] = True
        only.append(torch.where(keep, images, blank))
    config = pg.RunConfig(task="same")
    mlp = pg.build_model(pg.RunConfig(task="same", model="mlp")).eval()
    vit = pg.build_model(config).eval()
    with torch.no_grad():
        for model, additive in ((mlp, True), (vit, False)):
            logit = [model(x).logits.double() for x in (torch.where(only[0] != blank, only[0], only[1]), *only, blank)]
            interaction = (logit[0] - logit[1] - logit[2] + logit[3]).abs().max()
            assert (interaction < 1e-5) == additive
    assert isinstance(mlp, PatchMLP) and vit_config(config).labels == ("different", "same")


def test_same_settings_give_the_same_curve():
    config = pg.RunConfig(task="where", steps=25, seed=7)
    first, second = pg.train(config), pg.train(config)
    other = pg.train(pg.RunConfig(task="where", steps=25, seed=8))
    for field in ("steps", "train_loss", "val_loss", "val_accuracy", "grid_correlation"):
        assert np.array_equal(getattr(first.curves, field), getattr(second.curves, field), equal_nan=True)
    assert not np.array_equal(first.curves.val_loss, other.curves.val_loss)
    assert list(first.curves.steps) == [0, 10, 20, 25]
    assert first.confusion.sum() == pg.training.VAL_SIZE and first.confusion.trace() / 512 == first.val_accuracy
    assert first.attention.maps.shape == (4, 2, 4, 4, 4)
    np.testing.assert_allclose(first.attention.maps.sum((3, 4)) <= 1, True)
    assert first.grid.similarity.shape == (16, 16) and -1 <= first.grid.correlation <= 1
    assert all(m.predicted != m.label for m in first.mistakes)
    assert list(m.confidence for m in first.mistakes) == sorted((m.confidence for m in first.mistakes), reverse=True)


def test_where_is_learned_with_position_embeddings():
    """An easy config with a wide margin: the loss plateaus near ln 4 and drops after ~100 steps (0.23 at step 150
    on the development machine); after 200 it must be below half of ln 4 and accuracy well above chance (0.25)."""
    view = pg.train(pg.RunConfig(task="where", steps=200, seed=7))
    assert view.curves.val_loss[0] > 1.3 and view.curves.val_loss[-1] < 0.5 * math.log(4)
    assert view.val_accuracy > 0.6 and view.pos_grid_correlation > -1


def test_pausing_and_slicing_do_not_change_the_curve():
    config = pg.RunConfig(steps=22, seed=1)
    whole = pg.train(config)
    sliced = pg.Trainer(config)
    for n in (1, 4, 9, 100):
        sliced.advance(steps=n)
    assert np.array_equal(sliced.view().curves.val_loss, whole.curves.val_loss)


def wait_for(condition, seconds: float = 120):
    """Poll until `condition()` is true; the limit only stops a hung test (the checks after it say what failed)."""
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.02)
    return condition()


def test_snapshot_is_a_frozen_copy():
    scheduler = pg.Scheduler(workers=1, nice=0)
    run = scheduler.start(pg.RunConfig(task="where", steps=200), owner="student")
    assert wait_for(lambda: run.view() is not None and run.view().step >= 3)
    run.pause()
    assert wait_for(lambda: run.view().queue_position == -1)
    snap = run.snapshot()
    step = run.view().step
    assert snap is run.snapshot() and snap.source == f"playground:{run.id}@{step}" and vitviz.is_trained(snap)
    assert not any(p.requires_grad for p in snap.parameters()) and not snap.training
    weights = {k: v.clone() for k, v in snap.state_dict().items()}
    examples = pg.TASKS["where"].examples(2, seed=9)
    x = torch.cat([vitviz.preprocess(examples.pil(i), snap.preprocessing) for i in range(2)])
    torch.testing.assert_close(x, pg.TASKS["where"].make(2, 9)[0])  # the pages see the task's own pixels
    run.step(5)
    assert wait_for(lambda: run.state == "paused")
    assert run.view().step == step + 5
    later = run.snapshot()
    assert later is not snap and later.source.endswith(f"@{step + 5}")
    assert all(torch.equal(weights[k], v) for k, v in snap.state_dict().items())  # training on left it alone
    assert not all(torch.equal(weights[k], v) for k, v in later.state_dict().items())
    run.stop()
    with pytest.raises(ValueError):
        scheduler.start(pg.RunConfig(model="cnn", steps=1), owner="x", paused=True).snapshot()
    scheduler.shutdown()


def test_scheduler_turns_round_robin_and_cancels():
    """One worker, one step per turn: the runs' steps never drift apart by more than the turns in flight; a stopped
    run stops, a session's end drops its runs, and each owner keeps its last 4."""
    scheduler = pg.Scheduler(workers=1, slice_seconds=0.0, nice=0)
    runs = [scheduler.start(pg.RunConfig(steps=12, seed=i), owner=f"s{i % 2}", paused=True) for i in range(4)]
    for run in runs:
        run.resume()
    spreads = []
    while wait_for(lambda: all(r.view() is not None for r in runs)) and runs[1].state not in ("done", "stopped"):
        steps = [r.view().step for r in runs if r.state in ("waiting", "training")]
        spreads.append(max(steps) - min(steps) if steps else 0)
        if runs[1].view().step >= 2:
            runs[1].stop()
        positions = sorted(scheduler.queue_position(r) for r in runs if r.state in ("waiting", "training"))
        assert positions in ([], *[list(range(k)) for k in range(1, 5)])  # 0 (in the worker), 1, 2, … honest
        time.sleep(0.005)
    assert wait_for(lambda: scheduler.active() == 0)
    assert max(spreads) <= 2  # one step per turn: a view may lag one turn behind another
    assert [r.state for r in runs] == ["done", "stopped", "done", "done"]
    assert [r.view().step for r in runs] == [12, runs[1].view().step, 12, 12] and runs[1].view().step < 12
    scheduler.end_session("s0")
    assert scheduler.runs("s0") == [] and scheduler.get(runs[0].id) is None and scheduler.runs("s1") == [runs[3], runs[1]]
    kept = [scheduler.start(pg.RunConfig(steps=1), owner="s1", paused=True) for _ in range(4)]
    assert scheduler.runs("s1") == kept[::-1] and scheduler.get(runs[3].id) is None
    scheduler.shutdown()


def test_reset_while_a_slice_runs_leaves_step_zero():
    """Pause then Reset at once, while a worker is inside the run's slice: no view of the old run comes back."""
    scheduler = pg.Scheduler(workers=1, nice=0)
    run = scheduler.start(pg.RunConfig(steps=10**4), owner="student")
    for _ in range(3):
        assert wait_for(lambda: run.view() is not None and run.view().step > 0)
        run.pause()
        run.reset()
        assert run.view() is None and run.state == "paused"
        assert wait_for(lambda: scheduler.queue_position(run) == -1 and scheduler.active() == 0)
        assert run.view() is None  # the slice in flight ended without publishing
        run.resume()
    scheduler.shutdown()


def test_idle_runs_beyond_the_process_limit_are_dropped(monkeypatch):
    monkeypatch.setattr(runs_module, "MAX_KEPT", 3)
    scheduler = pg.Scheduler(workers=1, nice=0)
    made = [scheduler.start(pg.RunConfig(steps=1), owner=f"s{i}", paused=True) for i in range(5)]
    assert [scheduler.get(r.id) for r in made] == [None, None, *made[2:]]
    assert made[0].state == "stopped" and made[4].state == "paused"


def test_cli_prints_one_json_object(capsys):
    cli = [sys.executable, "-m", "vitviz.playground"]
    out = subprocess.run([*cli, "--task", "where", "--pos", "none", "--patch", "16", "--steps", "12", "--seed", "0",
                          "--json"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    assert {k: result[k] for k in ("task", "pos", "patch", "steps", "model")} == {
        "task": "where", "pos": "none", "patch": 16, "steps": 12, "model": "vit"}
    assert 0 <= result["val_accuracy"] <= 1 and result["seconds"] > 0 and result["steps_per_s"] > 0
    assert result["pos_grid_correlation"] == 0 and result["torch_threads"] == 1  # all-zero E_pos: no structure
    # the listing and a refusal return before any training, so they run in this process
    assert cli_main(["--tasks"]) == 0 and capsys.readouterr().out.split() == list(pg.TASKS)
    assert cli_main(["--patch", "5"]) == 2
    assert "error: patch size 5 must be one of 2, 4, 8, 16 for 32 px images." in capsys.readouterr().err
