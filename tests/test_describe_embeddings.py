"""The text alternatives of the "Linear projection" and "Position embeddings" pages, checked against the arrays they
describe: the numbers they quote are those of the data, the places they name really hold what they say."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from vitviz import embeddings as emb
from vitviz.describe import embeddings as d
from vitviz.describe.common import grid_region, percent
from vitviz.embeddings import ShuffleResult, TokenColours
from vitviz.viz import embeddings as viz

def smooth_images(k: int, size: int) -> np.ndarray:
    """k gentle colour gradients (k, size, size, 3): neighbouring pixels almost equal."""
    y, x = np.mgrid[0:size, 0:size] / size
    angles = np.linspace(0, np.pi, k)
    ramps = np.stack([np.cos(a) * x + np.sin(a) * y for a in angles])
    return np.stack([ramps, ramps ** 2, 1 - ramps], axis=-1)


# ---- the filters of E ---------------------------------------------------------------------------------------------

def test_neighbour_correlation_is_pearson_over_adjacent_pixels():
    image = np.random.default_rng(0).random((1, 5, 4, 3))
    left, right, up, down = [], [], [], []
    for ch in range(3):
        x = image[0, :, :, ch] - image[0, :, :, ch].mean()
        left += list(x[:, :-1].ravel()); right += list(x[:, 1:].ravel())
        up += list(x[:-1].ravel()); down += list(x[1:].ravel())
    a, b = np.array(left + up), np.array(right + down)
    assert d.neighbour_correlation(image) == pytest.approx(a @ b / math.sqrt((a @ a) * (b @ b)))
    assert d.neighbour_correlation(np.ones((2, 4, 4, 3))) == 0.0  # flat: no pattern, no correlation
    assert d.neighbour_correlation(np.ones((2, 1, 1, 3))) == 0.0  # one pixel: no neighbours


def test_noise_and_smooth_filters_are_told_apart():
    noise, smooth = np.random.default_rng(1).random((16, 12, 12, 3)), smooth_images(16, 12)
    assert abs(d.neighbour_correlation(noise)) < 0.1 and d.neighbour_correlation(smooth) > 0.9
    assert d.texture(noise).startswith("speckled like noise (neighbouring pixels correlate at r = ")
    assert d.texture(smooth).startswith("smooth patterns")


def kernel(d_out: int = 48, p: int = 6, seed: int = 0) -> torch.Tensor:
    """A random Conv2d kernel (D, 3, P, P) with a few dominant directions, like a trained one."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.randn(d_out, 3, generator=g) @ torch.randn(3, 3 * p * p, generator=g)
    return directions * 3 + torch.randn(d_out, 3 * p * p, generator=g)


def test_filters_and_components_quote_the_kernel():
    w = kernel().reshape(48, 3, 6, 6)
    study = emb.filter_study(w, k=10)
    text = d.filters(study, 48, 8)
    assert text.startswith(f"The first {study.count} of the 48 filters of E, 8 per row, each a 6 × 6 patch of 3 "
                           "channels scaled to its own range: ")
    assert d.texture(study.first) in text
    centred = (w.reshape(48, -1) - w.reshape(48, -1).mean(0)).double().numpy()
    variance = np.linalg.svd(centred, compute_uv=False) ** 2
    share = variance / variance.sum()  # the filters' variance along each component, from the SVD itself
    text = d.components(study, 7)
    assert text.startswith(f"The top 10 principal components of the filters, 7 per row: component 1 explains "
                           f"{percent(share[0])} of the filters' variance, the first 3 together {percent(share[:3].sum())}, "
                           f"all 10 together {percent(share[:10].sum())}; ")
    assert share[:3].sum() > 0.5  # the three dominant directions the kernel was built with


@pytest.mark.parametrize("explained, fall", [([0.3, 0.1, 0.05], "falling steeply"), ([0.2, 0.15, 0.12], "falling slowly"),
                                            ([0.011, 0.0105, 0.01], "almost flat")])
def test_explained_bar(explained, fall):
    e = np.array(explained)
    assert d.explained_bar(e) == (f"Bar chart of the variance each of the 3 principal components explains: "
                                  f"{percent(e[0])} for component 1 down to {percent(e[-1])} for component 3, {fall}; "
                                  f"all 3 together {percent(e.sum())}.")


