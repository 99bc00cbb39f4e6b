"""Text alternatives of the "Linear projection" and "Position embeddings" pages (`vitviz.embeddings`): the filters of
E and their principal components, the explained-variance bars, a filter before and after its PI-resize, the token
heatmap, the tokens' PCA colours, the input cropped to whole patches, the position-similarity grids (learned,
sin-cos, native, interpolated), the shuffled image and the permutation test. Each sentence is computed from the
very result the page draws."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..embeddings import FilterStudy, KernelResize, ShuffleResult, TokenColours
from ..i18n import _, sentences
from .common import grid_region, percent, span

if TYPE_CHECKING:
    from ..viz.embeddings import SimilarityChart

SMOOTH, GRAINY = 0.5, 0.2  # neighbouring-pixel correlation from which filters look smooth, or merely grainy
STRONGEST = 3  # dimensions and tokens named as the heatmap's strongest
REDDEST = 0.1  # the share of patches named as the reddest of the PCA colours
SCATTERED = 0.5  # named cells whose bounding box covers more than this share of the grid are said to be scattered
CLOSE = 0.5  # |r| from which the red channel is said to follow (or reverse) brightness
STRUCTURED = -0.3  # the correlation with grid distance from which similarity is said to fall with distance
SAME = 1e-5  # a relative change below which the permutation test's outputs are the same (float32 rounding)


def signed(value: float) -> str:
    """A correlation as the page writes it, with a true minus sign (a screen reader says "minus", not "dash"); a
    value that rounds to 0 reads "+0.00", never "−0.00"."""
    return f"{round(value, 2) + 0.0:+.2f}".replace("-", "−")


def cosine(value: float) -> str:
    """A cosine similarity, two decimals as the charts' hover shows them to a glance, with a true minus sign."""
    return f"{round(value, 2) + 0.0:.2f}".replace("-", "−")


def number(value: float) -> str:
    """A weight or token value, three significant digits, with a true minus sign."""
    return f"{value:.3g}".replace("-", "−")


