"""Bytes on a school's network: one student's tour of every page, cold and warm, and each page's largest slider move.

Chromium (Debian's, through Playwright) counts them with the DevTools protocol's Network domain: HTTP responses by
`encodedDataLength` (headers and body as they came over the wire, compressed or not; 0 for a cached answer) and the
websocket's frames by payload, received and sent. A frame's payload is what the app sent before any websocket
compression; `WS deflated` estimates that compression (permessage-deflate with context takeover and the settings
ui/serving.py gives the server: a 15-bit window, memLevel 8; the same frames) and the CPU zlib takes for it on this
host, for the `server.enableWebsocketCompression` decision. Where the server compresses (the handshake agreed on
permessage-deflate), that estimate is what the wire carried and what the totals count.

The tour: the overview, then each stage page by its sidebar link (ui/stages.py, in order), each of its tabs opened,
every expander opened. Cold: a new browser context (empty cache). Warm: a second tour in a new tab of the same
context (its cache kept), without slider moves. A slider move (after the page's visit): one step right (left at the
end) and back, of every slider on the page, tab by tab (the sidebar's with the page's first tab); each step's bytes
from the key press to the end of its script run and the requests it caused; the page's largest is reported. Once
through one process started as `tasks.py run` starts it, once through `tasks.py serve --replicas 2` (HAProxy).

    python bench/bench_network.py [--only attention swin] [--no-serve] [--no-sliders] [--students 30]

The measuring functions are importable: `Meter(page)`, `visit_stage(page, meter, base, key)`, `page_bytes(base,
key)` (one page, cold, in a new browser).
"""
from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.a11y import main_tabs, navigate, open_tab_at  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, goto, streamlit_server, wait_idle  # noqa: E402
from tests.school import serving  # noqa: E402
from ui import serving as serving_module  # noqa: E402
from ui.stages import STAGES  # noqa: E402

LINKS_MBIT = (20, 50)  # a school's Wi-Fi in practice


@dataclass(frozen=True)
class Traffic:
    http: int  # bytes of HTTP responses as received (CDP encodedDataLength: headers + body, compressed or not)
    ws_in: int  # websocket payload bytes the browser received
    ws_out: int  # websocket payload bytes the browser sent
    ws_deflated: int  # ws_in as permessage-deflate would have sent it (estimate: zlib on the same frames)
    ws_wire: int  # websocket bytes received on the wire: ws_in, or ws_deflated where the server compresses

    @property
    def total(self) -> int:
        """Everything on the wire (websocket framing, a few bytes a frame, left out)."""
        return self.http + self.ws_wire + self.ws_out

    @property
    def ws(self) -> int:
        """Websocket bytes on the wire, both ways."""
        return self.ws_wire + self.ws_out

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(*(a + b for a, b in zip(self.astuple(), other.astuple())))

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(*(a - b for a, b in zip(self.astuple(), other.astuple())))

    def astuple(self) -> tuple[int, int, int, int, int]:
        return self.http, self.ws_in, self.ws_out, self.ws_deflated, self.ws_wire


NOTHING = Traffic(0, 0, 0, 0, 0)


@dataclass(frozen=True)
class SliderMove:
    label: str  # the slider's label as shown ("Patch size P (px)"), with its tab
    traffic: Traffic  # the larger of its two steps (right and back)


@dataclass(frozen=True)
class PageTraffic:
    key: str  # the page's url path ("" is the overview)
    visit: Traffic  # arriving, every tab and expander opened (no slider moves)
    moves: tuple[SliderMove, ...] = ()  # every slider's step, in the order moved

    @property
    def largest(self) -> SliderMove | None:
        """The page's largest slider move (None where it has no slider)."""
        return max(self.moves, key=lambda m: m.traffic.total, default=None)


