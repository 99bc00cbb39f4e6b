"""Wording every stage's descriptions share: where on a grid something lies, how a non-negative map's mass is spread,
and numbers as a sighted student would read them off a picture (percentages, ranges)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..i18n import N_, _

# The grid in thirds, as a student would point at it.
_VERTICAL = (N_("top"), N_("middle"), N_("bottom"))
_HORIZONTAL = (N_("left"), N_("centre"), N_("right"))
CONCENTRATED = 0.5  # the share of a map's mass whose smallest holding set is named: "half the attention on …"


def percent(share: float) -> str:
    """A share as a student reads it: 38 %, 4.2 %, 0.31 % (two significant digits below 10 %)."""
    value = 100 * float(share)
    return f"{value:.0f} %" if value >= 10 else f"{value:.2g} %"


def span(low: int, high: int) -> str:
    """An inclusive range of indices: "3" or "3–5"."""
    return str(low) if low == high else f"{low}–{high}"


def grid_region(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> str:
    """Where cells (rows, cols) of a grid of `shape` lie: "rows 3–5, columns 2–4 (the top left)". The named part
    is the third of the grid (top/middle/bottom, left/centre/right) holding the cells' centre."""
    gh, gw = shape
    vertical = _VERTICAL[min(2, int(3 * float(np.mean(rows) + 0.5) / gh))]
    horizontal = _HORIZONTAL[min(2, int(3 * float(np.mean(cols) + 0.5) / gw))]
    if (vertical, horizontal) == (_VERTICAL[1], _HORIZONTAL[1]):
        where = _("the centre")
    else:
        where = _("the {vertical} {horizontal}").format(vertical=_(vertical), horizontal=_(horizontal))
    return _("rows {rows}, columns {cols} ({where})").format(
        rows=span(int(np.min(rows)), int(np.max(rows))), cols=span(int(np.min(cols)), int(np.max(cols))), where=where)


@dataclass(frozen=True)
class Concentration:
    """The smallest set of cells of a non-negative map holding at least `CONCENTRATED` of its mass."""

    count: int  # how many cells
    cells: int  # cells in the whole map
    share: float  # the mass they hold (≥ CONCENTRATED), 0…1
    rows: np.ndarray  # (count,) their rows, largest value first
    cols: np.ndarray  # (count,) their columns
    peak: tuple[int, int]  # (row, col) of the largest cell
    peak_share: float  # the largest cell's share of the mass


def concentration(values: np.ndarray, threshold: float = CONCENTRATED) -> Concentration:
    """values (gh, gw) ≥ 0, not all zero -> the smallest set of cells holding ≥ threshold of their sum."""
    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(-1)
    total = float(flat.sum())
    order = np.argsort(-flat, kind="stable")
    cumulative = np.cumsum(flat[order]) / total
    count = int(np.searchsorted(cumulative, threshold - 1e-12) + 1)
    chosen = order[:count]
    rows, cols = np.divmod(chosen, values.shape[1])
    return Concentration(count, flat.size, float(cumulative[count - 1]), rows, cols, (int(rows[0]), int(cols[0])),
                         float(flat[order[0]] / total))


def describe_distribution(values: np.ndarray, what: str) -> str:
    """A non-negative map over a grid, as a student reads it: "38 % of the attention on 12 of 256 patches, rows
    3–5, columns 2–4 (the top left); the other 62 % spread thinly" (or "… spread over the rest" when the set is
    large, or "spread almost evenly …" with the largest patch when over a quarter of the patches hold half).
    `what` names the mass ("the attention", "the relevance")."""
    c = concentration(values)
    if c.count > c.cells // 4:  # no region stands out: naming one would mislead
        return _("{what} spread almost evenly over the {cells} patches: the largest, row {row}, column {col}, holds "
                 "{peak} (evenly: {even} each)").format(what=what, cells=c.cells, row=c.peak[0], col=c.peak[1],
                                                       peak=percent(c.peak_share), even=percent(1 / c.cells))
    head = _("{share} of {what} on {count} of {cells} patches, {where}").format(
        share=percent(c.share), what=what, count=c.count, cells=c.cells,
        where=grid_region(c.rows, c.cols, np.asarray(values).shape))
    if c.count <= max(1, c.cells // 10):
        return _("{head}; the other {rest} spread thinly").format(head=head, rest=percent(1 - c.share))
    return _("{head}; the other {rest} spread over the rest").format(head=head, rest=percent(1 - c.share))


def describe_extremes(values: np.ndarray, what: str, fmt: str = "{:.3g}") -> str:
    """A signed map over a grid by its extremes: "<what> from -0.41 (row 0, column 3) to 2.7 (row 5, column 5)"."""
    values = np.asarray(values, dtype=np.float64)
    low, high = np.unravel_index(np.argmin(values), values.shape), np.unravel_index(np.argmax(values), values.shape)
    return _("{what} from {low} (row {low_row}, column {low_col}) to {high} (row {high_row}, column {high_col})").format(
        what=what, low=fmt.format(values[low]), low_row=int(low[0]), low_col=int(low[1]),
        high=fmt.format(values[high]), high_row=int(high[0]), high_col=int(high[1]))
