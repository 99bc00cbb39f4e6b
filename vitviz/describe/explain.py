"""Text alternatives of the explanation page (`vitviz.explain`): each explanation map (where its weight lies, on the
map scaled to 0…1 as it is drawn), how far the maps agree, the deletion and insertion curves against the random
band, and the logit lens's heatmap and rank chart. Each sentence is computed from the very result the page draws."""
from __future__ import annotations

import numpy as np

from ..explain import METHOD_NAMES, Faithfulness, LensReading, LogitLens, normalised
from ..i18n import _, ngettext
from .common import describe_distribution, percent


def input_photo(label: str, size: tuple[int, int]) -> str:
    """The input picture beside the maps: which photo, at the size the model receives it (width, height)."""
    return _("The input photo ({label}), {width} × {height} px, as the model receives it").format(
        label=label, width=size[0], height=size[1])


def explanation_map(values: np.ndarray, method: str, label: str | None) -> str:
    """One explanation map as drawn (scaled to 0…1, bright = important): where its weight lies. `label` names the
    class of a class-specific map (None for the maps that are the same for every class)."""
    name = _(METHOD_NAMES[method])
    title = name if label is None else _("{method} for “{label}”").format(method=name, label=label)
    scaled = normalised(np.asarray(values, dtype=np.float64))
    if not scaled.any():
        return _("{title}: the same value on every patch, so it ranks no patch above another.").format(title=title)
    return _("{title} (scaled 0…1, brighter = more important): {where}.").format(
        title=title, where=describe_distribution(scaled, _("the map's weight")))


def agreement(matrix: np.ndarray, names: list[str]) -> str:
    """Spearman's rank correlation between every two maps (methods, methods): the most and the least alike pair."""
    pairs = [(float(matrix[i, j]), i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    high, low = max(pairs), min(pairs)
    if len(pairs) == 1:
        return _("Spearman's rank correlation of {a} and {b}: {r:+.2f}.").format(a=names[high[1]], b=names[high[2]],
                                                                                 r=high[0])
    return _("Spearman's rank correlation between the {n} maps: most alike {a} and {b} ({high:+.2f}), least alike "
             "{c} and {d} ({low:+.2f}).").format(n=len(names), a=names[high[1]], b=names[high[2]], high=high[0],
                                                c=names[low[1]], d=names[low[2]], low=low[0])


def curves(result: Faithfulness, names: dict[str, str], curve: int, label: str) -> str:
    """The deletion (curve 0) or insertion (curve 1) chart: the probability from its first to its last step, each
    method's area against the random band, and which maps beat it."""
    start, end = result.curves[0, curve, 0], result.curves[0, curve, -1]  # the same input for every ranking
    mean, std = float(result.random_mean[curve]), float(result.random_std[curve])
    areas = "; ".join(f"{names[m]} {v[curve].auc:.3g}"
                      for m, v in zip(result.methods, result.verdicts))
    beat = [names[m] for m, v in zip(result.methods, result.verdicts) if v[curve].beats]
    if curve == 0:
        text = _("Deletion for “{label}”: the probability goes from {start} with every patch to {end} with none, "
                 "the most important patches by each map removed first. Areas (lower = more faithful): {areas}; "
                 "random orders {mean:.3g} ± {std:.2g} (a map beats them below {bound:.3g}).")
        bound = mean - 2 * std
    else:
        text = _("Insertion for “{label}”: the probability goes from {start} with no patch to {end} with all, the "
                 "most important patches by each map put back first. Areas (higher = more faithful): {areas}; "
                 "random orders {mean:.3g} ± {std:.2g} (a map beats them above {bound:.3g}).")
        bound = mean + 2 * std
    text = text.format(label=label, start=percent(start), end=percent(end), areas=areas, mean=mean, std=std,
                       bound=bound)
    if not beat:
        return text + " " + _("No map beats the random band.")
    return text + " " + ngettext("{methods} beats the random band.", "{methods} beat the random band.",
                                 len(beat)).format(methods=", ".join(beat))


def lens_heatmap(result: LogitLens, reading: LensReading) -> str:
    """The logit lens's heatmap: each row's probability after the first and the last layer, the explained class
    named."""
    rows = []
    for k, (cls, probs) in enumerate(zip(reading.rows, reading.row_probs)):
        text = _("“{label}” from {first} to {last}").format(label=result.labels[cls], first=percent(probs[0]),
                                                           last=percent(probs[-1]))
        rows.append(text + (" " + _("(the class explained, marked ▶)") if k == reading.chosen else ""))
    return _("Probability of the last layer's top classes after each of the {depth} layers (darker = more probable), "
             "from layer 1 to layer {depth}: {rows}.").format(depth=result.depth, rows="; ".join(rows))


def rank_chart(reading: LensReading, label: str) -> str:
    """The logit lens's rank chart: the class's rank after the first layer, its best rank, when it becomes top-1
    for good, its final probability."""
    ranks, depth = reading.ranks, len(reading.ranks)
    best = int(np.argmin(ranks))  # the first layer at its best rank
    text = _("Rank of “{label}” after each of the {depth} layers (1 = top): {first} after layer 1, {last} after layer "
             "{depth}").format(label=label, depth=depth, first=f"{int(ranks[0]):,}", last=f"{int(ranks[-1]):,}")
    if ranks[best] < ranks[-1]:
        text += _(", best {best} after layer {layer}").format(best=f"{int(ranks[best]):,}", layer=best + 1)
    text += "."
    if reading.first_top1 is None:
        when = _("It is not the top class at the last layer.")
    else:
        when = _("It is the top class from layer {layer} on.").format(layer=reading.first_top1 + 1)
    return text + " " + when + " " + _("Probability at the last layer: {p}.").format(p=percent(reading.final_probability))
