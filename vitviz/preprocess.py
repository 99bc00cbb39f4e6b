"""Turn a PIL image into the `pixel_values` a checkpoint expects, as its `preprocessor_config.json` says.

Mirrors transformers' (slow, PIL-based) image processors: resize with the configured PIL filter, optional
centre crop, rescale to [0, 1], normalise by mean/std, and for MobileViT flip RGB to BGR.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """The preprocessing of one checkpoint (fields of `preprocessor_config.json`)."""

    size: tuple[int, int] | None = (224, 224)  # resize to (height, width); None when shortest_edge is used
    shortest_edge: int | None = None  # resize so the shorter side has this length, keeping aspect
    crop: tuple[int, int] | None = None  # centre crop (height, width) after the resize, if any
    resample: int = Image.Resampling.BILINEAR  # PIL filter used for the resize
    rescale_factor: float = 1 / 255  # multiplies the uint8 pixels
    mean: tuple[float, float, float] | None = (0.5, 0.5, 0.5)  # per-channel mean, None = no normalisation
    std: tuple[float, float, float] | None = (0.5, 0.5, 0.5)  # per-channel std
    bgr: bool = False  # MobileViT was trained on BGR input

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the pixel_values this preprocessing produces for a square image."""
        if self.crop is not None:
            return self.crop
        if self.size is not None:
            return self.size
        return (self.shortest_edge, self.shortest_edge)

    @classmethod
    def from_hf(cls, cfg: dict) -> "Preprocessing":
        """Read a transformers `preprocessor_config.json` dict."""
        size = cfg.get("size", 224)
        shortest = None
        if isinstance(size, int):
            # Old feature-extractor configs: an int means a square resize.
            size = (size, size)
        elif "shortest_edge" in size:
            shortest, size = size["shortest_edge"], None
        else:
            size = (size["height"], size["width"])
        crop = None
        if cfg.get("do_center_crop"):
            c = cfg.get("crop_size", 224)
            crop = (c, c) if isinstance(c, int) else (c["height"], c["width"])
        kind = str(cfg.get("image_processor_type") or cfg.get("feature_extractor_type") or "")
        # MobileViT's processor has no normalisation step at all, so its configs omit do_normalize.
        normalize = cfg.get("do_normalize", "MobileViT" not in kind)
        return cls(
            size=size if cfg.get("do_resize", True) else None,
            shortest_edge=shortest,
            crop=crop,
            resample=int(cfg.get("resample", Image.Resampling.BILINEAR)),
            rescale_factor=float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1.0,
            mean=tuple(cfg.get("image_mean", IMAGENET_MEAN)) if normalize else None,
            std=tuple(cfg.get("image_std", IMAGENET_STD)) if normalize else None,
            bgr=bool(cfg.get("do_flip_channel_order", False)),
        )

    @classmethod
    def from_dir(cls, path: str | Path, default: "Preprocessing") -> "Preprocessing":
        """Read `preprocessor_config.json` from a checkpoint directory, or return `default` without one."""
        file = Path(path) / "preprocessor_config.json"
        if not file.is_file():
            return default
        return cls.from_hf(json.loads(file.read_text()))


def resize_and_crop(image: Image.Image, prep: Preprocessing, size: tuple[int, int] | None = None) -> Image.Image:
    """The image as the model sees it, before normalisation: resized (and cropped) RGB PIL image.

    `size` (height, width) overrides the checkpoint's input size: the image is then resized straight to it,
    which is how the app explores other resolutions.
    """
    image = image.convert("RGB")
    if size is not None:
        return image.resize((size[1], size[0]), resample=prep.resample)
    if prep.shortest_edge is not None:
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(prep.shortest_edge * long / short)
        new_w, new_h = (prep.shortest_edge, new_long) if w <= h else (new_long, prep.shortest_edge)
        image = image.resize((new_w, new_h), resample=prep.resample)
    elif prep.size is not None:
        image = image.resize((prep.size[1], prep.size[0]), resample=prep.resample)
    if prep.crop is not None:
        ch, cw = prep.crop
        w, h = image.size
        top, left = (h - ch) // 2, (w - cw) // 2
        image = image.crop((left, top, left + cw, top + ch))
    return image


def to_pixel_values(image: Image.Image, prep: Preprocessing) -> torch.Tensor:
    """RGB PIL image (already resized) -> pixel_values (1, 3, H, W) float32, rescaled and normalised."""
    x = np.asarray(image.convert("RGB"), dtype=np.float32) * prep.rescale_factor  # (H, W, 3)
    if prep.mean is not None:
        x = (x - np.asarray(prep.mean, dtype=np.float32)) / np.asarray(prep.std, dtype=np.float32)
    if prep.bgr:
        x = x[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def preprocess(image: Image.Image, prep: Preprocessing, size: tuple[int, int] | None = None) -> torch.Tensor:
    """PIL image -> pixel_values (1, 3, H, W) as the checkpoint's processor makes them (or at `size`)."""
    return to_pixel_values(resize_and_crop(image, prep, size), prep)
