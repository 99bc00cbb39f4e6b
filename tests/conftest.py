"""Test-wide settings: never touch the network, and start every AppTest with empty data caches."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_data_cache():
    """st.cache_data outlives AppTest instances in one process; clear it so tests don't see each other."""
    import streamlit as st

    st.cache_data.clear()
    yield


@pytest.fixture(scope="session")
def app_url():
    """Base URL of one real `streamlit run app.py` shared by the browser tests of a run."""
    from .browser import require_chromium, streamlit_server

    require_chromium()
    with streamlit_server() as (url, _proc):
        yield url


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    from .browser import CHROMIUM, CHROMIUM_ARGS, require_chromium

    require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context (its own Streamlit session) at 1400 × 900, as on a projector."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.grant_permissions(["camera"])
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def redis_url():
    """A Redis server on a free loopback port (Debian's redis-server), for the shared class state."""
    import shutil
    import subprocess
    import time

    from .browser import free_port

    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("VITVIZ_REQUIRE_SERVERS"):
            pytest.fail("redis-server is missing but VITVIZ_REQUIRE_SERVERS is set")
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)
