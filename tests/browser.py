"""Drive the real app in Debian's Chromium with Playwright (no browser download, ever)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]


def require_chromium() -> None:
    """Skip on machines without Chromium, unless CI says the browser tests must run."""
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMIUM)):
        if os.environ.get("VITVIZ_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing but VITVIZ_REQUIRE_BROWSER is set")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_problems(text: str) -> list[str]:
    """The warnings, errors and tracebacks in a Streamlit server's log."""
    return [line for line in text.splitlines()
            if any(level in line for level in (" WARNING ", " ERROR ", " CRITICAL ")) or line.startswith("Traceback")]


@contextmanager
def streamlit_server(env: dict | None = None):
    """Start `streamlit run app.py` on a free loopback port, as `tasks.py run` does (through ui/serving.py: static
    bundles gzipped); yield its base URL; stop it afterwards. Fails (after the tests that used it) if the server
    logged a warning, an error or a traceback."""
    port, clean_exit = free_port(), False
    cmd = [sys.executable, "-m", "ui.serving", "run", "app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    log = open(ROOT / f".streamlit-test-{port}.log", "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start: {(ROOT / log.name).read_text()[-2000:]}")
            time.sleep(0.3)
        yield url, proc
        clean_exit = True
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        text = Path(log.name).read_text(errors="replace")
        if "Traceback" in text:  # the page shows a redacted message only: pytest prints this with a failure
            print("server log with a traceback:\n" + text[max(0, text.index("Traceback") - 200):][-8000:])
        Path(log.name).unlink(missing_ok=True)
    problems = log_problems(text)
    if clean_exit and problems:
        raise AssertionError("the server logged:\n" + "\n".join(problems[:20]))


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the script run triggered by the last interaction has finished."""
    page.wait_for_timeout(300)  # let the rerun start before waiting for it to end
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_timeout(200)


def goto(page, base: str, path: str = "", timeout_s: float = 60, **params) -> None:
    query = f"?{urlencode(params)}" if params else ""
    page.goto(f"{base}/{path}{query}", wait_until="domcontentloaded", timeout=timeout_s * 1000)
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_s * 1000)
    wait_idle(page, timeout_s * 1000)


def exceptions(page) -> list[str]:
    """Texts of any Streamlit exception boxes or error tracebacks on the page."""
    return [e.inner_text() for e in page.locator("[data-testid='stException']").all()]


def assert_healthy(page) -> None:
    found = exceptions(page)
    assert not found, found
    assert "Traceback" not in page.locator("[data-testid='stApp']").inner_text()


def open_tab(page, label: str) -> None:
    """Click a tab of the page's lazy tabs and wait for the page to draw it."""
    page.get_by_test_id("stMain").get_by_role("tab", name=label, exact=True).click()
    wait_idle(page)
    assert_healthy(page)


COUNTER = "[data-testid='lesson-counter']"  # the lesson bar's step counter, "3 / 8"


def counter(page) -> str:
    """The lesson bar's step counter as shown, "3 / 8"."""
    return page.locator(COUNTER).inner_text().strip()


def wait_step(page, n: int, timeout: float = 60_000) -> None:
    """Wait until the lesson bar shows step n and the run that drew it has ended."""
    page.wait_for_function(f"() => {{ const c = document.querySelector(\"{COUNTER}\"); "
                           f"return c && c.innerText.trim().startsWith('{n} /'); }}", timeout=timeout)
    wait_idle(page)


def press(page, key: str) -> None:
    """A presentation clicker's key, with no widget focused (a focused field or slider keeps its keys), once the
    page has drawn its lesson bar (a key pressed while a new page is still loading has no button to press yet)."""
    page.wait_for_selector(".st-key-lesson-next button", timeout=60_000)
    wait_idle(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press(key)
