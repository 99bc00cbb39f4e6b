"""Trained weights of the supported hub checkpoints: where they come from, every layout a hub repo has, and one
download per process that every waiting session can follow.

Where the files come from, in order (`find_local`, then `fetch`):
1. `VITVIZ_WEIGHTS_DIR/<preset>/`: a portable copy written by `python3 tasks.py download --to DIR` (a USB stick, a
   machine without network): config.json, model.safetensors, preprocessor_config.json.
2. The Hugging Face cache (`HF_HUB_CACHE`, or `HF_HOME`/hub), as earlier downloads left it.
3. The hub, or the mirror in `HF_ENDPOINT` (schools where huggingface.co is blocked use one), unless
   `HF_HUB_OFFLINE` is set.

The layouts a repo has, tried in transformers' order (its `modeling_utils` loader and `get_conversion_pr_reference`):
`model.safetensors` in the main revision; sharded safetensors (`model.safetensors.index.json`, whose `weight_map`
names the shard of every key); safetensors only in the open pull request the hub's conversion bot opened ("Adding
`safetensors` variant of this model", revision `refs/pr/N`); only `pytorch_model.bin` (or its sharded index), which
is read once with PyTorch's restricted unpickler (`weights_only=True`: tensors and plain containers,
never code) and written as safetensors beside the cache, so that every later load reads safetensors. Nothing else
here ever unpickles. One function (`choose_layout`) picks the layout from a revision's file names, for the hub's file
list and for a snapshot on this machine alike: a main snapshot that another tool downloaded with only pickled weights
is converted offline exactly as a download is.

huggingface_hub reads its environment at import; this module reads `HF_ENDPOINT`, `HF_HUB_CACHE` and
`HF_HUB_OFFLINE` at every call instead, so that a process can be pointed at a mirror or taken offline at any time.

A download's failure outlives the run that started it (every waiting session reads it, each in its own language), so
the errors a download can raise are written by a function (`_sentence`) that `ModelLoadError.in_language` calls again
for each reader.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .i18n import N_, _

CONVERSION_PR_TITLE = "Adding `safetensors` variant of this model"
CONVERSION_BOT = "SFconvertbot"
REACH_TIMEOUT_S = 3.0  # a hub that has not answered the repo's file list in this time counts as unreachable
RETRY_AFTER_S = 300.0  # a failed download is not tried again for this long (each try would cost a page 3 s)
_SAFETENSORS, _SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
_BIN, _BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
_EXTRA_FILES = ("config.json", "preprocessor_config.json")


class ModelLoadError(ValueError):
    """A model source that cannot be loaded; the message is one sentence a user can act on, in the language of the
    run that raised it. Raised with a function that writes the sentence instead (`_sentence`), the error can also
    say it in another run's language (`in_language`): a background download's failure is read by every session."""

    def __init__(self, message: str | Callable[[], str]):
        self.render = message if callable(message) else None
        super().__init__(message() if callable(message) else message)

    def in_language(self) -> str:
        """The message in the current run's language (as raised, where it was raised as a plain sentence)."""
        return self.render() if self.render is not None else str(self)


def _sentence(message: str, **fields) -> Callable[[], str]:
    """A function that writes `message` (marked with N_) with `fields` in the language of the run that calls it."""
    return lambda: _(message).format(**fields)


@dataclass(frozen=True)
class LocalCheckpoint:
    """A checkpoint whose files are all on this machine."""

    folder: Path  # holds config.json and, where the repo has one, preprocessor_config.json
    weights: tuple[Path, ...]  # safetensors files; several for a sharded checkpoint
    origin: str  # "weights dir" | "cache" | "hub" (just downloaded)
    layout: str  # how the repo keeps its weights, e.g. "model.safetensors" or "pytorch_model.bin (converted)"

    @property
    def megabytes(self) -> float:
        return sum(p.stat().st_size for p in self.weights) / 1e6


