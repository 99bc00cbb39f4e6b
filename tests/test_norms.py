"""Token norms, the valley threshold, neighbour similarity and the PCA colours, on constructed inputs with known
answers, and one traced forward of DINOv2 with registers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import vitviz
from vitviz import norms
from vitviz.trace import trace


def test_neighbour_similarity_of_constant_and_checkerboard_tokens():
    grid = (4, 5)
    same = torch.ones(20, 8)
    torch.testing.assert_close(norms.neighbour_similarity(same, grid), torch.ones(20, dtype=torch.float64))
    a, b = torch.eye(8)[0], torch.eye(8)[1]
    board = torch.stack([a if (r + c) % 2 == 0 else b for r in range(4) for c in range(5)])
    torch.testing.assert_close(norms.neighbour_similarity(board, grid), torch.zeros(20, dtype=torch.float64))


def test_neighbour_similarity_counts_only_existing_neighbours():
    """A corner has 2 neighbours, an edge 3, the inside 4: one patch equal to its left neighbour only."""
    tokens = torch.eye(9)[torch.arange(9)]  # all orthogonal on a 3 × 3 grid
    tokens[1] = tokens[0]  # patch (0, 1) equals patch (0, 0)
    sim = norms.neighbour_similarity(tokens, (3, 3)).numpy()
    assert sim[0] == pytest.approx(1 / 2) and sim[1] == pytest.approx(1 / 3) and sim[4] == 0


def test_valley_split_finds_the_gap_of_a_bimodal_histogram():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(60, 6, 250), rng.normal(420, 25, 6)])
    split = norms.valley_split(values)
    assert split.threshold is not None and 90 < split.threshold < 380
    assert split.outliers(values).sum() == 6 and split.outliers(values)[-6:].all()
    assert split.gap > norms.MIN_GAP and split.counts.sum() == values.size


@pytest.mark.parametrize("seed", range(5))
def test_valley_split_finds_no_outliers_in_one_mode(seed):
    values = np.random.default_rng(seed).normal(60, 6, 257)
    split = norms.valley_split(values)
    assert split.threshold is None and not split.outliers(values).any()
    assert 0.5 < split.separation < 0.75 and split.gap < 1  # Otsu cuts a Gaussian in the middle (effectiveness 2/π)


def test_valley_split_of_constant_values_has_no_split():
    assert norms.valley_split(np.full(30, 7.0)).threshold is None


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.floats(3.0, 30.0), st.integers(0, 2**16))
def test_any_clear_high_mode_is_found_exactly(k, factor, seed):
    """k tokens `factor` times the typical norm, among 200 with 10% spread: exactly those k are the outliers."""
    rng = np.random.default_rng(seed)
    low = rng.normal(50, 5, 200)
    high = rng.normal(50 * factor, 5, k)
    values = rng.permutation(np.concatenate([low, high]))
    split = norms.valley_split(values)
    assert split.outliers(values).sum() == k
    assert split.threshold > low.max() and split.threshold < high.min()


def object_features(grid=(10, 12), seed=0):
    """Patch features: a central object block (direction a) on a background (direction b), plus small noise."""
    g = torch.Generator().manual_seed(seed)
    d = 32
    a, b = torch.randn(d, generator=g), torch.randn(d, generator=g)
    mask = torch.zeros(grid, dtype=torch.bool)
    mask[3:7, 4:9] = True
    feats = torch.where(mask.flatten()[:, None], a, b) + 0.05 * torch.randn(grid[0] * grid[1], d, generator=g)
    feats[mask.flatten()] += torch.linspace(-1, 1, int(mask.sum()))[:, None] * torch.randn(d, generator=g)
    return feats, mask.flatten().numpy()


@pytest.mark.parametrize("seed", range(3))
def test_feature_colours_separate_the_object_and_black_out_the_background(seed):
    feats, mask = object_features(seed=seed)
    out = norms.feature_colours(feats, (10, 12))
    assert np.array_equal(out.foreground, mask)  # whatever sign the SVD gave the first component
    rgb = out.rgb.reshape(-1, 3)
    assert (rgb[~mask] == 0).all() and rgb.min() >= 0 and rgb.max() <= 1
    assert np.isclose(rgb[mask].max(axis=0), 1).all() and np.isclose(rgb[mask].min(axis=0), 0).all()  # min–max per channel
    assert out.explained[0] > 0.5 and out.explained.sum() <= 1 + 1e-6


def test_feature_colours_flip_the_first_component_by_the_border():
    feats, mask = object_features()
    a = norms.feature_colours(feats, (10, 12))
    b = norms.feature_colours(-feats, (10, 12))  # the SVD's sign may flip with the data; the answer must not
    assert np.array_equal(a.foreground, b.foreground)


def test_trace_norms_of_dinov2_with_registers_matches_the_taps():
    model = vitviz.load_model("dinov2-small-reg", device="cpu")
    x = torch.randn(1, 3, 56, 84, generator=torch.Generator().manual_seed(0))
    t = norms.trace_norms(model, x)
    assert t.norms.shape == (12, 1 + 4 + 24) and t.prefix == 5 and t.grid == (4, 6)
    taps = trace(model, x, ["blocks.3.out", "embeddings"])
    np.testing.assert_allclose(t.norms[3], taps["blocks.3.out"][0].norm(dim=-1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(t.neighbours, norms.neighbour_similarity(taps["embeddings"][0], (4, 6)).numpy(), rtol=1e-5)
    attn = model(x).attentions[-1][0, :, 0]
    np.testing.assert_allclose(t.cls_attention, attn.numpy(), rtol=1e-4, atol=1e-6)
    assert t.patch_norms(3).shape == (24,)
    features = norms.last_patch_features(model, x)
    assert features.shape == (24, 384)


def constructed_trace() -> norms.NormTrace:
    """3 × 4 patches after CLS and 2 registers, two layers: one mode, then two patches 40× the rest."""
    low = [1.0, 1.2, 0.9, 1.1, 1.3, 0.8, 1.05, 0.95, 1.15, 0.85]
    patches = np.array(low[:4] + [50.0] + low[4:8] + [60.0] + low[8:])  # outliers at patches 4 and 9
    layers = np.stack([np.r_[7.0, 3.0, 3.2, np.linspace(1, 1.3, 12)], np.r_[9.5, 30.0, 20.0, patches]])
    neighbours = np.linspace(0.1, 0.65, 12)
    cls = np.zeros((2, 15))
    cls[0, [0, 1, 2, 7]] = [0.1, 0.2, 0.3, 0.4]  # head 0: half to the registers
    cls[1, [3, 14]] = [0.5, 0.5]  # head 1: all to two patches
    return norms.NormTrace(layers.astype(np.float32), 3, (3, 4), neighbours.astype(np.float32), cls.astype(np.float32))


def test_a_layers_numbers_are_counted_by_hand():
    tr = constructed_trace()
    one = tr.layer(1)
    assert one.count == 2 and one.patches == 12 and one.share == pytest.approx(2 / 12)
    assert np.flatnonzero(one.outliers).tolist() == [4, 9]
    assert one.grid_outliers[1, 0] and one.grid_outliers[2, 1] and one.grid_values[2, 1] == 60
    assert 1.3 < one.split.threshold < 50
    assert one.median == pytest.approx((1.05 + 1.1) / 2)  # the 6th and 7th of the 12 sorted values
    assert one.largest == 60 and one.ratio == pytest.approx(60 / 1.075, rel=1e-6)
    assert one.register_range == (20.0, 30.0) and one.register_mean == 25 and one.cls == 9.5
    v, s = one.values.astype(np.float64), tr.neighbours.astype(np.float64)
    expected_r = ((v - v.mean()) * (s - s.mean())).sum() / np.sqrt(((v - v.mean()) ** 2).sum() * ((s - s.mean()) ** 2).sum())
    assert one.correlation == pytest.approx(expected_r, rel=1e-6)
    assert one.outlier_similarity == pytest.approx((s[4] + s[9]) / 2, rel=1e-6)
    assert one.other_similarity == pytest.approx((s.sum() - s[4] - s[9]) / 10, rel=1e-6)
    first = tr.layer(0)
    assert first.count == 0 and first.outlier_similarity is None and first.other_similarity is None
    assert tr.outlier_counts == (0, 2)


def test_cls_attention_shares_and_maps():
    tr = constructed_trace()
    assert tr.cls_to_registers == pytest.approx((0.2 + 0.3) / 2)  # mean over the 2 heads
    assert tr.cls_to_patches == pytest.approx((0.4 + 1.0) / 2)
    expected = np.zeros(12)
    expected[[4, 0, 11]] = [0.2, 0.25, 0.25]  # token 7 is patch 4; tokens 3 and 14 are patches 0 and 11
    np.testing.assert_allclose(tr.cls_map, expected.reshape(3, 4), atol=1e-7)
    np.testing.assert_array_equal(tr.neighbour_map.ravel(), tr.neighbours)


def test_feature_colours_counts():
    feats, mask = object_features()
    out = norms.feature_colours(feats, (10, 12))
    assert out.patches == 120 and out.foreground_count == int(mask.sum())
    assert out.explained_share == pytest.approx(float(out.explained[0] + out.explained[1] + out.explained[2]), rel=1e-6)


def contrast(colour: str, background: str = "#ffffff") -> float:
    """WCAG contrast ratio of two "#rrggbb" colours."""
    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(colour), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_high_norm_patches_are_framed_in_black_and_white_dashes():
    """The frame, not a hue, marks a high-norm patch: black and white dashes (21:1 apart, so readable in grey on any
    colour of the map); the other patches' borders have neither pure black nor pure white."""
    from PIL import Image

    from vitviz.viz import norms as viz

    one = constructed_trace().layer(1)  # 3 × 4 patches, high-norm: (1, 0) and (2, 1)
    picture = np.asarray(viz.norm_picture(Image.new("RGB", (64, 48), (128, 128, 128)), 16, 256, one))
    size, width = 64, 8  # px per patch at 256 px wide; the frame's thickness, size / 8
    for r in range(3):
        for c in range(4):
            band = picture[r * size:r * size + width, c * size:(c + 1) * size].reshape(-1, 3)  # the top edge
            black, white = (band == 0).all(axis=1).any(), (band == 255).all(axis=1).any()
            assert black == white == bool(one.grid_outliers[r, c]), (r, c)
            if one.grid_outliers[r, c]:
                inside = picture[r * size + width:(r + 1) * size - width, c * size + width:(c + 1) * size - width]
                assert not (inside.reshape(-1, 3) == 255).all(axis=1).any()  # the patch itself stays visible


def test_the_figures_are_valid_keep_a_phone_scrolling_and_stay_apart_without_colour():
    import plotly.graph_objects as go

    from vitviz.viz import norms as viz

    tr = constructed_trace()
    one = tr.layer(1)
    feats, _mask = object_features()
    out = norms.feature_colours(feats, (10, 12))
    figures = [viz.histogram_figure(one.split, one.registers, title="t"),
               viz.depth_figure(tr.norms, tr.prefix, tr.outlier_counts, 2),
               viz.colour_figure(out.rgb, out.components, out.foreground, title="t")]
    for fig in figures:
        go.Figure(fig.to_dict())  # validates every property
        assert fig.layout.dragmode is False  # a finger scrolling the page is not captured by the chart
    depth = figures[1]
    lines = [(t.line.dash, t.marker.symbol) for t in depth.data if t.type == "scatter"]
    assert len(set(lines)) == len(lines) == 3  # median, largest patch, largest register: a style and a marker each
    assert all(contrast(c) >= 4.5 for c in (viz.BARS, viz.VALLEY, viz.REGISTER))  # text in these colours too
    assert {s.line.dash for s in figures[0].layout.shapes} == {None, "dash"}  # the valley solid, registers dashed
