"""The Swin page's drawing: its notes, its stage table and its six steps (partition, cyclic shift, mask and attention,
relative position bias, patch merging, cost), each drawing one `vitviz.swin_windows.StageView` that the page
computed once per run. Pictures are cached on strings and ints (arrays passed unhashed, prefixed with _)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from ui.chrome import download_array, show_source
from ui.common import (chart, code_block, forget_outside, markdown_table, picture, shape_text, shared_figure,
                       short_key)
from vitviz.describe import swin as describe
from vitviz.i18n import _, language, N_, ngettext, sentences
from vitviz.models.swin import (
    PatchMerging,
    SwinBlock,
    region_labels,
    relative_position_index,
    resize_bias_table,
    shift_mask,
    window_partition,
)
from vitviz.swin_windows import MERGE_OFFSETS, StageView, WindowPartition
from vitviz.viz import swin as sv
from vitviz.viz.encode import jpeg, png

PICTURE_PX = 470  # width of the token-grid pictures (two per row at 1400 px)
# the two blocks of a stage, by the "Block" radio's options (bound to the URL: the options stay English)
BLOCK_NAMES = {"regular": N_("regular"), "shifted": N_("shifted")}
BLOCK_KINDS = tuple(BLOCK_NAMES)  # block 0, block 1
WINDOW_KINDS = {"interior": N_("an interior window"), "edge": N_("an edge window"), "corner": N_("the corner window")}

# The paper's equation of each step (Liu et al. 2021, §3.2 and §3.3), shown under its title
ROLL_EQUATION = (r"\hat z = \operatorname{roll}\big(z,\ (-s,-s),\ \text{dims}=(h, w)\big):\qquad "
                 r"\hat z[i, j] = z[(i+s) \bmod H_p,\ (j+s) \bmod W_p]")
MASK_EQUATION = (r"\operatorname{Attention}(Q,K,V) = \operatorname{SoftMax}\!\Big(\frac{QK^\top}{\sqrt d} + B + "
                 r"\text{mask}\Big)V,\qquad \text{mask}_{ij} = \begin{cases}0 & \text{label}(i) = \text{label}(j)\\"
                 r"-100 & \text{otherwise}\end{cases}")
BIAS_EQUATION = (r"\begin{aligned}B_{ij} &= \hat B\big[(\Delta y + M - 1)(2M - 1) + (\Delta x + M - 1)\big],\qquad "
                 r"\hat B \in \mathbb{R}^{(2M-1)^2 \times \text{heads}}\\"
                 r"(\Delta y, \Delta x) &= (y_i - y_j,\ x_i - x_j) \in [-M+1,\ M-1]^2\end{aligned}")
MERGE_EQUATION = (r"\begin{aligned}&x_0 = x[0{:}{:}2,\,0{:}{:}2],\quad x_1 = x[1{:}{:}2,\,0{:}{:}2],\quad "
                  r"x_2 = x[0{:}{:}2,\,1{:}{:}2],\quad x_3 = x[1{:}{:}2,\,1{:}{:}2]\\"
                  r"&\longrightarrow\ \operatorname{Linear}_{4C\to2C}\big(\operatorname{LN}"
                  r"([x_0\Vert x_1\Vert x_2\Vert x_3])\big)\ \in\ \mathbb{R}^{\lceil h/2\rceil\times\lceil w/2\rceil"
                  r"\times 2C}\end{aligned}")
COST_EQUATION = (r"\Omega(\text{MSA}) = \underbrace{4hwC^2}_{\text{projections}} + \underbrace{2(hw)^2C}_{QK^\top,\ AV}"
                 r"\qquad \Omega(\text{W-MSA}) = \underbrace{4hwC^2}_{\text{the same}} + \underbrace{2M^2hwC}_{QK^\top,\ AV"
                 r"\text{ in windows}}")


@dataclass(frozen=True)
class ShownInput:
    """The model's input image as the student sees it, and its cache key (image, size, aspect)."""

    image: Image.Image
    key: str


def steps(view: StageView, photo: ShownInput) -> tuple[Callable[[], None], ...]:
    """The six steps for `ui.chrome.lazy_tabs`, in the order of the page's tabs."""
    return (functools.partial(partition, view, photo), functools.partial(cyclic_shift, view),
            functools.partial(mask_and_attention, view, photo), functools.partial(position_bias, view),
            functools.partial(patch_merging, view, photo), functools.partial(cost, view))


# ---- small text helpers --------------------------------------------------------------------------------------------

def _check(label: str, value: float) -> str:
    return f"{label:<64s} max |Δ| = {value:.3g}" + ("   ✓ exact" if value == 0 else "")


def _grid_text(grid: list[list[str]]) -> str:
    return "\n".join(" ".join(row) for row in grid)


def _block_name(kind: str) -> str:
    """ "regular" or "shifted", in the page's language."""
    return _(BLOCK_NAMES[kind])


def _masked_windows(kind: str, n: int, masked: int, pairs: int) -> str:
    """How many windows of one kind (`MaskStats.kinds`' "interior", "edge", "corner") and how many pairs each masks."""
    if kind == "corner":
        text = ngettext("corner window: {n} × **{masked} / {pairs}** pairs masked",
                        "corner windows: {n} × **{masked} / {pairs}** pairs masked", n)
    elif kind == "edge":
        text = ngettext("edge window: {n} × **{masked} / {pairs}** pairs masked",
                        "edge windows: {n} × **{masked} / {pairs}** pairs masked", n)
    else:
        text = ngettext("interior window: {n} × **{masked} / {pairs}** pairs masked",
                        "interior windows: {n} × **{masked} / {pairs}** pairs masked", n)
    return text.format(n=n, masked=masked, pairs=pairs)


def _phone_table(key: str, table: str, where=st) -> None:
    """A markdown table whose cells tighten on a phone, so that its wrapping columns fit 320 px without scrolling
    sideways (WCAG 1.4.10). Its container's key names the CSS class the rule selects."""
    cells = f".st-key-{key} :is(th, td)"
    where.html(f"<style>@media (max-width: 640px) {{ {cells} {{ padding: 0.25rem; font-size: 0.85rem; }} }} "
               f"@media (max-width: 360px) {{ {cells} {{ font-size: 0.75rem; }} }}</style>")
    where.container(key=key).markdown(table)


