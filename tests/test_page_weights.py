"""Trained weights in the app (AppTest): the default on every page once they are on this machine, a download that
every waiting session follows and that switches the page when done, and one banner with the command when offline."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ui import models as ui_models
from vitviz import hub

from .apptest import PAGES, app, assert_clean
from .fakehub import FakeHub, Fault, Repo, Revision, unreachable_url
from .hubrepos import as_bin, saved_files, tiny_vit

ROOT = Path(__file__).resolve().parent.parent
RANDOM = "**random weights**"  # in every banner that says trained weights were asked for but are not shown


def banners(at) -> list[str]:
    return [el.value for el in [*at.info, *at.warning] if "tasks.py download" in el.value or RANDOM in el.value]


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


@pytest.fixture
def online(monkeypatch, tmp_path):
    from huggingface_hub import constants

    def point_at(url: str) -> None:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("VITVIZ_CACHE", str(tmp_path / "vitviz"))
    monkeypatch.setattr(hub, "_downloads", {})
    ui_models._load.clear()
    yield point_at
    ui_models._load.clear()  # later tests must not meet these weights under the hub id


@pytest.mark.parametrize("page", PAGES)
def test_offline_with_an_empty_cache_every_page_shows_random_weights_and_one_banner(page, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    at = app()
    at.switch_page(page).run()
    assert_clean(at)
    assert at.session_state["ctx"].pretrained  # asked for by default, no toggle touched
    found = banners(at)
    assert len(found) == 1 and "offline" in found[0] and "`python3 tasks.py download`" in found[0], found


def test_in_the_container_image_the_banner_says_how_to_mount_or_bake_weights(monkeypatch, tmp_path):
    """deploy/Dockerfile sets VITVIZ_CONTAINER: there `tasks.py download` cannot run (a read-only app folder, no
    .venv), so the banner names the volume and the build argument instead."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("VITVIZ_CONTAINER", "1")
    monkeypatch.setenv("VITVIZ_WEIGHTS_DIR", str(tmp_path / "weights"))
    at = app()
    at.switch_page("pages/attention.py").run()
    assert_clean(at)
    (found,) = banners(at)
    assert "offline" in found and "on this computer" not in found
    assert "`python3 tasks.py download --to DIR`" in found and f"mount DIR on {tmp_path / 'weights'}" in found
    assert "--build-arg WEIGHTS=" in found


def wait_for(download, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while download.state not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert download.state == "done", download.error


def test_a_download_in_the_app_shows_progress_to_every_session_and_then_switches(online):
    files = saved_files(tiny_vit())
    with FakeHub({"facebook/dino-vits16": Repo(Revision(files))}) as server:
        server.faults[("facebook/dino-vits16", "model.safetensors")] = Fault(
            bytes_per_s=len(files["model.safetensors"]) / 2.0, times=10)
        online(server.url)
        first = app()
        assert_clean(first)
        assert any("Downloading the trained weights of facebook/dino-vits16" in b for b in banners(first))
        assert "random-init sandbox" in captions(first)
        second = app()  # another student, while the download runs
        assert any("Downloading the trained weights" in b for b in banners(second))
        bar = second.main.get("progress")
        assert len(bar) == 1 and "Trained weights · facebook/dino-vits16: " in bar[0].proto.text, bar
        download = hub.download_of("facebook/dino-vits16")
        wait_for(download)
        gets = [p for m, p, _ in server.requests if m == "GET" and p.endswith("/model.safetensors")]
        assert len(gets) == 1  # one download for the whole server
        for at in (first, second):
            at.run()  # what the sidebar's progress fragment does when the download ends
            assert_clean(at)
            assert not banners(at) and "pretrained" in captions(at) and "random-init" not in captions(at)


def test_an_unreachable_hub_falls_back_at_once_and_is_remembered(online):
    online(unreachable_url())
    at = app()
    assert_clean(at)
    wait_for_failure = hub.download_of("facebook/dino-vits16")
    deadline = time.monotonic() + 30
    while wait_for_failure.state not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    found = banners(at)
    assert len(found) == 1 and "cannot be reached" in found[0] and "python3 tasks.py download" in found[0]
    assert hub.download_of("facebook/dino-vits16") is wait_for_failure  # no new attempt on the next run


# ------------------------------------------------------------------ the teacher's prefetch, then class offline


def real_architecture_repos() -> dict[str, Repo]:
    """The three checkpoints the pages open with, at their real architectures (transformers' random init), each in
    another layout: dino-vits16 only as pytorch_model.bin, swin-tiny with safetensors only in the conversion bot's
    pull request, mobilevit-xx-small sharded."""
    from transformers import (MobileViTConfig, MobileViTForImageClassification, MobileViTImageProcessor, SwinConfig,
                              SwinForImageClassification, ViTConfig, ViTImageProcessor, ViTModel)

    from .fakehub import PullRequest
    from vitviz.hub import CONVERSION_BOT, CONVERSION_PR_TITLE

    def files_of(model, processor, **kwargs) -> dict[str, bytes]:
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp, **kwargs)
            processor.save_pretrained(tmp)
            return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}

    imagenet = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], resample=3)
    dino = files_of(ViTModel(ViTConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                       intermediate_size=1536), add_pooling_layer=False),
                    ViTImageProcessor(size={"height": 224, "width": 224}, **imagenet))
    swin = files_of(SwinForImageClassification(SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                                                          window_size=7, num_labels=1000)),
                    ViTImageProcessor(size={"height": 224, "width": 224}, **imagenet))
    mobilevit = files_of(MobileViTForImageClassification(MobileViTConfig(
        neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320], hidden_sizes=[64, 80, 96], expand_ratio=2.0, num_labels=1000)),
        MobileViTImageProcessor(), max_shard_size="2MB")
    return {
        "facebook/dino-vits16": Repo(Revision(as_bin(dino))),
        "microsoft/swin-tiny-patch4-window7-224": Repo(Revision(as_bin(swin)), pulls=[
            PullRequest(1, CONVERSION_PR_TITLE, CONVERSION_BOT, files=swin)]),
        "apple/mobilevit-xx-small": Repo(Revision(mobilevit)),
    }


@pytest.mark.timeout(900)
def test_after_the_teachers_download_every_page_opens_on_trained_weights_offline(online, tmp_path, monkeypatch):
    with FakeHub(real_architecture_repos()) as server:
        done = subprocess.run(
            [sys.executable, "-m", "vitviz.download", "dino-vits16", "swin-tiny", "mobilevit-xxs"], cwd=ROOT,
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" yes ") == 3, done.stdout
    for layout in ("pytorch_model.bin (converted", "conversion pull request refs/pr/1", "sharded safetensors"):
        assert layout in done.stdout
    monkeypatch.setenv("HF_ENDPOINT", unreachable_url())  # class: offline, the conftest's HF_HUB_OFFLINE=1 again
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for page in PAGES:
        at = app()  # no toggle touched, no hub= in the link
        at.switch_page(page).run()
        assert_clean(at)
        assert not banners(at), (page, banners(at))
        assert not [c for c in captions(at).splitlines() if c.startswith("Random weights")], page
    assert "pretrained" in captions(app()) and hub.download_of("facebook/dino-vits16") is None
