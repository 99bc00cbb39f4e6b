"""Text alternatives of the Swin page's pictures and charts (Liu et al. 2021, §3.1–3.2, Fig. 2–4): what a sighted
student reads off each one, with its numbers, computed from the very `vitviz.swin_windows` results the page draws
(a `WindowPartition`, a block's region labels and mask, a `QueryAttention`, a bias table, a `MergeView`,
`CostCurves`)."""
from __future__ import annotations

import numpy as np

from ..i18n import N_, _, ngettext, sentences
from ..models.swin import MASK_VALUE
from ..swin_windows import (MERGE_OFFSETS, CostCurves, MergeView, QueryAttention, StageLayout, WindowPartition,
                            rolled, runs, window_labels)
from .common import concentration, describe_extremes, grid_region, percent, span

BLOCKS = (N_("regular"), N_("shifted"))  # block 0 (W-MSA) and block 1 (SW-MSA) of a stage
MERGE_PLACES = (N_("top left"), N_("bottom left"), N_("top right"), N_("bottom right"))  # x0 … x3 in a 2×2 group


# ---- wording shared by the descriptions below -------------------------------------------------------------------

def block_name(block: int) -> str:
    """"Block 1 (regular)" or "Block 2 (shifted)"."""
    return _("Block {n} ({name})").format(n=block + 1, name=_(BLOCKS[block]))


