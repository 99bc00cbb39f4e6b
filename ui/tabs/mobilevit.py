"""The MobileViT page's drawing: the traced shapes, the block's summary, its seven step tabs and the predictions, each
a function of the page's one `vitviz.mobilevit_blocks.MobileViTRun` (Mehta & Rastegari 2022, §3.1), and the
bounded caches of the pictures drawn from it. Every picture and chart carries the text alternative that
`vitviz.describe.mobilevit` computes from the very block it draws; the equations flow as inline pieces that wrap on
a phone (`_equation`)."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from PIL import Image

from ui.chrome import download_array, show_source
from ui.common import (chart, clamp_state, code_block, markdown_table, picture, prediction_table, shape_text,
                       short_key)
from vitviz import mobilevit_blocks as mb
from vitviz.describe import mobilevit as describe
from vitviz.i18n import _, language, sentences
from vitviz.models.mobilevit import MobileViTBlock, fold, patch_multiple, unfold
from vitviz.viz import mobilevit as mv
from vitviz.viz.encode import jpeg, lighter, png

# Pictures are drawn about as wide as they are shown in a 1400 px window (the main column is ~910 px wide).
MAP_PX = 520  # the clickable offset map (shown ~505 px wide)
HEAD_PX = 320  # the receptive-field pictures
# each head's attention picture: four in a row, ~215 px each (at 320 px and JPEG quality 88 a move of ph or pw on this
# tab fetched 160–200 kB of pictures; JPEG at the pages' quality, vitviz.viz.encode.JPEG_QUALITY)
ATTENTION_PX = 240
FEATURE_PX = 160  # each feature-map picture (six in a row, ~140 px each)
DEFAULT_CHANNELS = [0, 1, 2, 3]


@dataclass(frozen=True, eq=False)
class Canvas:
    """What the step pictures are drawn over, and the key their caches share."""

    shown: Image.Image  # the image exactly as the model sees it
    photo: bytes  # it as JPEG over the block's H × W map, FEATURE_PX cells
    photo_alt: str  # what that picture shows (`describe.photo`)
    key: str  # one (model, image, input size, stage, patch): the pictures' cache key and the map's widget key


@dataclass(frozen=True)
class Channels:
    """The channels chosen on the first tab, also drawn by the unfold and fusion tabs."""

    conv3: list[int]  # of the 3×3 conv output and of `projected` / `fused` (C channels each)
    local: list[int]  # of X_L (d channels)

    @property
    def unfolded(self) -> int:
        """The channel of X_U the unfold tab draws: the first chosen for X_L (0 when none is)."""
        return self.local[0] if self.local else 0


# ---- caches of the pictures ------------------------------------------------------------------------------------

# Shared and never mutated: st.cache_data would unpickle the figure, validating it again, on every run. Keyed on the
# language too: its title and hover text are words.
@st.cache_resource(max_entries=48, show_spinner=False)
def _offset_map(key: str, selected: tuple[int, int], lang: str, _photo, _u: mb.Unfolding):
    return mv.clickable_map(mv.offset_picture(_photo, _u, selected, width=MAP_PX), _u,
                            title=_map_title(_u), height=min(640, int(510 * _u.resized[0] / _u.resized[1]) + 50))


def _map_title(u: mb.Unfolding) -> str:
    """Two short lines: a chart title does not wrap, and a phone shows the map about 300 px wide."""
    h, w = u.resized
    nh, nw = u.grid
    return (_("{h}×{w} map: {nh}×{nw} = {n} patches").format(h=h, w=w, nh=nh, nw=nw, n=u.n) + "<br>"
            + _("of {ph}×{pw} px, P = {p} offsets").format(ph=u.ph, pw=u.pw, p=u.p))


@st.cache_data(max_entries=8, show_spinner=False)
def _legend(ph: int, pw: int) -> bytes:
    u = mb.Unfolding(ph, pw, ph, pw)
    return png(mv.legend_picture(u, cell=max(30, min(56, 240 // max(ph, pw)))))


@st.cache_data(max_entries=64, show_spinner=False)
def _features(key: str, channels: tuple[int, ...], _maps) -> list[bytes]:
    h, w = _maps.shape[-2:]
    cell = mv.cell_size(h, w, FEATURE_PX, FEATURE_PX)
    return [png(mv.feature_picture(_maps[c], cell)) for c in channels]


@st.cache_data(max_entries=16, show_spinner=False)
def _feature_photo(key: str, rows: int, cols: int, _photo) -> bytes:
    cell = mv.cell_size(rows, cols, FEATURE_PX, FEATURE_PX)
    return jpeg(mv.backdrop(_photo, rows, cols, cell))


def canvas(shown: Image.Image, image_key: str, block: mb.BlockView, key: str) -> Canvas:
    """The Canvas of a block: `image_key` names the image and its input size (the photo over the block's map is
    made once per image, input size and map size), `key` the run and stage."""
    u = block.unfolding
    return Canvas(shown, _feature_photo(image_key, u.height, u.width, shown), describe.photo(block), key)


@st.cache_data(max_entries=64, show_spinner=False)
def _heads(key: str, layer: int, p: int, n: int, _block: mb.BlockView, _photo) -> tuple[mb.AttentionRows, list[bytes]]:
    attention = _block.attention(layer, p, n)
    u = _block.unfolding
    base = mv.backdrop(_photo, *u.resized, mv.cell_size(*u.resized, ATTENTION_PX, ATTENTION_PX))  # shared by the heads
    return attention, [jpeg(mv.attention_picture(base, u, row, (p, n), width=ATTENTION_PX, max_height=ATTENTION_PX))
                       for row in attention.rows]


@st.cache_data(max_entries=32, show_spinner=False)
def _receptive(key: str, pixel: tuple[int, int], _block: mb.BlockView,
                _photo) -> tuple[mb.ReceptiveField, bytes, bytes]:
    """What an output pixel depends on, and its pictures through the whole block and through its convs alone."""
    field = _block.receptive_field(*pixel)
    h, w = field.mask.shape
    base = mv.backdrop(_photo, h, w, mv.cell_size(h, w, HEAD_PX, HEAD_PX))
    pictures = [lighter(mv.dependency_picture(base, mask, field.pixel, width=HEAD_PX, max_height=HEAD_PX))
                for mask in (field.mask, field.conv_mask)]
    return field, *pictures


# ---- the selected pixel and channels, shared by several tabs -----------------------------------------------------

def chart_key(key: str) -> str:
    """A fresh key per (input, selected pixel): every click is a change, even on a pixel clicked before."""
    return "mv-map-" + short_key(key, st.session_state.get("mvr"), st.session_state.get("mvc"))


def apply_click(key: str, size: tuple[int, int]) -> None:
    """A click on the offset map (read before the pixel inputs are drawn) selects that pixel."""
    pixel = mv.pixel_from_event(st.session_state.get(chart_key(key)))
    if pixel is not None and 0 <= pixel[0] < size[0] and 0 <= pixel[1] < size[1]:
        st.session_state["mvr"], st.session_state["mvc"] = pixel


def chosen_channels(block: mb.BlockView) -> Channels:
    """The channels chosen on the first tab (remembered outside the widgets, which lose their state while their tab
    is closed), kept inside this stage's channel counts."""
    conv3 = [ch for ch in st.session_state.get("_mvch3", DEFAULT_CHANNELS) if ch < block.channels]
    local = [ch for ch in st.session_state.get("_mvch1", DEFAULT_CHANNELS) if ch < block.dim]
    return Channels(conv3, local)


