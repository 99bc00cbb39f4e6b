"""ViT parity with transformers on locally saved checkpoints, and the ViT stage invariants."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import ViTConfig as HFViTConfig
from transformers import ViTForImageClassification, ViTModel

import vitviz
from vitviz.models.vit import PRESETS, ViT

from .helpers import perturb_, save

RTOL, ATOL = 1e-4, 1e-5


def hf_config(**kw) -> HFViTConfig:
    base = dict(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=3, num_attention_heads=3,
                intermediate_size=96, attn_implementation="eager")
    base.update(kw)
    return HFViTConfig(**base)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Three checkpoints: a classifier, a DINO-like backbone with pooler, and one without q/k/v bias."""
    root = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    classifier = perturb_(ViTForImageClassification(hf_config(num_labels=7, id2label={i: f"label{i}" for i in range(7)})), 1)
    backbone = perturb_(ViTModel(hf_config(layer_norm_eps=1e-6), add_pooling_layer=True), 2)
    no_bias = perturb_(ViTModel(hf_config(qkv_bias=False), add_pooling_layer=False), 3)
    return {
        "classifier": (classifier.eval(), save(classifier, root / "classifier")),
        "backbone": (backbone.eval(), save(backbone, root / "backbone")),
        "no_bias": (no_bias.eval(), save(no_bias, root / "no_bias")),
    }


@pytest.mark.parametrize("name", ["classifier", "backbone", "no_bias"])
@pytest.mark.parametrize("size", [(32, 32), (48, 48), (40, 64), (72, 24), (45, 53)])
def test_outputs_and_every_attention_match_transformers(checkpoints, name, size):
    reference, path = checkpoints[name]
    ours = vitviz.load_model(path, device="cpu")
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    with torch.no_grad():
        backbone = reference.vit if name == "classifier" else reference
        expected = backbone(x, output_attentions=True, interpolate_pos_encoding=True)
        got = ours(x)
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state, rtol=RTOL, atol=ATOL)
    assert len(got.attentions) == len(expected.attentions) == 3
    for a, b in zip(got.attentions, expected.attentions):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL)
    if name == "classifier":
        with torch.no_grad():
            logits = reference(x, interpolate_pos_encoding=True).logits
        torch.testing.assert_close(got.logits, logits, rtol=RTOL, atol=ATOL)
        assert ours.config.labels == tuple(f"label{i}" for i in range(7))
    else:
        assert got.logits is None and ours.head is None


def test_fast_path_matches_explicit_attention(checkpoints):
    ours = vitviz.load_model(checkpoints["classifier"][1], device="cpu")
    x = torch.randn(1, 3, 40, 56)
    fast, explicit = ours(x, output_attentions=False), ours(x)
    assert fast.attentions is None
    torch.testing.assert_close(fast.last_hidden_state, explicit.last_hidden_state, rtol=RTOL, atol=ATOL)


def test_layer_norm_eps_comes_from_config(checkpoints):
    ours = vitviz.load_model(checkpoints["backbone"][1], device="cpu")
    assert ours.norm.eps == 1e-6 and ours.blocks[0].norm1.eps == 1e-6


