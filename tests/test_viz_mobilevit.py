"""The MobileViT page's arrays and pictures: unfold geometry, exact fold/unfold, the traced run against the whole
model, attention rows, the receptive field against the real block's gradient, and the pictures' colours."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import vitviz
from vitviz.models.mobilevit import MobileViT, PRESETS, fold, patch_multiple, unfold
from vitviz import mobilevit_blocks as mb
from vitviz.viz import mobilevit as mv

SIZES = [(256, 256), (100, 76), (72, 200)]
PATCHES = [(2, 2), (3, 5), (8, 8), (1, 1), (4, 1)]


@pytest.fixture(scope="module")
def xxs():
    return MobileViT(PRESETS["mobilevit-xxs"]).eval()


def _block_include() -> list[str]:
    """The taps run_blocks records (no attention probabilities: the fused attention path, as on the page)."""
    include = []
    for i in mb.MOBILEVIT_STAGES:
        include += [f"stages.{i}.block.{name}" for name in mb.BLOCK_TAPS]
        include += [f"stages.{i}.block.layers.*.attn.q", f"stages.{i}.block.layers.*.attn.k"]
    return include


def test_fold_inverts_unfold_exactly_for_every_tested_size_and_patch():
    """fold(unfold(x)) == x and unfold(fold(X_U)) == X_U, bit for bit, for every map size 1…13 × 1…13 (resized to
    the patch multiple as the block does) and every patch 1…8 × 1…8 of the page's sliders."""
    generator = torch.Generator().manual_seed(0)
    tested = 0
    for h in range(1, 14):
        for w in range(1, 14):
            for ph in range(1, 9):
                for pw in range(1, 9):
                    hr, wr = patch_multiple(h, w, ph, pw)
                    x = torch.randn(1, 3, hr, wr, generator=generator)
                    patches = unfold(x, ph, pw)
                    assert patches.shape == (ph * pw, hr * wr // (ph * pw), 3)
                    assert torch.equal(fold(patches, ph, pw, hr, wr), x)
                    assert torch.equal(unfold(fold(patches, ph, pw, hr, wr), ph, pw), patches)
                    tested += 1
    assert tested == 13 * 13 * 64


@pytest.mark.parametrize("h, w, ph, pw", [(8, 8, 2, 2), (7, 9, 3, 2), (13, 13, 3, 5), (2, 2, 8, 8), (5, 4, 1, 1)])
def test_unfolding_geometry_matches_the_model_unfold(h, w, ph, pw):
    """`locate` and `pixel` say where `unfold` puts every pixel, and they are inverse to each other."""
    u = mb.Unfolding(h, w, ph, pw)
    hr, wr = u.resized
    assert (hr, wr) == patch_multiple(h, w, ph, pw) and u.needs_resize == ((hr, wr) != (h, w))
    assert u.p == ph * pw and u.n * u.p == hr * wr and u.grid == (hr // ph, wr // pw)
    ids = torch.arange(hr * wr, dtype=torch.float32).reshape(1, 1, hr, wr)
    patches = unfold(ids, ph, pw)  # (P, N, 1)
    offsets, patch_index = u.offsets(), u.patches()
    for r in range(hr):
        for c in range(wr):
            p, n = u.locate(r, c)
            assert (offsets[r, c], patch_index[r, c]) == (p, n)
            assert patches[p, n, 0] == r * wr + c
            assert u.pixel(p, n) == (r, c)
    with pytest.raises(IndexError):
        u.locate(hr, 0)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("patch", PATCHES)
def test_run_blocks_equals_the_traced_whole_model(xxs, size, patch):
    """Trunk + run_blocks (what the page shows) gives exactly the tensors and logits of `vitviz.trace` on the whole
    model; the live checks are all exactly zero; shapes are the traced ones."""
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    run = mb.run_blocks(xxs, mb.trunk(xxs, x), patch)
    ref = vitviz.trace(xxs, x, include=["stem_out", "stages.0.out", "stages.1.out", *_block_include()], patch_size=patch)
    for name, shape in run.shapes.items():
        assert shape == tuple(ref[name].shape), name
    for i, view in run.blocks.items():
        prefix = f"stages.{i}.block"
        for tap in mb.SHOWN_TAPS:
            expected = ref[f"{prefix}.{tap}"]
            expected = expected if tap == "unfolded" else expected[0]
            np.testing.assert_array_equal(view.taps[tap], expected.numpy(), err_msg=f"{prefix}.{tap}")
        for k in range(view.depth):
            np.testing.assert_array_equal(view.q[k], ref[f"{prefix}.layers.{k}.attn.q"].numpy())
            np.testing.assert_array_equal(view.k[k], ref[f"{prefix}.layers.{k}.attn.k"].numpy())
        h, w = ref[f"{prefix}.local"].shape[-2:]
        assert view.unfolding == mb.Unfolding(h, w, *patch)
        assert view.resized.shape == (view.dim, *view.unfolding.resized)
        exact = {k: v for k, v in view.checks.items() if k != "resize_round_trip"}
        assert exact and all(v == 0 for v in exact.values()), exact
        assert ("resize_round_trip" in view.checks) == view.unfolding.needs_resize
    np.testing.assert_array_equal(run.logits, ref.output.logits[0].numpy())


def test_shapes_at_256_for_xxs_match_the_reference(xxs):
    """REFERENCE.md: stage 2 is 32×32, d = 64 → X_U (4, 256, 64); stage 3 16×16, d = 80 → (4, 64, 80); stage 4
    8×8, d = 96 → (4, 16, 96), with patch 2 and b = 1; 2, 4, 3 layers of 4 heads."""
    run = mb.run_blocks(xxs, mb.trunk(xxs, torch.rand(1, 3, 256, 256)), (2, 2))
    expected = {2: (32, 64, (4, 256, 64), 2), 3: (16, 80, (4, 64, 80), 4), 4: (8, 96, (4, 16, 96), 3)}
    for i, (side, d, unfolded, depth) in expected.items():
        view = run.blocks[i]
        assert view.taps["local"].shape == (d, side, side)
        assert view.taps["unfolded"].shape == unfolded == run.shapes[f"stages.{i}.block.unfolded"]
        assert view.unfolding.n == unfolded[1] and view.unfolding.p == 4 and view.dim == d
        assert view.depth == depth and view.heads == 4
        assert view.q[0].shape == (4, 4, unfolded[1], d // 4)
        assert not view.unfolding.needs_resize
    assert run.shapes["stages.1.out"] == (1, 24, 64, 64)
    assert run.logits.shape == (1000,)


@pytest.mark.parametrize("size, patch", [((256, 256), (2, 2)), ((100, 76), (3, 5)), ((64, 64), (1, 1))])
def test_attention_rows_equal_the_traced_probabilities(xxs, size, patch):
    """Rows recomputed from the traced q and k equal the model's own probabilities (explicit softmax path):
    exactly the same softmax(q kᵀ · scale), up to float rounding of the matrix product."""
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(2))
    include = [*_block_include(), "stages.*.block.layers.*.attn.probs"]
    ref = vitviz.trace(xxs, x, include=include, patch_size=patch)
    for i in mb.MOBILEVIT_STAGES:
        prefix = f"stages.{i}.block"
        depth = len(xxs.stages[i].block.layers)
        h, w = ref[f"{prefix}.local"].shape[-2:]
        view = mb.BlockView(
            stage=i, unfolding=mb.Unfolding(h, w, *patch), taps={}, conv3=np.empty(0), resized=np.empty(0),
            q=tuple(ref[f"{prefix}.layers.{k}.attn.q"].numpy() for k in range(depth)),
            k=tuple(ref[f"{prefix}.layers.{k}.attn.k"].numpy() for k in range(depth)),
            scale=xxs.stages[i].block.layers[0].attn.scale, checks={})
        u = view.unfolding
        for k in range(depth):
            probs = ref[f"{prefix}.layers.{k}.attn.probs"].numpy()
            for p, n in {(0, 0), (u.p - 1, u.n - 1), (u.p // 2, u.n // 2)}:
                rows = view.attention_rows(k, p, n)
                assert rows.shape == (4, u.n)
                np.testing.assert_allclose(rows, probs[p, :, n], rtol=0, atol=1e-6)
                np.testing.assert_allclose(rows.sum(-1), 1.0, atol=1e-5)


def _gradient_support(block, x: torch.Tensor, patch: tuple[int, int], pixel: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: input pixels with a nonzero gradient of output pixel (r, c) of the real block."""
    x = x.clone().requires_grad_(True)
    out, _ = block(x, patch)
    (grad,) = torch.autograd.grad(out[0, :, pixel[0], pixel[1]].sum(), x)
    return (grad[0].abs().sum(0) > 0).numpy()


@pytest.mark.parametrize("h, w, patch", [(9, 7, (2, 2)), (9, 7, (3, 3)), (12, 12, (4, 4)), (16, 16, (8, 8)),
                                         (10, 9, (6, 2)), (11, 13, (3, 5)), (7, 7, (8, 8)), (5, 6, (1, 1))])
def test_dependency_mask_is_the_real_blocks_gradient_support(xxs, h, w, patch):
    """The structural receptive field of one block equals the set of inputs with a nonzero gradient through the
    real MobileViT block (random weights, so no connection cancels), with and without the resize."""
    block = xxs.stages[2].block
    x = torch.randn(1, 48, h, w, generator=torch.Generator().manual_seed(3))
    for pixel in [(0, 0), (h // 2, w // 2), (h - 1, w - 1), (1, w - 2)]:
        expected = _gradient_support(block, x, patch, pixel)
        np.testing.assert_array_equal(mb.dependency_mask(h, w, *patch, pixel), expected, err_msg=str(pixel))


def test_every_pixel_sees_every_pixel_with_small_patches_only():
    """Patches up to 3 px: every output pixel of every map size depends on every input pixel; 4 and 5 px: only
    away from the border; 6 px and more: nowhere."""
    for ph, pw in [(1, 1), (2, 2), (3, 3), (2, 3), (3, 1)]:
        for h, w in [(1, 1), (5, 7), (16, 16), (13, 9)]:
            for pixel in [(0, 0), (h // 2, w // 2), (h - 1, w - 1)]:
                assert mb.dependency_mask(h, w, ph, pw, pixel).all(), (ph, pw, h, w, pixel)
    for patch in (4, 5):  # 20 is a multiple of both: no resize
        assert mb.dependency_mask(20, 20, patch, patch, (10, 10)).all()
        assert not mb.dependency_mask(20, 20, patch, patch, (0, 0)).all()
    for patch in (6, 8):
        assert not mb.dependency_mask(24, 24, patch, patch, (12, 12)).all()
    assert mb.sees_everything(16, 16, 2, 2) and mb.sees_everything(13, 9, 3, 3)
    assert not mb.sees_everything(20, 20, 4, 4) and not mb.sees_everything(16, 16, 8, 8)
    gaps = mb.dependency_mask(16, 16, 8, 8, (0, 0))
    assert not gaps.all() and gaps[:2, :2].all()
    assert mb.conv_only_mask(16, 16, (7, 7)).sum() == 25 and mb.conv_only_mask(16, 16, (0, 0)).sum() == 9


def test_interpolation_support_matches_torch_bilinear():
    for src, dst in [(7, 8), (13, 15), (15, 13), (5, 5), (1, 4)]:
        support = mb.interpolation_support(src, dst)  # (dst, src)
        for j in range(src):
            x = torch.zeros(1, 1, 1, src)
            x[..., j] = 1
            y = torch.nn.functional.interpolate(x, size=(1, dst), mode="bilinear", align_corners=False)[0, 0, 0]
            np.testing.assert_array_equal(support[:, j], (y != 0).numpy())


def test_attention_cost():
    u = mb.Unfolding(32, 32, 2, 2)
    cost = mb.attention_cost(u, 64)
    assert cost.mobilevit == 2 * 4 * 256**2 * 64
    assert cost.mobilevit == u.p * cost.vit_patches and cost.vit_pixels == u.p * cost.mobilevit


def _grey(w: int = 64, h: int = 64) -> Image.Image:
    return Image.new("RGB", (w, h), (128, 128, 128))


@pytest.mark.parametrize("h, w, ph, pw", [(28, 28, 2, 2), (13, 13, 3, 5), (7, 7, 8, 8), (64, 64, 1, 1), (8, 30, 2, 4),
                                         (40, 40, 3, 2)])
def test_offset_picture_colours_each_offset(h, w, ph, pw):
    """On a flat grey image most of every pixel's cell shows its offset's colour (blended), so offsets with different
    colours are told apart; the picture has whole cells per map pixel."""
    u = mb.Unfolding(h, w, ph, pw)
    picture = mv.offset_picture(_grey(), u, width=560, max_height=560)
    hr, wr = u.resized
    cell = mv.cell_size(hr, wr, 560, 560)
    assert picture.size == (wr * cell, hr * cell)
    arr = np.asarray(picture).astype(int)
    offsets = u.offsets()
    for r, c in [(0, 0), (hr - 1, wr - 1), (hr // 2, wr // 3), (1 % hr, 1 % wr)]:
        inner = arr[r * cell + 1:(r + 1) * cell - 1, c * cell + 1:(c + 1) * cell - 1].reshape(-1, 3)
        if (c % pw == 0 or r % ph == 0) and cell < 8:
            continue  # thin cells are covered by the patch border
        colours, counts = np.unique(inner, axis=0, return_counts=True)  # the cell's commonest colour: its tint
        expected = 128 * 0.5 + mv.OFFSET_RGB[offsets[r, c] % len(mv.OFFSET_RGB)] * 0.5
        assert np.abs(colours[np.argmax(counts)] - expected).max() <= 3, (r, c, colours[np.argmax(counts)], expected)


@pytest.mark.parametrize("h, w, ph, pw, numbered", [
    (16, 16, 2, 2, True),  # cells of 32 px: numbers
    (30, 30, 5, 5, True),  # 17 px, 25 offsets: the colours repeat, numbers
    (32, 32, 4, 4, True),  # 16 px, dots would sit 2.5 px apart: numbers
    (32, 32, 2, 2, False),  # the page's default, 16 px: dots (numbers would hide the photo)
    (40, 40, 2, 2, False), (52, 52, 2, 2, False), (40, 40, 3, 2, False),  # 13, 10 and 12 px: dots
])
def test_offsets_are_told_apart_without_colour(h, w, ph, pw, numbered):
    """In grey (achromatopsia), offsets still differ: their cells carry their number (dark strokes at the centre)
    or a black dot at the offset's place inside the cell (top left for p = 0 …)."""
    u = mb.Unfolding(h, w, ph, pw)
    cell = mv.cell_size(*u.resized, 520, 520)
    assert mv.offset_cue(u, 520, 520) == ("numbers" if numbered else "dots")
    grey = np.asarray(mv.offset_picture(_grey(), u, width=520, max_height=520).convert("L")).astype(int)
    inks, dots = [], np.zeros((ph, pw, 2))  # each offset's dark marks; (row, column) of its dot inside its cell
    for r in range(ph, 2 * ph):  # the second row of patches, away from the map's outer border
        for c in range(pw, 2 * pw):
            # the cell inside the patch border (2 px on a patch's top and left) and the 1 px lines between pixels
            box = grey[r * cell + 2:(r + 1) * cell - 1, c * cell + 2:(c + 1) * cell - 1]
            inks.append((box < 60).tobytes())
            if not numbered:
                ys, xs = np.nonzero(box < 20)  # the dot
                dots[r % ph, c % pw] = ys.mean(), xs.mean()
    assert len(set(inks)) == ph * pw and all(ink.count(1) >= 4 for ink in inks)  # a distinct dark mark per offset
    if not numbered:  # the dots sit as the offsets inside the patch: lower with the row, further right with the column
        assert (np.diff(dots[..., 0], axis=0) > 1).all() and (np.diff(dots[..., 1], axis=1) > 1).all(), dots


def test_offset_cue_where_neither_numbers_nor_dots_fit():
    """Cells of 8 px with 2 × 2 patches (a 64 × 64 map): only the place inside the bordered patch; one offset: none
    needed."""
    assert mv.offset_cue(mb.Unfolding(64, 64, 2, 2), 520, 520) == "place"
    assert mv.offset_cue(mb.Unfolding(8, 8, 1, 1), 520, 520) == "place"  # cells of 65 px


def test_offset_picture_marks_the_selected_sequence():
    u = mb.Unfolding(8, 8, 2, 2)
    picture = np.asarray(mv.offset_picture(_grey(), u, (3, 2), width=320, max_height=320)).astype(int)
    cell = 40
    p, _ = u.locate(3, 2)
    for r in range(8):
        for c in range(8):
            inner = picture[r * cell + 5:r * cell + 7, c * cell + 20]  # the inner square's top edge, mid-column
            dark = inner.max() < 60
            assert dark == (u.locate(r, c)[0] == p), (r, c)


def test_attention_picture_brightness_follows_the_weights():
    u = mb.Unfolding(8, 8, 2, 2)
    row = np.zeros(u.n)
    row[5] = 1.0  # one patch gets everything
    picture = np.asarray(mv.attention_picture(_grey(), u, row, (0, 0), width=320, max_height=320)).astype(int)
    cell = 40
    y, x = divmod(5, 4)
    bright = picture[y * 2 * cell + 50, x * 2 * cell + 50].sum()
    dark = picture[3 * 2 * cell + 50, 3 * 2 * cell + 50].sum()
    assert bright > dark + 200
    with pytest.raises(ValueError):
        mv.attention_picture(_grey(), u, np.ones(3), (0, 0))


def _luminance(rgb) -> float:
    """WCAG's relative luminance of an sRGB colour (0…255)."""
    v = np.asarray(rgb, dtype=np.float64) / 255
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


def test_dependency_picture_hatches_what_is_out_of_reach():
    mask = np.zeros((8, 8), dtype=bool)
    mask[:4] = True
    picture = np.asarray(mv.dependency_picture(_grey(), mask, (0, 0), width=320, max_height=320)).astype(int)
    assert np.abs(picture[100, 100] - 128).max() <= 3  # kept: the photo as it is
    bottom = picture[200:, :].reshape(-1, 3)
    stripes = (bottom == mv.HATCH_RGB).all(1)
    assert 0.2 < stripes.mean() < 0.5  # hatched: two pixels of every six along a diagonal
    assert (bottom[~stripes] == 128 // 4).all()  # the rest darkened to a quarter
    # the stripes stand out of any darkened pixel by their lightness, whatever the colour vision: ≥ 4.5:1
    assert (_luminance(mv.HATCH_RGB) + 0.05) / (_luminance((255 // 4,) * 3) + 0.05) >= 4.5


def test_clickable_map_returns_the_clicked_pixel():
    u = mb.Unfolding(13, 13, 3, 5)
    picture = mv.offset_picture(_grey(), u, (4, 7), width=300)
    fig = mv.clickable_map(picture, u, title="t")
    data = fig.data[0].customdata
    assert len(data) == 15 * 15
    k = 4 * 15 + 7
    r, c, p, n = data[k]
    assert (r, c) == (4, 7) and (p, n) == u.locate(4, 7)
    assert mv.pixel_from_event({"selection": {"points": [{"customdata": list(data[k])}]}}) == (4, 7)
    browser = {"0": 4, "1": 7, "2": 12, "3": 0}  # what Chromium sends for an int32 customdata row
    assert mv.pixel_from_event({"selection": {"points": [{"customdata": browser}]}}) == (4, 7)
    assert mv.pixel_from_event({"selection": {"points": []}}) is None
    assert mv.pixel_from_event(None) is None


def test_unfolded_figure_marks_the_selected_cell():
    u = mb.Unfolding(4, 4, 2, 2)
    values = np.arange(16, dtype=np.float32).reshape(4, 4)
    fig = mv.unfolded_figure(values, u, 0, (1, 2))
    assert np.asarray(fig.data[0].z).shape == (4, 4)
    assert fig.layout.dragmode is False  # a finger scrolling a phone's page is not captured
    assert fig.layout.shapes[0].x0 == 1.5 and fig.layout.shapes[0].y0 == 0.5


def test_figures_are_valid_plotly():
    """The page's figures are built without validation (for speed): validating the same specs must not raise."""
    import plotly.graph_objects as go

    u = mb.Unfolding(13, 13, 3, 5)
    figures = [mv.clickable_map(mv.offset_picture(_grey(), u, (4, 7), width=300), u, title="t"),
               mv.unfolded_figure(np.zeros((u.p, u.n), np.float32), u, 3, (1, 2))]
    for fig in figures:
        go.Figure(fig.to_dict())  # raises on any invalid property
    with pytest.raises(ValueError):  # and validation is really on there
        go.Figure({"data": [{"type": "heatmap", "zz": [[1]]}]})
