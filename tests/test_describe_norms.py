"""The text alternatives of the registers & token-norms page, checked against the arrays they describe: the named
high-norm patches are the largest, the quoted medians, counts, ranges, shares and correlations are the data's."""
from __future__ import annotations

import re

import numpy as np
import pytest

from vitviz import norms
from vitviz.describe import norms as describe
from vitviz.describe.common import concentration, grid_region, percent

from .test_norms import constructed_trace, object_features


def artifact_trace(outliers: list[tuple[int, int]], grid=(16, 16), depth=4, seed=0) -> norms.NormTrace:
    """CLS, 4 registers and a grid of patches over `depth` layers: norms ~ N(20, 1), and from layer 3 on the cells
    `outliers` at 200 + 10·i (i-th cell): the paper's artifacts."""
    rng = np.random.default_rng(seed)
    n = grid[0] * grid[1]
    values = rng.normal(20, 1, (depth, 5 + n))
    values[:, 1:5] = [40, 41, 43, 45]
    for i, (r, c) in enumerate(outliers):
        values[2:, 5 + r * grid[1] + c] = 200 + 10 * i
    cls = rng.random((6, 5 + n))
    cls /= cls.sum(axis=1, keepdims=True)
    return norms.NormTrace(values.astype(np.float32), 5, grid, rng.random(n).astype(np.float32),
                           cls.astype(np.float32))