def _heading(title: str, equation: str) -> None:
    """A step's title and the paper's equation for it."""
    st.subheader(title)
    st.latex(equation)


def _legend(name: str, where=st) -> None:
    """A colour legend under a picture, as HTML: the browser writes its words (in the page's language)."""
    if name == "windows":
        items = [(sv.WINDOW_COLOURS, _("windows")), ((sv.ROW_STRIP,), _("wrapped rows"), "\\"),
                 ((sv.COL_STRIP,), _("wrapped columns"), "/"), ((sv.PAD_GREY,), _("padding"), "/")]
    elif name == "strips":
        items = [((sv.ROW_STRIP,), _("first s rows (wrap to the bottom)"), "\\"),
                 ((sv.COL_STRIP,), _("first s columns (wrap to the right)"), "/")]
    elif name == "regions":
        items = [((colour,), str(i)) for i, colour in enumerate(sv.REGION_COLOURS)]
    else:
        items = [((colour,), f"x{i} = x[{dh}::2, {dw}::2]")
                 for i, (colour, (dh, dw)) in enumerate(zip(sv.MERGE_COLOURS, MERGE_OFFSETS))]
    where.markdown(sv.legend_html(items), unsafe_allow_html=True)


# ---- cached pictures and figures -----------------------------------------------------------------------------------

@st.cache_data(max_entries=64, show_spinner=False)
def _partition_jpeg(photo_key: str, part: WindowPartition, cell: int, selected: int, _photo) -> bytes:
    return jpeg(sv.partition_picture(_photo, part, cell, selected))


@st.cache_data(max_entries=64, show_spinner=False)
def _feature_png(key: str, which: str, step: int, part: WindowPartition, cell: int, _rgb) -> bytes:
    """`which`: "before" (the map z), "step" (z rolled by (-step, -step)) or "after" (the rolled map as given)."""
    moved = {"before": 0, "step": step, "after": part.shift}[which]
    # 256 colours (2.5 ms): 8 kB instead of 21 kB for a 280 px map of a few thousand flat cells, no visible change
    return png(sv.rolled_feature_picture(_rgb, part, cell, moved, roll_map=which == "step",
                                         window_lines=moved == part.shift and which != "before"), colors=256, level=6)


@st.cache_data(max_entries=32, show_spinner=False)
def _labels_png(key: str, back: int, window: int, cell: int, _labels) -> bytes:
    return png(sv.labels_picture(_labels, window, cell, back=back), level=1)


# (the selected window, the query) are one argument: the picture's place, hashed with the partition
@st.cache_data(max_entries=64, show_spinner=False)
def _footprint_jpeg(key: str, part: WindowPartition, where: tuple[int, int], cell: int, _photo, _values) -> bytes:
    return jpeg(sv.window_attention_picture(_photo, part, cell, *where, _values))


@st.cache_data(max_entries=64, show_spinner=False)
def _mosaic_png(key: str, query: int, cell: int, columns: int, _maps, _masked) -> bytes:
    return png(sv.head_mosaic(_maps, query, cell, _masked, columns), level=1)


@st.cache_data(max_entries=16, show_spinner=False)
def _merge_png(photo_key: str, token_px: int, grid: tuple[int, int], _photo) -> bytes:
    """Flat colours, lines and labels: a 64-colour PNG, 19 kB where a JPEG (quality 90) was 105 kB."""
    picture, _shown = sv.merge_picture(_photo, token_px, grid)
    return png(picture, colors=64, level=9)


@st.cache_data(max_entries=16, show_spinner=False)
def _grids_jpeg(photo_key: str, grids: tuple[tuple[int, tuple[int, int]], ...], _photo) -> list[bytes]:
    """One picture per stage: (token_px, grid) each."""
    return [jpeg(sv.grid_picture(_photo, token_px, grid, width=220)) for token_px, grid in grids]


@st.cache_resource(max_entries=96, show_spinner=False)
def _figure(key: str, lang: str, _make) -> go.Figure:
    """A figure built once per key and language and shared (nobody mutates it). Not validated here — 13 ms a figure;
    the figure functions' output is validated in tests/test_viz_swin.py — and not re-validated by st.plotly_chart."""
    return shared_figure(_make())


@st.cache_data(max_entries=64, show_spinner=False)
def _mask_check(key: str, _view: StageView) -> float:
    """`StageView.mask_check` (a Python loop over M⁴ pairs) once per run, shift and window."""
    return _view.mask_check


# ---- above the tabs ------------------------------------------------------------------------------------------------

