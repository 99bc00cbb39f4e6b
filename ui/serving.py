"""Start Streamlit with its static bundles served compressed: `python -m ui.serving run app.py [streamlit options]`.

Streamlit 1.67 serves `/static/` uncompressed on purpose (`_should_bypass_gzip` in its Starlette gzip middleware:
gzip on every request costs CPU at the origin, and "production usually sits behind a proxy that compresses"). A
school's server has no CDN and often no proxy, and its bottleneck is the shared Wi-Fi: Plotly's bundle alone is
4.7 MB as served, 1.4 MB gzipped. So this launcher gzips the hashed bundles once (gzip -9, stdlib) into a cache
folder outside the package, `.cache/static/<key>/`, and serves those files, with `Content-Encoding: gzip`, `Vary:
Accept-Encoding` and Streamlit's own immutable `Cache-Control`, to every browser that accepts gzip. No CPU per
request: the bytes come from a file, as Streamlit's own do.

The icon font is cut to the icons the app and Streamlit's screens can show (ui/icon_font.py): 12 kB instead of 375 kB;
Source Sans, upright and italic, to the characters the app writes: ~60 kB instead of 308 kB.
The chart chunk's copy carries Plotly's cartesian bundle instead of the full plotly.js where it was fetched
(ui/plotly_bundle.py): 0.5 MB instead of 1.4 MB for every student's first chart.

Pictures (`/media/`) keep Streamlit's bytes but become cacheable: Streamlit names each media file by a hash of its
content and type, so a URL never changes meaning, yet it sends them with no Cache-Control and a browser fetched
every picture again on every visit. They are marked `private, max-age=86400, immutable` (a day: one browser's
lessons, never a shared cache's). Everything else (the page, the websocket's messages) is Streamlit's, untouched.

The websocket's compression (`server.enableWebsocketCompression`, on in .streamlit/config.toml) gets a 32 kB window
instead of uvicorn's 4 kB (`WS_WINDOW_BITS`): a script run repeats much of the previous one (the page's text, its
controls, the chrome) and a 4 kB window finds none of it, so a tab opened or a page revisited sent it all again. A
whole tour's websocket: 578 kB with the 4 kB window, 385 kB with 32 kB (bench/bench_network.py's frames, zlib on this
host), no more CPU; ~256 kB of compressor memory per open tab instead of ~32 kB (thirty students: 8 MB).

It wraps the ASGI app that Streamlit builds (`starlette_server.create_starlette_app`). Where a Streamlit upgrade
renames what it wraps, or the cache cannot be written, it prints one line saying so and Streamlit serves as it
always did: never a broken app.
"""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import sys
import tempfile
from pathlib import Path

from ui import icon_font as icon_font_module
from ui import plotly_bundle

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "static"
SPARE_CACHE = Path(tempfile.gettempdir()) / "vitviz-static"  # where the app's folder is read-only (a container)
# Text formats of the bundles; fonts (woff2) and pictures are compressed already.
COMPRESSIBLE = frozenset({".js", ".mjs", ".css", ".json", ".svg", ".map", ".txt", ".wasm"})
MIN_BYTES = 1024  # below this the headers outweigh what gzip saves
KEEP_RATIO = 0.9  # a file gzip shrinks by less than 10 % is served as it is
WS_WINDOW_BITS = 15  # the server's permessage-deflate window, 2**15 bytes (uvicorn's websockets-sansio sets 12)
WS_MEM_LEVEL = 8  # zlib's default memLevel (uvicorn sets 5)


def say(text: str) -> None:
    print(f"vitviz serving: {text}", file=sys.stderr, flush=True)