def test_the_norm_map_names_exactly_the_largest_patches():
    cells = [(0, 15), (3, 10), (12, 2)]
    tr = artifact_trace(cells)
    one = tr.layer(3)
    assert one.count == 3  # the valley split finds the three
    text = describe.norm_map(one)
    named = [(int(r), int(c)) for r, c in re.findall(r"row (\d+), column (\d+)", text.split("framed")[1])]
    largest = np.argsort(-one.values)[:3]
    assert sorted(named) == sorted((int(i) // 16, int(i) % 16) for i in largest) == sorted(cells)
    high = one.values[one.outliers]
    assert f"norms {high.min():.1f}–{high.max():.1f}" in text and f"median {one.median:.1f}" in text
    assert f"{high.min() / one.median:.1f}–{high.max() / one.median:.1f}× the median" in text
    low = np.unravel_index(np.argmin(one.grid_values), one.grid)
    assert f"from {one.values.min():.1f} (row {low[0]}, column {low[1]})" in text
    assert text.startswith("Token norms of the 256 patches after layer 4")


def test_many_high_norm_patches_are_given_as_a_region_and_none_is_said():
    cells = [(r, c) for r in range(1, 4) for c in range(12, 15)]  # 9 in the top right
    one = artifact_trace(cells).layer(2)
    assert one.count == 9
    rows, cols = np.nonzero(one.grid_outliers)
    assert "9 high-norm patches" in describe.norm_map(one)
    assert grid_region(rows, cols, one.grid) in describe.norm_map(one)
    assert "rows 1–3, columns 12–14 (the top right)" in describe.norm_map(one)
    assert describe.norm_map(artifact_trace(cells).layer(0)).endswith(
        "No patch stands clear of the others, so none is framed.")


def test_the_histogram_quotes_its_bars_valley_and_registers():
    tr = artifact_trace([(0, 15), (3, 10)])
    one = tr.layer(3)
    text = describe.histogram(one)
    tallest = int(np.argmax(one.split.counts))
    assert f"holds {one.split.counts[tallest]} patches between" in text
    start = float(re.search(r"between (\S+) and", text).group(1))
    assert start == pytest.approx(one.split.edges[tallest], abs=0.051)
    assert f"valley line at {one.split.threshold:.1f} leaves 254 patches below and 2 above" in text
    assert f"a gap of {one.split.gap:.1f} standard deviations" in text
    assert "Dashed lines mark the 4 registers' norms, 40.0–45.0." in text
    flat = describe.histogram(tr.layer(0))
    assert "One mode" in flat and f"the widest gap is {tr.layer(0).split.gap:.1f} standard deviations" in flat


def test_the_depth_chart_follows_the_layers():
    tr = artifact_trace([(0, 15), (3, 10)], depth=6)
    patches = tr.norms[:, 5:]
    text = describe.depth(tr, 1)
    median = np.median(patches, axis=1)
    assert f"the median patch norm goes from {median[0]:.1f} after layer 1 to {median[-1]:.1f} after layer 6" in text
    assert f"the largest patch norm from {patches[0].max():.1f} to {patches[-1].max():.1f}" in text
    assert f"highest after layer {int(np.argmax(patches.max(axis=1))) + 1} ({patches.max():.1f})" in text
    assert tr.outlier_counts == (0, 0, 2, 2, 2, 2)
    assert "High-norm patches after layers 3–6 (bars; at most 2, after layer 3)" in text
    assert text.endswith("Layer 2 is marked by a dotted line.")
    assert "largest register norm from 45.0 to 45.0" in text


def test_layer_runs_are_one_based():
    assert describe.layer_runs([2, 6, 7, 8]) == "3, 7–9"
    assert describe.layer_runs([0]) == "1"


def test_the_neighbour_map_gives_its_extremes_and_the_correlation():
    tr = constructed_trace()
    one = tr.layer(1)
    text = describe.neighbours(tr, one)
    s = tr.neighbour_map
    low, high = np.unravel_index(np.argmin(s), s.shape), np.unravel_index(np.argmax(s), s.shape)
    assert f"from {s.min():.2f} (row {low[0]}, column {low[1]}) to {s.max():.2f} (row {high[0]}, column {high[1]})" in text
    assert f"mean {s.mean():.2f}" in text and f"r = {one.correlation:+.2f}" in text
    assert f"{one.outlier_similarity:.3f}, the others' {one.other_similarity:.3f}" in text
    assert describe.neighbours(tr, tr.layer(0)).endswith(f"r = {tr.layer(0).correlation:+.2f}.")


def test_the_cls_picture_quotes_its_shares_and_names_the_largest_patches():
    tr = constructed_trace()
    text = describe.cls_attention(tr)
    assert f"gives {percent(tr.cls_to_patches)} to the patches and {percent(tr.cls_to_registers)} to the registers" in text
    c = concentration(tr.cls_map)
    assert c.count == 2 and set(zip(c.rows, c.cols)) == {(0, 0), (2, 3)}  # the two patches at 0.25 each
    assert f"{percent(c.share)} of the attention to the patches on 2 of 12 patches" in text
    single = norms.NormTrace(tr.norms[:, 2:], 1, tr.grid, tr.neighbours, tr.cls_attention[:, 2:])
    assert "to the registers" not in describe.cls_attention(single)


def test_the_comparison_quotes_both_last_layers():
    without, with_registers = artifact_trace([(0, 15), (3, 10)]).layer(3), artifact_trace([]).layer(3)
    text = describe.comparison(("DINOv2", without), ("DINOv2 + registers", with_registers))
    assert text.startswith(f"DINOv2: 2 high-norm patches, largest patch norm {without.largest:.1f} "
                           f"({without.ratio:.1f}× the median). DINOv2 + registers: 0 high-norm patches")
    assert text.endswith("its 4 registers' norms 40.0–45.0.")


def test_the_feature_colours_give_the_foreground_and_the_variance():
    feats, mask = object_features()
    out = norms.feature_colours(feats, (10, 12))
    text = describe.feature_colours(out, (10, 12), "DINOv2")
    assert f"{int(mask.sum())} of 120 patches ({percent(mask.sum() / 120)}) are foreground" in text
    assert "rows 3–6, columns 4–8 (the centre)" in text  # the object block of `object_features`
    assert f"explain {percent(out.explained_share)} of its variance ({', '.join(map(percent, out.explained))})" in text
    assert f"the {120 - int(mask.sum())} background patches are black" in text
    none = norms.feature_colours(feats, (10, 12), threshold=1.0)
    assert none.foreground_count == 0 and "fewer than 3 of the 120 patches are foreground" in \
        describe.feature_colours(none, (10, 12), "DINOv2")

