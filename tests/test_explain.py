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


def _spearman_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """1 − 6 Σ d² / (n (n² − 1)) of two maps without ties."""
    ra = np.empty(a.size)
    rb = np.empty(b.size)
    for rank, i in enumerate(sorted(range(a.size), key=lambda i: -a.ravel()[i])):
        ra[i] = rank
    for rank, i in enumerate(sorted(range(b.size), key=lambda i: -b.ravel()[i])):
        rb[i] = rank
    n = a.size
    return 1 - 6 * ((ra - rb) ** 2).sum() / (n * (n * n - 1))


def test_agreement_is_spearmans_rank_correlation():
    a = np.array([[0.9, 0.1, 0.4], [0.3, 0.8, 0.2]])
    b = np.array([[0.5, 0.2, 0.6], [0.1, 0.9, 0.3]])
    e = ex.Explanation(0, (2, 3), {"attention": a, "gradcam": b, "rollout": -a}, torch.zeros(3))
    agreement = e.agreement
    assert e.methods == ("attention", "gradcam", "rollout") and e.stacked.shape == (3, 2, 3)
    np.testing.assert_allclose(np.diag(agreement), 1)
    assert agreement[0, 1] == pytest.approx(_spearman_by_hand(a, b)) == pytest.approx(1 - 6 * 12 / 210)  # d = (−2, 1, 1, −2, 1, 1)
    assert agreement[0, 2] == pytest.approx(-1) and agreement[1, 0] == agreement[0, 1]
    assert ex.rank_positions(np.array([0.2, 0.5, 0.2, 0.9])).tolist() == [2, 1, 3, 0]  # ties in raster order


def test_prediction_is_the_models_top_classes(vit_pair, image):
    _, ours = vit_pair
    got = ex.predict(ours, image, k=3)
    probs = ours(image).logits[0].softmax(-1).tolist()
    order = sorted(range(7), key=lambda i: -probs[i])[:3]
    assert got.classes == tuple(order) and got.labels == tuple(f"label{i}" for i in order)
    np.testing.assert_allclose(got.probabilities, [probs[i] for i in order], rtol=1e-5)
    assert ex.explain(ours, image, order[0]).methods == ex.VIT_METHODS


def test_the_attention_budget_counts_tokens(vit_pair, image, monkeypatch):
    _, ours = vit_pair  # 6 × 6 patches + CLS = 37 tokens, 4 heads, 3 layers: 4 · 3 · 37² = 16,428 numbers
    monkeypatch.setattr(ex, "ATTENTION_BUDGET", 16_428)
    assert ex.tokens_over_budget(ours, image) is None
    monkeypatch.setattr(ex, "ATTENTION_BUDGET", 16_427)
    assert ex.tokens_over_budget(ours, image) == 37
    mobile = init_random(MobileViT(MOBILEVIT_PRESETS["mobilevit-xxs"]), "xxs")
    assert ex.tokens_over_budget(mobile, image) is None


def test_judging_constructed_curves():
    steps = len(ex.STEPS)
    falling = np.linspace(1, 0, steps)  # area 0.5
    ours = np.stack([np.stack([np.zeros(steps), np.ones(steps)]),  # deletion area 0, insertion 1: beats both
                     np.stack([falling, falling])])  # 0.5 both: inside the band
    random = np.stack([np.stack([np.full(steps, v), np.full(steps, v)]) for v in (0.4, 0.5, 0.6, 0.45, 0.55)])
    result = ex.judge(("gradcam", "attention"), ours, random)
    mean, std = 0.5, np.sqrt(sum((v - 0.5) ** 2 for v in (0.4, 0.5, 0.6, 0.45, 0.55)) / 4)
    np.testing.assert_allclose(result.random_mean, [mean, mean])
    np.testing.assert_allclose(result.random_std, [std, std])
    (d0, i0), (d1, i1) = result.verdicts
    assert (d0.auc, i0.auc) == pytest.approx((0, 1)) and (d1.auc, i1.auc) == pytest.approx((0.5, 0.5))
    assert d0.beats and i0.beats and not d1.beats and not i1.beats
    assert d0.random_mean == pytest.approx(mean) and d0.random_std == pytest.approx(std)
    assert result.beaten == ("gradcam",)