def notes(view: StageView, checkpoint_patch: int, warning: str | None) -> None:
    """What the page shows, honestly: random weights, an adapted M or P, a stage no larger than a window, a shift the
    checkpoint does not use, an input size it was not trained on."""
    sel, plan, (h, w) = view.selection, view.plan, view.run.grid
    M, M0, P = sel.window, view.checkpoint_window, plan.patch
    if warning:
        st.info(warning, icon=":material/info:")
    if M != M0:
        st.info(
            _("**Adapted model: M = {m} instead of the checkpoint's {m0}.** Every block's relative-position-bias table "
              "(one bias per head for each of the ({side0})² = {rows0} offsets of a {m0}×{m0} window) is "
              "resampled **bicubically** (align_corners=False, as an image per head) to ({side})² = "
              "{rows} offsets — what the model's `window_size` argument does (`resize_bias_table`, as timm's "
              "`resize_rel_pos_bias_table_simple`; timm's default `resize_rel_pos_bias_table` interpolates on BEiT's "
              "geometric grid instead). Shifted blocks then use s = ⌊{m}/2⌋ = {half}. All other weights are the "
              "checkpoint's. Swin-T never saw {m}×{m} windows in training: attention is computed exactly, but what it "
              "attends to is the checkpoint's best guess.").format(
                m=M, m0=M0, side0=view.checkpoint_table_side, rows0=view.checkpoint_table_rows, side=view.table_side,
                rows=view.table_rows, half=view.half_window), icon=":material/tune:")
    if P != checkpoint_patch:
        st.info(
            _("**Adapted model: P = {p} instead of the checkpoint's {p0}.** A new model shares every weight with the "
              "checkpoint except the patch embedding, whose 96×3×{p0}×{p0} kernel is resampled to 96×3×{p}×{p} with "
              "FlexiViT's pseudo-inverse resize (an input patch that is a bilinear upsample of a {p0}×{p0} patch gives "
              "exactly the checkpoint's token). Swin has no absolute position embedding to interpolate. Expect deeper "
              "stages to degrade: the model was trained at P = 4. Patches smaller than 4 are not offered: at 512 px "
              "they would make 65,536 tokens in stage 1.").format(p=P, p0=checkpoint_patch), icon=":material/tune:")
    if view.clamped:
        n = view.partition.n_windows
        note = ngettext(
            "**Stage {stage} is no larger than one window here:** its map is {h}×{w} and min({h}, {w}) = {short} ≤ M = "
            "{M}, so the model's rule (`window_and_shift`, as the original code) attends it with **{m}×{m} window and "
            "shift 0** ({n} window): no shifted windows and no mask in this stage, whatever s is.",
            "**Stage {stage} is no larger than one window here:** its map is {h}×{w} and min({h}, {w}) = {short} ≤ M = "
            "{M}, so the model's rule (`window_and_shift`, as the original code) attends it with **{m}×{m} windows and "
            "shift 0** ({n} windows): no shifted windows and no mask in this stage, whatever s is.",
            n).format(stage=sel.stage + 1, h=h, w=w, short=view.partition.short_side, M=M, m=view.partition.window, n=n)
        if view.partition.window < M:
            note = sentences(note, _("The bias is read from the central ({used})² rows of the ({side})² table.").format(
                used=view.used_table_side, side=view.table_side))
        st.warning(note, icon=":material/crop_free:")
    elif not view.shifted.traced:
        st.info(
            _("**Shift s = {s}, but the checkpoint's shifted blocks use s = ⌊{m}/2⌋ = {s_model}.** The shifted "
              "block below is the real block's own `pad → shift → partition → window_attention` run again on its "
              "traced input with s = {s} (mask from the same `shift_mask`): a what-if, not the checkpoint's forward "
              "pass. Set s = {s_model} to see the traced values.").format(s=view.partition.shift, m=M,
                                                                            s_model=view.checkpoint_shift),
            icon=":material/swap_horiz:")
    if plan.input_size != (224, 224):
        st.caption(_("Input {h}×{w} px. Swin-T was trained on 224×224: set the sidebar's resolution to 224 (and "
                     "aspect off) to see the checkpoint's own sizes.").format(h=plan.input_size[0],
                                                                              w=plan.input_size[1]))


def stage_table(view: StageView) -> None:
    """The four stages at this input: tokens, channels, heads, pixels per token, windows and shift."""
    plan, stage = view.plan, view.selection.stage
    rows = []
    for i, layout in enumerate(plan.stages):
        (sh, sw), part = layout.grid, layout.partition
        mark = _(" ← this stage") if i == stage else ""
        windows_i = (_("{n} of {m}×{m}").format(n=part.n_windows, m=part.window)
                     + (_(" (no shift: map ≤ M)") if layout.clamped else f", s\u00a0=\u00a0{part.shift}"))
        rows.append([f"**{i + 1}**{mark}" if mark else str(i + 1), f"{sh}×{sw} × {layout.channels}",
                     str(layout.heads), f"{part.token_px}×{part.token_px} px", windows_i])
    (in_h, in_w), (h, w) = plan.input_size, view.run.grid
    with st.expander(_("The four stages at this input ({h}×{w} px, P = {p}, M = {m}): shapes").format(
            h=in_h, w=in_w, p=plan.patch, m=plan.window), icon=":material/account_tree:", expanded=False):
        header = [_("stage"), _("tokens h×w × channels C"), _("heads"), _("one token covers"),
                  _("windows (M×M), shift s")]
        _phone_table("sw-stages", markdown_table(header, rows))
        st.caption(_("Token grids and channels follow the model's rules (patch embedding ⌈H/P⌉ × ⌈W/P⌉; each merging "
                     "pads to even sides and halves them; `config.dims`) — the tests compare them with traced tensors "
                     "at many sizes; stage {stage}'s {h}×{w}×{c} is read from this run's traced tensor. Windows and "
                     "shift come from the model's own `window_and_shift` rule.").format(
            stage=stage + 1, h=h, w=w, c=view.run.channels))