def test_position_interpolation_is_bicubic_per_axis(checkpoints):
    """Non-square grid: H and W are resized separately (the DINO #8 / #36 error would use one factor)."""
    ours = vitviz.load_model(checkpoints["backbone"][1], device="cpu")
    pos = ours.position_embeddings((6, 2))
    grid = ours.pos_embed[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(6, 2), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(1, 12, -1)
    torch.testing.assert_close(pos[:, 1:], expected)
    torch.testing.assert_close(pos[:, :1], ours.pos_embed[:, :1])
    assert ours.position_embeddings((4, 4)) is ours.pos_embed


@pytest.mark.parametrize("name,params", [("dino-vits16", 21_665_664), ("dino-vits8", 21_670_272),
                                         ("deit-tiny", 5_717_416), ("vit-base-16", 86_567_656)])
def test_preset_parameter_counts(name, params):
    model = ViT(PRESETS[name])
    assert sum(p.numel() for p in model.parameters()) == params


def test_presets_are_deterministic_and_distinct():
    a, b = vitviz.load_model("deit-tiny", device="cpu"), vitviz.load_model("deit-tiny", device="cpu")
    torch.testing.assert_close(a.pos_embed, b.pos_embed, rtol=0, atol=0)
    assert not torch.equal(a.pos_embed[..., :192], vitviz.load_model("dino-vits16", device="cpu").pos_embed[..., :192])
    assert len(a.config.labels) == 1000 and a.preprocessing.crop == (224, 224)


@settings(max_examples=25, deadline=None)
@given(p=st.integers(2, 12), gh=st.integers(1, 6), gw=st.integers(1, 6), extra_h=st.integers(0, 11), extra_w=st.integers(0, 11))
def test_conv_patch_embedding_equals_linear_on_flattened_patches(p, gh, gw, extra_h, extra_w):
    """Eq. 1's linear map on (p1 p2 c)-flattened patches equals Conv2d(kernel = stride = P), remainder dropped."""
    model = ViT(vitviz.models.vit.ViTConfig(image_size=p * 4, patch_size=p, dim=8, depth=1, heads=2, mlp_dim=8))
    torch.nn.init.normal_(model.patch_embed.weight)
    torch.nn.init.normal_(model.patch_embed.bias)
    x = torch.randn(2, 3, gh * p + extra_h % p, gw * p + extra_w % p)
    patches = model.patchify(x)
    assert patches.shape == (2, gh, gw, p, p, 3)
    flat = model.flatten(patches)
    assert flat.shape == (2, gh * gw, p * p * 3)
    # Raster order and (p1 p2 c) order inside: patch n = (r, c) holds x[:, ch, r*p + i, c*p + j] at (i*p + j)*3 + ch.
    r, c, i, j, ch = gh - 1, gw - 1, p - 1, 0, 2
    assert flat[1, r * gw + c, (i * p + j) * 3 + ch] == x[1, ch, r * p + i, c * p + j]
    conv = model.patch_embed(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(model.project(flat), conv, rtol=1e-4, atol=1e-4)  # sums of up to 432 float32 products


def test_too_small_input_is_a_clear_error():
    model = ViT(PRESETS["dino-vits16"])
    with pytest.raises(ValueError, match="smaller than one 16"):
        model.patchify(torch.zeros(1, 3, 15, 300))


def test_attention_rows_sum_to_one(checkpoints):
    ours = vitviz.load_model(checkpoints["no_bias"][1], device="cpu")
    for probs in ours(torch.randn(1, 3, 40, 32)).attentions:
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))


@pytest.mark.parametrize("new_p", [16, 12, 7])
def test_pi_resized_kernel_gives_the_same_tokens_on_upsampled_patches(new_p):
    """FlexiViT §3.4: a patch upsampled bilinearly to the new size is projected to the same token."""
    from vitviz.models.vit import resize_patch_kernel

    weight = torch.randn(5, 3, 6, 6, dtype=torch.float64)
    patch = torch.randn(1, 3, 6, 6, dtype=torch.float64)
    up = F.interpolate(patch, size=(new_p, new_p), mode="bilinear", align_corners=False)
    new = resize_patch_kernel(weight, new_p)
    assert new.shape == (5, 3, new_p, new_p)
    torch.testing.assert_close(torch.einsum("dcij,bcij->bd", new, up), torch.einsum("dcij,bcij->bd", weight, patch))


def test_with_patch_size_shares_weights_and_leaves_the_original_alone(checkpoints):
    ours = vitviz.load_model(checkpoints["classifier"][1], device="cpu")
    before = ours.patch_embed.weight.clone()
    other = ours.with_patch_size(4)
    assert other.config.patch_size == 4 and other.config.grid == ours.config.grid
    assert other.preprocessing == ours.preprocessing and other.source == ours.source
    assert other.blocks[0].attn.query.weight.data_ptr() == ours.blocks[0].attn.query.weight.data_ptr()
    assert torch.equal(ours.patch_embed.weight, before) and ours.with_patch_size(8) is ours
    out = other(torch.randn(1, 3, 28, 20))
    assert out.last_hidden_state.shape == (1, 1 + 7 * 5, 48)