def test_kernels_quote_each_filters_weights():
    from vitviz.models.vit import resize_patch_kernel

    old = kernel(8, 4, seed=1).reshape(8, 3, 4, 4)
    new = resize_patch_kernel(old, 6)
    resize = emb.kernel_resize(old, new, torch.randn(1, 3, 12, 12), 0)
    for i in (0, 5):
        before, after = d.kernels(resize, i)
        assert before.startswith(f"Checkpoint filter {i}: 4 × 4 px, weights from {d.number(float(old[i].min()))} to "
                                 f"{d.number(float(old[i].max()))}, ")
        assert after.startswith(f"PI-resized filter {i}: 6 × 6 px, weights from {d.number(float(new[i].min()))} to "
                                f"{d.number(float(new[i].max()))}, ")
        assert d.texture(resize.checkpoint[i : i + 1]) in before
    assert "−" in d.number(-0.5) and d.signed(-0.001) == "+0.00" and d.signed(-0.71) == "−0.71"


# ---- the tokens ----------------------------------------------------------------------------------------------------

def test_token_heatmap_names_the_real_extremes_and_strongest_dimensions():
    z = np.random.default_rng(2).uniform(-1, 1, (40, 30))
    z[:, 7] *= 5  # dimension 27 + 7 = 34 stands out, as a column (mean |value| 2.5, the others ≤ 1.5)
    z[12] *= 3  # and token 100 + 12 = 112, as a row
    z[3, 20], z[30, 2] = 40.0, -40.0  # beyond every other value (at most 15)
    text = d.token_heatmap(z, 100, 27, selected=105)
    assert text.startswith("Heatmap of tokens 100–139 (one row per patch) by dimensions 27–56, 1,200 values from "
                           "−40 (token 130, dimension 29) to 40 (token 103, dimension 47); darker (blue) is negative")
    dims = [int(x) for x in re.search(r"dimensions (\d+), (\d+), (\d+) \(mean", text).groups()]
    means = np.abs(z).mean(0)
    assert dims[0] == 34 and [j - 27 for j in dims] == list(np.argsort(-means)[:3])
    tokens = [int(x) for x in re.search(r"in tokens (\d+), (\d+), (\d+) \(", text).groups()]
    assert tokens[0] == 112 and [t - 100 for t in tokens] == list(np.argsort(-np.abs(z).mean(1))[:3])
    assert f"against {d.number(np.abs(z).mean())} over the block" in text
    assert text.endswith("The framed row is your selected patch 105.")
    assert "framed" not in d.token_heatmap(z, 100, 27, selected=99)


def colours(red: np.ndarray, r: float, stage: str = "projection") -> TokenColours:
    rgb = np.stack([red, np.zeros_like(red), np.zeros_like(red)], axis=-1).astype(np.float32)
    return TokenColours(stage, rgb, np.array([0.5, 0.2, 0.1]), r)


def test_token_colours_name_variance_brightness_and_the_reddest_patches():
    red = np.random.default_rng(3).random((10, 10)) * 0.5
    red[:3, :3] = 0.9 + np.arange(9).reshape(3, 3) / 100  # the reddest 10 %: these 9 and the next largest,
    red[3, 0] = 0.85  # here
    text = d.token_colours(colours(red, -0.97))
    assert text.startswith("The top three principal components of the projection's tokens as red, green and blue, one "
                           "square per patch of the 10 × 10 grid; they keep 50 %, 20 %, 10 % of the variance (80 % "
                           "together).")
    assert "Here component 1 (red) is the patches' brightness reversed (r = −0.97); " in text
    top = np.argsort(-red.ravel(), kind="stable")[:10]
    rows, cols = np.divmod(top, 10)
    assert set(zip(rows[:9], cols[:9])) == {(r, c) for r in range(3) for c in range(3)}
    assert text.endswith(f"the reddest 10 patches: {grid_region(rows, cols, (10, 10))}.")
    assert "component 1 (red) follows the patches' brightness (r = +0.90)" in d.token_colours(colours(red, 0.9, "last"))
    assert "component 1 (red) is not the patches' brightness (r = +0.10)" in d.token_colours(colours(red, 0.1))
    assert "the last layer's tokens" in d.token_colours(colours(red, 0.1, "last"))
    spread = np.zeros((10, 10))
    spread[[0, 9, 0, 9, 5, 1, 2, 3, 4, 6], [0, 9, 9, 0, 5, 1, 2, 3, 4, 6]] = 1.0  # the reddest 10 % on a diagonal
    rows, cols = np.nonzero(spread)
    assert d.token_colours(colours(spread, 0.0)).endswith(
        f"the reddest 10 patches: scattered over {grid_region(rows, cols, (10, 10))}.")


