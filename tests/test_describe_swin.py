"""The Swin page's text alternatives (`vitviz.describe.swin`) against the arrays they describe: the real Swin-T's
stage views (the checkpoint's shift, a padded map, a shift it does not use, a stage no larger than a window) and
positions, shares, extremes and costs computed here independently, from the paper's rules."""
from __future__ import annotations

import re

import numpy as np
import pytest

import vitviz
from vitviz import swin_windows as sw
from vitviz.describe import swin as d
from vitviz.describe.common import percent, span
from vitviz.images import load_sample
from vitviz.models.swin import MASK_VALUE
from vitviz.preprocess import resize_and_crop, to_pixel_values
from vitviz.viz import swin as sv


@pytest.fixture(scope="module")
def model():
    return vitviz.load_model("swin-tiny", device="cpu")


@pytest.fixture(scope="module")
def pixels(model):
    return to_pixel_values(resize_and_crop(load_sample("cat"), model.preprocessing, None), model.preprocessing)


# (M, s, stage, window, query): the checkpoint (56×56, corner window), 56 padded to 60 with M = 5, a shift the
# checkpoint does not use, and stage 4 (7×7 ≤ M: one window, no shift)
CASES = {"checkpoint": (7, 3, 0, 63, 24), "padded": (5, 2, 0, 143, 7), "rerun": (7, 1, 1, 10, 0),
         "clamped": (7, 3, 3, 0, 30)}


@pytest.fixture(scope="module")
def views(model, pixels):
    return {name: sw.stage_view(model, pixels, sw.Selection(M, s, stage, 0, win, q, 0))
            for name, (M, s, stage, win, q) in CASES.items()}


def expected_indices(values) -> str:
    """Sorted indices as the text writes them, worked out here from the set itself."""
    values, parts, start = sorted(set(values)), [], None
    for i, v in enumerate(values):
        start = v if start is None else start
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(span(start, v))
            start = None
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def test_indices_and_listing():
    assert d.indices([0, 1, 2, 53, 54, 55]) == "0–2 and 53–55" == expected_indices([53, 0, 54, 1, 2, 55])
    assert d.indices([4]) == "4" and d.listing(["a", "b", "c"]) == "a, b and c"
    assert d.small_share(0.0) == d.small_share(3.7e-44) == "0 %" and d.small_share(0.25) == "25 %"
    assert d.small_share(2e-6) == "0.0002 %"


