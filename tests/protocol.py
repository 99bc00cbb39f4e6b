"""A headless Streamlit client: speaks the browser's websocket protocol to a real server, renders nothing.

A load test that drives real Chromium pages on the server's own cores measures Chromium (it needs about five times
the server's CPU). In class every browser runs on its own laptop, so the load generator here sends exactly the
messages the Streamlit 1.67 frontend sends, and nothing else costs CPU:

1. HTTP: GET the page (as a browser opening the URL does), `/_stcore/health` (sets the `_streamlit_xsrf` cookie)
   and `/_stcore/host-config`, as the frontend's connection manager does before it connects. The page's scripts
   and styles are not fetched: a laptop has them cached after its first visit.
2. Websocket `/_stcore/stream` with subprotocols `["streamlit", <xsrf cookie value>]`, the cookie and an Origin.
3. `BackMsg.rerun_script` (a ClientState) for the first run: query string of the URL, `page_name` = its path, no
   widget states. For every later run the frontend's WidgetStateManager sends the states of ALL widgets on screen,
   each committed when the widget first appeared (its default, or its current value when the server set one); on
   a page change only the states of the widgets drawn by the entrypoint (the shared sidebar) go along, with the
   page's script hash. Bound widgets (`bind="query-params"`) keep the URL in sync, and the URL's query string goes
   with every run. The ClientState also lists the hashes of the large messages the client has cached, and the
   server answers those with a `ref_hash` instead of resending them (the frontend's ForwardMsg cache).
4. Uploads: `BackMsg.file_urls_request` → `ForwardMsg.file_urls_response` → multipart PUT of the file to the
   upload URL (header `X-Xsrftoken` + cookie) → a rerun with the uploader's `file_uploader_state_value`.
5. Images (`st.image`) are fetched from `/media/...` as a browser fetches them, outside the answer time: the
   frontend reports a run finished without waiting for pictures.

The BackMsgs of one student's visit (open, radio, upload, page change, slider, page change, sidebar slider) were
compared with the frames Chromium sends for the same clicks: identical apart from random ids and the order of the
widget states. The browser context sent is fixed (UTC, en-US, light theme, not embedded), as in headless Chromium.

An action's answer time is the time from sending its BackMsg to the `script_finished` that ends the run it caused
(runs ended early by `st.rerun()` or by a newer request continue into the run that answers). Message types the
load test does not need are read and ignored: session_status_changed, page_config_changed, page_profile,
git_info_changed, logo, new_transient deltas, parent_message,
auth_redirect, heartbeat_ack, backend_operation_response. Widgets that commit nothing until used (buttons, download
buttons, chart selections) send nothing, as in the browser; camera_input, date/time and text inputs are not modelled.
"""
from __future__ import annotations

import asyncio
import http.client
import math
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Block_pb2 import Block
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.Common_pb2 import FileURLs, FileUploaderState, UploadedFileInfo
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NewSession_pb2 import NewSession
from streamlit.proto.RootContainer_pb2 import RootContainer
from streamlit.proto.Slider_pb2 import Slider
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

XSRF_COOKIE = "_streamlit_xsrf"
# script_finished statuses that end an answer; FINISHED_EARLY_FOR_RERUN means another run follows.
FINAL = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
         ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
MAIN, SIDEBAR = RootContainer.MAIN, RootContainer.SIDEBAR


class ProtocolError(RuntimeError):
    """The server answered something a browser could not have handled (lost cache entry, closed socket, ...)."""


@dataclass
class Answer:
    """What the server sent in answer to one action."""

    seconds: float  # from sending the BackMsg to the script_finished that ended the run
    status: str  # name of that script_finished status, e.g. "FINISHED_SUCCESSFULLY"
    page: str  # url path of the page shown afterwards ("" for the default page)
    elements: list[tuple[tuple[int, ...], Element]] = field(default_factory=list)  # new elements, in arrival order
    exceptions: list[str] = field(default_factory=list)  # `st.exception` boxes and script errors, as text

    @property
    def ok(self) -> bool:
        """True when the run finished normally and drew no exception."""
        return self.status == "FINISHED_SUCCESSFULLY" and not self.exceptions

    def texts(self) -> list[str]:
        """Every text this answer drew: markdown, headings, captions, alerts, code and image captions."""
        return [text for _path, element in self.elements for text in element_texts(element)]