def _check(label: str, value: float) -> str:
    """One live check's line, single spaces only: on a phone the line wraps between words, and a run of spaces
    (columns) left hanging at a wrapped line's end would reach past the screen's edge."""
    return f"{label}: max |Δ| = {value:.3g}" + (" ✓ exact" if value == 0 else "")


def _mults(x: int) -> str:
    return f"{x / 1e9:.2f} G" if x >= 1e9 else f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"


def _equation(*pieces: str) -> None:
    """An equation as inline LaTeX pieces, centred, that wrap between pieces on a narrow screen (WCAG 1.4.10 reflow:
    a display equation would be cut off at a phone's width). Each piece is a group: KaTeX breaks a line only between
    groups, so a piece never splits after its own = or ∈."""
    st.markdown(" ".join(f"${{{piece}}}$" for piece in pieces), text_alignment="center")


def _feature_row(label: str, maps, channels: list[int], canvas: Canvas, tap: str) -> None:
    """The image, then the chosen channels of one (channels, H, W) map, in a row of six."""
    cols = st.columns(6)
    picture(canvas.photo, alt=canvas.photo_alt, where=cols[0], caption=_("your image (aligned)"), width="stretch")
    for col, ch, data in zip(cols[1:], channels, _features(short_key(canvas.key, tap), tuple(channels), maps)):
        picture(data, alt=describe.feature_map(maps, ch, label), where=col,
                caption=_("{label}: channel {ch}").format(label=label, ch=ch), width="stretch")


