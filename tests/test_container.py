"""What a school's IT runs, built and run for real with Podman (deploy/container.py): the image of deploy/Dockerfile
(trained weights baked in from the fake hub, or mounted), one container serving a class in Chromium, the replica
stack of deploy/compose.yaml surviving a replica killed, and the Kubernetes manifests under `podman play kube`.
Runs with VITVIZ_CONTAINER_TESTS=1: CI sets it (.ci/run installs Podman), as does `python3 tasks.py container
check`; there a missing Podman fails it. Elsewhere (a developer's `tasks.py test`) it skips: a first build takes
~10 minutes and needs root."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import time
import urllib.request

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from .apptest import photo
from .browser import ROOT, assert_healthy, free_port, goto, wait_idle
from .fakehub import FakeHub, Repo, Revision
from .hubrepos import saved_files, tiny_vit
from .school import class_across, healthy
from .test_serve import server_of, upload

pytestmark = pytest.mark.browser
PRESET, REPO = "deit-tiny", "facebook/deit-tiny-patch16-224"


def container_module():
    spec = importlib.util.spec_from_file_location("container", ROOT / "deploy" / "container.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


container = container_module()


def require_podman() -> None:
    if not os.environ.get("VITVIZ_CONTAINER_TESTS"):
        pytest.skip("container tests run with VITVIZ_CONTAINER_TESTS=1 (or python3 tasks.py container check)")
    if not (shutil.which("podman") and shutil.which("runc")):
        pytest.fail("podman is missing (apt-get install podman runc debootstrap slirp4netns uidmap)")


def podman(*args: str, check: bool = True) -> str:
    return container.podman(*args, capture=True, check=check).stdout


def logs(name: str) -> str:
    """A container's output (Streamlit logs to stderr)."""
    done = container.podman("logs", name, capture=True, check=False)
    return done.stdout + done.stderr


def wait_healthy(url: str, name: str) -> None:
    deadline = time.monotonic() + 120
    while not healthy(f"{url}/_stcore/health"):
        state = podman("inspect", name, "--format", "{{.State.Status}}", check=False).strip()
        if state not in ("running", "created") or time.monotonic() > deadline:
            raise AssertionError(f"{name} did not answer its health URL ({state}):\n"
                                 + logs(name)[-3000:])
        time.sleep(0.3)


def wait_routed(url: str, replicas: list[str], timeout_s: float = 180) -> None:
    """Wait until HAProxy sends new sessions to every replica: a replica answering through HAProxy proves one is up,
    not that HAProxy has found the other (its DNS resolution, then two passed checks a second apart)."""
    seen, deadline = set(), time.monotonic() + timeout_s
    while len(seen) < len(replicas):
        try:  # a request without HAProxy's cookie: it chooses by round robin among the servers it has up
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as answer:
                cookies = " ".join(answer.headers.get_all("Set-Cookie") or ())  # Streamlit's own come first
            seen.update(re.findall(r"SERVERID=([^;]+)", cookies))
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"HAProxy routed to {len(seen)} of {len(replicas)} replicas in {timeout_s:.0f} s:\n"
                                 + "\n".join(logs(name)[-1500:] for name in replicas))
        time.sleep(0.5)


@pytest.fixture(scope="module")
def image():
    """The app image, with one trained checkpoint (a tiny ViT standing in for deit-tiny) baked in from the fake hub."""
    require_podman()
    with FakeHub({REPO: Repo(Revision(saved_files(tiny_vit(3))))}) as hub:
        container.build(weights=PRESET, hf_endpoint=hub.url)
    return container.APP_IMAGE


def weights_seen(image: str, *volume: str) -> str:
    """Where the image's Python finds deit-tiny's trained weights offline ('None' if nowhere)."""
    return podman("run", "--rm", "-e", "HF_HUB_OFFLINE=1", *volume, image, "python", "-c",
                  f"from vitviz import hub; c = hub.find_local('{REPO}', '{PRESET}'); print(c and c.folder)").strip()


