"""DINOv2 and DINOv2 with registers: parity with transformers' Dinov2Model, Dinov2WithRegistersModel and both
classifiers on locally saved checkpoints (outputs, logits and every attention map), and the trained-weights path."""
from __future__ import annotations

import pytest
import torch
from transformers import (Dinov2Config, Dinov2ForImageClassification, Dinov2Model, Dinov2WithRegistersConfig,
                          Dinov2WithRegistersForImageClassification, Dinov2WithRegistersModel)

import vitviz
from vitviz import hub
from vitviz.trace import trace

from .fakehub import FakeHub, Repo, Revision
from .helpers import perturb_, save
from .hubrepos import saved_files

RTOL, ATOL = 1e-4, 1e-4
TINY = dict(image_size=56, patch_size=14, hidden_size=48, num_hidden_layers=3, num_attention_heads=3,
            attn_implementation="eager")


def labelled(n: int) -> dict:
    return dict(num_labels=n, id2label={i: f"label{i}" for i in range(n)})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """transformers models (eval) and the folders they were saved to."""
    root = tmp_path_factory.mktemp("dinov2")
    torch.manual_seed(0)
    models = {
        "plain": perturb_(Dinov2Model(Dinov2Config(**TINY)), 1),
        "registers": perturb_(Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**TINY, num_register_tokens=4)), 2),
        "one register": perturb_(Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**TINY, num_register_tokens=1)), 3),
        "classifier": perturb_(Dinov2ForImageClassification(Dinov2Config(**TINY, **labelled(5))), 4),
        "registers classifier": perturb_(Dinov2WithRegistersForImageClassification(
            Dinov2WithRegistersConfig(**TINY, **labelled(5))), 5),
    }
    return {name: (model.eval(), save(model, root / name.replace(" ", "_"))) for name, model in models.items()}


def backbone(reference):
    return getattr(reference, "dinov2", None) or getattr(reference, "dinov2_with_registers", None) or reference


def assert_parity(ours, reference, x: torch.Tensor) -> None:
    with torch.no_grad():
        expected = backbone(reference)(x, output_attentions=True)
        got = ours(x)
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state, rtol=RTOL, atol=ATOL)
    assert len(got.attentions) == len(expected.attentions) == ours.config.depth
    for a, b in zip(got.attentions, expected.attentions):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL)
    if ours.head is not None:
        with torch.no_grad():
            torch.testing.assert_close(got.logits, reference(x).logits, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["plain", "registers", "one register", "classifier", "registers classifier"])
@pytest.mark.parametrize("size", [(56, 56), (42, 70), (84, 84), (98, 56), (45, 61)])
def test_outputs_logits_and_every_attention_match_transformers(checkpoints, name, size):
    reference, path = checkpoints[name]
    ours = vitviz.load_model(path, device="cpu")
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    assert_parity(ours, reference, x)
    registers = reference.config.num_register_tokens if "register" in name else 0
    tokens = 1 + registers + (size[0] // 14) * (size[1] // 14)
    assert ours.config.registers == registers and ours.config.prefix == 1 + registers
    assert ours(x).attentions[0].shape == (2, 3, tokens, tokens)
    assert ours.config.antialias == bool(registers)  # each variant's own E_pos interpolation
    if "classifier" in name:
        assert ours.config.labels == tuple(f"label{i}" for i in range(5)) and ours.head.in_features == 2 * 48


def test_small_at_224_from_a_518_checkpoint(tmp_path):
    """The hub's S/14 layout (37 × 37 trained positions, 12 layers) run at 224: a 16 × 16 grid interpolated from 37."""
    config = Dinov2Config(image_size=518, patch_size=14, hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                          attn_implementation="eager")
    reference = perturb_(Dinov2Model(config), 6).eval()
    ours = vitviz.load_model(save(reference, tmp_path / "s14"), device="cpu")
    assert ours.config.grid == 37 and ours.pos_embed.shape == (1, 1 + 37 * 37, 384)
    assert_parity(ours, reference, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1)))


def test_registers_follow_cls_and_carry_no_position(checkpoints):
    ours = vitviz.load_model(checkpoints["registers"][1], device="cpu")
    x = torch.randn(1, 3, 42, 70)
    taps = trace(ours, x, ["position", "sequence"])
    position, sequence = taps["position"], taps["sequence"]
    assert position.shape == (1, 1 + 15, 48) and sequence.shape == (1, 1 + 4 + 15, 48)
    torch.testing.assert_close(sequence[:, 0], position[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(sequence[:, 1:5], ours.register_tokens, rtol=0, atol=0)  # no E_pos added to them
    torch.testing.assert_close(sequence[:, 5:], position[:, 1:], rtol=0, atol=0)


def test_antialias_is_what_separates_the_two_interpolations(checkpoints):
    """The same E_pos resized both ways differs: a model that used the other variant's mode would fail parity."""
    ours = vitviz.load_model(checkpoints["registers"][1], device="cpu")
    plain = vitviz.load_model(checkpoints["plain"][1], device="cpu")
    plain.pos_embed.data.copy_(ours.pos_embed)
    assert (ours.position_embeddings((2, 2)) - plain.position_embeddings((2, 2))).abs().max() > 1e-3
    torch.testing.assert_close(ours.position_embeddings((4, 4)), plain.position_embeddings((4, 4)))  # native: as is


def test_a_patch_size_change_keeps_the_registers(checkpoints):
    ours = vitviz.load_model(checkpoints["registers"][1], device="cpu")
    resized = ours.with_patch_size(16)
    assert resized.register_tokens is ours.register_tokens or torch.equal(resized.register_tokens, ours.register_tokens)
    out = resized(torch.randn(1, 3, 64, 48))
    assert out.attentions[-1].shape == (1, 3, 1 + 4 + 12, 1 + 4 + 12)


def test_presets_build_and_run_offline():
    for name in ["dinov2-small", "dinov2-small-reg", "dinov2-small-cls"]:
        model = vitviz.load_model(name, device="cpu")
        out = model(torch.randn(1, 3, 56, 84))
        registers = 4 if name.endswith("-reg") else 0
        assert out.last_hidden_state.shape == (1, 1 + registers + 24, 384)
        assert (out.logits is not None) == name.endswith("-cls")
        assert torch.isfinite(out.last_hidden_state).all()
        assert model.blocks[0].ls1.lambda1.eq(1).all()  # random presets keep LayerScale's init of 1, not 0


def test_the_large_pair_is_only_fetched_with_all():
    assert vitviz.weights.LARGE_DOWNLOADS == {"dinov2-large", "dinov2-large-reg"}
    assert vitviz.weights.HUB_IDS["dinov2-large-reg"] == "facebook/dinov2-with-registers-large"


def test_trained_weights_come_through_the_hub_code(checkpoints, monkeypatch, tmp_path):
    """`load_model("facebook/dinov2-with-registers-small")` downloads from a hub on loopback, then loads offline."""
    from huggingface_hub import constants

    reference = checkpoints["registers"][0]
    repo = "facebook/dinov2-with-registers-small"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("VITVIZ_CACHE", str(tmp_path / "vitviz"))
    monkeypatch.delenv("VITVIZ_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(hub, "_downloads", {})
    x = torch.randn(1, 3, 70, 42)
    with FakeHub({repo: Repo(Revision(saved_files(reference)))}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        assert_parity(vitviz.load_model(repo, device="cpu"), reference, x)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert_parity(vitviz.load_model(repo, device="cpu"), reference, x)
    assert hub.find_local(repo).layout == "model.safetensors"
