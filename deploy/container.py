"""Build and run vitviz's containers with Podman, as a school's IT would with Docker: the image of deploy/Dockerfile,
the replica stack of deploy/compose.yaml (podman-compose) and the manifests of deploy/kubernetes/ (`podman play kube`).

    python3 tasks.py container build [--weights "deit-tiny"] [--hf-endpoint URL]   # base, services and app images
    python3 tasks.py container up [--replicas 2] [--port 8501]   # compose: HAProxy, N replicas, Redis
    python3 tasks.py container kube                              # the Kubernetes manifests under podman play kube
    python3 tasks.py container down                              # stops and removes both
    python3 tasks.py container check                             # all of it, checked in Chromium (tests/test_container.py)

Where no registry is reachable (these machines, a school behind a strict proxy), the base image is made from Debian's
own packages: `debootstrap` from the apt mirror this machine uses, with this machine's CA certificates (its package
proxy may be one that re-signs TLS), then `podman import`; its root filesystem is cached in VITVIZ_CONTAINER_CACHE
(default /var/cache/vitviz-base). Redis and HAProxy come from Debian's packages in one image on the same base. Torch
comes from the wheel `pip download torch==<the pinned version>` finds with this machine's pip settings, passed to
the build as a wheelhouse (.whl/ in the clone, ignored by git). Podman runs with runc, cgroupfs and no default
ulimits (crun fails on setrlimit in these VMs), from config files in the cache folder: nothing global is changed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("VITVIZ_CONTAINER_CACHE", "/var/cache/vitviz-base"))
BASE_IMAGE = "localhost/vitviz-base:bookworm"
SERVICES_IMAGE = "localhost/vitviz-services:bookworm"
APP_IMAGE = "localhost/vitviz:latest"
PODMAN_COMPOSE = "podman-compose==1.6.0"  # from PyPI: Debian's 1.0.3 has no replicas
PROJECT = "vitviz"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
WHEELHOUSE = ".whl"
CONTAINERS_CONF = """[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
STORAGE_CONF = """[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
"""
SERVICES_CONTAINERFILE = f"""FROM {BASE_IMAGE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy redis-server \\
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
"""


def say(text: str) -> None:
    print(f"container: {text}", flush=True)


def engine_env() -> dict[str, str]:
    """The environment every podman call runs in: this module's engine settings (written once into CACHE)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    for name, text in (("containers.conf", CONTAINERS_CONF), ("storage.conf", STORAGE_CONF)):
        path = CACHE / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return {**os.environ, "CONTAINERS_CONF": str(CACHE / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(CACHE / "storage.conf")}


def podman(*args: str, check: bool = True, capture: bool = False, **kw) -> subprocess.CompletedProcess:
    if not shutil.which("podman"):
        sys.exit("Podman is not installed: sudo apt-get install podman runc slirp4netns uidmap debootstrap")
    return subprocess.run(["podman", *args], check=check, text=True, env=engine_env(), cwd=ROOT,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None, **kw)


def has_image(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def rootfs_tar() -> Path:
    """A Debian root filesystem with python3, its venv module and this machine's CA certificates, made once."""
    tar = CACHE / "bookworm-rootfs.tar"
    if tar.exists():
        return tar
    tree = CACHE / "rootfs.partial"
    shutil.rmtree(tree, ignore_errors=True)
    say(f"debootstrap bookworm from {DEBIAN_MIRROR} into {tree} (a few minutes, once)")
    subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm",
                    str(tree), DEBIAN_MIRROR], check=True, stdout=subprocess.DEVNULL)
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(cert, tree / "usr/local/share/ca-certificates" / cert.name)
    subprocess.run(["chroot", str(tree), "update-ca-certificates"], check=True, stdout=subprocess.DEVNULL)
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (tree / junk).glob("*"):
            if path.is_file():
                path.unlink()
    subprocess.run(["tar", "-C", str(tree), "-cf", f"{tar}.partial", "."], check=True)
    os.replace(f"{tar}.partial", tar)
    shutil.rmtree(tree)
    return tar


def base_image() -> None:
    if has_image(BASE_IMAGE):
        return
    # pip inside the build reads its CA bundle from PIP_CERT: the one with this machine's certificates
    podman("import", "--change", "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
           "--change", "ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
           "--change", 'CMD ["/bin/bash"]', str(rootfs_tar()), BASE_IMAGE, capture=True)


def torch_pin() -> str:
    return re.search(r"^torch==\S+$", (ROOT / "requirements.txt").read_text(), re.M)[0]


