"""Load our modules from transformers-format checkpoints: a local directory, a supported hub id, or a preset.

Only safetensors files are read here (one `model.safetensors` or the shards of a `model.safetensors.index.json`):
safetensors holds tensors only, so loading can never run code. Where a supported hub repo has only pickled weights,
`vitviz.hub` converts them once with PyTorch's restricted unpickler. Checkpoint keys carry transformers 4.x names,
which each family's `convert_state_dict` maps to ours; the state dict is loaded strictly, so a checkpoint that does
not fit the architecture fails loudly.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from . import hub
from .hub import ModelLoadError
from .i18n import _
from .models import mobilevit, swin, vit
from .models.common import build_uninitialised, init_random, pick_device
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

FAMILIES = {f.model_type: f for f in (vit.FAMILY, vit.DINOV2_FAMILY, vit.DINOV2_REGISTERS_FAMILY, swin.FAMILY,
                                       mobilevit.FAMILY)}

# Preset name -> the hub checkpoint it mirrors (same architecture, same preprocessing).
HUB_IDS = {
    "dino-vits16": "facebook/dino-vits16",
    "dino-vits8": "facebook/dino-vits8",
    "deit-tiny": "facebook/deit-tiny-patch16-224",
    "vit-base-16": "google/vit-base-patch16-224",
    "swin-tiny": "microsoft/swin-tiny-patch4-window7-224",
    "mobilevit-xxs": "apple/mobilevit-xx-small",
    "mobilevit-s": "apple/mobilevit-small",
    "dinov2-small": "facebook/dinov2-small",
    "dinov2-small-reg": "facebook/dinov2-with-registers-small",
    "dinov2-small-cls": "facebook/dinov2-small-imagenet1k-1-layer",
    "dinov2-large": "facebook/dinov2-large",
    "dinov2-large-reg": "facebook/dinov2-with-registers-large",
}

_IMAGENET = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD)
_MOBILEVIT = Preprocessing(size=None, shortest_edge=288, crop=(256, 256), mean=None, std=None, bgr=True)
_DINOV2 = Preprocessing(size=None, shortest_edge=256, crop=(224, 224), resample=3, **_IMAGENET)
# What each hub checkpoint's preprocessor_config.json says, for presets and directories without one.
PREPROCESSING = {
    "dino-vits16": Preprocessing(size=(224, 224), resample=3, **_IMAGENET),
    "dino-vits8": Preprocessing(size=(224, 224), resample=3, **_IMAGENET),
    "deit-tiny": Preprocessing(size=(256, 256), crop=(224, 224), resample=3, **_IMAGENET),
    "vit-base-16": Preprocessing(size=(224, 224), resample=2),
    "swin-tiny": Preprocessing(size=(224, 224), resample=3, **_IMAGENET),
    "mobilevit-xxs": _MOBILEVIT,
    "mobilevit-s": _MOBILEVIT,
    **dict.fromkeys(["dinov2-small", "dinov2-small-reg", "dinov2-small-cls", "dinov2-large", "dinov2-large-reg"], _DINOV2),
}
_DEFAULT_PREPROCESSING = {"vit": PREPROCESSING["vit-base-16"], "swin": PREPROCESSING["swin-tiny"], "mobilevit": _MOBILEVIT,
                          "dinov2": _DINOV2, "dinov2_with_registers": _DINOV2}
PRESET_OF = {repo: name for name, repo in HUB_IDS.items()}
# Checkpoints `python3 tasks.py download` fetches only with --all: 1.2 GB each, the size at which the registers paper
# saw DINOv2's high-norm tokens. Every other checkpoint is under 400 MB.
LARGE_DOWNLOADS = frozenset({"dinov2-large", "dinov2-large-reg"})
DOWNLOAD_COMMAND = "python3 tasks.py download"


def presets() -> list[str]:
    """Names of the offline presets (deterministic random weights), in display order."""
    return list(HUB_IDS)


def load_model(source: str | os.PathLike, device: str | torch.device | None = None, tqdm_class=None,
               download: bool = True) -> nn.Module:
    """Build our module from `source` and return it in eval mode on `device` (default cuda > mps > cpu).

    `source`: a directory with `config.json` and safetensors weights; a supported hub id (see `HUB_IDS`), whose
    files come from `VITVIZ_WEIGHTS_DIR/<preset>/`, else the HF cache, else the hub or the mirror in HF_ENDPOINT
    (not with `download=False` or HF_HUB_OFFLINE; `tqdm_class` shows the download), see `vitviz.hub`; or a preset
    name, giving deterministic random weights. The model's `source` and `preprocessing` (its `Provenance`) say
    where the weights came from and how to prepare its input. Raises ModelLoadError with a readable message.
    """
    source_str = os.fspath(source)
    # Names first: a folder that happens to be called like a preset or repo must not replace its weights.
    if source_str in HUB_IDS:
        model = _build_preset(source_str)
    elif source_str in HUB_IDS.values():
        model = _load_checkpoint(trained_checkpoint(source_str, tqdm_class, download))
    elif Path(source_str).is_dir():
        model = _load_checkpoint(_dir_checkpoint(Path(source_str)))
    else:
        raise ModelLoadError(_(
            "{source} is neither a checkpoint directory nor a supported model; "
            "choose a preset ({presets}) or a hub id ({repos})."
        ).format(source=repr(source_str), presets=", ".join(HUB_IDS), repos=", ".join(HUB_IDS.values())))
    model.source = source_str
    return model.eval().requires_grad_(False).to(pick_device(device))


def is_trained(model: nn.Module) -> bool:
    """Whether a model from `load_model` holds a checkpoint's weights (a hub repo or a folder), not a preset's
    deterministic random ones. The one place that question is answered."""
    return model.source not in HUB_IDS


def trained_checkpoint(repo_id: str, tqdm_class=None, download: bool = True) -> hub.LocalCheckpoint:
    """The local files of a supported hub checkpoint, downloaded first if they are not on this machine (and
    `download` is True and the process is not offline)."""
    local = hub.find_local(repo_id, PRESET_OF[repo_id])
    if local is not None:
        return local
    if download and not hub.settings().offline:
        return hub.fetch(repo_id, tqdm_class)
    raise ModelLoadError(_(
        "the trained weights of {repo} are not on this machine and the hub is not asked "
        "({reason}); run `{command}` while online, "
        "or copy a folder written by its --to option and point VITVIZ_WEIGHTS_DIR at it."
    ).format(repo=repo_id, reason=_("offline") if hub.settings().offline else _("no download here"),
             command=DOWNLOAD_COMMAND))

def _build_preset(name: str) -> nn.Module:
    family = next(f for f in FAMILIES.values() if name in f.presets)
    model = init_random(build_uninitialised(family.model_class, family.presets[name]), name)
    model.preprocessing = PREPROCESSING[name]
    return model


def _dir_checkpoint(path: Path) -> hub.LocalCheckpoint:
    if not (path / "config.json").is_file():
        raise ModelLoadError(_("{name} has no config.json, so it is not a transformers-format checkpoint.").format(
            name=path))
    weights = hub.safetensors_in(path)
    if not weights:
        raise ModelLoadError(_("{path} has no model.safetensors; only safetensors weights are loaded, never "
                               "pickles.").format(path=path))
    return hub.LocalCheckpoint(path, weights, "directory", "model.safetensors")


def read_state_dict(checkpoint: hub.LocalCheckpoint) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's safetensors files (all shards), under the file's own (transformers 4.x) keys."""
    state: dict[str, torch.Tensor] = {}
    for file in checkpoint.weights:
        try:
            state.update(load_file(file, device="cpu"))
        except Exception as err:  # safetensors raises its own error types for a damaged header or a short file
            raise ModelLoadError(_("{name} is not a complete safetensors file ({error}).").format(
                name=file.name, error=type(err).__name__)) from err
    return state


def _load_checkpoint(checkpoint: hub.LocalCheckpoint) -> nn.Module:
    config_file = checkpoint.folder / "config.json"
    try:
        hf_config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(_("{file} is not valid JSON.").format(file=config_file)) from err
    family = FAMILIES.get(hf_config.get("model_type"))
    if family is None:
        raise ModelLoadError(_("model_type {model_type} is not supported; vitviz loads {families}.").format(
            model_type=repr(hf_config.get("model_type")), families=", ".join(FAMILIES)))
    model = build_uninitialised(family.model_class, family.config_from_hf(hf_config))
    state = family.convert_state_dict(read_state_dict(checkpoint))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        names = ", ".join(p.name for p in checkpoint.weights)
        raise ModelLoadError(_("the weights in {names} do not fit the {model_type} architecture: {error}").format(
            names=names, model_type=family.model_type, error=err)) from err
    model.preprocessing = Preprocessing.from_dir(checkpoint.folder, _DEFAULT_PREPROCESSING[family.model_type])
    return model