# ---- 1. Partition --------------------------------------------------------------------------------------------------
def partition(view: StageView, photo: ShownInput) -> None:
    """Window partition of both blocks over the image (§3.2, Fig. 2)."""
    st.subheader(_("1 · Window partition"))
    (h, w), part, chosen, C = view.run.grid, view.partition, view.chosen, view.run.channels
    (hp, wp), window, nwin = part.padded, part.window, part.n_windows
    st.latex(rf"\underbrace{{{h}\times{w}}}_{{h\times w\text{{ tokens}}}}\ \xrightarrow{{\text{{pad}}}}\ {hp}\times{wp}"
             rf"\ \xrightarrow{{\text{{partition}}}}\ \frac{{{hp}}}{{{window}}}\cdot\frac{{{wp}}}{{{window}}} = {nwin}"
             rf"\text{{ windows}}\ \times\ {window}^2 = {part.tokens_per_window}\text{{ tokens}}\ \times\ C = {C}")
    st.markdown(
        _("The traced `{tap}` has shape **{shape}** = (windows, tokens per window, C): **{n} windows** of **{t} "
          "tokens** each, attention runs inside each window separately. Stage {stage}: **{h} × {w}** tokens of C = {c} "
          "channels, each covering {px}×{px} input pixels.").format(
            tap=f"{view.tap_prefix}.{view.selection.block}.windows", shape=shape_text(chosen.windows_shape),
            n=chosen.n_windows, t=chosen.tokens_per_window, stage=view.selection.stage + 1, h=h, w=w, c=C,
            px=part.token_px))
    if (hp, wp) != (h, w):
        st.warning(
            _("**{h} × {w} is not a multiple of the {m} × {m} window.** The block pads the map with zero tokens "
              "on the right and bottom to **{hp} × {wp}** ({rows} rows, {cols} columns, grey hatched below) before "
              "shifting and partitioning, and crops them off again after attention. They take part in attention like "
              "any other token (transformers and the original code do the same).").format(
                h=h, w=w, m=window, hp=hp, wp=wp, rows=part.padding_added[0], cols=part.padding_added[1]),
            icon=":material/padding:")
    cell = sv.cell_size(hp, wp, PICTURE_PX, 520)
    win = view.selection.selected
    a, b = st.columns(2, gap="medium")
    for col, v, name in ((a, view.regular, _("regular (W-MSA)")), (b, view.shifted, _("shifted (SW-MSA)"))):
        caption = _("Block {n} · {name}: {windows} windows of {m}×{m}, shift {s}").format(
            n=v.block + 1, name=name, windows=v.n_windows, m=v.window, s=v.shift)
        if v.shift:
            caption += _(" — the windows of the rolled map, drawn where their tokens sit in the image")
        picture(_partition_jpeg(photo.key, v.partition, cell, win, photo.image), where=col, width="stretch",
                caption=caption, alt=describe.partition(v.partition, win, v.block))
    _legend("windows")
    st.caption(_("Each token is tinted with its window's colour (Okabe–Ito, colour-blind safe; a 2×2 checker, so "
                 "windows side by side differ) and windows are outlined in black; padding tokens are grey with dark "
                 "hatching. In the shifted block the **wrapped strips** are hatched: the first s rows (vermilion, "
                 "hatched \\\\) and the first s columns (blue, hatched //) belong to windows on the far side of the "
                 "map. Yellow frames: window {win}, the selected window (above the tabs).").format(win=win))
    show_source(window_partition, SwinBlock.pad, SwinBlock.partition)


# ---- 2. Cyclic shift -----------------------------------------------------------------------------------------------
def cyclic_shift(view: StageView) -> None:
    """The shifted block's 2-D roll, its reverse, and the nine regions (§3.2, Fig. 4)."""
    _heading(_("2 · Cyclic shift: a 2-D roll, not a shift along the token sequence"), ROLL_EQUATION)
    s, (hp, wp) = view.partition.shift, view.partition.padded
    if s == 0:
        st.info(_("With s = 0 nothing moves: the shifted block attends in the same windows as the regular block "
                  "(no shift in this stage: see the note above).") if view.clamped else
                _("With s = 0 nothing moves: the shifted block attends in the same windows as the regular block "
                  "(choose s > 0)."), icon=":material/info:")
    st.markdown(ngettext(
        "The shifted block rolls its LayerNormed, padded {hp}×{wp} map by **(−{s}, −{s})** with `torch.roll` on both "
        "spatial axes at once: the first s = {s} row moves to the bottom, the first {s} column to the right. Then the "
        "**same** regular partition as in the regular block cuts the rolled map — in the image, the windows have moved "
        "by {s} token down and right. Colours: the {c} channels of block 2's input projected on their 3 principal "
        "components (PCA), the same colours before and after, so each token keeps its colour as it moves.",
        "The shifted block rolls its LayerNormed, padded {hp}×{wp} map by **(−{s}, −{s})** with `torch.roll` on both "
        "spatial axes at once: the first s = {s} rows move to the bottom, the first {s} columns to the right. Then the "
        "**same** regular partition as in the regular block cuts the rolled map — in the image, the windows have moved "
        "by {s} tokens down and right. Colours: the {c} channels of block 2's input projected on their 3 principal "
        "components (PCA), the same colours before and after, so each token keeps its colour as it moves.",
        s).format(hp=hp, wp=wp, s=s, c=view.run.channels))
    _roll_pictures(view)
    st.markdown(_(
        "**The reverse roll.** After attention, `window_reverse` puts the windows back into the rolled map and "
        "`unshift` rolls it by **(+{s}, +{s})**: every token returns to its own place (checked above on the real "
        "tensors — the difference is exactly 0: a roll only moves numbers). Then the padding is cropped and the "
        "residual added.").format(s=s))
    show_source(SwinBlock.shift, SwinBlock.unshift, SwinBlock.reverse)
    _regions(view)
    _worked_example(view)


def _roll_pictures(view: StageView) -> None:
    """The map before, during and after the roll (a step slider), and the checks of the roll and its reverse."""
    s, part, shifted = view.partition.shift, view.partition, view.shifted
    if s:
        forget_outside("swstep", 0, s)
        step = int(st.slider(_("Roll step t: the map rolled by (−t, −t), t = 0 … {s}").format(s=s), 0, s, 1,
                             key="swstep",
                             help=_("Each step is torch.roll by one more token on both axes; t = s is the block's "
                                    "roll.")))
    else:
        step = 0
    hp, wp = part.padded
    fcell = sv.cell_size(hp, wp, 300, 320)
    rgb_key = short_key(view.key, "before")
    a, b, c = st.columns(3, gap="small")
    picture(_feature_png(rgb_key, "before", 0, part, fcell, view.run.before_rgb), where=a, width="stretch",
            caption=_("Before: block 2's map z ({hp}×{wp}), strips that will wrap marked").format(hp=hp, wp=wp),
            alt=describe.roll(part, 0, False))
    picture(_feature_png(rgb_key, "step", step, part, fcell, view.run.before_rgb), where=b, width="stretch",
            caption=_("roll(z, (−{t}, −{t})): the strips wrap around").format(t=step) if step
            else _("t = 0: not rolled yet"), alt=describe.roll(part, step, step == part.shift))
    after = (_("After: `{tap}` (traced), cut into {m}×{m} windows (white lines)") if shifted.traced
             else _("After: `{tap}` (re-run with your s), cut into {m}×{m} windows (white lines)"))
    picture(_feature_png(short_key(view.shift_key, "after"), "after", 0, part, fcell, shifted.shifted_rgb), where=c,
            width="stretch", caption=after.format(tap=f"{view.tap_prefix}.1.shifted", m=part.window),
            alt=describe.roll(part, part.shift, True))
    _legend("strips")
    checks = shifted.checks
    lines = []
    if "shift" in checks:
        lines.append(_check(f"block.shift(z, {s}) = torch.roll(z, (−{s}, −{s})) vs `shifted`", checks["shift"]))
    lines += [_check("window_reverse(`windows`) vs `shifted`", checks["reverse"]),
              _check(f"reverse roll: block.unshift(`shifted`, {s}) = roll(+{s}, +{s}) vs z", checks["unshift"])]
    if "partition" in checks:
        lines.insert(1, _check("window_partition(`shifted`) vs `windows`", checks["partition"]))
    code_block("\n".join(lines))


