"""Stage 7 · MobileViT: one MobileViT block of the real MobileViT-XXS / -S on the student's image, step by step:
local convolution, unfold into P sequences of N patches, attention across patches, fold, fusion.

The patch-independent trunk (stem, MobileNetV2 stages, about half the work) runs once per model, image and input size
(`vitviz.viz.mobilevit.trunk`); the three MobileViT blocks run once more per patch size (`run_blocks`, one traced
pass that fills all three stages), so a stage move or a pixel click only redraws. The block's steps are lazy tabs: a
run draws only the open one.
"""
from __future__ import annotations

import hashlib
import math
import threading

import numpy as np
import pandas as pd
import streamlit as st

from ui.chrome import download_array, lazy_tabs, show_source, stage_footer, stage_header
from ui.context import context
from ui.image_input import model_input
from ui.models import get_model
from vitviz.attention import top_predictions
from vitviz.i18n import _, language, N_, sentences
from vitviz.models.mobilevit import MobileViTBlock, fold, patch_multiple, unfold
from vitviz.viz import mobilevit as mv
from vitviz.viz.encode import jpeg, png

MODELS = {"mobilevit-xxs": N_("MobileViT-XXS (1.3 M parameters, ImageNet classifier)"),
          "mobilevit-s": N_("MobileViT-S (5.6 M parameters, ImageNet classifier)")}
# Pictures are drawn about as wide as they are shown in a 1400 px window (the main column is ~910 px wide).
MAP_PX = 520  # the clickable offset map (shown ~505 px wide)
HEAD_PX = 320  # each head's attention picture (four in a row, ~215 px each) and the receptive-field pictures
FEATURE_PX = 160  # each feature-map picture (six in a row, ~140 px each)
PATCH_MAX = 8


@st.cache_resource(show_spinner=False)
def _trace_lock() -> threading.Lock:
    """One trace at a time: each keeps every intermediate of its forward alive (~10 MB at 256 px, ~40 MB for S at
    512 px), and a class arriving on this page at once would otherwise hold them all together."""
    return threading.Lock()


@st.cache_data(max_entries=32, show_spinner=False)  # (1, C, H/8, W/8): at most 1.5 MB each (S at 512 px)
def _trunk(source: str, image_key: str, size: str, _model, _x) -> mv.Trunk:
    return mv.trunk(_model, _x)


@st.cache_data(max_entries=12, show_spinner=False)  # ~10 MB each at 256 px, ~40 MB for S at 512 px
def _run(source: str, image_key: str, size: str, ph: int, pw: int, _model, _trunk) -> mv.MobileViTRun:
    with _trace_lock():
        return mv.run_blocks(_model, _trunk, (ph, pw))


def _key(*parts) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


# Shared and never mutated: st.cache_data would unpickle the figure, validating it again, on every run. Keyed on the
# language too: its title and hover text are words.
@st.cache_resource(max_entries=48, show_spinner=False)
def _offset_map(key: str, selected: tuple[int, int], lang: str, _photo, _u: mv.Unfolding):
    return mv.clickable_map(mv.offset_picture(_photo, _u, selected, width=MAP_PX), _u,
                            title=_map_title(_u), height=min(640, int(510 * _u.resized[0] / _u.resized[1]) + 50))


def _map_title(u: mv.Unfolding) -> str:
    h, w = u.resized
    nh, nw = u.grid
    return _("{h}×{w} map, {nh}×{nw} = {n} patches of {ph}×{pw} px, P = {p} offsets (colours)").format(
        h=h, w=w, nh=nh, nw=nw, n=u.n, ph=u.ph, pw=u.pw, p=u.p)


