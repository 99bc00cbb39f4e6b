"""What the Swin page shows, computed: the real Swin traced on an image up to one stage, the windows, shift regions
and masks of its blocks, patch merging, and the cost of windowed attention (Liu et al. 2021, §3.1–3.2, Eq. 1–4,
Fig. 2–4).

Everything is computed with the real module functions of `vitviz.models.swin` (`window_partition`,
`window_reverse`, `region_labels`, `shift_mask`, `window_and_shift`, `stage_grids`) and the real block's stage
methods, never re-implemented. `plan_stages` lays out the four stages from the model's rules before the model runs
(the page's controls need it); `stage_view` is the page's one call per run: a frozen `StageView` holding the traced
run and every number the page's text quotes (per-tab numbers are properties, computed when a tab reads them).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np
import torch
from einops import rearrange
from torch import Tensor, nn

from .models.common import VisionOutput
from .models.swin import (
    MASK_VALUE,
    Swin,
    SwinConfig,
    region_labels,
    relative_position_index,
    shift_mask,
    stage_grids,
    window_and_shift,
    window_partition,
    window_reverse,
)
from .trace import trace
from .weights import is_trained

# Patch merging's 2×2 neighbours x0 … x3 in the order of the concatenation: (dh, dw) of x[dh::2, dw::2].
MERGE_OFFSETS = ((0, 0), (1, 0), (0, 1), (1, 1))
MERGE_CORNER = 12  # the merging picture shows at most this many tokens per side of the stage's top-left corner


# ---------------------------------------------------------------------------------------------------------------
# Windows, regions and masks
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowPartition:
    """How one block cuts a stage's token map into windows (§3.2), and where its tokens sit in the input image."""

    grid: tuple[int, int]  # (h, w) tokens of the stage
    window: int  # M the block really uses (`window_and_shift`: min(h, w) on a map no larger than the nominal M)
    shift: int  # s the block rolls by (0: W-MSA)
    token_px: int  # input pixels under one token's side: P·2^stage

    @property
    def padded(self) -> tuple[int, int]:
        """(Hp, Wp): the map padded with zero tokens on the right and bottom to whole windows (`SwinBlock.pad`)."""
        return -(-self.grid[0] // self.window) * self.window, -(-self.grid[1] // self.window) * self.window

    @property
    def window_grid(self) -> tuple[int, int]:
        """(rows, columns) of windows."""
        return self.padded[0] // self.window, self.padded[1] // self.window

    @property
    def n_windows(self) -> int:
        return self.window_grid[0] * self.window_grid[1]

    @property
    def tokens_per_window(self) -> int:
        """M²."""
        return self.window * self.window

    @property
    def padding_added(self) -> tuple[int, int]:
        """(rows, columns) of zero tokens the block adds at the bottom and the right."""
        return self.padded[0] - self.grid[0], self.padded[1] - self.grid[1]

    @property
    def short_side(self) -> int:
        """min(h, w): a map whose shorter side is at most M is one row or column of windows (`window_and_shift`)."""
        return min(self.grid)

    def index_map(self) -> tuple[np.ndarray, np.ndarray]:
        """(window index, token index inside it), each (Hp, Wp), of every position before the roll."""
        return window_index_map(*self.padded, self.window, self.shift)

    def padding(self) -> np.ndarray:
        """(Hp, Wp) bool: the zero tokens the block adds."""
        return padding_mask(self.grid, self.padded)

    def strips(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) bool (Hp, Wp): the tokens that wrap in the roll (`strip_masks`)."""
        return strip_masks(self.padded, self.shift)


@lru_cache(maxsize=32)
def window_index_map(height: int, width: int, window: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """For every position of the padded Hp×Wp map *before* the roll: (window index, token index inside it),
    each (Hp, Wp), in `window_partition` order of the map rolled by (-s, -s) — the real roll and partition applied
    to a grid of position numbers. Cached; the arrays are read-only."""
    positions = torch.arange(height * width).reshape(1, height, width, 1)
    rolled_positions = torch.roll(positions, shifts=(-shift, -shift), dims=(1, 2)) if shift else positions
    windows = window_partition(rolled_positions, window)[..., 0]  # (nW, M²) position numbers
    win = torch.empty(height * width, dtype=torch.long)
    tok = torch.empty(height * width, dtype=torch.long)
    win[windows.reshape(-1)] = torch.arange(windows.shape[0]).repeat_interleave(windows.shape[1])
    tok[windows.reshape(-1)] = torch.arange(windows.shape[1]).repeat(windows.shape[0])
    win, tok = win.reshape(height, width).numpy(), tok.reshape(height, width).numpy()
    win.flags.writeable = tok.flags.writeable = False
    return win, tok


def padding_mask(grid: tuple[int, int], padded: tuple[int, int]) -> np.ndarray:
    """(Hp, Wp) bool: the tokens the block adds (zeros) to reach whole windows."""
    m = np.zeros(padded, bool)
    m[grid[0]:, :] = True
    m[:, grid[1]:] = True
    return m


def strip_masks(padded: tuple[int, int], shift: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) bool (Hp, Wp) masks of the tokens that wrap in the roll by (-s, -s): the first s rows and the
    first s columns of the map before the roll (they land in the last s rows / columns after it)."""
    rows, cols = np.zeros(padded, bool), np.zeros(padded, bool)
    rows[:shift, :] = True
    cols[:, :shift] = True
    return rows, cols


def runs(indices) -> list[tuple[int, int]]:
    """Consecutive runs [(first, last), …] of sorted indices: [0, 1, 2, 53, 54, 55] -> [(0, 2), (53, 55)]."""
    out: list[tuple[int, int]] = []
    for i in np.asarray(indices).tolist():
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def rolled(array: np.ndarray, shift: int) -> np.ndarray:
    """`torch.roll(x, (-s, -s), dims=(0, 1))` of an (H, W, …) array: exactly what `SwinBlock.shift` does per token."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    return torch.roll(t, shifts=(-shift, -shift), dims=(0, 1)).numpy() if shift else np.asarray(array)


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


WINDOW_KINDS = ("interior", "edge", "corner")  # where a window sits: which of its sides hold wrapped tokens


def window_kind(row: int, col: int, rows: int, cols: int) -> str:
    """"corner" (the last window), "edge" (last row or column of windows: they hold wrapped strips) or "interior"."""
    if row == rows - 1 and col == cols - 1:
        return "corner"
    return "edge" if row == rows - 1 or col == cols - 1 else "interior"


@dataclass(frozen=True)
class MaskStats:
    """What the page says about a shift mask (nW, M², M²)."""

    regions: int  # distinct region labels on the map
    masked_windows: int  # windows with at least one masked pair
    masked_pairs: tuple[int, ...]  # per window: (query, key) pairs at -100
    pairs: int  # M⁴: pairs per window
    kinds: dict[str, tuple[int, int]]  # "interior"/"edge"/"corner" (in that order) -> (windows, masked pairs in each)


def mask_stats(mask: np.ndarray | None, labels: np.ndarray, window: int) -> MaskStats:
    """Statistics of a displayed mask (or of no mask) over the map's region labels (Hp, Wp)."""
    nh, nw = labels.shape[0] // window, labels.shape[1] // window
    if mask is None:
        counts = (0,) * (nh * nw)
    else:
        counts = tuple(int(c) for c in (np.asarray(mask) == MASK_VALUE).reshape(mask.shape[0], -1).sum(1))
    kinds: dict[str, list[int]] = {kind: [] for kind in WINDOW_KINDS}
    for i in range(nh):
        for j in range(nw):
            kinds[window_kind(i, j, nh, nw)].append(counts[i * nw + j])
    summary = {k: (len(v), max(v)) for k, v in kinds.items() if v}
    return MaskStats(len(np.unique(labels)), sum(c > 0 for c in counts), counts, window ** 4, summary)


# ---------------------------------------------------------------------------------------------------------------
# The four stages, by the model's rules (before the model runs)
# ---------------------------------------------------------------------------------------------------------------

def default_shift(window: int) -> int:
    """⌊M/2⌋: the shift of the checkpoint's shifted blocks for windows of side M (§3.2)."""
    return window // 2


def stage_shapes(config: SwinConfig, height: int, width: int) -> list[tuple[int, int, int]]:
    """(h, w, C) of every stage's tokens for an H×W input, by the model's own rules (patch embedding ⌈H/P⌉ × ⌈W/P⌉,
    merging pads to even sides and halves; channels `config.dims`) — no forward pass. Windows never change a shape.
    tests/test_viz_swin.py checks these against a traced pass at many sizes and patch sizes."""
    grids = stage_grids(height, width, config.patch_size, len(config.dims))
    return [(h, w, c) for (h, w), c in zip(grids, config.dims)]


@dataclass(frozen=True)
class StageLayout:
    """One stage at one input size and nominal window M: its tokens and the windows of its shifted block."""

    channels: int  # C
    heads: int  # attention heads
    partition: WindowPartition  # the shifted block's windows at the checkpoint's shift ⌊M/2⌋

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) tokens."""
        return self.partition.grid

    @property
    def clamped(self) -> bool:
        """The map is no larger than one window (min(h, w) ≤ M): windows of side min(h, w), no shift."""
        return min(self.grid) <= self.partition.window


@dataclass(frozen=True)
class StagePlan:
    """The four stages for one input and one nominal window size: the page's controls and its stage table."""

    input_size: tuple[int, int]  # (H, W) px of the model's input
    patch: int  # P
    window: int  # nominal M
    stages: tuple[StageLayout, ...]


