"""The files for a real server (deploy/): HAProxy accepts both configurations rendered from the one template, the
compose file's HAProxy configuration is the current rendering, and the container files agree with the app's
settings. No container engine runs here (nor in CI): the image build itself is not exercised by these tests."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess

import pytest
import yaml

from .browser import ROOT

DEPLOY = ROOT / "deploy"


def serve_module():
    spec = importlib.util.spec_from_file_location("serve", DEPLOY / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_compose_haproxy_config_is_the_current_rendering_of_the_template():
    assert (DEPLOY / "haproxy.compose.cfg").read_text() == serve_module().compose_config(), \
        "run: python3 deploy/serve.py --compose-config > deploy/haproxy.compose.cfg"


@pytest.mark.parametrize("which", ["serve", "serve --no-sticky", "compose"])
def test_haproxy_accepts_every_rendered_configuration(which, tmp_path):
    if not shutil.which("haproxy"):
        pytest.skip("haproxy not installed")
    serve = serve_module()
    text = serve.compose_config() if which == "compose" else \
        serve.haproxy_config(18501, "127.0.0.1", [18502, 18503], sticky=which == "serve")
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    checked = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "timeout tunnel 1h" in text and "option httpchk GET /_stcore/health" in text
    assert f"gt {serve.upload_mb() * 1024 * 1024 + 1024 * 1024}" in text
    assert ("cookie SERVERID insert" in text) == (which != "serve --no-sticky")


def test_compose_runs_replicas_of_one_image_behind_haproxy_with_redis_and_one_cookie_secret():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"app", "redis", "haproxy"}
    app = services["app"]
    assert app["build"]["dockerfile"] == "deploy/Dockerfile" and (DEPLOY / app["build"]["context"] / "app.py").exists()
    assert app["environment"]["VITVIZ_REDIS_URL"] == "redis://redis:6379/0"
    assert "VITVIZ_COOKIE_SECRET" in app["environment"]["STREAMLIT_SERVER_COOKIE_SECRET"]
    assert app["volumes"] == ["cache:/cache"], "one weights cache for every replica"
    mount = services["haproxy"]["volumes"][0].split(":")
    assert (DEPLOY / mount[0]).resolve() == DEPLOY / "haproxy.compose.cfg"
    slots = int(re.search(r"server-template app (\d+) app:8501", (DEPLOY / "haproxy.compose.cfg").read_text())[1])
    assert app["deploy"]["replicas"] <= slots


def test_the_image_runs_as_a_user_checks_its_health_and_keeps_the_cache_where_compose_mounts_it():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER vitviz$", text, re.M) and "useradd" in text
    assert "HEALTHCHECK" in text and "/_stcore/health" in text
    assert "HF_HOME=/cache/huggingface" in text and "VITVIZ_CACHE=/cache/vitviz" in text
    torch_pin = re.search(r"^torch==\S+$", (ROOT / "requirements.txt").read_text(), re.M)[0]
    assert torch_pin in text, "the image installs the torch the requirements pin"
    assert "--server.port\", \"8501\"" in text
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
