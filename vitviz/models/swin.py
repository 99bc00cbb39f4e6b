"""Swin Transformer (Liu et al. 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
§3.1–3.2, Eq. 1–4, Fig. 2–4).

`Swin.embed` is the patch partition + linear embedding of Fig. 3 (a Conv2d with kernel = stride = P, then LN).
Each `SwinBlock` is one half of Eq. 3: W-MSA in even blocks, SW-MSA in odd ones, written as the stage methods
of §3.2: `pad` the map to whole windows, `shift` it by the cyclic roll of Fig. 4, `partition` it into M×M
windows, attend inside each window with the relative position bias B of Eq. 4 and the shift mask
(`window_attention`), then `reverse` the partition and `unshift`. `PatchMerging` (§3.1) concatenates each 2×2
group of tokens and maps 4C → 2C between stages. Attention inside windows costs 2M²hwC instead of 2(hw)²C
(Eq. 1–2); the 4hwC² projections are the same in both.

The module-level functions (`window_partition`, `window_reverse`, `region_labels`, `shift_mask`,
`relative_position_index`, `window_and_shift`, `resize_bias_table`) are pure, so the Swin page can show each
step on its own. Window and shift are worked out per call from the map size and never stored on a module:
transformers 5.23 clamps them by mutating its layers, so one 224 run changes later 256 runs, and it crashes
when a stage is smaller than the window (192×192 for Swin-T).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from .common import Family, FeedForward, MultiHeadSelfAttention, Provenance, Tap, VisionOutput, rename_keys
from .vit import resize_patch_kernel

# Added to the scores of token pairs from different regions: -100 as in the original code and transformers, not
# -inf, so a masked pair keeps e^-100 ≈ 4e-44 of the weight it would have had: negligible, not exactly zero.
MASK_VALUE = -100.0


@dataclass(frozen=True)
class SwinConfig:
    """Architecture of a Swin checkpoint."""

    image_size: int = 224  # side of the square input the checkpoint was trained on
    patch_size: int = 4  # P: side of a square patch in pixels
    channels: int = 3  # input channels
    embed_dim: int = 96  # C: token width of the first stage; doubles at each patch merging
    depths: tuple[int, ...] = (2, 2, 6, 2)  # blocks per stage (pairs of W-MSA and SW-MSA)
    heads: tuple[int, ...] = (3, 6, 12, 24)  # attention heads per stage
    window_size: int = 7  # M: side of a square attention window in tokens
    mlp_ratio: float = 4.0  # MLP hidden width as a multiple of the token width
    qkv_bias: bool = True  # whether the q/k/v projections have a bias
    layer_norm_eps: float = 1e-5  # epsilon of the block and final LayerNorms (the patch-embedding and merging
    # LayerNorms keep torch's 1e-5 whatever config.json says, as in transformers and the original code)
    labels: tuple[str, ...] = ()  # class names; empty for a backbone without classifier

    @property
    def dims(self) -> tuple[int, ...]:
        """Token width of each stage: C, 2C, 4C, …"""
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))


PRESETS = {
    "swin-tiny": SwinConfig(labels=tuple(f"class {i}" for i in range(1000))),
}


def window_partition(x: Tensor, window: int) -> Tensor:
    """(b, H, W, c) -> (b·nW, M·M, c): non-overlapping M×M windows, row-major over windows and inside each.

    H and W must be multiples of M (pad first).
    """
    return rearrange(x, "b (nh wh) (nw ww) c -> (b nh nw) (wh ww) c", wh=window, ww=window)


def window_reverse(windows: Tensor, window: int, height: int, width: int) -> Tensor:
    """(b·nW, M·M, c) -> (b, H, W, c): the exact inverse of `window_partition`."""
    return rearrange(
        windows, "(b nh nw) (wh ww) c -> b (nh wh) (nw ww) c", nh=height // window, nw=width // window, wh=window
    )


def stage_grids(height: int, width: int, patch: int, stages: int = 4) -> list[tuple[int, int]]:
    """Token grid (h, w) of every stage for an H×W input: ⌈H/P⌉ × ⌈W/P⌉, then halved (rounding up) per merging."""
    h, w = -(-height // patch), -(-width // patch)
    grids = []
    for _ in range(stages):
        grids.append((h, w))
        h, w = (h + 1) // 2, (w + 1) // 2
    return grids


def window_and_shift(height: int, width: int, window: int, shift: int) -> tuple[int, int]:
    """The (window, shift) a block really uses on an H×W map, given its nominal M and s.

    When the shorter side is at most M, the block uses windows of side min(H, W) and no shift, the rule of the
    original code (applied there once, at construction, for the training resolution) and of transformers.
    """
    if min(height, width) <= window:
        return min(height, width), 0
    return window, shift


def region_labels(height: int, width: int, window: int, shift: int) -> Tensor:
    """Region of every position of the padded H×W map after the roll by (-s, -s): (H, W) long in 0..8.

    Per axis of length L: [0, L-M) → 0, [L-M, L-s) → 1, [L-s, L) → 2 (the last s positions are the ones that
    wrapped around); label = 3·r_h + r_w. With s = 0 nothing wrapped and the whole map is region 0.
    """
    if shift == 0:
        return torch.zeros(height, width, dtype=torch.long)
    rows, cols = torch.arange(height), torch.arange(width)
    r_h = (rows >= height - window).long() + (rows >= height - shift).long()
    r_w = (cols >= width - window).long() + (cols >= width - shift).long()
    return 3 * r_h[:, None] + r_w[None, :]  # (H, W)


def shift_mask(height: int, width: int, window: int, shift: int) -> Tensor:
    """SW-MSA attention mask: (nW, M², M²) float, -100 where query and key come from different regions, else 0.

    Windows are in `window_partition` order over the padded H×W map. All zeros when s = 0.
    """
    labels = region_labels(height, width, window, shift)
    labels = window_partition(labels[None, :, :, None], window)[..., 0]  # (nW, M²)
    return torch.where(labels[:, :, None] != labels[:, None, :], MASK_VALUE, 0.0)  # (nW, M², M²)


def relative_position_index(window: int, table_window: int | None = None) -> Tensor:
    """Row of the bias table for each (query, key) pair of an M×M window: (M², M²) long.

    idx = (dy + T-1)(2T-1) + (dx + T-1) with (dy, dx) = query − key position and T = `table_window` (default M),
    the window the ((2T-1)², heads) table was made for. T > M picks the table's central rows, so a window
    clamped to a small stage keeps the learned bias of each offset.
    """
    table_window = table_window or window
    if window > table_window:
        raise ValueError(f"a {window}×{window} window has offsets beyond a table for {table_window}×{table_window}")
    axis = torch.arange(window)
    coords = torch.stack(torch.meshgrid(axis, axis, indexing="ij")).flatten(1)  # (2, M²) as (row, column)
    dy, dx = coords[:, :, None] - coords[:, None, :] + table_window - 1  # each (M², M²)
    return dy * (2 * table_window - 1) + dx


def resize_bias_table(table: Tensor, window: int) -> Tensor:
    """((2M-1)², heads) -> ((2M'-1)², heads) for a window of side M'; unchanged when M' = M.

    The table is resized as a (2M-1)×(2M-1) image per head, bicubic with align_corners=False, as timm's
    `resize_rel_pos_bias_table_simple` does (timm's default `resize_rel_pos_bias_table` interpolates linearly on
    BEiT's geometric grid instead).
    """
    side = math.isqrt(table.shape[0])
    if side == 2 * window - 1:
        return table
    grid = rearrange(table, "(dy dx) heads -> 1 heads dy dx", dy=side)
    side = 2 * window - 1
    grid = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)  # (1, heads, 2M'-1, 2M'-1)
    return rearrange(grid, "1 heads dy dx -> (dy dx) heads")


# The index and mask depend only on sizes, so they are made once per size and device rather than in every block
# of every forward. They are built outside inference mode: a cached inference tensor (made during a
# `vitviz.trace`) would break any later forward that autograd records.
@lru_cache(maxsize=64)
def _cached_index(window: int, table_window: int, device: torch.device) -> Tensor:
    """`relative_position_index(window, table_window)` on `device`: (M², M²) long, shared; never edit it."""
    with torch.inference_mode(False):
        return relative_position_index(window, table_window).to(device)


@lru_cache(maxsize=64)
def _cached_mask(height: int, width: int, window: int, shift: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """`shift_mask(height, width, window, shift)` on `device`: (nW, M², M²), shared; never edit it."""
    with torch.inference_mode(False):
        return shift_mask(height, width, window, shift).to(device, dtype)


class SwinBlock(nn.Module):
    """One Swin block (Eq. 3): x + (S)W-MSA(LN(x)), then x + MLP(LN(x)).

    Taps: `shifted` (b, Hp, Wp, c) padded map after the roll, `windows` (b·nW, M², c), `labels` (Hp, Wp) region
    labels, `mask` (nW, M², M²) (only when the block shifts), `rel_bias` (heads, M², M²), `attn.{q,k,v}`
    (b·nW, heads, M², d), `attn.probs` (b·nW, heads, M², M²) and `out` (b, H·W, c).
    """

    def __init__(self, dim: int, heads: int, shifts: bool, cfg: SwinConfig):
        super().__init__()
        self.window_size = cfg.window_size
        self.shifts = shifts  # SW-MSA (odd blocks of a stage) or W-MSA (even blocks)
        self.norm1 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.shifted, self.windows, self.labels, self.mask, self.rel_bias = Tap(), Tap(), Tap(), Tap(), Tap()
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * cfg.window_size - 1) ** 2, heads))
        self.attn = MultiHeadSelfAttention(dim, heads, cfg.qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.mlp = FeedForward(dim, int(dim * cfg.mlp_ratio), nn.GELU)
        self.out = Tap()

    def pad(self, grid: Tensor, window: int) -> Tensor:
        """(b, H, W, c) -> (b, Hp, Wp, c): zeros on the right and bottom up to multiples of M."""
        height, width = grid.shape[1:3]
        if height % window == 0 and width % window == 0:
            return grid  # F.pad would still copy the whole map
        return F.pad(grid, (0, 0, 0, -width % window, 0, -height % window))  # (b, Hp, Wp, c)

    def shift(self, grid: Tensor, shift: int) -> Tensor:
        """(b, Hp, Wp, c) -> (b, Hp, Wp, c) rolled by (-s, -s): a 2-D cyclic shift (Fig. 4), not along raster order."""
        rolled = torch.roll(grid, shifts=(-shift, -shift), dims=(1, 2)) if shift else grid  # (b, Hp, Wp, c)
        return self.shifted(rolled)

    def partition(self, grid: Tensor, window: int) -> Tensor:
        """(b, Hp, Wp, c) -> (b·nW, M², c)."""
        return self.windows(window_partition(grid, window))

    def bias_table(self, window: int) -> Tensor:
        """The relative position bias table for a nominal window of side M': ((2M'-1)², heads)."""
        return resize_bias_table(self.relative_position_bias_table, window)

    def relative_position_bias(self, window: int, nominal: int) -> Tensor:
        """B of Eq. 4 for an M×M window, read from the table for the nominal window: (heads, M², M²)."""
        index = _cached_index(window, nominal, self.relative_position_bias_table.device)
        # gathering from the transposed table yields a contiguous (heads, M², M²); permuting after the gather
        # would leave heads innermost and slow the mask addition and the fused attention several times over
        return self.rel_bias(rearrange(self.bias_table(nominal), "rows heads -> heads rows")[:, index])

    def window_attention(
        self, windows: Tensor, padded: tuple[int, int], window: int, shift: int, nominal: int, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """(b·nW, M², c) -> (b·nW, M², c), probs (b·nW, heads, M², M²) or None: softmax(QKᵀ/√d + B + mask) V."""
        if self.labels.active:
            self.labels(region_labels(*padded, window, shift).to(windows.device))
        bias = self.relative_position_bias(window, nominal)[None]  # (1, heads, M², M²)
        if shift:
            mask = _cached_mask(*padded, window, shift, windows.device, windows.dtype)
            if self.mask.active:
                self.mask(mask.clone())  # a copy, so a caller editing the record cannot corrupt the cache
            bias = repeat(
                bias + mask[:, None], "nw heads i j -> (b nw) heads i j", b=windows.shape[0] // mask.shape[0]
            )
        return self.attn(windows, bias, need_weights=need_weights)

    def reverse(self, windows: Tensor, window: int, height: int, width: int) -> Tensor:
        """(b·nW, M², c) -> (b, Hp, Wp, c)."""
        return window_reverse(windows, window, height, width)

    def unshift(self, grid: Tensor, shift: int) -> Tensor:
        """(b, Hp, Wp, c) -> (b, Hp, Wp, c) rolled back by (+s, +s)."""
        return torch.roll(grid, shifts=(shift, shift), dims=(1, 2)) if shift else grid  # (b, Hp, Wp, c)

    def forward(
        self, x: Tensor, size: tuple[int, int], window_size: int | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """x (b, H·W, c) on an H×W map -> (b, H·W, c), attention probs (b·nW, heads, M², M²) or None.

        `window_size` overrides the checkpoint's M (shift M'//2 in shifted blocks); window and shift are then
        clamped to this map by `window_and_shift`.
        """
        height, width = size
        nominal = window_size or self.window_size
        window, shift = window_and_shift(height, width, nominal, nominal // 2 if self.shifts else 0)
        grid = rearrange(self.norm1(x), "b (h w) c -> b h w c", h=height)
        shifted = self.shift(self.pad(grid, window), shift)
        padded = tuple(shifted.shape[1:3])
        windows = self.partition(shifted, window)
        attended, probs = self.window_attention(windows, padded, window, shift, nominal, need_weights)
        grid = self.unshift(self.reverse(attended, window, *padded), shift)
        x = x + rearrange(grid[:, :height, :width], "b h w c -> b (h w) c")
        return self.out(x + self.mlp(self.norm2(x))), probs


class PatchMerging(nn.Module):
    """Patch merging (§3.1): each 2×2 group of tokens -> one token, LN(4C), Linear(4C → 2C, no bias)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def merge(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        """(b, H·W, c) -> (b, ⌈H/2⌉·⌈W/2⌉, 4c), zero-padding odd sides at the bottom and right.

        Channel order is the checkpoints': cat[x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]], i.e.
        the row offset dh varies faster than the column offset dw.
        """
        height, width = size
        grid = rearrange(x, "b (h w) c -> b h w c", h=height)
        grid = F.pad(grid, (0, 0, 0, width % 2, 0, height % 2))  # (b, 2⌈H/2⌉, 2⌈W/2⌉, c)
        return rearrange(grid, "b (h dh) (w dw) c -> b (h w) (dw dh c)", dh=2, dw=2)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        """(b, H·W, c) -> (b, ⌈H/2⌉·⌈W/2⌉, 2c)."""
        return self.reduction(self.norm(self.merge(x, size)))


class SwinStage(nn.Module):
    """One stage: `depth` blocks alternating W-MSA and SW-MSA, then patch merging except in the last stage.

    Taps: the blocks' taps, and `merged` (b, ⌈H/2⌉·⌈W/2⌉, 2c) after patch merging.
    """

    def __init__(self, cfg: SwinConfig, index: int):
        super().__init__()
        dim, heads = cfg.dims[index], cfg.heads[index]
        self.blocks = nn.ModuleList(SwinBlock(dim, heads, i % 2 == 1, cfg) for i in range(cfg.depths[index]))
        self.downsample = PatchMerging(dim) if index < len(cfg.depths) - 1 else None
        if self.downsample is not None:
            self.merged = Tap()

    def forward(
        self, x: Tensor, size: tuple[int, int], window_size: int | None = None, need_weights: bool = False
    ) -> tuple[Tensor, tuple[int, int], Tensor | None]:
        """x (b, H·W, c) -> (b, H'·W', c'), (H', W'), the last block's probs (b·nW, heads, M², M²) or None."""
        probs = None
        for i, block in enumerate(self.blocks):
            x, probs = block(x, size, window_size, need_weights=need_weights and i == len(self.blocks) - 1)
        if self.downsample is not None:
            x = self.merged(self.downsample(x, size))
            size = ((size[0] + 1) // 2, (size[1] + 1) // 2)
        return x, size, probs


class Swin(Provenance, nn.Module):
    """A Swin Transformer whose blocks are split into the paper's steps; taps record them for `vitviz.trace`.

    Taps: `embeddings` (b, H/P·W/P, C), per stage `stages.{s}.merged`, per block `stages.{s}.blocks.{i}.{shifted,
    windows, labels, mask, rel_bias, attn.q, attn.k, attn.v, attn.probs, out}` (see `SwinBlock`, `SwinStage`).
    """

    def __init__(self, config: SwinConfig):
        super().__init__()
        self.config = config
        cfg = config
        self.patch_embed = nn.Conv2d(cfg.channels, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.embed_norm = nn.LayerNorm(cfg.embed_dim)
        self.embeddings = Tap()
        self.stages = nn.ModuleList(SwinStage(cfg, i) for i in range(len(cfg.depths)))
        self.norm = nn.LayerNorm(cfg.dims[-1], eps=cfg.layer_norm_eps)
        self.head = nn.Linear(cfg.dims[-1], len(cfg.labels)) if cfg.labels else None

    def embed(self, pixel_values: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """(b, channels, H, W) -> tokens (b, ⌈H/P⌉·⌈W/P⌉, C) after LN, and the grid (⌈H/P⌉, ⌈W/P⌉).

        The image is zero-padded at the right and bottom to whole patches, as transformers does.
        """
        p = self.config.patch_size
        height, width = pixel_values.shape[-2:]
        grid = self.patch_embed(F.pad(pixel_values, (0, -width % p, 0, -height % p)))  # (b, C, ⌈H/P⌉, ⌈W/P⌉)
        tokens = rearrange(grid, "b c h w -> b (h w) c")
        return self.embeddings(self.embed_norm(tokens)), tuple(grid.shape[-2:])

    def with_patch_size(self, patch_size: int) -> "Swin":
        """A new Swin that reads patch_size × patch_size patches with this checkpoint's weights; `self` is untouched.

        The (C, 3, P, P) patch-embedding kernel is PI-resized (FlexiViT: `resize_patch_kernel`, so a patch upsampled
        bilinearly from P×P gives exactly the token the original patch gave); every other parameter is shared, not
        copied. Swin has no absolute position embedding to interpolate.
        """
        if patch_size == self.config.patch_size:
            return self
        state = dict(self.state_dict())
        state["patch_embed.weight"] = resize_patch_kernel(self.patch_embed.weight.detach(), patch_size)
        with torch.device("meta"):  # no memory and no initialisation for parameters that are replaced at once
            model = Swin(replace(self.config, patch_size=patch_size))
        model.load_state_dict(state, assign=True)
        model.same_provenance(self)
        return model.eval().requires_grad_(False)

    def forward(
        self, pixel_values: Tensor, output_attentions: bool = True, window_size: int | None = None
    ) -> VisionOutput:
        """pixel_values (b, channels, H, W) of any size -> VisionOutput.

        last_hidden_state (b, h·w, C_last) after the final LayerNorm; logits (b, classes) from the mean of all tokens.
        attentions, as transformers 5.23's SwinModel returns them: one per stage, from the stage's last block
        (the SW-MSA block when the depth is even, unless the stage is too small to shift), shaped
        (b·nW, heads, M², M²); `output_attentions=False` uses fused attention and returns None.
        `window_size` M' runs every block with M'×M' windows and shift M'//2 instead of the checkpoint's M: each
        bias table is resized bicubically from (2M-1)² to (2M'-1)² rows (`resize_bias_table`); None keeps M.
        """
        if window_size is not None and window_size < 1:
            raise ValueError(f"window_size must be a positive number of tokens, got {window_size}")
        x, size = self.embed(pixel_values)
        attentions = []
        for stage in self.stages:
            x, size, probs = stage(x, size, window_size, need_weights=output_attentions)
            attentions.append(probs)
        x = self.norm(x)
        logits = self.head(x.mean(dim=1)) if self.head is not None else None
        return VisionOutput(x, tuple(attentions) if output_attentions else None, logits)


def config_from_hf(cfg: dict) -> SwinConfig:
    """transformers SwinConfig dict (config.json) -> SwinConfig."""
    if cfg.get("use_absolute_embeddings", False):
        raise ValueError("Swin checkpoints with absolute position embeddings are not supported")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"unsupported hidden_act {cfg.get('hidden_act')!r}: only exact GELU Swins are supported")
    id2label = cfg.get("id2label") or {}
    with_head = any("Classification" in a for a in cfg.get("architectures") or [])
    return SwinConfig(
        image_size=cfg.get("image_size", 224),
        patch_size=cfg.get("patch_size", 4),
        channels=cfg.get("num_channels", 3),
        embed_dim=cfg["embed_dim"],
        depths=tuple(cfg["depths"]),
        heads=tuple(cfg["num_heads"]),
        window_size=cfg.get("window_size", 7),
        mlp_ratio=cfg.get("mlp_ratio", 4.0),
        qkv_bias=cfg.get("qkv_bias", True),
        layer_norm_eps=cfg.get("layer_norm_eps", 1e-5),
        labels=tuple(id2label[k] for k in sorted(id2label, key=int)) if with_head else (),
    )


_BLOCK = r"^encoder\.layers\.(\d+)\.blocks\.(\d+)\."
_RENAMES = [
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed."),
    (r"^embeddings\.norm\.", "embed_norm."),
    (_BLOCK + r"layernorm_before\.", r"stages.\1.blocks.\2.norm1."),
    (_BLOCK + r"attention\.self\.(query|key|value)\.", r"stages.\1.blocks.\2.attn.\3."),
    (_BLOCK + r"attention\.self\.relative_position_bias_table$", r"stages.\1.blocks.\2.relative_position_bias_table"),
    (_BLOCK + r"attention\.output\.dense\.", r"stages.\1.blocks.\2.attn.proj."),
    (_BLOCK + r"layernorm_after\.", r"stages.\1.blocks.\2.norm2."),
    (_BLOCK + r"intermediate\.dense\.", r"stages.\1.blocks.\2.mlp.fc1."),
    (_BLOCK + r"output\.dense\.", r"stages.\1.blocks.\2.mlp.fc2."),
    (r"^encoder\.layers\.(\d+)\.downsample\.", r"stages.\1.downsample."),
    (r"^layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]


def convert_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Checkpoint keys (transformers 4.x names, optional `swin.` prefix) -> Swin keys.

    The stored `relative_position_index` buffers are dropped: `relative_position_index` recomputes them.
    """
    return rename_keys(state, "swin.", _RENAMES, drop=lambda key: key.endswith("relative_position_index"))


FAMILY = Family("swin", Swin, config_from_hf, convert_state_dict, PRESETS)
