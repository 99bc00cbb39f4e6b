"""Plotly's cartesian bundle inside Streamlit's chart chunk (ui/plotly_bundle.py): the patch on Streamlit's real chunk
leaves Streamlit's code around plotly.js byte for byte, a chunk of another shape is served as it is, the download is
checked against npm's hash and an offline machine is told once; in Chromium, the charts of every kind the app draws
come from the cartesian bundle."""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from playwright.sync_api import expect
from streamlit import file_util

from ui import plotly_bundle, serving

from .browser import assert_healthy, goto

STATIC = Path(file_util.get_static_dir())
CHUNK = next((STATIC / "static" / "js").glob(plotly_bundle.CHUNK_GLOB))
FAKE_UMD = "(function(r,f){typeof module==`object`&&module.exports?module.exports=f():r.moduleName=f()})(self,()=>({version:`x`}))"


def require_bundle() -> str:
    if not plotly_bundle.ASSET.exists():
        if os.environ.get("VITVIZ_REQUIRE_BROWSER"):
            pytest.fail(f"{plotly_bundle.ASSET} is missing but VITVIZ_REQUIRE_BROWSER is set (tasks.py fetches it)")
        pytest.skip("Plotly's cartesian bundle was not fetched (python3 -m ui.plotly_bundle)")
    return plotly_bundle.ASSET.read_text()


def test_the_patch_replaces_plotly_and_nothing_else_in_streamlits_chunk():
    chunk = CHUNK.read_text()
    patched = plotly_bundle.patch(chunk, FAKE_UMD)
    start = chunk.index(plotly_bundle.MODULE_OPEN)
    end = chunk.index(plotly_bundle.UMD_CLOSE) + len(plotly_bundle.UMD_CLOSE)
    assert patched[:start] == chunk[:start] and patched.endswith(chunk[end:])
    assert patched[start:len(patched) - len(chunk) + end] == "W=n(((exports,module)=>{" + FAKE_UMD + "\n}))"
    assert end - start > 4_000_000  # the whole of plotly.js went: Streamlit's React code around it stays
    assert "window.Plotly=e" not in patched and "plotly.js v4 (MapLibre)" in patched  # Streamlit's own text kept


@pytest.mark.parametrize("chunk", [
    "export default 1;",  # no plotly module at all
    "W=n(((e,t,n)=>{" + "x" * 10 + plotly_bundle.UMD_CLOSE,  # opened differently
    plotly_bundle.MODULE_OPEN + plotly_bundle.UMD_OPEN + "a" + plotly_bundle.UMD_CLOSE * 2,  # two ends
])
def test_a_chunk_of_another_shape_is_not_patched(chunk):
    assert plotly_bundle.patch(chunk, FAKE_UMD) is None


def test_precompress_puts_the_bundle_into_the_chart_chunk_only(tmp_path, capsys):
    static = tmp_path / "static_dir"
    (static / "static" / "js").mkdir(parents=True)
    chunk = "import x;" * 200 + plotly_bundle.MODULE_OPEN + plotly_bundle.UMD_OPEN + "plot" * 300 \
        + plotly_bundle.UMD_CLOSE + "export{};"
    (static / "static/js/PlotlyChart.abc.js").write_text(chunk)
    (static / "static/js/other.def.js").write_text("var other = 1;\n" * 200)
    bundle = tmp_path / "plotly.js"
    bundle.write_text(FAKE_UMD * 40)
    found = serving.precompress(static, tmp_path / "cache", bundle)
    assert gzip.decompress(found["static/js/PlotlyChart.abc.js"].read_bytes()).decode() == \
        plotly_bundle.patch(chunk, FAKE_UMD * 40)
    assert gzip.decompress(found["static/js/other.def.js"].read_bytes()).decode() == "var other = 1;\n" * 200
    plain = serving.precompress(static, tmp_path / "cache", tmp_path / "not-fetched.js")  # a folder of its own
    assert gzip.decompress(plain["static/js/PlotlyChart.abc.js"].read_bytes()).decode() == chunk
    (static / "static/js/PlotlyChart.abc.js").write_text(chunk.replace(plotly_bundle.UMD_CLOSE, ""))
    (static / "static/js/extra.js").write_text("var changed = 1;\n" * 100)  # another Streamlit: a new folder
    odd = serving.precompress(static, tmp_path / "cache", bundle)
    assert gzip.decompress(odd["static/js/PlotlyChart.abc.js"].read_bytes()).decode() == \
        chunk.replace(plotly_bundle.UMD_CLOSE, "")
    assert "Streamlit's full Plotly is served" in capsys.readouterr().err


def tarball(member: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo(plotly_bundle.MEMBER)
        info.size = len(member)
        tar.addfile(info, io.BytesIO(member))
    return out.getvalue()


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A registry on loopback serving one tarball; the asset kept in tmp_path."""
    import http.server
    import threading

    served = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = served.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.setattr(plotly_bundle, "ASSET", tmp_path / "plotly" / "bundle.min.js")
    path = f"/{plotly_bundle.PACKAGE}/-/{plotly_bundle.PACKAGE}-{plotly_bundle.VERSION}.tgz"
    yield lambda body: served.__setitem__(path, body)
    server.shutdown()


def test_fetch_checks_npms_hash(registry, monkeypatch):
    good = tarball(FAKE_UMD.encode())
    monkeypatch.setattr(plotly_bundle, "INTEGRITY", "sha512-" + base64.b64encode(hashlib.sha512(good).digest()).decode())
    registry(good[:20] + bytes([good[20] ^ 1]) + good[21:])  # one bit changed on the way
    with pytest.raises(OSError, match="does not match"):
        plotly_bundle.fetch()
    assert not plotly_bundle.ASSET.exists()
    registry(good)
    assert plotly_bundle.fetch().read_text() == FAKE_UMD


def test_an_offline_machine_is_told_once_and_served_the_full_bundle(registry, capsys):
    # nothing served: the registry answers 404, as an unreachable one fails
    assert plotly_bundle.ensure() is False
    assert "Plotly's full bundle is served" in capsys.readouterr().err
    assert plotly_bundle.ensure() is False and capsys.readouterr().err == ""  # not tried again at every start


@pytest.mark.browser
def test_charts_draw_from_the_cartesian_bundle_and_clicks_select(page, app_url):
    """The kinds of trace the app draws, drawn by plotly.js's cartesian bundle. Every browser test runs with it (the
    tests' server starts as `tasks.py run` does): clicks that select are checked there (attention, MobileViT)."""
    require_bundle()
    goto(page, app_url)
    kinds = set()
    for key, params in (("patching", {}), ("registers", {}), ("position", {}), ("projection", {})):
        goto(page, app_url, key, **params)
        assert_healthy(page)
        expect(page.get_by_test_id("stPlotlyChart").first.locator(".main-svg").first).to_be_attached()
        assert page.evaluate("() => window.Plotly.version") == plotly_bundle.VERSION
        kinds |= set(page.evaluate("""() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
            .flatMap(g => (g.data || []).map(t => t.type || 'scatter'))"""))
    assert {"scatter", "heatmap", "bar"} <= kinds, kinds
