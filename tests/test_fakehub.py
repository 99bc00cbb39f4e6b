"""tests/fakehub.py against the real huggingface_hub 2.4 client functions (no network: 127.0.0.1 only).

Besides proving the fake works, these tests pin the client behaviours that tests built on it rely on —
how it retries, resumes and times out — so a huggingface_hub upgrade that changes them fails here first.
Every call passes `endpoint=` and `cache_dir=` explicitly: HF_ENDPOINT is read once, at import.
"""
from __future__ import annotations

import random
import types
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, constants, file_download, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import _CACHED_NO_EXIST, try_to_load_from_cache
from huggingface_hub.utils import _http

from .fakehub import FakeHub, Fault, PullRequest, Repo, Revision, git_blob_sha, unreachable_url

REPO_ID = "org/tiny-vit"
SF_TITLE = "Adding `safetensors` variant of this model"
CONFIG = b'{"model_type": "vit"}'
WEIGHTS = random.Random(0).randbytes(3_000_000)  # ~3 MB, deterministic
MAIN_FILES = {"config.json": CONFIG, "pytorch_model.bin": WEIGHTS, "docs/notes/readme.txt": b"notes"}
# The tree at refs/pr/1 is main's plus the added file, as the conversion bot's PRs are.
PR_FILES = {**MAIN_FILES, "model.safetensors": WEIGHTS[::-1]}


def make_repo(access: str = "public") -> Repo:
    return Repo(
        main=Revision(dict(MAIN_FILES)),
        pulls=[
            PullRequest(1, SF_TITLE, "SFconvertbot", files=dict(PR_FILES)),
            PullRequest(2, "Fix typo", "someone", status="closed", files=dict(MAIN_FILES)),
            PullRequest(3, "Update config", "someone", status="merged", files=dict(MAIN_FILES)),
        ],
        access=access,
    )


@pytest.fixture(autouse=True)
def online(monkeypatch):
    """conftest.py sets HF_HUB_OFFLINE=1 for the whole run and huggingface_hub reads it once, at import."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub():
    with FakeHub({REPO_ID: make_repo()}) as hub:
        yield hub


@pytest.fixture
def sleeps(monkeypatch):
    """Record, instead of sleeping, the client's retry waits (module-level `time.sleep` in both places)."""
    waits: list[float] = []
    fake_time = types.SimpleNamespace(sleep=waits.append)
    monkeypatch.setattr(_http, "time", fake_time)  # http_backoff: 1, 2, 4, 8, 8 s
    monkeypatch.setattr(file_download, "time", fake_time)  # http_get's resume loop: 1 s
    return waits


def progress_recorder():
    """A tqdm stand-in class recording what hf_hub_download reports, and the list of bars it made."""
    bars = []

    class Bar:
        def __init__(self, *args, total=None, initial=0, **kwargs):
            self.total, self.n, self.updates = total, initial, []
            bars.append(self)

        def update(self, n=1):
            self.n += n
            self.updates.append(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def close(self):
            pass

    return Bar, bars


def file_gets(hub, filename):
    """The GETs of one file, as (path, headers)."""
    return [(path, headers) for method, path, headers in hub.requests if method == "GET" and filename in path]


# -- metadata ------------------------------------------------------------------------------------------------


def test_model_info_and_file_list_at_main_pr_and_sha(hub):
    api = HfApi(endpoint=hub.url)
    repo = hub.repos[REPO_ID]

    main = api.model_info(REPO_ID, revision="main")
    assert main.sha == repo.main.sha and len(main.sha) == 40
    assert sorted(s.rfilename for s in main.siblings) == sorted(MAIN_FILES)

    pr = api.model_info(REPO_ID, revision="refs/pr/1", files_metadata=True)
    assert pr.sha == repo.pulls[0].sha != main.sha
    assert {s.rfilename: s.size for s in pr.siblings} == {p: len(c) for p, c in PR_FILES.items()}
    assert {s.rfilename: s.blob_id for s in pr.siblings}["config.json"] == git_blob_sha(CONFIG)

    assert api.model_info(REPO_ID, revision=pr.sha).sha == pr.sha  # a commit sha is a revision too
    assert api.model_info(REPO_ID).sha == main.sha  # no revision: /api/models/{id}

    assert sorted(api.list_repo_files(REPO_ID, revision="main")) == sorted(MAIN_FILES)
    assert sorted(api.list_repo_files(REPO_ID, revision="refs/pr/1")) == sorted(PR_FILES)

    paths = [path for _, path, _ in hub.requests]
    assert "/api/models/org/tiny-vit/revision/refs%2Fpr%2F1?blobs=true" in paths  # the PR ref is URL-encoded
    assert "/api/models/org/tiny-vit/tree/refs%2Fpr%2F1?recursive=true&expand=false" in paths


def test_list_repo_tree_shows_folders_and_recurses(hub):
    api = HfApi(endpoint=hub.url)
    top = {entry.path: type(entry).__name__ for entry in api.list_repo_tree(REPO_ID)}
    assert top == {"config.json": "RepoFile", "pytorch_model.bin": "RepoFile", "docs": "RepoFolder"}
    deep = {entry.path for entry in api.list_repo_tree(REPO_ID, "docs", recursive=True)}
    assert deep == {"docs/notes", "docs/notes/readme.txt"}
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(REPO_ID, "no-such-folder"))


