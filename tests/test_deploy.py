"""The files for a real server (deploy/), read as text: HAProxy accepts both configurations rendered from the one
template, the compose file's HAProxy configuration is the current rendering, and the container files and Kubernetes
manifests agree with the app's settings and the README's memory plan. The image, the compose stack and the
manifests are built and run with Podman by tests/test_container.py."""
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
    assert "--server.port\", \"8501\"" in text and re.search(r"^FROM \$\{BASE\} AS build$", text, re.M)
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_compose_images_are_variables_with_the_public_defaults():
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert services["app"]["image"] == "${VITVIZ_IMAGE:-vitviz:latest}"
    assert services["redis"]["image"] == "${VITVIZ_REDIS_IMAGE:-redis:7-alpine}"
    assert services["haproxy"]["image"] == "${VITVIZ_HAPROXY_IMAGE:-haproxy:3.0-alpine}"
    assert services["redis"]["command"][1:5] == ["--save", "", "--appendonly", "no"], "nothing on disk"


def manifests() -> dict[str, dict]:
    """deploy/kubernetes/vitviz.yaml's documents by kind and name."""
    documents = yaml.safe_load_all((DEPLOY / "kubernetes" / "vitviz.yaml").read_text())
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents}


def test_the_kubernetes_app_probes_its_health_within_the_memory_plan_and_shares_one_secret():
    found = manifests()
    pod = found["Deployment/vitviz-app"]["spec"]["template"]["spec"]
    app = pod["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert app[probe]["httpGet"] == {"path": "/_stcore/health", "port": "http"}
    assert {"name": "http", "containerPort": 8501} in app["ports"]
    # the README's plan: 2 GiB per process (peak measured 1.93 GiB), one process per core
    assert app["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert app["resources"]["limits"]["memory"] == "2560Mi"
    assert pod["securityContext"]["runAsUser"] == 10001
    env = {e["name"]: e for e in app["env"]}
    secret = env["STREAMLIT_SERVER_COOKIE_SECRET"]["valueFrom"]["secretKeyRef"]
    assert "cookie-secret" in found[f"Secret/{secret['name']}"]["data"]
    redis_service = found["Service/vitviz-redis"]["metadata"]["name"]
    assert env["VITVIZ_REDIS_URL"]["value"] == f"redis://{redis_service}:6379/0"


def test_the_kubernetes_redis_keeps_nothing_on_disk_and_the_ingress_is_sticky_by_cookie():
    found = manifests()
    redis = found["Deployment/vitviz-redis"]["spec"]["template"]["spec"]
    assert redis["containers"][0]["args"][1:5] == ["--save", "", "--appendonly", "no"]
    assert "volumes" not in redis
    notes = found["Ingress/vitviz"]["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600, "hour-long websockets"
    backend = found["Ingress/vitviz"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert f"Service/{backend['name']}" in found
    assert "sessionAffinity" not in found["Service/vitviz-app"]["spec"], "stickiness is the ingress's cookie"
