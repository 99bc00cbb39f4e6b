"""Image input: the student's photo from the sidebar (sample, upload or camera), decoded once per file, and that
photo resized into exactly what a model reads."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st
import torch
from PIL import Image

import vitviz
from vitviz.images import SAMPLES, load_sample
from vitviz.i18n import N_, _
from vitviz.preprocess import resize_and_crop, to_pixel_values
from vitviz.viz.encode import jpeg

from .context import Context, has_context
from .playground import Opened, trained_here

_PHOTO = "photo"  # session-state key: the student's last good upload or camera photo (a `Photo`)


@dataclass(frozen=True)
class Photo:
    """The student's own photo, kept in the session so that later runs reuse it without decoding it again."""

    image: Image.Image  # RGB, longest side ≤ 1024 px
    digest: str  # sha256 of the file's bytes: the cache key of everything derived from it
    label: str  # the file name, or "camera photo"
    file_id: str  # the uploader's id of the file it came from: a new file is read, the same one is not


def _photo() -> Photo | None:
    return st.session_state.get(_PHOTO)

SOURCES = {"sample": N_("Sample photo"), "upload": N_("Upload"), "camera": N_("Camera")}


@st.cache_data(max_entries=64, show_spinner=False)
def _decode(digest: str, _data: bytes) -> Image.Image:
    """Decode an upload once per content hash (sha256 of the bytes, not Streamlit's sampled hash)."""
    return vitviz.load_image(_data)


def image_from_sidebar() -> tuple[Image.Image, str, str]:
    source = st.sidebar.radio(_("Image"), list(SOURCES), format_func=lambda s: _(SOURCES[s]), horizontal=True, key="src")
    if (opened := trained_here(st.session_state.get("model"))) is not None and source == "sample":
        return _task_sample(opened)
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
    if file is not None and (_photo() is None or _photo().file_id != file.file_id):
        data = file.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        try:
            image = _decode(digest, data)
        except vitviz.ImageError as err:
            st.sidebar.error(str(err))
        else:
            st.session_state[_PHOTO] = Photo(image, digest, label, file.file_id)
    if source != "sample" and (photo := _photo()) is not None:
        return photo.image, photo.digest, photo.label
    if source != "sample" and not has_context() and file is None:
        # A new session that starts on Upload or Camera is a page that reconnected: its server process restarted,
        # or it was moved to another process of a school's server. Its photo stayed with the old session.
        st.sidebar.warning(_("Your photo is no longer on the server (it restarted, or your page reconnected to "
                             "another of its processes): please add it again."), icon=":material/sync_problem:")
    elif source != "sample":
        st.sidebar.caption(_("No photo yet — showing the sample until you add one."))
    return _sample(sample), f"sample:{sample}", sample


@st.cache_resource(max_entries=len(SAMPLES), show_spinner=False)
def _sample(name: str) -> Image.Image:
    """A bundled sample, decoded once per process and shared (every picture is drawn from copies of it): decoding it
    on every run of every page cost ~1 ms."""
    return load_sample(name)


def _task_sample(opened: Opened) -> tuple[Image.Image, str, str]:
    """A run opened from the playground offers its task's images as the sample photos (at the run's own size)."""
    names = opened.sample_names()
    i = st.sidebar.selectbox(_("Task image"), range(len(names)), format_func=names.__getitem__, key="pgimg")
    return opened.examples.pil(i), f"playground:{opened.task}:{opened.image_size}:{i}", names[i]


@st.cache_data(max_entries=64, show_spinner=False)
def thumbnail(image_key: str, _image: Image.Image) -> bytes:
    """The sidebar's preview as JPEG bytes, made once per image (~8 ms of every run otherwise). The sidebar is
    narrow: a full-size preview would resend ~200 KB every run."""
    thumb = _image.convert("RGB")
    thumb.thumbnail((336, 336))
    return jpeg(thumb)


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


@st.cache_resource(max_entries=32, show_spinner=False)  # ≤ 3 MB each (512 × 512)
def _model_input(image_key: str, prep_key: str, size: tuple[int, int] | None, _image: Image.Image,
                 _preprocessing) -> tuple[Image.Image, torch.Tensor]:
    """Resized once per image, preprocessing and size (resizing the photo took ~7 ms of every run), and shared, not
    copied: unpickling a copy for every run took ~1 ms. Models and pictures read them and never write to them."""
    shown = resize_and_crop(_image, _preprocessing, size)
    return shown, to_pixel_values(shown, _preprocessing)
