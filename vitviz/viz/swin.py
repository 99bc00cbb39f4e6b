"""Arrays, pictures and figures for the Swin page: windows, the cyclic shift, the shift mask, the relative position
bias, patch merging and the cost of attention (Liu et al. 2021, §3.1–3.2, Eq. 1–4, Fig. 2–4).

Everything here is computed with the real module functions of `vitviz.models.swin` (`window_partition`,
`window_reverse`, `region_labels`, `shift_mask`, `window_and_shift`, `resize_bias_table`) and the real block's stage
methods, never re-implemented: `run_stage` traces the real Swin on an image up to the chosen stage; the pictures and
figures take numpy arrays and return PIL images or plotly figure dicts (no streamlit in here).
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn

from ..i18n import _
from ..models.common import VisionOutput
from ..models.swin import (
    MASK_VALUE,
    Swin,
    SwinConfig,
    region_labels,
    shift_mask,
    stage_grids,
    window_and_shift,
    window_partition,
    window_reverse,
)
from ..models.vit import resize_patch_kernel
from ..trace import trace

# Okabe & Ito's colour-blind-safe palette. Windows: a 2×2 checker of four light colours, the four of Okabe–Ito that
# stay furthest apart at 55 % over a photo under simulated protanopia, deuteranopia and tritanopia (ΔE ≥ 10,
# tests/test_viz_swin.py); windows that touch differ (unless a wrapped window meets the window it wrapped to; window
# borders are drawn as well). Wrapped strips: vermilion rows, blue columns, each with its own hatch direction, so
# they are told apart without colour too.
WINDOW_COLOURS = ("#E69F00", "#56B4E9", "#F0E442", "#CC79A7")  # orange, sky blue, yellow, reddish purple
ROW_STRIP = "#D55E00"  # rows that wrap from the top to the bottom
COL_STRIP = "#0072B2"  # columns that wrap from the left to the right
# The nine shift-mask regions: 0 (everything that did not wrap) light grey, 1–8 the rest of Okabe–Ito (black last).
REGION_COLOURS = ("#DDDDDD", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
# Patch merging: x0 … x3, the 2×2 neighbours in the order of the concatenation.
MERGE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#F0E442")
MERGE_OFFSETS = ((0, 0), (1, 0), (0, 1), (1, 1))  # (dh, dw) of x0, x1, x2, x3: x[0::2, 0::2], x[1::2, 0::2], …
PAD_GREY = (90, 90, 90)
CMAP = "inferno"  # attention: dark = little
BIAS_SCALE = "RdBu"  # the bias: diverging around 0 (red negative, blue positive)
MASK_SCALE = ((0.0, "#111111"), (1.0, "#F2F2F2"))  # -100 dark, 0 light


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _rgb_array(colours) -> np.ndarray:
    return np.array([_rgb(c) for c in colours], dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# The model: adaptation to another patch size, and a traced run up to one stage
# ---------------------------------------------------------------------------------------------------------------

def with_patch_size(model: Swin, patch: int) -> Swin:
    """A NEW Swin reading patch × patch patches with this checkpoint's weights; `model` is left untouched.

    The (C, 3, P, P) patch-embedding kernel is PI-resized (FlexiViT: `vitviz.models.vit.resize_patch_kernel`, so a
    patch upsampled bilinearly from P×P gives exactly the token the original patch gave); every other parameter is
    shared with `model` (same storage, not copied). Swin has no absolute position embedding to interpolate.
    """
    if patch == model.config.patch_size:
        return model
    cfg = replace(model.config, patch_size=patch)
    state = dict(model.state_dict())
    state["patch_embed.weight"] = resize_patch_kernel(model.patch_embed.weight.detach(), patch)
    with torch.device("meta"):
        new = Swin(cfg)
    new.load_state_dict(state, assign=True)
    for attr in ("preprocessing", "source"):
        if hasattr(model, attr):
            setattr(new, attr, getattr(model, attr))
    return new.eval().requires_grad_(False)


class _UpToStage(nn.Module):
    """Swin's patch embedding and stages 0 … `last` only: the same module objects under the same names, so
    `vitviz.trace` records the same taps as on the whole model (tests/test_viz_swin.py checks they are equal)."""

    def __init__(self, model: Swin, last: int):
        super().__init__()
        self.patch_embed, self.embed_norm, self.embeddings = model.patch_embed, model.embed_norm, model.embeddings
        self.stages = nn.ModuleList(model.stages[: last + 1])
        self._embed = model.embed  # bound method of the whole model: the same code path

    def forward(self, pixel_values: Tensor, output_attentions: bool = False, window_size: int | None = None):
        x, size = self._embed(pixel_values)
        for stage in self.stages:
            x, size, _attn = stage(x, size, window_size, need_weights=False)
        return VisionOutput(x)


def _np(x: Tensor) -> np.ndarray:
    arr = x.float().cpu().numpy()
    arr.flags.writeable = False  # shared read-only by every session that reads the cached run
    return arr


def _max_diff(a: Tensor, b: Tensor) -> float:
    """max |a - b| of two same-shaped tensors (0 for equal ones, checked first: one pass, no temporaries)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dtype == b.dtype and torch.equal(a, b):
        return 0.0
    return float((a.float() - b.float()).abs().max()) if a.numel() else 0.0


@dataclass(frozen=True)
class Pca:
    """A 3-component PCA of a stage's tokens, mapped to RGB with shared limits (so two maps compare colour to colour)."""

    mean: np.ndarray  # (C,)
    components: np.ndarray  # (C, 3)
    low: np.ndarray  # (3,) 1st percentile of the projections
    high: np.ndarray  # (3,) 99th percentile

    @classmethod
    def fit(cls, tokens: Tensor) -> "Pca":
        """tokens (n, C) -> the PCA of their top 3 principal directions (zeros beyond the data's rank).

        Eigenvectors of the smaller Gram matrix (C×C or n×n), signs fixed so that each direction's largest entry
        is positive: the same tokens always get the same colours.
        """
        x = tokens.double().cpu()
        mean = x.mean(0)
        xc = x - mean
        n, c = xc.shape
        if n >= c:
            _vals, vecs = torch.linalg.eigh(xc.T @ xc)  # ascending
            comps = vecs[:, -3:].flip(1)
        else:
            _vals, vecs = torch.linalg.eigh(xc @ xc.T)
            u = vecs[:, -3:].flip(1)
            comps = xc.T @ u
            comps = comps / comps.norm(dim=0).clamp_min(1e-12)
        comps = comps[:, : min(3, comps.shape[1])]
        if comps.shape[1] < 3:
            comps = torch.cat([comps, comps.new_zeros(c, 3 - comps.shape[1])], 1)
        sign = torch.sign(comps.gather(0, comps.abs().argmax(0, keepdim=True)))
        comps = comps * torch.where(sign == 0, 1.0, sign)
        proj = xc @ comps
        low, high = torch.quantile(proj, 0.01, dim=0), torch.quantile(proj, 0.99, dim=0)
        return cls(mean.numpy(), comps.numpy(), low.numpy(), high.numpy())

    def rgb(self, grid: np.ndarray) -> np.ndarray:
        """(..., C) features -> (..., 3) colours in [0, 1]."""
        proj = (np.asarray(grid, np.float64) - self.mean) @ self.components
        span = np.where(self.high > self.low, self.high - self.low, 1.0)
        return np.clip((proj - self.low) / span, 0, 1).astype(np.float32)