def plan_stages(config: SwinConfig, height: int, width: int, window: int) -> StagePlan:
    """The four stages of a Swin with `config` on an H×W input with nominal window M, by the model's rules."""
    layouts = []
    for i, (h, w, c) in enumerate(stage_shapes(config, height, width)):
        used, shift = window_and_shift(h, w, window, default_shift(window))
        layouts.append(StageLayout(c, config.heads[i], WindowPartition((h, w), used, shift, config.patch_size * 2**i)))
    return StagePlan((height, width), config.patch_size, window, tuple(layouts))


# ---------------------------------------------------------------------------------------------------------------
# The model: a traced run up to one stage, and the shifted block re-run with another shift
# ---------------------------------------------------------------------------------------------------------------

class _UpToStage(nn.Module):
    """Swin's patch embedding and stages 0 … `last` only: the same module objects under the same names, so
    `vitviz.trace` records the same taps as on the whole model (tests/test_viz_swin.py checks they are equal)."""

    def __init__(self, model: Swin, last: int):
        super().__init__()
        self.patch_embed, self.embed_norm, self.embeddings = model.patch_embed, model.embed_norm, model.embeddings
        self.stages = nn.ModuleList(model.stages[: last + 1])
        self._embed = model.embed  # bound method of the whole model: the same code path

    def forward(self, pixel_values: Tensor, output_attentions: bool = False, window_size: int | None = None):
        """pixel_values (b, 3, H, W) -> VisionOutput with the last stage's tokens (b, h'·w', C')."""
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
    partition: WindowPartition  # the window and shift the block really used (`window_and_shift`) on its grid
    windows_shape: tuple[int, ...]  # the `windows` tensor: (b·nW, M², C)
    shifted_rgb: np.ndarray  # (Hp, Wp, 3): the `shifted` map (after the roll) in the stage's PCA colours
    labels: np.ndarray  # (Hp, Wp) region labels 0 … 8 on the rolled map
    mask: np.ndarray | None  # (nW, M², M²): 0 or -100; None when the block does not shift
    rel_bias: np.ndarray  # (heads, M², M²): B of Eq. 4
    bias_table: np.ndarray  # ((2M-1)², heads): the block's table for the nominal M (`SwinBlock.bias_table`)
    probs: np.ndarray  # (nW, heads, M², M²): softmax(QKᵀ/√d + B + mask)
    traced: bool  # recorded by the model's forward pass (False: re-run with another shift)
    checks: dict[str, float]  # max |difference| of each recomputation against the recorded tensor

    @property
    def window(self) -> int:
        return self.partition.window

    @property
    def shift(self) -> int:
        return self.partition.shift

    @property
    def grid(self) -> tuple[int, int]:
        return self.partition.grid

    @property
    def padded(self) -> tuple[int, int]:
        return self.partition.padded

    @property
    def n_windows(self) -> int:
        return self.windows_shape[0]

    @property
    def tokens_per_window(self) -> int:
        return self.windows_shape[1]

    @property
    def window_grid(self) -> tuple[int, int]:
        return self.partition.window_grid

    @property
    def heads(self) -> int:
        return self.rel_bias.shape[0]

    @property
    def nbytes(self) -> int:
        arrays = (self.shifted_rgb, self.labels, self.mask, self.rel_bias, self.bias_table, self.probs)
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
    checks: dict[str, float]  # "cat": merge vs the concatenation by hand; "merged": reduction(norm(merge)) vs traced

    @property
    def padded_grid(self) -> tuple[int, int]:
        """(h, w) padded with zero tokens to even sides, as `merge` does first."""
        return self.grid[0] + self.grid[0] % 2, self.grid[1] + self.grid[1] % 2

    @property
    def concatenated_channels(self) -> int:
        return 4 * self.channels

    @property
    def output_channels(self) -> int:
        return 2 * self.channels

    @property
    def channel_ranges(self) -> tuple[tuple[int, int], ...]:
        """(first, last) channel of x0 … x3 in the merged token."""
        return tuple((i * self.channels, (i + 1) * self.channels - 1) for i in range(4))

    def first_values(self, n: int = 3) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Per x0 … x3: its first n values, and the merged token's values at its first n channels."""
        return tuple((self.group[i, :n], self.concatenated[first:first + n])
                     for i, (first, _last) in enumerate(self.channel_ranges))

    @property
    def corner(self) -> tuple[int, int]:
        """(rows, cols) of tokens the merging picture shows: the top-left corner in whole 2×2 groups."""
        return merge_corner(self.grid)

    @property
    def corner_has_padding(self) -> bool:
        """The shown corner reaches the zero tokens that pad an odd side."""
        rows, cols = self.corner
        return rows > self.grid[0] or cols > self.grid[1]


