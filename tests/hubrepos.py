"""Hub repos in every layout a loader meets, made locally with `save_pretrained` for tests/fakehub.py to serve.

Each builder returns the repo's files (path -> bytes) and the transformers model they hold, so a test can compare
what vitviz loads with transformers' own forward pass.
"""
from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from vitviz.hub import CONVERSION_BOT, CONVERSION_PR_TITLE

from .fakehub import PullRequest, Repo, Revision
from .helpers import perturb_


def tiny_vit(seed: int = 0):
    """A two-layer ViT classifier at 32 px (transformers' model, eval mode)."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, num_labels=3, id2label={0: "cat", 1: "dog", 2: "teapot"})
    return perturb_(ViTForImageClassification(config), seed).eval()


def saved_files(model, **save_kwargs) -> dict[str, bytes]:
    """What `save_pretrained` writes (transformers 4.x key names, as on the hub), plus a preprocessor config."""
    from transformers import ViTImageProcessor

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, **save_kwargs)
        size = model.config.image_size
        ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}


def tensors(files: dict[str, bytes]) -> dict[str, torch.Tensor]:
    """The state dict in a repo's `model.safetensors`."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "w.safetensors").write_bytes(files["model.safetensors"])
        return load_file(Path(tmp) / "w.safetensors")


def _pickled(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def as_bin(files: dict[str, bytes]) -> dict[str, bytes]:
    """The same checkpoint as an old repo keeps it: `pytorch_model.bin` (torch.save of the state dict), no
    safetensors."""
    out = {k: v for k, v in files.items() if not k.endswith(".safetensors") and not k.endswith(".index.json")}
    out["pytorch_model.bin"] = _pickled(tensors(files))
    return out


def as_sharded_bin(files: dict[str, bytes], parts: int = 3) -> dict[str, bytes]:
    """The same checkpoint as a large old repo keeps it: `pytorch_model-0000i-of-0000n.bin` shards and the
    `pytorch_model.bin.index.json` whose weight_map names each key's shard (transformers' names), no safetensors."""
    out = {k: v for k, v in files.items() if not k.endswith(".safetensors") and not k.endswith(".index.json")}
    state = tensors(files)
    keys = sorted(state)
    weight_map = {}
    for i in range(parts):
        name = f"pytorch_model-{i + 1:05d}-of-{parts:05d}.bin"
        out[name] = _pickled({k: state[k] for k in keys[i::parts]})
        weight_map.update(dict.fromkeys(keys[i::parts], name))
    total = sum(t.numel() * t.element_size() for t in state.values())
    out["pytorch_model.bin.index.json"] = json.dumps({"metadata": {"total_size": total},
                                                      "weight_map": weight_map}).encode()
    return out


class RunsCode:
    """Unpickling this object would call `open(path, "w")`: a stand-in for any code a malicious pickle runs."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def crafted_bin(files: dict[str, bytes], marker: Path) -> dict[str, bytes]:
    """A `pytorch_model.bin` in PyTorch's own zip format whose pickle, besides a real tensor, would run code."""
    out = {k: v for k, v in files.items() if not k.endswith(".safetensors")}
    buffer = io.BytesIO()
    torch.save({"vit.embeddings.cls_token": torch.zeros(1, 1, 32), "payload": RunsCode(marker)}, buffer)
    out["pytorch_model.bin"] = buffer.getvalue()
    return out


def layouts(marker: Path) -> dict[str, tuple[Repo, torch.nn.Module | None]]:
    """One supported repo id per layout (load_model only asks the hub for supported ids; the architecture comes
    from each repo's config.json, so a tiny ViT can stand in for any of them)."""
    single, sharded, pr, binary, crafted = (tiny_vit(seed) for seed in range(5))
    pr_files = saved_files(pr)
    return {
        "facebook/dino-vits16": (Repo(Revision(saved_files(single))), single),
        "facebook/dino-vits8": (Repo(Revision(saved_files(sharded, max_shard_size="40KB"))), sharded),
        "facebook/deit-tiny-patch16-224": (Repo(Revision(as_bin(pr_files)), pulls=[
            PullRequest(1, CONVERSION_PR_TITLE, CONVERSION_BOT, status="closed", files=saved_files(tiny_vit(9))),
            PullRequest(2, "Adding `safetensors` variant of this model", "someone-else", files=saved_files(tiny_vit(8))),
            PullRequest(3, CONVERSION_PR_TITLE, CONVERSION_BOT, files=pr_files),
        ]), pr),
        "google/vit-base-patch16-224": (Repo(Revision(as_bin(saved_files(binary)))), binary),
        "microsoft/swin-tiny-patch4-window7-224": (Repo(Revision(crafted_bin(saved_files(crafted), marker))), None),
        "apple/mobilevit-xx-small": (Repo(Revision(saved_files(tiny_vit(5))), access="gated"), None),
        "apple/mobilevit-small": (Repo(Revision({}), access="missing"), None),
    }
