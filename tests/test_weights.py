"""load_model: directories, hub ids through the real huggingface_hub cache path, presets, and clear errors."""
from __future__ import annotations

import json
import pickle

import pytest
import torch
from transformers import ViTConfig as HFViTConfig
from transformers import ViTForImageClassification

import vitviz
from vitviz.models.common import build_uninitialised, init_random
from vitviz.weights import HUB_IDS, ModelLoadError

from .helpers import perturb_


def tiny_classifier(path):
    config = HFViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, num_labels=3, id2label={0: "cat", 1: "dog", 2: "teapot"})
    model = perturb_(ViTForImageClassification(config)).eval()
    model.save_pretrained(path)
    return model


def test_hub_id_loads_through_the_huggingface_cache(tmp_path, monkeypatch):
    """A supported hub id goes through snapshot_download; here offline, from a cache laid out as the hub writes it."""
    import huggingface_hub.constants as constants

    repo = HUB_IDS["deit-tiny"]
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = tmp_path / f"models--{repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    reference = tiny_classifier(repo_dir / "snapshots" / commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = vitviz.load_model(repo, device="cpu")
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(model(x).logits, reference(x).logits, rtol=1e-4, atol=1e-5)
    assert model.config.labels == ("cat", "dog", "teapot") and model.source == repo


def test_hub_id_missing_offline_is_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not on this machine.*offline.*python3 tasks.py download"):
        vitviz.load_model(HUB_IDS["swin-tiny"])


def test_unsupported_source_names_the_choices():
    with pytest.raises(ModelLoadError, match="dino-vits16.*facebook/dino-vits16"):
        vitviz.load_model("someone/some-model")


def test_pickle_weights_are_never_loaded(tmp_path):
    """A checkpoint with only pytorch_model.bin is refused without unpickling it."""

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "PWNED"), "w"))

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit", "hidden_size": 8}))
    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ModelLoadError, match="only safetensors"):
        vitviz.load_model(tmp_path)
    assert not (tmp_path / "PWNED").exists()


def test_unknown_model_type_and_bad_json(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelLoadError, match="'bert' is not supported"):
        vitviz.load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        vitviz.load_model(tmp_path)


def test_weights_that_do_not_fit_fail_loudly(tmp_path):
    tiny_classifier(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_hidden_layers"] = 2
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="do not fit the vit architecture"):
        vitviz.load_model(tmp_path)


def test_loaded_model_is_frozen_eval_and_on_the_chosen_device(tmp_path):
    tiny_classifier(tmp_path)
    model = vitviz.load_model(tmp_path)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.pos_embed.device.type == ("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")
    assert model.preprocessing == vitviz.weights.PREPROCESSING["vit-base-16"]  # no preprocessor_config.json saved


@pytest.mark.parametrize("name", [n for n in HUB_IDS if n not in vitviz.weights.LARGE_DOWNLOADS])
def test_a_preset_built_uninitialised_equals_one_built_the_usual_way(name):
    """Presets skip the layers' own initialisation (built on the meta device, then init_random sets everything):
    every parameter and buffer, BatchNorm statistics included, must be what a normally built model gets."""
    family = next(f for f in vitviz.weights.FAMILIES.values() if name in f.presets)
    usual = init_random(family.model_class(family.presets[name]), name).state_dict()
    fast = vitviz.load_model(name, device="cpu").state_dict()
    assert fast.keys() == usual.keys()
    assert all(torch.equal(fast[k], usual[k]) for k in usual), [k for k in usual if not torch.equal(fast[k], usual[k])]


def test_init_random_refuses_a_buffer_it_cannot_set():
    class WithBuffer(torch.nn.Module):
        def __init__(self, config=None):
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)
            self.register_buffer("table", torch.arange(4.0))

    with pytest.raises(TypeError, match="table"):
        init_random(build_uninitialised(WithBuffer, None), "x")
