"""The shared sidebar (image, model, resolution) and what every page needs from it.

Settings that make sense in a link are widgets bound to query parameters, so a teacher can share a URL that
opens the same page, sample image and settings. Heavy objects live in bounded caches, never in session state.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch
from PIL import Image

import vitviz
from vitviz import hub
from vitviz.images import SAMPLES, load_sample
from vitviz.models import vit as vit_models
from vitviz.models.common import pick_device
from vitviz.preprocess import resize_and_crop, to_pixel_values
from vitviz.i18n import N_, _
from vitviz.weights import DOWNLOAD_COMMAND

from . import i18n
from .stages import neighbours
from .stages import stage as stage_of

VIT_MODELS = {  # preset -> description (English; shown through _())
    "dino-vits16": N_("DINO ViT-S/16 (self-supervised)"),
    "dino-vits8": N_("DINO ViT-S/8 (self-supervised)"),
    "deit-tiny": N_("DeiT-Tiny/16 (ImageNet classifier)"),
    "vit-base-16": N_("ViT-B/16 (ImageNet classifier)"),
    "dinov2-small": N_("DINOv2 ViT-S/14 (self-supervised)"),
    "dinov2-small-reg": N_("DINOv2 ViT-S/14 with 4 registers"),
    "dinov2-small-cls": N_("DINOv2 ViT-S/14 + linear ImageNet classifier"),
    "dinov2-large": N_("DINOv2 ViT-L/14 (a 1.2 GB download)"),
    "dinov2-large-reg": N_("DINOv2 ViT-L/14 with 4 registers (a 1.2 GB download)"),
}
SOURCES = {"sample": N_("Sample photo"), "upload": N_("Upload"), "camera": N_("Camera")}
RESOLUTIONS = list(range(64, 513, 16))
# Beyond this many tokens a full encoder pass takes minutes on a laptop CPU (attention is quadratic); pages that
# run the encoder say so instead. dino-vits8 at 480×480 (3,601 tokens) stays within it.
ENCODER_TOKEN_LIMIT = 4096
_runs = 0  # script runs in progress on this server, over all sessions (see counted_run)
_runs_lock = threading.Lock()


@contextlib.contextmanager
def counted_run():
    """Count the enclosed script run in `runs_in_progress()` until it ends, finished, stopped or interrupted."""
    global _runs
    with _runs_lock:
        _runs += 1
    try:
        yield
    finally:
        with _runs_lock:
            _runs -= 1


def runs_in_progress() -> int:
    """Script runs that app.py has started and not yet ended, in every session of this server."""
    return _runs


@dataclass(frozen=True)
class Context:
    """Everything the sidebar decides for the current run."""

    image: Image.Image  # the student's RGB image, longest side ≤ 1024 px
    image_key: str  # sha256 of the image's bytes: the cache key of everything derived from it
    image_label: str  # shown in captions
    model_name: str  # ViT preset name (see VIT_MODELS)
    patch_size: int  # P chosen with the sidebar slider (the checkpoint's own P unless moved)
    pretrained: bool  # whether trained weights were asked for (the default; off shows the random presets)
    resolution: int  # input side in pixels (shorter side when keep_aspect)
    keep_aspect: bool  # resize to the photo's aspect instead of a square
    device: str  # where the models run

    @property
    def model_key(self) -> str:
        """Cache key of the model actually used."""
        return f"{self.model_name}|{'hub' if self.pretrained else 'preset'}"


@dataclass(frozen=True)
class VitInput:
    """The ViT of the current settings and the input it reads (what pages 1–5 show)."""

    model: torch.nn.Module  # shared and read-only; already adapted to the chosen patch size
    checkpoint_patch: int  # the checkpoint's own P
    shown: Image.Image  # the RGB image exactly as the model receives it
    pixel_values: torch.Tensor  # (1, 3, H, W) on the model's device
    cache_key: str  # identifies model, patch size, image and size: key every st.cache_data on it
    notes: tuple[str, ...]  # what the page must say about the model (fallbacks, adaptations)

    @property
    def patch_size(self) -> int:
        return self.model.config.patch_size

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of patches: pixels past the last whole patch are dropped, as the conv drops them."""
        h, w = self.pixel_values.shape[-2:]
        return h // self.patch_size, w // self.patch_size