@dataclass
class Meter:
    """The DevTools Network counters of one browser page (its frames and requests; websockets included)."""
    page: object
    http: int = 0
    ws_in: int = 0
    ws_out: int = 0
    ws_deflated: int = 0
    ws_wire: int = 0
    pending: set = field(default_factory=set)  # requests sent and not finished
    encodings: dict = field(default_factory=dict)  # Content-Encoding of /static/ responses -> count
    accept_encoding: str = ""  # what the browser asked for, as sent with a /static/ request
    kinds: dict = field(default_factory=dict)  # HTTP bytes by DevTools resource type (Script, Font, Image, …)
    deflate_s: float = 0.0  # CPU seconds zlib took to deflate the received frames (what the server would spend)
    compressed: set = field(default_factory=set)  # websockets whose server compresses (permessage-deflate agreed)

    def __post_init__(self):
        self._deflate: dict[str, object] = {}  # a compressor per websocket, kept across frames (context takeover)
        self._kind: dict[str, str] = {}  # resource type by request id, until it finishes
        cdp = self.page.context.new_cdp_session(self.page)
        cdp.send("Network.enable")
        cdp.on("Network.requestWillBeSent", lambda e: self.pending.add(e["requestId"]))
        cdp.on("Network.requestWillBeSentExtraInfo", self._headers)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.loadingFailed", lambda e: self.pending.discard(e["requestId"]))
        cdp.on("Network.webSocketFrameReceived", self._frame_in)
        cdp.on("Network.webSocketFrameSent", self._frame_out)
        cdp.on("Network.webSocketHandshakeResponseReceived", self._handshake)

    def _headers(self, event):
        """The request's headers as sent (the network layer adds Accept-Encoding after requestWillBeSent)."""
        headers = {k.lower(): v for k, v in event["headers"].items()}
        if "/static/" in headers.get(":path", "/static/"):
            self.accept_encoding = headers.get("accept-encoding", self.accept_encoding)

    def _response(self, event):
        response = event["response"]
        self._kind[event["requestId"]] = event.get("type", "Other")
        if "/static/" in response["url"] and not response.get("fromDiskCache") and response["status"] == 200:
            coding = {k.lower(): v for k, v in response["headers"].items()}.get("content-encoding", "none")
            self.encodings[coding] = self.encodings.get(coding, 0) + 1

    def _finished(self, event):
        self.pending.discard(event["requestId"])
        self.http += int(event["encodedDataLength"])
        kind = self._kind.pop(event["requestId"], "Other")
        self.kinds[kind] = self.kinds.get(kind, 0) + int(event["encodedDataLength"])

    @staticmethod
    def _payload(event) -> bytes:
        frame = event["response"]
        return base64.b64decode(frame["payloadData"]) if frame["opcode"] == 2 else frame["payloadData"].encode()

    def _frame_in(self, event):
        data = self._payload(event)
        self.ws_in += len(data)
        z = self._deflate.setdefault(event["requestId"], zlib.compressobj(
            wbits=-serving_module.WS_WINDOW_BITS, memLevel=serving_module.WS_MEM_LEVEL))
        start = time.process_time()
        deflated = len(z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)) - 4  # RFC 7692 drops the 4-byte tail
        self.deflate_s += time.process_time() - start
        self.ws_deflated += deflated
        self.ws_wire += deflated if event["requestId"] in self.compressed else len(data)

    def _handshake(self, event):
        """Whether the server agreed to compress this websocket (server.enableWebsocketCompression)."""
        headers = {k.lower(): v for k, v in event["response"]["headers"].items()}
        if "permessage-deflate" in headers.get("sec-websocket-extensions", ""):
            self.compressed.add(event["requestId"])

    def _frame_out(self, event):
        self.ws_out += len(self._payload(event))

    def read(self) -> Traffic:
        return Traffic(self.http, self.ws_in, self.ws_out, self.ws_deflated, self.ws_wire)

    def settle(self, timeout_s: float = 15) -> None:
        """Wait until no request is in flight and nothing has arrived for 0.4 s (pictures load after the run)."""
        deadline, last = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(400)  # also lets Playwright deliver the protocol's events
            now = self.read()
            if not self.pending and now == last:
                return
            last = now

    def measure(self, action) -> Traffic:
        """The bytes `action()` caused, up to the end of its script run and the requests it made."""
        before = self.read()
        action()
        self.settle()
        return self.read() - before


def open_expanders(page) -> None:
    """Open every closed expander of the main area (those an opened one reveals too)."""
    closed = page.get_by_test_id("stMain").locator("[data-testid='stExpander'] details:not([open]) > summary")
    for _ in range(30):
        if not closed.count():
            return
        closed.first.click()
        wait_idle(page)


def _slider_label(thumb) -> str:
    return thumb.evaluate("e => (e.closest('[data-testid=\"stSlider\"]')?.querySelector('label')?.innerText"
                          " || e.getAttribute('aria-label') || '?').trim()")


