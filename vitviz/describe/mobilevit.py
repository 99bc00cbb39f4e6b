"""Text alternatives of the MobileViT page (stage 8), each computed from the very `BlockView` (and the arrays of it)
that its picture or chart draws: the image under the block's map, one channel of a feature map, the clickable
offset map and its legend, one channel of the unfolded X_U, one head's attention across the patches, and the
receptive field of the selected pixel through the whole block and through its convolutions alone."""
from __future__ import annotations

import numpy as np

from ..i18n import _, sentences
from ..mobilevit_blocks import AttentionRows, BlockView, PixelSelection, ReceptiveField, Unfolding
from ..viz.mobilevit import OFFSET_NAMES
from .common import describe_distribution, describe_extremes, grid_region, percent

TOP_PATCHES = 3  # the patches named, with their weights, for one head's attention


def _listing(items: list[str]) -> str:
    """Items as one list inside a sentence ("a; b; c"), with the language's separator."""
    return _("; ").join(items)


def strongest_ninth(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the ninth of a map (its rows and columns each cut in three, as evenly as they go) with the
    highest mean value: where the map is strongest, as a student points at it."""
    h, w = values.shape
    parts = [(rows, cols) for rows in np.array_split(np.arange(h), 3) for cols in np.array_split(np.arange(w), 3)
             if rows.size and cols.size]
    return max(parts, key=lambda part: float(values[np.ix_(*part)].mean()))


def photo(block: BlockView) -> str:
    """The model's input stretched over the block's map, beside the feature maps."""
    u = block.unfolding
    return _("Your image as the model sees it, stretched over the block's {h}×{w} map: one map pixel covers "
             "{stride}×{stride} input pixels.").format(h=u.height, w=u.width, stride=block.stride)


def feature_map(maps: np.ndarray, channel: int, label: str) -> str:
    """Channel `channel` of a (channels, H, W) map drawn from its minimum (dark violet) to its maximum (yellow):
    its range, where its extremes are, and the ninth of the map where it is strongest on average."""
    values = np.asarray(maps[channel], dtype=np.float64)
    h, w = values.shape
    head = _("{label}, channel {channel}, a {h}×{w} map").format(label=label, channel=channel, h=h, w=w)
    if values.max() == values.min():
        return _("{head}: every value is {value:.3g} (all dark violet).").format(head=head, value=values.max())
    rows, cols = strongest_ninth(values)
    return _("{head} from dark violet (lowest) to yellow (highest): {extremes}; strongest on average in "
             "{where}.").format(head=head, extremes=describe_extremes(values, _("values")),
                                where=grid_region(rows, cols, values.shape))


def _offsets(u: Unfolding) -> str:
    """How the offsets are laid out inside a patch, in words."""
    if u.p == 1:
        return _("Every patch is a single pixel: every pixel has offset p = 0, and there is one sequence.")
    return _("Each pixel is tinted with the colour of its offset p, its place inside its patch: P = {p} offsets, "
             "numbered row by row from 0 at a patch's top left to {last} at its bottom right.").format(
        p=u.p, last=u.p - 1)


def offset_map(block: BlockView, pixel: PixelSelection) -> str:
    """The clickable offset map: the patch grid, the offsets, the selected pixel's (p, n) and its sequence."""
    u = block.unfolding
    hr, wr = u.resized
    nh, nw = u.grid
    resized = (_("X_L was resized from {h}×{w} to {hr}×{wr} to be unfolded.").format(
        h=u.height, w=u.width, hr=hr, wr=wr) if u.needs_resize else "")
    return sentences(
        _("The {hr}×{wr} map unfolded, over your image, cut by thick lines into {nh}×{nw} = {n} patches of "
          "{ph}×{pw} pixels.").format(hr=hr, wr=wr, nh=nh, nw=nw, n=u.n, ph=u.ph, pw=u.pw),
        resized, _offsets(u),
        _("The selected pixel, row {r}, column {c}, is framed: offset p = {p} (row {i}, column {j} inside its patch) "
          "of patch n = {n} (patch row {a}, column {b}); the {count} pixels of its sequence, one in every patch, are "
          "marked in black.").format(r=pixel.r, c=pixel.c, p=pixel.p, i=pixel.offset_row, j=pixel.offset_col,
                                     n=pixel.n, a=pixel.patch_row, b=pixel.patch_col, count=u.n),
        _("Select a pixel by clicking it, or with the row and column inputs above the tabs."))


def legend(u: Unfolding) -> str:
    """One patch enlarged: each offset's place and colour (the colours repeat beyond `len(OFFSET_NAMES)`)."""
    if u.p > len(OFFSET_NAMES):
        return _("One {ph}×{pw} patch enlarged: its {p} pixels numbered row by row, p = row·{pw} + column, from 0 at "
                 "the top left to {last} at the bottom right, in {colours} colours that repeat every {colours} "
                 "offsets.").format(ph=u.ph, pw=u.pw, p=u.p, last=u.p - 1, colours=len(OFFSET_NAMES))
    cells = [_("p = {p} at row {i}, column {j} ({colour})").format(p=i * u.pw + j, i=i, j=j,
                                                                     colour=_(OFFSET_NAMES[i * u.pw + j]))
             for i in range(u.ph) for j in range(u.pw)]
    return _("One {ph}×{pw} patch enlarged, each pixel numbered with its offset: {cells}.").format(
        ph=u.ph, pw=u.pw, cells=_listing(cells))


def unfolded(block: BlockView, channel: int, pixel: PixelSelection) -> str:
    """One channel of the traced X_U as the P × N heatmap: its range, where its extremes are, the framed cell."""
    values = block.taps["unfolded"][:, :, channel]
    p_count, n = values.shape
    low, high = np.unravel_index(np.argmin(values), values.shape), np.unravel_index(np.argmax(values), values.shape)
    return sentences(
        _("Heatmap of X_U, channel {channel}: {p} rows, one per offset p (a sequence), by {n} columns, one per patch "
          "n, from dark violet (lowest) to yellow (highest).").format(channel=channel, p=p_count, n=n),
        _("Values from {low:.3g} (p = {low_p}, n = {low_n}) to {high:.3g} (p = {high_p}, n = {high_n}).").format(
            low=float(values[low]), low_p=int(low[0]), low_n=int(low[1]), high=float(values[high]),
            high_p=int(high[0]), high_n=int(high[1])),
        _("The framed cell is the selected pixel, p = {p}, n = {n}: {value:.3g}.").format(
            p=pixel.p, n=pixel.n, value=float(values[pixel.p, pixel.n])))


def top_patches(row: np.ndarray, count: int = TOP_PATCHES) -> np.ndarray:
    """The `count` patches with the largest weights of an attention row (N,), largest first (ties: lower n)."""
    return np.argsort(-row, kind="stable")[:count]


def attention_head(block: BlockView, attention: AttentionRows, head: int) -> str:
    """One head's picture: where the selected pixel's attention goes among the N patches at its offset, the
    patches it reads most with their shares, and the weights' range against uniform attention."""
    u = block.unfolding
    row = attention.rows[head]
    p, n = attention.query
    nw = u.grid[1]
    top = [_("patch {n} (patch row {row}, column {col}) {share}").format(n=int(k), row=int(k) // nw,
                                                                          col=int(k) % nw, share=percent(row[k]))
           for k in top_patches(row)]
    return sentences(
        _("Head {head} of {heads}, layer {layer}: the selected pixel (offset p = {p}, patch n = {n}) attends to the "
          "{count} pixels at offset {p}, one per patch; each patch is tinted brighter the more attention it "
          "gets.").format(head=head + 1, heads=attention.rows.shape[0], layer=attention.layer + 1, p=p, n=n,
                          count=u.n),
        _("Where it goes: {distribution}; most: {patches}.").format(
            distribution=describe_distribution(row.reshape(u.grid), _("the attention")), patches=_listing(top)),
        _("Weights from {low:.4f} to {high:.4f}; uniform attention would give each patch {uniform:.4f}.").format(
            low=float(row.min()), high=float(row.max()), uniform=attention.uniform))


def receptive_field(field: ReceptiveField) -> str:
    """The whole block's receptive field of the selected output pixel against its convolutions' alone."""
    (r, c), (h, w) = field.pixel, field.mask.shape
    conv = _("its two 3×3 convolutions alone reach {seen} ({share}).").format(
        seen=field.conv_seen, share=percent(field.conv_seen / field.total))
    if field.complete:
        return _("Output pixel ({r}, {c}) of the {h}×{w} map depends on all {total} block-input pixels (100 %): "
                 "nothing is darkened; {conv}").format(r=r, c=c, h=h, w=w, total=field.total, conv=conv)
    rows, cols = np.nonzero(~field.mask)
    return _("Output pixel ({r}, {c}) of the {h}×{w} map depends on {seen} of the {total} block-input pixels "
             "({share}); the {missing} out of its reach are darkened and hatched, {where}; {conv}").format(
        r=r, c=c, h=h, w=w, seen=field.seen, total=field.total, share=percent(field.share), missing=field.missing,
        where=grid_region(rows, cols, field.mask.shape), conv=conv)


def conv_field(field: ReceptiveField) -> str:
    """What the selected output pixel would depend on through the block's two 3×3 convolutions alone."""
    rows, cols = np.nonzero(field.conv_mask)
    r, c = field.pixel
    return _("Through its two 3×3 convolutions alone, without attention, output pixel ({r}, {c}) would depend on "
             "{seen} of the {total} pixels ({share}), {where}; the other {rest} are darkened and hatched.").format(
        r=r, c=c, seen=field.conv_seen, total=field.total, share=percent(field.conv_seen / field.total),
        where=grid_region(rows, cols, field.conv_mask.shape), rest=field.total - field.conv_seen)