@st.cache_resource(max_entries=8, show_spinner=False)
def _load(source: str, device: str) -> torch.nn.Module:
    return vitviz.load_model(source, device=device, download=False)  # a page run never waits on the network


def get_model(name: str, pretrained: bool) -> tuple[torch.nn.Module, str | None]:
    """The shared (read-only) model for a preset name: trained when asked for and on this machine, else the random
    preset. Trained weights that are not here are downloaded once per server in the background (every session
    that waits sees its progress at the top of the page, `download_progress`); the page never waits for them.

    Returns (model, message): message says why random weights are shown although trained ones were asked for.
    """
    device = str(pick_device())
    if not pretrained:
        return _load(name, device), None
    repo = vitviz.HUB_IDS[name]
    try:
        local = hub.find_local(repo, name)
    except vitviz.ModelLoadError as err:  # a damaged shard index on this machine
        return _load(name, device), _("The trained weights of {repo} on this machine cannot be read — {err} {random}").format(
            repo=repo, err=err, random=_(_RANDOM))
    if local is not None:
        return _trained(name, repo, device)
    if hub.settings().offline:
        return _load(name, device), _("The trained weights of {repo} are not on this machine and this server is "
                                      "offline. {random} Before class, run `{command}` on this computer.").format(
            repo=repo, random=_(_RANDOM), command=DOWNLOAD_COMMAND)
    download = hub.download_in_background(repo)
    if download.state == "failed":
        return _load(name, device), _("Trained weights unavailable — {error} {random} Before class, run "
                                      "`{command}` on this computer while it is online.").format(
            error=download.error, random=_(_RANDOM), command=DOWNLOAD_COMMAND)
    if download.state == "done":  # finished between the lookup above and now
        return _trained(name, repo, device)
    st.session_state.setdefault("_awaiting", set()).add(repo)
    return _load(name, device), _("Downloading the trained weights of {repo} (once for this server; progress at the "
                                  "top of the page). Until they are here this page shows **random weights**; it "
                                  "switches by itself.").format(repo=repo)


def _trained(name: str, repo: str, device: str) -> tuple[torch.nn.Module, str | None]:
    """The trained model, or the preset and why, when the files on this machine cannot be loaded."""
    try:
        return _load(repo, device), None
    except vitviz.ModelLoadError as err:
        return _load(name, device), _("The trained weights of {repo} on this machine cannot be loaded — {err} {random}").format(
            repo=repo, err=err, random=_(_RANDOM))


_RANDOM = N_("This page shows **random weights** instead: the structure is real, the patterns are noise.")


def download_progress(slot) -> None:
    """The trained-weights downloads this session waits for, as progress bars in `slot` (a container at the top of
    the page: MB, MB/s, seconds left), updated every second; the page reruns on trained weights when one is done.
    Called after the page, which has asked for its weights by then."""
    if st.session_state.get("_awaiting"):
        with slot:
            _download_fragment()


@st.fragment(run_every=1.0)
def _download_fragment() -> None:
    i18n.apply()  # a fragment's run starts here, not in app.py
    finished = False
    for repo in sorted(st.session_state.get("_awaiting", ())):
        download = hub.download_of(repo)
        if download is None or download.state in ("done", "failed"):
            st.session_state["_awaiting"].discard(repo)
            finished = True
        elif download.state == "checking":
            st.progress(0.0, text=_("Trained weights · {repo}: asking the hub…").format(repo=repo))
        else:
            left, digits = download.seconds_left, 0 if download.total_bytes >= 10e6 else 1
            text = _("Trained weights · {repo}: {done} of {total} MB · {rate:.1f} MB/s").format(
                repo=repo, done=f"{download.done_bytes / 1e6:.{digits}f}", total=f"{download.total_bytes / 1e6:.{digits}f}",
                rate=download.mb_per_s)
            if left is not None:
                text += " · " + _("{seconds:.0f} s left").format(seconds=left)
            st.progress(download.fraction, text=text)
    if finished:
        st.rerun(scope="app")


@st.cache_resource(max_entries=6, show_spinner=False)
def _adapted(_model: torch.nn.Module, source: str, patch_size: int) -> torch.nn.Module:
    return _model.with_patch_size(patch_size)