def _regions(view: StageView) -> None:
    """The nine regions of the rolled map, where they are in the image."""
    st.markdown("#### " + _("The nine regions"))
    st.latex(r"r(i) = \begin{cases}0 & i < L - M\\ 1 & L-M \le i < L-s\\ 2 & i \ge L - s\end{cases}"
             r"\qquad \text{label}(i,j) = 3\,r_h(i) + r_w(j)")
    s, (hp, wp), window = view.partition.shift, view.partition.padded, view.partition.window
    n_regions = view.mask_stats.regions
    if s:
        has = ngettext("The traced `{tap}` ({hp}×{wp}) has **{n} region**.",
                       "The traced `{tap}` ({hp}×{wp}) has **{n} regions**.", n_regions)
    else:
        has = ngettext("The traced `{tap}` ({hp}×{wp}) has **{n} region** (no shift: one region).",
                       "The traced `{tap}` ({hp}×{wp}) has **{n} regions** (no shift: one region).", n_regions)
    st.markdown(sentences(
        _("On the rolled map, each axis of length L has three bands: tokens that are in no last window, tokens in the "
          "last window that did not wrap, and the last s tokens, which **wrapped around** from the other side."),
        has.format(tap=f"{view.tap_prefix}.1.labels", hp=hp, wp=wp, n=n_regions)))
    lcell = sv.cell_size(hp, wp, 420, 420)
    labels, key = view.shifted.labels, short_key(view.shift_key, "labels")
    a, b = st.columns(2, gap="medium")
    picture(_labels_png(key, 0, window, lcell, labels), where=a, width="stretch",
            caption=_("Region labels on the rolled map (as traced), {m}×{m} windows outlined").format(m=window),
            alt=describe.regions(labels, window, 0))
    picture(_labels_png(key, s, window, lcell, labels), where=b, width="stretch",
            caption=_("The same labels rolled back by (+{s}, +{s}): where those tokens sit in the image").format(s=s),
            alt=describe.regions(labels, window, s))
    _legend("regions")
    st.caption(_("Region colours: 0 light grey, 1–8 Okabe–Ito colours; each region outlined (dashed) and numbered "
                 "where it is wide enough. A window that holds more than one region holds tokens that are not "
                 "neighbours in the image."))
    show_source(region_labels)


def _worked_example(view: StageView) -> None:
    """The A1 … D4 grid rolled and partitioned, and the tutorial error of rolling the flattened sequence."""
    with st.expander(_("Worked example: a 4×4 grid A1 … D4, M = 2, s = 1 (computed with torch.roll and "
                       "window_partition)"), icon=":material/grid_4x4:", expanded=True):
        ex = view.worked_example
        a, b, c = st.columns([2, 2, 3], gap="medium")
        a.markdown(_("**The grid**"))
        code_block(_grid_text(ex.names), where=a)
        b.markdown(_("**torch.roll by (−1, −1)**"))
        code_block(_grid_text(ex.rolled), where=b)
        c.markdown("**window_partition, M = 2**")
        # a table, not a code block: three narrow columns fit a phone's width, a 40-character line does not
        _phone_table("sw-example", markdown_table([_("window"), _("its tokens (row 1 / row 2)"), _("regions")],
                                                  [[str(i), f"{' '.join(wd[0])} / {' '.join(wd[1])}", str(r)]
                                                   for i, (wd, r) in enumerate(zip(ex.windows, ex.window_regions))]),
                     c)
        st.markdown(_(
            "Window 0 holds four image neighbours (no mask). Window 1 glues column 1 onto column 4 (two regions), "
            "window 2 glues row A under row D (two regions), and window 3 holds the four corners of the image — four "
            "regions, **every token masked from every other**: each attends only to itself."))
        st.error(_("**A common tutorial error:** shifting the flattened token sequence instead (`roll(x.flatten(), "
                   "-1)`) gives `{raster}` — every row slides into the next one and the windows mix tokens from "
                   "different rows. Swin rolls both spatial axes.").format(
                     raster=" / ".join(" ".join(r) for r in ex.raster)), icon=":material/error:")


# ---- 3. Mask and attention inside a window ------------------------------------------------------------------------
def mask_and_attention(view: StageView, photo: ShownInput) -> None:
    """The −100 mask of the selected window and what the real model attends to there."""
    _heading(_("3 · The shift mask and the attention inside one window"), MASK_EQUATION)
    _mask_text(view)
    _mask_panel(view)
    win, query = view.selection.selected, view.selection.query
    st.markdown("#### " + _("What the real model attends to in window {win}, query token {query}").format(
        win=win, query=query))
    _attention_pictures(view, photo)
    _attention_table(view)