# -- downloads -----------------------------------------------------------------------------------------------


def test_hf_hub_download_small_and_large_file_with_progress(hub, tmp_path, monkeypatch):
    config = hf_hub_download(REPO_ID, "config.json", revision="main", endpoint=hub.url, cache_dir=tmp_path)
    assert Path(config).read_bytes() == CONFIG
    # Non-LFS file: the cache blob is named after the ETag, the git blob sha1.
    assert Path(config).resolve().name == git_blob_sha(CONFIG)

    Bar, bars = progress_recorder()
    weights = hf_hub_download(REPO_ID, "pytorch_model.bin", revision="main", endpoint=hub.url,
                              cache_dir=tmp_path, tqdm_class=Bar)
    assert Path(weights).read_bytes() == WEIGHTS
    # The client reads the body in DOWNLOAD_CHUNK_SIZE (10 MiB) pieces and reports each piece once read, so a
    # file under 10 MiB makes a single update, at the very end.
    assert constants.DOWNLOAD_CHUNK_SIZE > len(WEIGHTS)
    assert [(bar.total, bar.updates) for bar in bars] == [(len(WEIGHTS), [len(WEIGHTS)])]

    # With smaller pieces the bar advances step by step.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 256 * 1024)
    Bar, bars = progress_recorder()
    hf_hub_download(REPO_ID, "pytorch_model.bin", revision="main", endpoint=hub.url, cache_dir=tmp_path,
                    tqdm_class=Bar, force_download=True)
    (bar,) = bars
    assert bar.total == bar.n == len(WEIGHTS)
    assert len(bar.updates) == -(-len(WEIGHTS) // (256 * 1024)) and all(n > 0 for n in bar.updates)

    methods = [(method, path) for method, path, _ in hub.requests]
    assert methods[:2] == [("HEAD", "/org/tiny-vit/resolve/main/config.json"),
                           ("GET", "/org/tiny-vit/resolve/main/config.json")]


def test_dropped_connection_resumes_with_range(hub, tmp_path, monkeypatch, sleeps):
    # Resume only starts after the last complete DOWNLOAD_CHUNK_SIZE piece (the partly read one is lost),
    # so use small pieces to make the resume point fall inside the file.
    chunk = 64 * 1024
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", chunk)
    hub.faults[(REPO_ID, "pytorch_model.bin")] = Fault(drop_after=1_000_000)

    path = hf_hub_download(REPO_ID, "pytorch_model.bin", revision="main", endpoint=hub.url, cache_dir=tmp_path)

    assert Path(path).read_bytes() == WEIGHTS
    resume_at = 1_000_000 // chunk * chunk
    assert [headers for _, headers in file_gets(hub, "pytorch_model.bin")] == [{}, {"Range": f"bytes={resume_at}-"}]
    assert sleeps == [1]  # http_get waits 1 s before each resume


def test_drop_before_first_chunk_restarts_without_range(hub, tmp_path, sleeps):
    # With the default 10 MiB pieces nothing of a 3 MB file is kept when the connection drops: the retry
    # starts over with a plain GET.
    hub.faults[(REPO_ID, "pytorch_model.bin")] = Fault(drop_after=1_000_000)
    path = hf_hub_download(REPO_ID, "pytorch_model.bin", revision="main", endpoint=hub.url, cache_dir=tmp_path)
    assert Path(path).read_bytes() == WEIGHTS
    assert [headers for _, headers in file_gets(hub, "pytorch_model.bin")] == [{}, {}]


def test_snapshot_download_at_pr_with_allow_patterns(hub, tmp_path):
    folder = snapshot_download(REPO_ID, revision="refs/pr/1", allow_patterns=["*.json", "*.safetensors"],
                               endpoint=hub.url, cache_dir=tmp_path)
    pr_sha = hub.repos[REPO_ID].pulls[0].sha
    assert Path(folder).name == pr_sha
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}
    assert files == {"config.json": CONFIG, "model.safetensors": PR_FILES["model.safetensors"]}
    # repo_info resolves the ref once; the listing and the files are then asked for by commit sha.
    paths = [path for _, path, _ in hub.requests]
    assert paths[:2] == ["/api/models/org/tiny-vit/revision/refs%2Fpr%2F1",
                         f"/api/models/org/tiny-vit/tree/{pr_sha}?recursive=true&expand=false"]
    assert all(f"/resolve/{pr_sha}/" in path for path in paths[2:])


