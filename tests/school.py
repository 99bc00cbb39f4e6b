"""`deploy/serve.py` started on free loopback ports, for the tests and the load bench: its URL, ports and processes."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from .browser import ROOT


def free_ports(count: int) -> int:
    """A base port with `count` free ports after it."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count < 65535 and all(_free(base + i) for i in range(count + 1)):
            return base
    raise RuntimeError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


@contextmanager
def serving(tmp_path: Path, *flags: str, replicas: int = 2, env: dict | None = None,
            stop: signal.Signals = signal.SIGTERM, background: bool = False):
    """`deploy/serve.py --replicas N *flags` on free ports; yields (url, base port, serve's log file), then stops
    serve with `stop` and fails unless it exited cleanly. `env`: more environment for serve and its processes;
    `background`: started as a shell's background job is, with SIGINT ignored."""
    base = free_ports(replicas + 2)
    log_path = tmp_path / "serve.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, str(ROOT / "deploy" / "serve.py"), "--replicas", str(replicas),
                             "--port", str(base), *flags], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
                            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None)
    url = f"http://127.0.0.1:{base}"
    try:
        deadline = time.monotonic() + 180
        while "serve: ready" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("serve did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.3)
        yield url, base, log_path
    finally:
        # SIGTERM by default, not SIGINT: a process started in the background by a non-interactive shell, as the
        # load bench often is, inherits SIGINT ignored
        proc.send_signal(stop)
        try:
            proc.wait(60)  # serve gives its processes 10 s, then kills them
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    if proc.returncode != 0 or "Traceback" in log_path.read_text(errors="replace"):
        raise AssertionError(f"serve failed (exit status {proc.returncode}):\n"
                             + log_path.read_text(errors="replace")[-3000:])


def replica_pids(log_path: Path) -> dict[int, int]:
    """port -> pid of the latest process on it, from serve's output."""
    return {int(port): int(pid) for port, pid in
            re.findall(r"serve: replica on 127\.0\.0\.1:(\d+) pid (\d+)", log_path.read_text(errors="replace"))}


def class_across(teacher, student, url: str) -> None:
    """The teacher (a Playwright page) starts a class of the lesson "windows-and-patches" at `url`, the student joins
    it with its code and follows the teacher to step 2: whatever process or replica each page is on."""
    from playwright.sync_api import expect

    from .browser import goto

    goto(teacher, url, "", lesson="windows-and-patches")
    teacher.get_by_role("button", name="Start a class").click()
    teacher.wait_for_selector("[data-testid='class-code']", timeout=30_000)
    code = teacher.locator("[data-testid='class-code']").inner_text().strip()
    goto(student, url, "", join=code)
    expect(student.locator("[data-testid='lesson-counter']")).to_have_text("1 / 8", timeout=30_000)
    teacher.get_by_role("button", name="Next").click()
    expect(student.locator("[data-testid='lesson-counter']")).to_have_text("2 / 8", timeout=30_000)