@dataclass
class _Node:
    """One element or block of the client's copy of the page, as the frontend's element tree holds it."""

    proto: Element | Block
    run: int  # which script run drew it (counted client-side, one per new_session)
    script_hash: str  # the script that drew it: the entrypoint (shared sidebar) or the page


def element_texts(element: Element) -> list[str]:
    """The visible texts of one element (empty for charts, widgets and the like)."""
    kind = element.WhichOneof("type")
    if kind in ("markdown", "text", "heading"):
        return [getattr(element, kind).body]
    if kind == "code":
        return [element.code.code_text]
    if kind == "alert":
        return [element.alert.body]
    if kind == "imgs":
        return [img.caption for img in element.imgs.imgs if img.caption]
    if kind == "exception":
        return [element.exception.message]
    return []


def _js_number(value: float) -> str:
    """A number as JavaScript's String() writes it (15.0 → "15"), as the frontend puts it in the URL."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class StreamlitSession:
    """One student's browser tab, at the protocol level. Use as `async with StreamlitSession(url) as s:`.

    Widgets are addressed by their user key (Streamlit's widget ids end with it: `$$ID-<hash>-<key>`).
    """

    def __init__(self, base_url: str, *, timeout: float = 180.0, fetch_media: bool = True):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.fetch_media = fetch_media
        parts = urllib.parse.urlsplit(self.base_url)
        self._host, self._port = parts.hostname, parts.port or 80
        self.xsrf = ""
        self.cookies: dict[str, str] = {}  # name -> value, as the browser keeps them for this server
        self.session_id = ""
        self.pages: dict[str, str] = {}  # url path -> page script hash, from the navigation message
        self.page = ""  # url path of the page shown
        self.query: dict[str, list[str]] = {}  # the URL's query parameters
        self.errors: list[str] = []  # protocol problems the student would have seen (broken images, ...)
        self.media_fetched = 0  # images fetched from /media
        self.media_stale = 0  # images gone before they were fetched, because a newer run had replaced them
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._media_tasks: set[asyncio.Task] = set()
        self._media_seen: set[str] = set()
        self._tree: dict[tuple[int, ...], _Node] = {}
        self._states: dict[str, WidgetState] = {}  # widget id -> the state the frontend would send
        self._main_script_hash = ""
        self._page_hash = ""  # the page the client shows (set by the navigation message)
        self._run = 0
        self._new_session_seen = False
        self._max_cache_age = 2
        self._cache: dict[str, list] = {}  # message hash -> [serialized ForwardMsg, run count when last used]
        self._cache_runs = 0
        self._waiter: asyncio.Future | None = None
        self._answer: Answer | None = None
        self._file_urls: dict[str, asyncio.Future] = {}
        self.auto_reruns: dict[str, float] = {}  # fragment id -> seconds between the reruns it asked for

    async def __aenter__(self) -> StreamlitSession:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ---- HTTP (blocking stdlib calls, run in threads) ----------------------------------------------------------

    def _http(self, method: str, path: str, body: bytes | None = None,
              headers: dict | None = None) -> tuple[int, bytes, list[str]]:
        """One HTTP request with the session's cookies (a browser's cookie jar: the XSRF token, and a load
        balancer's sticky cookie); returns (status, body, Set-Cookie headers)."""
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            headers = dict(headers or {})
            if self.cookies:
                headers["Cookie"] = self._cookie_header()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            set_cookies = response.headers.get_all("Set-Cookie") or []
            for cookie in set_cookies:
                name, _, rest = cookie.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return response.status, response.read(), set_cookies
        finally:
            conn.close()

    def _cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    async def _get(self, path: str) -> tuple[int, bytes, list[str]]:
        return await asyncio.to_thread(self._http, "GET", path)

    # ---- connecting -------------------------------------------------------------------------------------------

    async def open(self, path: str = "", query: str = "", states: WidgetStates | None = None) -> Answer:
        """Open `base_url/path?query` like a browser tab; returns the answer to the first script run. `states`: the
        widget states sent with that run (none for a new tab; see `reopen`)."""
        self.page, self.query = path.strip("/"), urllib.parse.parse_qs(query, keep_blank_values=True)
        await self._get(f"/{self.page}" + (f"?{query}" if query else ""))  # the HTML page
        health, host_config = await asyncio.gather(self._get("/_stcore/health"), self._get("/_stcore/host-config"))
        if health[0] != 200:
            raise ProtocolError(f"/_stcore/health answered {health[0]}")
        self.xsrf = self.cookies.get(XSRF_COOKIE, "")
        ws_url = f"ws://{self._host}:{self._port}/_stcore/stream"
        self._ws = await websockets.connect(
            ws_url, subprotocols=["streamlit", self.xsrf or "PLACEHOLDER_AUTH_TOKEN"], origin=self.base_url,
            additional_headers={"Cookie": self._cookie_header()} if self.cookies else None,
            max_size=None, open_timeout=self.timeout)
        self._reader = asyncio.create_task(self._read_forever())
        # The first run names the page by its url path; there is no script hash yet.
        return await self._rerun(states or WidgetStates(), page_name=self.page)

    async def reopen(self, old: StreamlitSession) -> Answer:
        """What the browser does when the websocket of `old` drops: connect again to the same URL with the same
        cookies, and send the widget states the page still holds with the first run, so that the new session (on
        whichever process the balancer picks) starts from them."""
        self.cookies = dict(old.cookies)
        answer = await self.open(old.page, urllib.parse.urlencode(old.query, doseq=True), states=old._all_states())
        # The page's widget manager outlives the socket: the widgets drawn again keep their values in later runs
        active = set(self._widget_nodes())
        self._states |= {wid: state for wid, state in old._states.items() if wid in active}
        return answer

    async def close(self) -> None:
        """Close the websocket (the server keeps the session for its disconnectedSessionTTL) and stop fetching."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._media_tasks:
            await asyncio.gather(*self._media_tasks, return_exceptions=True)

    # ---- actions ------------------------------------------------------------------------------------------------

    async def navigate(self, url_path: str) -> Answer:
        """Click the page `url_path` in the sidebar navigation; returns the answer."""
        url_path = url_path.strip("/")
        if url_path not in self.pages:
            raise KeyError(f"no page {url_path!r}; pages: {sorted(self.pages)}")
        # Bound parameters of the widgets on screen stay in the URL; all others are dropped.
        bound = {key for _p, w, _k in self._widgets() if (key := _param_key(w))}
        self.query = {k: v for k, v in self.query.items() if k in bound}
        # Only the entrypoint's widgets (the sidebar) keep their state across a page change.
        kept = {wid for wid, node in self._widget_nodes().items() if node.script_hash == self._main_script_hash}
        states = WidgetStates(widgets=[s for wid, s in self._states.items() if wid in kept])
        return await self._rerun(states, page_script_hash=self.pages[url_path], target=url_path)

    async def set_widget(self, key: str, value: Any) -> Answer:
        """Set a widget as a student would (slider number or option label, radio/selectbox option label or
        index, checkbox/toggle bool, number_input number); returns the answer to the rerun it triggers."""
        widget, kind = self.widget(key)
        state = WidgetState(id=widget.id)
        url_value: list[str]  # how the frontend writes the value into the URL of a bound widget
        if kind == "slider" and widget.type == Slider.SELECT_SLIDER:
            labels = [value] if isinstance(value, str) else list(value)
            state.string_array_value.data.extend(labels)
            url_value = labels
        elif kind == "slider":
            numbers = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            state.double_array_value.data.extend(numbers)
            url_value = [_js_number(v) for v in numbers]
        elif kind in ("radio", "selectbox"):
            label = widget.options[value] if isinstance(value, int) else value
            if label not in widget.options:
                raise ValueError(f"{key}: {label!r} is not one of {list(widget.options)}")
            state.string_value = label
            url_value = [label]
        elif kind == "checkbox":
            state.bool_value = bool(value)
            url_value = ["true" if value else "false"]
        elif kind == "number_input":
            if widget.data_type == widget.INT:
                state.int_value = int(value)
            else:
                state.double_value = float(value)
            url_value = [_js_number(value)]
        else:
            raise NotImplementedError(f"{key}: setting a {kind} is not supported")
        self._states[widget.id] = state
        self._sync_url(widget, kind, url_value)
        return await self._rerun(self._all_states())

    async def click(self, key: str) -> Answer:
        """Click the button `key` (a trigger: true for this run only, as the browser sends it)."""
        widget, kind = self.widget(key)
        if kind != "button":
            raise TypeError(f"{key} is a {kind}, not a button")
        states = self._all_states()
        states.widgets.append(WidgetState(id=widget.id, trigger_value=True))
        return await self._rerun(states)

    async def poll_fragment(self) -> Answer:
        """What the browser does every `run_every` seconds for a fragment on screen: rerun the fragment alone (it
        may rerun the whole app, which the answer then includes). KeyError when no fragment asked for it."""
        if not self.auto_reruns:
            raise KeyError("no fragment on screen reruns by itself")
        fragment = next(iter(self.auto_reruns))
        return await self._rerun(self._all_states(), fragment_id=fragment)

    async def step_slider(self, key: str) -> Answer:
        """One arrow-key step of a slider, towards the side it has room on (right unless at its maximum)."""
        widget, kind = self.widget(key)
        if kind != "slider":
            raise TypeError(f"{key} is a {kind}, not a slider")
        state = self._states[widget.id]
        if widget.type == Slider.SELECT_SLIDER:
            index = list(widget.options).index(state.string_array_value.data[0])
            index = index - 1 if index >= len(widget.options) - 1 else index + 1
            return await self.set_widget(key, widget.options[index])
        value = state.double_array_value.data[0]
        moved = value - widget.step if value + widget.step > widget.max else value + widget.step
        decimals = max(0, -math.floor(math.log10(widget.step))) + 2 if widget.step < 1 else 0
        return await self.set_widget(key, round(moved, decimals))

    async def upload(self, key: str, filename: str, data: bytes, mime: str) -> Answer:
        """Drop a file on the file_uploader `key`: ask for an upload URL, PUT the file, then rerun with the
        uploader's new state; returns the answer to that rerun."""
        widget = self._uploader(key)
        urls = await asyncio.wait_for(self._request_file_urls(filename), self.timeout)
        return await self._put_and_rerun(widget, urls, filename, data, mime)

    async def upload_while_switching(self, key: str, url_path: str, filename: str, data: bytes,
                                     mime: str) -> tuple[Answer, Answer]:
        """Click the page `url_path` and, in the same moment, drop a file on the uploader `key` (the browser then
        sends the page switch's rerun and the file's upload-URL request back to back); wait for the switch, then
        upload. Returns the answers of the switch and of the upload's rerun."""
        widget = self._uploader(key)
        switch = asyncio.create_task(self.navigate(url_path))
        await asyncio.sleep(0)  # the switch's BackMsg leaves first
        urls = asyncio.create_task(self._request_file_urls(filename))
        switched = await switch
        return switched, await self._put_and_rerun(widget, await asyncio.wait_for(urls, self.timeout), filename,
                                                   data, mime)

    def _uploader(self, key: str):
        widget, kind = self.widget(key)
        if kind != "file_uploader":
            raise TypeError(f"{key} is a {kind}, not a file_uploader")
        return widget

    async def _request_file_urls(self, filename: str) -> FileURLs:
        request_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._file_urls[request_id] = future
        msg = BackMsg()
        msg.file_urls_request.request_id = request_id
        msg.file_urls_request.file_names.append(filename)
        msg.file_urls_request.session_id = self.session_id
        await self._ws.send(msg.SerializeToString())
        response = await future
        if response.error_msg:
            raise ProtocolError(f"file URLs refused: {response.error_msg}")
        return response.file_urls[0]

    async def _put_and_rerun(self, widget, urls: FileURLs, filename: str, data: bytes, mime: str) -> Answer:
        # The frontend's FormData: one part named after the file, with the file's name and type.
        boundary = f"----vitviz{uuid.uuid4().hex}"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{filename}\"; filename=\"{filename}\"\r\n"
                f"Content-Type: {mime}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        status, text, _ = await asyncio.to_thread(
            self._http, "PUT", self._path_of(urls.upload_url), body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Xsrftoken": self.xsrf,
             "Origin": self.base_url})
        if status != 204 and status != 200:
            raise ProtocolError(f"upload PUT answered {status}: {text[:200]!r}")
        state = WidgetState(id=widget.id)
        state.file_uploader_state_value.CopyFrom(FileUploaderState(uploaded_file_info=[
            UploadedFileInfo(name=filename, size=len(data), file_id=urls.file_id, file_urls=urls)]))
        self._states[widget.id] = state
        return await self._rerun(self._all_states())

    # ---- what is on screen --------------------------------------------------------------------------------------

    def widget(self, key: str) -> tuple[Any, str]:
        """(proto, element type) of the widget on screen whose user key is `key`; KeyError when absent."""
        for _path, proto, kind in self._widgets():
            if proto.id.split("-", 2)[-1] == key:
                return proto, kind
        raise KeyError(f"no widget with key {key!r} on screen")

    def widget_value(self, key: str) -> WidgetState:
        """The state the client holds for widget `key` (what it sends with the next run)."""
        return self._states[self.widget(key)[0].id]

    def sliders(self, root: int = MAIN) -> list[str]:
        """User keys of the visible sliders (select sliders included) in `root` (MAIN or SIDEBAR), top to bottom."""
        return [proto.id.split("-", 2)[-1] for path, proto, kind in self._widgets()
                if kind == "slider" and path[0] == root and not self._hidden(path)]

    def elements(self, root: int | None = None) -> list[tuple[tuple[int, ...], Element]]:
        """The elements on screen (in `root` only, if given), top to bottom."""
        return [(path, node.proto) for path, node in sorted(self._tree.items())
                if isinstance(node.proto, Element) and (root is None or path[0] == root)]

    def image_captions(self, root: int | None = None) -> list[str]:
        """Captions of the images on screen."""
        return [img.caption for _p, e in self.elements(root) if e.WhichOneof("type") == "imgs" for img in e.imgs.imgs]

    def _image_urls(self) -> set[str]:
        return {img.url for _p, e in self.elements() if e.WhichOneof("type") == "imgs" for img in e.imgs.imgs}

    def _widgets(self) -> list[tuple[tuple[int, ...], Any, str]]:
        return [(path, getattr(element, kind), kind) for path, element in self.elements()
                if (kind := element.WhichOneof("type")) and getattr(getattr(element, kind), "id", "")]

    def _widget_nodes(self) -> dict[str, _Node]:
        return {getattr(node.proto, kind).id: node for node in self._tree.values()
                if isinstance(node.proto, Element) and (kind := node.proto.WhichOneof("type"))
                and getattr(getattr(node.proto, kind), "id", "")}

    def _hidden(self, path: tuple[int, ...]) -> bool:
        """Inside a collapsed expander: a browser's accessibility tree (and a student) does not see it."""
        for depth in range(1, len(path)):
            node = self._tree.get(path[:depth])
            if node is not None and isinstance(node.proto, Block) and node.proto.HasField("expandable") \
                    and not node.proto.expandable.expanded:
                return True
        return False

    # ---- widget states, as the frontend's WidgetStateManager keeps them -----------------------------------------

    def _all_states(self) -> WidgetStates:
        return WidgetStates(widgets=list(self._states.values()))

    def _commit_on_mount(self, kind: str, widget: Any) -> None:
        """A widget appearing on screen commits its value without a rerun: the state it already has, else its
        default, or the server's value when the server set one (`set_value`)."""
        if widget.id in self._states and not getattr(widget, "set_value", False):
            return
        state = _initial_state(kind, widget)
        if state is not None:
            self._states[widget.id] = state

    def _sync_url(self, widget: Any, kind: str, url_value: list[str]) -> None:
        """A student's change of a bound widget writes the value to the URL, or removes it at the default."""
        key = _param_key(widget)
        if not key:
            return
        default = _initial_state(kind, widget, current=False)
        default_values = _url_values(default) if default is not None else None
        if url_value == default_values:
            self.query.pop(key, None)
        else:
            self.query[key] = url_value

    # ---- messages -----------------------------------------------------------------------------------------------

    def _path_of(self, url: str) -> str:
        """The server path of a URL the server sent (relative, or absolute on this server)."""
        parts = urllib.parse.urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    async def _rerun(self, states: WidgetStates, *, page_script_hash: str = "", page_name: str = "",
                     target: str | None = None, fragment_id: str = "") -> Answer:
        """Send a rerun_script BackMsg and wait for the run it causes to finish; returns its Answer."""
        if self._waiter is not None:
            raise RuntimeError("one action at a time: the previous run has not finished")
        query = urllib.parse.urlencode(self.query, doseq=True)
        url = f"{self.base_url}/{self.page}"  # the frontend sends the address bar before the click, without query
        if target is not None:
            self.page = target
        state = ClientState(
            query_string=query, widget_states=states,
            page_script_hash=page_script_hash or self._page_hash, page_name=page_name,
            cached_message_hashes=list(self._cache), fragment_id=fragment_id, is_auto_rerun=bool(fragment_id),
            context_info=ContextInfo(timezone="UTC", timezone_offset=0, locale="en-US", url=url,
                                     is_embedded=False, color_scheme="light"))
        msg = BackMsg()
        msg.rerun_script.CopyFrom(state)
        self._waiter = asyncio.get_running_loop().create_future()
        self._answer = Answer(0.0, "", self.page)
        self._new_session_seen = False
        start = time.perf_counter()
        await self._ws.send(msg.SerializeToString())
        try:
            status = await asyncio.wait_for(self._waiter, self.timeout)
        finally:
            self._waiter = None
        answer, self._answer = self._answer, None
        answer.seconds = time.perf_counter() - start
        answer.status = ForwardMsg.ScriptFinishedStatus.Name(status)
        answer.page = self.page
        return answer

    async def _read_forever(self) -> None:
        try:
            async for data in self._ws:
                self._handle(data)
        except websockets.ConnectionClosed:
            pass
        except Exception as err:  # a protocol error ends the session: fail the waiting action, not silently
            self._fail(err)
            return
        self._fail(ProtocolError("the server closed the websocket"))

    def _fail(self, err: BaseException) -> None:
        for future in [self._waiter, *self._file_urls.values()]:
            if future is not None and not future.done():
                future.set_exception(err)

    def _handle(self, data: bytes) -> None:
        msg = ForwardMsg()
        msg.ParseFromString(data)
        msg = self._through_cache(msg, data)
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            if not msg.metadata.run.fragment_ids:
                # A full run registers its fragments' timers again; the old ones go, as in the browser: the server
                # drops, without an answer, a rerun of a fragment that no longer exists.
                self.auto_reruns.clear()
            self._on_new_session(msg.new_session)
        elif kind == "navigation":
            nav = msg.navigation
            self.pages = {page.url_pathname: page.page_script_hash for page in nav.app_pages}
            self._page_hash = nav.page_script_hash
            self.page = next((p.url_pathname for p in nav.app_pages if p.page_script_hash == nav.page_script_hash),
                             self.page)
        elif kind == "page_info_changed":
            self.query = urllib.parse.parse_qs(msg.page_info_changed.query_string, keep_blank_values=True)
        elif kind == "delta":
            self._on_delta(msg)
        elif kind == "file_urls_response":
            future = self._file_urls.pop(msg.file_urls_response.response_id, None)
            if future is not None and not future.done():
                future.set_result(msg.file_urls_response)
        elif kind == "page_not_found":
            self._record_exception(f"page not found: {msg.page_not_found.page_name!r}")
        elif kind == "session_event" and msg.session_event.HasField("script_compilation_exception"):
            self._record_exception(msg.session_event.script_compilation_exception.message)
        elif kind == "auto_rerun":
            self.auto_reruns[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            for fragment in msg.stop_auto_rerun.fragment_ids:
                self.auto_reruns.pop(fragment, None)
        elif kind == "script_finished":
            self._on_script_finished(msg.script_finished)
        # session_status_changed (running/not running) needs nothing: script_finished ends a run.

    def _through_cache(self, msg: ForwardMsg, data: bytes) -> ForwardMsg:
        """The frontend's ForwardMsg cache: keep large messages by hash, expand `ref_hash` references to them."""
        if msg.WhichOneof("type") != "ref_hash":
            if msg.metadata.cacheable and msg.hash:
                self._cache.setdefault(msg.hash, [data, self._cache_runs])[1] = self._cache_runs
            return msg
        entry = self._cache.get(msg.ref_hash)
        if entry is None:
            raise ProtocolError(f"cached ForwardMsg missing: {msg.ref_hash}")
        entry[1] = self._cache_runs
        cached = ForwardMsg()
        cached.ParseFromString(entry[0])
        cached.metadata.CopyFrom(msg.metadata)
        return cached

    def _on_new_session(self, new_session: NewSession) -> None:
        self._run += 1
        self._new_session_seen = True
        self.session_id = new_session.initialize.session_id or self.session_id
        self._main_script_hash = new_session.main_script_hash
        self._max_cache_age = new_session.config.max_cached_message_age
        # A run of another page than the one shown clears the page's elements (the sidebar stays) and the
        # states of the widgets that went with them.
        if new_session.page_script_hash != self._page_hash:
            self._tree = {p: n for p, n in self._tree.items() if n.script_hash == self._main_script_hash}
            self._drop_inactive_states()

    def _on_delta(self, msg: ForwardMsg) -> None:
        path = tuple(msg.metadata.delta_path)
        delta = msg.delta
        kind = delta.WhichOneof("type")
        if kind == "new_element":
            element = delta.new_element
            self._tree[path] = _Node(element, self._run, msg.metadata.active_script_hash)
            if self._answer is not None:
                self._answer.elements.append((path, element))
            element_kind = element.WhichOneof("type")
            widget = getattr(element, element_kind)
            if element_kind == "exception":
                self._record_exception(f"{element.exception.type}: {element.exception.message}")
            elif element_kind == "imgs":
                for img in element.imgs.imgs:
                    self._fetch_media(img.url)
            elif getattr(widget, "id", ""):
                self._commit_on_mount(element_kind, widget)
        elif kind == "add_block":
            self._tree[path] = _Node(delta.add_block, self._run, msg.metadata.active_script_hash)

    def _on_script_finished(self, status: int) -> None:
        if status == ForwardMsg.FINISHED_SUCCESSFULLY:
            # Elements the run did not draw again are gone, and so are their widgets' states.
            self._tree = {p: n for p, n in self._tree.items() if n.run == self._run}
            self._drop_inactive_states()
        if status != ForwardMsg.FINISHED_EARLY_FOR_RERUN and self._new_session_seen:
            self._cache_runs += 1
            self._cache = {h: e for h, e in self._cache.items() if self._cache_runs - e[1] <= self._max_cache_age}
        if status in FINAL and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(status)

    def _drop_inactive_states(self) -> None:
        active = set(self._widget_nodes())
        self._states = {wid: s for wid, s in self._states.items() if wid in active}

    def _record_exception(self, text: str) -> None:
        if self._answer is not None:
            self._answer.exceptions.append(text)
        else:
            self.errors.append(f"outside any action: {text}")

    def _fetch_media(self, url: str) -> None:
        # Only files this server serves (/media/...); data: URLs and other hosts cost the server nothing.
        if not self.fetch_media or url in self._media_seen or not url.startswith(("/", self.base_url)):
            return
        self._media_seen.add(url)

        async def fetch() -> None:
            try:
                status, _body, _ = await self._get(self._path_of(url))
            except OSError as err:
                status = f"{type(err).__name__}: {err}"
            if status == 200:
                self.media_fetched += 1
            elif self._waiter is None and url in self._image_urls():
                self.errors.append(f"image on screen answered {status}: {url}")
            else:
                # The server drops a run's images when the next run starts: with no think time an image can be
                # gone before it is fetched. A browser would show it broken for a moment, then the new one.
                self.media_stale += 1

        task = asyncio.get_running_loop().create_task(fetch())
        self._media_tasks.add(task)
        task.add_done_callback(self._media_tasks.discard)


def _param_key(widget: Any) -> str:
    """The query parameter a widget is bound to (`bind="query-params"`), or ""."""
    if "query_param_key" in widget.DESCRIPTOR.fields_by_name and widget.HasField("query_param_key"):
        return widget.query_param_key
    return ""


def _initial_state(kind: str, widget: Any, current: bool | None = None) -> WidgetState | None:
    """The state a widget commits when it appears: its current value if `current` (default: when the server set
    one), else its default. None for widgets that commit nothing until used (buttons, charts, ...)."""
    current = getattr(widget, "set_value", False) if current is None else current
    state = WidgetState(id=widget.id)
    if kind == "slider":
        if widget.type == Slider.SELECT_SLIDER:
            options = list(widget.options)
            if current and widget.raw_value:
                labels = [r if r in options else options[int(d)] for r, d in zip(widget.raw_value, widget.default)]
            else:
                labels = [options[int(i)] for i in widget.default]
            state.string_array_value.data.extend(labels)
        else:
            state.double_array_value.data.extend(widget.value if current else widget.default)
    elif kind in ("radio", "selectbox"):
        if current:
            value = widget.raw_value if widget.HasField("raw_value") else None
        else:
            value = widget.options[widget.default] if widget.options and widget.HasField("default") else None
        if value is not None:
            state.string_value = value
    elif kind == "checkbox":
        state.bool_value = widget.value if current else widget.default
    elif kind == "number_input":
        value = widget.value if current and widget.HasField("value") else (
            widget.default if widget.HasField("default") else None)
        if value is not None:
            if widget.data_type == widget.INT:
                state.int_value = int(value)
            else:
                state.double_value = value
    elif kind == "button_group":
        if current:
            labels = list(widget.raw_values)
        else:
            labels = [f"{o.content_icon} {o.content}".strip() if o.HasField("content_icon") else o.content
                      for i in widget.default if 0 <= i < len(widget.options) for o in [widget.options[i]]]
        state.string_array_value.data.extend(label for label in labels if label)
    elif kind == "multiselect":
        labels = list(widget.raw_values) if current else [widget.options[i] for i in widget.default]
        state.string_array_value.data.extend(labels)
    elif kind == "file_uploader":
        state.file_uploader_state_value.CopyFrom(FileUploaderState())
    else:
        return None
    return state


def _url_values(state: WidgetState) -> list[str]:
    """How the frontend writes a widget state into the URL (to compare a new value with the default)."""
    value = state.WhichOneof("value")
    if value == "double_array_value":
        return [_js_number(v) for v in state.double_array_value.data]
    if value == "string_array_value":
        return list(state.string_array_value.data)
    if value == "bool_value":
        return ["true" if state.bool_value else "false"]
    if value in ("int_value", "double_value"):
        return [_js_number(getattr(state, value))]
    if value == "string_value":
        return [state.string_value]
    return []