# ---- above the tabs ------------------------------------------------------------------------------------------------

def show_trace_shapes(run: mb.MobileViTRun, stage: int, name: str) -> None:
    """Where the stage's block sits in the model: every traced shape, the stage's rows marked."""
    with st.expander(_("Where this block sits in {name}: every shape, traced live").format(name=name),
                     icon=":material/account_tree:"):
        rows = [[_("pixel_values (BGR in [0, 1])"), shape_text(run.input_shape), _("input")]]
        rows += [[f"`{t}`", shape_text(run.shapes[t]), _("MobileNetV2 trunk")] for t in mb.TRUNK_TAPS]
        for i in mb.MOBILEVIT_STAGES:
            mark = " ← " + _("this page") if i == stage else ""
            rows += [[f"`stages.{i}.block.input`", shape_text(run.shapes[f"stages.{i}.block.input"]),
                      _("after the strided MobileNetV2 block") + mark],
                     [f"`stages.{i}.block.fused`", shape_text(run.shapes[f"stages.{i}.block.fused"]),
                      _("MobileViT block output") + mark]]
        st.markdown(markdown_table([_("tap"), _("shape (batch first)"), _("what")], rows))
        st.caption(_("Every shape is read from the traced forward pass (`vitviz.trace`) at this input size and patch "
                     "size."))


def show_block(block: mb.BlockView) -> None:
    """The block's equation and its sizes at this input and patch size."""
    u = block.unfolding
    _equation(r"X \in \mathbb{R}^{H\times W\times C}",
              r"\xrightarrow{\ 3\times3,\ 1\times1\ } X_L\in\mathbb{R}^{H\times W\times d}",
              r"\xrightarrow{\text{unfold}} X_U\in\mathbb{R}^{P\times N\times d}",
              r"\xrightarrow{L\times\text{transformer}} X_G\in\mathbb{R}^{P\times N\times d}",
              r"\xrightarrow{\text{fold}} X_F\in\mathbb{R}^{H\times W\times d}",
              r"\xrightarrow{1\times1} \mathbb{R}^{H\times W\times C}",
              r"\xrightarrow{\text{concat with }X,\ 3\times3} Y\in\mathbb{R}^{H\times W\times C}")
    st.markdown(_("Stage {stage} at this input: **H × W = {h} × {w}**, **C = {c}** channels in, token width "
                  "**d = {d}**, patch **{ph} × {pw}** → **P = {p}** sequences of **N = {n}** patches, **L = {layers}** "
                  "transformer layers with {heads} heads.").format(
                    stage=block.stage, h=u.height, w=u.width, c=block.channels, d=block.dim, ph=u.ph, pw=u.pw,
                    p=u.p, n=u.n, layers=block.depth, heads=block.heads))


def show_selection(where, block: mb.BlockView, pixel: mb.PixelSelection) -> None:
    """Where the selected pixel sits, written in the container `where` beside the pixel inputs."""
    hr, wr = block.unfolding.resized
    where.markdown(_("Pixel ({r}, {c}) of the {hr}×{wr} map sits at **offset p = {p}** of **patch n = {n}**. The "
                     "unfold tab shows where, and lets you click another pixel; the attention and receptive-field tabs "
                     "follow it.").format(r=pixel.r, c=pixel.c, hr=hr, wr=wr, p=pixel.p, n=pixel.n))


