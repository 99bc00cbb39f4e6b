"""The shared wording of the text alternatives, checked against the arrays it describes."""
import numpy as np
import pytest

from vitviz.describe.common import (concentration, describe_distribution, describe_extremes, grid_region, percent,
                                    span)


def test_percent_and_span():
    assert [percent(x) for x in (0.38, 0.042, 0.0031, 1.0)] == ["38 %", "4.2 %", "0.31 %", "100 %"]
    assert span(3, 3) == "3" and span(3, 5) == "3–5"


@pytest.mark.parametrize("rows, cols, where", [
    ([0, 1], [0, 2], "the top left"), ([7, 8], [7, 8], "the bottom right"), ([4], [4], "the centre"),
    ([0], [4], "the top centre"), ([4], [8], "the middle right")])
def test_grid_region_names_the_third_holding_the_cells(rows, cols, where):
    text = grid_region(np.array(rows), np.array(cols), (9, 9))
    assert text.endswith(f"({where})")
    assert text.startswith(f"rows {span(min(rows), max(rows))}, columns {span(min(cols), max(cols))}")


def test_concentration_is_the_smallest_set_holding_half_the_mass():
    rng = np.random.default_rng(0)
    for _ in range(50):
        values = rng.random((7, 9)) ** 4
        c = concentration(values)
        flat = np.sort(values.reshape(-1))[::-1] / values.sum()
        assert c.share == pytest.approx(flat[:c.count].sum())
        assert flat[:c.count].sum() >= 0.5 > flat[:c.count - 1].sum()
        chosen = values[c.rows, c.cols]
        assert chosen.min() >= np.sort(values.reshape(-1))[::-1][c.count - 1]  # the named cells are the largest
        assert values[c.peak] == values.max() and c.peak_share == pytest.approx(values.max() / values.sum())


def test_a_peaked_map_is_described_with_its_numbers():
    values = np.full((16, 16), 0.2 / 247)
    values[3:6, 2:5] = 0.8 / 9  # 80 % of the mass on 9 patches, rows 3–5, columns 2–4
    text = describe_distribution(values, "the attention")
    assert text.startswith("53 % of the attention on 6 of 256 patches, rows 3–4")  # 6 × 8.9 % ≥ half
    c = concentration(values)
    assert text == (f"{percent(c.share)} of the attention on {c.count} of 256 patches, "
                    f"{grid_region(c.rows, c.cols, (16, 16))}; the other {percent(1 - c.share)} spread thinly")
    assert set(zip(c.rows, c.cols)) <= {(r, q) for r in range(3, 6) for q in range(2, 5)}


def test_a_flat_map_names_no_region():
    values = np.ones((4, 4))
    values[2, 3] = 1.5
    text = describe_distribution(values, "the attention")
    assert text == ("the attention spread almost evenly over the 16 patches: the largest, row 2, column 3, holds "
                    f"{percent(1.5 / 16.5)} (evenly: {percent(1 / 16)} each)")


def test_a_map_spread_over_a_fifth_names_its_region_and_the_rest():
    values = np.full((10, 10), 0.5 / 85)
    values[:3, :5] = 0.5 / 15  # half the mass on 15 of 100 patches
    text = describe_distribution(values, "the attention")
    assert text.endswith("the other 50 % spread over the rest") and "rows 0–2, columns 0–4 (the top left)" in text


def test_extremes_name_their_cells():
    values = np.zeros((3, 4))
    values[2, 1], values[0, 3] = -0.41, 2.7
    assert describe_extremes(values, "Norms") == "Norms from -0.41 (row 2, column 1) to 2.7 (row 0, column 3)"