def vit_input(ctx: Context) -> VitInput:
    """The ViT for the sidebar's settings (PI-resized when P differs from the checkpoint) and its input."""
    model, warning = get_model(ctx.model_name, ctx.pretrained)
    notes = [warning] if warning else []
    native_p = model.config.patch_size
    if ctx.patch_size != native_p:
        model = _adapted(model, model.source, ctx.patch_size)
        notes.append(_(
            "The checkpoint reads {native}×{native} patches. At P = {p} its projection kernel is "
            "resampled to {p}×{p} with FlexiViT's pseudo-inverse resize, and the position "
            "embeddings are interpolated to the new grid; all other weights are the checkpoint's. A model trained at "
            "P = {native} was never trained on such patches: expect the deeper stages to degrade."
        ).format(native=native_p, p=ctx.patch_size))
    shown, pixel_values = model_input(ctx, model.preprocessing)
    h, w = pixel_values.shape[-2:]
    # model.source is the hub id or the preset actually loaded: a hub fallback never shares keys with real weights.
    key = f"{model.source}|P{ctx.patch_size}|{ctx.image_key}|{h}x{w}"
    return VitInput(model, native_p, shown, pixel_values.to(ctx.device), key, tuple(notes))


def show_notes(vin: VitInput) -> None:
    """Say plainly which model the page is showing, before any panel."""
    for note in vin.notes:
        st.info(note, icon=":material/info:")


def selected_patch(vin: VitInput) -> int:
    """The patch selected on any page (raster index, clamped to the current grid)."""
    n = vin.grid[0] * vin.grid[1]
    return min(int(st.session_state.get("patch", 0)), n - 1)


def select_patch(index: int) -> None:
    """Select a patch for this and the next pages (call from click callbacks)."""
    st.session_state["patch"] = int(index)


@st.cache_data(max_entries=64, show_spinner=False)
def _decode(digest: str, _data: bytes) -> Image.Image:
    """Decode an upload once per content hash (sha256 of the bytes, not Streamlit's sampled hash)."""
    return vitviz.load_image(_data)


def _image_from_sidebar() -> tuple[Image.Image, str, str]:
    source = st.sidebar.radio(_("Image"), list(SOURCES), format_func=lambda s: _(SOURCES[s]), horizontal=True, key="src")
    sample = st.sidebar.selectbox(_("Sample photo"), list(SAMPLES), key="img", bind="query-params",
                                  disabled=source != "sample")
    file, label = None, None
    if source == "upload":
        file = st.sidebar.file_uploader(_("Your photo (JPEG, PNG, WebP, …)"), key="upload")
        label = file.name if file is not None else None
    elif source == "camera":
        file = st.sidebar.camera_input(_("Take a photo"), key="camera")
        label = _("camera photo")
    # Read, hashed and decoded once per file: later runs of the session reuse it (a bad file is tried every run, so
    # its message stays up while it is in the uploader).
    if file is not None and st.session_state.get("last_file_id") != file.file_id:
        data = file.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        try:
            image = _decode(digest, data)
        except vitviz.ImageError as err:
            st.sidebar.error(str(err))
        else:
            st.session_state["last_image"] = (image, digest, label)
            st.session_state["last_file_id"] = file.file_id
    if source != "sample" and "last_image" in st.session_state:
        return st.session_state["last_image"]
    if source != "sample" and "ctx" not in st.session_state and file is None:
        # A new session that starts on Upload or Camera is a page that reconnected: its server process restarted,
        # or it was moved to another process of a school's server. Its photo stayed with the old session.
        st.sidebar.warning(_("Your photo is no longer on the server (it restarted, or your page reconnected to "
                             "another of its processes): please add it again."), icon=":material/sync_problem:")
    elif source != "sample":
        st.sidebar.caption(_("No photo yet — showing the sample until you add one."))
    image = load_sample(sample)
    return image, f"sample:{sample}", sample


@st.cache_data(max_entries=64, show_spinner=False)
def _thumbnail(image_key: str, _image: Image.Image) -> bytes:
    """The sidebar's preview as JPEG bytes, made once per image (~8 ms of every run otherwise). The sidebar is
    narrow: a full-size preview would resend ~200 KB every run."""
    thumb = _image.copy()
    thumb.thumbnail((336, 336))
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=90)
    return out.getvalue()


