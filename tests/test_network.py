"""Streamlit's static bundles arrive gzipped (ui/serving.py) in both ways the app is served: one process (the browser
tests' shared server, started as `tasks.py run` starts it) and `tasks.py serve` (HAProxy in front); each body
decodes to exactly the file Streamlit ships. And the launcher's parts on their own: the precompressed cache, the
Accept-Encoding rule, the fallback to plain serving when Streamlit's internals change."""
from __future__ import annotations

import gzip
import random
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit import file_util

from ui import plotly_bundle, serving

from .browser import goto
from .school import serving as school_serving
from .test_serve import require_servers

STATIC = Path(file_util.get_static_dir())


def fetch(browser, url: str, **headers: str) -> tuple[dict[str, str], bytes]:
    """Headers (names in lower case) and body of a GET, as the server sent them (urllib decodes nothing)."""
    with browser.open(urllib.request.Request(url, headers=headers), timeout=30) as response:
        return {k.lower(): v for k, v in response.headers.items()}, response.read()


def bundles_of(browser, base: str) -> list[str]:
    """The scripts and stylesheet the page's HTML loads first, those of 10 kB or more (a smaller one's headers
    outweigh what gzip would save: served as it is), and Plotly's bundle (loaded later, the largest)."""
    _, html = fetch(browser, f"{base}/")
    found = re.findall(r'(?:src|href)="\.?/?(static/(?:js|css)/[^"]+\.(?:js|css))"', html.decode())
    plotly = next((STATIC / "static" / "js").glob("PlotlyChart.*.js"))
    first = sorted(p for p in set(found) if (STATIC / p).stat().st_size >= 10_000)
    return first + [plotly.relative_to(STATIC).as_posix()]


def served(path: str, original: bytes) -> bytes:
    """What a browser that accepts gzip gets for Streamlit's file `path`: the file, but the chart chunk with Plotly's
    cartesian bundle inside where this machine fetched it (ui/plotly_bundle.py)."""
    if Path(path).match(plotly_bundle.CHUNK_GLOB) and plotly_bundle.ASSET.exists():
        return plotly_bundle.patch(original.decode(), plotly_bundle.ASSET.read_text()).encode()
    return original


