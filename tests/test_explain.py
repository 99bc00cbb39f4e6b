"""vitviz.explain against independent computations: autograd on transformers' own models for gradient rollout and
Grad-CAM, transformers' encoder on the kept tokens for deletion, its hidden states for the logit lens, CAM's closed
form for MobileViT, and a brute-force ranking that must beat the random band."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (Dinov2Config, Dinov2ForImageClassification, SwinConfig, SwinForImageClassification,
                          ViTConfig, ViTForImageClassification)

import vitviz
from vitviz import explain as ex
from vitviz.models.mobilevit import PRESETS as MOBILEVIT_PRESETS, MobileViT
from vitviz.models.common import init_random
from vitviz.trace import trace

from .helpers import perturb_, save

TOL = dict(rtol=1e-4, atol=1e-4)
LABELS = dict(num_labels=7, id2label={i: f"label{i}" for i in range(7)})


@pytest.fixture(scope="module")
def vit_pair(tmp_path_factory):
    """A tiny transformers ViT classifier (eval, eager attention) and ours loaded from its saved checkpoint."""
    torch.manual_seed(0)
    config = ViTConfig(image_size=48, patch_size=8, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                       intermediate_size=64, attn_implementation="eager", **LABELS)
    reference = perturb_(ViTForImageClassification(config), 11).eval()
    ours = vitviz.load_model(save(reference, tmp_path_factory.mktemp("vit") / "tiny"))
    return reference, ours


@pytest.fixture(scope="module")
def image():
    return torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(3))


def reference_gradients(reference, x, target):
    """transformers' attentions, the LN(x) entering the last layer and their gradients of logit `target`."""
    captured = {}
    hook = reference.vit.layers[-1].layernorm_before.register_forward_hook(
        lambda module, args, out: captured.update(z=out))
    try:
        out = reference(x, output_attentions=True)
    finally:
        hook.remove()
    tensors = [*out.attentions, captured["z"]]
    grads = torch.autograd.grad(out.logits[0, target], tensors)
    return out.attentions, grads[:-1], captured["z"], grads[-1]


@pytest.mark.parametrize("target", [0, 4])
def test_gradient_rollout_equals_chefer_on_transformers(vit_pair, image, target):
    reference, ours = vit_pair
    attentions, grads, _, _ = reference_gradients(reference, image, target)
    r = torch.eye(attentions[0].shape[-1])
    for a, g in zip(attentions, grads):  # Chefer et al.'s loop as their repository writes it
        cam = (g[0] * a[0]).clamp(min=0).mean(dim=0)
        r = r + cam @ r
    expected = r[0, 1:].detach().reshape(6, 6).double().numpy()
    got = ex.explain_vit(ours, image, target).maps["grad_rollout"]
    np.testing.assert_allclose(got, expected, **TOL)
    assert got.std() > 1e-3  # not a constant map that would match anything


@pytest.mark.parametrize("target", [1, 6])
def test_grad_cam_equals_autograd_on_transformers(vit_pair, image, target):
    reference, ours = vit_pair
    _, _, z, g = reference_gradients(reference, image, target)
    z, g = z[0, 1:].detach(), g[0, 1:]
    expected = torch.relu(z @ g.mean(dim=0)).reshape(6, 6).double().numpy()
    got = ex.explain_vit(ours, image, target).maps["gradcam"]
    np.testing.assert_allclose(got, expected, **TOL)
    assert got.max() > 0


def test_class_free_maps_are_the_attention_pages_numbers(vit_pair, image):
    _, ours = vit_pair
    maps = ex.explain_vit(ours, image, 0).maps
    tr = vitviz.attention.trace_attention(ours, image)
    np.testing.assert_allclose(maps["attention"].ravel(), tr.cls_attention(-1).mean(0).double().numpy(), **TOL)
    np.testing.assert_allclose(maps["rollout"].ravel(), tr.rollout(3)[1:].double().numpy(), **TOL)


def test_explaining_leaves_the_shared_model_untouched(vit_pair, image):
    _, ours = vit_pair
    before = ours(image).logits
    ex.explain_vit(ours, image, 2)
    assert not any(p.requires_grad for p in ours.parameters())
    assert all(p.grad is None for p in ours.parameters())
    torch.testing.assert_close(ours(image).logits, before, rtol=0, atol=0)