def sidebar() -> Context:
    """Draw the shared sidebar once per run and return the resulting Context."""
    i18n.switch()
    image, key, label = _image_from_sidebar()
    st.sidebar.image(_thumbnail(key, image), caption=label, width="stretch", output_format="JPEG")
    # No format_func: a bound widget writes its formatted label into the URL, and preset names make clean links.
    name = st.sidebar.selectbox(_("ViT model"), list(VIT_MODELS), key="model", bind="query-params",
                                on_change=_native_patch)
    st.sidebar.caption(_(VIT_MODELS[name]))
    native_p = vit_models.PRESETS[name].patch_size
    patch_size = st.sidebar.slider(_("Patch size P (px)"), 4, 64, value=native_p, key="ps", bind="query-params",
                                   help=_("The checkpoint reads {p}×{p} patches; other sizes adapt its projection.").format(
                                       p=native_p))
    pretrained = st.sidebar.toggle(_("Trained weights"), value=True, key="hub", bind="query-params",
                                   help=_("On: the real checkpoint's weights (downloaded once per server, or prepared "
                                          "with `{command}`). Off: deterministic random weights of the same "
                                          "architecture, to see what training changes.").format(command=DOWNLOAD_COMMAND))
    resolution = st.sidebar.select_slider(_("Input resolution (px)"), RESOLUTIONS, value=224, key="res",
                                          bind="query-params")
    keep_aspect = st.sidebar.toggle(_("Keep the photo's aspect ratio"), value=False, key="aspect", bind="query-params",
                                    help=_("Off: square input, as the checkpoints were trained. On: the shorter side gets "
                                           "the resolution."))
    device = str(pick_device())
    st.sidebar.caption(_("Models run on **{device}** · PyTorch {version}").format(
        device=device, version=torch.__version__.split('+')[0]))
    ctx = Context(image, key, label, name, patch_size, pretrained, resolution, keep_aspect, device)
    st.session_state["ctx"] = ctx
    return ctx


def _native_patch() -> None:
    """A new model starts at its own patch size (14 for DINOv2, 8 or 16 for the others), not at the last one's."""
    st.session_state["ps"] = vit_models.PRESETS[st.session_state["model"]].patch_size


def context() -> Context:
    """The Context the sidebar built in this run (pages call this).

    On a fresh server, a deep link to a stage page can arrive before any run of app.py: Streamlit sees a folder
    named pages/ and runs the page alone (legacy multipage mode) until st.navigation has run once. Switch that
    mode off, as st.navigation would, and rerun, so the link opens through app.py with its sidebar and settings.
    """
    if "ctx" not in st.session_state:
        from streamlit.runtime.pages_manager import PagesManager

        PagesManager.uses_pages_directory = False
        st.rerun()
    return st.session_state["ctx"]


def input_size(ctx: Context) -> tuple[int, int]:
    """(H, W) of the model input for the current image and settings."""
    if not ctx.keep_aspect:
        return ctx.resolution, ctx.resolution
    w, h = ctx.image.size
    ratio = min(max(w, h) / min(w, h), 3.0)  # a panorama would make thousands of tokens
    long = int(round(ctx.resolution * ratio / 16)) * 16
    return (ctx.resolution, long) if w >= h else (long, ctx.resolution)


def model_input(ctx: Context, preprocessing) -> tuple[Image.Image, torch.Tensor]:
    """The image exactly as the model sees it (resized RGB) and its pixel_values (1, 3, H, W).

    At the checkpoint's own square size the checkpoint's processor (resize, crop) is used unchanged.
    """
    size = input_size(ctx)
    native = size == preprocessing.input_size and not ctx.keep_aspect
    return _model_input(ctx.image_key, repr(preprocessing), None if native else size, ctx.image, preprocessing)


@st.cache_data(max_entries=32, show_spinner=False)  # ≤ 3 MB each (512 × 512)
def _model_input(image_key: str, prep_key: str, size: tuple[int, int] | None, _image: Image.Image,
                 _preprocessing) -> tuple[Image.Image, torch.Tensor]:
    """Resized once per image, preprocessing and size (resizing the photo took ~7 ms of every run)."""
    shown = resize_and_crop(_image, _preprocessing, size)
    return shown, to_pixel_values(shown, _preprocessing)