def test_weights_are_baked_in_and_a_volume_replaces_them(image, tmp_path):
    assert weights_seen(image) == f"/opt/vitviz-weights/{PRESET}"
    tmp_path.chmod(0o755)  # the container's user (uid 10001) reads the volume: as a school's folder must allow
    assert weights_seen(image, "-v", f"{tmp_path}:/opt/vitviz-weights:ro") == "None"  # an empty volume hides them
    podman("create", "--name", "vitviz-test-copy", image)
    try:
        podman("cp", f"vitviz-test-copy:/opt/vitviz-weights/{PRESET}", str(tmp_path / PRESET))
    finally:
        podman("rm", "vitviz-test-copy")
    assert weights_seen(image, "-v", f"{tmp_path}:/opt/vitviz-weights:ro") == f"/opt/vitviz-weights/{PRESET}"


def test_the_image_has_no_build_tools_and_runs_as_its_user(image):
    found = podman("run", "--rm", image, "sh", "-c", "id -u; for t in pip gcc cc make; do command -v $t; done; "
                   "ls /opt/venv/bin | grep -c '^pip' || true").split()
    assert found == ["10001", "0"], found
    inspected = json.loads(podman("inspect", image))[0]
    assert inspected["Config"]["User"] == "vitviz"
    assert "/_stcore/health" in " ".join(inspected["Healthcheck"]["Test"])  # kept: built with --format docker


def test_one_container_serves_a_class_and_stops_on_sigterm(chromium, image):
    port, name = free_port(), "vitviz-test-one"
    podman("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8501", image)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, name)
        assert container.podman("healthcheck", "run", name, check=False, capture=True).returncode == 0
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        try:  # a fresh container's first page: its first run imports torch and the app (once, 3 min on a loaded host)
            goto(page, url, timeout_s=180)
        except PlaywrightError as err:  # what the server was doing, for the next reader
            raise AssertionError(f"{err}\n{logs(name)[-3000:]}") from err
        assert_healthy(page)
        expect(page.locator("h1").first).to_be_visible()  # the overview, drawn
        upload(page, "class.jpg", photo(320, 240, seed=5))
        slider = page.get_by_test_id("stSidebar").get_by_role("slider").first
        slider.focus()
        page.keyboard.press("ArrowRight")
        wait_idle(page)
        assert "ps=17" in page.url, page.url  # the slider answered
        assert_healthy(page)
        page.close()
        podman("stop", "-t", "30", name)
        state = json.loads(podman("inspect", name))[0]["State"]
        # 0: Streamlit stopped on SIGTERM by itself (137 would be the SIGKILL after the 30 s)
        assert state["ExitCode"] == 0, logs(name)[-2000:]
        assert "Traceback" not in logs(name)
        # the build fetched Plotly's cartesian bundle and cut the fonts: nothing falls back in the image
        assert ("static bundles served gzipped, charts with Plotly's cartesian bundle, 4 fonts cut to what the app "
                "can show" in logs(name)), logs(name)[-2000:]
    finally:
        podman("rm", "-f", name, check=False)


