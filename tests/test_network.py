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


def _palette_figures():
    """Two figures whose cells are a palette PNG in an image trace: an attention matrix and a token map."""
    import numpy as np

    from vitviz.viz.attention import matrix_figure
    from vitviz.viz.embeddings import token_heatmap

    rng = np.random.default_rng(0)
    matrix = rng.random((23, 23))
    return [matrix_figure(matrix / matrix.sum(1, keepdims=True), [f"t{i}" for i in range(23)], title="A"),
            token_heatmap(rng.standard_normal((12, 30)), 5, 40, height=420, selected=7)]


def test_an_image_trace_that_only_draws_becomes_the_same_picture_behind_the_axes():
    import json

    from ui.common import behind_axes, move_behind_axes

    for fig in _palette_figures():
        spec = fig.to_dict()
        (trace,) = [t for t in spec["data"] if t["type"] == "image"]
        image = behind_axes(trace, spec["layout"])
        assert image["source"] == trace["source"] and (image["xref"], image["yref"]) == ("x", "y")
        # one cell is dx × dy around (x0 + i·dx, y0 + j·dy): the picture's corner is half a cell up and left
        assert (image["x"], image["y"]) == (trace["x0"] - 0.5, trace["y0"] - 0.5)
        assert image["layer"] == "below" and image["sizing"] == "stretch"
        # where the two could differ, the trace stays: hover, an axis left to autorange, a y axis upwards
        assert behind_axes({**trace, "hoverinfo": "all"}, spec["layout"]) is None
        free = {**spec["layout"], "xaxis": {k: v for k, v in spec["layout"]["xaxis"].items() if k != "range"}}
        assert behind_axes(trace, free) is None
        upwards = {**spec["layout"], "yaxis": {**spec["layout"]["yaxis"],
                                               "range": sorted(spec["layout"]["yaxis"]["range"])}}
        assert behind_axes(trace, upwards) is None
        # a trace drawn under the picture keeps it a trace (behind the axes it would be under that trace)
        drawn_first = {**spec, "data": [{"type": "scatter", "x": [0], "y": [0]}, *spec["data"]]}
        assert any(t["type"] == "image" for t in move_behind_axes(drawn_first)["data"])
        # the whole figure: a new dict, the figure's own (shared through a cache) left as it was
        before = json.dumps(spec, sort_keys=True)
        sent = move_behind_axes(spec)
        assert json.dumps(spec, sort_keys=True) == before
        assert [t["type"] for t in sent["data"]] == [t["type"] for t in spec["data"] if t["type"] != "image"]
        assert sent["layout"]["images"][0] == image
        assert sent["layout"]["xaxis"]["constrain"] == sent["layout"]["yaxis"]["constrain"] == "domain"
        assert sent["layout"]["yaxis"]["scaleanchor"] == "x"


def test_the_picture_behind_the_axes_has_one_cell_a_pixel():
    from ui.common import behind_axes

    matrix, tokens = _palette_figures()
    for fig, (w, h) in ((matrix, (23, 23)), (tokens, (30, 12))):
        spec = fig.to_dict()
        (trace,) = [t for t in spec["data"] if t["type"] == "image"]
        image = behind_axes(trace, spec["layout"])
        assert (image["sizex"], image["sizey"]) == (w, h)


@pytest.mark.parametrize("page, query", [("pages/position.py", {}), ("pages/projection.py", {}),
                                         ("pages/attention.py", {"atsec": "Whole matrix"})])
def test_a_pages_maps_go_out_as_files_not_inside_its_answer(page, query):
    """The palette maps of the position, projection and attention pages reach the browser as media files (kept by
    its cache), none as a data URI inside the websocket answer."""
    import json

    from .apptest import page_app

    at = page_app(page, **query)
    specs = [json.loads(chart.proto.spec) for chart in at.main.get("plotly_chart")]
    sources = [image["source"] for spec in specs for image in spec["layout"].get("images", ())]
    assert specs and all(trace["type"] != "image" for spec in specs for trace in spec["data"])
    assert any(source.endswith(".png") for source in sources)
    assert all(re.fullmatch(r"/mock/media/[0-9a-f]+\.(png|jpg|webp)", source) for source in sources), sources


SHARED = {}  # the figure a test's AppTest script draws: the same object in the test and in the script


def _draw_the_shared_figure():
    from tests.test_network import SHARED
    from ui.common import chart

    chart(SHARED["figure"], alt="a mask")