def test_faithfulness_tests_every_map_against_the_band(vit_pair, image):
    _, ours = vit_pair
    explanation = ex.explain_vit(ours, image, 2)
    band = ex.random_curves(ours, image, explanation.grid)
    assert band.shape == (ex.SEEDS, 2, len(ex.STEPS), 7)
    result = ex.faithfulness(ours, image, explanation, band)
    for m, method in enumerate(explanation.maps):
        expected = ex.token_curves(ours, image, ex.ranking(explanation.maps[method])[None])[0, ..., 2]
        np.testing.assert_allclose(result.curves[m], expected.numpy(), **TOL)
        areas = ex.area(expected.numpy())
        assert result.verdicts[m][0] == ex.verdict(areas[0], ex.area(band[..., 2].numpy())[:, 0], 0)
    np.testing.assert_allclose(result.random, band[..., 2].numpy())


def test_the_lens_read_for_a_class_recomputes_ranks_from_the_logits(vit_pair, image):
    _, ours = vit_pair
    logits = ex.logit_lens(ours, image).float()  # (3, 7)
    result = ex.lens(ours, image)
    assert result.depth == 3 and result.labels == tuple(f"label{i}" for i in range(7)) and result.pool == "cls"
    for target in range(7):
        reading = result.read(target)
        expected = [1 + sum(row[i] > row[target] for i in range(7)) for row in logits.tolist()]
        assert reading.ranks.tolist() == expected
        tops = [l for l in range(3) if all(r == 1 for r in expected[l:])]
        assert reading.first_top1 == (tops[0] if tops else None)
        final = sorted(range(7), key=lambda i: -logits[-1, i])[:5]
        assert reading.rows == tuple(final + ([target] if target not in final else []))
        assert reading.rows[reading.chosen] == target
        assert reading.final_probability == pytest.approx(float(ours(image).logits[0].softmax(-1)[target]), rel=1e-4)
    assert result.top[:, 0].tolist() == logits.argmax(-1).tolist()


def test_the_lens_reading_of_constructed_probabilities():
    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.3, 0.4, 0.3], [0.1, 0.8, 0.1]])
    lens = ex.LogitLens(probs, ("a", "b", "c"), "cls")
    assert lens.read(1).ranks.tolist() == [2, 1, 1, 1] and lens.read(1).first_top1 == 1
    assert lens.read(0).ranks.tolist() == [1, 2, 2, 2] and lens.read(0).first_top1 is None
    assert lens.read(2).ranks.tolist() == [3, 3, 2, 2] and lens.read(2).rows == (1, 0, 2)
    np.testing.assert_array_equal(lens.read(2).row_probs, probs[:, [1, 0, 2]].T)
    assert lens.read(2).final_probability == 0.1


def test_normalised_scales_a_map_to_0_1():
    np.testing.assert_allclose(ex.normalised(np.array([[2.0, 4.0], [3.0, 6.0]])), [[0, 0.5], [0.25, 1]])
    assert not ex.normalised(np.full((2, 3), 7.0)).any()  # a constant map ranks nothing


def test_the_figures_are_valid_keep_a_phone_scrolling_and_stay_apart_without_colour():
    import plotly.graph_objects as go

    from vitviz.viz import explain as viz

    from .test_norms import contrast

    steps = len(ex.STEPS)
    curves = {m: np.linspace(1, 0, steps) ** (k + 1) for k, m in enumerate(ex.VIT_METHODS)}
    names = {m: ex.METHOD_NAMES[m] for m in ex.VIT_METHODS}
    probs = np.random.default_rng(0).random((6, 12))
    figures = [viz.curves_figure(ex.STEPS, curves, names, np.random.default_rng(1).random((ex.SEEDS, steps)), title=None),
               viz.lens_figure(probs, list("abcdef"), chosen=2), viz.rank_figure(np.arange(12, 0, -1), "a")]
    for fig in figures:
        go.Figure(fig.to_dict())
        assert fig.layout.dragmode is False  # a finger scrolling the page is not captured by the chart
    methods = [t for t in figures[0].data if t.name in names.values()]
    styles = {(t.line.dash, t.marker.symbol) for t in methods}
    assert len(methods) == len(styles) == 4  # each method its own line style and marker, not only its hue
    assert all(contrast(t.line.color) >= 3 for t in methods)  # marks 3:1 on the white plot
    assert contrast(figures[0].data[0].line.color) >= 3  # the random band's edge
    assert figures[1].data[0].colorscale[0][1] == "rgb(247,251,255)"  # light to dark: one hue, read by lightness
