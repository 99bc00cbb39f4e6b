"""A fake Hugging Face hub on 127.0.0.1 for tests: only the HTTP endpoints huggingface_hub 2.4 calls.

Stdlib only (http.server in a daemon thread). Endpoints, found by reading huggingface_hub 2.4 and checked
with the request log (`FakeHub.requests`); model repos only:

    GET  /api/models/{repo_id}                        model_info(), repo_info() (revision=None)
    GET  /api/models/{repo_id}/revision/{rev}         model_info(revision=...), snapshot_download's repo_info
    GET  /api/models/{repo_id}/tree/{rev}[/{path}]    list_repo_tree(), list_repo_files(), snapshot_download
    HEAD /{repo_id}/resolve/{rev}/{filename}          hf_hub_download metadata (ETag, X-Repo-Commit, size)
    GET  /{repo_id}/resolve/{rev}/{filename}          hf_hub_download body; `Range: bytes=N-` answers 206
    GET  /api/models/{repo_id}/discussions?p=N        get_repo_discussions() (paginated by count/start)
    GET  /api/models/{repo_id}/discussions/{num}      get_discussion_details()

`rev` arrives URL-encoded ("refs%2Fpr%2F1") and may be "main", "refs/pr/N", or the 40-hex sha of main or
of a pull request (snapshot_download asks for files by the sha that repo_info returned).

Every file is served as a plain git file (not LFS, not xet): HEAD answers 200 with `ETag` (its git blob
sha1), `Content-Length` and `X-Repo-Commit`, and no `X-Xet-Hash`, so the client GETs the same URL over
plain HTTP even with hf_xet installed. Errors carry the `X-Error-Code` / `X-Error-Message` headers that
`hf_raise_for_status` reads to raise GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError or
RemoteEntryNotFoundError (the header matters: from an http:// endpoint a bare 401/404 is only an
HfHubHTTPError, because the client's fallback regex only knows https:// urls).
"""
from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["Fault", "FakeHub", "PullRequest", "Repo", "Revision", "git_blob_sha", "unreachable_url"]

_CREATED_AT = "2024-01-01T00:00:00.000Z"  # fixed, so responses are deterministic


