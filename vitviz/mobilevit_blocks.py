"""The MobileViT page's computations: one traced pass through the three MobileViT blocks at a chosen patch size,
reduced to the arrays the page draws and every number its text quotes (Mehta & Rastegari 2022, §3.1).

A MobileViT block unfolds a feature map X_L ∈ R^{H×W×d} into X_U ∈ R^{P×N×d}: P = ph·pw sequences, one per pixel
offset inside a ph×pw patch, each holding the N = H'W'/P pixels at that offset (`vitviz.models.mobilevit.unfold`).
When H or W is not a multiple of the patch, the map is first resized bilinearly to H'×W' =
`patch_multiple(H, W, ph, pw)`. Here: that geometry (`Unfolding`), the run (`trunk` once per input, `run_blocks`
once per patch size) with its live checks (unfold, fold, fusion recomputed against the traced tensors), the
selected pixel's place in X_U, one pixel's attention row, the block's receptive field and the cost of attention.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from einops import reduce
from torch import nn

from .attention import top_predictions
from .models.mobilevit import fold, patch_multiple, unfold
from .trace import trace
from .weights import is_trained

MOBILEVIT_STAGES = (2, 3, 4)  # the stages that end in a MobileViT block
BLOCK_TAPS = ("input", "local", "unfolded", "global_", "folded", "projected", "fused")
SHOWN_TAPS = ("local", "unfolded", "projected", "fused")  # the block taps the page draws (all are checked)
TRUNK_TAPS = ("stem_out", "stages.0.out", "stages.1.out")
QUOTED = 3  # how many of a pixel's d numbers the page lists, before and after unfold


@dataclass(frozen=True)
class Unfolding:
    """How MobileViT unfolds an H×W map with ph×pw patches (after resizing it to a multiple of the patch)."""

    height: int  # H of the map given to the block's unfold
    width: int  # W
    ph: int  # patch height
    pw: int  # patch width

    @property
    def resized(self) -> tuple[int, int]:
        """(H', W'): the map size actually unfolded (the smallest multiple of the patch ≥ (H, W))."""
        return patch_multiple(self.height, self.width, self.ph, self.pw)

    @property
    def needs_resize(self) -> bool:
        return self.resized != (self.height, self.width)

    @property
    def grid(self) -> tuple[int, int]:
        """(nh, nw): patches per column and per row."""
        h, w = self.resized
        return h // self.ph, w // self.pw

    @property
    def p(self) -> int:
        """P = ph·pw: pixels per patch, the number of sequences."""
        return self.ph * self.pw

    @property
    def n(self) -> int:
        """N = H'W'/P: patches, the length of every sequence."""
        nh, nw = self.grid
        return nh * nw

    @property
    def pixels(self) -> int:
        """H'·W': the pixels unfolded, the tokens of attention over every pixel."""
        h, w = self.resized
        return h * w

    def locate(self, r: int, c: int) -> tuple[int, int]:
        """Pixel (r, c) of the unfolded H'×W' map -> (offset p, patch n), as `unfold` places it."""
        h, w = self.resized
        if not (0 <= r < h and 0 <= c < w):
            raise IndexError(f"pixel ({r}, {c}) is outside the {h}×{w} map")
        return (r % self.ph) * self.pw + c % self.pw, (r // self.ph) * self.grid[1] + c // self.pw

    def pixel(self, p: int, n: int) -> tuple[int, int]:
        """(offset p, patch n) -> pixel (r, c) of the H'×W' map: the inverse of `locate`."""
        i, j = divmod(p, self.pw)
        a, b = divmod(n, self.grid[1])
        return a * self.ph + i, b * self.pw + j

    def offsets(self) -> np.ndarray:
        """(H', W') int array: the offset p of every pixel."""
        h, w = self.resized
        r, c = np.mgrid[0:h, 0:w]
        return (r % self.ph) * self.pw + c % self.pw

    def patches(self) -> np.ndarray:
        """(H', W') int array: the patch n of every pixel."""
        h, w = self.resized
        r, c = np.mgrid[0:h, 0:w]
        return (r // self.ph) * self.grid[1] + c // self.pw


# ---- The receptive field of one block --------------------------------------------------------------------------

def interpolation_support(src: int, dst: int) -> np.ndarray:
    """(dst, src) bool: which source positions each output position of a 1-D bilinear resize (align_corners=False,
    as MobileViT resizes) reads with a nonzero weight. Identity when src == dst. 2-D bilinear is this per axis."""
    if src == dst:
        return np.eye(src, dtype=bool)
    eye = torch.eye(src, dtype=torch.float64)[None]  # (1, src channels, src positions)
    weights = F.interpolate(eye, size=dst, mode="linear", align_corners=False)[0]  # (src, dst)
    return (weights != 0).numpy().T


def _axis_reach(length: int, patch: int, index: int, kernel: int) -> np.ndarray:
    """Input positions along one axis that output position `index` of a MobileViT block depends on (bool, length).

    fusion n×n conv: output ← folded and input within ±n//2; folded ← (resize back) unfolded positions; attention
    mixes all positions with the same residue mod patch; unfolded ← (resize up) local positions; local ← input
    within ±n//2 (the n×n conv; the 1×1 conv mixes channels only).
    """
    radius = kernel // 2
    resized = math.ceil(length / patch) * patch
    up = interpolation_support(length, resized)  # (resized, length)
    down = interpolation_support(resized, length)  # (length, resized)
    near = np.zeros(length, dtype=bool)
    near[max(0, index - radius):index + radius + 1] = True  # the fusion conv's window (also the direct input path)
    folded_from = down[near].any(0)  # unfolded positions feeding those folded ones
    residues = np.unique(np.nonzero(folded_from)[0] % patch)
    attended = np.isin(np.arange(resized) % patch, residues)  # attention: every patch, same offset
    local = up[attended].any(0)
    reach = np.zeros(length, dtype=bool)
    for k in np.nonzero(local)[0]:
        reach[max(0, k - radius):k + radius + 1] = True
    return reach | near


def dependency_mask(height: int, width: int, ph: int, pw: int, pixel: tuple[int, int], kernel: int = 3) -> np.ndarray:
    """(H, W) bool: the block-input pixels that output pixel (r, c) of a MobileViT block depends on.

    Structural (which weights connect them, not their size); separable, because the convs, the resize and the
    unfold act on rows and columns independently. Along an axis, the fusion conv reaches n offsets, the local conv
    widens them to 2n - 1 = 5 for n = 3, fewer at the border: with patches of at most 3 px every output pixel depends
    on every input pixel ("every pixel sees every pixel"); 4 and 5 px leave gaps next to the border only, larger
    patches everywhere.
    """
    r, c = pixel
    return np.outer(_axis_reach(height, ph, r, kernel), _axis_reach(width, pw, c, kernel))


@functools.lru_cache(maxsize=256)  # ~25 ms per (size, patch), asked on every run of the receptive-field tab
def sees_everything(height: int, width: int, ph: int, pw: int, kernel: int = 3) -> bool:
    """Whether every output pixel of the block depends on every input pixel (checked row by row and column by
    column: the dependency is separable)."""
    return (all(_axis_reach(height, ph, i, kernel).all() for i in range(height))
            and all(_axis_reach(width, pw, j, kernel).all() for j in range(width)))


def conv_only_mask(height: int, width: int, pixel: tuple[int, int], kernel: int = 3) -> np.ndarray:
    """(H, W) bool: what output pixel (r, c) would depend on through the block's two n×n convs alone (local and
    fusion, no attention): a (2n - 1) × (2n - 1) window, 5 × 5 for n = 3."""
    r, c = pixel
    reach = 2 * (kernel // 2)
    mask = np.zeros((height, width), dtype=bool)
    mask[max(0, r - reach):r + reach + 1, max(0, c - reach):c + reach + 1] = True
    return mask


@dataclass(frozen=True, eq=False)
class ReceptiveField:
    """What one output pixel of a MobileViT block depends on, through the whole block and through its convs alone."""

    pixel: tuple[int, int]  # (r, c) of the output pixel on the block's H × W map
    mask: np.ndarray  # (H, W) bool: the block-input pixels it depends on (`dependency_mask`)
    conv_mask: np.ndarray  # (H, W) bool: those its two 3×3 convs alone reach (`conv_only_mask`)
    everyone: bool  # whether every output pixel of the block depends on every input pixel (`sees_everything`)

    @property
    def total(self) -> int:
        """H·W: the block-input pixels."""
        return self.mask.size

    @property
    def seen(self) -> int:
        return int(self.mask.sum())

    @property
    def conv_seen(self) -> int:
        return int(self.conv_mask.sum())

    @property
    def share(self) -> float:
        return self.seen / self.total

    @property
    def missing(self) -> int:
        """Input pixels out of this output pixel's reach."""
        return self.total - self.seen

    @property
    def complete(self) -> bool:
        """Whether this output pixel depends on every input pixel."""
        return self.seen == self.total


