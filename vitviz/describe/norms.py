"""Text alternatives of the registers & token-norms page (`vitviz.norms`): the token-norm picture and its high-norm
patches, the histogram and its valley, the norms through the depth, the neighbour similarity, the CLS attention, the
comparison without and with registers, and DINOv2's PCA colours. Each sentence is computed from the very result the
page draws."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..i18n import _, ngettext
from ..norms import MIN_GAP, FeatureColours, LayerNorms, NormTrace
from .common import describe_distribution, describe_extremes, grid_region, percent, span

NAMED = 5  # at most this many high-norm patches are named one by one; more are given as a region


def norm(value: float) -> str:
    """A token norm as the page's metrics write it (one decimal)."""
    return f"{value:.1f}"


def span_text(low: str, high: str) -> str:
    """Two formatted numbers as a range, or one when they read the same: "280.1–312.4" or "280.1"."""
    return low if low == high else f"{low}–{high}"


def layer_runs(layers: Sequence[int]) -> str:
    """0-based layer indices as 1-based runs: [2, 6, 7, 8] -> "3, 7–9"."""
    runs: list[list[int]] = []
    for layer in sorted(layers):
        if runs and layer == runs[-1][1] + 1:
            runs[-1][1] = layer
        else:
            runs.append([layer, layer])
    return ", ".join(span(low + 1, high + 1) for low, high in runs)


def _cells(rows: np.ndarray, cols: np.ndarray) -> str:
    """Cells named one by one: "row 3, column 10; row 0, column 15"."""
    return "; ".join(_("row {row}, column {col}").format(row=int(r), col=int(c)) for r, c in zip(rows, cols))


def high_norm_patches(one: LayerNorms) -> str:
    """Where one layer's high-norm patches are, their norms and how many times the median they are."""
    if one.count == 0:
        return _("No patch stands clear of the others, so none is framed.")
    rows, cols = np.nonzero(one.grid_outliers)
    where = _cells(rows, cols) if one.count <= NAMED else grid_region(rows, cols, one.grid)
    high = one.values[one.outliers]
    low_ratio, high_ratio = float(high.min()) / one.median, float(high.max()) / one.median
    return ngettext(
        "{count} high-norm patch, framed with black-and-white dashes: {where}; norm {norms}, {ratios}× the median.",
        "{count} high-norm patches, framed with black-and-white dashes: {where}; norms {norms}, {ratios}× the median.",
        one.count).format(count=one.count, where=where, norms=span_text(norm(high.min()), norm(high.max())),
                          ratios=span_text(f"{low_ratio:.1f}", f"{high_ratio:.1f}"))


def norm_map(one: LayerNorms) -> str:
    """The token-norm picture of one layer: the range of the norms, where the extremes are, the high-norm patches."""
    extremes = describe_extremes(one.grid_values, _("Token norms of the {n} patches after layer {layer} (brighter = "
                                                    "larger)").format(n=one.patches, layer=one.layer + 1),
                                 fmt="{:.1f}")
    return _("{extremes}, median {median}. {patches}").format(extremes=extremes, median=norm(one.median),
                                                             patches=high_norm_patches(one))


def histogram(one: LayerNorms) -> str:
    """The histogram of one layer's patch norms: its range and tallest bar, the valley line if any, the registers."""
    split, values = one.split, one.values
    tallest = int(np.argmax(split.counts))
    digits = max(1, -int(np.floor(np.log10(max(float(split.edges[1] - split.edges[0]), 1e-12)))))  # edges differ
    text = ngettext("Histogram of the {n} patch norms after layer {layer}, from {low} to {high}; the tallest bar holds "
                    "{count} patch between {start} and {end}.",
                    "Histogram of the {n} patch norms after layer {layer}, from {low} to {high}; the tallest bar holds "
                    "{count} patches between {start} and {end}.", int(split.counts[tallest])).format(
        n=one.patches, layer=one.layer + 1, low=norm(values.min()), high=norm(values.max()),
        count=int(split.counts[tallest]), start=f"{split.edges[tallest]:.{digits}f}",
        end=f"{split.edges[tallest + 1]:.{digits}f}")
    if split.threshold is None:
        text += " " + _("One mode: no norm stands clear of the others (the widest gap is {gap:.1f} standard "
                        "deviations; {min_gap:g} would make a second mode).").format(gap=split.gap, min_gap=MIN_GAP)
    else:
        text += " " + _("Two modes: the valley line at {threshold} leaves {below} patches below and {above} above "
                        "it, a gap of {gap:.1f} standard deviations.").format(
            threshold=norm(split.threshold), below=one.patches - one.count, above=one.count, gap=split.gap)
    if one.registers.size:
        low, high = one.register_range
        text += " " + ngettext("A dashed line marks the register's norm, {norms}.",
                               "Dashed lines mark the {n} registers' norms, {norms}.", one.registers.size).format(
            n=one.registers.size, norms=span_text(norm(low), norm(high)))
    return text