# ---- 1. Local representation -----------------------------------------------------------------------------
def show_local_rep(block: mb.BlockView, channels: Channels, canvas: Canvas) -> None:
    """local_rep: the 3×3 and 1×1 convolutions, channel by channel (Mehta & Rastegari 2022, §3.1)."""
    st.subheader(_("1 · Local representation: 3×3 conv, then 1×1 conv to d"))
    _equation(r"X_L = W_{1\times1} *", r"\operatorname{SiLU}\big(\operatorname{BN}(W_{3\times3} * X)\big)")
    c, d, u = block.channels, block.dim, block.unfolding
    a, b = st.columns(2, gap="medium")
    conv3 = a.multiselect(_("Channels of the 3×3 conv output (0–{last})").format(last=c - 1), list(range(c)),
                          default=channels.conv3, max_selections=5, key="mvch3")
    local = b.multiselect(_("Channels of X_L (0–{last})").format(last=d - 1), list(range(d)), default=channels.local,
                          max_selections=5, key="mvch1")
    st.session_state["_mvch3"], st.session_state["_mvch1"] = conv3, local
    _feature_row(_("3×3 conv, BN, SiLU"), block.conv3, conv3, canvas, "local_conv")
    _feature_row(_("1×1 conv → X_L"), block.taps["local"], local, canvas, "local")
    st.caption(_("Each map is {h}×{w}: one cell per feature-map pixel, over the same field of view as the image "
                 "(stride {stride}: one cell covers {stride}×{stride} input pixels). Colour from the channel's "
                 "minimum (dark violet) to its maximum (yellow). The 3×3 conv mixes each pixel with its 8 neighbours "
                 "({c} → {c} channels); the 1×1 conv mixes channels only ({c} → d = {d}), no BN, no "
                 "activation.").format(h=u.height, w=u.width, stride=block.stride, c=c, d=d))
    code_block(_check(f"{block.prefix}.local_proj(local_conv(input)) vs `local`", block.checks["local_rep"]))
    show_source(MobileViTBlock.local_rep)


# ---- 2. Unfold -------------------------------------------------------------------------------------------
def _unfold_intro(block: mb.BlockView, shapes: dict[str, tuple[int, ...]]) -> None:
    """The resize warning, the unfold's equation and where each pixel goes."""
    u = block.unfolding
    h, w, ph, pw, d = u.height, u.width, u.ph, u.pw, block.dim
    hr, wr = u.resized
    if u.needs_resize:
        st.warning(
            _("**{h} × {w} is not a multiple of the {ph} × {pw} patch.** Before unfolding, MobileViT resizes X_L "
              "bilinearly (align_corners=False) **from {h} × {w} up to {hr} × {wr}**, the next multiples; after "
              "folding it resizes back **from {hr} × {wr} to {h} × {w}** (no padding, which would need masked "
              "attention). The map below is the resized one, the one actually unfolded.").format(
                h=h, w=w, ph=ph, pw=pw, hr=hr, wr=wr), icon=":material/aspect_ratio:")
    _equation(rf"X_L\in\mathbb{{R}}^{{{hr}\times{wr}\times{d}}}",
              rf"\longrightarrow\ X_U\in\mathbb{{R}}^{{P\times N\times d}}=\mathbb{{R}}^{{{u.p}\times{u.n}\times{d}}},",
              rf"P = p_h p_w = {ph}\cdot{pw},", rf"N=\frac{{H'W'}}{{P}}=\frac{{{hr}\cdot{wr}}}{{{u.p}}}")
    st.markdown(
        _("The traced tensor `{tap}` has shape **{shape}** = (batch·P, N, d). Pixel (r, c) goes to sequence "
          "**p = (r mod {ph})·{pw} + (c mod {pw})** at position **n = ⌊r/{ph}⌋·{nw} + ⌊c/{pw}⌋**: every sequence "
          "holds the pixels that sit at the **same place inside their patch**, one from each patch.").format(
            tap=f"{block.prefix}.unfolded", shape=shape_text(shapes[block.prefix + ".unfolded"]), ph=ph, pw=pw,
            nw=u.grid[1]))


def _selected_pixel(block: mb.BlockView, pixel: mb.PixelSelection) -> None:
    """The selected pixel's (p, n) worked out, its numbers before and after unfold, and the patch legend."""
    u = block.unfolding
    r, c, p, n, ph, pw, nw = pixel.r, pixel.c, pixel.p, pixel.n, u.ph, u.pw, u.grid[1]
    st.markdown(_("**The selected pixel** — click another one on the map, or type it above the tabs:"))
    st.markdown(
        _("Pixel **(r, c) = ({r}, {c})**").format(r=r, c=c) + "\n\n- "
        + _("offset **p = ({r} mod {ph})·{pw} + ({c} mod {pw}) = {i}·{pw} + {j} = {p}** (row {i}, column {j} "
            "inside its patch)").format(r=r, c=c, ph=ph, pw=pw, i=pixel.offset_row, j=pixel.offset_col, p=p) + "\n- "
        + _("patch **n = ⌊{r}/{ph}⌋·{nw} + ⌊{c}/{pw}⌋ = {a}·{nw} + {b} = {n}** (patch row {a}, column "
            "{b})").format(r=r, c=c, ph=ph, pw=pw, nw=nw, a=pixel.patch_row, b=pixel.patch_col, n=n) + "\n\n"
        + _("So X_L[{r}, {c}, :] becomes **X_U[{p}, {n}, :]**. Its sequence p = {p} holds the {count} pixels "
            "marked in black on the map.").format(r=r, c=c, p=p, n=n, count=u.n))
    # before and after side by side, a row per number: three columns fit a phone's width
    st.markdown(markdown_table(["", f"X_L[{r}, {c}, :]", f"X_U[{p}, {n}, :]"],
                               [[f"[{k}]", f"{a:+.4f}", f"{b:+.4f}"]
                                for k, (a, b) in enumerate(zip(pixel.before, pixel.after))]))
    st.caption(_("The first 3 of the d = {d} numbers of the same pixel, before and after unfold (traced "
                 "`unfolded`).").format(d=block.dim))
    picture(_legend(ph, pw), alt=describe.legend(u),
            caption=_("One {ph}×{pw} patch: offset p (and row, col inside the patch)").format(ph=ph, pw=pw),
            width=min(260, 56 * pw + 8))


