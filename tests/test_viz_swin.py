"""What the Swin page shows, checked without Streamlit: the page's run equals the traced whole model, the stage plan
its controls read equals the traced windows, every number of the page's result (`stage_view`) against the traced
model and hand counts, the displayed mask equals a pair-by-pair region comparison, the Swin-T mask statistics, the A1 … D4 worked example, the cost
formulas, the patch-size adaptation, and pictures whose windows and wrapped strips stay distinguishable under
simulated colour-vision deficiencies."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

import vitviz
from vitviz.images import load_sample
from vitviz.models.swin import (
    MASK_VALUE,
    region_labels,
    relative_position_index,
    resize_bias_table,
    shift_mask,
    stage_grids,
    window_and_shift,
)
from vitviz.preprocess import resize_and_crop, to_pixel_values
from vitviz.trace import trace
from vitviz import swin_windows as sw
from vitviz.viz import swin as sv

from .colour import DEFICIENCIES, linear


@pytest.fixture(scope="module")
def model():
    return vitviz.load_model("swin-tiny", device="cpu")


def pixels(model, size: int | tuple[int, int] = 224) -> torch.Tensor:
    size = (size, size) if isinstance(size, int) else size
    image = resize_and_crop(load_sample("cat"), model.preprocessing, None if size == (224, 224) else size)
    return to_pixel_values(image, model.preprocessing)


STAGE_TAPS = ("shifted", "labels", "rel_bias", "attn.probs", "windows")


# ---- the page's run is the real model's forward pass --------------------------------------------------------------

@pytest.mark.parametrize("window, stage, size", [
    (7, 0, 224), (7, 1, 224), (7, 2, 224), (7, 3, 224),  # the checkpoint: 56², 28², 14², 7² (7 ≤ M: no shift)
    (5, 0, 224),  # 56 is no multiple of 5: padded to 60
    (2, 2, 224), (14, 1, 224), (9, 3, 224),  # 7 ≤ 9: one clamped 7×7 window
    (3, 0, (96, 160)),  # non-square
    (13, 1, 208),
])
def test_run_stage_equals_the_traced_whole_model(model, window, stage, size):
    x = pixels(model, size)
    run = sw.run_stage(model, x, window, stage)
    include = [f"stages.{stage}.blocks.{b}.{t}" for b in (0, 1) for t in (*STAGE_TAPS, "mask")]
    if stage < 3:
        include.append(f"stages.{stage}.merged")
    t = vitviz.trace(model, x, include=include, window_size=window)
    for b, view in enumerate(run.blocks):
        prefix = f"stages.{stage}.blocks.{b}"
        assert view.traced
        np.testing.assert_array_equal(view.probs, t[f"{prefix}.attn.probs"].numpy())
        np.testing.assert_array_equal(view.rel_bias, t[f"{prefix}.rel_bias"].numpy())
        np.testing.assert_array_equal(view.labels, t[f"{prefix}.labels"].numpy())
        assert view.windows_shape == tuple(t[f"{prefix}.windows"].shape)
        if f"{prefix}.mask" in t:
            np.testing.assert_array_equal(view.mask, t[f"{prefix}.mask"].numpy())
        else:
            assert view.mask is None
        assert view.shifted_rgb.shape == (*t[f"{prefix}.shifted"].shape[1:3], 3)
        assert all(v == 0 for v in view.checks.values()), view.checks
        h, w = run.grid
        assert (view.window, view.shift) == window_and_shift(h, w, window, window // 2 if b else 0)
    if stage < 3:
        assert run.merge.merged_shape == tuple(t[f"stages.{stage}.merged"].shape)
        assert run.merge.checks == {"cat": 0.0, "merged": 0.0}
    else:
        assert run.merge is None


def test_run_stage_shifted_colours_are_the_rolled_pre_shift_map(model):
    run = sw.run_stage(model, pixels(model), 7, 0)
    b1 = run.blocks[1]
    np.testing.assert_array_equal(b1.shifted_rgb, sw.rolled(run.before_rgb, b1.shift))
    np.testing.assert_array_equal(sw.rolled(run.before_rgb, 0), run.before_rgb)


def test_rerun_with_the_checkpoint_shift_equals_the_traced_block(model):
    run = sw.run_stage(model, pixels(model), 7, 0)
    again = sw.rerun_with_shift(model, run, 3)
    traced = run.blocks[1]
    assert not again.traced and (again.window, again.shift) == (7, 3)
    np.testing.assert_allclose(again.probs, traced.probs, atol=1e-6)
    np.testing.assert_array_equal(again.mask, traced.mask)
    np.testing.assert_array_equal(again.labels, traced.labels)
    np.testing.assert_array_equal(again.rel_bias, traced.rel_bias)
    np.testing.assert_array_equal(again.shifted_rgb, traced.shifted_rgb)


@pytest.mark.parametrize("shift", [0, 1, 2, 4, 6])
def test_rerun_with_another_shift(model, shift):
    run = sw.run_stage(model, pixels(model), 7, 0)
    view = sw.rerun_with_shift(model, run, shift)
    assert view.shift == shift and view.checks == {"unshift": 0.0, "reverse": 0.0}
    assert view.nbytes >= view.probs.nbytes > 0
    np.testing.assert_array_equal(view.labels, region_labels(56, 56, 7, shift).numpy())
    if shift:
        np.testing.assert_array_equal(view.mask, shift_mask(56, 56, 7, shift).numpy())
        assert float(view.probs[np.broadcast_to(view.mask[:, None] == MASK_VALUE, view.probs.shape)].max()) < 1e-30
    else:
        assert view.mask is None
    np.testing.assert_allclose(view.probs.sum(-1), 1, atol=1e-5)
    np.testing.assert_array_equal(view.shifted_rgb, sw.rolled(run.before_rgb, shift))


@pytest.mark.parametrize("height, width, patch", [(224, 224, 4), (100, 60, 8), (97, 131, 4), (33, 250, 16),
                                                  (512, 384, 16), (8, 8, 8)])
def test_stage_shapes_equal_the_traced_tensors(model, height, width, patch):
    """The page's stage table comes from the model's rules; here it meets the tensors of a traced forward pass."""
    adapted = model if patch == 4 else model.with_patch_size(patch)
    t = trace(adapted, torch.rand(1, 3, height, width), include=["embeddings", "stages.*.merged"])
    names = ["embeddings", "stages.0.merged", "stages.1.merged", "stages.2.merged"]
    shapes = sw.stage_shapes(adapted.config, height, width)
    assert [h * w for h, w, _ in shapes] == [t[n].shape[1] for n in names]
    assert [c for _, _, c in shapes] == [t[n].shape[2] for n in names]
    assert [(h, w) for h, w, _ in shapes] == stage_grids(height, width, patch)


def test_stage_shapes_are_swin_t_at_224(model):
    assert sw.stage_shapes(model.config, 224, 224) == [(56, 56, 96), (28, 28, 192), (14, 14, 384), (7, 7, 768)]
    assert stage_grids(224, 224, 4) == [(56, 56), (28, 28), (14, 14), (7, 7)]
    assert stage_grids(100, 60, 8) == [(13, 8), (7, 4), (4, 2), (2, 1)]


def test_with_patch_size_is_a_new_model_sharing_the_weights(model):
    before = model.patch_embed.weight.detach().clone()
    new = model.with_patch_size(8)
    assert new is not model and new.config.patch_size == 8 and model.config.patch_size == 4
    assert new.patch_embed.weight.shape == (96, 3, 8, 8)
    assert torch.equal(model.patch_embed.weight, before)  # the cached model is untouched
    assert new.stages[2].blocks[3].attn.query.weight.data_ptr() == model.stages[2].blocks[3].attn.query.weight.data_ptr()
    assert new.preprocessing == model.preprocessing
    assert model.with_patch_size(4) is model
    run = sw.run_stage(new, pixels(model), 7, 0)
    assert run.grid == (28, 28) and run.blocks[0].windows_shape == (16, 49, 96)
    # PI-resize: an 8×8 patch that is a bilinear upsample of a 4×4 patch gives the checkpoint's token
    patch = torch.randn(1, 3, 4, 4)
    big = torch.nn.functional.interpolate(patch, size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(new.patch_embed(big), model.patch_embed(patch), atol=1e-4, rtol=1e-4)


# ---- the page's result: plan_stages and stage_view ---------------------------------------------------------------

@pytest.mark.parametrize("size, window, patch", [((224, 224), 7, 4), ((96, 160), 3, 4), ((64, 64), 7, 4),
                                                 ((208, 208), 13, 8), ((100, 60), 5, 16)])
def test_plan_stages_is_what_the_traced_model_does(model, size, window, patch):
    """Before the model runs, the page's controls read the windows of every stage from `plan_stages`: here they
    meet the traced windows, masks and shapes of the whole model at that M."""
    adapted = model.with_patch_size(patch)
    plan = sw.plan_stages(adapted.config, *size, window)
    t = vitviz.trace(adapted, torch.rand(1, 3, *size), include=["stages.*.blocks.1.windows", "stages.*.blocks.1.mask",
                                                              "stages.*.blocks.1.shifted"], window_size=window)
    assert (plan.input_size, plan.patch, plan.window) == (size, patch, window)
    h, w = -(-size[0] // patch), -(-size[1] // patch)
    for i, layout in enumerate(plan.stages):
        part = layout.partition
        windows = t[f"stages.{i}.blocks.1.windows"]
        assert layout.grid == (h, w) and part.grid == (h, w)
        assert (part.n_windows, part.window ** 2, layout.channels) == tuple(windows.shape)
        assert part.padded == tuple(t[f"stages.{i}.blocks.1.shifted"].shape[1:3])
        assert (f"stages.{i}.blocks.1.mask" in t) == (part.shift > 0) == (not layout.clamped)
        assert layout.clamped == (min(h, w) <= window)
        assert part.shift == (0 if layout.clamped else window // 2) and layout.heads == (3, 6, 12, 24)[i]
        assert part.token_px == patch * 2**i
        h, w = (h + 1) // 2, (w + 1) // 2


def test_window_partition_geometry():
    part = sw.WindowPartition((6, 10), 4, 2, 5)
    assert part.padded == (8, 12) and part.window_grid == (2, 3) and part.n_windows == 6
    assert (part.tokens_per_window, part.padding_added, part.short_side) == (16, (2, 2), 6)
    assert [sw.default_shift(m) for m in (2, 3, 7, 14)] == [1, 1, 3, 7]
    win, tok = part.index_map()
    assert win.shape == (8, 12) and sorted(set(win.ravel().tolist())) == list(range(6))
    assert part.padding().sum() == 8 * 12 - 6 * 10
    rows, cols = part.strips()
    assert rows.sum() == 2 * 12 and cols.sum() == 2 * 8


@pytest.mark.parametrize("cell, expected", [((0, 0, 8, 8), "interior"), ((7, 3, 8, 8), "edge"), ((2, 7, 8, 8), "edge"),
                                            ((7, 7, 8, 8), "corner"), ((0, 0, 1, 1), "corner"), ((0, 2, 1, 3), "corner")])
def test_window_kind(cell, expected):
    assert sw.window_kind(*cell) == expected


def test_stage_view_numbers_swin_t_stage_one(model):
    """What the page quotes at M = 7, s = 3 on the 224 × 224 cat, corner window 63, query 24, head 2, against the
    traced whole model and hand counts."""
    x = pixels(model)
    view = sw.stage_view(model, x, sw.Selection(7, 3, 0, 1, 63, 24, 1), "k")
    t = vitviz.trace(model, x, include=["stages.0.blocks.*.attn.probs", "stages.0.blocks.1.rel_bias"])
    assert view.shifted is view.run.blocks[1] and view.shifted.traced and not view.trained
    assert (view.partition.window, view.partition.shift, view.checkpoint_shift, view.clamped) == (7, 3, 3, False)
    assert view.regular.windows_shape == (64, 49, 96) and view.partition.padded == (56, 56)
    assert (view.table_side, view.table_rows, view.checkpoint_table_rows, view.half_window) == (13, 169, 169, 3)
    assert view.window_cell == (7, 7) and view.window_kind == "corner" and view.query_cell == (3, 3)
    stats = view.mask_stats
    assert (stats.regions, stats.masked_windows, stats.pairs) == (9, 15, 2401)
    assert list(stats.kinds.items()) == [("interior", (49, 0)), ("edge", (14, 1176)), ("corner", (1, 1776))]
    assert view.selected_regions == 4 and stats.masked_pairs[63] == 1776 and view.mask_check == 0
    # the corner window (rolled rows and columns 49–55): 4 rows and columns that did not wrap, 3 that did; regions
    # 3·1 + 1, 3·1 + 2, 3·2 + 1, 3·2 + 2; 49² − (16² + 12² + 12² + 9²) = 1776 pairs masked; query 24 is in region 4
    assert sorted(view.selected_labels.ravel().tolist()) == [4] * 16 + [5] * 12 + [7] * 12 + [8] * 9
    for att, b in zip(view.attention, (0, 1)):
        probs = t[f"stages.0.blocks.{b}.attn.probs"][63, :, 24].numpy()  # (heads, 49)
        assert att.probs.shape == (3, 49) and att.maps.tolist() == probs.reshape(3, 7, 7).tolist()
        assert att.top_weights.tolist() == probs.max(-1).tolist()
        assert att.self_weights.tolist() == probs[:, 24].tolist()
        assert [k for k, _r, _c in att.top_keys] == probs.argmax(-1).tolist()
        assert all(divmod(k, 7) == (r, c) for k, r, c in att.top_keys)
        assert att.row_sum_error < 1e-5
    regular, shifted = view.attention
    assert regular.masked is None and regular.largest_masked is None
    assert int(shifted.masked.sum()) == 49 - 16 and shifted.largest_masked < 1e-30  # it keeps its 16 region-mates
    assert view.bias_check == 0
    assert view.query_bias.tolist() == t["stages.0.blocks.1.rel_bias"][1, 24].tolist()
    table = model.stages[0].blocks[1].relative_position_bias_table.detach()
    assert view.chosen.bias_table.tolist() == table.tolist()


def test_stage_view_cost_and_merge_numbers(model):
    view = sw.stage_view(model, pixels(model), sw.Selection(7, 3, 0, 0, 0, 0, 0))
    cost = view.cost
    assert (cost.tokens, cost.partition.tokens_per_window, cost.channels) == (3136, 49, 96)
    assert (cost.msa.attention, cost.wmsa.attention, cost.msa.projections) == (1_888_223_232, 29_503_488, 115_605_504)
    assert cost.ratio == 64.0 and cost.padded_wmsa == cost.wmsa and view.resolution == 224
    mg = view.run.merge
    assert (mg.grid, mg.merged_grid, mg.padded_grid, mg.corner, mg.corner_has_padding) == (
        (56, 56), (28, 28), (56, 56), (12, 12), False)
    assert (mg.concatenated_channels, mg.output_channels) == (384, 192)
    assert mg.channel_ranges == ((0, 95), (96, 191), (192, 287), (288, 383))
    for i, (own, merged) in enumerate(mg.first_values()):
        assert own.tolist() == merged.tolist() == mg.concatenated[96 * i:96 * i + 3].tolist()
    assert sw.merge_corner((7, 10)) == (8, 10) and sw.merge_corner((13, 30)) == (12, 12)
    ex = view.worked_example
    assert ex.window_regions == [1, 2, 2, 4] and ex.rolled[3] == ["A2", "A3", "A4", "A1"]


def test_stage_view_at_m5_pads_and_resamples(model):
    view = sw.stage_view(model, pixels(model), sw.Selection(5, 2, 0, 0, 143, 12, 0))
    assert view.partition.padded == (60, 60) and view.partition.n_windows == 144
    assert view.partition.padding_added == (4, 4) and view.partition.tokens_per_window == 25
    assert (view.table_side, view.table_rows, view.checkpoint_table_side, view.checkpoint_table_rows) == (9, 81, 13, 169)
    assert view.cost.padded_wmsa.attention == 2 * 25 * 3600 * 96
    assert view.chosen.bias_table.tolist() == resize_bias_table(
        model.stages[0].blocks[0].relative_position_bias_table.detach(), 5).tolist()


def test_stage_view_reruns_another_shift_through_the_store(model):
    """A shift the checkpoint does not use re-runs the shifted block, stored under `key|s<shift>`; a stage no larger
    than one window ignores the shift (the model's rule)."""
    store = {}

    def memo(key, make):
        if key not in store:
            store[key] = make()
        return store[key]

    x = pixels(model)
    view = sw.stage_view(model, x, sw.Selection(7, 1, 0, 1, 63, 24, 0), "run", memo)
    assert sorted(store) == ["run", "run|s1"] and view.shifted is store["run|s1"]
    assert not view.shifted.traced and (view.partition.shift, view.checkpoint_shift) == (1, 3) and view.shift_key == "run|s1"
    again = sw.rerun_with_shift(model, store["run"], 1)
    assert view.attention[1].probs.tolist() == again.probs[63, :, 24].tolist()
    assert [k for k, _ in view.mask_stats.kinds.values()] == [49, 14, 1]
    assert view.mask_stats.kinds["corner"] == (1, 1032) and view.mask_stats.kinds["edge"] == (14, 588)
    small = sw.stage_view(model, x, sw.Selection(7, 5, 3, 1, 0, 30, 0), "s4", memo)
    assert small.clamped and (small.partition.window, small.partition.shift, small.partition.n_windows) == (7, 0, 1)
    assert small.shifted.traced and "s4|s0" not in store and small.mask_stats.masked_windows == 0


# ---- masks and statistics as displayed ------------------------------------------------------------------------

@pytest.mark.parametrize("hp, wp, window, shift", [
    (56, 56, 7, 3), (60, 60, 5, 2), (28, 28, 14, 7), (8, 12, 2, 1), (9, 15, 3, 2), (14, 14, 7, 6), (10, 10, 5, 0),
])
def test_displayed_mask_equals_pair_by_pair_region_comparison(hp, wp, window, shift):
    labels = region_labels(hp, wp, window, shift).numpy()
    mask = shift_mask(hp, wp, window, shift).numpy()
    per_window = sw.window_labels(labels, window)
    assert per_window.shape == (hp * wp // window ** 2, window, window)
    for w in range(per_window.shape[0]):
        np.testing.assert_array_equal(mask[w], sw.brute_force_mask(per_window[w]))


def test_brute_force_mask_compares_every_pair():
    labels = np.array([[0, 1], [3, 4]])
    expected = np.full((4, 4), MASK_VALUE, np.float32)
    np.fill_diagonal(expected, 0)
    np.testing.assert_array_equal(sw.brute_force_mask(labels), expected)
    np.testing.assert_array_equal(sw.brute_force_mask(np.zeros((3, 3), int)), np.zeros((9, 9)))


def test_swin_t_stage_one_mask_statistics_as_displayed(model):
    run = sw.run_stage(model, pixels(model), 7, 0)
    view = run.blocks[1]  # the traced SW-MSA block: what the page shows at M = 7, s = 3 on 56×56
    stats = sw.mask_stats(view.mask, view.labels, view.window)
    assert (view.window, view.shift, view.padded) == (7, 3, (56, 56))
    assert stats.regions == 9
    assert stats.masked_windows == 15
    assert stats.pairs == 2401
    assert stats.kinds == {"interior": (49, 0), "edge": (14, 1176), "corner": (1, 1776)}
    assert sorted(set(stats.masked_pairs)) == [0, 1176, 1776]
    assert stats.masked_pairs[63] == 1776 and stats.masked_pairs[7] == 1176 and stats.masked_pairs[56] == 1176
    regular = sw.mask_stats(run.blocks[0].mask, run.blocks[0].labels, 7)
    assert (regular.regions, regular.masked_windows) == (1, 0)


def test_window_index_map_is_the_rolled_partition():
    for hp, wp, m, s in [(8, 8, 4, 2), (6, 9, 3, 1), (12, 12, 4, 0), (4, 4, 2, 1)]:
        win, tok = sw.window_index_map(hp, wp, m, s)
        nw = wp // m
        for r, c in itertools.product(range(hp), range(wp)):
            rr, cc = (r - s) % hp, (c - s) % wp  # where (r, c) sits after the roll by (-s, -s)
            assert win[r, c] == (rr // m) * nw + cc // m
            assert tok[r, c] == (rr % m) * m + cc % m


# ---- the worked example ---------------------------------------------------------------------------------------

def test_worked_example_windows_are_exactly_the_reference():
    ex = sw.worked_example(4, 2, 1)
    assert ex.names[0] == ["A1", "A2", "A3", "A4"]
    assert ex.rolled == [["B2", "B3", "B4", "B1"], ["C2", "C3", "C4", "C1"], ["D2", "D3", "D4", "D1"],
                         ["A2", "A3", "A4", "A1"]]
    assert [" ".join(w[0]) + "/" + " ".join(w[1]) for w in ex.windows] == [
        "B2 B3/C2 C3", "B4 B1/C4 C1", "D2 D3/A2 A3", "D4 D1/A4 A1"]
    assert ex.window_regions == [1, 2, 2, 4]
    assert ex.raster[0] == ["A2", "A3", "A4", "B1"]  # the tutorial error, shown as such


# ---- cost ---------------------------------------------------------------------------------------------------

def test_cost_formulas_swin_t_stage_one():
    msa, wmsa = sw.msa_cost(56, 56, 96), sw.wmsa_cost(56, 56, 96, 7)
    assert msa.projections == wmsa.projections == 4 * 3136 * 96 ** 2 == 115_605_504
    assert msa.attention == 2 * 3136 ** 2 * 96 == 1_888_223_232
    assert wmsa.attention == 2 * 49 * 3136 * 96 == 29_503_488
    assert msa.attention / wmsa.attention == 3136 / 49
    fig = sv.cost_figure(sw.cost_curves(0, 4, 96, 7), 224)
    by_name = {d["name"]: d for d in fig["data"]}
    i = by_name["2(hw)²C (MSA attention)"]["x"].index(224)
    assert by_name["2(hw)²C (MSA attention)"]["y"][i] == msa.attention
    assert by_name["2M²hwC (W-MSA attention, M = 7)"]["y"][i] == wmsa.attention
    assert by_name["4hwC² (projections, both)"]["y"][i] == msa.projections
    # MSA and W-MSA are told apart by their markers as well as their colours
    symbols = {name: d["marker"]["symbol"] for name, d in by_name.items() if "markers" in d["mode"]}
    assert len(set(symbols.values())) == len(symbols) == 4


def test_cost_curves_at_a_resolution_and_where_msa_overtakes_the_projections():
    curves = sw.cost_curves(0, 4, 96, 7)
    assert (curves.stage, curves.patch, curves.channels, curves.window) == (0, 4, 96, 7)
    assert curves.at(224) == (sw.msa_cost(56, 56, 96), sw.wmsa_cost(56, 56, 96, 7))
    assert curves.at(230) == (sw.msa_cost(58, 58, 96), sw.wmsa_cost(58, 58, 96, 7))  # ⌈230/4⌉, off the curves
    # 2(hw)²C > 4hwC² exactly when hw > 2C: stage 1 (C = 96) from the first size on, stage 4 (C = 768) never here
    assert curves.crossing == 64 and sw.cost_curves(3, 4, 768, 7).crossing is None
    stage3 = sw.cost_curves(2, 4, 384, 7)  # 16 px a token: hw > 768 from a side of 28 tokens, 448 px
    assert stage3.crossing == 448
    i = stage3.resolutions.index(448)
    assert stage3.msa[i] > stage3.projections[i] and stage3.msa[i - 1] <= stage3.projections[i - 1]


# ---- figures ------------------------------------------------------------------------------------------------

def test_figures_carry_the_displayed_numbers():
    labels = region_labels(14, 14, 7, 3).numpy()
    wl = sw.window_labels(labels, 7)[3]
    mask = shift_mask(14, 14, 7, 3).numpy()[3]
    fig = sv.mask_figure(mask, wl, title="t", query=5)
    np.testing.assert_array_equal(fig["data"][0]["z"], mask)
    table = torch.randn(169, 3)
    small = resize_bias_table(table, 4).numpy()
    assert small.shape == (49, 3)
    grid = sv.bias_grid_figure(small, 4, 2, 5, title="t")
    np.testing.assert_array_equal(grid["data"][0]["z"], small[:, 2].reshape(7, 7))
    # the outlined block is what the query reads through relative_position_index
    rect = grid["layout"]["shapes"][0]
    r0, c0 = int(rect["y0"] + 0.5), int(rect["x0"] + 0.5)
    qi, qj = divmod(5, 4)
    bias = small[:, 2][relative_position_index(4)[5].numpy()].reshape(4, 4)
    np.testing.assert_array_equal(bias, small[:, 2].reshape(7, 7)[r0:r0 + 4, c0:c0 + 4][::-1, ::-1])
    assert (r0, c0) == (qi, qj)
    # a clamped 3×3 window inside a table for M = 4 reads the central rows
    grid = sv.bias_grid_figure(small, 4, 0, 4, used=3, title="t")
    rect = grid["layout"]["shapes"][0]
    r0, c0 = int(rect["y0"] + 0.5), int(rect["x0"] + 0.5)
    bias = small[:, 0][relative_position_index(3, 4)[4].numpy()].reshape(3, 3)
    np.testing.assert_array_equal(bias, small[:, 0].reshape(7, 7)[r0:r0 + 3, c0:c0 + 3][::-1, ::-1])
    q = sv.bias_query_figure(bias.reshape(-1), 4, title="t")
    np.testing.assert_array_equal(q["data"][0]["z"], bias)


def test_figure_specs_are_valid_plotly():
    """The page builds its figures without validation (for speed): every figure function's output must validate."""
    import plotly.graph_objects as go

    labels = region_labels(14, 14, 7, 3).numpy()
    table = np.random.default_rng(0).standard_normal((169, 4)).astype(np.float32)
    specs = [sv.mask_figure(shift_mask(14, 14, 7, 3).numpy()[3], sw.window_labels(labels, 7)[3], title="t", query=2),
             sv.bias_table_figure(table, 7, title="t"), sv.bias_grid_figure(table, 7, 1, 10, title="t"),
             sv.bias_grid_figure(table, 7, 1, 10, 5, title="t"), sv.bias_query_figure(table[:49, 0], 3, title="t"),
             sv.cost_figure(sw.cost_curves(2, 4, 384, 7), 224)]
    for spec in specs:
        go.Figure(spec)  # raises on any invalid property
        assert spec["layout"]["dragmode"] is False  # a finger scrolling a phone's page is not captured
        for axis in ("xaxis", "yaxis"):  # plotly.js 3 draws no title given as a bare string (sent unvalidated)
            assert spec["layout"][axis]["title"]["text"], axis


def test_the_mask_crosses_out_exactly_its_masked_cells():
    labels = region_labels(14, 14, 7, 3).numpy()
    for window, crossed in ((3, True), (0, False)):  # the corner window (4 regions), an unmasked one
        mask = shift_mask(14, 14, 7, 3).numpy()[window]
        wl = sw.window_labels(labels, 7)[window]
        fig = sv.mask_figure(mask, wl, title="t", query=5)
        assert len(fig["data"]) == 1 + crossed
        if crossed:
            tokens = fig["data"][0]["x"]
            cells = {(tokens.index(y), tokens.index(x)) for x, y in zip(fig["data"][1]["x"], fig["data"][1]["y"])}
            assert cells == set(zip(*np.nonzero(mask == MASK_VALUE)))
    big = shift_mask(27, 27, 9, 4).numpy()[8]  # 81 tokens a window: cells too small for a cross
    fig = sv.mask_figure(big, sw.window_labels(region_labels(27, 27, 9, 4).numpy(), 9)[8], title="t")
    assert (big == MASK_VALUE).any() and len(fig["data"]) == 1


def test_the_bias_colour_scale_keeps_its_order_in_greyscale():
    """Negative, 0 and positive bias stay in order without hue: the scale's luminance rises monotonically."""
    from plotly.colors import get_colorscale, unlabel_rgb, hex_to_rgb

    def luminance(colour):
        rgb = hex_to_rgb(colour) if colour.startswith("#") else unlabel_rgb(colour)
        return float(linear(rgb) @ np.array([0.2126, 0.7152, 0.0722]))

    from plotly.colors import PLOTLY_SCALES

    assert sv.BIAS_SCALE in PLOTLY_SCALES  # a name plotly.js knows as spelt (the page sends figures unvalidated)
    values = [luminance(c) for _at, c in get_colorscale(sv.BIAS_SCALE)]
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert values[-1] / max(values[0], 1e-3) > 10  # far apart: the two ends never look alike


def test_region_borders_are_drawn_inside_windows():
    """The border between regions 0 and 1 at column L − s (inside the last column of windows) is dashed dark: regions
    are told apart by their outlines as well as their colours."""
    labels = region_labels(14, 14, 7, 3).numpy()  # bands: 0–6, 7–10, 11–13
    cell = 12
    picture = np.asarray(sv.labels_picture(labels, 7, cell))
    column = picture[: 7 * cell, 11 * cell - 1]  # the pixel column just left of the border at column 11
    assert (column.max(-1) <= 40).sum() >= 7 * cell // 3
    inside = picture[: 7 * cell, 9 * cell + cell // 2]  # a pixel column inside region 1, away from any border
    assert (inside.max(-1) <= 40).sum() < cell  # only where a row of region numbers or a window border crosses it


# ---- pictures: colour-blind-safe and distinguishable ------------------------------------------------------------

def _lab(linear):
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


CVD = {name: m for name, m in DEFICIENCIES.items() if name not in ("normal", "achromatopsia")}


def _delta_e(a, b, vision: str | None) -> float:
    la, lb = linear(a), linear(b)
    if vision:
        la, lb = np.clip(la @ CVD[vision].T, 0, 1), np.clip(lb @ CVD[vision].T, 0, 1)
    return float(np.linalg.norm(_lab(la) - _lab(lb)))


@pytest.mark.parametrize("vision", [None, *CVD])
def test_window_and_strip_colours_stay_apart_under_colour_vision_deficiencies(vision):
    """Rendered on a mid-grey image: the four window tints, the wrapped-row and wrapped-column strips and the padding
    differ by ΔE ≥ 10 (CIE76) for normal vision and simulated protanopia, deuteranopia and tritanopia; strips are
    also told apart by their hatch directions."""
    photo = Image.new("RGB", (64, 64), (128, 128, 128))
    cell = 10
    picture = np.asarray(sv.partition_picture(photo, sw.WindowPartition((14, 14), 4, 2, 4), cell))

    def colour(r, c):  # the centre pixel of token (r, c): tint only (hatch lines avoided by sampling the mode)
        block = picture[r * cell + 2:(r + 1) * cell - 2, c * cell + 2:(c + 1) * cell - 2].reshape(-1, 3)
        values, counts = np.unique(block, axis=0, return_counts=True)
        return values[counts.argmax()]

    # tokens in the image: with s = 2 the windows of the rolled map start at rows/columns 2, 6, …; the wrapped strips
    # are rows 0–1 and columns 0–1 (hatched, tinted on top of their windows' colours)
    windows = {"w00": colour(3, 3), "w01": colour(3, 7), "w10": colour(7, 3), "w11": colour(7, 7)}
    pairs = list(itertools.combinations(windows.values(), 2))  # in a 2×2 checker every pair of colours touches
    pairs += [(colour(0, 8), colour(8, 0))]  # a wrapped-row strip vs a wrapped-column strip
    pairs += [(colour(0, 8), colour(3, 8)), (colour(8, 0), colour(8, 3))]  # each strip vs the rest of its window
    pairs += [(colour(15, 8), w) for w in windows.values()]  # padding vs every window colour
    worst = min(_delta_e(a, b, vision) for a, b in pairs)
    assert worst >= 10, worst


@pytest.mark.parametrize("vision", [None, *CVD])
def test_region_colours_are_distinct(vision):
    colours = [sv._rgb(c) for c in sv.REGION_COLOURS]
    worst = min(_delta_e(a, b, vision) for a, b in itertools.combinations(colours, 2))
    assert worst >= 8, worst  # the region numbers are written on the map as well


def test_partition_picture_geometry():
    photo = Image.new("RGB", (50, 30), (200, 180, 160))
    picture = sv.partition_picture(photo, sw.WindowPartition((6, 10), 4, 2, 5), 7, selected=3)
    assert picture.size == (84, 56)
    regular = np.asarray(sv.partition_picture(photo, sw.WindowPartition((6, 10), 4, 0, 5), 7))
    # padding rows 6–7 are hatched grey: darker than the tinted image above them on average
    assert regular[6 * 7:, :].mean() < regular[:6 * 7, :].mean()


def test_feature_and_label_pictures():
    rgb = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    rows, cols = sw.strip_masks((8, 8), 2)
    assert rows[:2].all() and not rows[2:].any() and cols[:, :2].all() and not cols[:, 2:].any()
    picture = sv.feature_picture(sw.rolled(rgb, 2), 4, 5, strips=(sw.rolled(rows, 2), sw.rolled(cols, 2)),
                                 padding=sw.rolled(sw.padding_mask((7, 7), (8, 8)), 2))
    assert picture.size == (40, 40)
    np.testing.assert_array_equal(sw.rolled(rows, 2)[6:], np.ones((2, 8), bool))
    labels = region_labels(8, 8, 4, 2).numpy()
    assert sv.labels_picture(labels, 4, 6).size == (48, 48)
    assert sv.labels_picture(labels, 4, 6, back=2).size == (48, 48)
    merge, shown = sv.merge_picture(Image.new("RGB", (40, 28)), 4, (7, 10), width=200)
    assert shown == (8, 10) and merge.size[0] == 10 * 20
    mosaic = sv.head_mosaic(np.random.default_rng(1).random((3, 4, 4)), 5, 10, np.eye(4, dtype=bool), 3)
    assert mosaic.size == (3 * 40 + 2 * 6, 40)
    fp = sv.window_attention_picture(Image.new("RGB", (32, 32)), sw.WindowPartition((8, 8), 4, 2, 4), 6, 3, 0,
                                     np.ones(16))
    assert fp.size == (48, 48)


def _pixel_borders(ids: np.ndarray, cell: int, width: int) -> np.ndarray:
    """The reference for `sv._boundaries`: every pixel of the upscaled map within `width` px of a pixel pair (i, i+1)
    whose ids differ, found pixel by pixel."""
    px = np.repeat(np.repeat(ids, cell, 0), cell, 1)
    out = np.zeros(px.shape, bool)
    for axis in (0, 1):
        moved = np.moveaxis(px, axis, 0)
        target = np.moveaxis(out, axis, 0)  # a view: writing it writes `out`
        for i in np.nonzero((moved[1:] != moved[:-1]).any(1))[0]:
            differs = moved[i + 1] != moved[i]
            for j in range(max(0, i + 1 - width), min(len(moved), i + 1 + width)):
                target[j] |= differs
    return out


@pytest.mark.parametrize("seed", range(40))
def test_borders_are_every_pixel_near_a_change_of_token(seed):
    """`_boundaries` builds the pixel mask from the token grid's borders: the same pixels as comparing every pixel
    of the upscaled map with its neighbours, `width` px on each side, for any cell size and width."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 3, rng.integers(1, 9, 2))
    cell, width = int(rng.integers(1, 9)), int(rng.integers(1, 4))
    np.testing.assert_array_equal(sv._boundaries(ids, cell, width), _pixel_borders(ids, cell, width))


@pytest.mark.parametrize("shift", [0, 2])
def test_window_outline_and_colours_over_the_photo(shift):
    """A window's attention picture: inside the window each pixel is 20 % photo and 80 % of its key's colour, outside
    45 % of the photo, padding outside darker still and hatched; the window's border (also where it meets the map's
    edge) is a white line 2 px wide in a black band 6 px wide, drawn only there."""
    part = sw.WindowPartition((7, 7), 4, shift, 4)  # padded to 8 × 8: row and column 7 are padding
    photo = Image.new("RGB", (28, 28), (100, 150, 200))
    cell, selected = 10, 3  # the corner window: with a shift its tokens wrap around the map's edges
    values = np.linspace(0, 1, 16)
    picture = np.asarray(sv.window_attention_picture(photo, part, cell, selected, 5, values)).astype(int)
    ids, tok = part.index_map()
    inside = ids == selected
    edge = np.pad(inside, 1)
    white = _pixel_borders(edge.astype(int), cell, 1)[cell:-cell, cell:-cell]
    band = _pixel_borders(edge.astype(int), cell, 3)[cell:-cell, cell:-cell]
    query_r, query_c = np.argwhere(inside & (tok == 5))[0]
    framed = np.zeros(band.shape, bool)  # the query's cell: its frame is drawn last, over the outline
    framed[query_r * cell:(query_r + 1) * cell, query_c * cell:(query_c + 1) * cell] = True
    assert (picture[white & ~framed] == 255).all()
    assert (picture[band & ~white & ~framed] == 0).all()
    assert not ((picture == 0).all(-1) & ~band & ~framed).any()  # black only in the band and the query's frame
    colours = sv.colourise(values, 1.0, sv.CMAP)
    for r, c in itertools.product(range(8), range(8)):
        if (r, c) == (query_r, query_c):
            continue  # framed in yellow
        centre = picture[r * cell + cell // 2, c * cell + cell // 2]
        under = np.array((100, 150, 200)) if r < 7 and c < 7 else np.array(sv.PAD_GREY)  # the photo, or grey
        if inside[r, c]:
            expected = under * 0.2 + colours[tok[r, c]] * 0.8
        elif r < 7 and c < 7:
            expected = under * 0.45
        else:
            expected = under * 0.45 * 0.15 + sv.PAD_GREY[0] * 0.85
            block = picture[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell]
            assert (block == 30).all(-1).any()  # hatched
            centre = block[~(block == 30).all(-1) & ~band[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell]][0]
        np.testing.assert_allclose(centre, expected, atol=1)
