"""Preprocessing equals transformers' PIL image processors, read from their saved preprocessor_config.json."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import DeiTImageProcessorPil, MobileViTImageProcessorPil, ViTImageProcessorPil

from vitviz.preprocess import Preprocessing, preprocess, resize_and_crop
from vitviz.weights import PREPROCESSING

PROCESSORS = {
    "vit-base": ViTImageProcessorPil(size={"height": 224, "width": 224}),
    "dino": ViTImageProcessorPil(size={"height": 224, "width": 224}, resample=3,
                                 image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]),
    "deit": DeiTImageProcessorPil(size={"height": 256, "width": 256}, crop_size={"height": 224, "width": 224}, resample=3),
    "mobilevit": MobileViTImageProcessorPil(size={"shortest_edge": 288}, crop_size={"height": 256, "width": 256}, resample=2),
}


def image(h: int, w: int) -> Image.Image:
    rng = np.random.default_rng(h * 1000 + w)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("name", list(PROCESSORS))
@pytest.mark.parametrize("size", [(300, 451), (451, 300), (256, 256)])
def test_matches_transformers_processor(tmp_path, name, size):
    processor = PROCESSORS[name]
    processor.save_pretrained(tmp_path)
    prep = Preprocessing.from_dir(tmp_path, default=Preprocessing())
    img = image(*size)
    expected = processor(img, return_tensors="pt")["pixel_values"]
    got = preprocess(img, prep)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected.float(), rtol=1e-5, atol=1e-5)


def test_mobilevit_is_bgr_without_normalisation(tmp_path):
    PROCESSORS["mobilevit"].save_pretrained(tmp_path)
    prep = Preprocessing.from_dir(tmp_path, default=Preprocessing())
    assert prep.bgr and prep.mean is None and prep == PREPROCESSING["mobilevit-xxs"]
    red = Image.new("RGB", (300, 300), (255, 0, 0))
    x = preprocess(red, prep)
    assert x[0, 2].min() == 1.0 and x[0, 0].max() == 0.0


def test_missing_file_gives_default(tmp_path):
    default = Preprocessing(size=(96, 96))
    assert Preprocessing.from_dir(tmp_path, default) is default


def test_size_override_resizes_straight_to_it():
    out = resize_and_crop(image(300, 451), PREPROCESSING["deit-tiny"], size=(160, 96))
    assert out.size == (96, 160)
    assert preprocess(image(300, 451), PREPROCESSING["dino-vits16"], size=(48, 80)).shape == (1, 3, 48, 80)