# -- discussions ---------------------------------------------------------------------------------------------


def test_get_repo_discussions_finds_the_safetensors_pr(hub):
    api = HfApi(endpoint=hub.url)
    pulls = list(api.get_repo_discussions(REPO_ID))
    assert {(d.num, d.status) for d in pulls} == {(1, "open"), (2, "closed"), (3, "merged")}
    (sf,) = [d for d in pulls if d.author == "SFconvertbot" and d.title == SF_TITLE and d.status == "open"]
    assert sf.is_pull_request and sf.git_reference == "refs/pr/1"
    # The ref it names is what model_info / hf_hub_download are asked for next.
    assert api.model_info(REPO_ID, revision=sf.git_reference).sha == hub.repos[REPO_ID].pulls[0].sha

    assert [d.num for d in api.get_repo_discussions(REPO_ID, discussion_status="open")] == [1]
    assert [d.num for d in api.get_repo_discussions(REPO_ID, author="someone", discussion_type="pull_request")] \
        == [3, 2]

    details = api.get_discussion_details(REPO_ID, 3)
    assert (details.status, details.target_branch, details.merge_commit_oid) == \
        ("merged", "refs/heads/main", hub.repos[REPO_ID].pulls[2].sha)
    with pytest.raises(HfHubHTTPError):
        api.get_discussion_details(REPO_ID, 99)


def test_get_repo_discussions_follows_pages(hub):
    hub.DISCUSSIONS_PAGE_SIZE = 2
    assert [d.num for d in HfApi(endpoint=hub.url).get_repo_discussions(REPO_ID)] == [3, 2, 1]
    pages = [path for _, path, _ in hub.requests if "/discussions" in path]
    assert pages == ["/api/models/org/tiny-vit/discussions?p=0", "/api/models/org/tiny-vit/discussions?p=1"]


# -- errors --------------------------------------------------------------------------------------------------


def test_gated_repo_serves_metadata_but_not_files(tmp_path):
    with FakeHub({REPO_ID: make_repo(access="gated")}) as hub:
        api = HfApi(endpoint=hub.url)
        assert api.model_info(REPO_ID).gated == "auto"  # as on the real hub: gated repos are listed
        with pytest.raises(GatedRepoError) as err:
            hf_hub_download(REPO_ID, "config.json", endpoint=hub.url, cache_dir=tmp_path)
        assert err.value.response.status_code == 401
        with pytest.raises(GatedRepoError):
            snapshot_download(REPO_ID, endpoint=hub.url, cache_dir=tmp_path)


