"""Classroom security (issue 8): a fixed list of hub checkpoints, safetensors only, no student-controlled paths,
XSRF/CORS protection on, no analytics, no tracebacks."""
from __future__ import annotations

import re
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import vitviz
from vitviz.weights import HUB_IDS, ModelLoadError

from .apptest import PAGES, app, assert_clean

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "app.py", *sorted((ROOT / "vitviz").rglob("*.py")), *sorted((ROOT / "ui").glob("*.py")),
           *sorted((ROOT / "pages").glob("*.py"))]


def test_config_keeps_streamlit_protections_and_sends_no_analytics():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["enableCORS"] is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"  # no traceback reaches a student
    assert config["server"]["maxUploadSize"] <= 25  # MB: a phone photo fits, a video does not


def test_no_code_unpickles_or_opens_a_path_built_from_input():
    """Weights come from safetensors; the one unpickling path is vitviz.hub's conversion of a hub repo's
    pytorch_model.bin with PyTorch's restricted unpickler (weights_only=True: tensors and plain containers only).
    The app reads files only from its own assets and checkpoints."""
    forbidden = re.compile(r"torch\.load\(|^\s*(import|from) (pickle|dill|joblib)\b|pickle\.loads?\(|allow_pickle=True"
                           r"|(?<![.\w])(eval|exec)\(")
    offenders = [f"{path.relative_to(ROOT)}: {line.strip()}" for path in SOURCES
                 for line in path.read_text().splitlines() if forbidden.search(line)]
    restricted = [o for o in offenders if o.startswith("vitviz/hub.py: ") and "weights_only=True" in o]
    assert len(restricted) == 2, offenders  # the memory-mapped read, and the legacy (pre-zip) format's
    assert not [o for o in offenders if o not in restricted], offenders


def test_hub_access_is_limited_to_the_supported_checkpoints(monkeypatch):
    """Any other repo id is refused before huggingface_hub is asked for anything."""
    import huggingface_hub

    def no_download(*args, **kwargs):
        raise AssertionError("the hub must not be asked for an unsupported repo")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", no_download)
    for repo in ["someone/evil-model", "facebook/dino-vits16/../../x", "https://example.com/model", "/etc"]:
        with pytest.raises(ModelLoadError):
            vitviz.load_model(repo)
    assert set(HUB_IDS.values()) == {
        "facebook/dino-vits16", "facebook/dino-vits8", "facebook/deit-tiny-patch16-224", "google/vit-base-patch16-224",
        "microsoft/swin-tiny-patch4-window7-224", "apple/mobilevit-xx-small", "apple/mobilevit-small",
        "facebook/dinov2-small", "facebook/dinov2-with-registers-small", "facebook/dinov2-small-imagenet1k-1-layer",
        "facebook/dinov2-large", "facebook/dinov2-with-registers-large"}


def test_a_preset_name_never_reads_a_directory_of_that_name(tmp_path, monkeypatch):
    """A folder called like a preset in the working directory must not replace the preset's weights."""
    (tmp_path / "deit-tiny").mkdir()
    (tmp_path / "deit-tiny" / "config.json").write_text("{not json")
    monkeypatch.chdir(tmp_path)
    assert vitviz.load_model("deit-tiny", device="cpu").source == "deit-tiny"


HOSTILE_QUERY = {
    "img": "../../../../etc/passwd", "model": "/etc/shadow", "ps": "-3", "res": "99999", "hub": "maybe",
    "aspect": "../x", "mvit": "../../weights", "M": "1e9", "swp": "<script>alert(1)</script>", "layer": "NaN",
}


@pytest.mark.parametrize("page", PAGES)
def test_hostile_query_parameters_fall_back_to_defaults(page):
    """A link can only pick among the app's own options: paths, scripts and out-of-range numbers are ignored."""
    at = app(**HOSTILE_QUERY)
    at.switch_page(page).run()
    assert_clean(at)
    ctx = at.session_state["ctx"]
    assert ctx.image_key == "sample:cat" and ctx.model_name == "dino-vits16"
    assert 4 <= ctx.patch_size <= 64 and ctx.resolution <= 512 and ctx.pretrained is True  # the default


@pytest.mark.browser
def test_server_refuses_uploads_without_the_xsrf_token(app_url):
    request = urllib.request.Request(f"{app_url}/_stcore/upload_file/some-session/some-file", data=b"x" * 100,
                                     method="PUT", headers={"Content-Type": "application/octet-stream"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 403


@pytest.mark.browser
def test_server_does_not_allow_foreign_origins(app_url):
    request = urllib.request.Request(f"{app_url}/_stcore/health", headers={"Origin": "http://evil.example"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers.get("Access-Control-Allow-Origin") not in {"*", "http://evil.example"}
