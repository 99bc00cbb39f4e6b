"""Text alternatives of the attention page (stage 5), each computed from the very result its picture or chart draws:
a head's map of one query's attention (`AttentionView.patch_rows`), the enlarged head with what goes to the tokens
that have no place on the image, the strip of those tokens, the whole T × T matrix (its diagonal, the keys read
most), the query's row on a large grid, DINO's masks (`DinoMasks`), the rollout and its single layer (`Rollout`),
the mean-attention-distance chart and the predictions."""
from __future__ import annotations

import numpy as np

from ..attention import AttentionView, DinoMasks, Rollout
from ..i18n import _, ngettext, sentences
from .common import describe_distribution, grid_region, percent

TOP_KEYS = 3  # the keys named as receiving most of a whole matrix's attention


def _listing(items: list[str]) -> str:
    """Items as one list inside a sentence ("a; b; c"), with the language's separator."""
    return _("; ").join(items)


def _px(distance: float) -> str:
    """A distance in pixels as read off the chart's axis, without its unit: 116, 8.4."""
    return f"{distance:.0f}" if distance >= 10 else f"{distance:.1f}"


def _query(view: AttentionView, head: int) -> str:
    return _("Layer {layer}, head {head}, query {token}").format(layer=view.layer + 1, head=head + 1,
                                                                  token=view.label)


def _map(view: AttentionView, head: int) -> str:
    """Where head `head`'s patch map puts the query's attention: the picture's main sentence."""
    return _("{query}: {distribution}.").format(
        query=_query(view, head), distribution=describe_distribution(view.patch_rows[head], _("the patch attention")))


def _off_image(view: AttentionView, head: int) -> str:
    """What the query gives the tokens a map cannot show (CLS, the registers) and the patches together."""
    pre = view.layout.prefix
    if pre > 1:
        return ngettext("Off the image, the CLS token takes {cls} and the register {registers}; the patches "
                        "together {patches}.",
                        "Off the image, the CLS token takes {cls} and the {count} registers {registers}; the patches "
                        "together {patches}.", pre - 1).format(cls=percent(view.cls_share[head]), count=pre - 1,
                                                registers=percent(view.register_share[head]),
                                                patches=percent(view.patch_share[head]))
    return _("Off the image, the CLS token takes {cls}; the patches together {patches}.").format(
        cls=percent(view.cls_share[head]), patches=percent(view.patch_share[head]))


def _frame(view: AttentionView) -> str:
    """The query patch's frame, when the query is a patch."""
    if view.cell is None:
        return ""
    row, col = view.cell
    return _("The query patch, row {row}, column {col}, is framed in yellow and black.").format(row=row, col=col)


def head_map(view: AttentionView, head: int) -> str:
    """One picture of the head grid: head `head`'s attention of the query over the image."""
    return sentences(_map(view, head), _off_image(view, head), _frame(view))


def enlarged_head(view: AttentionView) -> str:
    """The enlarged, clickable head: its map, its largest patch weight against uniform, and the tokens off the image."""
    values = view.patch_rows[view.head]
    row, col = np.unravel_index(int(np.argmax(values)), values.shape)
    return sentences(
        _map(view, view.head),
        _("The largest weight on a patch, {weight:.3g}, is on row {row}, column {col}; uniform attention would give "
          "every token {uniform:.3g}.").format(weight=float(values[row, col]), row=int(row), col=int(col),
                                               uniform=view.layout.uniform_weight),
        _off_image(view, view.head), _frame(view))


def prefix_strip(view: AttentionView) -> str:
    """The strip of the tokens with no place on the image (CLS and the registers), cell by cell."""
    pre, row = view.layout.prefix, view.row
    weights = [f"{view.layout.label(j)} {percent(row[j])}" for j in range(pre)]
    return _("{query}, the tokens with no place on the image: {weights}.").format(
        query=_query(view, view.head), weights=_listing(weights))


def matrix(view: AttentionView, values: np.ndarray) -> str:
    """The selected head's whole T × T matrix `values` (view.matrix()): the diagonal's share, the keys read most."""
    tokens, layout = values.shape[0], view.layout
    received = values.mean(0)  # each key's share of all the matrix's attention (every row sums to 1)
    top = np.argsort(-received, kind="stable")[:TOP_KEYS]
    return sentences(
        _("Attention matrix of layer {layer}, head {head}: {t} × {t} tokens, a row per query and a column per key, "
          "each row summing to 1.").format(layer=view.layer + 1, head=view.head + 1, t=tokens),
        _("The diagonal, each token's attention to itself, holds {diagonal} of all the attention (uniform "
          "attention: {uniform}).").format(diagonal=percent(np.trace(values) / tokens),
                                           uniform=percent(1 / tokens)),
        _("The keys that receive most: {keys}.").format(keys=_listing(
            [f"{layout.label(j)} {percent(received[j])}" for j in top])),
        _("The row of the query, {token}, is framed.").format(token=view.label))