def merge_corner(grid: tuple[int, int], tokens: int = MERGE_CORNER) -> tuple[int, int]:
    """(rows, cols) of the top-left corner of an (h, w) map padded to even sides, at most `tokens` per side."""
    return min(grid[0] + grid[0] % 2, tokens), min(grid[1] + grid[1] % 2, tokens)


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
    pca: Pca  # the colours of block 1's input, shared by every picture of the stage's maps
    merge: MergeView | None  # None after the last stage
    shapes: dict[str, tuple[int, ...]]  # traced shapes of every recorded tap
    block_input: Tensor  # (1, h·w, C): what enters block 1 (`blocks.0.out`), for re-runs with another shift
    nbytes: int = 0  # bytes of the arrays held (the run store's budget)

    @property
    def heads(self) -> int:
        return self.blocks[0].heads


def _block_taps(stage: int, block: int) -> list[str]:
    return [f"stages.{stage}.blocks.{block}.{t}" for t in ("shifted", "windows", "labels", "mask", "rel_bias",
                                                              "attn.probs", "out")]


def _taps_of(t, prefix: str) -> dict[str, Tensor]:
    """The recorded taps under `prefix`, by the rest of their names."""
    return {name[len(prefix):]: value for name, value in t.records.items() if name.startswith(prefix)}