@dataclass(frozen=True)
class HubSettings:
    endpoint: str  # the hub or a mirror
    cache_dir: Path  # the Hugging Face hub cache
    offline: bool  # HF_HUB_OFFLINE: never ask the network

    @property
    def vitviz_dir(self) -> Path:
        """vitviz's own files beside the HF cache: which revision and layout a download found, converted weights."""
        return Path(os.environ.get("VITVIZ_CACHE") or self.cache_dir.parent / "vitviz")


def settings() -> HubSettings:
    from huggingface_hub import constants

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return HubSettings(endpoint=os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/"),
                       cache_dir=Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE), offline=offline)


def _record_file(s: HubSettings, repo_id: str) -> Path:
    return s.vitviz_dir / "resolved" / f"{repo_id.replace('/', '--')}.json"


def _converted_file(s: HubSettings, repo_id: str, revision: str) -> Path:
    return s.vitviz_dir / "converted" / repo_id.replace("/", "--") / revision / _SAFETENSORS


# ------------------------------------------------------------------------------------------------ layouts


@dataclass(frozen=True)
class Layout:
    """How one revision of a repo keeps its weights: `choose_layout`'s answer for its list of files."""

    sentence: str  # what LocalCheckpoint.layout says, e.g. "sharded safetensors"
    weights: str  # the weight file to read first: the weights themselves, or the index that names the shards
    converted: bool  # pickled weights: read once with the restricted unpickler and written as safetensors

    @property
    def sharded(self) -> bool:
        return self.weights.endswith(".index.json")


# A main revision's layouts in transformers' order (its modeling_utils loader); the conversion bot's pull request
# is asked between the safetensors and the pickles (`_fetch`).
_MAIN_LAYOUTS = (
    Layout("model.safetensors", _SAFETENSORS, converted=False),
    Layout("sharded safetensors", _SAFETENSORS_INDEX, converted=False),
    Layout("pytorch_model.bin (converted to safetensors)", _BIN, converted=True),
    Layout("sharded pytorch_model.bin (converted to safetensors)", _BIN_INDEX, converted=True),
)


def choose_layout(files: Collection[str], pull_request: str | None = None) -> Layout | None:
    """The layout of a revision whose files are named `files` (a repo's file list, or a snapshot folder's), the
    first of transformers' order that is there; None where the revision has no weights vitviz can read.
    `pull_request` (refs/pr/N): `files` are the conversion bot's pull request, where only its safetensors count."""
    if pull_request is None:
        return next((layout for layout in _MAIN_LAYOUTS if layout.weights in files), None)
    sentence = f"safetensors in the conversion pull request {pull_request}"
    if _SAFETENSORS in files:
        return Layout(sentence, _SAFETENSORS, converted=False)
    if _SAFETENSORS_INDEX in files:
        return Layout(f"{sentence} (sharded)", _SAFETENSORS_INDEX, converted=False)
    return None


def _files_in(folder: Path) -> set[str]:
    """The names of the files a folder holds (a snapshot's links to deleted blobs are not files)."""
    return {p.name for p in folder.iterdir() if p.is_file()}


def _layout_files(folder: Path, layout: Layout) -> list[str] | None:
    """`layout`'s files in `folder`: its weight file, then the shards an index names; None unless all are there."""
    if not (folder / layout.weights).is_file():
        return None
    if not layout.sharded:
        return [layout.weights]
    shards = _shards(folder / layout.weights)
    return [layout.weights, *shards] if shards and all((folder / name).is_file() for name in shards) else None


def _weight_files(layout: Layout, files: list[str]) -> list[str]:
    """The files of `files` (`_layout_files`' list) that hold tensors: all but an index."""
    return files[1:] if layout.sharded else files


# ------------------------------------------------------------------------------------------------ local lookups


