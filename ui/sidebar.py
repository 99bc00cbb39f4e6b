"""The shared sidebar: image, model, patch size, trained weights, resolution and aspect, drawn once per run.

Settings that make sense in a link are widgets bound to query parameters, so a teacher can share a URL that
opens the same page, sample image and settings. Heavy objects live in bounded caches, never in session state.
"""
from __future__ import annotations

import streamlit as st
import torch

from vitviz.i18n import _
from vitviz.models import vit as vit_models
from vitviz.models.common import pick_device
from vitviz.weights import DOWNLOAD_COMMAND

from . import i18n
from .common import picture
from .context import Context, remember
from .image_input import image_from_sidebar, thumbnail
from .models import VIT_MODELS
from .playground import Opened, opened_names, trained_here

RESOLUTIONS = list(range(64, 513, 16))


def sidebar() -> Context:
    """Draw the shared sidebar once per run and return the resulting Context."""
    i18n.switch()
    image, key, label = image_from_sidebar()
    picture(thumbnail(key, image), alt=_("The photo every page shows: {label}, {width} × {height} px.").format(
        label=label, width=image.width, height=image.height), where=st.sidebar, caption=label, width="stretch")
    # No format_func: a bound widget writes its formatted label into the URL, and preset names make clean links.
    # A run trained in the playground and opened on the pages is one more option, for this session only.
    name = st.sidebar.selectbox(_("ViT model"), list(VIT_MODELS) + opened_names(), key="model", bind="query-params",
                                on_change=_native_patch)
    if (opened := trained_here(name)) is not None:
        patch_size, pretrained, resolution, keep_aspect = _trained_settings(opened)
    else:
        patch_size, pretrained, resolution, keep_aspect = _preset_settings(name)
    device = str(pick_device())
    st.sidebar.caption(_("Models run on **{device}** · PyTorch {version}").format(
        device=device, version=torch.__version__.split('+')[0]))
    ctx = Context(image, key, label, name, patch_size, pretrained, resolution, keep_aspect, device)
    remember(ctx)
    return ctx


def _preset_settings(name: str) -> tuple[int, bool, int, bool]:
    """The patch size, trained weights, resolution and aspect widgets of a preset: (P, trained, side, keep aspect)."""
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
    return patch_size, pretrained, resolution, keep_aspect


def _trained_settings(opened: Opened) -> tuple[int, bool, int, bool]:
    """A run opened from the playground reads only its own P and image side (below the usual resolutions): no
    patch-size, weights or resolution widgets, the settings said in words."""
    st.sidebar.caption(opened.describe())
    st.sidebar.caption(_("P = {p} and a {size} × {size} px input, as it was trained.").format(
        p=opened.patch_size, size=opened.image_size))
    return opened.patch_size, True, opened.image_size, False


def _native_patch() -> None:
    """A new model starts at its own patch size (14 for DINOv2, 8 or 16 for the others), not at the last one's."""
    if (preset := vit_models.PRESETS.get(st.session_state["model"])) is not None:  # a playground run has no slider
        st.session_state["ps"] = preset.patch_size