def _pre_shift(block: nn.Module, x: Tensor, size: tuple[int, int], window: int) -> Tensor:
    """The block's LN'd map padded to whole windows, before the roll: (1, Hp, Wp, C), with its own methods."""
    grid = rearrange(block.norm1(x), "b (h w) c -> b h w c", h=size[0])
    return block.pad(grid, window)


def _block_view(block: nn.Module, taps: dict[str, Tensor], x: Tensor, part: WindowPartition, nominal: int,
                pca: Pca) -> BlockView:
    """A BlockView of the block's traced taps (by their names inside the block), with the live checks of each stage
    method against them."""
    window, shift = part.window, part.shift
    normed = _pre_shift(block, x, part.grid, window)
    shifted, windows, labels, mask = taps["shifted"], taps["windows"], taps["labels"], taps.get("mask")
    checks = {
        "shift": _max_diff(block.shift(normed, shift), shifted),
        "partition": _max_diff(window_partition(shifted, window), windows),
        "reverse": _max_diff(window_reverse(windows, window, *part.padded), shifted),
        "unshift": _max_diff(block.unshift(shifted, shift), normed),
        "labels": _max_diff(region_labels(*part.padded, window, shift), labels),
    }
    if mask is not None:
        checks["mask"] = _max_diff(shift_mask(*part.padded, window, shift), mask)
    return BlockView(
        block=int(block.shifts), nominal=nominal, partition=part, windows_shape=tuple(windows.shape),
        shifted_rgb=pca.rgb(_np(shifted[0])), labels=labels.cpu().numpy(),
        mask=None if mask is None else _np(mask), rel_bias=_np(taps["rel_bias"]),
        bias_table=_np(block.bias_table(nominal).detach().clone()), probs=_np(taps["attn.probs"]),
        traced=True, checks=checks)