def _offset_cue(u: mb.Unfolding) -> str:
    """What tells the offsets on the map apart without colour, as drawn at this map and patch size."""
    cue = mv.offset_cue(u, MAP_PX)
    if u.p == 1:
        return _("Every patch is a single pixel: every pixel has offset p = 0, and there is one sequence.")
    if cue == "numbers":
        return sentences(_("Each cell also carries its offset's number, so the offsets are told apart without "
                           "colour."), _("The colours repeat after 8 offsets; the numbers do not.") if u.p > 8 else "")
    if cue == "dots":
        return _("Each cell also carries a dot at its offset's place inside the cell (top left for p = 0), so the "
                 "offsets are told apart without colour.")
    return _("The cells are too small for numbers or dots: each cell's place inside its bordered patch is its "
             "offset.")


def show_unfold(block: mb.BlockView, shapes: dict[str, tuple[int, ...]], pixel: mb.PixelSelection,
                channels: Channels, canvas: Canvas) -> None:
    """unfold: the P sequences of N patches, on a clickable map of offsets (§3.1, Fig. 1b), and one channel of X_U."""
    st.subheader(_("2 · Unfold: P sequences, one per pixel offset"))
    u, channel = block.unfolding, channels.unfolded
    _unfold_intro(block, shapes)
    left, right = st.columns([3, 2], gap="large")
    with right:
        _selected_pixel(block, pixel)
    with left:
        chart(_offset_map(canvas.key, (pixel.r, pixel.c), language(), canvas.shown, u),
              alt=describe.offset_map(block, pixel), key=chart_key(canvas.key), on_select="rerun",
              selection_mode="points", config={"displayModeBar": False})  # a click target: zoom, pan get in the way
        st.caption(sentences(
            _("Each cell is one feature-map pixel, tinted with its offset's colour (Okabe–Ito, colour-blind safe)."),
            _offset_cue(u),
            _("Thick black lines separate patches. The large frame is the selected pixel; the pixels marked in black "
              "are its sequence. Hover any pixel for its (p, n).")))
    chart(mv.unfolded_figure(block.taps["unfolded"][:, :, channel], u, channel, (pixel.p, pixel.n)),
          alt=describe.unfolded(block, channel, pixel), key="mv-unfolded", config={"displaylogo": False})
    st.caption(_("The traced X_U for channel {channel} (the first channel chosen for X_L on the first tab): one row "
                 "per sequence, its {n} patches in raster order. The framed cell is the selected pixel.").format(
                     channel=channel, n=u.n))
    show_source(MobileViTBlock.unfold, unfold, patch_multiple)