# ---- 1. partition -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_partition_names_the_windows_padding_and_where_the_selected_window_lies(views, name):
    view = views[name]
    M, _s, _stage, win, _q = CASES[name]
    for block, v in enumerate(view.blocks):
        part, text = v.partition, d.partition(v.partition, win, block)
        (h, w), m, s = part.grid, part.window, part.shift
        hp, wp = -(-h // m) * m, -(-w // m) * m
        assert f"the {h}×{w} token map" in text and f"{hp // m}×{wp // m} = {v.n_windows} windows of {m}×{m}" in text
        assert (f"{hp - h} rows at the bottom, {wp - w} columns at the right" in text) == ((hp, wp) != (h, w))
        assert (f"Shift s = {s}:" in text) == (s > 0)
        # the selected window: rows wr·m … wr·m + m − 1 of the map rolled by (−s, −s), i.e. rows + s (mod Hp) of
        # the image
        wr, wc = divmod(win, wp // m)
        rows = [(wr * m + i + s) % hp for i in range(m)]
        cols = [(wc * m + j + s) % wp for j in range(m)]
        where = f"rows {expected_indices(rows)}, columns {expected_indices(cols)}"
        assert f"Window {win}, framed in yellow: {where}" in text
        wraps = rows != sorted(rows) or cols != sorted(cols)
        assert (" pieces." in text) == wraps, text


def test_partition_of_the_corner_window_wraps_in_four_pieces(views):
    text = d.partition(views["checkpoint"].shifted.partition, 63, 1)
    assert text.startswith("Block 2 (shifted): the 56×56 token map over the image, cut into 8×8 = 64 windows of 7×7")
    assert text.endswith("Window 63, framed in yellow: rows 0–2 and 52–55, columns 0–2 and 52–55: 4 pieces.")
    regular = d.partition(views["checkpoint"].regular.partition, 63, 0)
    assert regular.endswith("Window 63, framed in yellow: rows 49–55, columns 49–55 (the bottom right).")


# ---- 2. cyclic shift ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["checkpoint", "padded", "rerun"])
def test_roll_says_where_the_wrapped_strips_and_the_padding_are_after_each_step(views, name):
    part = views[name].partition
    (h, w), (hp, wp), s = part.grid, part.padded, part.shift
    for t in range(s + 1):
        text = d.roll(part, t, t == s)
        rows = [(i - t) % hp for i in range(s)]  # row i of the map is at row i − t after a roll by (−t, −t)
        cols = [(j - t) % wp for j in range(s)]
        assert f"The first {s} rows of the map (vermilion, hatched \\) are at rows {expected_indices(rows)}," in text
        assert f"its first {s} columns (blue, hatched /) at columns {expected_indices(cols)}." in text
        if (hp, wp) != (h, w):
            pad_rows, pad_cols = [(i - t) % hp for i in range(h, hp)], [(j - t) % wp for j in range(w, wp)]
            assert (f"Padding (grey, hatched): rows {expected_indices(pad_rows)}, columns {expected_indices(pad_cols)}."
                    in text)
        else:
            assert "Padding" not in text
        assert ("White lines cut it into its" in text) == (t == s)
        assert (f"rolled by (−{t}, −{t})" in text) == (t > 0)


def test_roll_without_a_shift():
    text = d.roll(sw.WindowPartition((14, 14), 7, 0, 4), 0, True)
    assert "s = 0: nothing wraps." in text and "its 4 windows of 7×7" in text


def region_bands(length: int, window: int, shift: int) -> list[range]:
    """The three bands r = 0, 1, 2 of an axis of the rolled map (§3.2): [0, L−M), [L−M, L−s), [L−s, L)."""
    return [range(0, length - window), range(length - window, length - shift), range(length - shift, length)]


@pytest.mark.parametrize("name", ["checkpoint", "padded", "rerun"])
def test_regions_name_each_region_where_it_is_on_the_rolled_map_and_in_the_image(views, name):
    view = views[name]
    part, labels = view.partition, view.shifted.labels
    (hp, wp), m, s = part.padded, part.window, part.shift
    rows_bands, cols_bands = region_bands(hp, m, s), region_bands(wp, m, s)
    for back in (0, s):
        text = d.regions(labels, m, back)
        for rh in range(3):
            for rw in range(3):
                rows = [(i + back) % hp for i in rows_bands[rh]]
                cols = [(j + back) % wp for j in cols_bands[rw]]
                assert (f"region {3 * rh + rw}: rows {expected_indices(rows)}, columns {expected_indices(cols)}"
                        in text), (rh, rw, text)
        # the windows of the last row and column mix regions: every window with a mask
        mixed = hp // m + wp // m - 1
        assert mixed == view.mask_stats.masked_windows
        assert f"{mixed} of the {part.n_windows} windows hold more than one region" in text
    assert d.regions(labels, m, 0).startswith(f"The rolled {hp}×{wp} map has 9 shift regions")


def test_one_region_without_a_shift(views):
    view = views["clamped"]
    text = d.regions(view.shifted.labels, view.partition.window, 0)
    assert text == ("The rolled 7×7 map has 1 shift region, numbered and outlined (dashed); the 7×7 windows outlined "
                    "in black: region 0: rows 0–6, columns 0–6.")


def test_window_regions_count_the_tokens_of_each_region(views):
    view = views["checkpoint"]  # the corner window: (M − s)² = 16, (M − s)·s = 12 twice, s² = 9 tokens
    text = d.window_regions(view.selected_labels, 63)
    assert text == ("Region labels inside window 63 of the rolled map, 4 regions: "
                    "region 4: 16 tokens, rows 0–3, columns 0–3 (the top left); "
                    "region 5: 12 tokens, rows 0–3, columns 4–6 (the top right); "
                    "region 7: 12 tokens, rows 4–6, columns 0–3 (the bottom left); "
                    "region 8: 9 tokens, rows 4–6, columns 4–6 (the bottom right).")
    assert d.window_regions(np.zeros((7, 7), int), 0) == ("Region labels inside window 0 of the rolled map: all 49 "
                                                          "tokens are in region 0, nothing is masked.")


# ---- 3. mask and attention ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, win", [("checkpoint", 63), ("checkpoint", 7), ("checkpoint", 0), ("padded", 143),
                                       ("rerun", 10), ("clamped", 0)])