def _merge_view(model: Swin, stage: int, t, grid: tuple[int, int]) -> MergeView:
    """The stage's patch merging on its last block's traced output, checked against a concatenation by hand and
    against the traced `merged`."""
    out = t[f"stages.{stage}.blocks.{len(model.stages[stage].blocks) - 1}.out"]
    merger = model.stages[stage].downsample
    cat = merger.merge(out, grid)  # (1, h'·w', 4C)
    h, w = grid
    g = rearrange(out, "b (h w) c -> b h w c", h=h)
    if h % 2 or w % 2:
        g = torch.nn.functional.pad(g, (0, 0, 0, w % 2, 0, h % 2))
    parts = [g[:, dh::2, dw::2] for dh, dw in MERGE_OFFSETS]  # x0 … x3, each (1, h', w', C)
    by_hand = rearrange(torch.cat(parts, -1), "b h w c -> b (h w) c")
    merged = t[f"stages.{stage}.merged"]
    return MergeView(
        grid=grid, merged_grid=((h + 1) // 2, (w + 1) // 2), channels=out.shape[-1],
        merged_shape=tuple(merged.shape), group=_np(torch.stack([p[0, 0, 0] for p in parts])),
        concatenated=_np(cat[0, 0]),
        checks={"cat": _max_diff(cat, by_hand), "merged": _max_diff(merger.reduction(merger.norm(cat)), merged)})


def run_stage(model: Swin, pixel_values: Tensor, window: int | None, stage: int) -> StageRun:
    """Trace the real Swin on pixel_values (1, 3, H, W) up to stage `stage` (0-based) with M = `window`
    (None: the checkpoint's) and keep what the page shows of the stage's first two blocks and its patch merging.

    The stages after `stage` do not change anything shown, so they are not run. Safe on a model shared by threads:
    what a trace records is the calling thread's state.
    """
    nominal = window or model.config.window_size
    input_tap = "embeddings" if stage == 0 else f"stages.{stage - 1}.merged"
    include = [input_tap, *_block_taps(stage, 0), *_block_taps(stage, 1), f"stages.{stage}.blocks.*.out"]
    last_stage = stage == len(model.stages) - 1
    if not last_stage:
        include.append(f"stages.{stage}.merged")
    t = trace(_UpToStage(model, stage), pixel_values, include=include, window_size=nominal)
    grid = stage_grids(*pixel_values.shape[-2:], model.config.patch_size)[stage]
    token_px = model.config.patch_size * 2**stage
    parts = [WindowPartition(grid, *window_and_shift(*grid, nominal, default_shift(nominal) * b), token_px)
             for b in (0, 1)]
    blocks = model.stages[stage].blocks
    with torch.inference_mode():
        x0 = t[input_tap]
        x1 = t[f"stages.{stage}.blocks.0.out"]
        normed = _pre_shift(blocks[1], x1, grid, parts[1].window)  # (1, Hp, Wp, C)
        h, w = grid
        pca = Pca.fit(normed[0, :h, :w].reshape(h * w, -1))
        views = tuple(_block_view(blocks[b], _taps_of(t, f"stages.{stage}.blocks.{b}."), x, parts[b], nominal, pca)
                      for b, x in enumerate((x0, x1)))
        merge = None if last_stage else _merge_view(model, stage, t, grid)
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
    part = WindowPartition(run.grid, *window_and_shift(*run.grid, run.nominal, shift), run.blocks[1].partition.token_px)
    window, shift = part.window, part.shift
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
        block=1, nominal=run.nominal, partition=part, windows_shape=tuple(windows.shape),
        shifted_rgb=run.pca.rgb(_np(shifted[0])), labels=region_labels(*padded, window, shift).numpy(),
        mask=_np(shift_mask(*padded, window, shift)) if shift else None, rel_bias=_np(bias),
        bias_table=run.blocks[1].bias_table, probs=_np(probs), traced=False, checks=checks)


# ---------------------------------------------------------------------------------------------------------------
# The A1 … D4 worked example
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkedExample:
    """A small grid of named cells rolled and partitioned by the real functions, and the wrong raster-order roll."""

    names: list[list[str]]  # the side × side grid, A1 … D4
    rolled: list[list[str]]  # after torch.roll by (-s, -s) on both axes
    windows: list[list[list[str]]]  # (nW, M, M) names, window_partition order
    window_regions: list[int]  # distinct regions in each window
    raster: list[list[str]]  # the tutorial error: the flattened sequence rolled by -s, reshaped
    raster_windows: list[list[list[str]]]  # the raster-rolled grid cut into windows


