"""Stage 6 · Swin windows: the real Swin-T on the student's image — window partition, cyclic shift, shift mask,
relative position bias, patch merging and the cost of windowed attention (Liu et al. 2021, §3.1–3.2, Eq. 1–4).

The model runs once per image, input size, patch size, window size and stage (`vitviz.viz.swin.run_stage`, a traced
pass up to the chosen stage, kept in a byte-bounded store shared by all sessions: its arrays are read-only; a plain
st.cache_data would unpickle megabytes of attention maps on every rerun); a shift the checkpoint does not use re-runs
the shifted block alone (`rerun_with_shift`). After each page, the runs for M − 1 and M + 1 are computed in the
background (VITVIZ_SWIN_PREFETCH=0 turns that off), so a slider step finds its model run ready. Every other control
only redraws, from caches keyed on strings and ints, and only the open tab (one of the six steps) is drawn.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from ui.chrome import download_array, lazy_tabs, show_source, stage_footer, stage_header
from ui.context import context
from ui.image_input import model_input
from ui.models import get_model
from ui.server import runs_in_progress
from ui.store import RunStore
from vitviz.i18n import _, language, N_, ngettext, sentences
from vitviz.models.swin import (
    PatchMerging,
    SwinBlock,
    region_labels,
    relative_position_index,
    resize_bias_table,
    shift_mask,
    window_and_shift,
    window_partition,
)
from vitviz.viz import swin as sv
from vitviz.viz.encode import jpeg, png

MODEL = "swin-tiny"
PATCH_SIZES = (4, 8, 16)
STORE_BUDGET = 192 * 2**20  # bytes of traced runs kept over all sessions (the newest one is always kept)
PICTURE_PX = 470  # width of the token-grid pictures (two per row at 1400 px)
PREFETCH = os.environ.get("VITVIZ_SWIN_PREFETCH", "1") != "0"  # 0: no background runs of the neighbouring M
# the two blocks of a stage, by the "Block" radio's options (bound to the URL: the options stay English)
BLOCK_NAMES = {"regular": N_("regular"), "shifted": N_("shifted")}


@st.cache_resource(show_spinner=False)
def _store() -> RunStore:
    return RunStore(STORE_BUDGET)


@st.cache_resource(max_entries=4, show_spinner=False)
def _adapted(_model, source: str, patch: int):
    """A new Swin for patch size P sharing every weight with the cached checkpoint (never mutated)."""
    return sv.with_patch_size(_model, patch)


def _key(*parts) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _clamp(key: str, low: int, high: int) -> None:
    """A widget's stored value outside its current range (the range moves with M and the stage, a deep link may ask
    for anything) is forgotten: the widget starts again from its default. Forgotten, not overwritten: a value set
    through Session State on a widget with a default makes Streamlit log a warning."""
    value = st.session_state.get(key)
    if isinstance(value, (int, float)) and not low <= value <= high:
        st.session_state.pop(key)


def _on_window_change() -> None:
    """A new window size starts from its own default shift M//2 (the shift slider's range changes too), and from the
    default window and query: the old indices would point into a different partition. The shift is forgotten, not
    set: the slider then starts from its default (M//2), read by no stale URL value, and Streamlit has no value set
    through Session State to warn about."""
    st.session_state.pop("shift", None)
    st.query_params.pop("shift", None)
    _forget_selection()


def _forget_selection() -> None:
    for key in ("swstep", "swwin", "swq"):
        st.session_state.pop(key, None)


def _check(label: str, value: float) -> str:
    return f"{label:<64s} max |Δ| = {value:.3g}" + ("   ✓ exact" if value == 0 else "")


def _shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _mults(x: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f} {unit}"
    return str(x)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _grid_text(grid: list[list[str]]) -> str:
    return "\n".join(" ".join(row) for row in grid)


def _block_name(kind: str) -> str:
    """ "regular" or "shifted", in the page's language."""
    return _(BLOCK_NAMES[kind])


def _masked_windows(kind: str, n: int, masked: int, pairs: int) -> str:
    """How many windows of one kind (`sv.mask_stats`' "interior", "edge", "corner") and how many pairs each masks."""
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


WINDOW_KINDS = {"interior": N_("an interior window"), "edge": N_("an edge window"), "corner": N_("the corner window")}


# ---- cached pictures (keys: strings and ints; arrays are passed unhashed, prefixed with _) --------------------------

@st.cache_data(max_entries=64, show_spinner=False)
def _partition_jpeg(photo_key: str, token_px: int, grid: tuple[int, int], padded: tuple[int, int], window: int,
                    shift: int, cell: int, selected: int, _photo) -> bytes:
    return jpeg(sv.partition_picture(_photo, token_px, grid, padded, window, shift, cell, selected), 90)


@st.cache_data(max_entries=64, show_spinner=False)
def _feature_png(key: str, which: str, step: int, shift: int, window: int, cell: int, grid: tuple[int, int],
                 _rgb: np.ndarray) -> bytes:
    """`which`: "before" (the map z), "step" (z rolled by (-step, -step)) or "after" (the rolled map as given)."""
    padded = _rgb.shape[:2]
    rows, cols = sv.strip_masks(padded, shift)
    pad = sv.padding_mask(grid, padded)
    moved = {"before": 0, "step": step, "after": shift}[which]
    rgb = sv.rolled(_rgb, step) if which == "step" else _rgb
    strips = (sv.rolled(rows, moved), sv.rolled(cols, moved))
    return png(sv.feature_picture(rgb, window, cell, strips=strips, padding=sv.rolled(pad, moved),
                                  window_lines=moved == shift and which != "before"), level=1)


@st.cache_data(max_entries=32, show_spinner=False)
def _labels_png(key: str, back: int, window: int, cell: int, _labels: np.ndarray) -> bytes:
    return png(sv.labels_picture(_labels, window, cell, back=back), level=1)


@st.cache_data(max_entries=64, show_spinner=False)
def _footprint_jpeg(key: str, token_px: int, grid: tuple[int, int], padded: tuple[int, int], window: int,
                    shift: int, win: int, query: int, cell: int, _photo, _values: np.ndarray) -> bytes:
    return jpeg(sv.window_attention_picture(_photo, token_px, grid, padded, window, shift, win, query, _values, cell),
                90)


@st.cache_data(max_entries=64, show_spinner=False)
def _mosaic_png(key: str, query: int, cell: int, columns: int, _maps: np.ndarray, _masked) -> bytes:
    return png(sv.head_mosaic(_maps, query, cell, _masked, columns), level=1)


@st.cache_data(max_entries=16, show_spinner=False)
def _merge_jpeg(photo_key: str, token_px: int, grid: tuple[int, int], _photo) -> tuple[bytes, tuple[int, int]]:
    picture, shown_tokens = sv.merge_picture(_photo, token_px, grid)
    return jpeg(picture, 90), shown_tokens


@st.cache_data(max_entries=16, show_spinner=False)
def _grids_jpeg(photo_key: str, grids: tuple, patch: int, _photo) -> list[bytes]:
    return [jpeg(sv.grid_picture(_photo, patch * 2**s, g, width=220), 90) for s, g in enumerate(grids)]


def _legend(name: str, where=st) -> None:
    """A colour legend under a picture, as HTML: the browser writes its words (in the page's language)."""
    if name == "windows":
        items = [(sv.WINDOW_COLOURS, _("windows")), ((sv.ROW_STRIP,), _("wrapped rows")),
                 ((sv.COL_STRIP,), _("wrapped columns")), ((sv.PAD_GREY,), _("padding"))]
    elif name == "strips":
        items = [((sv.ROW_STRIP,), _("first s rows (wrap to the bottom)")),
                 ((sv.COL_STRIP,), _("first s columns (wrap to the right)"))]
    elif name == "regions":
        items = [((colour,), str(i)) for i, colour in enumerate(sv.REGION_COLOURS)]
    else:
        items = [((colour,), f"x{i} = x[{dh}::2, {dw}::2]")
                 for i, (colour, (dh, dw)) in enumerate(zip(sv.MERGE_COLOURS, sv.MERGE_OFFSETS))]
    where.markdown(sv.legend_html(items), unsafe_allow_html=True)


@st.cache_resource(max_entries=96, show_spinner=False)
def _figure(key: str, lang: str, _make) -> go.Figure:
    """A figure built once per key and language and shared (nobody mutates it). Not validated here — 13 ms a figure;
    the figure functions' output is validated in tests/test_viz_swin.py — and not re-validated by st.plotly_chart."""
    return go.Figure(_make(), _validate=False)


@st.cache_data(max_entries=64, show_spinner=False)
def _brute_force_check(key: str, _labels: np.ndarray, _mask: np.ndarray) -> float:
    """max |displayed mask − the pair-by-pair comparison of the window's labels| (a Python loop over M⁴ pairs)."""
    return float(np.abs(sv.brute_force_mask(_labels) - _mask).max())


@st.cache_data(max_entries=4, show_spinner=False)
def _worked(side: int, window: int, shift: int) -> sv.WorkedExample:
    return sv.worked_example(side, window, shift)


# ---- the page ------------------------------------------------------------------------------------------------

ctx = context()
stage_header(
    "swin",
    _("ViT lets every token attend to every other token: the cost grows with the **square** of the number of tokens. "
      "The **Swin Transformer** attends only inside non-overlapping **M × M windows**, and in every second block it "
      "**shifts** the windows by s = ⌊M/2⌋ tokens so that information crosses window borders. It does the shift with a "
      "2-D **cyclic roll** of the feature map, which keeps the windows whole but glues together tokens from opposite "
      "edges of the image — a **mask** stops those from attending to each other. Between stages, **patch merging** "
      "halves the grid and doubles the channels. Here is the real Swin-T, on your image."),
)
st.caption(_("This page has its own window, shift, stage and patch-size controls: the sidebar's ViT model and patch "
             "size are for pages 1–5. The sidebar's image, resolution, aspect and *Trained weights* apply here too."))

base_model, warning = get_model(MODEL, ctx.pretrained)
M0, P0 = base_model.config.window_size, base_model.config.patch_size

with st.container(border=True):
    c1, c2, c3, c4, c5 = st.columns([4, 4, 6, 4, 3], gap="small")
    M = int(c1.slider(_("Window size M (tokens)"), 2, 14, M0, key="M", bind="query-params",
                      on_change=_on_window_change,
                      help=_("Swin-T was trained with M = {m0}. Other sizes resample its relative-position-bias "
                             "tables.").format(m0=M0)))
    _clamp("shift", 0, M - 1)
    s_user = int(c2.slider(_("Shift s (tokens)"), 0, M - 1, M // 2, key="shift", bind="query-params",
                           on_change=lambda: st.session_state.pop("swstep", None),
                           help=_("The checkpoint's shifted blocks use s = ⌊M/2⌋ = {half}. Other shifts re-run the "
                                  "shifted block with your s.").format(half=M // 2)))
    P = int(c5.select_slider(_("Patch size P"), PATCH_SIZES, value=P0, key="swp", bind="query-params",
                             help=_("Swin-T reads {p0}×{p0} patches. Larger patches PI-resize its patch-embedding "
                                    "kernel (FlexiViT).").format(p0=P0)))
    # keyed on the weights actually loaded (the hub id, or the preset after a failed download)
    source = getattr(base_model, "source", MODEL)
    model = base_model if P == P0 else _adapted(base_model, source, P)
    shown, pixel_values = model_input(ctx, model.preprocessing)
    in_h, in_w = pixel_values.shape[-2:]
    shapes = sv.stage_shapes(model.config, in_h, in_w)  # (h, w, C) per stage, by the model's rules
    grids = [(sh, sw) for sh, sw, _c in shapes]
    stage = int(c3.radio(_("Stage"), [1, 2, 3, 4], key="swstage", horizontal=True, bind="query-params",
                         on_change=_forget_selection,
                         captions=[f"{sh}×{sw}×{sc}" for sh, sw, sc in shapes],
                         help=_("Token grid h × w × channels C of each stage at this input size."))) - 1
    # options stay English (they are the URL's values); the captions say which block each one is
    block_kind = c4.radio(_("Block"), ["regular", "shifted"], key="swblock", horizontal=True, bind="query-params",
                          captions=[_("W-MSA (block 1)"), _("SW-MSA (block 2)")],
                          help=_("Every stage alternates a regular-window block and a shifted-window block."))
    # the window and query selection: sizes worked out with the model's own rule, before the model runs
    sel_h, sel_w = grids[stage]
    sel_m, _s = window_and_shift(sel_h, sel_w, M, M // 2)
    sel_n = -(-sel_h // sel_m) * -(-sel_w // sel_m)
    d1, d2, d3 = st.columns([4, 4, 5], gap="small")
    _clamp("swwin", 0, sel_n - 1)
    win = int(d1.number_input(_("Selected window (0 – {last}, row-major)").format(last=sel_n - 1), 0, sel_n - 1,
                              sel_n - 1, step=1, key="swwin", bind="query-params",
                              help=_("Used below: the same index in both blocks — the regular block's window and the "
                                     "shifted block's window (which sits s tokens further down and right in the "
                                     "image). The last window is the corner one.")))
    _clamp("swq", 0, sel_m * sel_m - 1)
    query = int(d2.number_input(_("Query token (0 – {last}, row-major in the window)").format(last=sel_m * sel_m - 1),
                                0, sel_m * sel_m - 1, (sel_m * sel_m) // 2, step=1, key="swq", bind="query-params"))
    n_heads = model.config.heads[stage]
    _clamp("swhead", 1, n_heads)
    head = int(d3.slider(_("Head (relative position bias)"), 1, n_heads, 1, key="swhead", bind="query-params")) - 1
block = 0 if block_kind == "regular" else 1

size = f"{in_h}x{in_w}"
model_key = f"{source}|P{P}"
run_key = _key(model_key, ctx.image_key, size, M, stage)
x = pixel_values.to(ctx.device)
with st.spinner(_("Running Swin-T on your image with these windows…"), show_time=True):
    run = _store().get(run_key, lambda: sv.run_stage(model, x, M, stage))
h, w = run.grid
C, heads = run.channels, run.heads
regular, shifted_traced = run.blocks
window, s_model = shifted_traced.window, shifted_traced.shift
clamped = min(h, w) <= M  # the model's rule: window min(h, w), shift 0
s_eff = window_and_shift(h, w, M, s_user)[1]
custom = s_eff != s_model
if custom:
    shifted = _store().get(f"{run_key}|s{s_eff}", lambda: sv.rerun_with_shift(model, run, s_eff))
else:
    shifted = shifted_traced
views = (regular, shifted)
chosen = views[block]
hp, wp = shifted.padded
nwin = shifted.n_windows
token_px = P * 2**stage
view = _key(run_key, s_eff)
prefix = f"stages.{stage}.blocks"

# ---- what the page shows: the model, honestly --------------------------------------------------------------------
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
            m=M, m0=M0, side0=2 * M0 - 1, rows0=(2 * M0 - 1) ** 2, side=2 * M - 1, rows=(2 * M - 1) ** 2,
            half=M // 2), icon=":material/tune:")
if P != P0:
    st.info(
        _("**Adapted model: P = {p} instead of the checkpoint's {p0}.** A new model shares every weight with the "
          "checkpoint except the patch embedding, whose 96×3×{p0}×{p0} kernel is resampled to 96×3×{p}×{p} with "
          "FlexiViT's pseudo-inverse resize (an input patch that is a bilinear upsample of a {p0}×{p0} patch gives "
          "exactly the checkpoint's token). Swin has no absolute position embedding to interpolate. Expect deeper "
          "stages to degrade: the model was trained at P = 4. Patches smaller than 4 are not offered: at 512 px they "
          "would make 65,536 tokens in stage 1.").format(p=P, p0=P0), icon=":material/tune:")
if clamped:
    note = ngettext(
        "**Stage {stage} is no larger than one window here:** its map is {h}×{w} and min({h}, {w}) = {short} ≤ M = "
        "{M}, so the model's rule (`window_and_shift`, as the original code) attends it with **{m}×{m} window and "
        "shift 0** ({n} window): no shifted windows and no mask in this stage, whatever s is.",
        "**Stage {stage} is no larger than one window here:** its map is {h}×{w} and min({h}, {w}) = {short} ≤ M = "
        "{M}, so the model's rule (`window_and_shift`, as the original code) attends it with **{m}×{m} windows and "
        "shift 0** ({n} windows): no shifted windows and no mask in this stage, whatever s is.",
        nwin).format(stage=stage + 1, h=h, w=w, short=min(h, w), M=M, m=window, n=nwin)
    if window < M:
        note = sentences(note, _("The bias is read from the central ({used})² rows of the ({side})² table.").format(
            used=2 * window - 1, side=2 * M - 1))
    st.warning(note, icon=":material/crop_free:")
elif custom:
    st.info(
        _("**Shift s = {s}, but the checkpoint's shifted blocks use s = ⌊{m}/2⌋ = {s_model}.** The shifted "
          "block below is the real block's own `pad → shift → partition → window_attention` run again on its traced "
          "input with s = {s} (mask from the same `shift_mask`): a what-if, not the checkpoint's forward pass. "
          "Set s = {s_model} to see the traced values.").format(s=s_eff, m=M, s_model=s_model),
        icon=":material/swap_horiz:")
if (in_h, in_w) != (224, 224):
    st.caption(_("Input {h}×{w} px. Swin-T was trained on 224×224: set the sidebar's resolution to 224 (and "
                 "aspect off) to see the checkpoint's own sizes.").format(h=in_h, w=in_w))

# ---- where this stage sits -----------------------------------------------------------------------------------------
rows = []
for i, ((sh, sw, sc), hd) in enumerate(zip(shapes, model.config.heads)):
    mw, ms = window_and_shift(sh, sw, M, M // 2)
    nw_i = -(-sh // mw) * -(-sw // mw)
    mark = _(" ← this stage") if i == stage else ""
    windows_i = _("{n} of {m}×{m}").format(n=nw_i, m=mw) + (_(" (no shift: map ≤ M)") if min(sh, sw) <= M else "")
    rows.append([f"{i + 1}{mark}", f"{sh}×{sw}", str(sc), str(hd), f"{P * 2 ** i}×{P * 2 ** i} px", windows_i,
                 str(ms)])
with st.expander(_("The four stages at this input ({h}×{w} px, P = {p}, M = {m}): shapes").format(
        h=in_h, w=in_w, p=P, m=M), icon=":material/account_tree:", expanded=False):
    st.markdown(_table([_("stage"), _("tokens h×w"), _("channels C"), _("heads"), _("one token covers"),
                        _("windows (M×M)"), _("shift")], rows))
    st.caption(_("Token grids and channels follow the model's rules (patch embedding ⌈H/P⌉ × ⌈W/P⌉; each merging "
                 "pads to even sides and halves them; `config.dims`) — the tests compare them with traced tensors at "
                 "many sizes; stage {stage}'s {h}×{w}×{c} is read from this run's traced tensor. Windows and shift "
                 "come from the model's own `window_and_shift` rule.").format(stage=stage + 1, h=h, w=w, c=C))

# ---- 1. Partition --------------------------------------------------------------------------------------------------
def partition() -> None:
    """Window partition of both blocks over the image (§3.2, Fig. 2)."""
    st.subheader(_("1 · Window partition"))
    st.latex(rf"\underbrace{{{h}\times{w}}}_{{h\times w\text{{ tokens}}}}\ \xrightarrow{{\text{{pad}}}}\ {hp}\times{wp}"
             rf"\ \xrightarrow{{\text{{partition}}}}\ \frac{{{hp}}}{{{window}}}\cdot\frac{{{wp}}}{{{window}}} = {nwin}"
             rf"\text{{ windows}}\ \times\ {window}^2 = {window * window}\text{{ tokens}}\ \times\ C = {C}")
    st.markdown(
        _("The traced `{tap}` has shape **{shape}** = (windows, tokens per window, C): **{n} windows** of **{t} "
          "tokens** each, attention runs inside each window separately. Stage {stage}: **{h} × {w}** tokens of C = {c} "
          "channels, each covering {px}×{px} input pixels.").format(
            tap=f"{prefix}.{block}.windows", shape=_shape(chosen.windows_shape), n=chosen.n_windows,
            t=chosen.tokens_per_window, stage=stage + 1, h=h, w=w, c=C, px=token_px))
    if (hp, wp) != (h, w):
        st.warning(
            _("**{h} × {w} is not a multiple of the {m} × {m} window.** The block pads the map with zero tokens "
              "on the right and bottom to **{hp} × {wp}** ({rows} rows, {cols} columns, grey hatched below) before "
              "shifting and partitioning, and crops them off again after attention. They take part in attention like "
              "any other token (transformers and the original code do the same).").format(
                h=h, w=w, m=window, hp=hp, wp=wp, rows=hp - h, cols=wp - w), icon=":material/padding:")
    cell = sv.cell_size(hp, wp, PICTURE_PX, 520)
    a, b = st.columns(2, gap="medium")
    for col, v, name in ((a, regular, _("regular (W-MSA)")), (b, shifted, _("shifted (SW-MSA)"))):
        caption = _("Block {n} · {name}: {windows} windows of {m}×{m}, shift {s}").format(
            n=v.block + 1, name=name, windows=v.n_windows, m=v.window, s=v.shift)
        if v.shift:
            caption += _(" — the windows of the rolled map, drawn where their tokens sit in the image")
        col.image(_partition_jpeg(photo_key, token_px, v.grid, v.padded, v.window, v.shift, cell, win, shown),
                  output_format="JPEG", width="stretch", caption=caption)
    _legend("windows")
    st.caption(_("Each token is tinted with its window's colour (Okabe–Ito, colour-blind safe; a 2×2 checker, so "
                 "windows side by side differ) and windows are outlined in black; padding tokens are grey with dark "
                 "hatching. In the shifted block the **wrapped strips** are hatched: the first s rows (vermilion, "
                 "hatched \\\\) and the first s columns (blue, hatched //) belong to windows on the far side of the "
                 "map. Yellow frames: window {win}, the selected window (above the tabs).").format(win=win))
    show_source(window_partition, SwinBlock.pad, SwinBlock.partition)


# ---- 2. Cyclic shift -----------------------------------------------------------------------------------------------
def cyclic_shift() -> None:
    """The shifted block's 2-D roll, its reverse, and the nine regions (§3.2, Fig. 4)."""
    st.subheader(_("2 · Cyclic shift: a 2-D roll, not a shift along the token sequence"))
    st.latex(r"\hat z = \operatorname{roll}\big(z,\ (-s,-s),\ \text{dims}=(h, w)\big):\qquad "
             r"\hat z[i, j] = z[(i+s) \bmod H_p,\ (j+s) \bmod W_p]")
    if s == 0:
        st.info(_("With s = 0 nothing moves: the shifted block attends in the same windows as the regular block "
                  "(no shift in this stage: see the note above).") if clamped else
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
        s).format(hp=hp, wp=wp, s=s, c=C))
    if s:
        _clamp("swstep", 0, s)
        step = int(st.slider(_("Roll step t: the map rolled by (−t, −t), t = 0 … {s}").format(s=s), 0, s, 1,
                             key="swstep",
                             help=_("Each step is torch.roll by one more token on both axes; t = s is the block's "
                                    "roll.")))
    else:
        step = 0
    fcell = sv.cell_size(hp, wp, 300, 320)
    rgb_key = _key(run_key, "before")
    a, b, c = st.columns(3, gap="small")
    a.image(_feature_png(rgb_key, "before", 0, s, window, fcell, run.grid, run.before_rgb), output_format="PNG",
            width="stretch",
            caption=_("Before: block 2's map z ({hp}×{wp}), strips that will wrap marked").format(hp=hp, wp=wp))
    b.image(_feature_png(rgb_key, "step", step, s, window, fcell, run.grid, run.before_rgb), output_format="PNG",
            width="stretch",
            caption=_("roll(z, (−{t}, −{t})): the strips wrap around").format(t=step) if step
            else _("t = 0: not rolled yet"))
    after = (_("After: `{tap}` (traced), cut into {m}×{m} windows (white lines)") if shifted.traced
             else _("After: `{tap}` (re-run with your s), cut into {m}×{m} windows (white lines)"))
    c.image(_feature_png(_key(view, "after"), "after", 0, s, window, fcell, run.grid, shifted.shifted_rgb),
            output_format="PNG", width="stretch", caption=after.format(tap=f"{prefix}.1.shifted", m=window))
    _legend("strips")
    checks = shifted.checks
    lines = []
    if "shift" in checks:
        lines.append(_check(f"block.shift(z, {s}) = torch.roll(z, (−{s}, −{s})) vs `shifted`", checks["shift"]))
    lines += [_check("window_reverse(`windows`) vs `shifted`", checks["reverse"]),
              _check(f"reverse roll: block.unshift(`shifted`, {s}) = roll(+{s}, +{s}) vs z", checks["unshift"])]
    if "partition" in checks:
        lines.insert(1, _check("window_partition(`shifted`) vs `windows`", checks["partition"]))
    st.code("\n".join(lines), language=None)
    st.markdown(_(
        "**The reverse roll.** After attention, `window_reverse` puts the windows back into the rolled map and "
        "`unshift` rolls it by **(+{s}, +{s})**: every token returns to its own place (checked above on the real "
        "tensors — the difference is exactly 0: a roll only moves numbers). Then the padding is cropped and the "
        "residual added.").format(s=s))
    show_source(SwinBlock.shift, SwinBlock.unshift, SwinBlock.reverse)

    st.markdown("#### " + _("The nine regions"))
    st.latex(r"r(i) = \begin{cases}0 & i < L - M\\ 1 & L-M \le i < L-s\\ 2 & i \ge L - s\end{cases}"
             r"\qquad \text{label}(i,j) = 3\,r_h(i) + r_w(j)")
    n_regions = len(np.unique(labels))
    if s:
        has = ngettext("The traced `{tap}` ({hp}×{wp}) has **{n} region**.",
                       "The traced `{tap}` ({hp}×{wp}) has **{n} regions**.", n_regions)
    else:
        has = ngettext("The traced `{tap}` ({hp}×{wp}) has **{n} region** (no shift: one region).",
                       "The traced `{tap}` ({hp}×{wp}) has **{n} regions** (no shift: one region).", n_regions)
    st.markdown(sentences(
        _("On the rolled map, each axis of length L has three bands: tokens that are in no last window, tokens in the "
          "last window that did not wrap, and the last s tokens, which **wrapped around** from the other side."),
        has.format(tap=f"{prefix}.1.labels", hp=hp, wp=wp, n=n_regions)))
    lcell = sv.cell_size(hp, wp, 420, 420)
    a, b = st.columns(2, gap="medium")
    a.image(_labels_png(_key(view, "labels"), 0, window, lcell, labels), output_format="PNG", width="stretch",
            caption=_("Region labels on the rolled map (as traced), {m}×{m} windows outlined").format(m=window))
    b.image(_labels_png(_key(view, "labels"), s, window, lcell, labels), output_format="PNG", width="stretch",
            caption=_("The same labels rolled back by (+{s}, +{s}): where those tokens sit in the image").format(s=s))
    _legend("regions")
    st.caption(_("Region colours: 0 light grey, 1–8 Okabe–Ito colours, the number written in each region. A window "
                 "that holds more than one region holds tokens that are not neighbours in the image."))
    show_source(region_labels)

    with st.expander(_("Worked example: a 4×4 grid A1 … D4, M = 2, s = 1 (computed with torch.roll and "
                       "window_partition)"), icon=":material/grid_4x4:", expanded=True):
        ex = _worked(4, 2, 1)
        a, b, c = st.columns([2, 2, 3], gap="medium")
        a.markdown(_("**The grid**"))
        a.code(_grid_text(ex.names), language=None)
        b.markdown(_("**torch.roll by (−1, −1)**"))
        b.code(_grid_text(ex.rolled), language=None)
        c.markdown("**window_partition, M = 2**")
        c.code("\n".join(f"window {i}: {' '.join(wd[0])} / {' '.join(wd[1])}   ({r} region{'s' if r > 1 else ''})"
                         for i, (wd, r) in enumerate(zip(ex.windows, ex.window_regions))), language=None)
        st.markdown(_(
            "Window 0 holds four image neighbours (no mask). Window 1 glues column 1 onto column 4 (two regions), "
            "window 2 glues row A under row D (two regions), and window 3 holds the four corners of the image — four "
            "regions, **every token masked from every other**: each attends only to itself."))
        st.error(_("**A common tutorial error:** shifting the flattened token sequence instead (`roll(x.flatten(), "
                   "-1)`) gives `{raster}` — every row slides into the next one and the windows mix tokens from "
                   "different rows. Swin rolls both spatial axes.").format(
                     raster=" / ".join(" ".join(r) for r in ex.raster)), icon=":material/error:")


# ---- 3. Mask and attention inside a window ------------------------------------------------------------------------
def mask_and_attention() -> None:
    """The −100 mask of the selected window and what the real model attends to there."""
    st.subheader(_("3 · The shift mask and the attention inside one window"))
    st.latex(r"\operatorname{Attention}(Q,K,V) = \operatorname{SoftMax}\!\Big(\frac{QK^\top}{\sqrt d} + B + "
             r"\text{mask}\Big)V,\qquad \text{mask}_{ij} = \begin{cases}0 & \text{label}(i) = \text{label}(j)\\"
             r"-100 & \text{otherwise}\end{cases}")
    stats = sv.mask_stats(shifted.mask, labels, window)
    nh_w, nw_w = shifted.window_grid
    wr, wc = divmod(win, nw_w)
    kind = "corner" if (wr == nh_w - 1 and wc == nw_w - 1) else "edge" if (wr == nh_w - 1 or wc == nw_w - 1) else "interior"
    pairs = window ** 4
    masked_here = stats.masked_pairs[win]
    n_win_regions = len(np.unique(sv.window_labels(labels, window)[win]))
    if s:
        kinds = stats.kinds
        kind_text = _("; ").join(_masked_windows(k, n, p, pairs)
                                 for k, (n, p) in sorted(kinds.items(),
                                                         key=lambda kv: ["interior", "edge", "corner"].index(kv[0])))
        st.markdown(sentences(
            _("Shifted block, s = {s}: **{regions} regions** on the map, **{masked} of {n} windows** have a mask "
              "({kinds}).").format(s=s, regions=stats.regions, masked=stats.masked_windows, n=nwin, kinds=kind_text),
            ngettext("Window **{win}** (row {row}, column {col}: {kind}) holds **{n} region**: **{masked} of {pairs} "
                     "pairs** (query, key) are masked.",
                     "Window **{win}** (row {row}, column {col}: {kind}) holds **{n} regions**: **{masked} of {pairs} "
                     "pairs** (query, key) are masked.", n_win_regions).format(
                win=win, row=wr, col=wc, kind=_(WINDOW_KINDS[kind]), n=n_win_regions, masked=masked_here,
                pairs=pairs)))
    else:
        st.markdown(_("No shift here: the mask is all zeros, every pair in window {win} may attend ({pairs} "
                      "pairs).").format(win=win, pairs=pairs))
    wl = sv.window_labels(labels, window)[win]
    mask_w = shifted.mask[win] if shifted.mask is not None else np.zeros((window * window,) * 2, np.float32)
    a, b = st.columns([3, 2], gap="medium")
    mask_title = _("Mask of window {win} ({n}×{n})").format(win=win, n=window * window)
    a.plotly_chart(_figure(_key(view, "mask", win, query), language(),
                           lambda: sv.mask_figure(mask_w, wl, title=mask_title, query=query)),
                   key="sw-mask", config={"displaylogo": False})
    wcell = max(8, min(48, 300 // window))
    b.image(_labels_png(_key(view, "wlabels", win), 0, window, wcell, wl), output_format="PNG", width=min(300, wcell * window),
            caption=_("Region labels inside window {win} (rolled map)").format(win=win))
    b.caption(_("Row = query, column = key, in the window's row-major order. Dark = −100. The yellow row is query "
                "{query} (row {row}, column {col} of the window). Hover shows each token's (row, col) and region "
                "r.").format(query=query, row=qr, col=qc))

    mask_lines = [_check(f"window {win}: mask vs pair-by-pair comparison of its labels",
                         _brute_force_check(_key(view, "bf", win), wl, mask_w))]
    if shifted.traced and shifted.mask is not None:
        mask_lines.append(_check(f"shift_mask({hp}, {wp}, {window}, {s}) vs traced `{prefix}.1.mask`", shifted.checks["mask"]))
    st.code("\n".join(mask_lines), language=None)

    st.markdown("#### " + _("What the real model attends to in window {win}, query token {query}").format(
        win=win, query=query))
    att = []
    for v in views:
        att.append(v.probs[win, :, query])  # (heads, M²)
    fcell2 = sv.cell_size(hp, wp, PICTURE_PX, 440)
    a, b = st.columns(2, gap="medium")
    for col, v, row, name in ((a, regular, att[0], "regular"), (b, shifted, att[1], "shifted")):
        mean = row.mean(0)
        col.image(_footprint_jpeg(_key(run_key if v is regular else view, v.block, "fp"), token_px, v.grid, v.padded,
                                  v.window, v.shift, win, query,
                                  fcell2, shown, mean), output_format="JPEG", width="stretch",
                  caption=_("Block {n} ({name}): window {win} in the image, coloured by query {query}'s "
                            "attention (mean over heads; brighter = more)").format(
                      n=v.block + 1, name=_block_name(name), win=win, query=query))
    mcell = max(3, min(40, 480 // (window * min(heads, 6))))
    cols_m = min(heads, 6)
    for v, row, name in ((regular, att[0], "regular"), (shifted, att[1], "shifted")):
        masked = (v.mask[win, query].reshape(window, window) == sv.MASK_VALUE) if v.mask is not None else None
        mosaic = (_("Block {n} ({name}), each of the {heads} heads: query {query}'s attention over the {m}×{m} window "
                    "(inferno, stretched per head; yellow frame = the query; grey × = masked key)")
                  if masked is not None and masked.any() else
                  _("Block {n} ({name}), each of the {heads} heads: query {query}'s attention over the {m}×{m} window "
                    "(inferno, stretched per head; yellow frame = the query)"))
        st.image(_mosaic_png(_key(run_key if v is regular else view, v.block, "mosaic", win), query, mcell, cols_m,
                             row.reshape(heads, window, window), masked), output_format="PNG",
                 caption=mosaic.format(n=v.block + 1, name=_block_name(name), heads=heads, query=query, m=window))
    # column names in the page's language; the weight columns are formatted as numbers
    head_col = _("head")
    columns = {name: (_("{block}: top key").format(block=_block_name(name)),
                      _("{block}: its weight").format(block=_block_name(name)),
                      _("{block}: weight on itself").format(block=_block_name(name)))
               for name in ("regular", "shifted")}
    table_rows = []
    for hd in range(heads):
        row = {head_col: hd + 1}
        for a_row, name in ((att[0], "regular"), (att[1], "shifted")):
            top, weight, itself = columns[name]
            k = int(a_row[hd].argmax())
            row[top] = f"{k} ({k // window}, {k % window})"
            row[weight] = float(a_row[hd, k])
            row[itself] = float(a_row[hd, query])
        table_rows.append(row)
    st.dataframe(pd.DataFrame(table_rows), hide_index=True, key="sw-att-table",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for _top, *weights in columns.values() for c in weights})
    masked_row = (mask_w[query] == sv.MASK_VALUE)
    lines = [f"rows sum to 1 (regular, shifted): {float(np.abs(att[0].sum(-1) - 1).max()):.1e}, "
             f"{float(np.abs(att[1].sum(-1) - 1).max()):.1e}"]
    if masked_row.any():
        lines.append(f"largest attention to a masked key (shifted block): {float(att[1][:, masked_row].max()):.3g}  "
                     f"(exp(−100) ≈ 3.7e-44: zero in float32)")
    st.code("\n".join(lines), language=None)
    probs = (_("The traced `{tap0}` and `{tap1}` {shape}: row {query} of window {win}.") if shifted.traced else
             _("The traced `{tap0}` and `{tap1}` (re-run with your s) {shape}: row {query} of window {win}."))
    st.caption(probs.format(tap0=f"{prefix}.0.attn.probs", tap1=f"{prefix}.1.attn.probs",
                            shape=_shape(regular.probs.shape), query=query, win=win))
    if not ctx.pretrained or warning:
        st.caption(_("Random weights: attention is close to uniform except where the mask cuts it. With *Trained "
                     "weights* in the sidebar you see what the trained Swin-T attends to."))
    download_array(_("Attention of query {query} in window {win}, shifted block (heads × M²)").format(
        query=query, win=win), att[1], f"swin-s{stage + 1}-w{win}-q{query}")
    show_source(shift_mask, SwinBlock.window_attention)


# ---- 4. Relative position bias -------------------------------------------------------------------------------------
def position_bias() -> None:
    """The relative position bias table, its offsets, and the bias a query adds (§3.2, Eq. 4)."""
    st.subheader(_("4 · Relative position bias"))
    st.latex(r"\begin{aligned}B_{ij} &= \hat B\big[(\Delta y + M - 1)(2M - 1) + (\Delta x + M - 1)\big],\qquad "
             r"\hat B \in \mathbb{R}^{(2M-1)^2 \times \text{heads}}\\"
             r"(\Delta y, \Delta x) &= (y_i - y_j,\ x_i - x_j) \in [-M+1,\ M-1]^2\end{aligned}")
    blk = model.stages[stage].blocks[block]
    table = resize_bias_table(blk.relative_position_bias_table.detach(), M).float().cpu().numpy()
    side = 2 * M - 1
    if M != M0:
        table_text = _("Each head learns one bias per relative offset: the table of block {n} ({name}) has "
                       "**({side})² = {rows} rows × {heads} heads**, resampled bicubically from the checkpoint's "
                       "({side0})² = {rows0} rows (M = {m0}).")
    else:
        table_text = _("Each head learns one bias per relative offset: the table of block {n} ({name}) has "
                       "**({side})² = {rows} rows × {heads} heads**.")
    st.markdown(sentences(
        table_text.format(n=block + 1, name=_block_name(block_kind), side=side, rows=side * side, heads=heads,
                          side0=2 * M0 - 1, rows0=(2 * M0 - 1) ** 2, m0=M0),
        _("The bias a query adds over its window is a {m}×{m} cut of the table, read through "
          "`relative_position_index`.").format(m=window)))
    bias_q = chosen.rel_bias[head, query]
    a, b, c = st.columns([2, 3, 3], gap="small")
    lang = language()
    table_title = _("Table ({rows} × {heads})").format(rows=side * side, heads=heads)
    grid_title = _("Head {head}: the table as {side}×{side} offsets").format(head=head + 1, side=side)
    query_title = _("Bias added by query {query} (head {head})").format(query=query, head=head + 1)
    a.plotly_chart(_figure(_key(run_key, block, "table"), lang,
                           lambda: sv.bias_table_figure(table, M, title=table_title)),
                   key="sw-table", config={"displaylogo": False})
    b.plotly_chart(_figure(_key(run_key, block, "grid", head, query), lang,
                           lambda: sv.bias_grid_figure(table, M, head, query, window, title=grid_title)),
                   key="sw-grid", config={"displaylogo": False})
    c.plotly_chart(_figure(_key(run_key, block, "qbias", head, query), lang,  # B does not depend on the shift
                           lambda: sv.bias_query_figure(bias_q, query, title=query_title)),
                   key="sw-qbias", config={"displaylogo": False})
    index = relative_position_index(window, M)
    gathered = torch.from_numpy(table).T[:, index]  # (heads, m², m²)
    st.code(_check(f"table[relative_position_index({window}, {M})] vs traced `{prefix}.{block}.rel_bias`",
                   float((gathered - torch.tensor(chosen.rel_bias)).abs().max())), language=None)
    yellow = _("Yellow: in the middle, the {m}×{m} block of offsets that query (row {row}, col {col}) reads — key "
               "(ki, kj) takes offset (dy, dx) = ({row} − ki, {col} − kj), so the block appears flipped; on the right, "
               "the resulting {m}×{m} bias over the window's keys, as traced. Red negative, blue positive.").format(
        m=window, row=qr, col=qc)
    if window != M:
        yellow = sentences(yellow, _("The stage is a single {m}×{m} window: the offsets read the central rows of the "
                                      "table.").format(m=window))
    st.caption(yellow)
    show_source(relative_position_index, resize_bias_table, SwinBlock.relative_position_bias)


# ---- 5. Patch merging ---------------------------------------------------------------------------------------------
def patch_merging() -> None:
    """Patch merging between stages: 2×2 neighbours concatenated, 4C → 2C (§3.1)."""
    st.subheader(_("5 · Patch merging: half the grid, twice the channels"))
    st.latex(r"\begin{aligned}&x_0 = x[0{:}{:}2,\,0{:}{:}2],\quad x_1 = x[1{:}{:}2,\,0{:}{:}2],\quad "
             r"x_2 = x[0{:}{:}2,\,1{:}{:}2],\quad x_3 = x[1{:}{:}2,\,1{:}{:}2]\\"
             r"&\longrightarrow\ \operatorname{Linear}_{4C\to2C}\big(\operatorname{LN}"
             r"([x_0\Vert x_1\Vert x_2\Vert x_3])\big)\ \in\ \mathbb{R}^{\lceil h/2\rceil\times\lceil w/2\rceil"
             r"\times 2C}\end{aligned}")
    flow = " → ".join(f"{sh}×{sw}×{sc}" for sh, sw, sc in shapes)
    st.markdown(_("At this input: **{flow}** (tokens h×w × channels C per stage). Each merging concatenates every "
                  "2×2 group of neighbouring tokens into one token of 4C channels — **in the order x0, x1, x2, x3 "
                  "above: the row offset changes first** — normalises it and maps it to 2C.").format(flow=flow))
    gp = _grids_jpeg(photo_key, tuple(grids), P, shown)
    cols = st.columns(4)
    for i, (col, picture) in enumerate(zip(cols, gp)):
        sh, sw, sc = shapes[i]
        col.image(picture, output_format="JPEG", width="stretch",
                  caption=("▶ " if i == stage else "")
                  + _("stage {stage}: {h}×{w} tokens × {c}, one token = {px}×{px} px").format(
                      stage=i + 1, h=sh, w=sw, c=sc, px=P * 2 ** i))
    if run.merge is None:
        st.info(_("Stage 4 is the last stage: no merging after it. Its {h}×{w}×{c} tokens go to the final LayerNorm "
                  "and the classifier (mean over tokens). Choose stage 1–3 to see a merging.").format(h=h, w=w, c=C),
                icon=":material/info:")
    else:
        mg = run.merge
        mh, mw_ = mg.merged_grid
        a, b = st.columns([2, 3], gap="medium")
        picture, (zr, zc) = _merge_jpeg(photo_key, token_px, run.grid, shown)
        corner = (_("The top-left {rows}×{cols} of stage {stage}'s {h}×{w} tokens, in their 2×2 groups (black): "
                    "colour and label = place in the concatenation (odd side: zero-padded, hatched)")
                  if (h % 2 or w % 2) and (zr > h or zc > w) else
                  _("The top-left {rows}×{cols} of stage {stage}'s {h}×{w} tokens, in their 2×2 groups (black): "
                    "colour and label = place in the concatenation"))
        a.image(picture, output_format="JPEG", width="stretch",
                caption=corner.format(rows=zr, cols=zc, stage=stage + 1, h=h, w=w))
        _legend("merge", a)
        merged = _("Stage {stage} ends with **{h}×{w} tokens × C = {c}**. `merge` makes **{mh}×{mw} tokens × "
                   "4C = {c4}**; LayerNorm and a linear layer without bias give the traced `{tap}` **{shape}** = "
                   "{mh}·{mw} tokens × 2C = {c2}: the input of stage {next}.").format(
            stage=stage + 1, h=h, w=w, c=mg.channels, mh=mh, mw=mw_, c4=4 * mg.channels, tap=f"stages.{stage}.merged",
            shape=_shape(mg.merged_shape), c2=2 * mg.channels, next=stage + 2)
        if h % 2 or w % 2:
            merged = sentences(merged, _("{h}×{w} has an odd side: `merge` first pads it with zero tokens to "
                                          "{hp}×{wp}.").format(h=h, w=w, hp=h + h % 2, wp=w + w % 2))
        b.markdown(merged)
        c0 = mg.channels
        rows = [[f"**x{i}** = x[{dh}::2, {dw}::2]", f"{i * c0} … {(i + 1) * c0 - 1}",
                 " ".join(f"{v:+.3f}" for v in mg.group[i, :3]),
                 " ".join(f"{v:+.3f}" for v in mg.concatenated[i * c0:i * c0 + 3])]
                for i, (dh, dw) in enumerate(sv.MERGE_OFFSETS)]
        b.markdown(_("The first group, tokens (0, 0), (1, 0), (0, 1), (1, 1) of the traced map, and the first merged "
                     "token that `merge` made of them:") + "\n\n"
                   + _table([_("token"), _("its channels in the merged token"), _("its first 3 values"),
                             "merged[those channels][:3]"], rows))
        st.code("\n".join([_check("merge(x) vs cat[x0, x1, x2, x3] by hand", mg.checks["cat"]),
                           _check(f"reduction(norm(merge(x))) vs traced `stages.{stage}.merged`", mg.checks["merged"])]),
                language=None)
    show_source(PatchMerging.merge, PatchMerging.forward)


# ---- 6. Cost -------------------------------------------------------------------------------------------------------
def cost() -> None:
    """The cost of global vs windowed attention (§3.2, Eq. 1–2)."""
    st.subheader(_("6 · What windows save: only the attention term"))
    st.latex(r"\Omega(\text{MSA}) = \underbrace{4hwC^2}_{\text{projections}} + \underbrace{2(hw)^2C}_{QK^\top,\ AV}"
             r"\qquad \Omega(\text{W-MSA}) = \underbrace{4hwC^2}_{\text{the same}} + \underbrace{2M^2hwC}_{QK^\top,\ AV"
             r"\text{ in windows}}")
    g_cost, w_cost = sv.msa_cost(h, w, C), sv.wmsa_cost(h, w, C, window)
    padded_cost = sv.wmsa_cost(hp, wp, C, window)
    st.markdown(_table(
        [_("per attention layer of stage {stage}").format(stage=stage + 1), _("4hwC² (projections)"),
         _("attention term"), _("total")],
        [[_("MSA, global (hw = {hw})").format(hw=h * w), _mults(g_cost.projections),
          f"2(hw)²C = **{_mults(g_cost.attention)}**",
          _mults(g_cost.total)],
         [f"W-MSA, M = {window}", _mults(w_cost.projections), f"2M²hwC = **{_mults(w_cost.attention)}**",
          _mults(w_cost.total)]]))
    ratio = g_cost.attention / w_cost.attention if w_cost.attention else float("nan")
    saving = _("With h·w = {h}·{w} = {hw} tokens, C = {c}, M = {m}: the attention term shrinks **{ratio:.1f}×** "
               "(= hw / M² = {hw} / {mm}), the projections (and the MLP after them) cost exactly the same. Both "
               "attention terms are linear in C; only the dependence on the number of tokens changes, from quadratic "
               "to linear — \"O(N²) → O(M²N)\" is true of the attention term only.").format(
        h=h, w=w, hw=h * w, c=C, m=window, ratio=ratio, mm=window * window)
    if (hp, wp) != (h, w):
        saving = sentences(saving, _("The block really computes on the padded {hp}×{wp} map: {cost} for "
                                      "attention.").format(hp=hp, wp=wp, cost=_mults(padded_cost.attention)))
    st.markdown(saving)
    res_shown = min(in_h, in_w)
    st.plotly_chart(_figure(_key("cost", stage, P, C, M, res_shown), language(),
                            lambda: sv.cost_figure(stage, P, C, M, res_shown)),
                    key="sw-cost",
                    config={"displaylogo": False})
    st.caption(_("Square inputs from 64 to 1024 px; the dotted vertical line is the current resolution. Log scale: "
                 "MSA's attention grows 4× faster than W-MSA's each time the side doubles."))


# ---- the six steps, one tab each: only the open tab is computed and drawn (a window-size move redraws one
# step, not the ~15 pictures and figures of all six) ----------------------------------------------------------
assert nwin == sel_n and window == sel_m, (nwin, sel_n, window, sel_m)
photo_key = _key(ctx.image_key, size, ctx.keep_aspect)
s = shifted.shift
labels = shifted.labels
qr, qc = divmod(query, window)
lazy_tabs("swin", (partition, cyclic_shift, mask_and_attention, position_bias, patch_merging, cost))
stage_footer("swin")

# The neighbouring window sizes, in the direction the slider last moved first: run in the background after this page
# is drawn, so the next step of the slider only draws.
last_m = st.session_state.get("_sw_last_m", M)
st.session_state["_sw_last_m"] = M
order = (M + 1, M - 1) if M >= last_m else (M - 1, M + 1)
if PREFETCH:
    # Quiet: at most one run in progress — this one, while it ends, or another student's.
    _store().prefetch([(_key(model_key, ctx.image_key, size, m, stage), lambda m=m: sv.run_stage(model, x, m, stage))
                       for m in order if 2 <= m <= 14], quiet=lambda: runs_in_progress() <= 1)