# ---- 3. Global representation ----------------------------------------------------------------------------
def show_global_rep(block: mb.BlockView, shapes: dict[str, tuple[int, ...]], pixel: mb.PixelSelection,
                    canvas: Canvas, trained: bool) -> None:
    """global_rep: one pixel's attention across the patches at its offset, per head (§3.1)."""
    st.subheader(_("3 · Global representation: attention across the patches"))
    _equation(r"X_G(p) = \operatorname{Transformer}^{L}\big(X_U(p)\big),", r"1\le p\le P:",
              r"x \leftarrow x + \operatorname{MSA}(\operatorname{LN}(x)),",
              r"x \leftarrow x + \operatorname{FFN}(\operatorname{LN}(x))")
    u, p, n, prefix = block.unfolding, pixel.p, pixel.n, block.prefix
    st.markdown(
        _("The **same** transformer (pre-norm: LayerNorm *before* attention and before the MLP) runs on each of the "
          "P = {sequences} sequences separately — as a batch of {sequences}. In sequence p = {p}, the selected pixel "
          "is token n = {n} and attends to the **{patches} pixels at the same offset** in every patch, and to nothing "
          "else: the other {others} offsets are out of its reach in this step.").format(
            sequences=u.p, p=p, n=n, patches=u.n, others=u.p - 1))
    clamp_state("mvl", 1, block.depth)
    layer = st.slider(_("Transformer layer"), 1, block.depth, 1, key="mvl", bind="query-params",
                      help=_("Stage {stage} has L = {layers} layers (`{prefix}.layers.0` … `layers.{last}`).").format(
                          stage=block.stage, layers=block.depth, prefix=prefix, last=block.depth - 1)) - 1
    attention, pictures = _heads(short_key(canvas.key, "heads"), layer, p, n, block, canvas.shown)
    for hd, (col, data, low, high) in enumerate(zip(st.columns(block.heads), pictures, attention.lows,
                                                    attention.highs)):
        picture(data, alt=describe.attention_head(block, attention, hd), where=col, width="stretch",
                caption=_("head {h}").format(h=hd + 1) + f" · {low:.4f} – {high:.4f}")
    st.caption(
        _("Row n = {n} of the attention matrix of sequence p = {p} in layer {layer}, per head: softmax(q·kᵀ/√{dh}) "
          "over the N = {patches} patches, computed from the traced q and k (`{tap}`, shape {shape}). Each patch is "
          "tinted by the weight of its offset-{p} pixel (outlined in white), stretched from the head's smallest "
          "weight (dark) to its largest (bright): the range is under each picture. Uniform attention would give "
          "each patch 1/N = {uniform:.4f}. The framed pixel is the query.").format(
            n=n, p=p, layer=layer + 1, dh=block.head_dim, patches=u.n, tap=f"{prefix}.layers.{layer}.attn.q/k",
            shape=shape_text(shapes[f"{prefix}.layers.{layer}.attn.q"]), uniform=attention.uniform))
    if not trained:
        st.caption(_("Random weights: every weight is close to 1/N, so the stretched colours show noise. With "
                     "*Trained weights* in the sidebar you see what a trained MobileViT attends to."))
    # A short label (a button's label does not wrap on a phone); the file's name says stage, layer, p and n.
    download_array(_("Attention rows (heads × N)"), attention.rows, f"mobilevit-s{block.stage}-l{layer + 1}-p{p}-n{n}")
    show_source(MobileViTBlock.global_rep)


# ---- 4. Fold ---------------------------------------------------------------------------------------------
def show_fold(block: mb.BlockView) -> None:
    """fold: the exact inverse of unfold, checked live; the resize around it (§3.1)."""
    st.subheader(_("4 · Fold: the exact inverse of unfold"))
    _equation(r"X_F = \operatorname{fold}(X_G),", r"\operatorname{fold}\big(\operatorname{unfold}(X)\big) = X")
    u, d, checks = block.unfolding, block.dim, block.checks
    h, w = u.height, u.width
    hr, wr = u.resized
    lines = [
        _check(f"fold(unfold(X_L)) vs X_L ({d}×{hr}×{wr}{', resized' if u.needs_resize else ''})",
               checks["fold_unfold"]),
        _check(f"unfold(fold(X_U)) vs X_U ({u.p}×{u.n}×{d})", checks["unfold_fold"]),
        _check("unfold(X_L) vs traced `unfolded`", checks["unfold"]),
        _check("fold(traced `global_`) vs traced `folded`", checks["fold"]),
    ]
    code_block("\n".join(lines))
    st.markdown(_("Checked live on this image's traced tensors with the module's own `unfold` and `fold`: unfold "
                  "only moves numbers (a rearrange, no arithmetic), so fold puts every number back exactly — the "
                  "difference is 0, not merely small."))
    if u.needs_resize:
        st.markdown(
            _("**The resize is the one lossy step.** Before: X_L is **{h} × {w}**; resized up to **{hr} × {wr}** for "
              "unfolding; after folding, resized back to **{h} × {w}**. Resizing X_L up and straight back down is "
              "not the identity: max |Δ| = **{diff:.3g}** on this map. With a patch that divides H and W (or an "
              "input size that makes it divide) there is no resize at all.").format(
                h=h, w=w, hr=hr, wr=wr, diff=checks["resize_round_trip"]))
    else:
        st.markdown(_("{h} × {w} is a multiple of {ph} × {pw}: no resize, fold lands exactly on the block's "
                      "grid.").format(h=h, w=w, ph=u.ph, pw=u.pw))
    show_source(MobileViTBlock.fold, fold)