def check_compressed(base: str) -> None:
    # Cookies kept, as a browser does: through serve, the page's answer sets HAProxy's cookie, and an answer that
    # sets it is marked `Cache-Control: private` (HAProxy's `nocache`), the bundles' answers after it are not
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    paths = bundles_of(browser, base)
    assert any(p.endswith(".js") for p in paths) and any(p.endswith(".css") for p in paths), paths
    for path in paths:
        original = (STATIC / path).read_bytes()
        headers, body = fetch(browser, f"{base}/{path}", **{"Accept-Encoding": "gzip, deflate"})
        assert headers.get("content-encoding") == "gzip", (path, headers)
        assert gzip.decompress(body) == served(path, original), path
        assert len(body) < len(original), path
        assert "accept-encoding" in headers.get("vary", "").lower(), (path, headers)
        assert headers["cache-control"] == "public, immutable, max-age=31536000", path
        assert headers["content-type"].startswith("application/javascript" if path.endswith(".js") else "text/css")
        # A client that takes no gzip, or asks for a range, gets Streamlit's own plain bytes
        headers, body = fetch(browser, f"{base}/{path}", **{"Accept-Encoding": "identity"})
        assert "content-encoding" not in headers and body == original, path
        assert "accept-encoding" in headers.get("vary", "").lower(), (path, headers)
        headers, body = fetch(browser, f"{base}/{path}", **{"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
        assert "content-encoding" not in headers and body == original[:100], path


@pytest.mark.browser
def test_bundles_arrive_gzipped_from_one_process(app_url):
    check_compressed(app_url)


@pytest.mark.browser
def test_bundles_arrive_gzipped_through_serve(tmp_path):
    require_servers()
    with school_serving(tmp_path, replicas=1) as (url, _base, log_path):
        check_compressed(url)
    assert "static bundles served gzipped" in log_path.read_text()


@pytest.mark.browser
def test_pictures_are_cacheable_since_their_url_names_their_content(app_url, page):
    from streamlit.runtime.memory_media_file_storage import _calculate_file_id

    goto(page, app_url)
    src = page.get_by_test_id("stSidebar").locator("img").first.get_attribute("src")
    assert "/media/" in src, src
    browser = urllib.request.build_opener()
    headers, body = fetch(browser, urllib.parse.urljoin(app_url + "/", src))
    assert headers["cache-control"] == serving.MEDIA_CACHE_CONTROL
    # Why a URL may be cached: Streamlit names the file by a hash of its bytes and type
    file_id = src.rsplit("/", 1)[1].split(".")[0]
    assert _calculate_file_id(body, headers["content-type"]) == file_id
    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch(browser, f"{app_url}/media/{'0' * 56}.png")
    assert missing.value.code == 404 and "cache-control" not in {k.lower() for k in missing.value.headers}


@pytest.mark.parametrize("value, accepted", [
    ("gzip, deflate, br, zstd", True), ("gzip", True), ("GZIP;q=0.5", True), ("*", True), ("br, gzip;q=1.0", True),
    ("", False), ("identity", False), ("br", False), ("gzip;q=0", False), ("deflate, gzip; q=0.000", False),
    ("x-gzip-not", False),
])
def test_accept_encoding(value, accepted):
    assert serving.accepts_gzip(value) is accepted


def make_static(root: Path) -> dict[str, bytes]:
    files = {
        "index.html": b"<html>" + b"page " * 400 + b"</html>",  # the page itself: never precompressed
        "static/js/app.abc.js": b"function f(x) { return x + 1; }\n" * 200,
        "static/css/app.def.css": b".a { color: red; }\n" * 100,
        "static/js/tiny.js": b"let a=1;",  # under MIN_BYTES
        "static/js/noise.js": random.Random(0).randbytes(4096),  # gzip cannot shrink it by a tenth
        "static/media/font.woff2": b"\0" * 5000,  # compressed already, by format
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_precompress_gzips_each_text_bundle_once(tmp_path):
    files = make_static(tmp_path / "static_dir")
    found = serving.precompress(tmp_path / "static_dir", tmp_path / "cache")
    assert sorted(found) == ["static/css/app.def.css", "static/js/app.abc.js"]
    for rel, gz in found.items():
        assert gzip.decompress(gz.read_bytes()) == files[rel]
        assert tmp_path / "cache" in gz.parents
    stamps = {rel: gz.stat().st_mtime_ns for rel, gz in found.items()}
    again = serving.precompress(tmp_path / "static_dir", tmp_path / "cache")
    assert again == found and {rel: gz.stat().st_mtime_ns for rel, gz in again.items()} == stamps
    # Another Streamlit (other files) gets a folder of its own
    (tmp_path / "static_dir" / "static/js/new.123.js").write_bytes(b"var x = 'new';\n" * 100)
    newer = serving.precompress(tmp_path / "static_dir", tmp_path / "cache")
    assert len(newer) == 3 and newer["static/js/app.abc.js"].parent != found["static/js/app.abc.js"].parent


def test_streamlit_internals_changed_means_plain_serving(monkeypatch, capsys):
    from streamlit.web.server.starlette import starlette_server

    build = starlette_server.create_starlette_app
    monkeypatch.delattr(starlette_server, "create_starlette_app")
    assert serving.install() is False
    assert "static files are served uncompressed (AttributeError" in capsys.readouterr().err
    monkeypatch.setattr(starlette_server, "create_starlette_app", build, raising=False)


def test_unwritable_cache_means_plain_serving(monkeypatch, capsys, tmp_path):
    from streamlit.web.server.starlette import starlette_server

    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    monkeypatch.setattr(serving, "CACHE", blocker / "static")  # a folder inside a file: cannot be made
    monkeypatch.setattr(serving, "SPARE_CACHE", blocker / "spare")
    build = starlette_server.create_starlette_app
    assert serving.install() is False
    assert "static files are served uncompressed" in capsys.readouterr().err
    assert starlette_server.create_starlette_app is build


def test_install_wraps_streamlit_app(monkeypatch, tmp_path, capsys):
    from streamlit.web.server.starlette import starlette_server

    make_static(tmp_path / "static_dir")
    monkeypatch.setattr(file_util, "get_static_dir", lambda: str(tmp_path / "static_dir"))
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    monkeypatch.setattr(serving, "CACHE", blocker / "static")  # read-only app folder: the spare cache is used
    monkeypatch.setattr(serving, "SPARE_CACHE", tmp_path / "cache")
    monkeypatch.setattr(starlette_server, "create_starlette_app", lambda runtime: SimpleNamespace(runtime=runtime))
    assert serving.install() is True
    app = starlette_server.create_starlette_app("runtime")
    assert isinstance(app, serving.CompressedStatic) and app.runtime == "runtime"  # its attributes are Streamlit's
    assert sorted(app.bundles) == ["static/css/app.def.css", "static/js/app.abc.js"]
    assert all(tmp_path / "cache" in gz.parents for gz in app.bundles.values())
    assert "2 static bundles served gzipped" in capsys.readouterr().err


def test_a_figure_drawn_outside_a_streamlit_run_keeps_its_pictures():
    """ui.common.cacheable_pictures needs the runtime's media files: in bare mode (a script run by `python`) the
    figure goes out as it is, data URIs and all."""
    import plotly.graph_objects as go

    from ui.common import cacheable_pictures

    fig = go.Figure(layout={"images": [{"source": "data:image/png;base64,iVBORw0KGgo=", "x": 0, "y": 0}]})
    assert cacheable_pictures(fig) is fig
    spec = fig.to_dict()
    assert cacheable_pictures(spec) is spec