def stage_header(key: str, intro: str) -> None:
    """Title and one-paragraph introduction of a stage page (keyed: the presenter view of a lesson step shows the
    step's title and text instead)."""
    with st.container(key="vv-intro"):
        st.title(_(stage_of(key).title).split("·", 1)[1].strip())
        st.markdown(intro)


def stage_footer(key: str) -> None:
    """← previous / next → links, keeping the shared settings in the URL."""
    before, after = neighbours(key)
    params = {k: v for k, v in st.query_params.to_dict().items()}
    st.divider()
    left, _gap, right = st.container(key="vv-footer").columns([2, 3, 2])
    with left:
        if before is not None:
            st.page_link(before.file, label=f"← {_(before.title)}", query_params=params)
        else:
            st.page_link("pages/overview.py", label=f"← {_('Overview')}", query_params=params)
    with right:
        if after is not None:
            st.page_link(after.file, label=f"{_(after.title)} →", query_params=params)


def lazy_tabs(page: str, steps: tuple[Callable[[], None], ...]) -> None:
    """One tab per step of the page (`STAGES`' labels, one function each that draws it), the open tab in the URL
    under the stage's tab key. Only the open tab's function runs (st.tabs with on_change): a run computes and draws
    one step, not all of them.

    The URL and `st.session_state[tab_key]` hold the tab's English label whatever the language, so a link opens
    the same tab in both; the st.tabs widget (its own key) shows the labels in the session's language. It is not
    bound to the URL itself because a bound st.tabs writes its label, which would change with the language."""
    stage = stage_of(page)
    assert len(steps) == len(stage.tabs), (page, stage.tabs)
    ids, labels = stage.tabs, [_(label) for label in stage.tabs]
    ss, qp, widget = st.session_state, st.query_params, f"vv-tabs-{stage.tab_key}"
    current = ss.get(stage.tab_key) or qp.get(stage.tab_key)
    if current not in ids:  # also a hostile or outdated link
        current = ids[0]
    ss[stage.tab_key] = current
    ss[widget] = labels[ids.index(current)]

    def opened() -> None:
        ss[stage.tab_key] = ids[labels.index(ss[widget])]

    if current == ids[0]:
        qp.pop(stage.tab_key, None)
    else:
        qp[stage.tab_key] = current
    tabs = st.tabs(labels, key=widget, on_change=opened)
    for tab, draw in zip(tabs, steps):
        if tab.open:
            with tab:
                draw()


@functools.cache  # the source of an imported function is fixed for the life of the process; reading it takes ~1 ms
def _source(fn) -> str:
    return inspect.getsource(fn)


def show_source(*functions) -> None:
    """The real source of the functions a panel visualises, read from the imported modules' files (inspect), so it
    cannot drift."""
    # keyed, so that a lesson's presenter view can hide the code panels (`hide=code`)
    key = "vv-source-" + hashlib.sha1("|".join(f.__qualname__ for f in functions).encode()).hexdigest()[:10]
    with st.container(key=key), st.expander(_("The code that computed this"), icon=":material/code:"):
        for fn in functions:
            st.caption(f"`{fn.__module__}.{fn.__qualname__}`")
            st.code(_source(fn), language="python")


def download_array(label: str, array: np.ndarray, name: str) -> None:
    """CSV (2-D view) and NPY downloads of a panel's numbers, encoded only when clicked."""
    arr = np.asarray(array)

    def as_csv() -> str:
        flat = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr[:, None]
        out = io.StringIO()
        np.savetxt(out, flat, delimiter=",", fmt="%.6g")
        return out.getvalue()

    def as_npy() -> bytes:
        out = io.BytesIO()
        np.save(out, arr)
        return out.getvalue()

    a, b = st.columns(2)
    a.download_button(f"{label} · CSV", as_csv, f"{name}.csv", "text/csv", on_click="ignore", key=f"csv-{name}")
    b.download_button(f"{label} · NPY", as_npy, f"{name}.npy", "application/octet-stream", on_click="ignore", key=f"npy-{name}")