def receptive_field(u: Unfolding, pixel: tuple[int, int]) -> ReceptiveField:
    """The receptive field of output pixel `pixel` of the H'×W' unfolded map, moved onto the block's H × W map
    (the resize makes H'×W' larger by less than a patch: a pixel past the edge is the edge's)."""
    h, w = u.height, u.width
    at = (min(pixel[0], h - 1), min(pixel[1], w - 1))
    return ReceptiveField(at, dependency_mask(h, w, u.ph, u.pw, at), conv_only_mask(h, w, at),
                          sees_everything(h, w, u.ph, u.pw))


# ---- What attention costs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AttentionCost:
    """Multiply-adds of the attention products (QKᵀ and A·V) of one transformer layer, for one image."""

    mobilevit: int  # P sequences of N tokens: 2·P·N²·d
    vit_pixels: int  # one sequence of all H'W' pixels as tokens: 2·(H'W')²·d
    vit_patches: int  # one sequence of the N patches as tokens (ViT's patch-level attention): 2·N²·d
    layers: int  # L: the block's transformer layers, for the totals

    @property
    def mobilevit_layers(self) -> int:
        """`mobilevit` × L: the whole block."""
        return self.mobilevit * self.layers

    @property
    def vit_patches_layers(self) -> int:
        return self.vit_patches * self.layers

    @property
    def vit_pixels_layers(self) -> int:
        return self.vit_pixels * self.layers

    @property
    def pixels_ratio(self) -> float:
        """How many times MobileViT's cost attention over every pixel would cost (= P)."""
        return self.vit_pixels / self.mobilevit