def listing(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    if len(items) < 2:
        return "".join(items)
    return _("{first} and {last}").format(first=_(", ").join(items[:-1]), last=items[-1])


def indices(values) -> str:
    """Sorted indices as runs: "0–2 and 53–55"."""
    return listing([span(a, b) for a, b in runs(values)])


def small_share(share: float) -> str:
    """A share that may be vanishingly small: below a millionth it reads "0 %", as on the picture. A masked key's
    e^−100 (~1e−44) is a float32 denormal, which some threads' arithmetic flushes to exactly 0 and some do not."""
    return percent(0 if share < 1e-6 else share)


def where(cells: np.ndarray) -> str:
    """Where the True cells of an (H, W) map lie: "rows 49–55, columns 49–55 (the bottom right)", or for cells that
    wrap around the map's edges "rows 0–2 and 53–55, columns 0–2 and 53–55: 4 pieces"."""
    rows, cols = np.nonzero(np.asarray(cells).any(1))[0], np.nonzero(np.asarray(cells).any(0))[0]
    pieces = len(runs(rows)) * len(runs(cols))
    if pieces == 1:
        r, c = np.nonzero(cells)
        return grid_region(r, c, cells.shape)
    return _("rows {rows}, columns {cols}: {pieces} pieces").format(rows=indices(rows), cols=indices(cols),
                                                                     pieces=pieces)


def _key(key: int, side: int, query: int) -> str:
    """"key 25 (row 3, column 4)", or "the query itself (key 24)"."""
    if key == query:
        return _("the query itself (key {key})").format(key=key)
    return _("key {key} (row {row}, column {col})").format(key=key, row=key // side, col=key % side)


# ---- 1. Partition -----------------------------------------------------------------------------------------------

def partition(part: WindowPartition, selected: int, block: int) -> str:
    """The partition picture of one block: its windows over the image, padding, wrapped strips, the selected
    window (`vitviz.viz.swin.partition_picture`)."""
    (h, w), (rows, cols), m, s = part.grid, part.window_grid, part.window, part.shift
    pr, pc = part.padding_added
    ids, _tok = part.index_map()
    return sentences(
        _("{block}: the {h}×{w} token map over the image, cut into {rows}×{cols} = {n} windows of {m}×{m} tokens, "
          "tinted in a 2×2 checker of four colours and outlined in black.").format(
            block=block_name(block), h=h, w=w, rows=rows, cols=cols, n=part.n_windows, m=m),
        _("Padding (grey, hatched): {rows} rows at the bottom, {cols} columns at the right.").format(rows=pr, cols=pc)
        if pr or pc else "",
        _("Shift s = {s}: these are the windows of the rolled map; the first {s} rows (vermilion, hatched \\) belong "
          "to the bottom row of windows, the first {s} columns (blue, hatched /) to the right-hand column.").format(s=s)
        if s else "",
        _("Window {win}, framed in yellow: {where}.").format(win=selected, where=where(ids == selected)))


# ---- 2. Cyclic shift --------------------------------------------------------------------------------------------

def roll(part: WindowPartition, moved: int, lines: bool) -> str:
    """A picture of block 2's map in PCA colours rolled by (−moved, −moved), with the strips that wrap, the padding and
    (`lines`) the window borders marked (`vitviz.viz.swin.rolled_feature_picture`)."""
    (hp, wp), s = part.padded, part.shift
    head = (_("Block 2's {hp}×{wp} map in PCA colours, not rolled.") if moved == 0 else
            _("Block 2's {hp}×{wp} map in PCA colours, rolled by (−{t}, −{t}): each token keeps its colour as it "
              "moves.")).format(hp=hp, wp=wp, t=moved)
    strips = ""
    if s:
        row_strip, col_strip = (rolled(mask, moved) for mask in part.strips())
        strips = _("The first {s} rows of the map (vermilion, hatched \\) are at rows {rows}, its first {s} columns "
                   "(blue, hatched /) at columns {cols}.").format(
            s=s, rows=indices(np.nonzero(row_strip.any(1))[0]), cols=indices(np.nonzero(col_strip.any(0))[0]))
    pad = rolled(part.padding(), moved)
    padding = ""
    if pad.any():
        padding = _("Padding (grey, hatched): rows {rows}, columns {cols}.").format(
            rows=indices(np.nonzero(pad.all(1))[0]), cols=indices(np.nonzero(pad.all(0))[0]))
    cut = _("White lines cut it into its {n} windows of {m}×{m}.").format(n=part.n_windows, m=part.window)
    return sentences(head, strips or _("s = 0: nothing wraps."), padding, cut if lines else "")


def regions(labels: np.ndarray, window: int, back: int) -> str:
    """The region-label picture (`vitviz.viz.swin.labels_picture`) of the rolled map (Hp, Wp), or rolled back by
    (+back, +back) to where its tokens sit in the image: each region's rows and columns, and the windows it mixes."""
    labels = np.asarray(labels)
    hp, wp = labels.shape
    shown = np.roll(labels, (back, back), (0, 1)) if back else labels
    items = [_("region {label}: rows {rows}, columns {cols}").format(
        label=int(v), rows=indices(np.nonzero((shown == v).any(1))[0]),
        cols=indices(np.nonzero((shown == v).any(0))[0])) for v in np.unique(shown)]
    n = len(items)
    head = (ngettext("The rolled {hp}×{wp} map has {n} shift region, numbered and outlined (dashed); the {m}×{m} "
                     "windows outlined in black: {items}.",
                     "The rolled {hp}×{wp} map has {n} shift regions, each numbered and outlined (dashed); the {m}×{m} "
                     "windows outlined in black: {items}.", n) if not back else
            ngettext("The same {n} region rolled back by (+{s}, +{s}), where its tokens sit in the image: {items}.",
                     "The same {n} regions rolled back by (+{s}, +{s}), where their tokens sit in the image: {items}.",
                     n))
    mixed = int((np.array([len(np.unique(w)) for w in window_labels(labels, window)]) > 1).sum())
    return sentences(
        head.format(hp=hp, wp=wp, n=n, m=window, s=back, items=_("; ").join(items)),
        _("{k} of the {n} windows hold more than one region: tokens that are not neighbours in the image.").format(
            k=mixed, n=(hp // window) * (wp // window)) if mixed else "")


def window_regions(labels: np.ndarray, selected: int) -> str:
    """The region labels (M, M) inside the selected window of the rolled map: how many tokens of each, where."""
    labels = np.asarray(labels)
    values = np.unique(labels)
    if len(values) == 1:
        return _("Region labels inside window {win} of the rolled map: all {n} tokens are in region {label}, nothing "
                 "is masked.").format(win=selected, n=labels.size, label=int(values[0]))
    items = []
    for v in values:
        r, c = np.nonzero(labels == v)
        items.append(ngettext("region {label}: {n} token, {where}", "region {label}: {n} tokens, {where}",
                              len(r)).format(label=int(v), n=len(r), where=grid_region(r, c, labels.shape)))
    return _("Region labels inside window {win} of the rolled map, {k} regions: {items}.").format(
        win=selected, k=len(values), items=_("; ").join(items))


# ---- 3. Mask and attention --------------------------------------------------------------------------------------

def mask(mask_: np.ndarray, labels: np.ndarray, selected: int, query: int) -> str:
    """The mask heat map of one window (M², M²) (0 or −100) with its region labels (M, M) and the query's row
    outlined (`vitviz.viz.swin.mask_figure`)."""
    mask_, flat = np.asarray(mask_), np.asarray(labels).reshape(-1)
    n, masked = mask_.shape[0], int((mask_ == MASK_VALUE).sum())
    head = _("Mask of window {win}: {n}×{n} = {pairs} pairs of query (row) and key (column).").format(
        win=selected, n=n, pairs=n * n)
    if not masked:
        return sentences(head, _("All of them are 0 (light): every token may attend to every other."))
    values, sizes = np.unique(flat, return_counts=True)
    qr, qc = divmod(query, labels.shape[0])
    allowed = int((mask_[query] == 0).sum())
    return sentences(
        head,
        _("{masked} of them are masked at −100 (dark, crossed out where the cells are large enough), {allowed} are 0 "
          "(light): a query attends only to the keys of its own region, and the window holds {k} regions of "
          "{sizes} tokens.").format(masked=masked, allowed=n * n - masked, k=len(values),
                                    sizes=listing([str(int(x)) for x in sizes])),
        _("Query {query} (row {row}, column {col}, region {label}; its row outlined) may attend to {allowed} of "
          "the {n} keys.").format(query=query, row=qr, col=qc, label=int(flat[query]), allowed=allowed, n=n))


def footprint(att: QueryAttention, part: WindowPartition, selected: int, block: int) -> str:
    """The picture of the selected window in the image coloured by the query's attention, mean over heads
    (`vitviz.viz.swin.window_attention_picture`)."""
    ids, _tok = part.index_map()
    side, mean = att.side, att.mean
    c = concentration(mean.reshape(side, side))
    text = _("{block}: window {win} in the image, at {where}; the rest darkened. Its tokens are coloured by query "
             "{query}'s attention, the mean over {heads} heads (inferno: brighter = more), the query framed.").format(
        block=block_name(block), win=selected, where=where(ids == selected), query=att.query, heads=len(att.probs))
    spread = _("{share} of it on {count} of {keys} keys, {region} of the window; the strongest is {key} with "
               "{peak}.").format(share=percent(c.share), count=c.count, keys=mean.size,
                                 region=grid_region(c.rows, c.cols, (side, side)),
                                 key=_key(c.peak[0] * side + c.peak[1], side, att.query), peak=percent(c.peak_share))
    masked = ""
    if _has_mask(att):
        n = int(att.masked.sum())
        masked = ngettext("The {n} masked key gets {share}.", "The {n} masked keys get {share}.", n).format(
            n=n, share=small_share(float(mean[att.masked.reshape(-1)].sum())))
    return sentences(text, spread, masked)


def _has_mask(att: QueryAttention) -> bool:
    return att.masked is not None and bool(att.masked.any())


def head_mosaic(att: QueryAttention, block: int) -> str:
    """The mosaic of each head's attention of the query over its window (`vitviz.viz.swin.head_mosaic`): which key
    each head attends to most, and with how much."""
    side, heads = att.side, len(att.probs)
    top, weights = att.top_keys, att.top_weights
    groups: dict[int, list[int]] = {}
    for h, (k, _r, _c) in enumerate(top):
        groups.setdefault(k, []).append(h)
    items = []
    for k, hs in groups.items():
        low, high = float(weights[hs].min()), float(weights[hs].max())
        share = percent(low) if percent(low) == percent(high) else _("{low} to {high}").format(
            low=percent(low), high=percent(high))
        items.append(ngettext("head {heads}: {key}, {share}", "heads {heads}: {key}, {share}", len(hs)).format(
            heads=listing([str(h + 1) for h in hs]), key=_key(k, side, att.query), share=share))
    largest = float(att.probs[:, att.masked.reshape(-1)].sum(1).max()) if _has_mask(att) else 0.0
    return sentences(
        _("{block}: query {query}'s attention over the {m}×{m} window in each of its {heads} heads (inferno, "
          "stretched per head; the query framed).").format(block=block_name(block), query=att.query, m=side,
                                                          heads=heads),
        _("The strongest key of each head: {items}.").format(items=_("; ").join(items)),
        ngettext("The {n} masked key gets {share} in every head.",
                 "The {n} masked keys get {share} in every head.",
                 int(att.masked.sum())).format(n=int(att.masked.sum()), share=small_share(largest))
        if _has_mask(att) else "")


# ---- 4. Relative position bias ----------------------------------------------------------------------------------

def _offset(index: int, window: int) -> str:
    """Row `index` of a ((2M−1)², …) table as its offset: "(dy −2, dx +3)"."""
    dy, dx = divmod(index, 2 * window - 1)
    return f"(dy {dy - window + 1:+d}, dx {dx - window + 1:+d})"


def near_and_far(values: np.ndarray, window: int) -> tuple[float, float]:
    """The mean bias of a table ((2M−1)², …) at offsets within one token (max(|dy|, |dx|) ≤ 1) and at the largest
    offsets (max(|dy|, |dx|) = M − 1)."""
    side = 2 * window - 1
    dy, dx = np.divmod(np.arange(side * side), side)
    reach = np.maximum(np.abs(dy - window + 1), np.abs(dx - window + 1))
    values = np.asarray(values, np.float64).reshape(side * side, -1)
    return float(values[reach <= 1].mean()), float(values[reach == window - 1].mean())


def _near_far_text(values: np.ndarray, window: int) -> str:
    near, far = near_and_far(values, window)
    return _("Mean bias within one token {near:+.3g}, at the largest offsets (±{reach}) {far:+.3g}.").format(
        near=near, far=far, reach=window - 1)


def bias_table(table: np.ndarray, window: int, block: int) -> str:
    """The bias table chart ((2M−1)², heads): its value range with the offsets and heads of the extremes
    (`vitviz.viz.swin.bias_table_figure`)."""
    table = np.asarray(table, np.float64)
    rows, heads = table.shape
    (lr, lh), (hr, hh) = (np.unravel_index(f(table), table.shape) for f in (np.argmin, np.argmax))
    return sentences(
        _("Relative position bias table of {block}: {rows} rows, one per offset (dy, dx) from −{reach} to +{reach}, "
          "× {heads} heads; cividis colours: dark blue negative, grey 0, yellow positive.").format(
            block=block_name(block), rows=rows, reach=window - 1, heads=heads),
        _("Values from {low:.3g} (head {low_head}, offset {low_offset}) to {high:.3g} (head {high_head}, offset "
          "{high_offset}).").format(low=table[lr, lh], low_head=int(lh) + 1, low_offset=_offset(int(lr), window),
                                     high=table[hr, hh], high_head=int(hh) + 1, high_offset=_offset(int(hr), window)),
        _near_far_text(table, window))


def bias_grid(table: np.ndarray, window: int, head: int, query: int, used: int) -> str:
    """One head's table as its (2M−1)×(2M−1) grid of offsets, and the m×m block the query reads, outlined
    (`vitviz.viz.swin.bias_grid_figure`, m = `used`)."""
    values = np.asarray(table, np.float64)[:, head]
    low, high = int(np.argmin(values)), int(np.argmax(values))
    qi, qj = divmod(query, used)
    return sentences(
        _("Head {head}'s bias as a {side}×{side} grid of offsets, dy down and dx across from −{reach} to +{reach}: "
          "from {low:.3g} at {low_offset} to {high:.3g} at {high_offset}; {zero:.3g} at (0, 0).").format(
            head=head + 1, side=2 * window - 1, reach=window - 1, low=values[low], low_offset=_offset(low, window),
            high=values[high], high_offset=_offset(high, window), zero=values[(window - 1) * (2 * window)]),
        _near_far_text(values, window),
        _("Outlined: the {m}×{m} offsets query {query} (row {row}, column {col}) reads, dy {dy} and dx {dx}.").format(
            m=used, query=query, row=qi, col=qj, dy=_offset_span(qi, used), dx=_offset_span(qj, used)))


def _offset_span(q: int, m: int) -> str:
    """The offsets q − k of a query at q to the keys k = 0 … m − 1: "−3 … +3"."""
    return f"{q - m + 1:+d} … {q:+d}"


def query_bias(bias: np.ndarray, query: int, head: int) -> str:
    """The M×M bias (M²,) the query adds over its window's keys (`vitviz.viz.swin.bias_query_figure`)."""
    side = round(np.asarray(bias).size ** 0.5)
    grid = np.asarray(bias, np.float64).reshape(side, side)
    qi, qj = divmod(query, side)
    return sentences(
        _("{extremes}.").format(extremes=describe_extremes(grid, _(
            "The bias query {query} (row {row}, column {col}; outlined) adds in head {head} over its {m}×{m} window's "
            "keys").format(query=query, row=qi, col=qj, head=head + 1, m=side))),
        _("On itself: {value:.3g}.").format(value=grid[qi, qj]))


# ---- 5. Patch merging -------------------------------------------------------------------------------------------

def stage_grid(layout: StageLayout, stage: int) -> str:
    """One stage's picture: the image under its token grid (`vitviz.viz.swin.grid_picture`)."""
    (h, w), px = layout.grid, layout.partition.token_px
    return _("Stage {stage}: the image under its {h}×{w} token grid, each token covering {px}×{px} px, {c} "
             "channels.").format(stage=stage + 1, h=h, w=w, px=px, c=layout.channels)


def merge(mg: MergeView, stage: int) -> str:
    """The merging picture: the top-left corner of the stage's tokens in their 2×2 groups, each token labelled by
    its place in the concatenation (`vitviz.viz.swin.merge_picture`), and what the merging makes of them."""
    rows, cols = mg.corner
    (h, w), (mh, mw) = mg.grid, mg.merged_grid
    places = listing([f"x{i} {_(MERGE_PLACES[i])}" for i in range(len(MERGE_OFFSETS))])
    return sentences(
        _("The top-left {rows}×{cols} of stage {stage}'s {h}×{w} tokens over the image, in {groups} groups of 2×2 "
          "(black borders); each token labelled by its place in the concatenation: {places}.").format(
            rows=rows, cols=cols, stage=stage + 1, h=h, w=w, groups=(rows // 2) * (cols // 2), places=places),
        _("Zero tokens pad the odd side (grey, hatched).") if mg.corner_has_padding else "",
        _("Merging makes each group one token: {h}×{w} tokens × {c} channels become {mh}×{mw} × {c4}, then × {c2}: "
          "half the grid, twice the channels.").format(h=h, w=w, c=mg.channels, mh=mh, mw=mw,
                                                      c4=mg.concatenated_channels, c2=mg.output_channels))


# ---- 6. Cost ----------------------------------------------------------------------------------------------------

def multiply_adds(x: int) -> str:
    """A count of multiply-adds as the page writes it: 1.89 G, 29.50 M, 512."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f} {unit}"
    return str(x)


def cost(curves: CostCurves, resolution: int) -> str:
    """The cost chart (`vitviz.viz.swin.cost_figure`): the two attention terms and the projections against the
    input's side, and their values at the marked resolution."""
    msa, wmsa = curves.at(resolution)
    side, first, last = curves.side(resolution), curves.resolutions[0], curves.resolutions[-1]
    crossing = curves.crossing
    if crossing == first:
        projections = _("MSA's attention term is above the projections at every size shown.")
    elif crossing is None:
        projections = _("MSA's attention term stays below the projections at every size shown.")
    else:
        projections = _("MSA's attention term overtakes the projections from {r} px on.").format(r=crossing)
    return sentences(
        _("Multiply-adds of one attention layer of stage {stage} (C = {c}) against square inputs from {first} to "
          "{last} px, log scale: MSA's attention term (vermilion, circles) grows with the square of the tokens, "
          "W-MSA's (blue, squares) only linearly; the projections (black, dotted) are the same for both.").format(
            stage=curves.stage + 1, c=curves.channels, first=first, last=last),
        projections,
        _("At {r} px (dotted line; {h}×{h} tokens): MSA attention {msa}, W-MSA attention {wmsa} (M = {m}), "
          "{ratio:.1f}× less; projections {proj}.").format(
            r=resolution, h=side, msa=multiply_adds(msa.attention), wmsa=multiply_adds(wmsa.attention), m=curves.window,
            ratio=msa.attention / wmsa.attention, proj=multiply_adds(msa.projections)))