def find_local(repo_id: str, preset: str | None = None) -> LocalCheckpoint | None:
    """The checkpoint of `repo_id` if it is complete on this machine (portable copy of `preset`, then the HF
    cache), without any network access; None otherwise. Offline, a main snapshot with only pytorch_model.bin is
    converted here as `fetch` converts it (ModelLoadError where its pickle is refused); online, `fetch` decides."""
    s = settings()
    if preset and (root := os.environ.get("VITVIZ_WEIGHTS_DIR")):
        folder = Path(root) / preset
        try:
            weights = safetensors_in(folder) if (folder / "config.json").is_file() else None
        except PermissionError as err:  # a mounted volume owned by another user (a container's non-root app)
            raise ModelLoadError(_sentence(N_("The weights folder {folder} cannot be read by this server (permission "
                                              "denied): make it readable to every user, e.g. chmod -R a+rX."),
                                           folder=str(folder))) from err
        if weights:
            return LocalCheckpoint(folder, weights, "weights dir", "portable copy")
    return _from_record(s, repo_id) or _from_main_snapshot(s, repo_id)


def safetensors_in(folder: Path) -> tuple[Path, ...] | None:
    """The safetensors files of a checkpoint folder: one file, or the shards its index names (all present)."""
    layout = choose_layout(_files_in(folder))
    files = _layout_files(folder, layout) if layout is not None and not layout.converted else None
    return tuple(folder / name for name in _weight_files(layout, files)) if files else None


def _shards(index_file: Path) -> list[str]:
    """The shard files an index names, in order of first appearance."""
    try:
        weight_map = json.loads(index_file.read_text())["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(_sentence(N_("{name} of this checkpoint is not a valid shard index."),
                                       name=index_file.name)) from err
    names = list(dict.fromkeys(weight_map.values()))
    if any("/" in n or "\\" in n or n.startswith(".") for n in names):  # an index must not point outside the repo
        raise ModelLoadError(_sentence(N_("{name} names shard files outside the checkpoint."), name=index_file.name))
    return names


def _cached(s: HubSettings, repo_id: str, filename: str, revision: str) -> Path | None:
    # The cache's layout (models--org--name): without the repo's folder there is nothing to find, and the lookup
    # below imports ~0.2 s of huggingface_hub's download code into the first page of a machine without weights.
    if not (s.cache_dir / f"models--{repo_id.replace('/', '--')}").is_dir():
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=s.cache_dir, revision=revision)
    return Path(found) if isinstance(found, str) else None


def _from_record(s: HubSettings, repo_id: str) -> LocalCheckpoint | None:
    """What an earlier `fetch` or conversion recorded: the revision, layout and files it used, if they are all still
    in the cache (the record keeps the layout chosen then, e.g. the conversion pull request's)."""
    try:
        record = json.loads(_record_file(s, repo_id).read_text())
        revision, files = record["revision"], list(record["files"])
        layout = Layout(record["layout"], files[0], converted="converted" in record)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    config = _cached(s, repo_id, "config.json", revision)
    if config is None or not all((config.parent / name).is_file() for name in files):
        return None
    return _checkpoint(s, repo_id, config.parent, layout, files, "cache")


def _from_main_snapshot(s: HubSettings, repo_id: str) -> LocalCheckpoint | None:
    """The main snapshot (refs/main -> snapshots/<revision>/) that another tool downloaded (huggingface-cli,
    transformers), in whichever layout its files have."""
    config = _cached(s, repo_id, "config.json", "main")
    if config is None:
        return None
    layout = choose_layout(_files_in(config.parent))
    if layout is None or (layout.converted and not s.offline):
        # Online, pickled weights are the hub's to decide: its conversion pull request comes first (`_fetch`).
        return None
    files = _layout_files(config.parent, layout)
    return _checkpoint(s, repo_id, config.parent, layout, files, "cache") if files else None


_conversion_locks: dict[str, threading.Lock] = {}
_conversion_locks_guard = threading.Lock()


def _conversion_lock(repo_id: str) -> threading.Lock:
    """One lock per repo for converting its pickled weights (a 1.2 GB state dict unpickled once, not per session)."""
    with _conversion_locks_guard:
        return _conversion_locks.setdefault(repo_id, threading.Lock())


