"""Load our modules from transformers-format checkpoints: a local directory, a supported hub id, or a preset.

Only `model.safetensors` is read (safetensors holds tensors only, so loading can never run code, unlike
pickle). Checkpoint keys carry transformers 4.x names, which each family's `convert_state_dict` maps to ours;
the state dict is loaded strictly, so a checkpoint that does not fit the architecture fails loudly.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from .models import mobilevit, swin, vit
from .models.common import init_random, pick_device
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

FAMILIES = {f.model_type: f for f in (vit.FAMILY, swin.FAMILY, mobilevit.FAMILY)}

# Preset name -> the hub checkpoint it mirrors (same architecture, same preprocessing).
HUB_IDS = {
    "dino-vits16": "facebook/dino-vits16",
    "dino-vits8": "facebook/dino-vits8",
    "deit-tiny": "facebook/deit-tiny-patch16-224",
    "vit-base-16": "google/vit-base-patch16-224",
    "swin-tiny": "microsoft/swin-tiny-patch4-window7-224",
    "mobilevit-xxs": "apple/mobilevit-xx-small",
    "mobilevit-s": "apple/mobilevit-small",
}

_IMAGENET = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD)
_MOBILEVIT = Preprocessing(size=None, shortest_edge=288, crop=(256, 256), mean=None, std=None, bgr=True)
# What each hub checkpoint's preprocessor_config.json says, for presets and directories without one.
PREPROCESSING = {
    "dino-vits16": Preprocessing(size=(224, 224), resample=3, **_IMAGENET),
    "dino-vits8": Preprocessing(size=(224, 224), resample=3, **_IMAGENET),
    "deit-tiny": Preprocessing(size=(256, 256), crop=(224, 224), resample=3, **_IMAGENET),
    "vit-base-16": Preprocessing(size=(224, 224), resample=2),
    "swin-tiny": Preprocessing(size=(224, 224), resample=3, **_IMAGENET),
    "mobilevit-xxs": _MOBILEVIT,
    "mobilevit-s": _MOBILEVIT,
}
_DEFAULT_PREPROCESSING = {"vit": PREPROCESSING["vit-base-16"], "swin": PREPROCESSING["swin-tiny"], "mobilevit": _MOBILEVIT}
_CHECKPOINT_FILES = ["config.json", "model.safetensors", "preprocessor_config.json"]


class ModelLoadError(ValueError):
    """A model source that cannot be loaded; the message is one sentence a user can act on."""


def presets() -> list[str]:
    """Names of the offline presets (deterministic random weights), in display order."""
    return list(HUB_IDS)


def load_model(source: str | os.PathLike, device: str | torch.device | None = None, tqdm_class=None) -> nn.Module:
    """Build our module from `source` and return it in eval mode on `device` (default cuda > mps > cpu).

    `source`: a directory with `config.json` + `model.safetensors`; a supported hub id (see `HUB_IDS`),
    fetched with huggingface_hub into the standard cache (honours HF_HUB_OFFLINE; `tqdm_class` shows the
    download); or a preset name, giving deterministic random weights. The model gets `.preprocessing`
    (a `Preprocessing`) and `.source` attributes. Raises ModelLoadError with a readable message.
    """
    source_str = os.fspath(source)
    # Names first: a folder that happens to be called like a preset or repo must not replace its weights.
    if source_str in HUB_IDS:
        model = _build_preset(source_str)
    elif source_str in HUB_IDS.values():
        model = _load_dir(_download(source_str, tqdm_class))
    elif Path(source_str).is_dir():
        model = _load_dir(Path(source_str))
    else:
        raise ModelLoadError(
            f"{source_str!r} is neither a checkpoint directory nor a supported model; "
            f"choose a preset ({', '.join(HUB_IDS)}) or a hub id ({', '.join(HUB_IDS.values())})."
        )
    model.source = source_str
    return model.eval().requires_grad_(False).to(pick_device(device))


def _build_preset(name: str) -> nn.Module:
    family = next(f for f in FAMILIES.values() if name in f.presets)
    model = init_random(family.model_class(family.presets[name]), name)
    model.preprocessing = PREPROCESSING[name]
    return model


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _download(repo_id: str, tqdm_class=None) -> Path:
    """Fetch the checkpoint files of a supported hub repo into the HF cache; return the snapshot directory."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(
            repo_id, allow_patterns=_CHECKPOINT_FILES, local_files_only=_hub_offline(), tqdm_class=tqdm_class
        )
    except LocalEntryNotFoundError as err:
        raise ModelLoadError(
            f"{repo_id} is not in the local cache and the Hugging Face hub cannot be reached (offline); "
            "use a preset instead."
        ) from err
    except Exception as err:  # network errors come in many types (HTTP, DNS, timeouts)
        raise ModelLoadError(f"could not download {repo_id} from the Hugging Face hub ({type(err).__name__}).") from err
    return Path(path)


def _load_dir(path: Path) -> nn.Module:
    config_file, weights_file = path / "config.json", path / "model.safetensors"
    if not config_file.is_file():
        raise ModelLoadError(f"{path} has no config.json, so it is not a transformers-format checkpoint.")
    if not weights_file.is_file():
        raise ModelLoadError(f"{path} has no model.safetensors; only safetensors weights are loaded, never pickles.")
    try:
        hf_config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{config_file} is not valid JSON.") from err
    family = FAMILIES.get(hf_config.get("model_type"))
    if family is None:
        raise ModelLoadError(
            f"model_type {hf_config.get('model_type')!r} is not supported; vitviz loads {', '.join(FAMILIES)}."
        )
    model = family.model_class(family.config_from_hf(hf_config))
    state = family.convert_state_dict(load_file(weights_file, device="cpu"))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelLoadError(f"the weights in {weights_file} do not fit the {family.model_type} architecture: {err}") from err
    model.preprocessing = Preprocessing.from_dir(path, _DEFAULT_PREPROCESSING[family.model_type])
    return model