@pytest.mark.parametrize("access, status", [("missing", 404), ("private", 401), (None, 404)])
def test_missing_or_private_repo_is_repository_not_found(tmp_path, access, status):
    repos = {} if access is None else {REPO_ID: make_repo(access=access)}
    with FakeHub(repos) as hub:
        calls = [
            lambda: HfApi(endpoint=hub.url).model_info(REPO_ID),
            lambda: hf_hub_download(REPO_ID, "config.json", endpoint=hub.url, cache_dir=tmp_path),
            lambda: snapshot_download(REPO_ID, endpoint=hub.url, cache_dir=tmp_path),
        ]
        for call in calls:
            with pytest.raises(RepositoryNotFoundError) as err:
                call()
            assert not isinstance(err.value, GatedRepoError)  # GatedRepoError subclasses RepositoryNotFoundError
            assert err.value.response.status_code == status


def test_missing_file_is_entry_not_found(hub, tmp_path):
    with pytest.raises(RemoteEntryNotFoundError) as err:
        hf_hub_download(REPO_ID, "model.safetensors", revision="main", endpoint=hub.url, cache_dir=tmp_path)
    assert isinstance(err.value, EntryNotFoundError) and err.value.response.status_code == 404
    # The 404 carries X-Repo-Commit, so the client caches the file's absence at that commit.
    cached = try_to_load_from_cache(REPO_ID, "model.safetensors", cache_dir=tmp_path, revision="main")
    assert cached is _CACHED_NO_EXIST


def test_unknown_revision_is_revision_not_found(hub, tmp_path):
    with pytest.raises(RevisionNotFoundError):
        HfApi(endpoint=hub.url).model_info(REPO_ID, revision="refs/pr/42")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO_ID, "config.json", revision="v9", endpoint=hub.url, cache_dir=tmp_path)


def test_server_error_500_and_how_each_call_retries(hub, tmp_path, sleeps):
    hub.set_status(500)

    # HfApi metadata calls: one request, no retry.
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=hub.url).model_info(REPO_ID)
    assert err.value.response.status_code == 500 and len(hub.requests) == 1 and sleeps == []

    # hf_hub_download: one HEAD without retry, then (nothing cached) 6 more with backoff; then it reports
    # "cannot find the file in the local cache", the 500 being the cause.
    hub.requests.clear()
    with pytest.raises(LocalEntryNotFoundError) as err:
        hf_hub_download(REPO_ID, "config.json", endpoint=hub.url, cache_dir=tmp_path)
    assert isinstance(err.value.__cause__, HfHubHTTPError) and err.value.__cause__.response.status_code == 500
    assert [method for method, _, _ in hub.requests] == ["HEAD"] * 7
    assert sleeps == [1, 2, 4, 8, 8]

    # snapshot_download: its repo_info is not retried either; also LocalEntryNotFoundError.
    hub.requests.clear()
    with pytest.raises(LocalEntryNotFoundError):
        snapshot_download(REPO_ID, endpoint=hub.url, cache_dir=tmp_path)
    assert len(hub.requests) == 1

    # A 500 on the file GET only (HEAD fine) is raised at once: GETs retry 408/429, not 5xx.
    hub.set_status(None)
    hub.requests.clear()
    sleeps.clear()
    hub.faults[(REPO_ID, "config.json")] = Fault(status=500)
    with pytest.raises(HfHubHTTPError) as err:
        hf_hub_download(REPO_ID, "config.json", endpoint=hub.url, cache_dir=tmp_path)
    assert err.value.response.status_code == 500
    assert [method for method, _, _ in hub.requests] == ["HEAD", "GET"] and sleeps == []
    # The fault was used up (times=1): the next call succeeds.
    assert Path(hf_hub_download(REPO_ID, "config.json", endpoint=hub.url, cache_dir=tmp_path)).read_bytes() == CONFIG