def cache_key(static_dir: Path, files: list[Path], plotly: str = "") -> str:
    """A name for this exact set of bundles (their paths and sizes: hashed names change with their content) and the
    Plotly bundle put into the chart chunk, if any."""
    listing = "\n".join([f"{f.relative_to(static_dir)}:{f.stat().st_size}" for f in files] + [plotly] * bool(plotly))
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def _write_new(path: Path, data: bytes) -> None:
    """Write a cache file under a temporary name, then rename it: processes starting together (`tasks.py serve`)
    never read half a file. Readable by every user: the image's build writes the cache as root."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def _with_plotly(chunk: Path, data: bytes, plotly: Path) -> bytes:
    """The chart chunk with `plotly` inside, or its own bytes (with one line saying so) where it cannot be patched."""
    patched = plotly_bundle.patch(data.decode(), plotly.read_text())
    if patched is None:
        say(f"{chunk.name} is not shaped as ui/plotly_bundle.py expects: Streamlit's full Plotly is served")
        return data
    return patched.encode()


def precompress(static_dir: Path, cache: Path = CACHE, plotly: Path | None = plotly_bundle.ASSET) -> dict[str, Path]:
    """Gzip (-9) every compressible hashed bundle under `static_dir`/static once; returns their gzipped copies by
    URL path relative to Streamlit's static mount ("static/js/x.js"). Files already in the cache are reused; each
    new one is written to a temporary name and renamed, so processes starting together (`tasks.py serve`) never
    read half a file. Where the file `plotly` exists, the chart chunk's copy holds that smaller Plotly
    (ui/plotly_bundle.py)."""
    files = sorted(f for f in (static_dir / "static").rglob("*")
                   if f.suffix in COMPRESSIBLE and f.is_file() and f.stat().st_size >= MIN_BYTES)
    plotly = plotly if plotly is not None and plotly.exists() else None
    folder = cache / cache_key(static_dir, files, plotly.name if plotly else "")
    bundles = {}
    for file in files:
        rel = file.relative_to(static_dir).as_posix()
        gz = folder / f"{rel}.gz"
        skip = folder / f"{rel}.raw"  # marks a file gzip does not shrink enough
        if not gz.exists() and not skip.exists():
            data = file.read_bytes()
            if plotly and file.match(plotly_bundle.CHUNK_GLOB):
                data = _with_plotly(file, data, plotly)
            packed = gzip.compress(data, compresslevel=9, mtime=0)
            target, body = (gz, packed) if len(packed) < KEEP_RATIO * len(data) else (skip, b"")
            _write_new(target, body)
        if gz.exists():
            bundles[rel] = gz
    return bundles


def header(scope, name: bytes) -> str:
    """A request header's value ("" when absent; ASGI gives the names in lower case)."""
    return ", ".join(v.decode("latin-1") for k, v in scope["headers"] if k == name)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value lists gzip (or *) without q=0."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        q = params.replace(" ", "").removeprefix("q=")
        if coding.strip() in ("gzip", "*") and q not in ("0", "0.0", "0.00", "0.000"):
            return True
    return False


MEDIA_CACHE_CONTROL = "private, max-age=86400, immutable"


def icon_font(static_dir: Path, cache: Path) -> dict[str, Path]:
    """Streamlit's icon font cut to the icons that can show (ui/icon_font.py), made once: {URL path: the cut font};
    empty, with one line saying so, where it cannot be made."""
    font = icon_font_module.font_path(static_dir)
    if font is None:
        return {}
    rel = font.relative_to(static_dir).as_posix()
    names = icon_font_module.app_icons()
    # a new cut when the app names another icon, Streamlit's scripts change (their names hash their content) or the
    # rule for Streamlit's own icons does
    scripts = sorted(p.name for p in (static_dir / "static" / "js").glob("*.js"))
    key = " ".join(sorted(names) + scripts + [icon_font_module.STREAMLIT_ICON.pattern])
    out = cache / f"icons-{hashlib.sha256(key.encode()).hexdigest()[:12]}" / rel
    if not out.exists():
        try:
            data, _kept = icon_font_module.subset(font.read_bytes(),
                                                  names | icon_font_module.streamlit_icons(static_dir))
        except Exception as exc:  # noqa: BLE001 (fontTools' own errors have no common base): the whole font, served
            say(f"Streamlit's whole icon font is served ({type(exc).__name__}: {exc})")
            return {}
        try:
            _write_new(out, data)
        except OSError as exc:
            say(f"Streamlit's whole icon font is served (the cut one cannot be kept: {exc})")
            return {}
    return {rel: out}