def test_token_colours_of_the_real_pca():
    """On the projection's tokens of a real run: the quoted shares are the PCA's, the correlation the stage's."""
    g = torch.Generator().manual_seed(2)
    tokens = torch.randn(48, 16, generator=g) + torch.linspace(-3, 3, 48)[:, None] * torch.randn(1, 16, generator=g)
    rgb, explained = emb.tokens_pca_rgb(tokens, (6, 8))
    brightness = np.linspace(0, 1, 48)
    text = d.token_colours(TokenColours("projection", rgb, explained, emb.correlation(rgb[..., 0].ravel(), brightness)))
    assert f"they keep {', '.join(percent(x) for x in explained)} of the variance" in text
    assert "(red) follows the patches' brightness" in text or "brightness reversed" in text  # built along one ramp


def test_one_component_in_grey_names_its_lightest_and_darkest_patches():
    rgb = np.zeros((6, 9, 3), np.float32)
    rgb[..., 1] = np.linspace(0, 1, 54).reshape(6, 9)  # component 2 grows in raster order: bottom right lightest
    c = TokenColours("last", rgb, np.array([0.4, 0.3, 0.1]), 0.2)
    text = d.token_component(c, 1)
    order = np.argsort(-rgb[..., 1].ravel(), kind="stable")
    light, dark = np.divmod(order[:5], 9), np.divmod(order[::-1][:5], 9)
    assert text == ("Principal component 2 of the last layer's tokens as grey levels, lighter for a larger score, one "
                    "square per patch of the 6 × 9 grid; it keeps 30 % of the variance. The lightest 5 patches: "
                    f"{grid_region(*light, (6, 9))}; the darkest: {grid_region(*dark, (6, 9))}.")
    assert "(the bottom right)" in text and "(the top left)" in text
    assert d.token_component(c, 0).endswith("Here component 1 (red) is not the patches' brightness (r = +0.20).")


# ---- the input and the shuffle test --------------------------------------------------------------------------------

def test_whole_patches():
    assert d.whole_patches("cat", (13, 17), 16) == ("The input photo (cat), cropped to the 13 × 17 whole patches of "
                                                   "16 × 16 px the model reads: 272 × 208 px.")


def test_kept_neighbours_counts_the_pairs_that_stay_adjacent():
    grid = (3, 4)
    assert d.kept_neighbours(np.arange(12), grid) == (17, 17)  # nothing moved: every adjacent pair stays
    order = emb.patch_permutation(12, seed=4).numpy()
    where = order.reshape(grid)
    kept = 0
    for r in range(3):
        for c in range(4):
            for r2, c2 in ((r, c + 1), (r + 1, c)):
                if r2 < 3 and c2 < 4:
                    a, b = divmod(int(where[r, c]), 4), divmod(int(where[r2, c2]), 4)
                    kept += abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1
    assert d.kept_neighbours(order, grid) == (kept, 17)


def test_shuffled_picture():
    order = emb.patch_permutation(196).numpy()
    text = d.shuffled(order, (14, 14), 16)
    row, col = divmod(int(order[0]), 14)
    moved = int((order != np.arange(196)).sum())
    kept, pairs = d.kept_neighbours(order, (14, 14))
    assert text == (f"The same 196 patches of 16 × 16 px in the shuffled order Π, {moved} of them in another place: "
                    f"the top-left square now shows the patch from row {row}, column {col}, and of the {pairs} pairs "
                    f"of adjacent squares only {kept} were neighbours in the photo.")
    assert pairs == 2 * 14 * 13 and kept < 20


def test_shuffle_test_in_words():
    same = d.shuffle_test(ShuffleResult(1, 8.1e-8, 3.2e-2, 6.3e-7, 2.4e-3))
    assert same == ("Without E_pos, the shuffled input's outputs differ from the shuffled outputs by 8.1e-08 and the "
                    "CLS output by 6.3e-07: float32 rounding, the model cannot tell the two images apart. With E_pos "
                    "they differ by 3.2e-02 and the CLS output by 2.4e-03: the shuffled image is a different input.")
    broken = d.shuffle_test(ShuffleResult(1, 0.2, 0.3, 0.1, 1e-7))
    assert broken == ("Without E_pos, the shuffled input's outputs differ from the shuffled outputs by 2.0e-01 and the "
                      "CLS output by 1.0e-01. With E_pos they differ by 3.0e-01 and the CLS output by 1.0e-07.")


