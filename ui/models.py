"""Model loading policy: which shared model a page shows for the sidebar's settings (trained weights when they are
on this machine, else the random preset and a sentence saying why), trained weights downloaded in the background
with one progress bar, the ViT adapted to the chosen patch size with the input it reads, and the classifier the
explanation page reads."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import streamlit as st
import torch
from PIL import Image

import vitviz
from vitviz import hub
from vitviz.i18n import N_, _
from vitviz.models.common import pick_device
from vitviz.models.vit import PRESETS
from vitviz.weights import DOWNLOAD_COMMAND

from . import i18n
from .context import Context
from .image_input import model_input
from .playground import trained_here

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
# Beyond this many tokens a full encoder pass takes minutes on a laptop CPU (attention is quadratic); pages that
# run the encoder say so instead. dino-vits8 at 480×480 (3,601 tokens) stays within it.
ENCODER_TOKEN_LIMIT = 4096
CLASSIFIERS = {  # preset -> description (shown through _())
    "deit-tiny": N_("DeiT-Tiny/16 (ViT, 5.7 M parameters)"),
    "vit-base-16": N_("ViT-B/16 (ViT, 86 M parameters)"),
    "dinov2-small-cls": N_("DINOv2 ViT-S/14 + linear classifier"),
    "swin-tiny": N_("Swin-T (windowed attention)"),
    "mobilevit-xxs": N_("MobileViT-XXS (convolutions + attention)"),
    "mobilevit-s": "MobileViT-S",
}
VIT = {"deit-tiny", "vit-base-16", "dinov2-small-cls"}


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
    if (opened := trained_here(name)) is not None:  # a run of this session's playground: its frozen snapshot
        return opened.model, None
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
                                      "offline. {random}").format(repo=repo, random=_(_RANDOM)) + " " + _prepare()
    download = hub.download_in_background(repo)
    if download.state == "failed":
        return _load(name, device), _("Trained weights unavailable — {error} {random}").format(
            error=download.error, random=_(_RANDOM)) + " " + _prepare(online=True)
    if download.state == "done":  # finished between the lookup above and now
        return _trained(name, repo, device)
    _awaited().add(repo)
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


def _prepare(online: bool = False) -> str:
    """How to have trained weights by the next class, where this server runs. In the container image
    (deploy/Dockerfile sets VITVIZ_CONTAINER) the app's folder is read-only and has no `tasks.py` environment: the
    weights are written outside it and mounted, or baked in when the image is built."""
    if os.environ.get("VITVIZ_CONTAINER"):
        return _("Before class, write them with `{command} --to DIR` on a computer with vitviz and mount DIR on "
                 "{folder} (read-only), or build the image with `--build-arg WEIGHTS=\"…\"`.").format(
            command=DOWNLOAD_COMMAND, folder=os.environ.get("VITVIZ_WEIGHTS_DIR", "/opt/vitviz-weights"))
    if online:
        return _("Before class, run `{command}` on this computer while it is online.").format(command=DOWNLOAD_COMMAND)
    return _("Before class, run `{command}` on this computer.").format(command=DOWNLOAD_COMMAND)


def _awaited() -> set[str]:
    """The hub repos whose download this session waits for (to show their progress, then rerun on them)."""
    return st.session_state.setdefault("_awaiting", set())


def download_progress(slot) -> None:
    """The trained-weights downloads this session waits for, as progress bars in `slot` (a container at the top of
    the page: MB, MB/s, seconds left), updated every second; the page reruns on trained weights when one is done.
    Called after the page, which has asked for its weights by then."""
    if _awaited():
        with slot:
            _download_fragment()


@st.fragment(run_every=1.0)
def _download_fragment() -> None:
    i18n.apply()  # a fragment's run starts here, not in app.py
    finished = False
    for repo in sorted(_awaited()):
        download = hub.download_of(repo)
        if download is None or download.state in ("done", "failed"):
            _awaited().discard(repo)
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
    if (opened := trained_here(ctx.model_name)) is not None:
        notes.append(opened.describe())
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


@dataclass(frozen=True)
class Classifier:
    """The classifier the page explains and the input it reads."""

    name: str  # its preset name (a key of CLASSIFIERS)
    model: torch.nn.Module  # shared and read-only
    shown: Image.Image  # the RGB image exactly as the model receives it
    pixel_values: torch.Tensor  # (1, 3, H, W) on the model's device
    cache_key: str  # identifies model, patch size, image and size
    patch: int | None  # a ViT's P (its maps are per patch); None for Swin and MobileViT (cells of a feature map)
    notes: tuple[str, ...]  # what the page must say about the model (fallbacks, adaptations)

    @property
    def vit(self) -> bool:
        return self.name in VIT


def default_classifier(ctx: Context) -> str:
    """The sidebar's ViT when it classifies, else the first classifier whose trained weights are on this machine."""
    if ctx.model_name in CLASSIFIERS:
        return ctx.model_name
    for candidate in CLASSIFIERS if ctx.pretrained else ():
        try:
            if hub.find_local(vitviz.HUB_IDS[candidate], candidate) is not None:
                return candidate
        except vitviz.ModelLoadError:  # a damaged download: get_model will say so if it is chosen
            continue
    return "deit-tiny"


def classifier(ctx: Context, name: str) -> Classifier:
    """The shared classifier `name` and its input for the sidebar's settings; a ViT takes the sidebar's P when it is
    the sidebar's model, else its checkpoint's."""
    if name in VIT:
        vin = vit_input(replace(ctx, model_name=name,
                                patch_size=ctx.patch_size if name == ctx.model_name else PRESETS[name].patch_size))
        return Classifier(name, vin.model, vin.shown, vin.pixel_values, vin.cache_key, vin.patch_size, vin.notes)
    model, warning = get_model(name, ctx.pretrained)
    shown, pixel_values = model_input(ctx, model.preprocessing)
    h, w = pixel_values.shape[-2:]
    return Classifier(name, model, shown, pixel_values.to(ctx.device), f"{model.source}|{ctx.image_key}|{h}x{w}",
                      None, (warning,) if warning else ())