def worked_example(side: int = 4, window: int = 2, shift: int = 1) -> WorkedExample:
    """Name the cells of a side × side grid A1 … (row letter, column number), roll it with `torch.roll` by (-s, -s)
    as `SwinBlock.shift` does and cut it with the real `window_partition`; also the wrong raster-order shift."""
    letters = [chr(ord("A") + i) for i in range(side)]
    names = [[f"{letters[r]}{c + 1}" for c in range(side)] for r in range(side)]
    codes = torch.arange(side * side).reshape(1, side, side, 1)
    rolled_codes = torch.roll(codes, shifts=(-shift, -shift), dims=(1, 2))
    windows = window_partition(rolled_codes, window)[..., 0].reshape(-1, window, window)
    flat = [n for row in names for n in row]

    def named(t: Tensor) -> list:
        return [[flat[i] for i in row] for row in t.tolist()] if t.ndim == 2 else [named(x) for x in t]

    labels = window_partition(region_labels(side, side, window, shift)[None, :, :, None], window)[..., 0]
    raster = torch.roll(codes.reshape(-1), -shift).reshape(1, side, side, 1)
    raster_windows = window_partition(raster, window)[..., 0].reshape(-1, window, window)
    return WorkedExample(names, named(rolled_codes[0, :, :, 0]), named(windows),
                         [int(torch.unique(w).numel()) for w in labels], named(raster[0, :, :, 0]),
                         named(raster_windows))


# ---------------------------------------------------------------------------------------------------------------
# Cost (Eq. 1–2, multiply-adds)
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cost:
    """Multiply-adds of one attention layer."""

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


@dataclass(frozen=True)
class CostCurves:
    """The cost terms of one attention layer of a stage against the side of a square input."""

    stage: int  # 0-based
    patch: int  # P
    channels: int  # C of the stage
    window: int  # M
    resolutions: tuple[int, ...]  # input sides, px
    projections: tuple[int, ...]  # 4hwC² at each
    msa: tuple[int, ...]  # 2(hw)²C
    wmsa: tuple[int, ...]  # 2M²hwC

    def side(self, resolution: int) -> int:
        """The stage's tokens per side on a square input of `resolution` px."""
        return stage_grids(resolution, resolution, self.patch)[self.stage][0]

    def at(self, resolution: int) -> tuple[Cost, Cost]:
        """(MSA, W-MSA) of one attention layer on a square input of `resolution` px (on the curves or not)."""
        h = self.side(resolution)
        return msa_cost(h, h, self.channels), wmsa_cost(h, h, self.channels, self.window)

    @property
    def crossing(self) -> int | None:
        """The first resolution at which MSA's attention term exceeds the projections (None: never on the curves)."""
        return next((r for r, a, p in zip(self.resolutions, self.msa, self.projections) if a > p), None)


def cost_curves(stage: int, patch: int, channels: int, window: int,
                resolutions: range = range(64, 1025, 16)) -> CostCurves:
    """Eq. 1–2 at every square input side in `resolutions`, on stage `stage`'s grid (`stage_grids`)."""
    sides = [stage_grids(r, r, patch)[stage][0] for r in resolutions]
    return CostCurves(stage, patch, channels, window, tuple(resolutions),
                      tuple(msa_cost(h, h, channels).projections for h in sides),
                      tuple(msa_cost(h, h, channels).attention for h in sides),
                      tuple(wmsa_cost(h, h, channels, window).attention for h in sides))


@dataclass(frozen=True)
class CostComparison:
    """One attention layer of the shown stage, global against windowed, as the page's table and text state it."""

    partition: WindowPartition  # the stage's tokens, their padding and the window M the block uses
    channels: int  # C

    @property
    def tokens(self) -> int:
        """h·w."""
        return self.partition.grid[0] * self.partition.grid[1]

    @property
    def msa(self) -> Cost:
        return msa_cost(*self.partition.grid, self.channels)

    @property
    def wmsa(self) -> Cost:
        return wmsa_cost(*self.partition.grid, self.channels, self.partition.window)

    @property
    def padded_wmsa(self) -> Cost:
        """What the block really computes: W-MSA on the padded map."""
        return wmsa_cost(*self.partition.padded, self.channels, self.partition.window)

    @property
    def ratio(self) -> float:
        """How many times smaller the attention term is in windows: hw / M²."""
        return self.msa.attention / self.wmsa.attention if self.wmsa.attention else float("nan")


# ---------------------------------------------------------------------------------------------------------------
# The page's one call: a run, the shown shift, the selection, and every number the page quotes
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """What the page's controls chose."""

    window: int  # nominal window size M
    shift: int  # s asked for (a stage no larger than one window uses 0 whatever it is)
    stage: int  # 0-based
    block: int  # the block whose windows and bias tables the text reads: 0 (W-MSA) or 1 (SW-MSA)
    selected: int  # window index, row-major over the windows
    query: int  # token inside the window, row-major
    head: int  # 0-based, for the relative position bias