# ---- the position-similarity grids ---------------------------------------------------------------------------------

def test_sincos_similarity_is_described_by_its_neighbours():
    grid = (8, 8)
    pos = emb.sincos_2d(grid, 64)
    chart = viz.similarity_figure(pos, grid, selected=19)
    text = d.similarity(chart, "fixed 2-D sin-cos at 8 × 8", grid, 19)
    sim = emb.cosine_similarity(pos).astype(np.float64)
    cos = [sim[q, j] for q in range(64) for j in range(64) if j != q]
    dist = [math.dist(divmod(q, 8), divmod(j, 8)) for q in range(64) for j in range(64) if j != q]
    r = np.corrcoef(cos, dist)[0, 1]
    assert text.startswith("Position similarity, fixed 2-D sin-cos at 8 × 8: each position is most similar to its own "
                           f"row and column neighbours; correlation with grid distance {d.signed(r)}.")
    assert r < -0.5
    z = chart.figure.data[0].z
    assert f"8 × 8 tiles, tile (r, c) showing how similar every position is to position (r, c), from " \
           f"{d.cosine(np.nanmin(z))} (darkest, purple) to 1 (lightest, yellow)." in text
    assert "For 100 % of the positions the most similar other position is a row or column neighbour." in text
    row = sim[19].copy()
    row[19] = -np.inf
    best = np.flatnonzero(np.isclose(row, row.max()))  # sin-cos ties left/right and above/below
    named = re.search(r"most similar to row (\d+), column (\d+) \(cosine ([\d.]+)\)", text)
    assert 8 * int(named[1]) + int(named[2]) in best and named[3] == d.cosine(row.max())
    assert "Your selected patch 19 (row 2, column 3, framed)" in text


def test_random_similarity_has_no_neighbourhood():
    grid = (10, 10)
    pos = torch.randn(100, 256, generator=torch.Generator().manual_seed(7))
    chart = viz.similarity_figure(pos, grid, selected=None)
    text = d.similarity(chart, "learned", grid, None)
    s = chart.structure
    assert "no sign of neighbourhood: similarity does not fall with grid distance" in text
    sim = emb.cosine_similarity(pos)
    np.fill_diagonal(sim, -np.inf)
    nearest = sim.argmax(1)
    steps = np.abs(nearest // 10 - np.arange(100) // 10) + np.abs(nearest % 10 - np.arange(100) % 10)
    assert f"For {percent(np.mean(steps == 1))} of the positions" in text and s.neighbour_share < 0.2
    assert "Your selected patch" not in text


def test_a_thinned_chart_is_described_by_its_tiles():
    grid = (60, 60)
    chart = viz.similarity_figure(emb.sincos_2d(grid, 64), grid, selected=1)  # patch 1 has no tile of its own
    assert chart.thinned
    text = d.similarity(chart, "x", grid, 1)
    tiles = len(range(0, 60, chart.stride))
    assert f": {tiles} × {tiles} tiles" not in text and f"{tiles} × {tiles} tiles, tile (r, c)" in text
    assert "Your selected patch" not in text


def test_interpolation_makes_random_neighbours_alike():
    """The page's claim about interpolated random E_pos, seen in the description: enlarging a random 4 × 4 grid to
    12 × 12 makes neighbours the most similar positions."""
    from vitviz.models.vit import ViT, ViTConfig

    m = ViT(ViTConfig(image_size=32, patch_size=8, dim=32, depth=1, heads=2, mlp_dim=64))
    torch.nn.init.normal_(m.pos_embed, std=1.0, generator=torch.Generator().manual_seed(0))
    native = m.pos_embed[0, 1:].detach()
    interpolated = m.position_embeddings((12, 12))[0, 1:].detach()
    before = d.similarity(viz.similarity_figure(native, (4, 4)), "native", (4, 4), None)
    after = d.similarity(viz.similarity_figure(interpolated, (12, 12)), "interpolated", (12, 12), None)
    assert "no sign of neighbourhood" in before
    assert "each position is most similar to its own row and column neighbours" in after