# ---- 5. Fusion -------------------------------------------------------------------------------------------
def show_fusion(block: mb.BlockView, shapes: dict[str, tuple[int, ...]], channels: Channels, canvas: Canvas) -> None:
    """fusion: 1×1 conv back to C, concatenation with the input, 3×3 conv (§3.1)."""
    st.subheader(_("5 · Fusion: back to C channels, concatenate with the input, 3×3 conv"))
    _equation(r"Y = \operatorname{SiLU}\Big(\operatorname{BN}\big(W_{3\times3} * [\,X \,\Vert\,",
              r"\operatorname{SiLU}(\operatorname{BN}(W_{1\times1} * X_F))\,]\big)\Big)")
    prefix, c = block.prefix, block.channels
    st.markdown(markdown_table(
        [_("step"), _("tensor"), _("shape")],
        [[_("block input X (kept for the concatenation)"), f"`{prefix}.input`", shape_text(shapes[prefix + ".input"])],
         [_("folded X_F"), f"`{prefix}.folded`", shape_text(shapes[prefix + ".folded"])],
         [_("1×1 conv d → C ({d} → {c})").format(d=block.dim, c=c), f"`{prefix}.projected`",
          shape_text(shapes[prefix + ".projected"])],
         [_("concatenate [X, projected]"), _("(computed inside `fusion`)"), shape_text(block.concatenated)],
         [_("3×3 conv 2C → C ({c2} → {c}) = block output").format(c2=block.concatenated[1], c=c),
          f"`{prefix}.fused`", shape_text(shapes[prefix + ".fused"])]]))
    for tap in ("projected", "fused"):
        _feature_row(tap, block.taps[tap], channels.conv3, canvas, tap)
    code_block("\n".join([_check(f"{prefix}.proj(`folded`) vs `projected`", block.checks["projection"]),
                          _check(f"{prefix}.fuse(cat[`input`, `projected`]) vs `fused`", block.checks["fusion"])]))
    st.caption(_("Channels as chosen for the 3×3 conv on the first tab (both have C channels)."))
    show_source(MobileViTBlock.fusion)


# ---- 6. Receptive field ------------------------------------------------------------------------------
def _receptive_verdict(field: mb.ReceptiveField, u: mb.Unfolding) -> str:
    """Whether every output pixel, this one, or not even this one sees every input pixel."""
    if field.everyone:
        verdict = _("With this {ph}×{pw} patch, **every output pixel depends on every input pixel**: a single block "
                    "already has a global receptive field, at the map's full resolution.")
    elif field.complete:
        verdict = _("With this {ph}×{pw} patch, output pixel ({r}, {c}) depends on every input pixel, **but not "
                    "every output pixel does**: some near the border miss a few input pixels (try the corner "
                    "(0, 0)).")
    else:
        verdict = _("With this {ph}×{pw} patch, **{missing} input pixels are out of reach** of this output pixel in "
                    "one block: the patch is larger than the convolutions can bridge, so some offsets never meet "
                    "(try a pixel far from the border, or a smaller patch). The checkpoint's 2×2 patch avoids this.")
    r, c = field.pixel
    return verdict.format(ph=u.ph, pw=u.pw, r=r, c=c, missing=field.missing)