def neighbour_correlation(images: np.ndarray) -> float:
    """images (k, h, w, c) -> the mean over images of Pearson's r between horizontally or vertically adjacent pixels
    of the same channel (each channel centred on its own): near 0 for noise, near 1 for smooth patterns; 0 for
    images of one pixel."""
    x = np.asarray(images, dtype=np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    pairs = [(x[:, :, :-1], x[:, :, 1:]), (x[:, :-1], x[:, 1:])]
    pairs = [(a.reshape(len(x), -1), b.reshape(len(x), -1)) for a, b in pairs if a.size]
    if not pairs:
        return 0.0
    a, b = (np.concatenate(side, axis=1) for side in zip(*pairs))
    norm = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return float(np.mean(np.where(norm > 0, (a * b).sum(1) / np.where(norm > 0, norm, 1), 0.0)))


def texture(images: np.ndarray) -> str:
    """How small pictures look, from their neighbouring pixels: "speckled like noise (neighbouring pixels correlate
    at r = +0.02 on average)"."""
    r = neighbour_correlation(images)
    look = _("smooth patterns") if r >= SMOOTH else _("grainy") if r >= GRAINY else _("speckled like noise")
    return _("{look} (neighbouring pixels correlate at r = {r} on average)").format(look=look, r=signed(r))


def filters(study: FilterStudy, dim: int, cols: int) -> str:
    """The mosaic of the first filters of E (ViT Fig. 7 left)."""
    p, c = study.first.shape[1], study.first.shape[3]
    return _("The first {count} of the {d} filters of E, {cols} per row, each a {p} × {p} patch of {c} channels scaled "
             "to its own range: {texture}.").format(count=study.count, d=dim, cols=cols, p=p, c=c,
                                                     texture=texture(study.first))


def components(study: FilterStudy, cols: int) -> str:
    """The mosaic of the filters' top principal components: how many, the variance they explain, how they look."""
    e = np.asarray(study.explained)
    return _("The top {k} principal components of the filters, {cols} per row: component 1 explains {first} of the "
             "filters' variance, the first {three} together {top}, all {k} together {total}; {texture}.").format(
        k=study.k, cols=cols, first=percent(e[0]), three=min(3, len(e)), top=percent(e[:3].sum()),
        total=percent(e.sum()), texture=texture(study.components))


def explained_bar(explained: np.ndarray) -> str:
    """The explained-variance bar chart: the first and last bar, how fast they fall, their sum."""
    e = np.asarray(explained, dtype=np.float64)
    k, ratio = len(e), e[0] / max(e[-1], 1e-30)
    fall = _("falling steeply") if ratio >= 3 else _("falling slowly") if ratio >= 1.5 else _("almost flat")
    return _("Bar chart of the variance each of the {k} principal components explains: {first} for component 1 down "
             "to {last} for component {k}, {fall}; all {k} together {total}.").format(
        k=k, first=percent(e[0]), last=percent(e[-1]), fall=fall, total=percent(e.sum()))


def kernels(resize: KernelResize, i: int) -> tuple[str, str]:
    """Filter i of the checkpoint's kernel and of its PI-resize, as their two pictures show them."""
    (lo0, hi0), (lo1, hi1) = resize.checkpoint_range[i], resize.resized_range[i]
    p0, p = resize.checkpoint.shape[1], resize.resized.shape[1]
    before = _("Checkpoint filter {i}: {p} × {p} px, weights from {lo} to {hi}, each channel scaled from its smallest "
               "to its largest weight; {texture}.").format(i=i, p=p0, lo=number(lo0), hi=number(hi0),
                                                           texture=texture(resize.checkpoint[i : i + 1]))
    after = _("PI-resized filter {i}: {p} × {p} px, weights from {lo} to {hi}, scaled the same way; "
              "{texture}.").format(i=i, p=p, lo=number(lo1), hi=number(hi1), texture=texture(resize.resized[i : i + 1]))
    return before, after


def _strongest(values: np.ndarray, first: int) -> tuple[str, str]:
    """The STRONGEST largest entries of a profile (mean |value| per dimension or token), as indices from `first` and
    their values."""
    order = np.argsort(-values, kind="stable")[:STRONGEST]
    return ", ".join(str(first + int(j)) for j in order), ", ".join(number(values[j]) for j in order)


def token_heatmap(view: np.ndarray, row0: int, col0: int, selected: int) -> str:
    """The heatmap of the token block view (n, k) starting at token row0, dimension col0: its size, its range with
    where the extremes are, the dimensions and tokens of largest magnitude, the framed row."""
    z = np.asarray(view, dtype=np.float64)
    n, k = z.shape
    low, high = np.unravel_index(np.argmin(z), z.shape), np.unravel_index(np.argmax(z), z.shape)
    dims, dim_values = _strongest(np.abs(z).mean(0), col0)
    tokens, token_values = _strongest(np.abs(z).mean(1), row0)
    parts = [
        _("Heatmap of tokens {rows} (one row per patch) by dimensions {cols}, {count} values from {low} (token {lt}, "
          "dimension {ld}) to {high} (token {ht}, dimension {hd}); darker (blue) is negative, mid grey 0, "
          "lighter (yellow) positive.").format(rows=span(row0, row0 + n - 1), cols=span(col0, col0 + k - 1), count=f"{z.size:,}",
                              low=number(z[low]), lt=row0 + int(low[0]), ld=col0 + int(low[1]), high=number(z[high]),
                              ht=row0 + int(high[0]), hd=col0 + int(high[1])),
        _("The largest magnitudes stand in dimensions {dims} (mean |value| {dim_values}, against {mean} over the "
          "block) and in tokens {tokens} ({token_values}).").format(dims=dims, dim_values=dim_values,
                                                                    mean=number(np.abs(z).mean()), tokens=tokens,
                                                                    token_values=token_values),
    ]
    if row0 <= selected < row0 + n:
        parts.append(_("The framed row is your selected patch {index}.").format(index=selected))
    return sentences(*parts)


def _source(colours: TokenColours) -> str:
    return _("the projection's tokens") if colours.stage == "projection" else _("the last layer's tokens")


def _top_cells(values: np.ndarray, share: float = REDDEST) -> tuple[int, str]:
    """How many cells make up the `share` largest of a map (gh, gw), and where they lie ("scattered over …" when
    their bounding box is most of the grid)."""
    flat = np.asarray(values).reshape(-1)
    count = max(1, round(share * flat.size))
    rows, cols = np.divmod(np.argsort(-flat, kind="stable")[:count], values.shape[1])
    where = grid_region(rows, cols, values.shape)
    if (np.ptp(rows) + 1) * (np.ptp(cols) + 1) > SCATTERED * flat.size:
        return count, _("scattered over {where}").format(where=where)
    return count, where


def _brightness(r: float) -> str:
    """How component 1 (red, in the colour picture) relates to the patches' brightness."""
    if r >= CLOSE:
        return _("component 1 (red) follows the patches' brightness (r = {r})").format(r=signed(r))
    if r <= -CLOSE:
        return _("component 1 (red) is the patches' brightness reversed (r = {r})").format(r=signed(r))
    return _("component 1 (red) is not the patches' brightness (r = {r})").format(r=signed(r))


def token_colours(colours: TokenColours) -> str:
    """The tokens' PCA colours over the patch grid: the variance the three components keep, how red relates to
    brightness, where the reddest patches are."""
    grid, e = colours.rgb.shape[:2], np.asarray(colours.explained)
    count, where = _top_cells(colours.rgb[..., 0])
    return sentences(
        _("The top three principal components of {source} as red, green and blue, one square per patch of the "
          "{gh} × {gw} grid; they keep {shares} of the variance ({total} together).").format(
            source=_source(colours), gh=grid[0], gw=grid[1], shares=", ".join(percent(x) for x in e),
            total=percent(e.sum())),
        _("Here {brightness}; the reddest {count} patches: {where}.").format(
            brightness=_brightness(colours.brightness_correlation), count=count, where=where),
    )


def token_component(colours: TokenColours, k: int) -> str:
    """One of the PCA colours' components (k = 0, 1, 2) alone as grey levels: its variance, where its lightest and
    darkest patches are (and, for the first, how it relates to brightness)."""
    values = colours.rgb[..., k]
    count, light = _top_cells(values)
    _count, dark = _top_cells(-values)
    parts = [_("Principal component {k} of {source} as grey levels, lighter for a larger score, one square per patch "
               "of the {gh} × {gw} grid; it keeps {share} of the variance.").format(
        k=k + 1, source=_source(colours), gh=values.shape[0], gw=values.shape[1], share=percent(colours.explained[k])),
             _("The lightest {count} patches: {light}; the darkest: {dark}.").format(count=count, light=light,
                                                                                             dark=dark)]
    if k == 0:
        parts.append(_("Here {brightness}.").format(brightness=_brightness(colours.brightness_correlation)))
    return sentences(*parts)


def whole_patches(label: str, grid: tuple[int, int], patch: int) -> str:
    """The input cropped to the whole patches the model reads."""
    return _("The input photo ({label}), cropped to the {gh} × {gw} whole patches of {p} × {p} px the model reads: "
             "{width} × {height} px.").format(label=label, gh=grid[0], gw=grid[1], p=patch, width=grid[1] * patch,
                                               height=grid[0] * patch)


def kept_neighbours(order: np.ndarray, grid: tuple[int, int]) -> tuple[int, int]:
    """Of the side-by-side pairs of squares (left–right and above–below) of an image whose patch j is patch order[j]
    of the original (raster indices on `grid`): how many were side by side in the original too, and how many there
    are."""
    gh, gw = grid
    where = np.asarray(order).reshape(gh, gw)
    pairs = [(where[:, :-1], where[:, 1:]), (where[:-1], where[1:])]
    kept = sum(int(np.sum(np.abs(a // gw - b // gw) + np.abs(a % gw - b % gw) == 1)) for a, b in pairs)
    return kept, sum(a.size for a, _b in pairs)


def shuffled(order: np.ndarray, grid: tuple[int, int], patch: int) -> str:
    """The input's patches in the shuffle test's order Π: how many moved, where the top-left square comes from, how
    few squares still continue their neighbours."""
    order = np.asarray(order)
    moved = int(np.sum(order != np.arange(order.size)))
    row, col = divmod(int(order[0]), grid[1])
    kept, pairs = kept_neighbours(order, grid)
    return _("The same {n} patches of {p} × {p} px in the shuffled order Π, {moved} of them in another place: the "
             "top-left square now shows the patch from row {row}, column {col}, and of the {pairs} pairs of adjacent "
             "squares only {kept} were neighbours in the photo.").format(n=order.size, p=patch, moved=moved, row=row,
                                                                          col=col, pairs=pairs, kept=kept)


def shuffle_test(result: ShuffleResult) -> str:
    """The permutation test's table in words: whether shuffling the patches changed the outputs, without and with
    E_pos."""
    numbers = dict(all=f"{result.without_pos:.1e}", cls=f"{result.cls_without_pos:.1e}")
    if max(result.without_pos, result.cls_without_pos) < SAME:
        without = _("Without E_pos, the shuffled input's outputs differ from the shuffled outputs by {all} and the CLS "
                    "output by {cls}: float32 rounding, the model cannot tell the two images apart.").format(**numbers)
    else:
        without = _("Without E_pos, the shuffled input's outputs differ from the shuffled outputs by {all} and the CLS "
                    "output by {cls}.").format(**numbers)
    numbers = dict(all=f"{result.with_pos:.1e}", cls=f"{result.cls_with_pos:.1e}")
    if result.cls_with_pos >= SAME:
        with_pos = _("With E_pos they differ by {all} and the CLS output by {cls}: the shuffled image is a different "
                     "input.").format(**numbers)
    else:
        with_pos = _("With E_pos they differ by {all} and the CLS output by {cls}.").format(**numbers)
    return sentences(without, with_pos)


def _verdict(chart: SimilarityChart) -> str:
    s = chart.structure
    if s.neighbour_share >= 0.5:
        return _("each position is most similar to its own row and column neighbours")
    if s.distance_correlation <= STRUCTURED:
        return _("similarity falls with grid distance, but the most similar position is often not a neighbour")
    return _("no sign of neighbourhood: similarity does not fall with grid distance")


def similarity(chart: SimilarityChart, title: str, grid: tuple[int, int], selected: int | None) -> str:
    """One tiled position-similarity chart (ViT Fig. 7 centre): whether neighbours are alike (the correlation with
    grid distance, the share of positions whose most similar other position is a neighbour, row and column against
    the rest), its layout and colours, and what the framed selected position is most like."""
    s, (gh, gw) = chart.structure, grid
    parts = [
        _("Position similarity, {title}: {verdict}; correlation with grid distance {r}.").format(
            title=title, verdict=_verdict(chart), r=signed(s.distance_correlation)),
        _("{th} × {tw} tiles, tile (r, c) showing how similar every position is to position (r, c), from {low} "
          "(darkest, purple) to 1 (lightest, yellow).").format(th=len(range(0, gh, chart.stride)), tw=len(range(0, gw, chart.stride)),
                                           low=cosine(chart.low)),
    ]
    if s.nearest.min() >= 0:
        parts.append(_("For {share} of the positions the most similar other position is a row or column "
                       "neighbour.").format(share=percent(s.neighbour_share)))
    if np.isfinite(s.same_line) and np.isfinite(s.elsewhere):
        parts.append(_("Mean cosine {same} within the same row or column, {other} elsewhere.").format(
            same=cosine(s.same_line), other=cosine(s.elsewhere)))
    hits = np.flatnonzero(s.queries == selected) if selected is not None else []
    if len(hits) and s.nearest[hits[0]] >= 0:
        row, col = divmod(int(s.nearest[hits[0]]), gw)
        parts.append(_("Your selected patch {index} (row {r}, column {c}, framed) is most similar to row {row}, "
                       "column {col} (cosine {cos}).").format(index=selected, r=selected // gw, c=selected % gw,
                                                              row=row, col=col, cos=cosine(s.nearest_cosine[hits[0]])))
    return sentences(*parts)