def attention_cost(u: Unfolding, d: int, layers: int = 1) -> AttentionCost:
    """MobileViT's O(N²Pd) against attention over every pixel and ViT's O(N²d) over patch tokens, for `layers`
    transformer layers of width d."""
    return AttentionCost(2 * u.p * u.n**2 * d, 2 * u.pixels**2 * d, 2 * u.n**2 * d, layers)


# ---- One traced forward pass, reduced to what the page shows --------------------------------------------------

@dataclass(frozen=True)
class PixelSelection:
    """Where one pixel of the unfolded H'×W' map goes in X_U, and its first numbers before and after unfold."""

    r: int  # row of the H'×W' map
    c: int  # column
    p: int  # its offset: the sequence of X_U that holds it
    n: int  # its patch: its position in that sequence
    offset_row: int  # row of the pixel inside its patch (r mod ph)
    offset_col: int  # column inside its patch (c mod pw)
    patch_row: int  # row of its patch on the nh × nw patch grid (⌊r/ph⌋)
    patch_col: int  # column of its patch (⌊c/pw⌋)
    before: tuple[float, ...]  # X_L[r, c, :QUOTED] (the map unfolded, resized when needed)
    after: tuple[float, ...]  # X_U[p, n, :QUOTED] (traced `unfolded`): the same numbers


@dataclass(frozen=True, eq=False)
class AttentionRows:
    """One query pixel's attention across the patches at its offset, per head, in one transformer layer."""

    layer: int  # 0-based
    query: tuple[int, int]  # (offset p, patch n)
    rows: np.ndarray  # (heads, N): softmax(q kᵀ · scale) of the query over the N patches

    @property
    def lows(self) -> tuple[float, ...]:
        """Each head's smallest weight."""
        return tuple(float(v) for v in self.rows.min(1))

    @property
    def highs(self) -> tuple[float, ...]:
        """Each head's largest weight."""
        return tuple(float(v) for v in self.rows.max(1))

    @property
    def uniform(self) -> float:
        """1/N: every weight of uniform attention."""
        return 1 / self.rows.shape[1]


