"""vitviz.patching: the patches the Patching / Flattening pages show and every number the Overview, Patching and
Flattening pages quote, checked against independent arithmetic (gcd, pixel coordinates read back from the
tensors, hand counts) and known values."""
from __future__ import annotations

import io
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vitviz
from vitviz import patching
from vitviz.models.vit import ViT, ViTConfig
from vitviz.viz import patches as viz

from .helpers import save
from .hubrepos import tiny_vit as hf_tiny_vit

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def tiny_vit(p: int) -> ViT:
    """A ViT whose patchify/flatten are the real ones, with no layers to run, and ImageNet normalisation."""
    model = ViT(replace(ViTConfig(), patch_size=p, dim=8, depth=0, heads=1, mlp_dim=8)).eval()
    model.preprocessing = vitviz.Preprocessing(mean=MEAN, std=STD)
    return model


def coded_input(h: int, w: int) -> torch.Tensor:
    """pixel_values (1, 3, H, W) whose every value names its own (channel, y, x): c·10⁶ + y·10³ + x."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(h), np.arange(w), indexing="ij")
    return torch.from_numpy((c * 1_000_000 + y * 1_000 + x).astype(np.float64))[None]


def decode(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """coded values -> (channel, y, x)."""
    v = np.rint(values).astype(np.int64)
    return v // 1_000_000, v // 1_000 % 1_000, v % 1_000


@st.composite
def inputs(draw, max_side: int = 300):
    """(H, W, P, selected) with at least one whole patch; P over the slider's 4–64."""
    p = draw(st.integers(4, 64))
    h, w = draw(st.integers(p, max(p, max_side))), draw(st.integers(p, max(p, max_side)))
    return h, w, p, draw(st.integers(0, (h // p) * (w // p) - 1))


@SETTINGS
@given(inputs())
def test_patching_numbers_follow_the_pixels(hwps):
    """Grid, drops, share, fitting sizes, tokens and the selected patch's cell and box, each from another route."""
    h, w, p, selected = hwps
    patches = patching.cut_patches(tiny_vit(p), coded_input(h, w))
    view = patching.patching_view(patches, selected)
    _, ys, xs = decode(patches.patches)  # (gh, gw, P, P) pixel coordinates each patch value came from
    seen = np.zeros((h, w), bool)
    seen[ys.ravel(), xs.ravel()] = True
    assert (view.height.size, view.width.size) == (h, w)
    assert view.height.quotient == ys.shape[0] and view.width.quotient == ys.shape[1]
    assert view.height.remainder == h - 1 - ys.max() and view.width.remainder == w - 1 - xs.max()
    assert view.grid.dropped_pixels == (~seen).sum()
    assert view.dropped_share == pytest.approx((~seen).mean())
    assert view.fits == tuple(q for q in range(4, 65) if math.gcd(h, w) % q == 0)
    assert view.tokens == ys.shape[0] * ys.shape[1] + 1 and view.pairs == view.tokens * view.tokens
    s = view.selected
    cell_y, cell_x = ys[s.row, s.col], xs[s.row, s.col]
    assert s.index == selected == s.row * ys.shape[1] + s.col
    assert (s.top, s.bottom, s.left, s.right) == (cell_y.min(), cell_y.max(), cell_x.min(), cell_x.max())
    np.testing.assert_array_equal(view.patch01, patches.patches01[s.row, s.col])
    assert selected in view.gallery.shown and view.gallery.hidden == patches.grid.n - len(view.gallery.shown)


@pytest.mark.parametrize("h, w, p, numbers", [
    (224, 224, 16, dict(grid=(14, 14), drop=(0, 0), pixels=0, fits=(4, 7, 8, 14, 16, 28, 32, 56), tokens=197,
                        pairs=38_809)),
    (230, 200, 16, dict(grid=(14, 12), drop=(6, 8), pixels=230 * 200 - 168 * 256, fits=(5, 10), tokens=169,
                        pairs=28_561)),
    (224, 160, 13, dict(grid=(17, 12), drop=(3, 4), pixels=224 * 160 - 204 * 169, fits=(4, 8, 16, 32), tokens=205,
                        pairs=42_025)),
])
def test_patching_known_values(h, w, p, numbers):
    view = patching.patching_view(patching.cut_patches(tiny_vit(p), torch.zeros(1, 3, h, w)), 0)
    grid = view.grid
    assert (grid.rows, grid.cols) == numbers["grid"] and (grid.drop_bottom, grid.drop_right) == numbers["drop"]
    assert (view.height.remainder, view.width.remainder) == numbers["drop"]
    assert grid.dropped_pixels == numbers["pixels"] and view.dropped_share == numbers["pixels"] / (h * w)
    assert view.fits == numbers["fits"] and view.tokens == numbers["tokens"] and view.pairs == numbers["pairs"]


def test_selected_patch_of_the_pages_example():
    """The Patching page's sentence for patch 150 at 224 px, P = 16: row 10, column 10, pixels 160…175."""
    view = patching.patching_view(patching.cut_patches(tiny_vit(16), torch.zeros(1, 3, 224, 224)), 150)
    assert view.selected == patching.SelectedPatch(150, 10, 10, 160, 160, 175, 175)
    with pytest.raises(IndexError):
        patching.patching_view(view.patches, 196)


def test_gallery_of_a_small_and_of_the_largest_grid():
    """196 patches fit (14 a line, tiles 16 px ×3 = 48 px); 49,152 do not: lines of ⌊880 / (36 + 4)⌋ = 22 tiles,
    ⌊324 / 22⌋ = 14 lines, and at the last patch the window ends with the grid."""
    small = patching.patching_view(patching.cut_patches(tiny_vit(16), torch.zeros(1, 3, 224, 224)), 100).gallery
    assert small == patching.Gallery(range(196), 14, 48, 3, False, 0)
    panorama = patching.cut_patches(tiny_vit(4), torch.zeros(1, 3, 512, 1536))
    first = patching.patching_view(panorama, 0).gallery
    assert first == patching.Gallery(range(0, 14 * 22), 22, 36, 9, True, 49_152 - 308)
    last = patching.patching_view(panorama, 49_151).gallery
    lines = -(-49_152 // 22)  # 2235, the last one holding 49,152 − 2234·22 = 4 tiles
    assert last.shown == range((lines - 14) * 22, 49_152) and last.hidden == 49_152 - (13 * 22 + 4)
    picture, shown = viz.patch_gallery(panorama.patches01, selected=49_151, max_tiles=patching.GALLERY_TILES)
    assert shown == last.shown and picture.width == 22 * 40 + 4


@SETTINGS
@given(inputs())
def test_flattening_vector_is_the_patch_in_p1_p2_c_order(hwps):
    h, w, p, selected = hwps
    pixel_values = coded_input(h, w)
    view = patching.flattening_view(patching.cut_patches(tiny_vit(p), pixel_values), selected)
    s = view.selected
    block = pixel_values[0, :, s.top:s.bottom + 1, s.left:s.right + 1].numpy()  # (C, P, P)
    np.testing.assert_array_equal(view.vector, block.transpose(1, 2, 0).reshape(-1))
    c, _, _ = decode(view.vector[:view.strip])
    assert view.strip == 12 and list(c) == [0, 1, 2] * 4  # the first four pixels' R G B
    assert view.line == p * 3 and view.kept == (h - h % p, w - w % p)
    n, k = (h // p) * (w // p), p * p * 3
    assert view.values == n * k and view.mib == n * k * 4 / 2**20
    assert view.downloadable == (n * k <= 1_000_000)


@pytest.mark.parametrize("h, w, p, numbers", [
    (224, 224, 16, dict(box=(860, 392), px=(768, 392), averaged=False, values=150_528, downloadable=True)),
    (224, 224, 4, dict(box=(860, 520), px=(816, 520), averaged=True, values=150_528, downloadable=True)),
    (224, 224, 64, dict(box=(860, 160), px=(860, 153), averaged=True, values=110_592, downloadable=True)),
    (512, 1536, 4, dict(box=(860, 520), px=(816, 520), averaged=True, values=2_359_296, downloadable=False)),
])
def test_flattening_matrix_known_values(h, w, p, numbers):
    """The picture's box (860 wide, 2 px a row between 160 and 520 tall) and the matrix's share of it: whole pixels
    per column (768 = 1·768, 816 = 17·48) and row (392 = 2·196, 153 = 17·9) where it fits."""
    patches = patching.cut_patches(tiny_vit(p), torch.rand(1, 3, h, w))
    view = patching.flattening_view(patches, 0)
    assert (view.matrix_box, view.matrix_px, view.averaged) == (numbers["box"], numbers["px"], numbers["averaged"])
    assert (view.values, view.downloadable) == (numbers["values"], numbers["downloadable"])
    picture = viz.matrix_base(patches.flat01, 3, view.matrix_box, colours=250)
    assert (picture.width - viz.MATRIX_MARGIN, picture.height - 8) == view.matrix_px and picture.mode == "P"


def test_downloads_hold_the_values():
    patches = patching.cut_patches(tiny_vit(4), coded_input(9, 8))  # 2 × 2 patches of 48 numbers
    vector = patches.flat[3]
    lines = patching.vector_csv(vector, 4, 3).splitlines()
    assert lines[0] == "k,p1,p2,c,value" and len(lines) == 49
    assert lines[1 + 14] == f"14,1,0,B,{2_005_004}"  # k = (1·4 + 0)·3 + 2: pixel (y 5, x 4) of patch (1, 1), blue
    assert patching.matrix_csv(np.array([[1 / 3, 2.0], [-1e-7, 123456789.0]])) == "0.333333,2\n-1e-07,1.23457e+08\n"
    loaded = np.load(io.BytesIO(patching.npy(vector)))
    assert loaded.dtype == np.float32 and (loaded == vector).all()


def test_cut_patches_are_read_only_and_in_display_range():
    patches = patching.cut_patches(tiny_vit(16), torch.randn(1, 3, 64, 48) * 3)
    assert patches.patches.shape == (4, 3, 16, 16, 3) and patches.flat.shape == (12, 768) and patches.length == 768
    assert all(not a.flags.writeable for a in (patches.patches, patches.flat, patches.patches01, patches.flat01))
    assert 0 <= patches.flat01.min() and patches.flat01.max() <= 1
    np.testing.assert_allclose(patches.flat01, np.clip(patches.flat.reshape(12, -1, 3) * STD + MEAN, 0, 1)
                               .reshape(12, -1), atol=1e-6)


@pytest.mark.parametrize("name, size, numbers", [
    ("dino-vits16", (224, 224), dict(patches=(1, 14, 14, 16, 16, 3), flat=(1, 196, 768), embeddings=(1, 196, 384),
                                     position=(1, 197, 384), tokens=197, registers=0)),
    ("deit-tiny", (160, 208), dict(patches=(1, 10, 13, 16, 16, 3), flat=(1, 130, 768), embeddings=(1, 130, 192),
                                   position=(1, 131, 192), tokens=131, registers=0)),
    ("dinov2-small-reg", (224, 224), dict(patches=(1, 16, 16, 14, 14, 3), flat=(1, 256, 588),
                                          embeddings=(1, 256, 384), position=(1, 257, 384), tokens=261, registers=4)),
])
def test_pipeline_shapes_of_the_presets(name, size, numbers):
    """The overview's shapes: N = ⌊H/P⌋·⌊W/P⌋, P²·C, the preset's D, 1 + N, and 1 + R + N tokens with
    registers."""
    model = vitviz.load_model(name, device="cpu")
    shapes = patching.pipeline_shapes(model, torch.rand(1, 3, *size))
    assert shapes.input == (1, 3, *size) and (shapes.height, shapes.width) == size
    for field in ("patches", "flat", "embeddings", "position", "tokens", "registers"):
        assert getattr(shapes, field) == numbers[field], field
    assert (shapes.rows, shapes.cols, shapes.n) == (*numbers["patches"][1:3], numbers["flat"][1])
    assert shapes.steps == 11 and not shapes.trained  # deletion curves at k = 0, 10, …, 100 %; a random preset


def test_pipeline_shapes_of_a_model_from_a_folder_say_trained(tmp_path):
    model = vitviz.load_model(save(hf_tiny_vit(), tmp_path / "tiny"), device="cpu")
    shapes = patching.pipeline_shapes(model, torch.rand(1, 3, 32, 40))
    assert shapes.trained and shapes.patches == (1, 4, 5, 8, 8, 3) and shapes.tokens == 21
    assert (shapes.dim, shapes.depth, shapes.heads, shapes.patch) == (32, 2, 2, 8)