@dataclass(frozen=True, eq=False)
class BlockView:
    """One block of one stage on one image (batch 0): what the block computed, as numpy arrays.

    `traced` views hold what the real model's forward pass recorded (`vitviz.trace`); a view with `traced` False
    re-runs the same block's stage methods with a shift the checkpoint does not use (`rerun_with_shift`).
    """

    block: int  # index inside the stage (0: W-MSA, 1: SW-MSA)
    nominal: int  # the window size M asked for
    window: int  # the window the block really used (`window_and_shift`: clamped to a small stage)
    shift: int  # the shift it really used
    grid: tuple[int, int]  # (h, w) tokens of the stage
    padded: tuple[int, int]  # (Hp, Wp): padded to whole windows
    windows_shape: tuple[int, ...]  # the `windows` tensor: (b·nW, M², C)
    shifted_rgb: np.ndarray  # (Hp, Wp, 3): the `shifted` map (after the roll) in the stage's PCA colours
    labels: np.ndarray  # (Hp, Wp) region labels 0 … 8 on the rolled map
    mask: np.ndarray | None  # (nW, M², M²): 0 or -100; None when the block does not shift
    rel_bias: np.ndarray  # (heads, M², M²): B of Eq. 4
    probs: np.ndarray  # (nW, heads, M², M²): softmax(QKᵀ/√d + B + mask)
    traced: bool
    checks: dict[str, float]  # max |difference| of each recomputation against the recorded tensor

    @property
    def n_windows(self) -> int:
        return self.windows_shape[0]

    @property
    def tokens_per_window(self) -> int:
        return self.windows_shape[1]

    @property
    def window_grid(self) -> tuple[int, int]:
        return self.padded[0] // self.window, self.padded[1] // self.window

    @property
    def heads(self) -> int:
        return self.rel_bias.shape[0]

    @property
    def nbytes(self) -> int:
        arrays = (self.shifted_rgb, self.labels, self.mask, self.rel_bias, self.probs)
        return sum(a.nbytes for a in arrays if a is not None)


@dataclass(frozen=True, eq=False)
class MergeView:
    """Patch merging after a stage: the real `PatchMerging.merge` on the stage's last output, checked live."""

    grid: tuple[int, int]  # (h, w) before merging
    merged_grid: tuple[int, int]  # (⌈h/2⌉, ⌈w/2⌉)
    channels: int  # C before; the merged tokens have 4C after `merge`, 2C after the reduction
    merged_shape: tuple[int, ...]  # traced `stages.{s}.merged`: (b, ⌈h/2⌉·⌈w/2⌉, 2C)
    group: np.ndarray  # (4, C): tokens x0, x1, x2, x3 of the first 2×2 group, in concatenation order
    concatenated: np.ndarray  # (4C,): `merge`'s output for that group
    checks: dict[str, float]


@dataclass(frozen=True, eq=False)
class StageRun:
    """One traced forward pass of the real Swin, up to and including one stage, at one window size."""

    stage: int  # 0-based
    nominal: int  # M asked for
    grid: tuple[int, int]  # (h, w)
    channels: int  # C of the stage
    input_tap: str  # the tap that holds the stage's input
    blocks: tuple[BlockView, BlockView]  # (W-MSA block 0, SW-MSA block 1)
    before_rgb: np.ndarray  # (Hp, Wp, 3): block 1's LN'd, padded map before the roll, in PCA colours
    pca: Pca
    merge: MergeView | None  # None after the last stage
    shapes: dict[str, tuple[int, ...]]  # traced shapes of every recorded tap
    block_input: Tensor  # (1, h·w, C): what enters block 1 (`blocks.0.out`), for re-runs with another shift
    nbytes: int = 0

    @property
    def heads(self) -> int:
        return self.blocks[0].heads


def _block_taps(stage: int, block: int) -> list[str]:
    return [f"stages.{stage}.blocks.{block}.{t}" for t in ("shifted", "windows", "labels", "mask", "rel_bias",
                                                              "attn.probs", "out")]


def _pre_shift(block: nn.Module, x: Tensor, size: tuple[int, int], window: int) -> Tensor:
    """The block's LN'd map padded to whole windows, before the roll: (1, Hp, Wp, C), with its own methods."""
    grid = rearrange(block.norm1(x), "b (h w) c -> b h w c", h=size[0])
    return block.pad(grid, window)