def depth(tr: NormTrace, layer: int) -> str:
    """The norms through the depth: the median and largest patch norm (and largest register norm) from the first
    to the last layer, where the largest peaks, the layers with high-norm patches; `layer` (0-based) is marked."""
    patches = tr.norms[:, tr.prefix:]
    median, largest = np.median(patches, axis=1), patches.max(axis=1)
    peak = int(np.argmax(largest))
    text = _("Token norms through the {depth} layers: the median patch norm goes from {m0} after layer 1 to {m1} "
             "after layer {depth}; the largest patch norm from {l0} to {l1}, highest after layer {peak} ({top})").format(
        depth=tr.depth, m0=norm(median[0]), m1=norm(median[-1]), l0=norm(largest[0]), l1=norm(largest[-1]),
        peak=peak + 1, top=norm(largest[peak]))
    if tr.prefix > 1:
        registers = tr.norms[:, 1:tr.prefix].max(axis=1)
        text += _("; the largest register norm from {r0} to {r1}").format(r0=norm(registers[0]), r1=norm(registers[-1]))
    counts = tr.outlier_counts
    with_outliers = [i for i, count in enumerate(counts) if count]
    if with_outliers:
        most = int(np.argmax(counts))
        text += ". " + ngettext("High-norm patches after layer {layers} (bars; at most {count}, after layer {most}).",
                                "High-norm patches after layers {layers} (bars; at most {count}, after layer {most}).",
                                len(with_outliers)).format(layers=layer_runs(with_outliers), count=counts[most],
                                                           most=most + 1)
    else:
        text += ". " + _("No layer has high-norm patches.")
    return text + " " + _("Layer {layer} is marked by a dotted line.").format(layer=layer + 1)


def neighbours(tr: NormTrace, one: LayerNorms) -> str:
    """The neighbour-similarity picture: its extremes and mean, and how it correlates with one layer's norms."""
    text = describe_extremes(tr.neighbour_map, _("Cosine similarity of each patch embedding to its 4 neighbours "
                                                 "(brighter = more alike)"), fmt="{:.2f}")
    text += _(", mean {mean:.2f}. Correlation with the token norms after layer {layer}: r = {r:+.2f}").format(
        mean=float(tr.neighbours.mean()), layer=one.layer + 1, r=one.correlation)
    if one.outlier_similarity is None:
        return text + "."
    return text + _("; the high-norm patches' mean similarity is {outliers:.3f}, the others' {others:.3f}.").format(
        outliers=one.outlier_similarity, others=one.other_similarity)


def cls_attention(tr: NormTrace) -> str:
    """The last layer's CLS attention picture: its shares of patches and registers, where on the patches it lies."""
    heads = tr.cls_attention.shape[0]
    if tr.prefix > 1:
        head = _("The last layer's CLS attention (mean of the {heads} heads) gives {patches} to the patches and "
                 "{registers} to the registers").format(heads=heads, patches=percent(tr.cls_to_patches),
                                                        registers=percent(tr.cls_to_registers))
    else:
        head = _("The last layer's CLS attention (mean of the {heads} heads) gives {patches} to the patches").format(
            heads=heads, patches=percent(tr.cls_to_patches))
    return _("{head}; brighter = more: {where}.").format(
        head=head, where=describe_distribution(tr.cls_map, _("the attention to the patches")))


def comparison(without: tuple[str, LayerNorms], with_registers: tuple[str, LayerNorms]) -> str:
    """The last layers of the same image without and with registers, side by side: (model name, its last layer)."""
    def one_model(name: str, last: LayerNorms) -> str:
        return ngettext("{model}: {count} high-norm patch, largest patch norm {largest} ({ratio:.1f}× the median)",
                        "{model}: {count} high-norm patches, largest patch norm {largest} ({ratio:.1f}× the median)",
                        last.count).format(model=name, count=last.count, largest=norm(last.largest), ratio=last.ratio)

    name, last = with_registers
    low, high = last.register_range
    return _("{without}. {with_registers}; its {n} registers' norms {norms}.").format(
        without=one_model(*without), with_registers=one_model(name, last), n=last.registers.size,
        norms=span_text(norm(low), norm(high)))


def feature_colours(out: FeatureColours, grid: tuple[int, int], model: str) -> str:
    """DINOv2's PCA picture of one model: the foreground's share and place, what the colours explain."""
    explained = ", ".join(percent(x) for x in out.explained)
    if out.foreground_count < 3:  # `feature_colours` then colours every patch by a PCA of all of them
        return _("PCA colours of the last-layer patch features of {model}: fewer than 3 of the {n} patches are foreground, "
                 "so every patch is coloured by the first three components of all patches, which explain {share} of "
                 "their variance ({each}); similar colours mean similar features.").format(
            model=model, n=out.patches, share=percent(out.explained_share), each=explained)
    rows, cols = np.nonzero(out.foreground.reshape(grid))
    return _("PCA colours of the last-layer patch features of {model}: {count} of {n} patches ({share}) are foreground, "
             "{where}, coloured by the first three components of the foreground, which explain {explained} of its "
             "variance ({each}); similar colours mean similar features; the {background} background patches are "
             "black.").format(
        model=model, count=out.foreground_count, n=out.patches, share=percent(out.foreground_count / out.patches),
        where=grid_region(rows, cols, grid), explained=percent(out.explained_share), each=explained,
        background=out.patches - out.foreground_count)