def test_deletion_at_zero_is_the_models_own_probability(vit_pair, image):
    _, ours = vit_pair
    rankings = torch.cat([ex.ranking(ex.explain_vit(ours, image, 3).maps["gradcam"])[None], ex.random_rankings(36, 3)])
    curves = ex.token_curves(ours, image, rankings)
    own = ours(image).logits.softmax(-1)[0]
    for m in range(len(rankings)):
        torch.testing.assert_close(curves[m, 0, 0], own, **TOL)  # nothing removed
        torch.testing.assert_close(curves[m, 1, -1], own, **TOL)  # everything put back


@pytest.mark.parametrize("step", [1, 3, 5, 9, 10])
def test_removed_tokens_give_transformers_logits_on_the_kept_tokens(vit_pair, image, step):
    reference, ours = vit_pair
    order = ex.random_rankings(36, 2)
    curves = ex.token_curves(ours, image, order)
    removed = ex.counts(36)[step]
    with torch.no_grad():
        embedded = reference.vit.embeddings(image)  # CLS and E_pos added
        for m in range(2):
            for curve, kept in ((0, order[m, removed:]), (1, order[m, :removed])):
                tokens = torch.cat([embedded[:, :1], embedded[:, 1 + kept.sort().values]], dim=1)
                for layer in reference.vit.layers:  # transformers' own encoder layers, then its norm and head
                    tokens = layer(tokens)
                hidden = reference.vit.layernorm(tokens)
                expected = reference.classifier(hidden[:, 0]).softmax(-1)[0]
                torch.testing.assert_close(curves[m, curve, step], expected, **TOL)


def _single_patch_effects(model, x, target) -> np.ndarray:
    """Brute force: how much removing each patch token alone lowers the target's probability."""
    with torch.no_grad():
        z = model.embed(x)
        n = z.shape[1] - 1
        full = model.encode(z).logits.softmax(-1)[0, target]
        batch = torch.stack([torch.cat([z[0, :1], z[0, 1:][torch.arange(n) != i]]) for i in range(n)])
        return (full - model.encode(batch).logits.softmax(-1)[:, target]).numpy()


def test_the_true_per_patch_effect_beats_the_random_band(vit_pair, image):
    _, ours = vit_pair
    target = int(ours(image).logits.argmax())
    effects = _single_patch_effects(ours, image, target)
    rankings = torch.cat([ex.ranking(effects)[None], ex.random_rankings(36)])
    probs = ex.token_curves(ours, image, rankings)[..., target]
    areas = ex.area(probs)  # (M, 2)
    deletion, insertion = ex.verdict(areas[0, 0], areas[1:, 0], 0), ex.verdict(areas[0, 1], areas[1:, 1], 1)
    assert deletion.beats and insertion.beats, (deletion, insertion)
    reverse = ex.verdict(ex.area(ex.token_curves(ours, image, ex.ranking(-effects)[None])[0, 0, :, target]),
                         areas[1:, 0], 0)
    assert not reverse.beats  # the least important first is no faithful deletion order


def test_logit_lens_last_layer_is_the_model_and_earlier_layers_are_transformers_hidden_states(vit_pair, image):
    reference, ours = vit_pair
    lens = ex.logit_lens(ours, image)
    torch.testing.assert_close(lens[-1], ours(image).logits[0], **TOL)
    with torch.no_grad():
        hidden = reference(image, output_hidden_states=True).hidden_states  # [embeddings, after layer 1, …]
        for layer in range(3):
            expected = reference.classifier(reference.vit.layernorm(hidden[layer + 1])[:, 0])[0]
            torch.testing.assert_close(lens[layer], expected, **TOL)


def test_logit_lens_reads_dinov2s_cls_and_patch_mean(tmp_path):
    config = Dinov2Config(image_size=56, patch_size=14, hidden_size=48, num_hidden_layers=3, num_attention_heads=3,
                          attn_implementation="eager", **LABELS)
    reference = perturb_(Dinov2ForImageClassification(config), 5).eval()
    ours = vitviz.load_model(save(reference, tmp_path / "dinov2"))
    x = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(1))
    lens = ex.logit_lens(ours, x)
    with torch.no_grad():
        hidden = reference.dinov2(x, output_hidden_states=True).hidden_states
        normed = reference.dinov2.layernorm(hidden[2])
        expected = reference.classifier(torch.cat([normed[:, 0], normed[:, 1:].mean(dim=1)], dim=1))[0]
    torch.testing.assert_close(lens[1], expected, **TOL)
    torch.testing.assert_close(lens[-1], ours(x).logits[0], **TOL)
    empty = ex.token_curves(ours, x, ex.random_rankings(16, 1))[0, 1, 0]  # insertion from no patch at all
    assert torch.isfinite(empty).all()


