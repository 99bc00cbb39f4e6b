"""Run vitviz as N Streamlit processes behind HAProxy, with Redis for the class state when N > 1.

`python3 tasks.py serve --replicas N [--port 8501] [--address 127.0.0.1]` starts the processes on port+1 … port+N
(loopback) with one shared cookie secret, HAProxy on `port` (sticky by cookie, websocket tunnels of an hour, health
checks, the upload limit) from deploy/haproxy.cfg.template, and redis-server on loopback when N > 1. A process that
dies is started again; Ctrl-C (or SIGTERM) stops everything. `--no-sticky` leaves the cookie out: only for the test
that shows why it is needed. Each process is started through ui/serving.py and sends Streamlit's scripts gzipped
(made once, -9), so HAProxy compresses nothing: its own gzip (level 1, on every request) made Plotly's bundle
2.18 MB instead of 1.42 MB, at ~18 ms of CPU per fetch.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "haproxy.cfg.template"
COMPOSE_SLOTS = 8  # replicas HAProxy can address in deploy/compose.yaml (`--scale app=N`, N ≤ this)
INSTALL = {
    "haproxy": "HAProxy is not installed. Install it with `sudo apt-get install haproxy` (Debian, Ubuntu) or "
               "`brew install haproxy` (macOS), or run one process with `python3 tasks.py run`.",
    "redis-server": "Redis is not installed (several processes share the class state through it). Install it "
                    "with `sudo apt-get install redis-server` (Debian, Ubuntu) or `brew install redis` (macOS).",
}


def upload_mb() -> int:
    """Streamlit's server.maxUploadSize from the project's config (MB)."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    return int(config.get("server", {}).get("maxUploadSize", 200))


def _render(port: int, bind: str, servers: str, cookie_line: str, resolvers: str = "") -> str:
    mb = upload_mb()
    return string.Template(TEMPLATE.read_text()).substitute(
        port=port, bind=bind, servers=servers, upload_mb=mb, max_body=mb * 1024 * 1024 + 1024 * 1024,
        cookie_line=cookie_line, resolvers=resolvers)


def haproxy_config(port: int, bind: str, replicas: list[int], sticky: bool = True) -> str:
    """The HAProxy configuration for replicas on these loopback ports."""
    servers = "\n".join(f"    server app{i} 127.0.0.1:{p}" + (f" cookie app{i}" if sticky else "") + " check"
                        for i, p in enumerate(replicas, 1))
    return _render(port, bind, servers,
                   "cookie SERVERID insert indirect nocache" if sticky else "# no cookie: --no-sticky")


def compose_config(slots: int = COMPOSE_SLOTS) -> str:
    """The HAProxy configuration of deploy/compose.yaml: up to `slots` replicas of the `app` service on port 8501,
    found (and found again when one restarts with a new address) through the container engine's DNS. Their cookies are derived
    from each replica's address and a key, since their names are not known in advance."""
    # Docker answers on 127.0.0.11, Podman on the network's gateway: both are in the container's resolv.conf.
    resolvers = ("# The container engine's DNS, read from /etc/resolv.conf: 127.0.0.11 under Docker, the network's gateway\n"
                 "# (aardvark-dns) under Podman; every replica of the `app` service is one A record of `app`.\n"
                 "resolvers engine\n    parse-resolv-conf\n    hold valid 5s\n")
    servers = f"    server-template app {slots} app:8501 check resolvers engine init-addr none"
    cookie = "cookie SERVERID insert indirect nocache dynamic\n    dynamic-cookie-key vitviz-replicas"
    return _render(8501, "*", servers, cookie, resolvers)


def healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


class Supervisor:
    """The processes of one `serve`: started, watched, restarted, stopped."""

    def __init__(self, args):
        self.args = args
        self.ports = [args.port + i for i in range(1, args.replicas + 1)]
        self.replicas: dict[int, subprocess.Popen] = {}
        self.others: list[subprocess.Popen] = []
        self.env = {**os.environ, "STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_hex(32)}
        self.folder = Path(tempfile.mkdtemp(prefix="vitviz-serve-"))

    def say(self, text: str) -> None:
        print(f"serve: {text}", flush=True)

    def start_replica(self, port: int) -> None:
        cmd = [sys.executable, "-m", "ui.serving", "run", str(ROOT / "app.py"), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        self.replicas[port] = subprocess.Popen(cmd, cwd=ROOT, env=self.env)
        self.say(f"replica on 127.0.0.1:{port} pid {self.replicas[port].pid}")

    def start(self) -> None:
        missing = [p for p in ("haproxy", *(("redis-server",) if self.args.replicas > 1 else ())) if not shutil.which(p)]
        if missing:
            sys.exit("\n".join(INSTALL[p] for p in missing))
        if self.args.replicas > 1:
            redis_port = self.args.port + self.args.replicas + 1
            self.others.append(subprocess.Popen(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL))
            self.env["VITVIZ_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            self.say(f"redis on 127.0.0.1:{redis_port}")
        for port in self.ports:
            self.start_replica(port)
        deadline = time.monotonic() + 120
        while not all(healthy(f"http://127.0.0.1:{p}/_stcore/health") for p in self.ports):
            if time.monotonic() > deadline:
                raise SystemExit("serve: the replicas did not start within 2 minutes")
            time.sleep(0.3)
        config = self.folder / "haproxy.cfg"
        config.write_text(haproxy_config(self.args.port, self.args.address, self.ports, not self.args.no_sticky))
        self.others.append(subprocess.Popen(["haproxy", "-db", "-f", str(config)]))
        url = f"http://{'127.0.0.1' if self.args.address in ('0.0.0.0', '::') else self.args.address}:{self.args.port}"
        while not healthy(f"{url}/_stcore/health"):
            if self.others[-1].poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve: HAProxy did not start (config {config})")
            time.sleep(0.2)
        self.say(f"ready: {url} ({self.args.replicas} processes; HAProxy config {config})")

    def watch(self) -> None:
        while True:
            time.sleep(0.5)
            for proc in self.others:
                if proc.poll() is not None:
                    raise SystemExit(f"serve: {proc.args[0]} exited ({proc.returncode}); stopping")
            for port, proc in list(self.replicas.items()):
                if proc.poll() is not None:
                    self.say(f"replica on port {port} exited ({proc.returncode}); starting it again")
                    self.start_replica(port)

    def stop(self, grace_s: float = 10) -> None:
        """SIGTERM to every process at once, SIGKILL to those still running `grace_s` seconds later."""
        self.say("stopping")
        procs = [*self.replicas.values(), *self.others]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{proc.args[0]} (pid {proc.pid}) did not stop within {grace_s:.0f} s: killed")
                proc.kill()
                proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.say("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="127.0.0.1", help="where HAProxy listens (0.0.0.0: the school network)")
    parser.add_argument("--no-sticky", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compose-config", action="store_true",
                        help="print the HAProxy configuration of deploy/compose.yaml and exit")
    args = parser.parse_args()
    if args.compose_config:
        print(compose_config(), end="")
        return
    supervisor = Supervisor(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C stops everything, even where serve was started in the background (which leaves SIGINT ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        supervisor.start()
        supervisor.watch()
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()


if __name__ == "__main__":
    main()