def test_unreachable_hub(tmp_path, sleeps):
    url = unreachable_url()
    with pytest.raises(httpx2.ConnectError):
        HfApi(endpoint=url).model_info(REPO_ID)
    with pytest.raises(LocalEntryNotFoundError) as err:
        hf_hub_download(REPO_ID, "config.json", endpoint=url, cache_dir=tmp_path)
    assert isinstance(err.value.__cause__, httpx2.ConnectError)
    assert sleeps == [1, 2, 4, 8, 8]


# -- slow and stalled servers --------------------------------------------------------------------------------


@pytest.mark.timeout(60)  # a guard against a hang, far above the ~2 s this takes
def test_stalled_download_fails_with_read_timeout(hub, tmp_path, monkeypatch, sleeps):
    # The body read timeout is constants.HF_HUB_DOWNLOAD_TIMEOUT (env HF_HUB_DOWNLOAD_TIMEOUT, integer
    # seconds, default 10), read at call time: patch the constant for a sub-second one.
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.3)
    hub.faults[(REPO_ID, "pytorch_model.bin")] = Fault(stall_after=1000, times=10**9)

    with pytest.raises(httpx2.ReadTimeout):
        hf_hub_download(REPO_ID, "pytorch_model.bin", endpoint=hub.url, cache_dir=tmp_path)

    # First GET plus 5 resumes without progress (bytes arriving reset the count), 1 s apart.
    assert len(file_gets(hub, "pytorch_model.bin")) == 6 and sleeps == [1] * 5
    assert not list(tmp_path.rglob("*.incomplete"))  # the partial download is removed
    # Leaving the `hub` fixture with six stalled connections open must not hang (guarded by the timeout).


def test_stall_once_then_resume(hub, tmp_path, monkeypatch, sleeps):
    chunk = 64 * 1024
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.3)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", chunk)
    hub.faults[(REPO_ID, "pytorch_model.bin")] = Fault(stall_after=200_000)

    path = hf_hub_download(REPO_ID, "pytorch_model.bin", endpoint=hub.url, cache_dir=tmp_path)

    assert Path(path).read_bytes() == WEIGHTS
    resume_at = 200_000 // chunk * chunk
    assert [headers for _, headers in file_gets(hub, "pytorch_model.bin")] == [{}, {"Range": f"bytes={resume_at}-"}]


def test_slow_server_is_not_a_timeout(hub, tmp_path, monkeypatch):
    # The timeout bounds each wait for bytes, not the whole download: a body taking ~1.5 s at a steady
    # trickle (a write every 50 ms) passes a 1 s timeout without any retry.
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    hub.repos[REPO_ID].main.files["slow.bin"] = slow = random.Random(1).randbytes(150_000)
    hub.faults[(REPO_ID, "slow.bin")] = Fault(bytes_per_s=100_000)

    path = hf_hub_download(REPO_ID, "slow.bin", endpoint=hub.url, cache_dir=tmp_path)

    assert Path(path).read_bytes() == slow
    assert len(file_gets(hub, "slow.bin")) == 1


def test_range_answers(hub):
    """The fake's own Range handling, beyond the `bytes=N-` the client sends."""
    url = f"{hub.url}/{REPO_ID}/resolve/main/config.json"
    size = len(CONFIG)
    for header, body in [("bytes=5-", CONFIG[5:]), ("bytes=2-4", CONFIG[2:5]), ("bytes=-3", CONFIG[-3:])]:
        response = httpx2.get(url, headers={"Range": header})
        assert (response.status_code, response.content) == (206, body)
        start = size - len(body) if header.startswith("bytes=-") else int(header[6:].split("-")[0])
        assert response.headers["Content-Range"] == f"bytes {start}-{start + len(body) - 1}/{size}"
    response = httpx2.get(url, headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416 and response.headers["Content-Range"] == f"bytes */{size}"