@dataclass(frozen=True, eq=False)
class QueryAttention:
    """One query's attention over the keys of its window in one block."""

    probs: np.ndarray  # (heads, M²): the query's softmax row in each head
    query: int  # token inside the window
    masked: np.ndarray | None  # (M, M) bool: keys at −100 for this query; None when the block does not shift

    @property
    def mean(self) -> np.ndarray:
        """(M²,) the mean over heads."""
        return self.probs.mean(0)

    @property
    def maps(self) -> np.ndarray:
        """(heads, M, M): each head's weights over the window's keys, laid out as the window."""
        return self.probs.reshape(-1, self.side, self.side)

    @property
    def top_keys(self) -> tuple[tuple[int, int, int], ...]:
        """Per head: (key, its row, its column in the window) of the largest weight."""
        m = self.side
        return tuple((int(k), int(k) // m, int(k) % m) for k in self.probs.argmax(-1))

    @property
    def side(self) -> int:
        """M: the window's side."""
        return round(self.probs.shape[-1] ** 0.5)

    @property
    def top_weights(self) -> np.ndarray:
        """(heads,) the largest weight of each head."""
        return self.probs.max(-1)

    @property
    def self_weights(self) -> np.ndarray:
        """(heads,) the weight of the query on itself."""
        return self.probs[:, self.query]

    @property
    def row_sum_error(self) -> float:
        """max |Σ_keys − 1| over heads."""
        return float(np.abs(self.probs.sum(-1) - 1).max())

    @property
    def largest_masked(self) -> float | None:
        """The largest weight on a masked key (e^−100 of what it would have been), None without one."""
        if self.masked is None or not self.masked.any():
            return None
        return float(self.probs[:, self.masked.reshape(-1)].max())


@dataclass(frozen=True, eq=False)
class StageView:
    """The Swin page's result for one run: the traced stage, the shifted block as shown (traced, or re-run with the
    chosen shift), the selection, and every number the page quotes (properties, computed when a tab reads them)."""

    key: str  # the run's key in the page's store: the prefix of the page's cache keys
    plan: StagePlan  # the four stages at this input and M
    selection: Selection  # the controls
    run: StageRun  # the traced pass up to the stage
    shifted: BlockView  # block 1 as shown: the traced one, or `rerun_with_shift` with the chosen shift
    checkpoint_window: int  # the checkpoint's M
    trained: bool  # checkpoint weights, not a random preset (`vitviz.is_trained`)

    # ---- the stage and its blocks
    @property
    def regular(self) -> BlockView:
        return self.run.blocks[0]

    @property
    def blocks(self) -> tuple[BlockView, BlockView]:
        return self.regular, self.shifted

    @property
    def chosen(self) -> BlockView:
        """The block the bias panel reads."""
        return self.blocks[self.selection.block]

    @property
    def partition(self) -> WindowPartition:
        """The shown shifted block's windows (its shift: the chosen s, or 0 on a stage no larger than one window);
        both blocks use the same window and padding."""
        return self.shifted.partition

    @property
    def checkpoint_shift(self) -> int:
        """The shift the traced shifted block used: ⌊M/2⌋, or 0 on a stage no larger than one window."""
        return self.run.blocks[1].shift

    @property
    def half_window(self) -> int:
        """⌊M/2⌋: the shift of the checkpoint's shifted blocks at the nominal M."""
        return default_shift(self.selection.window)

    @property
    def clamped(self) -> bool:
        """The stage is no larger than one window: one window row or column, no shift."""
        return self.plan.stages[self.selection.stage].clamped

    @property
    def shift_key(self) -> str:
        """The key of what depends on the shown shift as well as on the run."""
        return f"{self.key}|s{self.partition.shift}"

    @property
    def tap_prefix(self) -> str:
        return f"stages.{self.run.stage}.blocks"

    # ---- the relative position bias tables
    @property
    def table_side(self) -> int:
        """2M − 1: offsets per axis of the table for the nominal M."""
        return 2 * self.selection.window - 1

    @property
    def table_rows(self) -> int:
        return self.table_side ** 2

    @property
    def checkpoint_table_side(self) -> int:
        return 2 * self.checkpoint_window - 1

    @property
    def checkpoint_table_rows(self) -> int:
        return self.checkpoint_table_side ** 2

    @property
    def used_table_side(self) -> int:
        """2m − 1 for the window m really used: the central rows a clamped window reads."""
        return 2 * self.partition.window - 1

    @property
    def query_bias(self) -> np.ndarray:
        """(M²,) the bias the query adds over its window's keys in the chosen head (traced `rel_bias`)."""
        return self.chosen.rel_bias[self.selection.head, self.selection.query]

    @property
    def bias_check(self) -> float:
        """max |table[relative_position_index(m, M)] − the traced `rel_bias`| of the chosen block."""
        index = relative_position_index(self.partition.window, self.selection.window).numpy()
        return float(np.abs(self.chosen.bias_table.T[:, index] - self.chosen.rel_bias).max())

    # ---- the selected window and query
    @property
    def query_cell(self) -> tuple[int, int]:
        """(row, column) of the query in its window."""
        return divmod(self.selection.query, self.partition.window)

    @property
    def window_cell(self) -> tuple[int, int]:
        """(row, column) of the selected window among the windows."""
        return divmod(self.selection.selected, self.partition.window_grid[1])

    @property
    def window_kind(self) -> str:
        return window_kind(*self.window_cell, *self.partition.window_grid)

    @cached_property
    def mask_stats(self) -> MaskStats:
        return mask_stats(self.shifted.mask, self.shifted.labels, self.partition.window)

    @property
    def selected_labels(self) -> np.ndarray:
        """(M, M) region labels inside the selected window of the rolled map."""
        return window_labels(self.shifted.labels, self.partition.window)[self.selection.selected]

    @property
    def selected_regions(self) -> int:
        return len(np.unique(self.selected_labels))

    @property
    def selected_mask(self) -> np.ndarray:
        """(M², M²) the selected window's mask: zeros when the block does not shift."""
        if self.shifted.mask is None:
            return np.zeros((self.partition.window ** 2,) * 2, np.float32)
        return self.shifted.mask[self.selection.selected]

    @cached_property
    def mask_check(self) -> float:
        """max |the selected window's mask − the pair-by-pair comparison of its labels| (a Python loop over M⁴)."""
        return float(np.abs(brute_force_mask(self.selected_labels) - self.selected_mask).max())

    @cached_property
    def attention(self) -> tuple[QueryAttention, QueryAttention]:
        """The query's attention in the selected window, regular and shifted block."""
        win, query, m = self.selection.selected, self.selection.query, self.partition.window
        return tuple(QueryAttention(v.probs[win, :, query], query,
                                    None if v.mask is None else v.mask[win, query].reshape(m, m) == MASK_VALUE)
                     for v in self.blocks)

    # ---- the rest of the page
    @property
    def cost(self) -> CostComparison:
        return CostComparison(self.partition, self.run.channels)

    @property
    def resolution(self) -> int:
        """The shorter side of the input, px: marked on the cost curves."""
        return min(self.plan.input_size)

    @property
    def cost_curves(self) -> CostCurves:
        """One attention layer of the stage against the side of a square input, with the nominal M (the cost figure)."""
        return cost_curves(self.selection.stage, self.plan.patch, self.run.channels, self.selection.window)

    @property
    def worked_example(self) -> WorkedExample:
        """The A1 … D4 grid, M = 2, s = 1."""
        return worked_example(4, 2, 1)


def _compute(_key: str, make: Callable[[], object]):
    """No store: every call computes."""
    return make()


def stage_view(model: Swin, pixel_values: Tensor, selection: Selection, key: str = "",
               memo: Callable[[str, Callable[[], object]], object] = _compute) -> StageView:
    """The page's run: `run_stage` up to the selected stage with the selected M, the shifted block re-run when the
    chosen shift is not the checkpoint's (`rerun_with_shift`), and what the page shows of them.

    `memo(key, make)` returns the stored value of `key` or stores `make()`: the page's shared run store (the run under
    `key`, a re-run under `key|s<shift>`); by default nothing is stored.
    """
    run = memo(key, lambda: run_stage(model, pixel_values, selection.window, selection.stage))
    traced = run.blocks[1]
    shift = window_and_shift(*run.grid, selection.window, selection.shift)[1]
    shifted = (traced if shift == traced.shift else
               memo(f"{key}|s{shift}", lambda: rerun_with_shift(model, run, shift)))
    plan = plan_stages(model.config, *pixel_values.shape[-2:], selection.window)
    return StageView(key, plan, selection, run, shifted, model.config.window_size, is_trained(model))