def text_fonts(static_dir: Path, cache: Path) -> dict[str, Path]:
    """Streamlit's Source Sans fonts and KaTeX's AMS font cut to the characters the app writes (ui/icon_font.py), made
    once: {URL path: the cut font}; a font that cannot be cut is left out (served whole), with one line saying so."""
    fonts = icon_font_module.text_font_paths(static_dir)
    characters = icon_font_module.app_characters()
    # a new cut when the app writes a new character, Streamlit ships other fonts (their names hash their content) or
    # the blocks kept whole change
    key = hashlib.sha256((" ".join(f"{font.name}{ranges}" for font, ranges in fonts)
                          + "".join(map(chr, sorted(characters)))).encode()).hexdigest()[:12]
    cut = {}
    for font, ranges in fonts:
        rel = font.relative_to(static_dir).as_posix()
        out = cache / f"text-{key}" / rel
        try:
            if not out.exists():
                _write_new(out, icon_font_module.subset_text(font.read_bytes(), characters, ranges))
        except Exception as exc:  # noqa: BLE001 (fontTools' own errors have no common base): the whole font, served
            say(f"Streamlit's whole {font.name.split('.')[0]} is served ({type(exc).__name__}: {exc})")
            continue
        cut[rel] = out
    return cut


class CompressedStatic:
    """ASGI wrapper: a GET or HEAD of a precompressed bundle from a browser that accepts gzip gets the gzipped file,
    one of a `replaced` file (a cut font) that file; a media file gets a Cache-Control; every other request
    goes to Streamlit's app unchanged."""

    def __init__(self, app, bundles: dict[str, Path], base_url: str, cache_control: str,
                 replaced: dict[str, Path] | None = None):
        self.app, self.bundles, self.cache_control, self.replaced = app, bundles, cache_control, replaced or {}
        self.prefix = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"

    async def __call__(self, scope, receive, send):
        rel = None
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and scope["path"].startswith(self.prefix):
            rel = scope["path"][len(self.prefix):]
        if rel is not None and rel.startswith("media/"):
            await self.app(scope, receive, _add_headers(send, (b"cache-control", MEDIA_CACHE_CONTROL.encode()),
                                                         only_ok=True))
            return
        if rel in self.replaced and not header(scope, b"range"):
            from starlette.responses import FileResponse

            response = FileResponse(self.replaced[rel], media_type=mimetypes.guess_type(rel)[0] or "font/woff2",
                                    headers={"Cache-Control": self.cache_control})
            del response.headers["accept-ranges"]  # ranges are Streamlit's, of its own file
            await response(scope, receive, send)
            return
        if rel not in self.bundles:
            await self.app(scope, receive, send)
            return
        # A range request (not a browser loading a script) gets Streamlit's plain bytes, whose ranges it serves
        if header(scope, b"range") or not accepts_gzip(header(scope, b"accept-encoding")):
            # Vary: a cache between Streamlit and a browser must not give these plain bytes to one that accepts gzip
            await self.app(scope, receive, _add_headers(send, (b"vary", b"Accept-Encoding")))
            return
        from starlette.responses import FileResponse

        # Guessed per request, as Streamlit does: its runtime registers its types (application/javascript) at start
        media_type = mimetypes.guess_type(rel)[0] or "application/octet-stream"
        response = FileResponse(self.bundles[rel], media_type=media_type, headers={
            "Content-Encoding": "gzip", "Vary": "Accept-Encoding", "Cache-Control": self.cache_control})
        del response.headers["accept-ranges"]  # ranges are Streamlit's, of the plain file (above)
        await response(scope, receive, send)

    def __getattr__(self, name):
        # Streamlit's server may read the app's attributes (state, router): they are its app's
        if name == "app":  # not set yet (a copy being made): no endless lookup
            raise AttributeError(name)
        return getattr(self.app, name)


