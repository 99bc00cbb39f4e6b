"""Trained weights in Chromium: a student opens the app while the server downloads them, sees the download's
progress at the top of the page, and the page switches to trained weights by itself when it is done."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .browser import goto, require_chromium, streamlit_server
from .fakehub import FakeHub, Fault, Repo, Revision
from .hubrepos import saved_files, tiny_vit

pytestmark = pytest.mark.browser


def test_a_download_shows_its_progress_and_the_page_switches_when_done(chromium, tmp_path):
    require_chromium()
    files = saved_files(tiny_vit())
    with FakeHub({"facebook/dino-vits16": Repo(Revision(files))}) as hub:
        hub.faults[("facebook/dino-vits16", "model.safetensors")] = Fault(
            bytes_per_s=len(files["model.safetensors"]) / 6.0, times=10)
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_CACHE": str(tmp_path / "hf"),
               "VITVIZ_CACHE": str(tmp_path / "vitviz")}
        with streamlit_server(env=env) as (url, _proc):
            context = chromium.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            goto(page, url)
            main = page.get_by_test_id("stMain")
            expect(main).to_contain_text("Downloading the trained weights of facebook/dino-vits16")
            expect(main).to_contain_text("random-init sandbox")
            bar = main.get_by_test_id("stProgress")
            expect(bar).to_contain_text(re.compile(r"Trained weights · facebook/dino-vits16: [\d.]+ of [\d.]+ MB · [\d.]+ MB/s"),
                                        timeout=20_000)
            page.screenshot(path=str(tmp_path / "downloading.png"))  # looked at: the bar above the title
            # No click: the sidebar's progress fragment reruns the page when the download has ended.
            expect(main).to_contain_text("Model: dino-vits16, pretrained", timeout=60_000)
            expect(main).not_to_contain_text("Downloading the trained weights")
            expect(bar).to_have_count(0)
            context.close()
        gets = [p for m, p, _ in hub.requests if m == "GET" and p.endswith("/model.safetensors")]
        assert len(gets) == 1
