#!/usr/bin/env python3
"""One command to set up and start vitviz, one to set up and test it. Needs only Python >= 3.10.

    python3 tasks.py run     # creates .venv, installs requirements.txt, starts the app on localhost:8501 (ui/serving.py)
    python3 tasks.py test    # creates .venv, installs requirements-test.txt, runs the whole test suite
    python3 tasks.py bench   # prints the benchmark figures quoted in the README
    python3 tasks.py download [NAME ... | --all] [--to DIR]   # before class: fetch and verify the trained weights
    python3 tasks.py serve --replicas N [--port 8501]   # a school: N processes behind HAProxy, Redis (deploy/serve.py)
    python3 tasks.py container build|up|kube|down|check   # the image, compose stack and Kubernetes manifests, with Podman
    python3 tasks.py i18n    # after changing visible strings: extract them, update and compile the 中文 catalog (Babel)

Extra arguments go to streamlit (run), pytest (test) or the downloader (download: see vitviz/download.py). Installs are redone only when a requirements file changes.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

from ui import plotly_bundle

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_env(requirements: str) -> None:
    """Create .venv and install `requirements` unless this exact file content is already installed."""
    if sys.version_info < (3, 10):
        sys.exit("vitviz needs Python 3.10 or newer.")
    files = [ROOT / "requirements.txt", ROOT / requirements]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    stamp = VENV / f".installed-{requirements}-{digest}"
    plotly_bundle.ensure()  # Plotly's smaller bundle for the charts (ui/plotly_bundle.py), fetched once
    if stamp.exists():
        return
    if not PYTHON.exists():
        print("Creating .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    print(f"Installing {requirements} (first time only) …", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(ROOT / requirements)], check=True)
    for old in VENV.glob(f".installed-{requirements}-*"):
        old.unlink()
    stamp.touch()


def i18n() -> int:
    """Extract every visible string into vitviz/locales/vitviz.pot, merge it into each language's .po (new strings
    arrive untranslated, removed ones go), compile the .mo files the app reads. Then translate what is empty."""
    pybabel = [str(PYTHON), "-m", "babel.messages.frontend"]
    pot = ROOT / "vitviz" / "locales" / "vitviz.pot"
    steps = [[*pybabel, "extract", "-F", "babel.cfg", "-k", "_", "-k", "N_", "-k", "ngettext:1,2", "--no-location",
              "--sort-output", "--omit-header", "-o", str(pot), "."],
             [*pybabel, "update", "-i", str(pot), "-d", str(pot.parent), "-D", "vitviz", "--no-fuzzy-matching",
              "--ignore-obsolete"],
             [*pybabel, "compile", "-d", str(pot.parent), "-D", "vitviz", "--statistics"]]
    for step in steps:
        if code := subprocess.call(step):
            return code
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "bench", "download", "serve", "container", "i18n"}:
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    os.chdir(ROOT)
    if command == "run":
        ensure_env("requirements.txt")
        return subprocess.call([str(PYTHON), "-m", "ui.serving", "run", "app.py", "--server.port", "8501", *extra])
    if command == "serve":
        ensure_env("requirements.txt")
        return subprocess.call([str(PYTHON), str(ROOT / "deploy" / "serve.py"), *extra])
    if command == "download":
        ensure_env("requirements.txt")
        return subprocess.call([str(PYTHON), "-m", "vitviz.download", *extra])
    if command == "container" and extra[:1] != ["check"]:
        ensure_env("requirements.txt")
        return subprocess.call([str(PYTHON), str(ROOT / "deploy" / "container.py"), *extra])
    ensure_env("requirements-test.txt")
    if command == "container":  # check: build, start and check everything in Chromium (tests/test_container.py)
        return subprocess.call([str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_container.py",
                                *extra[1:]], env={**os.environ, "VITVIZ_CONTAINER_TESTS": "1"})
    if command == "test":
        return subprocess.call([str(PYTHON), "-m", "pytest", *extra])
    if command == "i18n":
        return i18n()
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        print(f"\n== {script.name}", flush=True)
        code = subprocess.call([str(PYTHON), str(script), *extra])
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