def _add_headers(send, header: tuple[bytes, bytes], only_ok: bool = False):
    """`send` with `header` added to the response unless it has one of that name (`only_ok`: to a 200 only, not
    to an error or a range)."""
    async def sending(message):
        if message["type"] == "http.response.start" and (message["status"] == 200 or not only_ok):
            headers = message.get("headers", [])
            if all(name.lower() != header[0] for name, _ in headers):
                message = {**message, "headers": [*headers, header]}
        await send(message)
    return sending


def wide_websocket_window() -> bool:
    """Make uvicorn's websocket compress with a `WS_WINDOW_BITS` window (the client's own window is left as uvicorn
    asks: what a browser sends is small). False, with one line on stderr and uvicorn's settings kept, where this
    uvicorn does not build its compressor as expected."""
    try:
        from uvicorn.protocols.websockets import websockets_sansio_impl as sansio
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
    except ImportError as exc:
        say(f"the websocket keeps uvicorn's compression window ({exc})")
        return False
    if getattr(sansio.ServerPerMessageDeflateFactory, "window_bits", None) == WS_WINDOW_BITS:
        return True  # already widened in this process
    if sansio.ServerPerMessageDeflateFactory is not ServerPerMessageDeflateFactory:
        say("the websocket keeps uvicorn's compression window (its compressor is not websockets' own)")
        return False

    def wide(**settings):
        return ServerPerMessageDeflateFactory(**{
            **settings, "server_max_window_bits": WS_WINDOW_BITS,
            "compress_settings": {**settings.get("compress_settings", {}), "memLevel": WS_MEM_LEVEL}})

    wide.window_bits = WS_WINDOW_BITS
    sansio.ServerPerMessageDeflateFactory = wide
    return True


def install() -> bool:
    """Make the Streamlit server of this process serve its bundles gzipped. False, with one line on stderr and
    nothing changed, where this Streamlit's internals are not the ones this was written for or the cache cannot
    be written."""
    try:
        from streamlit import config, file_util
        from streamlit.web.server.starlette import starlette_server
        from streamlit.web.server.starlette.starlette_server_config import STATIC_ASSET_CACHE_MAX_AGE_SECONDS
        build = starlette_server.create_starlette_app
        static_dir = Path(file_util.get_static_dir())
        try:
            bundles, cache = precompress(static_dir, CACHE), CACHE
        except OSError:
            bundles, cache = precompress(static_dir, SPARE_CACHE), SPARE_CACHE
        replaced = icon_font(static_dir, cache) | text_fonts(static_dir, cache)
    except (ImportError, AttributeError, OSError) as exc:
        say(f"static files are served uncompressed ({type(exc).__name__}: {exc})")
        return False
    cache_control = f"public, immutable, max-age={STATIC_ASSET_CACHE_MAX_AGE_SECONDS}"

    def create_starlette_app(*args, **kwargs):
        return CompressedStatic(build(*args, **kwargs), bundles, config.get_option("server.baseUrlPath") or "",
                                cache_control, replaced)

    starlette_server.create_starlette_app = create_starlette_app
    plotly = "Plotly's cartesian bundle" if plotly_bundle.ASSET.exists() else "Plotly's full bundle (not fetched)"
    icons = (f"{len(replaced)} fonts cut to what the app can show" if replaced else "Streamlit's whole fonts")
    say(f"{len(bundles)} static bundles served gzipped, charts with {plotly}, {icons}; pictures cacheable")
    return True


def main(argv: list[str]) -> int:
    install()
    wide_websocket_window()
    from streamlit.web.cli import main as streamlit

    sys.argv = ["streamlit", *argv]
    return streamlit(prog_name="streamlit")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