def _step(page, meter: Meter, thumb, key: str) -> Traffic:
    """Press `key` on a slider's thumb; the bytes up to the end of the run it starts."""
    def press():
        sent = meter.ws_out
        thumb.focus()
        page.keyboard.press(key)
        for _ in range(40):  # the browser asks for the rerun once the slider's value is committed
            if meter.ws_out > sent:
                break
            page.wait_for_timeout(100)
        wait_idle(page)
    return meter.measure(press)


def slider_moves(page, meter: Meter, area: str, tab: str = "") -> list[SliderMove]:
    """Each enabled slider of `area` ("stMain" or "stSidebar") moved one step and back."""
    moves = []
    thumbs = page.get_by_test_id(area).get_by_role("slider")
    for i in range(thumbs.count()):
        thumb = thumbs.nth(i)
        if thumb.get_attribute("aria-disabled") == "true" or not thumb.is_visible():
            continue
        at_end = thumb.get_attribute("aria-valuenow") == thumb.get_attribute("aria-valuemax")
        there, back = ("ArrowLeft", "ArrowRight") if at_end else ("ArrowRight", "ArrowLeft")
        first = _step(page, meter, thumb, there)
        second = _step(page, meter, thumbs.nth(i), back)
        label = _slider_label(thumb) + (f" ({tab})" if tab else "") + (" (sidebar)" if area == "stSidebar" else "")
        moves.append(SliderMove(label, max(first, second, key=lambda t: t.total)))
    return moves


def visit_stage(page, meter: Meter, base: str, key: str, sliders: bool = True, first: bool = False) -> PageTraffic:
    """Arrive at page `key` ("" the overview; `first`: by URL, else by its sidebar link), open each tab and every
    expander; then, with `sliders`, move each slider a step and back, tab by tab. The visit is over before the first
    move: a slider moved and back can leave another control elsewhere (Swin's selected window follows the input size),
    and a second visit (the warm tour) must see what the first one saw."""
    visit, moves = NOTHING, []
    arrive = (lambda: goto(page, base, key)) if first else (lambda: navigate(page, key))
    visit += meter.measure(lambda: (arrive(), open_expanders(page)))
    labels = [t.inner_text().strip() for t in main_tabs(page).all()] or [""]
    for index in range(1, len(labels)):
        visit += meter.measure(lambda: (open_tab_at(page, index), open_expanders(page)))
    if sliders:
        for index, label in enumerate(labels):
            if len(labels) > 1:
                open_tab_at(page, index)
                open_expanders(page)
            if not index:
                moves += slider_moves(page, meter, "stSidebar")
            moves += slider_moves(page, meter, "stMain", label)
    return PageTraffic(key, visit, tuple(moves))


def tour(page, meter: Meter, base: str, keys: list[str], sliders: bool = True) -> list[PageTraffic]:
    """The overview, then each page of `keys` in a row, in one browser page."""
    page.set_viewport_size({"width": 1400, "height": 900})
    found = [visit_stage(page, meter, base, "", sliders, first=True)]
    return found + [visit_stage(page, meter, base, key, sliders) for key in keys]


def browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def page_bytes(base: str, key: str, sliders: bool = True) -> PageTraffic:
    """One page (`key`, "" the overview) in a new browser with an empty cache: arriving by URL, every tab and expander
    opened, every slider moved a step and back (slice B's per-page check)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = browser(playwright)
        try:
            page = chromium.new_context(viewport={"width": 1400, "height": 900}).new_page()
            return visit_stage(page, Meter(page), base, key, sliders, first=True)
        finally:
            chromium.close()


@dataclass(frozen=True)
class Run:
    cold: list  # PageTraffic of the first tour, with slider moves
    warm: list  # PageTraffic of the second tour in the same browser context (cache kept), no slider moves
    accept_encoding: str  # the browser's Accept-Encoding for the bundles
    encodings: dict  # Content-Encoding of the bundles as they arrived -> count
    kinds: dict  # cold tour's HTTP bytes by resource type
    deflate_s: float  # CPU seconds deflating the cold tour's websocket data took (slider moves included)
    deflated_bytes: int  # the websocket bytes those seconds deflated
    ws_compressed: bool  # whether the server compressed the websocket (permessage-deflate agreed)


def measure(base: str, keys: list[str], sliders: bool) -> Run:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = browser(playwright)
        try:
            context = chromium.new_context()
            first = context.new_page()
            meter = Meter(first)
            cold = tour(first, meter, base, keys, sliders)
            first.close()
            second = context.new_page()
            warm = tour(second, Meter(second), base, keys, sliders=False)
            return Run(cold, warm, meter.accept_encoding, dict(meter.encodings), dict(meter.kinds), meter.deflate_s,
                       meter.ws_in, bool(meter.compressed))
        finally:
            chromium.close()


def kb(n: float) -> str:
    return f"{n / 1000:,.0f} kB" if n < 1e6 else f"{n / 1e6:,.2f} MB"


def report(title: str, run: Run, students: int) -> None:
    """The table of one run, the tour's totals, and what a class of `students` moves over the school's link."""
    print(f"\n== {title}: browser Accept-Encoding {run.accept_encoding!r}; bundles arrived as {run.encodings}; "
          f"websocket {'compressed' if run.ws_compressed else 'uncompressed'}")
    print(f"{'page':<12} {'cold HTTP':>10} {'cold WS':>9} {'cold':>9} {'warm':>9} {'move HTTP':>10} {'move WS':>9} "
          f"{'move':>9}  largest slider move")
    for cold, warm in zip(run.cold, run.warm):
        c, big = cold.visit, cold.largest
        move = big.traffic if big else NOTHING
        print(f"{cold.key or 'overview':<12} {kb(c.http):>10} {kb(c.ws):>9} {kb(c.total):>9} "
              f"{kb(warm.visit.total):>9} {kb(move.http):>10} {kb(move.ws):>9} {kb(move.total):>9}  "
              f"{big.label if big else '(no slider)'}")
    cold = sum((p.visit for p in run.cold), NOTHING)
    warm = sum((p.visit for p in run.warm), NOTHING)
    moves = [p.largest.traffic for p in run.cold if p.largest]
    largest = max(moves, key=lambda t: t.total, default=NOTHING)
    print(f"{'total':<12} {kb(cold.http):>10} {kb(cold.ws):>9} {kb(cold.total):>9} "
          f"{kb(warm.total):>9} {kb(largest.http):>10} {kb(largest.ws):>9} "
          f"{kb(largest.total):>9}  (the largest move)")
    print("HTTP by type, the cold tour and its slider moves: " + ", ".join(
        f"{kind} {kb(n)}" for kind, n in sorted(run.kinds.items(), key=lambda kv: -kv[1])))
    every = sum(moves, NOTHING)
    print(f"websocket received, as sent -> deflated: cold tour {kb(cold.ws_in)} -> {kb(cold.ws_deflated)}, warm "
          f"{kb(warm.ws_in)} -> {kb(warm.ws_deflated)}, every page's largest move {kb(every.ws_in)} -> "
          f"{kb(every.ws_deflated)}; zlib CPU for the cold tour's frames (moves included) "
          f"{1000 * run.deflate_s:.0f} ms for {kb(run.deflated_bytes)}: "
          f"{1e9 * run.deflate_s / max(run.deflated_bytes, 1):.0f} ms per MB")
    for name, size in (("cold tour", cold.total), ("warm tour", warm.total), ("largest slider move", largest.total)):
        whole = students * size
        times = ", ".join(f"{whole * 8 / (mbit * 1e6):.1f} s at {mbit} Mbit/s" for mbit in LINKS_MBIT)
        print(f"class of {students}, {name}: {kb(whole)} ({times})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="page keys (default: every stage page)")
    parser.add_argument("--no-serve", action="store_true", help="only the single process")
    parser.add_argument("--no-single", action="store_true", help="only through serve")
    parser.add_argument("--no-sliders", action="store_true")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    from vitviz.runtime import bench_setup

    bench_setup()
    keys = args.only or [s.key for s in STAGES]
    if not args.no_single:
        with streamlit_server() as (url, _proc):
            report("one process (tasks.py run)", measure(url, keys, not args.no_sliders), args.students)
    if not args.no_serve:
        with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp), replicas=args.replicas) as (url, _b, _l):
            report(f"tasks.py serve --replicas {args.replicas} (HAProxy)", measure(url, keys, not args.no_sliders),
                   args.students)


if __name__ == "__main__":
    main()
