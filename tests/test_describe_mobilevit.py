"""The MobileViT page's text alternatives against the arrays they describe: a real (preset, random-weight) run at
sizes and patches that need a resize and that do not, the pictures' own pixels where a description names a place,
and small arrays built so that the answer is known."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from vitviz import mobilevit_blocks as mb
from vitviz.describe import mobilevit as describe
from vitviz.describe.common import describe_distribution, grid_region, percent
from vitviz.models.mobilevit import PRESETS, MobileViT
from vitviz.viz import mobilevit as mv

# (input H, W), patch: maps of 12 × 16, 6 × 8 and 3 × 4 (the last resized to 4 × 4 for 2 × 2 patches); 13 × 10,
# 7 × 5 and 4 × 3 (every one resized for 3 × 5); 8 × 8, 4 × 4 and 2 × 2 (resized for 3 × 3)
RUNS = [((96, 128), (2, 2)), ((100, 76), (3, 5)), ((64, 64), (3, 3))]


@pytest.fixture(scope="module")
def runs():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: a second thread only waits (as in tests/test_mobilevit.py)
    model = MobileViT(PRESETS["mobilevit-xxs"]).eval()
    out = {}
    for size, patch in RUNS:
        x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(7))
        out[size, patch] = mb.run_blocks(model, mb.trunk(model, x), patch)
    torch.set_num_threads(threads)
    return out


def blocks(runs):
    return [block for run in runs.values() for block in run.blocks.values()]


def test_strongest_ninth_has_the_highest_mean_of_the_nine():
    rng = np.random.default_rng(1)
    for h in range(1, 9):
        for w in range(1, 9):
            values = rng.normal(size=(h, w))
            rows, cols = describe.strongest_ninth(values)
            means = [values[np.ix_(r, c)].mean() for r in np.array_split(np.arange(h), 3)
                     for c in np.array_split(np.arange(w), 3) if r.size and c.size]
            assert values[np.ix_(rows, cols)].mean() == max(means)
    values = np.zeros((9, 9))
    values[0:3, 6:9] = 1  # the top right ninth
    rows, cols = describe.strongest_ninth(values)
    assert grid_region(rows, cols, values.shape) == "rows 0–2, columns 6–8 (the top right)"


def test_feature_maps_name_their_range_extremes_and_strongest_ninth(runs):
    for block in blocks(runs):
        for maps, label in ((block.conv3, "3×3 conv, BN, SiLU"), (block.taps["local"], "1×1 conv → X_L"),
                            (block.taps["fused"], "fused")):
            for channel in (0, maps.shape[0] - 1):
                values = maps[channel].astype(np.float64)
                text = describe.feature_map(maps, channel, label)
                low = np.unravel_index(np.argmin(values), values.shape)
                high = np.unravel_index(np.argmax(values), values.shape)
                h, w = values.shape
                assert text.startswith(f"{label}, channel {channel}, a {h}×{w} map from dark violet")
                assert (f"values from {values[low]:.3g} (row {low[0]}, column {low[1]}) to {values[high]:.3g} "
                        f"(row {high[0]}, column {high[1]})") in text
                rows, cols = describe.strongest_ninth(values)
                assert text.endswith(f"strongest on average in {grid_region(rows, cols, values.shape)}.")
                # the picture agrees: its brightest cell (viridis: yellow is the lightest) is the maximum
                picture = np.asarray(mv.feature_picture(values, 1).convert("L"))
                assert picture[high] == picture.max() and picture[low] == picture.min()


def test_a_constant_feature_map_says_so():
    text = describe.feature_map(np.full((2, 3, 4), 0.25), 1, "projected")
    assert text == "projected, channel 1, a 3×4 map: every value is 0.25 (all dark violet)."


def test_offset_map_quotes_the_selected_pixels_place_and_its_sequence(runs):
    for block in blocks(runs):
        u = block.unfolding
        hr, wr = u.resized
        offsets, patches = u.offsets(), u.patches()
        for r, c in {(0, 0), (hr - 1, wr - 1), (hr // 2, wr // 3)}:
            pixel = block.select(r, c)
            text = describe.offset_map(block, pixel)
            p, n = offsets[r, c], patches[r, c]  # where unfold puts it, from the map of every pixel
            assert (f"The selected pixel, row {r}, column {c}, is framed: offset p = {p} (row {r % u.ph}, column "
                    f"{c % u.pw} inside its patch) of patch n = {n} (patch row {r // u.ph}, column "
                    f"{c // u.pw})") in text
            assert f"the {int((offsets == p).sum())} pixels of its sequence, one in every patch" in text
            assert f"into {hr // u.ph}×{wr // u.pw} = {int(patches.max()) + 1} patches of {u.ph}×{u.pw} pixels" in text
            assert (f"resized from {u.height}×{u.width} to {hr}×{wr}" in text) == u.needs_resize
            if u.p > 1:
                assert f"P = {int(offsets.max()) + 1} offsets" in text and f"to {u.p - 1} at its bottom right" in text


def test_the_legend_lists_each_offset_where_the_picture_draws_it():
    for ph, pw in [(2, 2), (1, 3), (2, 4), (3, 1)]:
        u = mb.Unfolding(ph, pw, ph, pw)
        text = describe.legend(u)
        listed = re.findall(r"p = (\d+) at row (\d+), column (\d+) \(([a-z ]+)\)", text)
        assert len(listed) == u.p
        cell = 44
        picture = np.asarray(mv.legend_picture(u, cell)).astype(int)
        for p, i, j, colour in listed:
            p, i, j = int(p), int(i), int(j)
            assert u.pixel(p, 0) == (i, j) and colour == mv.OFFSET_NAMES[p]
            corner = picture[2 + i * cell + 4, 2 + j * cell + 4]  # off the number, inside the cell
            assert np.abs(corner - mv.OFFSET_RGB[p]).max() <= 1
    text = describe.legend(mb.Unfolding(3, 5, 3, 5))
    assert "its 15 pixels numbered row by row, p = row·5 + column, from 0 at the top left to 14" in text
    assert "in 8 colours that repeat every 8 offsets" in text


def test_unfolded_heatmap_names_its_extremes_and_the_framed_cell(runs):
    for block in blocks(runs):
        u = block.unfolding
        pixel = block.select(*(x - 1 for x in u.resized))
        for channel in (0, 5):
            values = block.taps["unfolded"][:, :, channel]
            text = describe.unfolded(block, channel, pixel)
            low, high = np.unravel_index(np.argmin(values), values.shape), np.unravel_index(np.argmax(values),
                                                                                             values.shape)
            assert f"{u.p} rows, one per offset p (a sequence), by {u.n} columns" in text
            assert (f"Values from {values[low]:.3g} (p = {low[0]}, n = {low[1]}) to {values[high]:.3g} "
                    f"(p = {high[0]}, n = {high[1]})") in text
            framed = block.resized[channel, pixel.r, pixel.c]  # the pixel's number before unfold: the same
            assert text.endswith(f"p = {pixel.p}, n = {pixel.n}: {framed:.3g}.")


def test_attention_heads_name_the_patches_that_really_get_most(runs):
    for block in blocks(runs):
        u = block.unfolding
        pixel = block.select(u.resized[0] // 2, u.resized[1] // 2)
        for layer in range(block.depth):
            attention = block.attention(layer, pixel.p, pixel.n)
            for head in range(block.heads):
                row = attention.rows[head]
                text = describe.attention_head(block, attention, head)
                named = [int(n) for n in re.findall(r"patch (\d+) \(patch row", text)]
                assert len(named) == min(3, u.n)
                assert sorted(row[named]) == sorted(np.sort(row)[::-1][:len(named)])  # really the largest
                for n in named:
                    row_, col = divmod(n, u.grid[1])
                    assert f"patch {n} (patch row {row_}, column {col}) {percent(row[n])}" in text
                assert f"Where it goes: {describe_distribution(row.reshape(u.grid), 'the attention')}; most: " in text
                assert f"Weights from {row.min():.4f} to {row.max():.4f}" in text
                assert f"each patch {1 / u.n:.4f}" in text
                assert text.startswith(f"Head {head + 1} of {block.heads}, layer {layer + 1}: the selected pixel "
                                       f"(offset p = {pixel.p}, patch n = {pixel.n})")


def test_the_brightest_patch_of_a_head_picture_is_the_one_named_first():
    u = mb.Unfolding(8, 8, 2, 2)
    row = np.full(u.n, 0.5 / 15)
    row[9] = 0.5  # patch 9 (patch row 2, column 1) gets half
    attention = mb.AttentionRows(0, (3, 0), row[None])
    block = _toy_block(u)
    text = describe.attention_head(block, attention, 0)
    assert "Where it goes: 50 % of the attention on 1 of 16 patches, rows 2, columns 1" in text
    assert "most: patch 9 (patch row 2, column 1) 50 %" in text
    picture = np.asarray(mv.attention_picture(mv.backdrop(_grey(), 8, 8, 40), u, row, (3, 0), 320, 320))
    cell = 40  # sampled in each patch's offset-0 pixel: away from the query's frame (offset 3 of patch 0)
    brightness = [picture[a * 2 * cell + 20, b * 2 * cell + 20].sum() for a in range(4) for b in range(4)]
    assert int(np.argmax(brightness)) == 9


def _grey():
    from PIL import Image

    return Image.new("RGB", (64, 64), (128, 128, 128))


def _toy_block(u: mb.Unfolding) -> mb.BlockView:
    """A BlockView with only the geometry (what the attention description reads besides the rows)."""
    return mb.BlockView(stage=2, unfolding=u, taps={}, conv3=np.zeros(0), resized=np.zeros(0), q=(), k=(), scale=1.0,
                        checks={})


@pytest.mark.parametrize("h, w, patch, pixel", [
    (16, 16, (2, 2), (8, 8)),  # sees everything
    (20, 20, (4, 4), (0, 0)),  # the border misses a few
    (16, 16, (8, 8), (0, 0)),  # out of reach inside the map
    (13, 13, (3, 5), (14, 14)),  # resized: the pixel past the edge is the edge's
])
def test_receptive_field_counts_are_the_masks(h, w, patch, pixel):
    field = mb.receptive_field(mb.Unfolding(h, w, *patch), pixel)
    r, c = field.pixel
    whole, conv = describe.receptive_field(field), describe.conv_field(field)
    seen, conv_seen = int(field.mask.sum()), int(field.conv_mask.sum())
    assert f"its two 3×3 convolutions alone reach {conv_seen} ({percent(conv_seen / (h * w))})" in whole
    if seen == h * w:
        assert f"Output pixel ({r}, {c}) of the {h}×{w} map depends on all {h * w} block-input pixels" in whole
    else:
        rows, cols = np.nonzero(~field.mask)
        assert (f"depends on {seen} of the {h * w} block-input pixels ({percent(seen / (h * w))}); the {h * w - seen} "
                f"out of its reach are darkened and hatched, {grid_region(rows, cols, (h, w))}") in whole
    rows, cols = np.nonzero(field.conv_mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (max(0, r - 2), min(h - 1, r + 2), max(0, c - 2),
                                                                 min(w - 1, c + 2))
    assert f"{conv_seen} of the {h * w} pixels ({percent(conv_seen / (h * w))}), {grid_region(rows, cols, (h, w))}" \
           in conv and conv.endswith(f"the other {h * w - conv_seen} are darkened and hatched.")


def test_photo_names_the_map_and_the_stride(runs):
    for block in blocks(runs):
        u = block.unfolding
        assert describe.photo(block) == (f"Your image as the model sees it, stretched over the block's "
                                         f"{u.height}×{u.width} map: one map pixel covers {block.stride}×"
                                         f"{block.stride} input pixels.")