def test_a_shared_figure_is_sent_from_one_dict_that_streamlit_leaves_as_it_was():
    """ui.common.SentFigure: a cached figure's dict is made once; st.plotly_chart sends exactly the JSON of the plain
    figure's own dict, run after run; and after those runs (Streamlit reads the dict and serialises it) the dict is
    as it was."""
    import copy
    import json

    import numpy as np
    import plotly.graph_objects as go
    import plotly.io as pio
    from streamlit.testing.v1 import AppTest

    from ui.common import SentFigure, shared_figure
    from vitviz.viz import swin as sv

    mask = np.where(np.arange(9)[:, None] // 3 == np.arange(9)[None] // 3, 0.0, -100.0)
    spec = sv.mask_figure(mask, np.arange(9).reshape(3, 3) // 3, title="mask", query=4)
    plain, sent = go.Figure(spec, _validate=False), shared_figure(spec)
    assert isinstance(sent, SentFigure) and shared_figure(sent) is sent and sent.to_dict() is sent.to_dict()
    before = copy.deepcopy(sent.to_dict())
    SHARED["figure"] = sent
    at = AppTest.from_function(_draw_the_shared_figure).run()
    first = at.get("plotly_chart")[0].proto.spec
    assert at.run().get("plotly_chart")[0].proto.spec == first
    assert json.loads(first) == json.loads(pio.to_json(plain.to_dict(), validate=False))
    assert sent.to_dict() == before and len(before["data"]) == 2  # the heat map and its crosses


@pytest.mark.browser
def test_the_picture_behind_the_axes_draws_the_image_traces_pixels(chromium):
    """Chromium draws each figure twice, as built (an image trace) and as sent (`move_behind_axes`, the picture a
    PNG file, with the app's CSS): the same pixels, the cells as sharp, the axes as wide."""
    import base64

    import plotly

    from ui.common import move_behind_axes
    from ui.presenter import BASE_CSS

    script = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    files = {"/plotly.js": (script, "application/javascript"),
             "/": (f"<style>{BASE_CSS}</style><div id=a></div><div id=b></div>"
                   "<script src=/plotly.js></script>".encode(), "text/html")}
    page = chromium.new_page(viewport={"width": 700, "height": 700})
    page.route("http://vitviz.test/**", lambda route: route.fulfill(
        body=files[urllib.parse.urlparse(route.request.url).path][0],
        content_type=files[urllib.parse.urlparse(route.request.url).path][1]))
    try:
        page.goto("http://vitviz.test/")
        for n, fig in enumerate(_palette_figures()):
            built = fig.to_dict()
            sent = move_behind_axes(built)
            (image,) = sent["layout"]["images"]
            assert all(t["type"] != "image" for t in sent["data"])
            files[f"/cells{n}.png"] = (base64.b64decode(image["source"].split(",", 1)[1]), "image/png")
            image["source"] = f"/cells{n}.png"  # a file, as cacheable_pictures makes it
            for div, spec in (("a", built), ("b", sent)):
                page.evaluate("([div, spec]) => Plotly.newPlot(div, spec.data, {...spec.layout, width: 640})",
                              [div, spec])
                page.wait_for_function("div => [...document.querySelectorAll('#' + div + ' image')]"
                                       ".every(i => i.getBBox().width > 0)", arg=div)
            # A picture is decoded and painted a moment after plotly places it: compared again until the two agree
            # (at most 10 s); a real difference never does
            differ = 1.0
            for _ in range(50):
                page.wait_for_timeout(200)
                a, b = (np_image(page.locator(f"#{div} .main-svg").first.screenshot()) for div in "ab")
                assert a.shape == b.shape
                differ = (abs(a.astype(int) - b.astype(int)).max(axis=2) > 24).mean()
                if differ < 0.002:
                    break
            assert differ < 0.002, differ
    finally:
        page.close()


def np_image(png: bytes):
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.mark.browser
def test_the_websocket_compresses_with_a_32_kB_window(app_url, page):
    """ui.serving.wide_websocket_window: the server's answer to Chromium's offer of permessage-deflate names the
    15-bit window (uvicorn's own answer names 12), so a script run's repeats of the previous one are found."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    answers = []
    cdp.on("Network.webSocketHandshakeResponseReceived", lambda event: answers.append(
        {k.lower(): v for k, v in event["response"]["headers"].items()}))
    goto(page, app_url)
    (answer,) = answers
    extension = answer["sec-websocket-extensions"]
    assert extension.startswith("permessage-deflate") and f"server_max_window_bits={serving.WS_WINDOW_BITS}" in \
        extension.replace(" ", ""), extension