def _block_view(block: nn.Module, index: int, t, prefix: str, x: Tensor, size: tuple[int, int], nominal: int,
                pca: Pca) -> BlockView:
    """A BlockView of the traced taps `prefix.*`, with the live checks of each stage method against them."""
    window, shift = window_and_shift(*size, nominal, nominal // 2 if block.shifts else 0)
    normed = _pre_shift(block, x, size, window)
    shifted, windows = t[f"{prefix}.shifted"], t[f"{prefix}.windows"]
    padded = tuple(shifted.shape[1:3])
    labels = t[f"{prefix}.labels"]
    mask = t.records.get(f"{prefix}.mask")
    checks = {
        "shift": _max_diff(block.shift(normed, shift), shifted),
        "partition": _max_diff(window_partition(shifted, window), windows),
        "reverse": _max_diff(window_reverse(windows, window, *padded), shifted),
        "unshift": _max_diff(block.unshift(shifted, shift), normed),
        "labels": _max_diff(region_labels(*padded, window, shift), labels),
    }
    if mask is not None:
        checks["mask"] = _max_diff(shift_mask(*padded, window, shift), mask)
    return BlockView(
        block=index, nominal=nominal, window=window, shift=shift, grid=size, padded=padded,
        windows_shape=tuple(windows.shape), shifted_rgb=pca.rgb(_np(shifted[0])), labels=labels.cpu().numpy(),
        mask=None if mask is None else _np(mask), rel_bias=_np(t[f"{prefix}.rel_bias"]),
        probs=_np(t[f"{prefix}.attn.probs"]), traced=True, checks=checks)


def run_stage(model: Swin, pixel_values: Tensor, window: int | None, stage: int) -> StageRun:
    """Trace the real Swin on pixel_values (1, 3, H, W) up to stage `stage` (0-based) with M = `window`
    (None: the checkpoint's) and keep what the page shows of the stage's first two blocks and its patch merging.

    The stages after `stage` do not change anything shown, so they are not run. Safe on a model shared by threads:
    what a trace records is the calling thread's state.
    """
    nominal = window or model.config.window_size
    depth = len(model.stages[stage].blocks)
    input_tap = "embeddings" if stage == 0 else f"stages.{stage - 1}.merged"
    include = [input_tap, *_block_taps(stage, 0), *_block_taps(stage, 1), f"stages.{stage}.blocks.*.out"]
    last_stage = stage == len(model.stages) - 1
    if not last_stage:
        include.append(f"stages.{stage}.merged")
    t = trace(_UpToStage(model, stage), pixel_values, include=include, window_size=nominal)
    grid = stage_grids(*pixel_values.shape[-2:], model.config.patch_size)[stage]
    blocks = model.stages[stage].blocks
    with torch.inference_mode():
        x0 = t[input_tap]
        x1 = t[f"stages.{stage}.blocks.0.out"]
        w1, _s = window_and_shift(*grid, nominal, nominal // 2)
        normed = _pre_shift(blocks[1], x1, grid, w1)  # (1, Hp, Wp, C)
        h, w = grid
        pca = Pca.fit(normed[0, :h, :w].reshape(h * w, -1))
        views = (_block_view(blocks[0], 0, t, f"stages.{stage}.blocks.0", x0, grid, nominal, pca),
                 _block_view(blocks[1], 1, t, f"stages.{stage}.blocks.1", x1, grid, nominal, pca))
        merge = None
        if not last_stage:
            out = t[f"stages.{stage}.blocks.{depth - 1}.out"]
            merger = model.stages[stage].downsample
            cat = merger.merge(out, grid)  # (1, h'·w', 4C)
            g = rearrange(out, "b (h w) c -> b h w c", h=h)
            if h % 2 or w % 2:
                g = torch.nn.functional.pad(g, (0, 0, 0, w % 2, 0, h % 2))
            parts = [g[:, dh::2, dw::2] for dh, dw in MERGE_OFFSETS]  # x0 … x3, each (1, h', w', C)
            by_hand = rearrange(torch.cat(parts, -1), "b h w c -> b (h w) c")
            merged = t[f"stages.{stage}.merged"]
            merge = MergeView(
                grid=grid, merged_grid=((h + 1) // 2, (w + 1) // 2), channels=out.shape[-1],
                merged_shape=tuple(merged.shape), group=_np(torch.stack([p[0, 0, 0] for p in parts])),
                concatenated=_np(cat[0, 0]),
                checks={"cat": _max_diff(cat, by_hand), "merged": _max_diff(merger.reduction(merger.norm(cat)), merged)})
    shapes = {name: tuple(v.shape) for name, v in t.records.items()}
    run = StageRun(stage=stage, nominal=nominal, grid=grid, channels=x0.shape[-1], input_tap=input_tap,
                   blocks=views, before_rgb=pca.rgb(_np(normed[0])), pca=pca, merge=merge, shapes=shapes,
                   block_input=x1.clone())
    return replace(run, nbytes=sum(v.nbytes for v in views) + run.before_rgb.nbytes + x1.numel() * x1.element_size())


def rerun_with_shift(model: Swin, run: StageRun, shift: int) -> BlockView:
    """Block 1 of `run`'s stage with shift s instead of the checkpoint's M//2: the block's own `pad`, `shift`,
    `partition` and `window_attention` (mask from `shift_mask`, the same function the block calls) on the traced
    input of block 1. Not what the checkpoint computes unless s = M//2 (then it equals the traced view)."""
    block = model.stages[run.stage].blocks[1]
    window, shift = window_and_shift(*run.grid, run.nominal, shift)
    with torch.inference_mode():
        normed = _pre_shift(block, run.block_input, run.grid, window)
        shifted = block.shift(normed, shift)
        padded = tuple(shifted.shape[1:3])
        windows = block.partition(shifted, window)
        _out, probs = block.window_attention(windows, padded, window, shift, run.nominal, need_weights=True)
        bias = block.relative_position_bias(window, run.nominal)
        checks = {"unshift": _max_diff(block.unshift(shifted, shift), normed),
                  "reverse": _max_diff(window_reverse(windows, window, *padded), shifted)}
    return BlockView(
        block=1, nominal=run.nominal, window=window, shift=shift, grid=run.grid, padded=padded,
        windows_shape=tuple(windows.shape), shifted_rgb=run.pca.rgb(_np(shifted[0])),
        labels=region_labels(*padded, window, shift).numpy(),
        mask=_np(shift_mask(*padded, window, shift)) if shift else None, rel_bias=_np(bias), probs=_np(probs),
        traced=False, checks=checks)


def stage_shapes(config: SwinConfig, height: int, width: int) -> list[tuple[int, int, int]]:
    """(h, w, C) of every stage's tokens for an H×W input, by the model's own rules (patch embedding ⌈H/P⌉ × ⌈W/P⌉,
    merging pads to even sides and halves; channels `config.dims`) — no forward pass. Windows never change a shape.
    tests/test_viz_swin.py checks these against a traced pass at many sizes and patch sizes."""
    grids = stage_grids(height, width, config.patch_size, len(config.dims))
    return [(h, w, c) for (h, w), c in zip(grids, config.dims)]


# ---------------------------------------------------------------------------------------------------------------
# Windows, regions and masks as the page states them
# ---------------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=32)
def window_index_map(height: int, width: int, window: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """For every position of the padded Hp×Wp map *before* the roll: (window index, token index inside it),
    each (Hp, Wp), in `window_partition` order of the map rolled by (-s, -s) — the real roll and partition applied
    to a grid of position numbers. Cached; the arrays are read-only."""
    positions = torch.arange(height * width).reshape(1, height, width, 1)
    rolled = torch.roll(positions, shifts=(-shift, -shift), dims=(1, 2)) if shift else positions
    windows = window_partition(rolled, window)[..., 0]  # (nW, M²) position numbers
    win = torch.empty(height * width, dtype=torch.long)
    tok = torch.empty(height * width, dtype=torch.long)
    win[windows.reshape(-1)] = torch.arange(windows.shape[0]).repeat_interleave(windows.shape[1])
    tok[windows.reshape(-1)] = torch.arange(windows.shape[1]).repeat(windows.shape[0])
    win, tok = win.reshape(height, width).numpy(), tok.reshape(height, width).numpy()
    win.flags.writeable = tok.flags.writeable = False
    return win, tok


def window_labels(labels: np.ndarray, window: int) -> np.ndarray:
    """The region labels (Hp, Wp) of the rolled map, window by window: (nW, M, M), as the block partitions them."""
    t = torch.as_tensor(np.asarray(labels))[None, :, :, None]
    return window_partition(t, window)[..., 0].reshape(-1, window, window).numpy()


def brute_force_mask(window_labels_: np.ndarray) -> np.ndarray:
    """The mask of one window from its labels (M, M) by comparing every pair of tokens one by one: (M², M²)."""
    flat = np.asarray(window_labels_).reshape(-1)
    n = flat.size
    out = np.zeros((n, n), np.float32)
    for i in range(n):
        for j in range(n):
            if flat[i] != flat[j]:
                out[i, j] = MASK_VALUE
    return out


@dataclass(frozen=True)
class MaskStats:
    """What the page says about a shift mask (nW, M², M²)."""

    regions: int  # distinct region labels on the map
    masked_windows: int  # windows with at least one masked pair
    masked_pairs: tuple[int, ...]  # per window: (query, key) pairs at -100
    pairs: int  # M⁴: pairs per window
    kinds: dict[str, tuple[int, int]]  # "interior"/"edge"/"corner" -> (windows of that kind, masked pairs in each)


def mask_stats(mask: np.ndarray | None, labels: np.ndarray, window: int) -> MaskStats:
    """Statistics of a displayed mask (or of no mask) over the map's region labels (Hp, Wp)."""
    nh, nw = labels.shape[0] // window, labels.shape[1] // window
    pairs = window ** 4
    if mask is None:
        counts = (0,) * (nh * nw)
    else:
        counts = tuple(int(c) for c in (np.asarray(mask) == MASK_VALUE).reshape(mask.shape[0], -1).sum(1))
    kinds: dict[str, list[int]] = {}
    for i in range(nh):
        for j in range(nw):
            kind = "corner" if (i == nh - 1 and j == nw - 1) else "edge" if (i == nh - 1 or j == nw - 1) else "interior"
            kinds.setdefault(kind, []).append(counts[i * nw + j])
    summary = {k: (len(v), max(v)) for k, v in kinds.items()}
    return MaskStats(len(np.unique(labels)), sum(c > 0 for c in counts), counts, pairs, summary)


# ---------------------------------------------------------------------------------------------------------------
# The A1 … D4 worked example
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkedExample:
    names: list[list[str]]  # the side × side grid, A1 … D4
    rolled: list[list[str]]  # after torch.roll by (-s, -s) on both axes
    windows: list[list[list[str]]]  # (nW, M, M) names, window_partition order
    window_regions: list[int]  # distinct regions in each window
    raster: list[list[str]]  # the tutorial error: the flattened sequence rolled by -s, reshaped
    raster_windows: list[list[list[str]]]


def worked_example(side: int = 4, window: int = 2, shift: int = 1) -> WorkedExample:
    """Name the cells of a side × side grid A1 … (row letter, column number), roll it with `torch.roll` by (-s, -s)
    as `SwinBlock.shift` does and cut it with the real `window_partition`; also the wrong raster-order shift."""
    letters = [chr(ord("A") + i) for i in range(side)]
    names = [[f"{letters[r]}{c + 1}" for c in range(side)] for r in range(side)]
    codes = torch.arange(side * side).reshape(1, side, side, 1)
    rolled = torch.roll(codes, shifts=(-shift, -shift), dims=(1, 2))
    windows = window_partition(rolled, window)[..., 0].reshape(-1, window, window)
    flat = [n for row in names for n in row]

    def named(t: Tensor) -> list:
        return [[flat[i] for i in row] for row in t.tolist()] if t.ndim == 2 else [named(x) for x in t]

    labels = window_partition(region_labels(side, side, window, shift)[None, :, :, None], window)[..., 0]
    raster = torch.roll(codes.reshape(-1), -shift).reshape(1, side, side, 1)
    raster_windows = window_partition(raster, window)[..., 0].reshape(-1, window, window)
    return WorkedExample(names, named(rolled[0, :, :, 0]), named(windows),
                         [int(torch.unique(w).numel()) for w in labels], named(raster[0, :, :, 0]),
                         named(raster_windows))


# ---------------------------------------------------------------------------------------------------------------
# Cost (Swin paper Eq. 1–2, multiply-adds)
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cost:
    projections: int  # 4hwC²: q, k, v and output projections — the same for both
    attention: int  # 2(hw)²C for MSA, 2M²hwC for W-MSA: QKᵀ and A·V

    @property
    def total(self) -> int:
        return self.projections + self.attention


def msa_cost(h: int, w: int, c: int) -> Cost:
    """Ω(MSA) = 4hwC² + 2(hw)²C: global attention over all h·w tokens."""
    return Cost(4 * h * w * c * c, 2 * (h * w) ** 2 * c)


def wmsa_cost(h: int, w: int, c: int, window: int) -> Cost:
    """Ω(W-MSA) = 4hwC² + 2M²hwC: attention inside M×M windows."""
    return Cost(4 * h * w * c * c, 2 * window * window * h * w * c)


def cost_figure(stage: int, patch: int, channels: int, window: int, resolution: int,
                resolutions: range = range(64, 1025, 16), height: int = 520) -> dict:
    """Multiply-adds of one attention layer of stage `stage` against the (square) input resolution, log scale:
    the shared projection term and the two attention terms. `resolution` is marked."""
    xs, proj, glob, win = [], [], [], []
    for r in resolutions:
        h = stage_grids(r, r, patch)[stage][0]
        xs.append(r)
        proj.append(msa_cost(h, h, channels).projections)
        glob.append(msa_cost(h, h, channels).attention)
        win.append(wmsa_cost(h, h, channels, window).attention)
    lines = [
        (_("4hwC² (projections, both)"), proj, "#000000", "dot"),
        (_("2(hw)²C (MSA attention)"), glob, "#D55E00", "solid"),
        (_("2M²hwC (W-MSA attention, M = {m})").format(m=window), win, "#0072B2", "solid"),
        (_("Ω(MSA) total"), [a + b for a, b in zip(proj, glob)], "#D55E00", "dash"),
        (_("Ω(W-MSA) total"), [a + b for a, b in zip(proj, win)], "#0072B2", "dash"),
    ]
    data = [dict(type="scatter", mode="lines", name=name, x=xs, y=ys, line=dict(color=colour, dash=dash, width=3),
                 hovertemplate="%{x} px: %{y:.3s} " + _("multiply-adds") + "<extra>" + name + "</extra>")
            for name, ys, colour, dash in lines]
    layout = dict(
        height=height, margin=dict(l=70, r=10, t=40, b=10), font=dict(size=14), plot_bgcolor="white",
        title=dict(text=_("One attention layer of stage {stage} (C = {c}, P = {p})").format(stage=stage + 1, c=channels,
                                                                                             p=patch),
                   font=dict(size=16)),
        xaxis=dict(title=_("input resolution (px, square)"), gridcolor="#eee"),
        yaxis=dict(title=_("multiply-adds"), type="log", gridcolor="#ddd", exponentformat="SI"),
        legend=dict(font=dict(size=13), orientation="h", x=0, y=-0.18, yanchor="top"),
        shapes=[dict(type="line", xref="x", yref="paper", x0=resolution, x1=resolution, y0=0, y1=1,
                     line=dict(color="#555", width=2, dash="dot"))],
        annotations=[dict(xref="x", yref="paper", x=resolution, y=0.02, xanchor="left", showarrow=False,
                          text=f" {resolution} px", font=dict(size=13))],
    )
    return dict(data=data, layout=layout)


# ---------------------------------------------------------------------------------------------------------------
# Pictures (PIL): token grids over the image
# ---------------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def cell_size(rows: int, cols: int, width: int = 520, max_height: int = 560) -> int:
    """Display pixels per token so that a rows × cols grid fits width × max_height (at least 2)."""
    return max(2, min(width // cols, max_height // rows))


@lru_cache(maxsize=16)
def _hatch(height: int, width: int, direction: str, period: int = 8, thickness: int = 2) -> np.ndarray:
    """(H, W) bool stripes: "\\" or "/" diagonals, "-" rows, "|" columns."""
    y, x = np.mgrid[0:height, 0:width]
    k = {"\\": x - y, "/": x + y, "-": y, "|": x}[direction]
    return (k % period) < thickness


def _upscale(values: np.ndarray, cell: int) -> np.ndarray:
    return np.repeat(np.repeat(values, cell, 0), cell, 1)


def token_canvas(photo: Image.Image, token_px: int, padded: tuple[int, int], cell: int) -> np.ndarray:
    """The model's input drawn under a padded Hp×Wp token grid, cell px per token: (Hp·cell, Wp·cell, 3) float.

    Token (r, c) of a stage whose tokens each cover token_px × token_px input pixels sits over pixels
    [r·token_px, (r+1)·token_px) × [c·token_px, (c+1)·token_px); what lies beyond the image (zero padding) is grey.
    """
    hp, wp = padded
    scale = cell / token_px
    w, h = max(1, round(photo.width * scale)), max(1, round(photo.height * scale))
    out = np.empty((hp * cell, wp * cell, 3), np.float32)
    out[...] = PAD_GREY
    img = np.asarray(photo.convert("RGB").resize((w, h), Image.BILINEAR), np.float32)
    h, w = min(h, out.shape[0]), min(w, out.shape[1])
    out[:h, :w] = img[:h, :w]
    return out


def padding_mask(grid: tuple[int, int], padded: tuple[int, int]) -> np.ndarray:
    """(Hp, Wp) bool: the tokens the block adds (zeros) to reach whole windows."""
    m = np.zeros(padded, bool)
    m[grid[0]:, :] = True
    m[:, grid[1]:] = True
    return m


def _boundaries(ids: np.ndarray, cell: int, width: int = 1) -> np.ndarray:
    """Pixel mask of the borders between tokens of different ids (Hp, Wp): `width` px on each side of a border."""
    px = _upscale(ids, cell)
    edge = np.zeros(px.shape, bool)
    for axis in (0, 1):
        diff = np.diff(px, axis=axis) != 0  # True between pixel i and i+1 along the axis
        n = px.shape[axis]
        for offset in range(1 - width, width + 1):  # mark pixels i+offset for every border after pixel i
            lo, hi = max(offset, 0), min(n - 1 + offset, n)
            src = slice(lo - offset, hi - offset)
            dst = slice(lo, hi)
            if axis == 0:
                edge[dst, :] |= diff[src, :]
            else:
                edge[:, dst] |= diff[:, src]
    return edge


def _paint(canvas: np.ndarray, mask_px: np.ndarray, colour, alpha: float) -> None:
    canvas[mask_px] = canvas[mask_px] * (1 - alpha) + np.asarray(colour, np.float32) * alpha


def _to_image(canvas: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8))


def _frame_cells(draw: ImageDraw.ImageDraw, cells, cell: int, colour=(255, 214, 0)) -> None:
    """A black-and-yellow frame around each (r, c) cell: visible on any colour."""
    for r, c in cells:
        x0, y0, x1, y1 = c * cell, r * cell, (c + 1) * cell - 1, (r + 1) * cell - 1
        draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0), width=max(1, min(4, cell // 6 + 1)))
        if cell >= 8:
            draw.rectangle([x0 + 2, y0 + 2, x1 - 2, y1 - 2], outline=colour, width=max(1, min(3, cell // 10)))


def _outline_region(canvas: np.ndarray, region: np.ndarray, cell: int, colour=(255, 214, 0)) -> None:
    """A line in `colour` edged in black on both sides along the border of a token region (Hp, Wp) bool, also where
    the region meets the map's edge: visible on any background."""
    px = _upscale(np.pad(region, 1), cell).astype(np.int8)  # one token around, so the map's edge is a border too
    band = _boundaries(px, 1, 3)[cell:-cell, cell:-cell]
    core = _boundaries(px, 1, 1)[cell:-cell, cell:-cell]
    canvas[band] = 0
    canvas[core] = colour


def _mark_padding(canvas: np.ndarray, pad: np.ndarray, cell: int) -> None:
    px = _upscale(pad, cell)
    stripes = _hatch(*px.shape, "/", 10, 3)
    canvas[px] = canvas[px] * 0.15 + np.float32(PAD_GREY[0]) * 0.85  # dark grey: darker than any window tint
    canvas[px & stripes] = 30


def strip_masks(padded: tuple[int, int], shift: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) bool (Hp, Wp) masks of the tokens that wrap in the roll by (-s, -s): the first s rows and the
    first s columns of the map before the roll (they land in the last s rows / columns after it)."""
    rows, cols = np.zeros(padded, bool), np.zeros(padded, bool)
    rows[:shift, :] = True
    cols[:, :shift] = True
    return rows, cols


def _mark_strips(canvas: np.ndarray, rows: np.ndarray, cols: np.ndarray, cell: int) -> None:
    """Wrapped strips: vermilion with "\\" hatching for rows, blue with "/" for columns (both on the corner)."""
    for mask, colour, direction in ((rows, ROW_STRIP, "\\"), (cols, COL_STRIP, "/")):
        if not mask.any():
            continue
        px = _upscale(mask, cell)
        _paint(canvas, px, _rgb(colour), 0.45)
        _paint(canvas, px & _hatch(*px.shape, direction, 8, 3), _rgb(colour), 1.0)
        canvas[_boundaries(px.astype(np.int8), 1, 1) & px] = _rgb(colour)


def partition_picture(photo: Image.Image, token_px: int, grid: tuple[int, int], padded: tuple[int, int],
                      window: int, shift: int, cell: int, selected: int | None = None,
                      mark_strips: bool = True) -> Image.Image:
    """The stage's token grid over the image, each token tinted with its window's colour, window borders black,
    padding tokens grey-hatched. With a shift, the windows are those of the rolled map drawn where their tokens are
    in the image (Fig. 2 right): the wrapped strips (first s rows / columns) are hatched and join the window on the
    far side. `selected`: that window's tokens framed in yellow."""
    ids, _tok = window_index_map(*padded, window, shift)
    nw = padded[1] // window
    # checker colours by the window's row and column in the partition
    colour_index = (ids // nw % 2) * 2 + ids % nw % 2
    canvas = token_canvas(photo, token_px, padded, cell)
    tint = _rgb_array(WINDOW_COLOURS)[_upscale(colour_index, cell)]
    canvas = canvas * 0.45 + tint * 0.55
    _mark_padding(canvas, padding_mask(grid, padded), cell)
    if shift and mark_strips:
        _mark_strips(canvas, *strip_masks(padded, shift), cell)
    canvas[_boundaries(ids, cell, 1 if cell < 8 else 2)] = 0
    if selected is not None:
        _outline_region(canvas, ids == selected, cell)
    return _to_image(canvas)


def feature_picture(rgb: np.ndarray, window: int, cell: int, *, strips=None, padding: np.ndarray | None = None,
                    window_lines: bool = True) -> Image.Image:
    """A map in PCA colours (Hp, Wp, 3) in [0, 1], cell px per token: white window borders of the partition that
    follows (on the map as it is, rolled or not), `padding` (Hp, Wp) bool tokens hatched grey, and optional
    (rows, cols) strip masks marked."""
    canvas = _upscale(np.asarray(rgb, np.float32) * 255, cell)
    padded = rgb.shape[:2]
    if padding is not None and padding.any():
        _mark_padding(canvas, padding, cell)
    if strips is not None:
        _mark_strips(canvas, *strips, cell)
    if window_lines:
        r, c = np.mgrid[0:padded[0], 0:padded[1]]
        canvas[_boundaries((r // window) * padded[1] + c // window, cell, 1)] = 255
    return _to_image(canvas)


def rolled(array: np.ndarray, shift: int) -> np.ndarray:
    """`torch.roll(x, (-s, -s), dims=(0, 1))` of an (H, W, …) array: exactly what `SwinBlock.shift` does per token."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    return torch.roll(t, shifts=(-shift, -shift), dims=(0, 1)).numpy() if shift else np.asarray(array)


def labels_picture(labels: np.ndarray, window: int, cell: int, *, back: int = 0,
                   photo_canvas: np.ndarray | None = None) -> Image.Image:
    """The nine-region label map (Hp, Wp) in colour, the region number written in each region, window borders.

    `back` = s rolls the map back by (+s, +s) to show the regions where their tokens are in the image (the window
    borders then follow the shifted windows)."""
    labels = np.asarray(labels)
    hp, wp = labels.shape
    r, c = np.mgrid[0:hp, 0:wp]
    win = (r // window) * wp + c // window
    if back:
        labels = np.roll(labels, (back, back), (0, 1))
        win = np.roll(win, (back, back), (0, 1))
    colours = _upscale(_rgb_array(REGION_COLOURS).astype(np.uint8)[labels], cell)  # (Hp·cell, Wp·cell, 3)
    if photo_canvas is not None:
        colours = np.clip(photo_canvas * 0.35 + colours * 0.65 + 0.5, 0, 255).astype(np.uint8)
    colours[_boundaries(win, cell, 1 if cell < 8 else 2)] = 0
    picture = Image.fromarray(colours)
    draw = ImageDraw.Draw(picture)
    size = max(14, min(30, cell * 2))
    font = _font(size)
    # one number per connected piece of each region: at the centre of each run of rows × columns with that label
    for value in np.unique(labels):
        rows = np.nonzero((labels == value).any(1))[0]
        cols = np.nonzero((labels == value).any(0))[0]
        for rr in _runs(rows):
            for cc in _runs(cols):
                if not (labels[rr[0]:rr[1] + 1, cc[0]:cc[1] + 1] == value).all():
                    continue
                x = (cc[0] + cc[1] + 1) * cell / 2
                y = (rr[0] + rr[1] + 1) * cell / 2
                if (rr[1] - rr[0] + 1) * cell < size * 0.8 or (cc[1] - cc[0] + 1) * cell < size * 0.6:
                    continue
                dark = value in (5, 8)
                draw.text((x, y), str(int(value)), fill=(255, 255, 255) if dark else (0, 0, 0), font=font,
                          anchor="mm", stroke_width=2, stroke_fill=(0, 0, 0) if not dark else (255, 255, 255))
    return picture


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive runs [(first, last), …] of sorted indices."""
    runs = []
    for i in indices.tolist():
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def window_attention_picture(photo: Image.Image, token_px: int, grid: tuple[int, int], padded: tuple[int, int],
                             window: int, shift: int, selected: int, query: int, values: np.ndarray,
                             cell: int) -> Image.Image:
    """Where window `selected` of the (rolled) partition lies in the image, coloured by `values` (M²,) — a query's
    attention to each key of the window — over the image; the rest of the map darkened; the query framed."""
    ids, tok = window_index_map(*padded, window, shift)
    canvas = token_canvas(photo, token_px, padded, cell)
    inside = ids == selected
    from .attention import colourise

    colours = np.zeros((*padded, 3), np.float32)
    top = float(values.max()) if values.size else 1.0
    colours[inside] = colourise(np.asarray(values)[tok[inside]], top if top > 0 else 1.0, CMAP)
    inside_px = _upscale(inside, cell)
    canvas[~inside_px] *= 0.45
    canvas[inside_px] = canvas[inside_px] * 0.2 + _upscale(colours, cell)[inside_px] * 0.8
    _mark_padding(canvas, padding_mask(grid, padded) & ~inside, cell)
    _outline_region(canvas, inside, cell, (255, 255, 255))
    picture = _to_image(canvas)
    r, c = np.nonzero(inside & (tok == query))
    _frame_cells(ImageDraw.Draw(picture), zip(r.tolist(), c.tolist()), cell)
    return picture


def head_mosaic(maps: np.ndarray, query: int, cell: int, masked: np.ndarray | None = None,
                columns: int | None = None, gap: int = 6) -> Image.Image:
    """Each head's M×M attention of one query inside its window (heads, M, M), inferno stretched per head, the
    query framed; keys with `masked` (M, M) True (mask −100) crossed out."""
    from .attention import colourise

    heads, m, _m = maps.shape
    columns = columns or heads
    rows = -(-heads // columns)
    size = m * cell
    canvas = Image.new("RGB", (columns * (size + gap) - gap, rows * (size + gap) - gap), (255, 255, 255))
    qr, qc = divmod(query, m)
    for h in range(heads):
        tile = Image.fromarray(colourise(maps[h], None, CMAP)).resize((size, size), Image.NEAREST)
        draw = ImageDraw.Draw(tile)
        if masked is not None and cell >= 6:
            for r, c in zip(*np.nonzero(masked)):
                x0, y0 = c * cell + cell // 4, r * cell + cell // 4
                x1, y1 = (c + 1) * cell - cell // 4 - 1, (r + 1) * cell - cell // 4 - 1
                draw.line([x0, y0, x1, y1], fill=(120, 120, 120), width=max(1, cell // 10))
                draw.line([x0, y1, x1, y0], fill=(120, 120, 120), width=max(1, cell // 10))
        _frame_cells(draw, [(qr, qc)], cell)
        r, c = divmod(h, columns)
        canvas.paste(tile, (c * (size + gap), r * (size + gap)))
    return canvas


def merge_picture(photo: Image.Image, token_px: int, grid: tuple[int, int], width: int = 440,
                  tokens: int = 12) -> tuple[Image.Image, tuple[int, int]]:
    """The top-left corner (at most `tokens`×`tokens`, whole 2×2 groups) of the stage's token grid over the image,
    each token tinted by its place in its 2×2 group (x0 … x3, the order of the concatenation) and labelled, thick
    black borders around groups, thin white ones between tokens; padding to even sides hatched.
    Returns the picture and the (rows, cols) of tokens shown."""
    h, w = grid
    hp, wp = h + h % 2, w + w % 2
    rows, cols = min(hp, tokens), min(wp, tokens)
    cell = max(8, width // cols)
    # only the corner is shown: resizing the whole image to cell / token_px (9× at stage 1) would cost 20× as much
    corner = photo.crop((0, 0, min(photo.width, cols * token_px), min(photo.height, rows * token_px)))
    canvas = token_canvas(corner, token_px, (rows, cols), cell)
    r, c = np.mgrid[0:rows, 0:cols]
    order = np.zeros((rows, cols), np.int64)
    for i, (dh, dw) in enumerate(MERGE_OFFSETS):
        order[(r % 2 == dh) & (c % 2 == dw)] = i
    canvas = canvas * 0.45 + _rgb_array(MERGE_COLOURS)[_upscale(order, cell)] * 0.55
    pad = (r >= h) | (c >= w)
    _mark_padding(canvas, pad, cell)
    canvas[_boundaries(r * cols + c, cell, 1)] = 255
    canvas[_boundaries((r // 2) * cols + c // 2, cell, 2)] = 0
    picture = _to_image(canvas)
    draw = ImageDraw.Draw(picture)
    font = _font(max(10, min(24, cell // 2)))
    for rr in range(rows):
        for cc in range(cols):
            draw.text(((cc + 0.5) * cell, (rr + 0.5) * cell), f"x{order[rr, cc]}", fill=(0, 0, 0), font=font,
                      anchor="mm", stroke_width=2, stroke_fill=(255, 255, 255))
    return picture, (rows, cols)


def grid_picture(photo: Image.Image, token_px: int, grid: tuple[int, int], width: int = 240) -> Image.Image:
    """The image with a stage's token grid drawn over it in thin dark lines: one per token border when tokens are at
    least 6 px on screen, else one every 2nd, 4th, … token (the caption says how many tokens there are)."""
    h, w = grid
    cell = max(1, width // w)
    canvas = token_canvas(photo, token_px, grid, cell)
    step = 1
    while cell * step < 6:
        step *= 2
    lines = np.zeros((h * cell, w * cell), bool)
    lines[::cell * step, :] = True
    lines[:, ::cell * step] = True
    canvas[lines] = canvas[lines] * 0.3 + 255 * 0.7
    return _to_image(canvas)


def _css_colour(colour) -> str:
    """A "#RRGGBB" colour as given, an (r, g, b) tuple as "#rrggbb"."""
    return colour if isinstance(colour, str) else "#{:02x}{:02x}{:02x}".format(*colour)


def legend_html(items, size: int = 22) -> str:
    """A legend as HTML (for st.markdown with unsafe_allow_html): items [(colours, label), …], each one or more
    swatches followed by its label. The browser draws the words (any language, the page's own font, large enough
    for a projector); the label is escaped. One line, wrapping on a narrow screen; no blank line inside (a blank
    line would end the HTML block in markdown)."""
    swatch = (f"display:inline-block;width:{size}px;height:{size}px;border:1px solid #333;border-radius:2px;"
              "flex:none")
    groups = []
    for colours, label in items:
        boxes = "".join(f'<span style="{swatch};background:{_css_colour(c)}"></span>' for c in colours)
        text = f"<span>{html.escape(label)}</span>" if label else ""
        groups.append(f'<span style="display:inline-flex;align-items:center;gap:5px">{boxes}{text}</span>')
    return ('<div style="display:flex;flex-wrap:wrap;align-items:center;gap:8px 24px;font-size:1.05rem;'
            f'line-height:1.5;margin:0.2rem 0 0.6rem 0">{"".join(groups)}</div>')


# ---------------------------------------------------------------------------------------------------------------
# Figures (plotly dicts, hover values)
# ---------------------------------------------------------------------------------------------------------------

def mask_figure(mask: np.ndarray, labels: np.ndarray, *, title: str, query: int | None = None,
                height: int = 460) -> dict:
    """The M²×M² mask of one window (0 or -100), rows = queries, columns = keys; hover: both tokens' (row, col)
    in the window and their regions. labels (M, M) are the window's region labels. `query` row is outlined."""
    n = mask.shape[0]
    m = labels.shape[0]
    flat = np.asarray(labels).reshape(-1)
    tokens = [f"{i} ({i // m},{i % m}) r{flat[i]}" for i in range(n)]
    heat = dict(type="heatmap", z=np.asarray(mask, np.float32), zmin=MASK_VALUE, zmax=0, colorscale=MASK_SCALE,
                x=tokens, y=tokens, xgap=0, ygap=0,
                colorbar=dict(title=dict(text=_("mask"), side="right"), tickvals=[MASK_VALUE, 0], thickness=14,
                              tickfont=dict(size=13)),
                hovertemplate=_("query") + " %{y}<br>" + _("key") + " %{x}<br>" + _("mask") + " %{z:.0f}<extra></extra>")
    ticks = dict(type="category", showticklabels=False, showgrid=False, ticks="")
    shapes = []
    if query is not None:
        shapes.append(dict(type="rect", x0=-0.5, x1=n - 0.5, y0=query - 0.5, y1=query + 0.5,
                           line=dict(color="#FFD600", width=3)))
    layout = dict(height=height, margin=dict(l=40, r=10, t=40, b=40), title=dict(text=title, font=dict(size=16)),
                  font=dict(size=14), plot_bgcolor="white", shapes=shapes,
                  xaxis=dict(ticks, title=_("key token j (row-major in the window)"), constrain="domain"),
                  yaxis=dict(ticks, title=_("query token i"), autorange="reversed", scaleanchor="x",
                             constrain="domain"))
    return dict(data=[heat], layout=layout)


def _bias_colorbar(title: str) -> dict:
    return dict(title=dict(text=title, side="right"), thickness=14, tickfont=dict(size=13))


def bias_table_figure(table: np.ndarray, window: int, *, title: str, height: int = 520) -> dict:
    """The relative position bias table ((2M-1)², heads) as stored: one row per relative offset (dy, dx), one column
    per head; hover gives the row index, the offset and the value."""
    rows, heads = table.shape
    side = 2 * window - 1
    idx = np.arange(rows)
    labels = [f"{i}: (dy {i // side - window + 1:+d}, dx {i % side - window + 1:+d})" for i in idx]
    vmax = float(np.abs(table).max()) or 1.0
    heat = dict(type="heatmap", z=np.asarray(table, np.float32), y=labels, x=[str(h + 1) for h in range(heads)],
                zmin=-vmax, zmax=vmax, colorscale=BIAS_SCALE, colorbar=_bias_colorbar(_("bias")),
                hovertemplate=_("row") + " %{y}<br>" + _("head") + " %{x}<br>" + _("bias") + " %{z:.4f}<extra></extra>")
    layout = dict(height=height, margin=dict(l=10, r=10, t=40, b=10), title=dict(text=title, font=dict(size=16)),
                  font=dict(size=14), plot_bgcolor="white",
                  xaxis=dict(title=_("head"), side="bottom", type="category", tickfont=dict(size=12)),
                  yaxis=dict(title=_("row idx of the table (0 … {last})").format(last=rows - 1), autorange="reversed",
                             type="category", showticklabels=False))
    return dict(data=[heat], layout=layout)


def bias_grid_figure(table: np.ndarray, window: int, head: int, query: int, used: int | None = None, *, title: str,
                     height: int = 430) -> dict:
    """One head's table ((2M-1)², heads) reshaped to its (2M-1)×(2M-1) grid of offsets (dy, dx), with the m×m block
    that query (qi, qj) of an m×m window reads outlined (m = `used`, default M): offsets dy = qi - ki, dx = qj - kj
    for every key, i.e. rows qi + M - m … qi + M - 1 and the same for columns (the central rows when m < M)."""
    side = 2 * window - 1
    m = used or window
    grid = np.asarray(table[:, head], np.float32).reshape(side, side)
    vmax = float(np.abs(table[:, head]).max()) or 1.0
    offsets = [f"{v:+d}" for v in range(-(window - 1), window)]
    qi, qj = divmod(query, m)
    r0, c0 = qi + window - m, qj + window - m
    heat = dict(type="heatmap", z=grid, x=offsets, y=offsets, zmin=-vmax, zmax=vmax, colorscale=BIAS_SCALE,
                colorbar=_bias_colorbar(_("bias")),
                hovertemplate="dy %{y}, dx %{x}<br>" + _("bias") + " %{z:.4f}<extra></extra>")
    shapes = [dict(type="rect", xref="x", yref="y", x0=c0 - 0.5, x1=c0 + m - 0.5, y0=r0 - 0.5, y1=r0 + m - 0.5,
                   line=dict(color="#FFD600", width=4))]
    layout = dict(height=height, margin=dict(l=10, r=10, t=40, b=10), title=dict(text=title, font=dict(size=16)),
                  font=dict(size=14), plot_bgcolor="white", shapes=shapes,
                  xaxis=dict(title=_("dx = query col − key col"), type="category", constrain="domain"),
                  yaxis=dict(title=_("dy = query row − key row"), type="category", autorange="reversed",
                             scaleanchor="x", constrain="domain"))
    return dict(data=[heat], layout=layout)


def bias_query_figure(bias: np.ndarray, query: int, *, title: str, height: int = 430) -> dict:
    """The M×M bias (M²,) that one query adds to its scores over the window's keys (traced `rel_bias` row)."""
    m = math.isqrt(bias.shape[0])
    z = np.asarray(bias, np.float32).reshape(m, m)
    vmax = float(np.abs(z).max()) or 1.0
    qi, qj = divmod(query, m)
    heat = dict(type="heatmap", z=z, zmin=-vmax, zmax=vmax, colorscale=BIAS_SCALE, colorbar=_bias_colorbar(_("bias")),
                hovertemplate=_("key") + " (%{y}, %{x})<br>" + _("bias") + " %{z:.4f}<extra></extra>")
    shapes = [dict(type="rect", x0=qj - 0.5, x1=qj + 0.5, y0=qi - 0.5, y1=qi + 0.5, line=dict(color="#FFD600", width=4))]
    layout = dict(height=height, margin=dict(l=10, r=10, t=40, b=10), title=dict(text=title, font=dict(size=16)),
                  font=dict(size=14), plot_bgcolor="white", shapes=shapes,
                  xaxis=dict(title=_("key column in the window"), dtick=1, constrain="domain"),
                  yaxis=dict(title=_("key row"), autorange="reversed", scaleanchor="x", dtick=1, constrain="domain"))
    return dict(data=[heat], layout=layout)