def test_mask_counts_the_masked_pairs_and_the_query_s_keys(views, name, win):
    view = views[name]
    query = CASES[name][4]
    labels = sw.window_labels(view.shifted.labels, view.partition.window)[win]
    mask = (view.shifted.mask[win] if view.shifted.mask is not None
            else np.zeros((labels.size,) * 2, np.float32))
    text = d.mask(mask, labels, win, query)
    n = labels.size
    sizes = np.unique(labels, return_counts=True)[1]
    allowed = int((sizes ** 2).sum())  # a pair may attend when both tokens are in the same region
    assert f"Mask of window {win}: {n}×{n} = {n * n} pairs" in text
    assert int((mask == MASK_VALUE).sum()) == n * n - allowed
    if allowed == n * n:
        assert "All of them are 0 (light)" in text
    else:
        assert f"{n * n - allowed} of them are masked at −100" in text and f"{allowed} are 0 (light)" in text
        own = int((labels.reshape(-1) == labels.reshape(-1)[query]).sum())
        assert f"may attend to {own} of the {n} keys" in text
        assert f"holds {len(sizes)} regions of {d.listing([str(x) for x in sizes])} tokens" in text


def test_the_corner_window_s_mask_as_the_page_states_it(views):
    view = views["checkpoint"]
    text = d.mask(view.selected_mask, view.selected_labels, 63, 24)
    assert "1776 of them are masked at −100" in text and "625 are 0 (light)" in text
    assert "Query 24 (row 3, column 3, region 4; its row outlined) may attend to 16 of the 49 keys." in text


@pytest.mark.parametrize("name", CASES)
def test_footprint_quotes_the_real_shares_of_the_query_s_attention(views, name):
    view = views[name]
    _M, _s, _stage, win, query = CASES[name]
    for block, (v, att) in enumerate(zip(view.blocks, view.attention)):
        text = d.footprint(att, v.partition, win, block)
        mean = v.probs[win, :, query].astype(np.float64).mean(0)  # (M²,) the traced rows, averaged here
        order = np.argsort(-mean, kind="stable")
        cumulative = np.cumsum(mean[order]) / mean.sum()
        count = int(np.argmax(cumulative >= 0.5 - 1e-12)) + 1
        assert f"{percent(cumulative[count - 1])} of it on {count} of {mean.size} keys" in text, text
        top = int(order[0])
        side = v.partition.window
        named = (f"the query itself (key {top})" if top == query else
                 f"key {top} (row {top // side}, column {top % side})")
        assert f"the strongest is {named} with {percent(mean[top] / mean.sum())}" in text
        masked = att.masked
        if masked is not None and masked.any():
            share = mean[masked.reshape(-1)].sum()
            assert share < 1e-20  # e^−100 of the unmasked weights
            assert f"The {int(masked.sum())} masked keys get 0 %." in text
        else:
            assert "masked" not in text
        assert f"the mean over {v.probs.shape[1]} heads" in text