def _mask_text(view: StageView) -> None:
    """How many regions and masked windows the shifted block has, and how many pairs the selected window masks."""
    s, stats, win = view.partition.shift, view.mask_stats, view.selection.selected
    if s:
        kinds = _("; ").join(_masked_windows(kind, n, masked, stats.pairs)
                             for kind, (n, masked) in stats.kinds.items())
        wr, wc = view.window_cell
        st.markdown(sentences(
            _("Shifted block, s = {s}: **{regions} regions** on the map, **{masked} of {n} windows** have a mask "
              "({kinds}).").format(s=s, regions=stats.regions, masked=stats.masked_windows,
                                   n=view.partition.n_windows, kinds=kinds),
            ngettext("Window **{win}** (row {row}, column {col}: {kind}) holds **{n} region**: **{masked} of {pairs} "
                     "pairs** (query, key) are masked.",
                     "Window **{win}** (row {row}, column {col}: {kind}) holds **{n} regions**: **{masked} of {pairs} "
                     "pairs** (query, key) are masked.", view.selected_regions).format(
                win=win, row=wr, col=wc, kind=_(WINDOW_KINDS[view.window_kind]), n=view.selected_regions,
                masked=stats.masked_pairs[win], pairs=stats.pairs)))
    else:
        st.markdown(_("No shift here: the mask is all zeros, every pair in window {win} may attend ({pairs} "
                      "pairs).").format(win=win, pairs=stats.pairs))