@pytest.fixture
def stack(image):
    port = free_port()
    container.up(replicas=2, port=port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        container.compose_down()


def test_the_compose_stack_keeps_sessions_shares_a_class_and_survives_a_replica_killed(chromium, stack):
    """The checks of tests/test_serve.py, through containers: HAProxy's cookie sends each session back to its
    replica, the class lives in Redis, and a replica killed with SIGKILL leaves the class running."""
    replicas = container.app_containers()
    assert len(replicas) == 2, replicas
    for name in replicas:
        wait_healthy(stack, name)
    wait_routed(stack, replicas)
    contexts = [chromium.new_context(viewport={"width": 1280, "height": 800}) for _ in range(2)]
    try:
        pages = [ctx.new_page() for ctx in contexts]
        for page in pages:
            goto(page, stack, "patching")
        servers = [server_of(ctx) for ctx in contexts]
        assert len(set(servers)) == 2, servers  # round robin: one session on each replica
        for i, page in enumerate(pages):
            upload(page, f"student{i}.jpg", photo(320, 240, seed=40 + i))
        assert [server_of(ctx) for ctx in contexts] == servers

        class_across(*pages, stack)  # teacher and student on different replicas, one class in Redis

        for i, page in enumerate(pages):
            goto(page, stack, "patching", ps="20")
            upload(page, f"mine{i}.jpg", photo(300, 200, seed=70 + i))
        podman("kill", "-s", "KILL", replicas[0])
        while running(replicas[0]):
            time.sleep(0.2)
        pages[0].wait_for_timeout(3_000)  # HAProxy's checks (every 1 s, out after 2 failures)
        gone = "Your photo is no longer on the server"
        deadline = time.monotonic() + 180  # a browser's reconnection backs off; the loaded CI machine is slow
        while not any(gone in page.get_by_test_id("stSidebar").inner_text() for page in pages):
            assert time.monotonic() < deadline, "no page was told that its photo is gone"
            # the next action of each page, again while none is told (a key pressed while a page is still
            # disconnected reaches no server): the one whose replica died reconnects, as a new session
            for page in pages:
                slider = page.get_by_test_id("stSidebar").get_by_role("slider").nth(1)
                slider.focus()
                page.keyboard.press("ArrowRight")
            pages[0].wait_for_timeout(5_000)
        for page in pages:
            wait_idle(page)
            assert "/patching" in page.url and "ps=20" in page.url  # page and settings kept, from the URL
        told = [gone in page.get_by_test_id("stSidebar").inner_text() for page in pages]
        assert sorted(told) == [False, True], told  # the other one's replica still holds its session
        moved = pages[told.index(True)]
        upload(moved, "again.jpg", photo(300, 200, seed=77))  # and it works there
        assert_healthy(moved)
    finally:
        for ctx in contexts:
            ctx.close()


def running(name: str) -> bool:
    """Whether the replica `name` still runs (HAProxy keeps routing to a running one)."""
    return podman("inspect", name, "--format", "{{.State.Running}}", check=False).strip() == "true"


def test_the_kubernetes_manifests_run_under_podman_play_kube(image):
    """What `podman play kube` runs of deploy/kubernetes/: the Secret, both Deployments (their pods and
    containers, the cookie secret reaching the app, Redis without persistence) and the app's health answer."""
    try:
        container.kube()
        pods = podman("pod", "ps", "--format", "{{.Name}} {{.Status}}").splitlines()
        for name in ("vitviz-app", "vitviz-redis"):
            assert any(line.startswith(name) and line.endswith("Running") for line in pods), pods
        app = next(n for n in podman("ps", "--format", "{{.Names}}").split() if n.startswith("vitviz-app"))
        assert podman("exec", app, "id", "-u").strip() == "10001"  # the Deployment's runAsUser
        env = podman("exec", app, "env")
        assert "STREAMLIT_SERVER_COOKIE_SECRET=" in env and "VITVIZ_REDIS_URL=redis://vitviz-redis:6379/0" in env
        deadline = time.monotonic() + 120
        while podman("exec", app, "python", "-c", HEALTH, check=False).strip() != "200":
            assert time.monotonic() < deadline, logs(app)[-3000:]
            time.sleep(1)
        redis = next(n for n in podman("ps", "--format", "{{.Names}}").split() if n.startswith("vitviz-redis"))
        assert podman("exec", redis, "redis-cli", "config", "get", "save").split() == ["save"]
        assert podman("exec", redis, "redis-cli", "config", "get", "appendonly").split() == ["appendonly", "no"]
    finally:
        container.kube("--down")


HEALTH = ("import urllib.request; "
          "print(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=3).status)")