def wheelhouse() -> None:
    """The torch wheel this machine's pip finds (a local file here, PyPI elsewhere), in .whl/ for the build."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                    "-d", str(ROOT / WHEELHOUSE), torch_pin()], check=True)


def build(weights: str = "", hf_endpoint: str = "") -> None:
    """The base and services images where missing, then the app image (a rebuild reuses unchanged layers)."""
    base_image()
    if not has_image(SERVICES_IMAGE):
        podman("build", "--network", "host", "-t", SERVICES_IMAGE, "-f", "-", str(CACHE), input=SERVICES_CONTAINERFILE)
    wheelhouse()
    # host networking: a hub on this machine's loopback (the tests' fake hub) is reachable from the build
    podman("build", "--format", "docker", "--network", "host", "--ignorefile", "deploy/Dockerfile.dockerignore",
           "-f", "deploy/Dockerfile", "--build-arg", f"BASE={BASE_IMAGE}", "--build-arg", "TORCH_INDEX=",
           "--build-arg", f"WHEELHOUSE={WHEELHOUSE}", "--build-arg", f"WEIGHTS={weights}",
           "--build-arg", f"HF_ENDPOINT={hf_endpoint}", "-t", APP_IMAGE, ".")


def podman_compose() -> list[str]:
    """podman-compose from PyPI in its own virtual environment in CACHE."""
    venv = CACHE / "podman-compose"
    program = venv / "bin" / "podman-compose"
    stamp = venv / PODMAN_COMPOSE
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", PODMAN_COMPOSE], check=True)
        stamp.touch()
    return [str(program), "-p", PROJECT, "-f", str(ROOT / "deploy" / "compose.yaml")]


def compose(*args: str, secret: str = "", port: int = 8501, check: bool = True) -> subprocess.CompletedProcess:
    env = {**engine_env(), "VITVIZ_IMAGE": APP_IMAGE, "VITVIZ_REDIS_IMAGE": SERVICES_IMAGE,
           "VITVIZ_HAPROXY_IMAGE": SERVICES_IMAGE, "VITVIZ_PORT": str(port),
           "VITVIZ_COOKIE_SECRET": secret or os.environ.get("VITVIZ_COOKIE_SECRET", "") or "unset"}
    return subprocess.run([*podman_compose(), *args], check=check, env=env, cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def up(replicas: int = 2, port: int = 8501, secret: str = "") -> None:
    """The compose stack, detached: HAProxy on `port`, `replicas` app containers, Redis."""
    import secrets

    done = compose("up", "-d", "--no-build", "--scale", f"app={replicas}", secret=secret or secrets.token_hex(32),
                   port=port)
    say(f"compose stack up: http://127.0.0.1:{port} ({replicas} replicas)\n{done.stdout[-2000:]}")


def app_containers() -> list[str]:
    """The names of the compose stack's app replicas, in order."""
    found = podman("ps", "--filter", f"label=com.docker.compose.project={PROJECT}",
                   "--filter", "label=com.docker.compose.service=app", "--format", "{{.Names}}", capture=True)
    return sorted(found.stdout.split())


def kube(*flags: str) -> subprocess.CompletedProcess:
    """`podman play kube` of deploy/kubernetes/vitviz.yaml with the images this module builds in place of the
    public ones, one replica each (with `--down`: stops what it started)."""
    text = (ROOT / "deploy" / "kubernetes" / "vitviz.yaml").read_text()
    text = text.replace("image: vitviz:latest", f"image: {APP_IMAGE}")
    text = text.replace("image: redis:7-alpine", f"image: {SERVICES_IMAGE}")
    # Podman 4.3 names every replica's pod alike and fails on the second: one pod per Deployment here
    text = re.sub(r"^  replicas: \d+$", "  replicas: 1", text, flags=re.M)
    # Podman 4.3 stores a manifest's Secret as YAML but reads secretKeyRef as JSON: made here as JSON instead
    documents = text.split("\n---\n")
    secret = next(d for d in documents if re.search(r"^kind: Secret$", d, re.M))
    name = re.search(r"^  name: (\S+)$", secret, re.M)[1]
    manifest = CACHE / "vitviz.kube.yaml"
    manifest.write_text("\n---\n".join(d for d in documents if d is not secret))
    podman("secret", "rm", name, check=False, capture=True)
    if "--down" in flags:
        return podman("play", "kube", *flags, str(manifest), capture=True, check=False)
    data = dict(re.findall(r"^  ([\w-]+): (\S+)$", secret.split("\ndata:\n")[1], re.M))
    podman("secret", "create", name, "-", input=json.dumps(data), capture=True)
    return podman("play", "kube", *flags, str(manifest), capture=True)


def compose_down() -> None:
    """The compose stack stopped and removed, its cache volume too. podman-compose 1.6 on Podman 4.3 may leave a
    replica it stopped running again (the restart policy): its pod is removed by force after it."""
    compose("down", "-v", "-t", "20", check=False)
    podman("pod", "rm", "-f", f"pod_{PROJECT}", check=False, capture=True)
    podman("network", "rm", "-f", f"{PROJECT}_default", check=False, capture=True)
    podman("volume", "rm", "-f", f"{PROJECT}_cache", check=False, capture=True)


def down() -> None:
    compose_down()
    kube("--down")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tasks.py container", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "up", "kube", "down", "check"])
    parser.add_argument("--weights", default="", help="presets to bake in (what `tasks.py download` takes)")
    parser.add_argument("--hf-endpoint", default="", help="the hub or mirror the weights come from")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.weights, args.hf_endpoint)
    elif args.command == "up":
        up(args.replicas, args.port)
    elif args.command == "kube":
        say(kube().stdout)
    elif args.command == "down":
        down()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