def query_row(view: AttentionView) -> str:
    """The query's row on the patch grid (drawn instead of the matrix when the grid is large)."""
    gh, gw = view.layout.grid
    return sentences(_map(view, view.head),
                     _("Drawn on the {gh} × {gw} patch grid.").format(gh=gh, gw=gw),
                     _off_image(view, view.head), _frame(view))


def dino_mask(masks: DinoMasks, head: int) -> str:
    """One picture of the DINO tab: which patches head `head`'s mask keeps bright, and where they lie."""
    mask = masks.masks[head]
    rows, cols = np.nonzero(mask)
    return _("Head {head}: the {kept} of {n} patches ({share}) holding {t} of the last layer's CLS attention to the "
             "patches stay bright and outlined, {where}; the rest is darkened.").format(
        head=head + 1, kept=len(rows), n=mask.size, share=percent(len(rows) / mask.size), t=percent(masks.t),
        where=grid_region(rows, cols, mask.shape))


def fusion_text(rolled: Rollout) -> str:
    """How a rollout merged its heads: "mean of heads" or "max of heads, lowest 50% discarded"."""
    return (_("{fusion} of heads").format(fusion=rolled.fusion)
            + (_(", lowest {share:.0%} discarded").format(share=rolled.discard) if rolled.discard else ""))


def rollout_map(rolled: Rollout) -> str:
    """The rollout map R[CLS, patches], and where the rest of R[CLS] ends."""
    pre = rolled.layout.prefix
    rest = (_("The patches hold {patches} of R[CLS], CLS itself {cls} and the registers {registers}.") if pre > 1
            else _("The patches hold {patches} of R[CLS] and CLS itself {cls}."))
    return sentences(
        _("Rollout R[CLS, patches] through layers 1–{layers} ({how}): {distribution}.").format(
            layers=rolled.layers, how=fusion_text(rolled),
            distribution=describe_distribution(rolled.patch_map, _("the rolled-out attention"))),
        rest.format(patches=percent(rolled.row[pre:].sum()), cls=percent(rolled.cls),
                    registers=percent(rolled.registers)))


def layer_alone(rolled: Rollout) -> str:
    """The last rolled layer's fused CLS row alone, beside the rollout."""
    return _("CLS attention in layer {layer} alone ({fusion} of heads): {distribution}.").format(
        layer=rolled.layers, fusion=rolled.fusion,
        distribution=describe_distribution(rolled.alone_map, _("the patch attention")))


def distance_chart(view: AttentionView) -> str:
    """The mean attention distance of every head against depth, against uniform attention."""
    distance, uniform = view.distance, view.uniform_distance
    depth, heads = distance.shape
    means = distance.mean(1)
    ranges = [_("layer {layer} {low}–{high} px").format(layer=layer + 1, low=_px(low), high=_px(high))
              for layer, (low, high) in enumerate(zip(distance.min(1), distance.max(1)))]
    return sentences(
        _("Mean attention distance of each of the {heads} heads (one marker shape each) in each of the {layers} "
          "layers; uniform attention over this grid gives {uniform} px (the dashed line).").format(
            heads=heads, layers=depth, uniform=_px(uniform)),
        _("Shortest to longest head, layer by layer: {ranges}.").format(ranges=_listing(ranges)),
        _("The mean over the heads goes from {first} px in layer 1 to {last} px in layer {layers}; {closer} of the "
          "{total} heads look closer than uniform.").format(first=_px(means[0]), last=_px(means[-1]), layers=depth,
                                                              closer=int((distance < uniform).sum()),
                                                              total=distance.size),
        _("Layer {layer}, the one selected, is shaded and labelled.").format(layer=view.layer + 1))


def predictions(view: AttentionView) -> str:
    """The classifier's most probable classes with their probabilities ("" without a classifier)."""
    if view.predictions is None:
        return ""
    return _("The model's {count} most probable classes: {classes}.").format(
        count=len(view.predictions),
        classes=_listing([f"{label} {percent(p)}" for label, p in view.predictions]))