@dataclass(frozen=True, eq=False)
class BlockView:
    """One MobileViT block of one traced forward pass (batch 0), as numpy, and the page's live checks."""

    stage: int
    unfolding: Unfolding
    taps: dict[str, np.ndarray]  # traced: local (d,H,W), unfolded (P,N,d), projected (C,H,W), fused (C,H,W)
    conv3: np.ndarray  # (C, H, W): local_conv (3×3 conv, BN, SiLU) of the traced input, recomputed
    resized: np.ndarray  # (d, H', W'): the map unfolded (the traced `local`, resized when needed)
    q: tuple[np.ndarray, ...]  # per transformer layer (P, heads, N, d/heads), traced
    k: tuple[np.ndarray, ...]
    scale: float  # (d/heads)^-0.5
    checks: dict[str, float]  # max |difference| of each recomputation against the traced tensor

    @property
    def prefix(self) -> str:
        """The block's tap names start with this."""
        return f"stages.{self.stage}.block"

    @property
    def stride(self) -> int:
        """Input pixels per map pixel along an axis: 2^(stage + 1)."""
        return 2 ** (self.stage + 1)

    @property
    def depth(self) -> int:
        return len(self.q)

    @property
    def heads(self) -> int:
        return self.q[0].shape[1]

    @property
    def head_dim(self) -> int:
        """d / heads."""
        return self.q[0].shape[-1]

    @property
    def dim(self) -> int:
        return self.taps["local"].shape[0]

    @property
    def channels(self) -> int:
        return self.taps["fused"].shape[0]

    @property
    def concatenated(self) -> tuple[int, int, int, int]:
        """(1, 2C, H, W): the concatenation [input, projected] that `fusion` computes and the tracer does not see."""
        return 1, 2 * self.channels, self.unfolding.height, self.unfolding.width

    @property
    def cost(self) -> AttentionCost:
        return attention_cost(self.unfolding, self.dim, self.depth)

    def select(self, r: int, c: int) -> PixelSelection:
        """Pixel (r, c) of the H'×W' map unfolded: its (p, n) and its numbers before and after unfold."""
        u = self.unfolding
        p, n = u.locate(r, c)
        return PixelSelection(r, c, p, n, *divmod(p, u.pw), *divmod(n, u.grid[1]),
                              before=tuple(float(v) for v in self.resized[:QUOTED, r, c]),
                              after=tuple(float(v) for v in self.taps["unfolded"][p, n, :QUOTED]))

    def attention_rows(self, layer: int, p: int, n: int) -> np.ndarray:
        """(heads, N): softmax(q kᵀ · scale) of query patch n in the sequence of offset p, layer `layer`
        (0-based), computed from the traced q and k exactly as the model's attention computes its probabilities."""
        q = torch.tensor(self.q[layer][p, :, n:n + 1])  # (heads, 1, dh); copies: the run's arrays are read-only
        k = torch.tensor(self.k[layer][p])  # (heads, N, dh)
        scores = (q @ k.transpose(-2, -1)).mul_(self.scale)
        return torch.softmax(scores, dim=-1)[:, 0].numpy()

    def attention(self, layer: int, p: int, n: int) -> AttentionRows:
        """`attention_rows` with the numbers the page quotes about them."""
        return AttentionRows(layer, (p, n), self.attention_rows(layer, p, n))

    def receptive_field(self, r: int, c: int) -> ReceptiveField:
        """What output pixel (r, c) of the H'×W' map (on the block's H × W map) depends on."""
        return receptive_field(self.unfolding, (r, c))


@dataclass(frozen=True)
class StageSize:
    """The map a MobileViT block works on at the current input size."""

    stage: int  # 2, 3 or 4
    height: int  # H
    width: int  # W
    dim: int  # d: the token width
    stride: int  # input pixels per map pixel along an axis (8, 16, 32)