def git_blob_sha(content: bytes) -> str:
    """The git object id of a file, which the hub sends as the ETag (and blob name in the cache) of non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _tree_sha(files: dict[str, bytes], salt: str) -> str:
    digest = hashlib.sha1(salt.encode())
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + git_blob_sha(files[path]).encode())
    return digest.hexdigest()


@dataclass
class Revision:
    """A tree of files at one commit. `sha` defaults to a deterministic hash of the content."""

    files: dict[str, bytes]
    sha: str = ""

    def __post_init__(self):
        self.sha = self.sha or _tree_sha(self.files, "fakehub-main")


@dataclass
class PullRequest:
    """A pull request: served at refs/pr/{num}; `files` is the whole tree there, not only the changed files."""

    num: int
    title: str
    author: str
    status: str = "open"  # open | closed | merged (as the hub reports it)
    files: dict[str, bytes] = field(default_factory=dict)
    sha: str = ""

    def __post_init__(self):
        # Salted with the number so a PR whose tree equals main's still gets its own commit, as on the hub.
        self.sha = self.sha or _tree_sha(self.files, f"fakehub-refs/pr/{self.num}")


@dataclass
class Repo:
    """A model repo.

    `access`, mirroring the real hub answers to a client without a token:
      "public"  everything is served;
      "gated"   metadata (model_info, tree, discussions) is served, as on the real hub, but files answer
                401 X-Error-Code: GatedRepo (403 if an Authorization header is sent: a token without access);
      "private" everything answers 401 X-Error-Code: RepoNotFound (the hub hides private repos);
      "missing" everything answers 404 X-Error-Code: RepoNotFound (same as a repo id absent from FakeHub).
    """

    main: Revision
    pulls: list[PullRequest] = field(default_factory=list)
    access: str = "public"

    def __post_init__(self):
        if self.access not in ("public", "gated", "private", "missing"):
            raise ValueError(f"unknown access {self.access!r}")


@dataclass
class Fault:
    """How GETs of one file misbehave (HEAD stays correct, as when a CDN breaks but the hub API works).

    Offsets count bytes of the file, so for a plain GET they are the number of body bytes sent; a resumed
    `Range: bytes=N-` GET with N at or past the offset misbehaves before sending anything. That makes
    "times=large" a server that always breaks at the same place, so the client cannot creep past it.
    """

    status: int | None = None  # answer this HTTP status instead (e.g. 500)
    drop_after: int | None = None  # send the file up to this offset, then close the connection (FIN)
    times: int = 1  # how many GETs misbehave before the file is served normally (large = always)
    bytes_per_s: float | None = None  # throttle the body to this rate (a slow server)
    stall_after: int | None = None  # send up to this offset, then send nothing, keeping the connection open


def unreachable_url() -> str:
    """An http://127.0.0.1:PORT url where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeHub:
    """The server. Use as a context manager; `faults`, `repos` and `set_status` may change while it runs."""

    DISCUSSIONS_PAGE_SIZE = 50  # per page of /discussions; lower it on an instance to exercise pagination
    LOGGED_HEADERS = ("Range",)  # request headers kept in `requests` for assertions

    def __init__(self, repos: dict[str, Repo]):
        self.repos = repos
        self.faults: dict[tuple[str, str], Fault] = {}
        self.requests: list[tuple[str, str, dict]] = []  # (method, path with query, selected headers)
        self._status: int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # wakes stalled and throttled responses when the server stops
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def set_status(self, status: int | None) -> None:
        """Make every request answer `status` (e.g. 500, a hub outage); None serves normally again."""
        self._status = status

    def __enter__(self) -> FakeHub:
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        # A short poll interval: shutdown() waits up to one interval for serve_forever to notice.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fakehub", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()  # returns once serve_forever has stopped accepting
        server.close_connections()  # ends keep-alive waits and stalled responses in handler threads
        server.server_close()
        self._thread.join()

    # -- state shared with the handler threads ------------------------------------------------------------

    def _log(self, method: str, path: str, headers) -> None:
        selected = {name: headers[name] for name in self.LOGGED_HEADERS if name in headers}
        with self._lock:
            self.requests.append((method, path, selected))

    def _take_fault(self, repo_id: str, filename: str) -> Fault | None:
        """The fault for this GET, if it still has times left (and count this use)."""
        with self._lock:
            fault = self.faults.get((repo_id, filename))
            if fault is None or fault.times <= 0:
                return None
            fault.times -= 1
            return fault


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # handler threads never block interpreter exit
    block_on_close = False
    hub: FakeHub

    def __init__(self, *args, **kwargs):
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # Clients hang up mid-body on purpose in the fault tests (timeouts); that is not a server bug.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_API = re.compile(r"^/api/models/(?P<rest>.+)$")
_API_OPS = ("revision", "tree", "discussions")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _HubError(Exception):
    """An error answer: status, X-Error-Code (None to send none) and message, as the real hub sends them."""

    def __init__(self, status: int, code: str | None, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx pools connections
    server: _Server

    def log_message(self, format, *args):  # the request log is `FakeHub.requests`, not stderr
        pass

    def do_HEAD(self):
        self._dispatch(head=True)

    def do_GET(self):
        self._dispatch(head=False)

    # -- routing --------------------------------------------------------------------------------------------

    def _dispatch(self, head: bool) -> None:
        hub = self.server.hub
        hub._log(self.command, self.path, self.headers)
        try:
            if hub._status is not None:
                raise _HubError(hub._status, None, f"fakehub: every request answers {hub._status}")
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if match := _RESOLVE.match(url.path):
                self._resolve(match["repo"], unquote(match["rev"]), unquote(match["file"]), head)
            elif (match := _API.match(url.path)) and not head:
                self._api(match["rest"], query)
            else:
                raise _HubError(404, None, "Not Found")
        except _HubError as err:
            self._send_error(err, head)

    def _repo(self, repo_id: str, files: bool) -> Repo:
        """The repo, or the error the hub answers a client without a token; `files`: a /resolve request."""
        repo = self.server.hub.repos.get(repo_id)
        if repo is None or repo.access == "missing":
            raise _HubError(404, "RepoNotFound", "Repository not found")
        if repo.access == "private":
            raise _HubError(401, "RepoNotFound", "Invalid username or password.")
        if repo.access == "gated" and files:
            if "Authorization" in self.headers:
                message = f"Access to model {repo_id} is restricted and you are not in the authorized list."
                raise _HubError(403, "GatedRepo", message)
            message = (
                f"Access to model {repo_id} is restricted. You must have access to it and be authenticated"
                " to access it. Please log in."
            )
            raise _HubError(401, "GatedRepo", message)
        return repo

    @staticmethod
    def _revision(repo: Repo, rev: str) -> Revision | PullRequest:
        if rev == "main":
            return repo.main
        if match := re.fullmatch(r"refs/pr/(\d+)", rev):
            for pull in repo.pulls:
                if pull.num == int(match[1]):
                    return pull
        elif re.fullmatch(r"[0-9a-f]{40}", rev):
            for revision in (repo.main, *repo.pulls):
                if revision.sha == rev:
                    return revision
        raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")

    def _api(self, rest: str, query: dict) -> None:
        parts = rest.split("/")
        # A repo id is "name" or "namespace/name"; what follows it is an operation.
        n = 1 if len(parts) > 1 and parts[1] in _API_OPS else min(2, len(parts))
        repo_id, op, args = "/".join(parts[:n]), (parts[n] if len(parts) > n else None), parts[n + 1:]
        repo = self._repo(repo_id, files=False)
        if op is None:
            return self._model_info(repo_id, repo, repo.main, query)
        if op == "revision" and len(args) == 1:
            return self._model_info(repo_id, repo, self._revision(repo, unquote(args[0])), query)
        if op == "tree" and len(args) in (1, 2):
            path = unquote(args[1]) if len(args) == 2 else ""
            return self._tree(self._revision(repo, unquote(args[0])), path, query)
        if op == "discussions" and not args:
            return self._discussions(repo_id, repo, query)
        if op == "discussions" and len(args) == 1 and args[0].isdigit():
            return self._discussion_details(repo_id, repo, int(args[0]))
        raise _HubError(404, None, "Not Found")

    # -- API answers ----------------------------------------------------------------------------------------

    def _model_info(self, repo_id: str, repo: Repo, revision, query: dict) -> None:
        blobs = query.get("blobs", "").lower() == "true"  # files_metadata=True
        siblings = []
        for path in sorted(revision.files):
            sibling = {"rfilename": path}
            if blobs:
                sibling.update(size=len(revision.files[path]), blobId=git_blob_sha(revision.files[path]))
            siblings.append(sibling)
        self._send_json({
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": revision.sha,
            "lastModified": _CREATED_AT,
            "createdAt": _CREATED_AT,
            "private": False,
            "gated": "auto" if repo.access == "gated" else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        })

    def _tree(self, revision, path: str, query: dict) -> None:
        recursive = query.get("recursive", "").lower() == "true"
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        files = {p: c for p, c in revision.files.items() if p.startswith(prefix)}
        if prefix and not files:
            raise _HubError(404, "EntryNotFound", f"{path} does not exist on \"{revision.sha}\"")
        entries: dict[str, dict] = {}
        for file_path, content in sorted(files.items()):
            parts = file_path[len(prefix):].split("/")
            # Folders between `path` and the file: all of them when recursive, else only the first.
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folder = prefix + "/".join(parts[:depth])
                entries.setdefault(folder, {"type": "directory", "oid": _tree_sha({}, folder), "size": 0,
                                            "path": folder})
            if recursive or len(parts) == 1:
                entries[file_path] = {"type": "file", "oid": git_blob_sha(content), "size": len(content),
                                      "path": file_path}
        self._send_json(list(entries.values()))  # one page: the hub pages by 1000 entries (Link: next)

    @staticmethod
    def _discussion_json(repo_id: str, pull: PullRequest) -> dict:
        return {
            "num": pull.num,
            "title": pull.title,
            "status": pull.status,
            "createdAt": _CREATED_AT,
            "author": {"name": pull.author, "type": "user", "isPro": False, "isHf": False},
            "repo": {"name": repo_id, "type": "model"},
            "isPullRequest": True,
            "numComments": 1,
            "pinned": False,
            "topReactions": [],
        }

    def _discussions(self, repo_id: str, repo: Repo, query: dict) -> None:
        pulls = sorted(repo.pulls, key=lambda p: -p.num)  # newest first, like the hub
        if query.get("type") == "discussion":  # every discussion here is a pull request
            pulls = []
        if (status := query.get("status")) in ("open", "closed"):
            pulls = [p for p in pulls if (p.status == "open") == (status == "open")]
        if author := query.get("author"):
            pulls = [p for p in pulls if p.author == author]
        size = self.server.hub.DISCUSSIONS_PAGE_SIZE
        start = int(query.get("p", "0")) * size
        self._send_json({
            "discussions": [self._discussion_json(repo_id, p) for p in pulls[start:start + size]],
            "count": len(pulls),
            "start": start,
            "numClosedDiscussions": sum(p.status != "open" for p in repo.pulls),
        })

    def _discussion_details(self, repo_id: str, repo: Repo, num: int) -> None:
        pull = next((p for p in repo.pulls if p.num == num), None)
        if pull is None:
            raise _HubError(404, None, "Discussion not found")
        details = self._discussion_json(repo_id, pull)
        details.update(
            events=[{
                "id": hashlib.sha1(f"{repo_id}#{num}".encode()).hexdigest()[:24],
                "type": "comment",
                "createdAt": _CREATED_AT,
                "author": {"name": pull.author},
                "data": {"edited": False, "hidden": False, "latest": {"raw": pull.title}},
            }],
            changes={"base": "refs/heads/main", **({"mergeCommitId": pull.sha} if pull.status == "merged" else {})},
            filesWithConflicts=[],
            diff="",
        )
        self._send_json(details)

    # -- files ----------------------------------------------------------------------------------------------

    def _resolve(self, repo_id: str, rev: str, filename: str, head: bool) -> None:
        revision = self._revision(self._repo(repo_id, files=True), rev)
        commit = {"X-Repo-Commit": revision.sha}
        if filename not in revision.files:
            # X-Repo-Commit lets the client record the absence in its cache (.no_exist/), as with the hub.
            raise _HubError(404, "EntryNotFound", "Entry not found", headers=commit)
        content = revision.files[filename]
        headers = {**commit, "ETag": f'"{git_blob_sha(content)}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if head:
            return self._send(200, headers, content_length=len(content))
        fault = self.server.hub._take_fault(repo_id, filename)
        if fault is not None and fault.status is not None:
            raise _HubError(fault.status, None, f"fakehub: fault answers {fault.status}")
        start, end = 0, len(content)  # end exclusive
        status = 200
        if (range_header := self.headers.get("Range")) is not None:
            start, end = self._parse_range(range_header, len(content))
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(content)}"
        self._send(status, headers, content_length=end - start)
        self._send_body(content, start, end, fault)

    @staticmethod
    def _parse_range(header: str, size: int) -> tuple[int, int]:
        match = _RANGE.match(header.strip())
        if match is None or match.groups() == ("", ""):
            raise _HubError(416, None, f"Invalid range {header!r}", {"Content-Range": f"bytes */{size}"})
        first, last = match.groups()
        if first:
            start, end = int(first), (min(int(last) + 1, size) if last else size)
        else:  # suffix range: the last N bytes
            start, end = max(size - int(last), 0), size
        if start >= size or start >= end:
            raise _HubError(416, None, f"Range {header!r} not satisfiable", {"Content-Range": f"bytes */{size}"})
        return start, end

    def _send_body(self, content: bytes, start: int, end: int, fault: Fault | None) -> None:
        """Write content[start:end], misbehaving as `fault` says at the first of its offsets."""
        stop, action = end, None
        if fault is not None:
            for offset, name in ((fault.drop_after, "drop"), (fault.stall_after, "stall")):
                if offset is not None and offset < stop:
                    stop, action = max(offset, start), name
        self._write(content[start:stop], fault.bytes_per_s if fault is not None else None)
        if action is not None:
            self.close_connection = True
            if action == "stall":  # keep the socket open and silent until the server stops
                self.server.hub._stopping.wait()
            # A FIN with bytes still owed: httpx raises RemoteProtocolError, which hf_hub_download retries.
            # (Not RST: httpx would raise ReadError, which hf_hub_download does not retry.)
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _write(self, data: bytes, bytes_per_s: float | None) -> None:
        if not bytes_per_s:
            self.wfile.write(data)
            return
        step = max(1, int(bytes_per_s / 20))  # ~20 small writes a second: slow, but never silent for long
        for i in range(0, len(data), step):
            if self.server.hub._stopping.wait(step / bytes_per_s):
                raise ConnectionAbortedError("fakehub stopped")
            self.wfile.write(data[i:i + step])

    # -- low level ------------------------------------------------------------------------------------------

    def _send(self, status: int, headers: dict, content_length: int) -> None:
        self.send_response(status)
        self.send_header("X-Request-Id", f"fakehub-{uuid.uuid4().hex[:12]}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(content_length))
        self.end_headers()

    def _send_json(self, payload) -> None:
        body = json.dumps(payload).encode()
        self._send(200, {"Content-Type": "application/json; charset=utf-8"}, len(body))
        self.wfile.write(body)

    def _send_error(self, err: _HubError, head: bool) -> None:
        body = json.dumps({"error": err.message}).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **err.headers}
        if err.code is not None:
            headers["X-Error-Code"] = err.code
        headers["X-Error-Message"] = err.message
        self._send(err.status, headers, len(body))
        if not head:
            self.wfile.write(body)
