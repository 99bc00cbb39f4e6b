"""The text alternatives of the explanation page, checked against the arrays they describe: the named patches are
the brightest of the map as drawn, the areas, bounds and verdicts are the data's, the lens's layers and ranks are
read off the probabilities."""
from __future__ import annotations

import re

import numpy as np
import pytest

from vitviz import explain as ex
from vitviz.describe import explain as describe
from vitviz.describe.common import concentration, grid_region, percent

NAMES = {m: ex.METHOD_NAMES[m] for m in ex.VIT_METHODS}


def test_the_input_photo_is_named_with_its_size():
    assert describe.input_photo("cat", (224, 160)) == "The input photo (cat), 224 × 160 px, as the model receives it"


def test_a_map_is_described_as_drawn_scaled_to_0_1():
    rng = np.random.default_rng(1)
    values = 5 + rng.random((14, 14))  # an offset: the shares are of the map scaled to 0…1, as the picture shows
    values[2:4, 9:12] += 20  # six bright patches in the top right
    text = describe.explanation_map(values, "gradcam", "tabby")
    scaled = (values - values.min()) / (values.max() - values.min())
    c = concentration(scaled)
    assert text.startswith(f"Grad-CAM for “tabby” (scaled 0…1, brighter = more important): {percent(c.share)} of "
                           f"the map's weight on {c.count} of 196 patches, {grid_region(c.rows, c.cols, (14, 14))}")
    assert c.count == 6 and set(zip(c.rows, c.cols)) == {(r, q) for r in (2, 3) for q in (9, 10, 11)}
    named = [int(x) for x in re.search(r"rows (\d+)–(\d+), columns (\d+)–(\d+)", text).groups()]
    assert named == [2, 3, 9, 11] and "(the top right)" in text


def test_a_map_without_a_region_names_its_brightest_patch():
    values = 1 + 0.1 * np.random.default_rng(2).random((14, 14))
    values[5, 7] = 1.2  # the brightest, but the weight of the scaled map is spread over most patches
    text = describe.explanation_map(values, "attention", None)
    scaled = (values - values.min()) / (values.max() - values.min())
    assert text.startswith("CLS attention (last layer) (scaled 0…1, brighter = more important): the map's weight "
                           "spread almost evenly over the 196 patches: the largest, row 5, column 7, holds "
                           f"{percent(scaled[5, 7] / scaled.sum())}")


def test_a_class_free_map_names_no_class_and_a_flat_map_ranks_nothing():
    values = np.zeros((7, 7))
    values[6, 0] = 1.0
    assert describe.explanation_map(values, "rollout", None).startswith(
        "Attention rollout (scaled 0…1, brighter = more important): 100 % of the map's weight on 1 of 49 patches, "
        "row")
    assert describe.explanation_map(np.full((7, 7), 0.3), "attention", None) == (
        "CLS attention (last layer): the same value on every patch, so it ranks no patch above another.")


def test_the_agreement_names_the_most_and_least_alike_maps():
    matrix = np.array([[1.0, 0.2, -0.4, 0.1], [0.2, 1.0, 0.7, 0.3], [-0.4, 0.7, 1.0, 0.0], [0.1, 0.3, 0.0, 1.0]])
    names = ["A", "B", "C", "D"]
    assert describe.agreement(matrix, names) == ("Spearman's rank correlation between the 4 maps: most alike B and C "
                                                 "(+0.70), least alike A and C (-0.40).")
    assert describe.agreement(matrix[:2, :2], names[:2]) == "Spearman's rank correlation of A and B: +0.20."


def constructed_faithfulness() -> ex.Faithfulness:
    """Two methods over the 11 steps: one perfect (deletion area 0, insertion 1), one inside the random band."""
    steps = len(ex.STEPS)
    falling = np.linspace(0.8, 0.1, steps)
    perfect = np.stack([np.r_[0.8, np.full(steps - 2, 0.0), 0.1], np.r_[0.1, np.full(steps - 2, 1.0), 0.8]])
    plain = np.stack([falling, falling[::-1]])
    random = np.stack([np.stack([falling + d, falling[::-1] + d]) for d in (-0.02, 0.0, 0.02, -0.01, 0.01)])
    random[:, :, [0, -1]] = plain[:, [0, -1]]  # every ranking starts and ends at the same input
    return ex.judge(("gradcam", "attention"), np.stack([perfect, plain]), random)


@pytest.mark.parametrize("curve", [0, 1])
def test_the_curves_quote_their_ends_areas_band_and_verdicts(curve):
    result = constructed_faithfulness()
    text = describe.curves(result, NAMES, curve, "tabby")
    start, end = result.curves[0, curve, [0, -1]]
    assert (start, end) == ((0.8, 0.1) if curve == 0 else (0.1, 0.8))
    assert f"the probability goes from {percent(start)} with {'every' if curve == 0 else 'no'} patch" in text
    for m, (d, i) in zip(result.methods, result.verdicts):
        assert f"{NAMES[m]} {(d, i)[curve].auc:.3g}" in text
    mean, std = result.random_mean[curve], result.random_std[curve]
    bound = mean - 2 * std if curve == 0 else mean + 2 * std
    assert f"random orders {mean:.3g} ± {std:.2g} (a map beats them {'below' if curve == 0 else 'above'} {bound:.3g})" in text
    assert [v[curve].beats for v in result.verdicts] == [True, False]
    assert text.endswith("Grad-CAM beats the random band.")


def test_no_map_beating_the_band_is_said():
    result = constructed_faithfulness()
    plain = ex.judge(("attention",), result.curves[1:], result.random)
    assert describe.curves(plain, NAMES, 0, "tabby").endswith("No map beats the random band.")


def test_the_lens_heatmap_and_rank_chart_read_the_probabilities():
    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.3, 0.4, 0.3], [0.1, 0.8, 0.1]])
    lens = ex.LogitLens(probs, ("a", "b", "c"), "cls")
    reading = lens.read(2)
    assert describe.lens_heatmap(lens, reading) == (
        "Probability of the last layer's top classes after each of the 4 layers (darker = more probable), from layer "
        "1 to layer 4: “b” from 30 % to 80 %; “a” from 50 % to 10 %; “c” from 20 % to 10 % (the class explained, "
        "marked ▶).")
    assert describe.rank_chart(reading, "c") == (
        "Rank of “c” after each of the 4 layers (1 = top): 3 after layer 1, 2 after layer 4. It is not the top class "
        "at the last layer. Probability at the last layer: 10 %.")
    assert describe.rank_chart(lens.read(1), "b") == (
        "Rank of “b” after each of the 4 layers (1 = top): 2 after layer 1, 1 after layer 4. It is the top class from "
        "layer 2 on. Probability at the last layer: 80 %.")
    dip = ex.LogitLens(np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]), ("a", "b"), "cls").read(0)
    assert ", best 1 after layer 2." in describe.rank_chart(dip, "a")  # better in the middle than at the end