@dataclass(frozen=True, eq=False)
class MobileViTRun:
    """What the MobileViT page shows of one forward pass at one patch size."""

    blocks: dict[int, BlockView]  # by stage index 2, 3, 4
    shapes: dict[str, tuple[int, ...]]  # traced shape (batch included) of every trunk tap and block tap
    logits: np.ndarray | None  # (classes,) when the model has a classifier
    input_shape: tuple[int, int, int, int]  # (1, 3, H, W): pixel_values
    trained_size: int  # side of the square input the checkpoint was trained on
    patch: tuple[int, int]  # (ph, pw) of this run
    native_patch: int  # the checkpoint's patch side
    labels: tuple[str, ...]  # class names of the classifier
    trained: bool  # checkpoint weights, not a preset's random ones (`vitviz.is_trained`)

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of pixel_values."""
        return self.input_shape[-2], self.input_shape[-1]

    @property
    def at_trained_size(self) -> bool:
        return self.input_size == (self.trained_size, self.trained_size)

    @property
    def at_native_patch(self) -> bool:
        return self.patch == (self.native_patch, self.native_patch)

    @property
    def stage_sizes(self) -> tuple[StageSize, ...]:
        """(H, W, d) of the map in each MobileViT stage, read from the traced `local` taps."""
        return tuple(StageSize(i, *block.taps["local"].shape[1:], block.dim, block.stride)
                     for i, block in self.blocks.items())

    @property
    def predictions(self) -> list[tuple[str, float]] | None:
        """(class, probability) of the 5 most probable classes, or None without a classifier (made when asked for:
        a missing label's placeholder is written in the current language)."""
        if self.logits is None:
            return None
        return top_predictions(torch.tensor(self.logits), self.labels)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the run holds (the page's store keeps runs within a budget of bytes)."""
        arrays = [] if self.logits is None else [self.logits]
        for block in self.blocks.values():
            arrays += [*block.taps.values(), block.conv3, block.resized, *block.q, *block.k]
        return sum(a.nbytes for a in arrays)


@dataclass(frozen=True, eq=False)
class Trunk:
    """The part of a MobileViT forward pass that no patch size changes: stem, stages 0–1 (MobileNetV2) and stage 2's
    strided MobileNetV2 block. About half of the forward pass's time on a CPU; computed once per input."""

    features: torch.Tensor  # (1, C, H/8, W/8): what enters the first MobileViT block (`stages.2.block.input`)
    shapes: dict[str, tuple[int, ...]]  # shapes of the trunk taps
    input_shape: tuple[int, int, int, int]  # (1, 3, H, W): pixel_values


class _AfterTrunk(nn.Module):
    """MobileViT from the first MobileViT block on: the same module objects under the same names, so `vitviz.trace`
    records the same taps (`stages.{2,3,4}.block.*`) as on the whole model. tests/test_viz_mobilevit.py checks
    that every tap and the logits equal those of the whole model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.stages, self.expand, self.head = model.stages, model.expand, model.head

    def forward(self, x: torch.Tensor, output_attentions: bool = False, patch_size: tuple[int, int] = (2, 2)):
        """`stages.2.block.input` (b, C, H, W) -> logits (b, classes) or None, as `MobileViT.forward` ends."""
        x, _attn = self.stages[2].block(x, patch_size, output_attentions)
        for stage in self.stages[3:]:
            x, _attn = stage(x, patch_size, output_attentions)
        x = self.expand(x)
        return self.head(reduce(x, "b c h w -> b c", "mean")) if self.head is not None else None


def trunk(model: nn.Module, pixel_values: torch.Tensor) -> Trunk:
    """Run the patch-independent trunk of a vitviz MobileViT once: pixel_values (1, 3, H, W) -> Trunk."""
    shapes = {}
    with torch.inference_mode():
        x = model.stem_out(model.stem(pixel_values))
        shapes["stem_out"] = tuple(x.shape)
        for i in (0, 1):
            x = model.stages[i](x)
            shapes[f"stages.{i}.out"] = tuple(x.shape)
        x = model.stages[2].downsample(x)
    return Trunk(x, shapes, tuple(pixel_values.shape))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a.float() - b.float()).abs().max())


def _numpy(x: torch.Tensor) -> np.ndarray:
    """A tensor as a read-only float32 array: a run is shared by every session that reads it (the page's store)."""
    array = x.float().cpu().numpy()
    array.flags.writeable = False
    return array


def _checks(block: nn.Module, tap: dict[str, torch.Tensor], u: Unfolding, resized: torch.Tensor,
            conv3: torch.Tensor) -> dict[str, float]:
    """local_rep, unfold, fold and fusion recomputed with the block's own modules and the module functions
    `unfold` / `fold` on the traced tensors `tap` (batch first): max |difference| of each. `resized` is the traced
    `local` at H'×W', `conv3` the recomputed local_conv of the traced input."""
    ph, pw, size = u.ph, u.pw, (u.height, u.width)
    refolded = fold(tap["global_"], ph, pw, *u.resized)
    if u.needs_resize:
        refolded = F.interpolate(refolded, size=size, mode="bilinear", align_corners=False)
    checks = {
        "local_rep": _max_diff(block.local_proj(conv3), tap["local"]),
        "unfold": _max_diff(unfold(resized, ph, pw), tap["unfolded"]),
        "fold_unfold": _max_diff(fold(unfold(resized, ph, pw), ph, pw, *u.resized), resized),
        "unfold_fold": _max_diff(unfold(fold(tap["unfolded"], ph, pw, *u.resized), ph, pw), tap["unfolded"]),
        "fold": _max_diff(refolded, tap["folded"]),
        "projection": _max_diff(block.proj(tap["folded"]), tap["projected"]),
        "fusion": _max_diff(block.fuse(torch.cat([tap["input"], tap["projected"]], 1)), tap["fused"]),
    }
    if u.needs_resize:  # the one lossy step: bilinear up to H'×W' and back is not the identity
        back = F.interpolate(resized, size=size, mode="bilinear", align_corners=False)
        checks["resize_round_trip"] = _max_diff(back, tap["local"])
    return checks


def _block_view(block: nn.Module, stage: int, records: dict[str, torch.Tensor], patch: tuple[int, int]) -> BlockView:
    """The BlockView of `block` (the module of stage `stage`) from a trace's records at patch size (ph, pw)."""
    prefix = f"stages.{stage}.block"
    tap = {name: records[f"{prefix}.{name}"] for name in BLOCK_TAPS}
    local = tap["local"]
    u = Unfolding(*local.shape[-2:], *patch)
    conv3 = block.local_conv(tap["input"])
    resized = local
    if u.needs_resize:
        resized = F.interpolate(local, size=u.resized, mode="bilinear", align_corners=False)
    layers = range(len(block.layers))
    return BlockView(
        stage=stage, unfolding=u,
        # (b·P, N, d) with b = 1 is already (P, N, d); the maps drop their batch axis
        taps={name: _numpy(tap[name] if name == "unfolded" else tap[name][0]) for name in SHOWN_TAPS},
        conv3=_numpy(conv3[0]), resized=_numpy(resized[0]),
        q=tuple(_numpy(records[f"{prefix}.layers.{k}.attn.q"]) for k in layers),
        k=tuple(_numpy(records[f"{prefix}.layers.{k}.attn.k"]) for k in layers),
        scale=block.layers[0].attn.scale, checks=_checks(block, tap, u, resized, conv3))


def run_blocks(model: nn.Module, trunk_out: Trunk, patch: tuple[int, int]) -> MobileViTRun:
    """Trace the three MobileViT blocks (and the classifier) of a vitviz MobileViT at patch size (ph, pw), from the
    trunk's output, and keep for each block its shown taps, q and k of every layer, and the live checks: local_rep,
    unfold, fold and fusion recomputed with the block's own modules and the module functions `unfold` / `fold` on
    the traced tensors.

    Attention probabilities are not recorded (at 4,096 patches one layer's would be 268 MB):
    `BlockView.attention_rows` recomputes the rows it needs from q and k.
    """
    include = []
    for i in MOBILEVIT_STAGES:
        include += [f"stages.{i}.block.{name}" for name in BLOCK_TAPS]
        include += [f"stages.{i}.block.layers.*.attn.q", f"stages.{i}.block.layers.*.attn.k"]
    t = trace(_AfterTrunk(model), trunk_out.features, include=include, patch_size=tuple(patch))
    with torch.inference_mode():
        blocks = {i: _block_view(model.stages[i].block, i, t.records, tuple(patch)) for i in MOBILEVIT_STAGES}
    shapes = {**trunk_out.shapes, **{name: tuple(v.shape) for name, v in t.records.items()}}
    config = model.config
    return MobileViTRun(blocks, shapes, None if t.output is None else _numpy(t.output[0]),
                        input_shape=trunk_out.input_shape, trained_size=config.image_size, patch=tuple(patch),
                        native_patch=config.patch_size, labels=tuple(config.labels), trained=is_trained(model))