@pytest.mark.parametrize("name", CASES)
def test_head_mosaic_names_each_head_s_strongest_key(views, name):
    view = views[name]
    _M, _s, _stage, win, query = CASES[name]
    for block, (v, att) in enumerate(zip(view.blocks, view.attention)):
        text = d.head_mosaic(att, block)
        probs = v.probs[win, :, query]  # (heads, M²)
        items = re.search(r"The strongest key of each head: (.*?)\.( |$)", text).group(1).split("; ")
        seen = []
        for item in items:
            heads = [int(h) for h in re.findall(r"\d+", item.split(":")[0])]
            key = int(re.search(r"key (\d+)", item).group(1))
            for h in heads:
                assert probs[h - 1].argmax() == key, (h, item)
                assert percent(probs[h - 1].max()) in item or " to " in item
            seen += heads
        assert sorted(seen) == list(range(1, probs.shape[0] + 1))
        if att.masked is not None and att.masked.any():
            assert probs[:, att.masked.reshape(-1)].sum(1).max() < 1e-20
            assert "masked keys get 0 % in every head" in text


# ---- 4. relative position bias ------------------------------------------------------------------------------------

def offset_row(dy: int, dx: int, window: int) -> int:
    """The table row of offset (dy, dx) (Eq. 4's index)."""
    return (dy + window - 1) * (2 * window - 1) + (dx + window - 1)