def _checkpoint(s: HubSettings, repo_id: str, folder: Path, layout: Layout, files: list[str], origin: str
                ) -> LocalCheckpoint:
    """The checkpoint whose `files` (`layout`'s, all there) are in the snapshot `folder` of the HF cache (named by
    its revision). Pickled weights are converted once, into vitviz's cache beside it, whoever found them (`fetch` or
    a lookup); a download or a conversion is recorded, so that the next lookup goes straight to its files."""
    weights = tuple(folder / name for name in _weight_files(layout, files))
    record = {"revision": folder.name, "files": files, "layout": layout.sentence}
    wrote = origin == "hub"
    if layout.converted:
        out = _converted_file(s, repo_id, folder.name)
        with _conversion_lock(repo_id):  # sessions asking at once: one unpickles, the others find its file
            if not out.is_file():
                convert_bin(list(weights), out)
                wrote = True
        record["converted"], weights = str(out), (out,)
    if wrote:
        write_atomically(_record_file(s, repo_id), lambda tmp: tmp.write_bytes(json.dumps(record).encode()))
    return LocalCheckpoint(folder, weights, origin, layout.sentence)


# ------------------------------------------------------------------------------------------------ the hub


def fetch(repo_id: str, tqdm_class=None, on_files: Callable[[list[tuple[str, int]]], None] | None = None
          ) -> LocalCheckpoint:
    """Download the checkpoint of `repo_id` into the HF cache, in whichever layout the repo has, and return it.

    `tqdm_class` is handed to huggingface_hub for every file (its progress bars); `on_files` is told, before any
    file is fetched, the (name, bytes) of every file this checkpoint needs. Raises ModelLoadError with a sentence
    that says what went wrong (unreachable, not found, gated, server error, stalled)."""
    s = settings()
    if s.offline:
        raise ModelLoadError(_sentence(N_("{repo} is not on this machine and HF_HUB_OFFLINE is set, so the hub is not "
                                          "asked."), repo=repo_id))
    with _hub_errors(repo_id, s):
        return _fetch(s, repo_id, tqdm_class, on_files)


def _fetch(s: HubSettings, repo_id: str, tqdm_class, on_files) -> LocalCheckpoint:
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi(endpoint=s.endpoint)
    revision, sizes = _file_sizes(api, repo_id, "main")
    layout = choose_layout(sizes)
    if layout is None or layout.converted:  # transformers takes the bot's safetensors before it unpickles
        pr = _conversion_pr(api, repo_id)
        if pr is not None:
            pr_revision, pr_sizes = _file_sizes(api, repo_id, pr)
            if (pr_layout := choose_layout(pr_sizes, pr)) is not None:
                revision, sizes, layout = pr_revision, pr_sizes, pr_layout
    if layout is None:
        raise ModelLoadError(_sentence(N_("{repo} has no weights vitviz can read (no safetensors, no "
                                          "pytorch_model.bin)."), repo=repo_id))
    if "config.json" not in sizes:
        raise ModelLoadError(_sentence(N_("{name} has no config.json, so it is not a transformers-format checkpoint."),
                                       name=repo_id))

    def get(name: str) -> Path:
        return Path(hf_hub_download(repo_id, name, revision=revision, cache_dir=s.cache_dir, endpoint=s.endpoint,
                                    tqdm_class=tqdm_class))

    folder, files = _download(get, sizes, layout, on_files)
    return _checkpoint(s, repo_id, folder, layout, files, "hub")


def _file_sizes(api, repo_id: str, revision: str) -> tuple[str, dict[str, int]]:
    """The commit a revision (main, refs/pr/N) is at, and the size of each of its files by name."""
    info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=REACH_TIMEOUT_S)
    return info.sha, {f.rfilename: f.size or 0 for f in info.siblings or []}


def _download(get: Callable[[str], Path], sizes: dict[str, int], layout: Layout, on_files
              ) -> tuple[Path, list[str]]:
    """Fetch (`get`) the configs and `layout`'s files of one revision; its snapshot folder and the layout's files."""
    extras = [name for name in _EXTRA_FILES if name in sizes]
    if on_files is not None:
        on_files([(name, sizes.get(name, 0)) for name in [*extras, layout.weights]])
    folder = get("config.json").parent
    for name in extras[1:]:
        get(name)
    first = get(layout.weights)
    if not layout.sharded:
        return folder, [layout.weights]
    shards = _shards(first)  # a small JSON, then the shards it names
    if on_files is not None:
        on_files([(name, sizes.get(name, 0)) for name in shards])
    for name in shards:
        get(name)
    return folder, [layout.weights, *shards]