def show_receptive_field(block: mb.BlockView, pixel: mb.PixelSelection, canvas: Canvas) -> None:
    """What one output pixel of the block depends on (§3.1: every pixel sees every pixel)."""
    st.subheader(_("6 · Every pixel sees every pixel"))
    field, whole, conv = _receptive(short_key(canvas.key, "rf"), (pixel.r, pixel.c), block, canvas.shown)
    out_r, out_c = field.pixel
    a, b = st.columns([2, 3], gap="large")
    picture(whole, alt=describe.receptive_field(field), where=a, width="stretch",
            caption=_("The whole block: output pixel ({r}, {c}) depends on {seen} of the {total} block-input pixels "
                      "({share:.0%}); the rest hatched red").format(r=out_r, c=out_c, seen=field.seen,
                                                                     total=field.total, share=field.share))
    picture(conv, alt=describe.conv_field(field), where=a, width="stretch",
            caption=_("Its two 3×3 convs alone, without attention: {seen} pixels (a 5×5 window, clipped at the "
                      "border)").format(seen=field.conv_seen))
    b.markdown(
        _("Follow output pixel ({r}, {c}) backwards through the block:").format(r=out_r, c=out_c) + "\n1. "
        + _("The **fusion 3×3 conv** reads the folded map and the input in its 3×3 neighbourhood.") + "\n2. "
        + _("Each of those folded pixels came out of **attention across all {n} patches** at its own offset — 3 × 3 "
            "neighbouring pixels sit at 3 × 3 different offsets.").format(n=block.unfolding.n) + "\n3. "
        + _("Each of those attended pixels was computed by the **local 3×3 conv** from its own neighbourhood, which "
            "covers the offsets next to it.") + "\n\n"
        + sentences(_("Together they reach up to 5 consecutive offsets per axis, fewer at the border: patches of at "
                       "most 3 px let every output pixel see every input pixel, 4 and 5 px leave gaps near the "
                       "border, larger ones everywhere."),
                     _receptive_verdict(field, block.unfolding)) + "\n\n"
        + _("**Against ViT:** one ViT attention layer also lets every token see every token, but a token is a whole "
            "P×P patch squeezed into one vector by the patch embedding: the output is one vector per patch and the "
            "pixels inside a patch are never told apart again. MobileViT keeps a vector for every pixel: attention "
            "moves information between patches, the convolutions move it between the offsets inside a patch, and "
            "the spatial order is kept by construction — which is why it needs no position embeddings."))
    show_source(mb.dependency_mask)


# ---- 7. Cost ---------------------------------------------------------------------------------------------
def show_cost(block: mb.BlockView) -> None:
    """The cost of attention across patches against ViT's and per-pixel attention (§3.1)."""
    st.subheader(_("7 · What attention costs here"))
    u, cost = block.unfolding, block.cost
    hr, wr = u.resized
    _equation(r"\underbrace{O(N^2 P d)}_{\text{MobileViT: } P \text{ sequences of } N}", r"\text{vs}",
              r"\underbrace{O(N^2 d)}_{\text{ViT: one sequence of } N \text{ patch tokens}}", r"\text{vs}",
              r"\underbrace{O\big((NP)^2 d\big)}_{\text{every pixel a token}}")
    # three columns fit a phone (the first names the sequences and their tokens)
    st.markdown(markdown_table(
        [_("attention over …"), _("multiply-adds per layer (QKᵀ and A·V)"),
         _("× L = {layers} layers").format(layers=cost.layers)],
        [[_("MobileViT: P = {p} sequences of N = {n} patches").format(p=u.p, n=u.n),
          f"2·P·N²·d = **{_mults(cost.mobilevit)}**", _mults(cost.mobilevit_layers)],
         [_("ViT-style: the N = {n} patches as tokens").format(n=u.n), f"2·N²·d = {_mults(cost.vit_patches)}",
          _mults(cost.vit_patches_layers)],
         [_("every one of the {hr}×{wr} = {pixels} pixels as a token").format(hr=hr, wr=wr, pixels=u.pixels),
          f"2·(NP)²·d = {_mults(cost.vit_pixels)}", _mults(cost.vit_pixels_layers)]]))
    st.markdown(
        _("With d = {d}. MobileViT pays **P = {p}×** the patch-token attention, and in exchange keeps every pixel; "
          "attention over all pixels would cost **{ratio:.0f}×** more again (= P). Larger patches make attention "
          "cheaper (N²P = (H'W')²/P), but patches over 3 px along an axis leave gaps in the receptive field "
          "(previous tab).").format(d=block.dim, p=u.p, ratio=cost.pixels_ratio))


# ---- 8. Predictions --------------------------------------------------------------------------------------
def show_predictions(run: mb.MobileViTRun, name: str) -> None:
    """The model's top-5 classes (`name` is the model's, for a model without a classifier)."""
    st.subheader(_("8 · What the model predicts"))
    top = run.predictions
    if top is None:
        st.info(_("{name} has no classifier head.").format(name=name), icon=":material/label_off:")
        return
    st.markdown(prediction_table(top))
    if not run.trained:
        st.caption(_("Random weights: these classes are arbitrary (the preset's labels are placeholders), and so are "
                     "the probabilities. With *Trained weights* on they are real ImageNet predictions."))
    elif not run.at_native_patch:
        st.caption(_("The checkpoint was trained with {native}×{native} patches; at {ph}×{pw} its predictions may "
                     "degrade.").format(native=run.native_patch, ph=run.patch[0], pw=run.patch[1]))