def near_and_far_by_hand(table: np.ndarray, window: int) -> tuple[float, float]:
    near = [table[offset_row(dy, dx, window)] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    r = window - 1
    far = [table[offset_row(dy, dx, window)] for dy in range(-r, r + 1) for dx in range(-r, r + 1)
           if max(abs(dy), abs(dx)) == r]
    return float(np.mean(near)), float(np.mean(far))


@pytest.mark.parametrize("name", ["checkpoint", "padded", "clamped"])
def test_bias_table_extremes_and_their_offsets(views, name):
    view = views[name]
    M = CASES[name][0]
    table = view.chosen.bias_table.astype(np.float64)
    text = d.bias_table(table, M, 0)
    assert f"{table.shape[0]} rows, one per offset (dy, dx) from −{M - 1} to +{M - 1}, × {table.shape[1]} heads" in text
    found = re.search(r"Values from (\S+) \(head (\d+), offset \(dy ([-+]\d+), dx ([-+]\d+)\)\) to (\S+) \(head (\d+), "
                      r"offset \(dy ([-+]\d+), dx ([-+]\d+)\)\)", text)
    low, lh, ldy, ldx, high, hh, hdy, hdx = found.groups()
    assert table[offset_row(int(ldy), int(ldx), M), int(lh) - 1] == table.min()
    assert table[offset_row(int(hdy), int(hdx), M), int(hh) - 1] == table.max()
    assert float(low) == pytest.approx(table.min(), rel=1e-2) and float(high) == pytest.approx(table.max(), rel=1e-2)
    near, far = near_and_far_by_hand(table, M)
    assert d.near_and_far(table, M) == pytest.approx((near, far))
    assert f"Mean bias within one token {near:+.3g}, at the largest offsets (±{M - 1}) {far:+.3g}." in text


@pytest.mark.parametrize("name", ["checkpoint", "padded", "clamped"])
def test_bias_grid_states_the_outlined_block_the_figure_outlines(views, name):
    view = views[name]
    M, query, head = CASES[name][0], CASES[name][4], 1
    table, used = view.chosen.bias_table, view.partition.window
    text = d.bias_grid(table, M, head, query, used)
    values = table[:, head].astype(np.float64)
    assert f"{values[offset_row(0, 0, M)]:.3g} at (0, 0)" in text
    low, high = int(values.argmin()), int(values.argmax())
    assert f"from {values[low]:.3g} at (dy {low // (2 * M - 1) - M + 1:+d}, dx {low % (2 * M - 1) - M + 1:+d})" in text
    assert f"to {values[high]:.3g} at (dy {high // (2 * M - 1) - M + 1:+d}" in text
    # the figure's outline: rows r0 … r0 + m − 1 of the grid, whose offsets are r − (M − 1)
    rect = sv.bias_grid_figure(table, M, head, query, used, title="t")["layout"]["shapes"][0]
    r0, c0 = int(rect["y0"] + 0.5), int(rect["x0"] + 0.5)
    dy = f"{r0 - M + 1:+d} … {r0 + used - 1 - M + 1:+d}"
    dx = f"{c0 - M + 1:+d} … {c0 + used - 1 - M + 1:+d}"
    assert (f"Outlined: the {used}×{used} offsets query {query} (row {query // used}, column {query % used}) reads, "
            f"dy {dy} and dx {dx}.") in text


@pytest.mark.parametrize("name", ["checkpoint", "padded"])
def test_query_bias_extremes_are_the_traced_bias(views, name):
    view = views[name]
    query = CASES[name][4]
    bias = view.chosen.rel_bias[0, query].astype(np.float64)  # the traced B row of the query, head 1
    m = view.partition.window
    text = d.query_bias(view.query_bias, query, 0)
    low, high = int(bias.argmin()), int(bias.argmax())
    assert (f"keys from {bias[low]:.3g} (row {low // m}, column {low % m}) to {bias[high]:.3g} (row {high // m}, "
            f"column {high % m})." in text)
    assert text.endswith(f"On itself: {bias[query]:.3g}.")


# ---- 5. patch merging, 6. cost ------------------------------------------------------------------------------------

def test_stage_grids_and_merging(views):
    view = views["checkpoint"]
    texts = [d.stage_grid(layout, i) for i, layout in enumerate(view.plan.stages)]
    for i, text in enumerate(texts):
        side, px = -(-224 // (4 * 2 ** i)), 4 * 2 ** i
        assert text == (f"Stage {i + 1}: the image under its {side}×{side} token grid, each token covering "
                        f"{px}×{px} px, {96 * 2 ** i} channels.")
    text = d.merge(view.run.merge, 0)
    assert "The top-left 12×12 of stage 1's 56×56 tokens over the image, in 36 groups of 2×2" in text
    assert "x0 top left, x1 bottom left, x2 top right and x3 bottom right" in text
    assert "56×56 tokens × 96 channels become 28×28 × 384, then × 192" in text and "pad" not in text
    odd = sw.MergeView(grid=(7, 10), merged_grid=(4, 5), channels=8, merged_shape=(1, 20, 16), group=np.zeros((4, 8)),
                       concatenated=np.zeros(32), checks={})
    text = d.merge(odd, 2)
    assert "The top-left 8×10 of stage 3's 7×10 tokens" in text and "in 20 groups of 2×2" in text
    assert "Zero tokens pad the odd side" in text and "7×10 tokens × 8 channels become 4×5 × 32, then × 16" in text
    # the merging picture's labels: x0 … x3 at (dh, dw) = (0, 0), (1, 0), (0, 1), (1, 1) of each group
    assert sw.MERGE_OFFSETS == ((0, 0), (1, 0), (0, 1), (1, 1))


@pytest.mark.parametrize("stage, channels, phrase", [
    (0, 96, "MSA's attention term is above the projections at every size shown."),
    (2, 384, "MSA's attention term overtakes the projections from 448 px on."),
    (3, 768, "MSA's attention term stays below the projections at every size shown."),
])
def test_cost_at_the_marked_resolution(stage, channels, phrase):
    curves = sw.cost_curves(stage, 4, channels, 7)
    text = d.cost(curves, 224)
    side = -(-224 // (4 * 2 ** stage))
    msa, wmsa = 2 * (side * side) ** 2 * channels, 2 * 49 * side * side * channels
    assert phrase in text
    assert (f"At 224 px (dotted line; {side}×{side} tokens): MSA attention {d.multiply_adds(msa)}, W-MSA attention "
            f"{d.multiply_adds(wmsa)} (M = 7), {msa / wmsa:.1f}× less; projections "
            f"{d.multiply_adds(4 * side * side * channels ** 2)}.") in text


def test_cost_of_stage_one_as_the_page_states_it(views):
    view = views["checkpoint"]
    text = d.cost(view.cost_curves, view.resolution)
    assert "MSA attention 1.89 G, W-MSA attention 29.50 M (M = 7), 64.0× less; projections 115.61 M." in text