def _conversion_pr(api, repo_id: str) -> str | None:
    """The git reference (refs/pr/N) of the open pull request in which the hub's bot added safetensors, or None."""
    for discussion in api.get_repo_discussions(repo_id):
        if (discussion.is_pull_request and discussion.status == "open" and discussion.author == CONVERSION_BOT
                and discussion.title == CONVERSION_PR_TITLE):
            return discussion.git_reference
    return None


class _hub_errors:
    """Turns huggingface_hub's and the network's exceptions into one ModelLoadError sentence."""

    def __init__(self, repo_id: str, s: HubSettings):
        self.repo_id, self.s = repo_id, s

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if err is None or isinstance(err, ModelLoadError):
            return False
        raise ModelLoadError(lambda: self.describe(err)) from err

    def describe(self, err: BaseException) -> str:
        """What went wrong, in one sentence in the current run's language."""
        from huggingface_hub import errors

        where = (_("the Hugging Face hub") if "huggingface.co" in self.s.endpoint else
                 _("the hub at {endpoint}").format(endpoint=self.s.endpoint))
        status = _status(err)
        if isinstance(err, errors.GatedRepoError) or status in (401, 403):
            return _("{repo} is gated or private on {where}: it needs an access token, so it cannot be downloaded "
                     "here.").format(repo=self.repo_id, where=where)
        if isinstance(err, (errors.RepositoryNotFoundError, errors.RevisionNotFoundError)) or status == 404:
            return _("{repo} was not found on {where} (is the mirror complete?).").format(repo=self.repo_id, where=where)
        if status is not None and status >= 500:
            return _("{where} answered with a server error ({status}) for {repo}; try again later.").format(
                where=where, status=status, repo=self.repo_id)
        if _is_timeout(err):
            return _("the download of {repo} from {where} stalled (no data for {seconds:.0f} s); check the network "
                     "and try again.").format(repo=self.repo_id, where=where, seconds=_download_timeout())
        return _("{where} cannot be reached ({error}), so {repo} was not downloaded.").format(
            where=where, error=type(err).__name__, repo=self.repo_id)


def _causes(err: BaseException | None):
    """`err` and the errors it was raised from, innermost last (huggingface_hub wraps network errors)."""
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


def _status(err: BaseException | None) -> int | None:
    """The HTTP status behind an error, also where huggingface_hub wrapped it (a 500 on a file's metadata becomes a
    LocalEntryNotFoundError after its retries)."""
    return next((status for e in _causes(err)
                 if (status := getattr(getattr(e, "response", None), "status_code", None)) is not None), None)


def _is_timeout(err: BaseException) -> bool:
    return any(isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ for e in _causes(err))


def _download_timeout() -> float:
    from huggingface_hub import constants

    return float(constants.HF_HUB_DOWNLOAD_TIMEOUT)


# ------------------------------------------------------------------------------------------------ files