def test_mobilevit_grad_cam_is_cam_in_closed_form():
    model = init_random(MobileViT(MOBILEVIT_PRESETS["mobilevit-xxs"]), "xxs").eval().requires_grad_(False)
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(2))
    got = ex.explain_features(model, x, 17)
    features = trace(model, x, include="features")["features"][0]  # (C, h, w)
    h, w = features.shape[-2:]
    # logits = W · mean_ij F + b, so ∂y/∂F_cij = W_tc / (h·w) everywhere and Grad-CAM = relu(Σ_c W_tc F_c) / (h·w)
    expected = torch.relu(torch.einsum("c,chw->hw", model.head.weight[17], features)) / (h * w)
    assert got.grid == (h, w) == (3, 4)
    np.testing.assert_allclose(got.maps["gradcam"], expected.double().numpy(), rtol=1e-4, atol=1e-6)


def test_swin_grad_cam_equals_autograd_on_transformers(tmp_path):
    config = SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=4,
                        **LABELS)
    reference = perturb_(SwinForImageClassification(config), 9).eval()
    ours = vitviz.load_model(save(reference, tmp_path / "swin"))
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    captured = {}
    hook = reference.swin.encoder.layers[-1].blocks[-1].register_forward_hook(
        lambda module, args, out: captured.update(z=out[0] if isinstance(out, tuple) else out))
    try:
        logits = reference(x).logits
    finally:
        hook.remove()
    z = captured["z"][0]
    (g,) = torch.autograd.grad(logits[0, 5], captured["z"])
    expected = torch.relu(z.detach() @ g[0].mean(dim=0)).reshape(8, 8).double().numpy()
    got = ex.explain_features(ours, x, 5)
    assert got.grid == ex.feature_grid(ours, 64, 64) == (8, 8)
    np.testing.assert_allclose(got.maps["gradcam"], expected, **TOL)


def test_pixel_curves_start_at_the_model_and_end_at_the_blurred_image():
    model = init_random(MobileViT(MOBILEVIT_PRESETS["mobilevit-xxs"]), "xxs").eval().requires_grad_(False)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    grid = ex.feature_grid(model, 64, 64)
    curves = ex.pixel_curves(model, x, ex.random_rankings(4, 3), grid)
    with torch.no_grad():
        own = model(x).logits.softmax(-1)[0]
        blurred = model(ex.blur(x)).logits.softmax(-1)[0]
    for m in range(3):
        torch.testing.assert_close(curves[m, 0, 0], own, **TOL)
        torch.testing.assert_close(curves[m, 0, -1], blurred, **TOL)
        torch.testing.assert_close(curves[m, 1, 0], blurred, **TOL)
    half = ex.cell_masks(grid, 64, 64)
    assert half.sum(0).eq(1).all()  # the cells tile the image exactly once


def test_blur_keeps_constants_and_smooths_noise():
    flat = torch.full((1, 3, 40, 30), 0.7)
    torch.testing.assert_close(ex.blur(flat), flat)
    noise = torch.randn(1, 3, 40, 30, generator=torch.Generator().manual_seed(0))
    blurred = ex.blur(noise)
    assert blurred.shape == noise.shape and blurred.std() < 0.2 * noise.std()
    torch.testing.assert_close(blurred.mean(), noise.mean(), rtol=0, atol=0.1)


def test_rankings_areas_and_verdicts():
    assert ex.ranking(np.array([[0.1, 0.5], [0.5, 0.0]])).tolist() == [1, 2, 0, 3]  # ties keep raster order
    torch.testing.assert_close(ex.random_rankings(10, 4), ex.random_rankings(10, 4))
    assert sorted(ex.random_rankings(10, 1)[0].tolist()) == list(range(10))
    assert ex.counts(196)[:3] == [0, 20, 39] and ex.counts(196)[-1] == 196
    np.testing.assert_allclose(ex.area(np.full(11, 0.3)), 0.3)
    np.testing.assert_allclose(ex.area(np.linspace(0, 1, 11)), 0.5)
    random = np.array([0.5, 0.52, 0.48, 0.51])
    assert ex.verdict(0.2, random, 0).beats and not ex.verdict(0.2, random, 1).beats
    assert ex.verdict(0.9, random, 1).beats and not ex.verdict(0.5, random, 1).beats