@st.cache_data(max_entries=8, show_spinner=False)
def _legend(ph: int, pw: int) -> bytes:
    u = mv.Unfolding(ph, pw, ph, pw)
    return png(mv.legend_picture(u, cell=max(30, min(56, 240 // max(ph, pw)))))


@st.cache_data(max_entries=64, show_spinner=False)
def _features(key: str, channels: tuple[int, ...], _maps: np.ndarray) -> list[bytes]:
    h, w = _maps.shape[-2:]
    cell = mv.cell_size(h, w, FEATURE_PX, FEATURE_PX)
    return [png(mv.feature_picture(_maps[c], cell)) for c in channels]


@st.cache_data(max_entries=16, show_spinner=False)
def _photo(key: str, rows: int, cols: int, _photo) -> bytes:
    cell = mv.cell_size(rows, cols, FEATURE_PX, FEATURE_PX)
    return jpeg(mv.backdrop(_photo, rows, cols, cell))


@st.cache_data(max_entries=64, show_spinner=False)
def _heads(key: str, layer: int, p: int, n: int, _block: mv.BlockView, _photo) -> tuple[np.ndarray, list[bytes]]:
    rows = _block.attention_rows(layer, p, n)
    u = _block.unfolding
    base = mv.backdrop(_photo, *u.resized, mv.cell_size(*u.resized, HEAD_PX, HEAD_PX))  # shared by the heads
    return rows, [jpeg(mv.attention_picture(base, u, row, (p, n), width=HEAD_PX, max_height=HEAD_PX)) for row in rows]


@st.cache_data(max_entries=32, show_spinner=False)
def _receptive(key: str, h: int, w: int, ph: int, pw: int, pixel: tuple[int, int], _photo) -> tuple[bytes, int, bytes, int]:
    """Pictures of what an output pixel depends on through the whole block and through its convs alone."""
    pictures = []
    base = mv.backdrop(_photo, h, w, mv.cell_size(h, w, HEAD_PX, HEAD_PX))
    for mask in (mv.dependency_mask(h, w, ph, pw, pixel), mv.conv_only_mask(h, w, pixel)):
        pictures += [jpeg(mv.dependency_picture(base, mask, pixel, width=HEAD_PX, max_height=HEAD_PX)), int(mask.sum())]
    return tuple(pictures)


def _clamp(key: str, low: int, high: int) -> None:
    """Keep a bound widget's stored value inside its current range (the map may have shrunk)."""
    value = st.session_state.get(key)
    if isinstance(value, (int, float)) and not low <= value <= high:
        st.session_state[key] = min(max(int(value), low), high)


def _chart_key(view: str) -> str:
    """A fresh key per (input, selected pixel): every click is a change, even on a pixel clicked before."""
    return "mv-map-" + _key(view, st.session_state.get("mvr"), st.session_state.get("mvc"))


def _apply_click(view: str, size: tuple[int, int]) -> None:
    """A click on the offset map (read before the pixel inputs are drawn) selects that pixel."""
    pixel = mv.pixel_from_event(st.session_state.get(_chart_key(view)))
    if pixel is not None and 0 <= pixel[0] < size[0] and 0 <= pixel[1] < size[1]:
        st.session_state["mvr"], st.session_state["mvc"] = pixel


def _stage_sizes(h: int, w: int, hidden: tuple[int, int, int]) -> dict[int, tuple[int, int, int]]:
    """(H, W, d) of the maps in MobileViT stages 2, 3, 4 for an h × w input (every stride-2 conv rounds up)."""
    sizes = {}
    for i, d in zip(mv.MOBILEVIT_STAGES, hidden):
        f = 2 ** (i + 1)
        sizes[i] = (math.ceil(h / f), math.ceil(w / f), d)
    return sizes


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _check(label: str, value: float) -> str:
    return f"{label:<46s} max |Δ| = {value:.3g}" + ("   ✓ exact" if value == 0 else "")


def _mults(x: int) -> str:
    return f"{x / 1e9:.2f} G" if x >= 1e9 else f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


ctx = context()
stage_header(
    "mobilevit",
    _("MobileViT mixes **convolutions** (local, pixel by pixel) with **transformers** (global). Its block keeps the "
      "feature map at full resolution: it cuts the map into small ph×pw patches, but instead of turning each patch "
      "into one token as ViT does, it **unfolds** the map into P = ph·pw sequences — one per pixel position inside a "
      "patch — and runs attention **across the patches** in each sequence. Then it **folds** the map back and fuses "
      "it with the input. Here is one block of the real MobileViT on your image."),
)
st.caption(_("This page has its own model and patch-size controls: the sidebar's ViT model and patch size P are for "
             "pages 1–5. The sidebar's image and input resolution apply here too."))

with st.container(border=True):
    c1, c2, c3, c4 = st.columns([5, 8, 3, 3], gap="small")
    name = c1.selectbox(_("MobileViT model"), list(MODELS), key="mvit", bind="query-params")
    c1.caption(_(MODELS[name]))
    model, warning = get_model(name, ctx.pretrained)
    shown, pixel_values = model_input(ctx, model.preprocessing)
    in_h, in_w = pixel_values.shape[-2:]
    sizes = _stage_sizes(in_h, in_w, model.config.hidden_sizes)
    stage = c2.radio(_("MobileViT stage (map H × W × d at this input size)"), list(mv.MOBILEVIT_STAGES),
                     key="mvstage", horizontal=True, bind="query-params",
                     captions=[f"{h}×{w}×{d} · 1/{2 ** (i + 1)}" for i, (h, w, d) in sizes.items()],
                     help=_("The three stages that end in a MobileViT block (stages.2, 3, 4; the paper's layers "
                            "3–5). Each sees the image at 1/8, 1/16, 1/32 of the input size."))
    native = model.config.patch_size
    ph = c3.slider(_("Patch height ph"), 1, PATCH_MAX, native, key="ph", bind="query-params",
                   help=_("The checkpoint was trained with {native}×{native} patches. The weights do not depend on "
                          "the patch size, only the unfold/fold layout does.").format(native=native))
    pw = c4.slider(_("Patch width pw"), 1, PATCH_MAX, native, key="pw", bind="query-params")

if warning:
    st.info(warning, icon=":material/info:")
if (in_h, in_w) != (model.config.image_size,) * 2:
    st.caption(_("Input {h}×{w} px. MobileViT was trained on {size}×{size}; set the sidebar's resolution to 256 to "
                 "see the checkpoint's own sizes (it runs at any size).").format(h=in_h, w=in_w,
                                                                               size=model.config.image_size))

size = f"{in_h}x{in_w}"
with st.spinner(_("Running MobileViT once on your image at this patch size…"), show_time=True):
    # Keyed on model.source (the hub id or preset actually loaded): a hub fallback never shares keys with real weights.
    features = _trunk(model.source, ctx.image_key, size, model, pixel_values.to(ctx.device))
    run = _run(model.source, ctx.image_key, size, ph, pw, model, features)
block = run.blocks[stage]
u = block.unfolding
h, w = u.height, u.width
hr, wr = u.resized
nh, nw = u.grid
P, N, d, C = u.p, u.n, block.dim, block.channels
L, heads = block.depth, block.heads
view = _key(model.source, ctx.image_key, size, stage, ph, pw)
prefix = f"stages.{stage}.block"

# ---- Where the block sits --------------------------------------------------------------------------------
with st.expander(_("Where this block sits in {name}: every shape, traced live").format(name=name),
                 icon=":material/account_tree:"):
    rows = [[_("pixel_values (BGR in [0, 1])"), _shape(tuple(pixel_values.shape)), _("input")]]
    rows += [[f"`{t}`", _shape(run.shapes[t]), _("MobileNetV2 trunk")] for t in mv.TRUNK_TAPS]
    for i in mv.MOBILEVIT_STAGES:
        mark = " ← " + _("this page") if i == stage else ""
        rows += [[f"`stages.{i}.block.input`", _shape(run.shapes[f"stages.{i}.block.input"]),
                  _("after the strided MobileNetV2 block") + mark],
                 [f"`stages.{i}.block.fused`", _shape(run.shapes[f"stages.{i}.block.fused"]),
                  _("MobileViT block output") + mark]]
    st.markdown(_table([_("tap"), _("shape (batch first)"), _("what")], rows))
    st.caption(_("Every shape is read from the traced forward pass (`vitviz.trace`) at this input size and patch "
                 "size."))

st.latex(r"\begin{aligned}&X \in \mathbb{R}^{H\times W\times C}\xrightarrow{\ 3\times3,\ 1\times1\ }"
         r"X_L\in\mathbb{R}^{H\times W\times d}\xrightarrow{\text{unfold}}X_U\in\mathbb{R}^{P\times N\times d}"
         r"\xrightarrow{L\times\text{transformer}}X_G\in\mathbb{R}^{P\times N\times d}\\"
         r"&\xrightarrow{\text{fold}}X_F\in\mathbb{R}^{H\times W\times d}\xrightarrow{1\times1}"
         r"\mathbb{R}^{H\times W\times C}\xrightarrow{\text{concat with }X,\ 3\times3}Y\in\mathbb{R}^{H\times W\times C}"
         r"\end{aligned}")
st.markdown(_("Stage {stage} at this input: **H × W = {h} × {w}**, **C = {c}** channels in, token width "
              "**d = {d}**, patch **{ph} × {pw}** → **P = {p}** sequences of **N = {n}** patches, **L = {layers}** "
              "transformer layers with {heads} heads.").format(stage=stage, h=h, w=w, c=C, d=d, ph=ph, pw=pw, p=P,
                                                               n=N, layers=L, heads=heads))

# ---- 1. Local representation -----------------------------------------------------------------------------
def show_local_rep() -> None:
    """local_rep: the 3×3 and 1×1 convolutions, channel by channel (Mehta & Rastegari 2022, §3.1)."""
    st.subheader(_("1 · Local representation: 3×3 conv, then 1×1 conv to d"))
    st.latex(r"X_L = W_{1\times1} * \operatorname{SiLU}\big(\operatorname{BN}(W_{3\times3} * X)\big)")
    a, b = st.columns(2, gap="medium")
    conv3 = a.multiselect(_("Channels of the 3×3 conv output (0–{last})").format(last=C - 1), list(range(C)),
                          default=ch3, max_selections=5, key="mvch3")
    local = b.multiselect(_("Channels of X_L (0–{last})").format(last=d - 1), list(range(d)), default=ch1,
                          max_selections=5, key="mvch1")
    st.session_state["_mvch3"], st.session_state["_mvch1"] = conv3, local
    for label, maps, chosen, tap in ((_("3×3 conv, BN, SiLU"), block.conv3, conv3, "local_conv"),
                                     (_("1×1 conv → X_L"), block.taps["local"], local, "local")):
        cols = st.columns(6)
        cols[0].image(photo, caption=_("your image (aligned)"), width="stretch")
        for col, ch, picture in zip(cols[1:], chosen, _features(_key(view, tap), tuple(chosen), maps)):
            col.image(picture, caption=_("{label}: channel {ch}").format(label=label, ch=ch), width="stretch",
                      output_format="PNG")
    st.caption(_("Each map is {h}×{w}: one cell per feature-map pixel, over the same field of view as the image "
                 "(stride {stride}: one cell covers {stride}×{stride} input pixels). Colour from the channel's "
                 "minimum (dark violet) to its maximum (yellow). The 3×3 conv mixes each pixel with its 8 neighbours "
                 "({c} → {c} channels); the 1×1 conv mixes channels only ({c} → d = {d}), no BN, no "
                 "activation.").format(h=h, w=w, stride=2 ** (stage + 1), c=C, d=d))
    st.code(_check(f"{prefix}.local_proj(local_conv(input)) vs `local`", block.checks["local_rep"]), language=None)
    show_source(MobileViTBlock.local_rep)


# ---- 2. Unfold -------------------------------------------------------------------------------------------
def show_unfold() -> None:
    """unfold: the P sequences of N patches, on a clickable map of offsets (§3.1, Fig. 1b)."""
    st.subheader(_("2 · Unfold: P sequences, one per pixel offset"))
    if u.needs_resize:
        st.warning(
            _("**{h} × {w} is not a multiple of the {ph} × {pw} patch.** Before unfolding, MobileViT resizes X_L "
              "bilinearly (align_corners=False) **from {h} × {w} up to {hr} × {wr}**, the next multiples; after "
              "folding it resizes back **from {hr} × {wr} to {h} × {w}** (no padding, which would need masked "
              "attention). The map below is the resized one, the one actually unfolded.").format(
                h=h, w=w, ph=ph, pw=pw, hr=hr, wr=wr), icon=":material/aspect_ratio:")
    st.latex(rf"X_L\in\mathbb{{R}}^{{{hr}\times{wr}\times{d}}}\ \longrightarrow\ X_U\in\mathbb{{R}}^{{P\times N\times d}}"
             rf"=\mathbb{{R}}^{{{P}\times{N}\times{d}}},\qquad P = p_h p_w = {ph}\cdot{pw},\quad "
             rf"N=\frac{{H'W'}}{{P}}=\frac{{{hr}\cdot{wr}}}{{{P}}}")
    st.markdown(
        _("The traced tensor `{tap}` has shape **{shape}** = (batch·P, N, d). Pixel (r, c) goes to sequence "
          "**p = (r mod {ph})·{pw} + (c mod {pw})** at position **n = ⌊r/{ph}⌋·{nw} + ⌊c/{pw}⌋**: every sequence "
          "holds the pixels that sit at the **same place inside their patch**, one from each patch.").format(
            tap=f"{prefix}.unfolded", shape=_shape(run.shapes[prefix + ".unfolded"]), ph=ph, pw=pw, nw=nw))

    left, right = st.columns([3, 2], gap="large")
    with right:
        st.markdown(_("**The selected pixel** — click another one on the map, or type it above the tabs:"))
        i_off, j_off = divmod(p, pw)
        a_patch, b_patch = divmod(n, nw)
        st.markdown(
            _("Pixel **(r, c) = ({r}, {c})**").format(r=r, c=c) + "\n\n- "
            + _("offset **p = ({r} mod {ph})·{pw} + ({c} mod {pw}) = {i}·{pw} + {j} = {p}** (row {i}, column {j} "
                "inside its patch)").format(r=r, c=c, ph=ph, pw=pw, i=i_off, j=j_off, p=p) + "\n- "
            + _("patch **n = ⌊{r}/{ph}⌋·{nw} + ⌊{c}/{pw}⌋ = {a}·{nw} + {b} = {n}** (patch row {a}, column "
                "{b})").format(r=r, c=c, ph=ph, pw=pw, nw=nw, a=a_patch, b=b_patch, n=n) + "\n\n"
            + _("So X_L[{r}, {c}, :] becomes **X_U[{p}, {n}, :]**. Its sequence p = {p} holds the {count} pixels "
                "marked in black on the map.").format(r=r, c=c, p=p, n=n, count=N))
        st.markdown(_table(["", "[0]", "[1]", "[2]"],
                           [[f"X_L[{r}, {c}, :]", *(f"{x:+.4f}" for x in block.resized[:3, r, c])],
                            [f"X_U[{p}, {n}, :]", *(f"{x:+.4f}" for x in block.taps["unfolded"][p, n, :3])]]))
        st.caption(_("The first 3 of the d = {d} numbers of the same pixel, before and after unfold (traced "
                     "`unfolded`).").format(d=d))
        st.image(_legend(ph, pw), caption=_("One {ph}×{pw} patch: offset p (and row, col inside the patch)").format(
                     ph=ph, pw=pw),
                 width=min(260, 56 * pw + 8), output_format="PNG")
    with left:
        st.plotly_chart(_offset_map(view, (r, c), language(), shown, u), key=_chart_key(view), on_select="rerun",
                        selection_mode="points",
                        config={"displayModeBar": False})  # a click target: zoom and pan only get in the way
        st.caption(sentences(
            _("Each cell is one feature-map pixel, tinted with its offset's colour (Okabe–Ito, colour-blind safe; "
              "colours repeat after 8 offsets, the numbers do not).") if P > 8 else
            _("Each cell is one feature-map pixel, tinted with its offset's colour (Okabe–Ito, colour-blind safe)."),
            _("Thick black lines separate patches. The large frame is the selected pixel; the pixels marked in black "
              "are its sequence. Hover any pixel for its (p, n).")))
    channel = ch1[0] if ch1 else 0
    st.plotly_chart(mv.unfolded_figure(block.taps["unfolded"][:, :, channel], u, channel, (p, n)), key="mv-unfolded",
                    config={"displaylogo": False})
    st.caption(_("The traced X_U for channel {channel} (the first channel chosen for X_L on the first tab): one row "
                 "per sequence, its {n} patches in raster order. The framed cell is the selected pixel.").format(
                     channel=channel, n=N))
    show_source(MobileViTBlock.unfold, unfold, patch_multiple)


# ---- 3. Global representation ----------------------------------------------------------------------------
def show_global_rep() -> None:
    """global_rep: one pixel's attention across the patches at its offset, per head (§3.1)."""
    st.subheader(_("3 · Global representation: attention across the patches"))
    st.latex(r"X_G(p) = \operatorname{Transformer}^{L}\big(X_U(p)\big),\ \ 1\le p\le P:\quad "
             r"x \leftarrow x + \operatorname{MSA}(\operatorname{LN}(x)),\ \ x \leftarrow x + \operatorname{FFN}(\operatorname{LN}(x))")
    st.markdown(
        _("The **same** transformer (pre-norm: LayerNorm *before* attention and before the MLP) runs on each of the "
          "P = {sequences} sequences separately — as a batch of {sequences}. In sequence p = {p}, the selected pixel "
          "is token n = {n} and attends to the **{patches} pixels at the same offset** in every patch, and to nothing "
          "else: the other {others} offsets are out of its reach in this step.").format(
            sequences=P, p=p, n=n, patches=N, others=P - 1))
    _clamp("mvl", 1, L)
    layer = st.slider(_("Transformer layer"), 1, L, 1, key="mvl", bind="query-params",
                      help=_("Stage {stage} has L = {layers} layers (`{prefix}.layers.0` … `layers.{last}`).").format(
                          stage=stage, layers=L, prefix=prefix, last=L - 1)) - 1
    att_rows, pictures = _heads(_key(view, "heads"), layer, p, n, block, shown)
    cols = st.columns(heads)
    for hd, (col, picture, row) in enumerate(zip(cols, pictures, att_rows)):
        col.image(picture, width="stretch",
                  caption=_("head {h}").format(h=hd + 1) + f" · {row.min():.4f} – {row.max():.4f}")
    st.caption(
        _("Row n = {n} of the attention matrix of sequence p = {p} in layer {layer}, per head: softmax(q·kᵀ/√{dh}) "
          "over the N = {patches} patches, computed from the traced q and k (`{tap}`, shape {shape}). Each patch is "
          "tinted by the weight of its offset-{p} pixel (outlined in white), stretched from the head's smallest "
          "weight (dark) to its largest (bright): the range is under each picture. Uniform attention would give "
          "each patch 1/N = {uniform:.4f}. The framed pixel is the query.").format(
            n=n, p=p, layer=layer + 1, dh=d // heads, patches=N, tap=f"{prefix}.layers.{layer}.attn.q/k",
            shape=_shape(run.shapes[f"{prefix}.layers.{layer}.attn.q"]), uniform=1 / N))
    if not ctx.pretrained or warning:
        st.caption(_("Random weights: every weight is close to 1/N, so the stretched colours show noise. With "
                     "*Trained weights* in the sidebar you see what a trained MobileViT attends to."))
    download_array(_("Attention rows, stage {stage}, layer {layer}, p = {p}, n = {n} (heads × N)").format(
                       stage=stage, layer=layer + 1, p=p, n=n), att_rows,
                   f"mobilevit-s{stage}-l{layer + 1}-p{p}-n{n}")
    show_source(MobileViTBlock.global_rep)


# ---- 4. Fold ---------------------------------------------------------------------------------------------
def show_fold() -> None:
    """fold: the exact inverse of unfold, checked live; the resize around it (§3.1)."""
    st.subheader(_("4 · Fold: the exact inverse of unfold"))
    st.latex(r"X_F = \operatorname{fold}(X_G),\qquad \operatorname{fold}\big(\operatorname{unfold}(X)\big) = X")
    lines = [
        _check(f"fold(unfold(X_L)) vs X_L  ({d}×{hr}×{wr}{', resized' if u.needs_resize else ''})",
               block.checks["fold_unfold"]),
        _check(f"unfold(fold(X_U)) vs X_U  ({P}×{N}×{d})", block.checks["unfold_fold"]),
        _check("unfold(X_L) vs traced `unfolded`", block.checks["unfold"]),
        _check("fold(traced `global_`) vs traced `folded`", block.checks["fold"]),
    ]
    st.code("\n".join(lines), language=None)
    st.markdown(_("Checked live on this image's traced tensors with the module's own `unfold` and `fold`: unfold "
                  "only moves numbers (a rearrange, no arithmetic), so fold puts every number back exactly — the "
                  "difference is 0, not merely small."))
    if u.needs_resize:
        st.markdown(
            _("**The resize is the one lossy step.** Before: X_L is **{h} × {w}**; resized up to **{hr} × {wr}** for "
              "unfolding; after folding, resized back to **{h} × {w}**. Resizing X_L up and straight back down is "
              "not the identity: max |Δ| = **{diff:.3g}** on this map. With a patch that divides H and W (or an "
              "input size that makes it divide) there is no resize at all.").format(
                h=h, w=w, hr=hr, wr=wr, diff=block.checks["resize_round_trip"]))
    else:
        st.markdown(_("{h} × {w} is a multiple of {ph} × {pw}: no resize, fold lands exactly on the block's "
                      "grid.").format(h=h, w=w, ph=ph, pw=pw))
    show_source(MobileViTBlock.fold, fold)


# ---- 5. Fusion -------------------------------------------------------------------------------------------
def show_fusion() -> None:
    """fusion: 1×1 conv back to C, concatenation with the input, 3×3 conv (§3.1)."""
    st.subheader(_("5 · Fusion: back to C channels, concatenate with the input, 3×3 conv"))
    st.latex(r"Y = \operatorname{SiLU}\Big(\operatorname{BN}\big(W_{3\times3} * [\,X \,\Vert\, "
             r"\operatorname{SiLU}(\operatorname{BN}(W_{1\times1} * X_F))\,]\big)\Big)")
    st.markdown(_table(
        [_("step"), _("tensor"), _("shape")],
        [[_("block input X (kept for the concatenation)"), f"`{prefix}.input`", _shape(run.shapes[prefix + ".input"])],
         [_("folded X_F"), f"`{prefix}.folded`", _shape(run.shapes[prefix + ".folded"])],
         [_("1×1 conv d → C ({d} → {c})").format(d=d, c=C), f"`{prefix}.projected`",
          _shape(run.shapes[prefix + ".projected"])],
         [_("concatenate [X, projected]"), _("(computed inside `fusion`)"), f"(1, {2 * C}, {h}, {w})"],
         [_("3×3 conv 2C → C ({c2} → {c}) = block output").format(c2=2 * C, c=C), f"`{prefix}.fused`",
          _shape(run.shapes[prefix + ".fused"])]]))
    for label, maps, tap in (("projected", block.taps["projected"], "projected"), ("fused", block.taps["fused"], "fused")):
        cols = st.columns(6)
        cols[0].image(photo, caption=_("your image (aligned)"), width="stretch")
        for col, ch, picture in zip(cols[1:], ch3, _features(_key(view, tap), tuple(ch3), maps)):
            col.image(picture, caption=_("{label}: channel {ch}").format(label=label, ch=ch), width="stretch",
                      output_format="PNG")
    st.code("\n".join([_check(f"{prefix}.proj(`folded`) vs `projected`", block.checks["projection"]),
                       _check(f"{prefix}.fuse(cat[`input`, `projected`]) vs `fused`", block.checks["fusion"])]),
            language=None)
    st.caption(_("Channels as chosen for the 3×3 conv on the first tab (both have C channels)."))
    show_source(MobileViTBlock.fusion)


# ---- 6. Receptive field ------------------------------------------------------------------------------
def show_receptive_field() -> None:
    """What one output pixel of the block depends on (§3.1: every pixel sees every pixel)."""
    st.subheader(_("6 · Every pixel sees every pixel"))
    out_r, out_c = min(r, h - 1), min(c, w - 1)
    picture, seen, conv_picture, conv_seen = _receptive(_key(view, "rf"), h, w, ph, pw, (out_r, out_c), shown)
    everyone = mv.sees_everything(h, w, ph, pw)
    a, b = st.columns([2, 3], gap="large")
    a.image(picture, width="stretch",
            caption=_("The whole block: output pixel ({r}, {c}) depends on {seen} of the {total} block-input pixels "
                      "({share:.0%}); the rest hatched red").format(r=out_r, c=out_c, seen=seen, total=h * w,
                                                                     share=seen / (h * w)))
    a.image(conv_picture, width="stretch",
            caption=_("Its two 3×3 convs alone, without attention: {seen} pixels (a 5×5 window, clipped at the "
                      "border)").format(seen=conv_seen))
    if everyone:
        verdict = _("With this {ph}×{pw} patch, **every output pixel depends on every input pixel**: a single block "
                    "already has a global receptive field, at the map's full resolution.")
    elif seen == h * w:
        verdict = _("With this {ph}×{pw} patch, output pixel ({r}, {c}) depends on every input pixel, **but not "
                    "every output pixel does**: some near the border miss a few input pixels (try the corner "
                    "(0, 0)).")
    else:
        verdict = _("With this {ph}×{pw} patch, **{missing} input pixels are out of reach** of this output pixel in "
                    "one block: the patch is larger than the convolutions can bridge, so some offsets never meet "
                    "(try a pixel far from the border, or a smaller patch). The checkpoint's 2×2 patch avoids this.")
    b.markdown(
        _("Follow output pixel ({r}, {c}) backwards through the block:").format(r=out_r, c=out_c) + "\n1. "
        + _("The **fusion 3×3 conv** reads the folded map and the input in its 3×3 neighbourhood.") + "\n2. "
        + _("Each of those folded pixels came out of **attention across all {n} patches** at its own offset — 3 × 3 "
            "neighbouring pixels sit at 3 × 3 different offsets.").format(n=N) + "\n3. "
        + _("Each of those attended pixels was computed by the **local 3×3 conv** from its own neighbourhood, which "
            "covers the offsets next to it.") + "\n\n"
        + sentences(_("Together they reach up to 5 consecutive offsets per axis, fewer at the border: patches of at "
                       "most 3 px let every output pixel see every input pixel, 4 and 5 px leave gaps near the "
                       "border, larger ones everywhere."),
                     verdict.format(ph=ph, pw=pw, r=out_r, c=out_c, missing=h * w - seen)) + "\n\n"
        + _("**Against ViT:** one ViT attention layer also lets every token see every token, but a token is a whole "
            "P×P patch squeezed into one vector by the patch embedding: the output is one vector per patch and the "
            "pixels inside a patch are never told apart again. MobileViT keeps a vector for every pixel: attention "
            "moves information between patches, the convolutions move it between the offsets inside a patch, and "
            "the spatial order is kept by construction — which is why it needs no position embeddings."))
    show_source(mv.dependency_mask)


# ---- 7. Cost ---------------------------------------------------------------------------------------------
def show_cost() -> None:
    """The cost of attention across patches against ViT's and per-pixel attention (§3.1)."""
    st.subheader(_("7 · What attention costs here"))
    cost = mv.attention_cost(u, d)
    st.latex(r"\underbrace{O(N^2 P d)}_{\text{MobileViT: } P \text{ sequences of } N}\quad\text{vs}\quad"
             r"\underbrace{O(N^2 d)}_{\text{ViT: one sequence of } N \text{ patch tokens}}\quad\text{vs}\quad"
             r"\underbrace{O\big((NP)^2 d\big)}_{\text{every pixel a token}}")
    st.markdown(_table(
        [_("attention over …"), _("sequences × tokens"), _("multiply-adds per layer (QKᵀ and A·V)"),
         _("× L = {layers} layers").format(layers=L)],
        [[_("MobileViT: P = {p} sequences of N = {n} patches").format(p=P, n=N), f"{P} × {N}",
          f"2·P·N²·d = **{_mults(cost.mobilevit)}**", _mults(cost.mobilevit * L)],
         [_("ViT-style: the N = {n} patches as tokens").format(n=N), f"1 × {N}", f"2·N²·d = {_mults(cost.vit_patches)}",
          _mults(cost.vit_patches * L)],
         [_("every one of the {hr}×{wr} = {pixels} pixels as a token").format(hr=hr, wr=wr, pixels=hr * wr),
          f"1 × {hr * wr}", f"2·(NP)²·d = {_mults(cost.vit_pixels)}", _mults(cost.vit_pixels * L)]]))
    st.markdown(
        _("With d = {d}. MobileViT pays **P = {p}×** the patch-token attention, and in exchange keeps every pixel; "
          "attention over all pixels would cost **{ratio:.0f}×** more again (= P). Larger patches make attention "
          "cheaper (N²P = (H'W')²/P), but patches over 3 px along an axis leave gaps in the receptive field "
          "(previous tab).").format(d=d, p=P, ratio=cost.vit_pixels / cost.mobilevit))


# ---- the selected pixel (read by several steps), then the steps, one tab each: only the open tab is computed and
# drawn ----------------------------------------------------------------------------------------------------------
photo = _photo(_key(ctx.image_key, size), h, w, shown)
# The channels chosen on the first tab, also used by the unfold and fusion tabs (remembered outside the widgets,
# which lose their state while their tab is closed), and kept inside this stage's channel counts.
ch3 = [ch for ch in st.session_state.get("_mvch3", [0, 1, 2, 3]) if ch < C]
ch1 = [ch for ch in st.session_state.get("_mvch1", [0, 1, 2, 3]) if ch < d]
_clamp("mvr", 0, hr - 1)
_clamp("mvc", 0, wr - 1)
st.session_state.setdefault("mvr", hr // 2)
st.session_state.setdefault("mvc", wr // 2)
_apply_click(view, (hr, wr))
with st.container(border=True):
    r1, r2, r3 = st.columns([2, 2, 5], gap="medium")
    r = int(r1.number_input(_("Selected pixel: row r (0–{last})").format(last=hr - 1), 0, hr - 1, step=1, key="mvr",
                            bind="query-params"))
    c = int(r2.number_input(_("column c (0–{last})").format(last=wr - 1), 0, wr - 1, step=1, key="mvc",
                            bind="query-params"))
    p, n = u.locate(r, c)
    r3.markdown(_("Pixel ({r}, {c}) of the {hr}×{wr} map sits at **offset p = {p}** of **patch n = {n}**. The unfold "
                  "tab shows where, and lets you click another pixel; the attention and receptive-field tabs follow "
                  "it.").format(r=r, c=c, hr=hr, wr=wr, p=p, n=n))
lazy_tabs("mobilevit", (show_local_rep, show_unfold, show_global_rep, show_fold, show_fusion, show_receptive_field,
                        show_cost))

# ---- 8. Predictions --------------------------------------------------------------------------------------
st.subheader(_("8 · What the model predicts"))
if run.logits is not None:
    import torch

    top = top_predictions(torch.from_numpy(run.logits), model.config.labels)
    probability = _("probability")
    st.dataframe(pd.DataFrame(top, columns=[_("class"), probability]), hide_index=True,
                 column_config={probability: st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)})
    if not ctx.pretrained or warning:
        st.caption(_("Random weights: these classes are arbitrary (the preset's labels are placeholders), and so are "
                     "the probabilities. With *Trained weights* on they are real ImageNet predictions."))
    elif (ph, pw) != (native, native):
        st.caption(_("The checkpoint was trained with {native}×{native} patches; at {ph}×{pw} its predictions may "
                     "degrade.").format(native=native, ph=ph, pw=pw))
else:
    st.info(_("{name} has no classifier head.").format(name=name), icon=":material/label_off:")
stage_footer("mobilevit")