def _mask_panel(view: StageView) -> None:
    """The selected window's mask as a heat map, its region labels, and the mask's checks."""
    win, query, window = view.selection.selected, view.selection.query, view.partition.window
    qr, qc = view.query_cell
    wl, mask_w = view.selected_labels, view.selected_mask
    a, b = st.columns([3, 2], gap="medium")
    mask_title = _("Mask of window {win} ({n}×{n})").format(win=win, n=view.partition.tokens_per_window)
    chart(_figure(short_key(view.shift_key, "mask", win, query), language(),
                  lambda: sv.mask_figure(mask_w, wl, title=mask_title, query=query)),
          where=a, key="sw-mask", alt=describe.mask(mask_w, wl, win, query))
    wcell = max(8, min(48, 300 // window))
    picture(_labels_png(short_key(view.shift_key, "wlabels", win), 0, window, wcell, wl), where=b,
            width=min(300, wcell * window), caption=_("Region labels inside window {win} (rolled map)").format(win=win),
            alt=describe.window_regions(wl, win))
    b.caption(_("Row = query, column = key, in the window's row-major order. Dark and crossed out = −100. The "
                "outlined row is query {query} (row {row}, column {col} of the window). Hover shows each token's "
                "(row, col) and region r.").format(query=query, row=qr, col=qc))
    mask_lines = [_check(f"window {win}: mask vs pair-by-pair comparison of its labels",
                         _mask_check(short_key(view.shift_key, "bf", win), view))]
    if view.shifted.traced and view.shifted.mask is not None:
        (hp, wp), s = view.partition.padded, view.partition.shift
        mask_lines.append(_check(f"shift_mask({hp}, {wp}, {window}, {s}) vs traced `{view.tap_prefix}.1.mask`",
                                 view.shifted.checks["mask"]))
    code_block("\n".join(mask_lines))


def _attention_pictures(view: StageView, photo: ShownInput) -> None:
    """The query's attention over its window in the image (mean over heads) and per head, in both blocks."""
    win, query, window, heads = view.selection.selected, view.selection.query, view.partition.window, view.run.heads
    hp, wp = view.partition.padded
    fcell = sv.cell_size(hp, wp, PICTURE_PX, 440)
    keys = (view.key, view.shift_key)  # the regular block does not depend on the shift
    a, b = st.columns(2, gap="medium")
    for col, v, att, name, key in zip((a, b), view.blocks, view.attention, BLOCK_KINDS, keys):
        picture(_footprint_jpeg(short_key(key, v.block, "fp", win, query), v.partition, (win, query), fcell,
                                photo.image, att.mean), where=col, width="stretch",
                alt=describe.footprint(att, v.partition, win, v.block),
                caption=_("Block {n} ({name}): window {win} in the image, coloured by query {query}'s "
                          "attention (mean over heads; brighter = more)").format(
                    n=v.block + 1, name=_block_name(name), win=win, query=query))
    # up to 6 heads a row, fewer for large windows: cells of at least 6 px leave room for a masked key's cross
    columns = max(1, min(heads, 6, 480 // (window * 6)))
    mcell = min(40, 480 // (window * columns))
    for v, att, name, key in zip(view.blocks, view.attention, BLOCK_KINDS, keys):
        mosaic = (_("Block {n} ({name}), each of the {heads} heads: query {query}'s attention over the {m}×{m} window "
                    "(inferno, stretched per head; yellow frame = the query; grey × = masked key)")
                  if att.masked is not None and att.masked.any() else
                  _("Block {n} ({name}), each of the {heads} heads: query {query}'s attention over the {m}×{m} window "
                    "(inferno, stretched per head; yellow frame = the query)"))
        picture(_mosaic_png(short_key(key, v.block, "mosaic", win), query, mcell, columns,
                            att.maps, att.masked), alt=describe.head_mosaic(att, v.block),
                caption=mosaic.format(n=v.block + 1, name=_block_name(name), heads=heads, query=query, m=window))


def _attention_table(view: StageView) -> None:
    """Per head: the top key, its weight and the weight on itself, one table per block; the rows' checks; the
    download."""
    win, query, stage = view.selection.selected, view.selection.query, view.selection.stage
    header = [_("head"), _("top key"), _("its weight"), _("weight on itself")]
    for att, name in zip(view.attention, BLOCK_KINDS):
        rows = [[str(hd + 1), f"{k} ({kr}, {kc})", f"{top:.4f}", f"{itself:.4f}"]
                for hd, ((k, kr, kc), top, itself) in enumerate(zip(att.top_keys, att.top_weights, att.self_weights))]
        _phone_table(f"sw-att-{name}", _("**{block} block**").format(block=_block_name(name)) + "\n\n"
                     + markdown_table(header, rows, right=(2, 3)))
    regular, shifted = view.attention
    lines = [f"rows sum to 1 (regular, shifted): {regular.row_sum_error:.1e}, {shifted.row_sum_error:.1e}"]
    if shifted.largest_masked is not None:
        lines.append(f"largest attention to a masked key (shifted block): {shifted.largest_masked:.3g}  "
                     f"(exp(−100) ≈ 3.7e-44: zero in float32)")
    code_block("\n".join(lines))
    probs = (_("The traced `{tap0}` and `{tap1}` {shape}: row {query} of window {win}.") if view.shifted.traced else
             _("The traced `{tap0}` and `{tap1}` (re-run with your s) {shape}: row {query} of window {win}."))
    st.caption(probs.format(tap0=f"{view.tap_prefix}.0.attn.probs", tap1=f"{view.tap_prefix}.1.attn.probs",
                            shape=shape_text(view.regular.probs.shape), query=query, win=win))
    if not view.trained:
        st.caption(_("Random weights: attention is close to uniform except where the mask cuts it. With *Trained "
                     "weights* in the sidebar you see what the trained Swin-T attends to."))
    download_array(_("Attention of query {query} in window {win}, shifted block (heads × M²)").format(
        query=query, win=win), shifted.probs, f"swin-s{stage + 1}-w{win}-q{query}")
    show_source(shift_mask, SwinBlock.window_attention)


# ---- 4. Relative position bias -------------------------------------------------------------------------------------
def position_bias(view: StageView) -> None:
    """The relative position bias table, its offsets, and the bias a query adds (§3.2, Eq. 4)."""
    _heading(_("4 · Relative position bias"), BIAS_EQUATION)
    sel, window, heads = view.selection, view.partition.window, view.run.heads
    M, block, head, query = sel.window, sel.block, sel.head, sel.query
    table, side = view.chosen.bias_table, view.table_side
    if M != view.checkpoint_window:
        table_text = _("Each head learns one bias per relative offset: the table of block {n} ({name}) has "
                       "**({side})² = {rows} rows × {heads} heads**, resampled bicubically from the checkpoint's "
                       "({side0})² = {rows0} rows (M = {m0}).")
    else:
        table_text = _("Each head learns one bias per relative offset: the table of block {n} ({name}) has "
                       "**({side})² = {rows} rows × {heads} heads**.")
    st.markdown(sentences(
        table_text.format(n=block + 1, name=_block_name(BLOCK_KINDS[block]), side=side, rows=view.table_rows,
                          heads=heads, side0=view.checkpoint_table_side, rows0=view.checkpoint_table_rows,
                          m0=view.checkpoint_window),
        _("The bias a query adds over its window is a {m}×{m} cut of the table, read through "
          "`relative_position_index`.").format(m=window)))
    a, b, c = st.columns([2, 3, 3], gap="small")
    lang = language()
    table_title = _("Table ({rows} × {heads})").format(rows=view.table_rows, heads=heads)
    grid_title = _("Head {head}: the table as {side}×{side} offsets").format(head=head + 1, side=side)
    query_title = _("Bias added by query {query} (head {head})").format(query=query, head=head + 1)
    chart(_figure(short_key(view.key, block, "table"), lang, lambda: sv.bias_table_figure(table, M, title=table_title)),
          where=a, key="sw-table", alt=describe.bias_table(table, M, block))
    chart(_figure(short_key(view.key, block, "grid", head, query), lang,
                  lambda: sv.bias_grid_figure(table, M, head, query, window, title=grid_title)),
          where=b, key="sw-grid", alt=describe.bias_grid(table, M, head, query, window))
    chart(_figure(short_key(view.key, block, "qbias", head, query), lang,  # B does not depend on the shift
                  lambda: sv.bias_query_figure(view.query_bias, query, title=query_title)),
          where=c, key="sw-qbias", alt=describe.query_bias(view.query_bias, query, head))
    code_block(_check(f"table[relative_position_index({window}, {M})] vs traced `{view.tap_prefix}.{block}.rel_bias`",
                      view.bias_check))
    qr, qc = view.query_cell
    outlined = _("Outlined in black and white: on the grid of offsets, the {m}×{m} block of offsets that query (row "
                 "{row}, col {col}) reads — key (ki, kj) takes offset (dy, dx) = ({row} − ki, {col} − kj), so the "
                 "block appears flipped; on the query's bias, the query itself among the {m}×{m} biases it adds over "
                 "the window's keys, as traced. Colours (cividis): dark blue negative, grey 0, yellow "
                 "positive.").format(m=window, row=qr, col=qc)
    if window != M:
        outlined = sentences(outlined, _("The stage is a single {m}×{m} window: the offsets read the central rows of "
                                         "the table.").format(m=window))
    st.caption(outlined)
    show_source(relative_position_index, resize_bias_table, SwinBlock.relative_position_bias)


# ---- 5. Patch merging ---------------------------------------------------------------------------------------------
def patch_merging(view: StageView, photo: ShownInput) -> None:
    """Patch merging between stages: 2×2 neighbours concatenated, 4C → 2C (§3.1)."""
    _heading(_("5 · Patch merging: half the grid, twice the channels"), MERGE_EQUATION)
    stages, stage = view.plan.stages, view.selection.stage
    flow = " → ".join(f"{layout.grid[0]}×{layout.grid[1]}×{layout.channels}" for layout in stages)
    st.markdown(_("At this input: **{flow}** (tokens h×w × channels C per stage). Each merging concatenates every "
                  "2×2 group of neighbouring tokens into one token of 4C channels — **in the order x0, x1, x2, x3 "
                  "above: the row offset changes first** — normalises it and maps it to 2C.").format(flow=flow))
    pictures = _grids_jpeg(photo.key, tuple((s.partition.token_px, s.grid) for s in stages), photo.image)
    for i, (col, grid, layout) in enumerate(zip(st.columns(4), pictures, stages)):
        (sh, sw), px = layout.grid, layout.partition.token_px
        label = _("stage {stage}: {h}×{w} tokens × {c}, one token = {px}×{px} px").format(
            stage=i + 1, h=sh, w=sw, c=layout.channels, px=px)
        picture(grid, where=col, width="stretch", caption=("▶ " if i == stage else "") + label,
                alt=describe.stage_grid(layout, i))
    if view.run.merge is None:
        h, w = view.run.grid
        st.info(_("Stage 4 is the last stage: no merging after it. Its {h}×{w}×{c} tokens go to the final LayerNorm "
                  "and the classifier (mean over tokens). Choose stage 1–3 to see a merging.").format(
            h=h, w=w, c=view.run.channels), icon=":material/info:")
    else:
        _merging(view, photo)
    show_source(PatchMerging.merge, PatchMerging.forward)


def _merging(view: StageView, photo: ShownInput) -> None:
    """The merging after the shown stage: its 2×2 groups over the image, its shapes and its first merged token."""
    mg, stage = view.run.merge, view.selection.stage
    (h, w), (mh, mw), (zr, zc) = mg.grid, mg.merged_grid, mg.corner
    a, b = st.columns([2, 3], gap="medium")
    corner = (_("The top-left {rows}×{cols} of stage {stage}'s {h}×{w} tokens, in their 2×2 groups (black): "
                "colour and label = place in the concatenation (odd side: zero-padded, hatched)")
              if mg.corner_has_padding else
              _("The top-left {rows}×{cols} of stage {stage}'s {h}×{w} tokens, in their 2×2 groups (black): "
                "colour and label = place in the concatenation"))
    picture(_merge_png(photo.key, view.partition.token_px, mg.grid, photo.image), where=a, width="stretch",
            caption=corner.format(rows=zr, cols=zc, stage=stage + 1, h=h, w=w), alt=describe.merge(mg, stage))
    _legend("merge", a)
    merged = _("Stage {stage} ends with **{h}×{w} tokens × C = {c}**. `merge` makes **{mh}×{mw} tokens × "
               "4C = {c4}**; LayerNorm and a linear layer without bias give the traced `{tap}` **{shape}** = "
               "{mh}·{mw} tokens × 2C = {c2}: the input of stage {next}.").format(
        stage=stage + 1, h=h, w=w, c=mg.channels, mh=mh, mw=mw, c4=mg.concatenated_channels,
        tap=f"stages.{stage}.merged", shape=shape_text(mg.merged_shape), c2=mg.output_channels, next=stage + 2)
    if mg.padded_grid != mg.grid:
        hp, wp = mg.padded_grid
        merged = sentences(merged, _("{h}×{w} has an odd side: `merge` first pads it with zero tokens to "
                                      "{hp}×{wp}.").format(h=h, w=w, hp=hp, wp=wp))
    b.markdown(merged)
    rows = [[f"**x{i}** = x[{dh}::2, {dw}::2]", f"{first} … {last}", " ".join(f"{v:+.3f}" for v in own),
             " ".join(f"{v:+.3f}" for v in in_merged)]
            for i, ((dh, dw), (first, last), (own, in_merged))
            in enumerate(zip(MERGE_OFFSETS, mg.channel_ranges, mg.first_values()))]
    b.markdown(_("The first group, tokens (0, 0), (1, 0), (0, 1), (1, 1) of the traced map, and the first merged "
                 "token that `merge` made of them:"))
    _phone_table("sw-merge-group", markdown_table([_("token"), _("its channels in the merged token"),
                                                   _("its first 3 values"), "merged[those channels][:3]"], rows), b)
    code_block("\n".join([_check("merge(x) vs cat[x0, x1, x2, x3] by hand", mg.checks["cat"]),
                          _check(f"reduction(norm(merge(x))) vs traced `stages.{stage}.merged`", mg.checks["merged"])]))


# ---- 6. Cost -------------------------------------------------------------------------------------------------------
def cost(view: StageView) -> None:
    """The cost of global vs windowed attention (§3.2, Eq. 1–2)."""
    _heading(_("6 · What windows save: only the attention term"), COST_EQUATION)
    c, stage, part = view.cost, view.selection.stage, view.cost.partition
    mults = describe.multiply_adds
    (h, w), (hp, wp) = part.grid, part.padded
    _phone_table("sw-cost-table", markdown_table(
        [_("per attention layer of stage {stage}").format(stage=stage + 1), _("4hwC² (projections)"),
         _("attention term"), _("total")],
        [[_("MSA, global (hw = {hw})").format(hw=c.tokens), mults(c.msa.projections),
          f"2(hw)²C = **{mults(c.msa.attention)}**", mults(c.msa.total)],
         [f"W-MSA, M = {part.window}", mults(c.wmsa.projections), f"2M²hwC = **{mults(c.wmsa.attention)}**",
          mults(c.wmsa.total)]]))
    saving = _("With h·w = {h}·{w} = {hw} tokens, C = {c}, M = {m}: the attention term shrinks **{ratio:.1f}×** "
               "(= hw / M² = {hw} / {mm}), the projections (and the MLP after them) cost exactly the same. Both "
               "attention terms are linear in C; only the dependence on the number of tokens changes, from quadratic "
               "to linear — \"O(N²) → O(M²N)\" is true of the attention term only.").format(
        h=h, w=w, hw=c.tokens, c=c.channels, m=part.window, ratio=c.ratio, mm=part.tokens_per_window)
    if (hp, wp) != (h, w):
        saving = sentences(saving, _("The block really computes on the padded {hp}×{wp} map: {cost} for "
                                      "attention.").format(hp=hp, wp=wp, cost=mults(c.padded_wmsa.attention)))
    st.markdown(saving)
    curves, resolution = view.cost_curves, view.resolution
    chart(_figure(short_key("cost", stage, curves.patch, curves.channels, curves.window, resolution), language(),
                  lambda: sv.cost_figure(curves, resolution)),
          key="sw-cost", alt=describe.cost(curves, resolution))
    st.caption(_("Square inputs from 64 to 1024 px; the dotted vertical line is the current resolution. Log scale: "
                 "MSA's attention grows 4× faster than W-MSA's each time the side doubles."))