def convert_bin(paths: list[Path], out: Path) -> Path:
    """Read `pytorch_model.bin` files with PyTorch's restricted unpickler and write their tensors to `out` as one
    safetensors file (atomically: a process that reads `out` never sees half of it). A pickle that names anything
    but tensors and plain containers (code to run) is refused with a ModelLoadError before any of it runs."""
    from safetensors.torch import save_file

    state: dict[str, torch.Tensor] = {}
    for path in paths:
        try:
            part = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # restricted unpickler
        except RuntimeError as err:
            if "zip" not in str(err).lower():  # only the legacy (pre-zip) format cannot be memory-mapped
                raise ModelLoadError(_sentence(N_("{name} is not a readable PyTorch checkpoint."),
                                               name=path.name)) from err
            part = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # the restricted unpickler's UnpicklingError, a truncated file, …
            raise ModelLoadError(_sentence(N_("{name} was refused: it holds more than tensors (a pickle that could run "
                                              "code) or is damaged, so it was not loaded."), name=path.name)) from err
        if not isinstance(part, dict) or not all(isinstance(v, torch.Tensor) for v in part.values()):
            raise ModelLoadError(_sentence(N_("{name} does not hold a state dict of tensors."), name=path.name))
        state.update({k: v.contiguous().clone() for k, v in part.items()})  # safetensors refuses shared storage
    write_atomically(out, lambda tmp: save_file(state, str(tmp)))
    return out


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` writes the file's content to a temporary name beside `path` (unique per process and thread),
    which then replaces `path` in one step: a reader, in this process or another, never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ one download per process


@dataclass
class Download:
    """A download running in a background thread of this process, which every session can read."""

    repo_id: str
    state: str = "checking"  # checking (asking the hub) | downloading | done | failed
    total_bytes: int = 0  # of every file announced so far
    done_bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    failure: ModelLoadError | None = None  # why it failed, when failed (`error` says it)

    @property
    def error(self) -> str | None:
        """Why the download failed, in the current run's language (each session that reads it has its own)."""
        return self.failure.in_language() if self.failure is not None else None

    @property
    def mb_per_s(self) -> float:
        elapsed = (self.ended or time.monotonic()) - self.started
        return self.done_bytes / 1e6 / elapsed if elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        rate = self.mb_per_s * 1e6
        return (self.total_bytes - self.done_bytes) / rate if rate > 0 and self.total_bytes else None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done_bytes / self.total_bytes) if self.total_bytes else 0.0


_downloads: dict[str, Download] = {}
_downloads_lock = threading.Lock()


def download_in_background(repo_id: str) -> Download:
    """The download of `repo_id` in this process: started now in a daemon thread unless one is running, has
    finished, or failed less than RETRY_AFTER_S ago (then that one is returned, so a failure is remembered)."""
    with _downloads_lock:
        current = _downloads.get(repo_id)
        if current is not None and (current.state != "failed" or current.ended is None
                                    or time.monotonic() - current.ended < RETRY_AFTER_S):
            return current
        download = _downloads[repo_id] = Download(repo_id)
    threading.Thread(target=_run_download, args=(download,), name=f"download {repo_id}", daemon=True).start()
    return download


def download_of(repo_id: str) -> Download | None:
    """The latest download of `repo_id` this process started, without starting one."""
    with _downloads_lock:
        return _downloads.get(repo_id)


def _run_download(download: Download) -> None:
    lock = threading.Lock()
    seen: set[str] = set()

    def on_files(files: list[tuple[str, int]]) -> None:
        with lock:
            for name, size in files:
                if name not in seen:
                    seen.add(name)
                    download.total_bytes += size
            download.state = "downloading"

    def add(n) -> None:
        with lock:
            download.done_bytes += int(n or 0)

    from tqdm.auto import tqdm

    class Progress(tqdm):
        """huggingface_hub's per-file bar, reporting its bytes to the shared Download instead of a terminal."""

        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            add(kwargs.get("initial", 0))  # the part of a resumed file that was already there

        def update(self, n=1):
            add(n)
            return super().update(n)

        def update_transfer(self, n=1):
            """Xet downloads report bytes received here as well as bytes rebuilt in update(): count one of them."""

    try:
        fetch(download.repo_id, tqdm_class=Progress, on_files=on_files)
    except Exception as err:  # never let a background thread die silently: the sessions wait on its state
        download.failure = err if isinstance(err, ModelLoadError) else ModelLoadError(_sentence(
            N_("the download of {repo} failed ({error})."), repo=download.repo_id, error=type(err).__name__))
        download.ended, download.state = time.monotonic(), "failed"  # ended first: readers compare it once failed
    else:
        download.done_bytes = max(download.done_bytes, download.total_bytes)
        download.ended, download.state = time.monotonic(), "done"

