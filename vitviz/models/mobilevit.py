"""MobileViT (Mehta & Rastegari 2022, "MobileViT: Light-weight, General-purpose, and Mobile-friendly Vision
Transformer", §3.1, Fig. 1b, Eq. 1).

A MobileNetV2 trunk (Sandler et al. 2018) whose last three stages end in a MobileViT block. The block's steps are
methods named after §3.1: `local_rep` (n×n conv, then point-wise conv to d), `unfold` (X_L ∈ R^{H×W×d} →
X_U ∈ R^{P×N×d}, P = w·h pixels per patch, N = HW/P patches), `global_rep` (L pre-norm transformer layers, Eq. 1,
run across the N patches separately for each of the P pixel offsets), `fold` (the exact inverse of `unfold`) and
`fusion` (point-wise conv back to C, concatenation with the block input, n×n conv). Layout, resizing and key
names follow transformers' MobileViT so the apple/mobilevit-* checkpoints compute the same numbers here.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn

from .common import Family, FeedForward, MultiHeadSelfAttention, Provenance, Tap, VisionOutput

Attentions = list[Tensor | None]  # one (b·P, heads, N, N) per transformer layer, None when not computed

# transformers fixes the trunk: one MobileNetV2 block in stage 0, three in stage 1 (paper Table 4).
_MOBILENET_DEPTHS = (1, 3)


@dataclass(frozen=True)
class MobileViTConfig:
    """Architecture of a MobileViT checkpoint."""

    image_size: int = 256  # side of the square input the checkpoint was trained on (MobileViT runs at any size)
    channels: int = 3  # input channels
    neck_sizes: tuple[int, ...] = (16, 32, 64, 96, 128, 160, 640)  # channels of stem, stages 0–4, final 1×1 conv
    hidden_sizes: tuple[int, int, int] = (144, 192, 240)  # d: token width of the MobileViT blocks in stages 2–4
    depths: tuple[int, int, int] = (2, 4, 3)  # L: transformer layers in the MobileViT blocks of stages 2–4
    heads: int = 4  # attention heads per transformer layer
    patch_size: int = 2  # h = w: side of a patch; P = patch_size² attention sequences per image
    expand_ratio: float = 4.0  # MobileNetV2 expansion of the 1×1 conv (XXS uses 2)
    mlp_ratio: float = 2.0  # transformer MLP hidden width as a multiple of d
    conv_kernel_size: int = 3  # n of the n×n convs in local_rep and fusion
    qkv_bias: bool = True  # whether the q/k/v projections have a bias
    layer_norm_eps: float = 1e-5  # epsilon of every LayerNorm (BatchNorms use 1e-5 as in transformers)
    labels: tuple[str, ...] = ()  # class names; empty for a backbone without classifier


_IMAGENET_LABELS = tuple(f"class {i}" for i in range(1000))
PRESETS = {
    "mobilevit-xxs": MobileViTConfig(
        neck_sizes=(16, 16, 24, 48, 64, 80, 320), hidden_sizes=(64, 80, 96), expand_ratio=2.0, labels=_IMAGENET_LABELS
    ),
    "mobilevit-s": MobileViTConfig(labels=_IMAGENET_LABELS),
}


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor` without losing more than 10%, as transformers does."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _pair(patch_size: int | tuple[int, int]) -> tuple[int, int]:
    """An int or (ph, pw) patch size as (ph, pw)."""
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
    if ph < 1 or pw < 1:
        raise ValueError(f"patch size must be positive, got {(ph, pw)}")
    return ph, pw


def patch_multiple(height: int, width: int, ph: int, pw: int) -> tuple[int, int]:
    """The smallest (H', W') ≥ (height, width) divisible by (ph, pw): the size MobileViT resizes a map to."""
    return math.ceil(height / ph) * ph, math.ceil(width / pw) * pw


def unfold(x: Tensor, ph: int, pw: int) -> Tensor:
    """X_L (b, d, H, W) -> X_U (b·ph·pw, N, d), N = (H/ph)·(W/pw); H, W must be multiples of ph, pw.

    Pixel (r, c) goes to sequence (b, r % ph, c % pw) at patch n = (r // ph)·(W/pw) + c // pw, so every sequence
    holds the pixels at one offset inside their patches and attention mixes patches, not pixels within one.
    """
    return rearrange(x, "b d (nh ph) (nw pw) -> (b ph pw) (nh nw) d", ph=ph, pw=pw)


def fold(x: Tensor, ph: int, pw: int, height: int, width: int) -> Tensor:
    """The inverse of `unfold`: (b·ph·pw, N, d) -> (b, d, height, width); height, width multiples of ph, pw."""
    return rearrange(
        x, "(b ph pw) (nh nw) d -> b d (nh ph) (nw pw)", ph=ph, pw=pw, nh=height // ph, nw=width // pw
    )


class ConvNormAct(nn.Module):
    """Bias-free conv, BatchNorm (running statistics in eval) and optional SiLU, as transformers' conv layers."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        padding = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, padding, groups=groups, bias=False)
        self.norm = nn.BatchNorm2d(c_out, eps=1e-5)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """(b, c_in, H, W) -> (b, c_out, ⌈H/stride⌉, ⌈W/stride⌉)."""
        return self.act(self.norm(self.conv(x)))


class InvertedResidual(nn.Module):
    """MobileNetV2 block (Sandler et al. 2018, §3.3): 1×1 expand, 3×3 depthwise (strided), linear 1×1 reduce;
    the input is added back when stride and width allow."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: float):
        super().__init__()
        hidden = _make_divisible(round(c_in * expand_ratio))
        self.expand = ConvNormAct(c_in, hidden, 1)
        self.depthwise = ConvNormAct(hidden, hidden, 3, stride=stride, groups=hidden)
        self.reduce = ConvNormAct(hidden, c_out, 1, act=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        """(b, c_in, H, W) -> (b, c_out, ⌈H/stride⌉, ⌈W/stride⌉)."""
        out = self.reduce(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class MobileNetStage(nn.Module):
    """A run of MobileNetV2 blocks, the first one strided. Tap: `out` (b, c_out, H', W')."""

    def __init__(self, c_in: int, c_out: int, stride: int, depth: int, expand_ratio: float):
        super().__init__()
        self.blocks = nn.ModuleList(
            InvertedResidual(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1, expand_ratio)
            for i in range(depth)
        )
        self.out = Tap()

    def forward(self, x: Tensor) -> Tensor:
        """(b, c_in, H, W) -> (b, c_out, ⌈H/stride⌉, ⌈W/stride⌉)."""
        for block in self.blocks:
            x = block(x)
        return self.out(x)


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer of the MobileViT block: x + MSA(LN(x)), then x + FFN(LN(x)) with SiLU.
    Taps: `attn.{q,k,v,probs}` and `out` (b·P, N, d)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, qkv_bias: bool, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadSelfAttention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = FeedForward(dim, mlp_dim, nn.SiLU)
        self.out = Tap()

    def forward(self, x: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x (b·P, N, d) -> (b·P, N, d), attention probs (b·P, heads, N, N) or None."""
        attended, probs = self.attn(self.norm1(x), need_weights=need_weights)
        x = x + attended
        return self.out(x + self.mlp(self.norm2(x))), probs


class MobileViTBlock(nn.Module):
    """The MobileViT block (§3.1, Fig. 1b): local_rep → unfold → global_rep → fold → fusion.

    Taps: `input` (b, C, H, W) the block input (kept as the fusion residual), `local` (b, d, H, W) after
    local_rep, `unfolded` (b·P, N, d) after unfold (and after the resize when H or W is not a multiple of the
    patch), per layer `layers.{k}.attn.{q,k,v}` (b·P, heads, N, d/heads), `layers.{k}.attn.probs`
    (b·P, heads, N, N) and `layers.{k}.out` (b·P, N, d), `global_` (b·P, N, d) after global_rep's final
    LayerNorm, `folded` (b, d, H, W) after fold (resized back), `projected` (b, C, H, W) after the point-wise
    conv back to C, `fused` (b, C, H, W) the block output.
    """

    def __init__(self, channels: int, dim: int, depth: int, cfg: MobileViTConfig):
        super().__init__()
        k = cfg.conv_kernel_size
        self.local_conv = ConvNormAct(channels, channels, k)
        # No BatchNorm or activation: the 1×1 conv only projects to the token width d (transformers' conv_1x1).
        self.local_proj = nn.Conv2d(channels, dim, 1, bias=False)
        mlp_dim = int(dim * cfg.mlp_ratio)
        self.layers = nn.ModuleList(
            TransformerLayer(dim, cfg.heads, mlp_dim, cfg.qkv_bias, cfg.layer_norm_eps) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.proj = ConvNormAct(dim, channels, 1)
        self.fuse = ConvNormAct(2 * channels, channels, k)
        self.input, self.local, self.unfolded, self.global_ = Tap(), Tap(), Tap(), Tap()
        self.folded, self.projected, self.fused = Tap(), Tap(), Tap()

    def local_rep(self, x: Tensor) -> Tensor:
        """(b, C, H, W) -> X_L (b, d, H, W): n×n conv for local spatial context, then 1×1 conv to d."""
        return self.local(self.local_proj(self.local_conv(x)))

    def unfold(self, x: Tensor, patch: tuple[int, int]) -> Tensor:
        """X_L (b, d, H, W) -> X_U (b·ph·pw, N, d).

        When H or W is not a multiple of the patch, the map is first resized bilinearly (align_corners=False) up
        to the next multiple, as transformers does instead of padding (padding would need masked attention).
        """
        ph, pw = patch
        size = patch_multiple(*x.shape[-2:], ph, pw)
        if size != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # (b, d, H', W')
        return self.unfolded(unfold(x, ph, pw))

    def global_rep(self, x: Tensor, need_weights: bool = False) -> tuple[Tensor, Attentions]:
        """X_U (b·P, N, d) -> X_G (b·P, N, d) after L transformer layers and the final LayerNorm (Eq. 1),
        with each layer's attention probs (b·P, heads, N, N) (None unless `need_weights` or traced)."""
        attentions = []
        for layer in self.layers:
            x, probs = layer(x, need_weights=need_weights)
            attentions.append(probs)
        return self.global_(self.norm(x)), attentions

    def fold(self, x: Tensor, patch: tuple[int, int], size: tuple[int, int]) -> Tensor:
        """X_G (b·ph·pw, N, d) -> X_F (b, d, H, W) for the map size (H, W) given to `unfold`, undoing its resize."""
        ph, pw = patch
        grid = patch_multiple(*size, ph, pw)
        x = fold(x, ph, pw, *grid)
        if grid != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # (b, d, H, W)
        return self.folded(x)

    def fusion(self, residual: Tensor, x: Tensor) -> Tensor:
        """X_F (b, d, H, W) and the block input (b, C, H, W) -> (b, C, H, W): 1×1 conv to C, then n×n conv on
        the concatenation [input, projected]."""
        stacked = torch.cat([residual, self.projected(self.proj(x))], dim=1)  # (b, 2C, H, W)
        return self.fused(self.fuse(stacked))

    def forward(self, x: Tensor, patch: tuple[int, int], need_weights: bool = False) -> tuple[Tensor, Attentions]:
        """x (b, C, H, W) -> (b, C, H, W), attention probs per layer (b·ph·pw, heads, N, N) or None."""
        x = self.input(x)
        size = tuple(x.shape[-2:])
        patches, attentions = self.global_rep(self.unfold(self.local_rep(x), patch), need_weights)
        return self.fusion(x, self.fold(patches, patch, size)), attentions


class MobileViTStage(nn.Module):
    """A strided MobileNetV2 block, then a MobileViT block (taps under `block.`)."""

    def __init__(self, c_in: int, c_out: int, dim: int, depth: int, cfg: MobileViTConfig):
        super().__init__()
        self.downsample = InvertedResidual(c_in, c_out, 2, cfg.expand_ratio)
        self.block = MobileViTBlock(c_out, dim, depth, cfg)

    def forward(self, x: Tensor, patch: tuple[int, int], need_weights: bool = False) -> tuple[Tensor, Attentions]:
        """x (b, c_in, H, W) -> (b, c_out, ⌈H/2⌉, ⌈W/2⌉), attention probs per transformer layer."""
        return self.block(self.downsample(x), patch, need_weights)


class MobileViT(Provenance, nn.Module):
    """MobileViT: stem, two MobileNetV2 stages, three MobileViT stages, a 1×1 expansion and an optional classifier.

    Taps: `stem_out` (b, c0, H/2, W/2); `stages.0.out` (b, c1, H/2, W/2) and `stages.1.out` (b, c2, H/4, W/4);
    for the MobileViT stages i = 2, 3, 4 (maps of H/2^(i+1)): `stages.{i}.block.{input, local, unfolded, global_,
    folded, projected, fused}` and per transformer layer `stages.{i}.block.layers.{k}.attn.{q,k,v,probs}` and
    `stages.{i}.block.layers.{k}.out` (shapes in `MobileViTBlock`); `features` (b, neck[6], ⌈H/32⌉, ⌈W/32⌉) after the
    1×1 expansion, the map the classifier pools.
    """

    def __init__(self, config: MobileViTConfig):
        super().__init__()
        self.config = config
        cfg = config
        neck = cfg.neck_sizes
        self.stem = ConvNormAct(cfg.channels, neck[0], 3, stride=2)
        self.stages = nn.ModuleList(
            [
                MobileNetStage(neck[0], neck[1], 1, _MOBILENET_DEPTHS[0], cfg.expand_ratio),
                MobileNetStage(neck[1], neck[2], 2, _MOBILENET_DEPTHS[1], cfg.expand_ratio),
            ]
            + [
                MobileViTStage(neck[i + 2], neck[i + 3], cfg.hidden_sizes[i], cfg.depths[i], cfg)
                for i in range(3)
            ]
        )
        self.expand = ConvNormAct(neck[5], neck[6], 1)
        self.head = nn.Linear(neck[6], len(cfg.labels)) if cfg.labels else None
        self.stem_out, self.features = Tap(), Tap()

    def forward(
        self,
        pixel_values: Tensor,
        output_attentions: bool = True,
        patch_size: int | tuple[int, int] | None = None,
    ) -> VisionOutput:
        """pixel_values (b, C, H, W) of any size -> VisionOutput.

        last_hidden_state (b, neck[6], ⌈H/32⌉, ⌈W/32⌉) after the final 1×1 expansion, as transformers'
        MobileViTModel returns it; logits (b, classes) from global average pooling when the checkpoint has a
        classifier. transformers' MobileViT returns no attentions; here `output_attentions` gives one
        (b·ph·pw, heads, N, N) per transformer layer (2 + 4 + 3 for the hub models, stage by stage; N differs
        per stage), and False uses fused attention. `patch_size` (int or (ph, pw)) overrides the checkpoint's
        patch for this call: the weights do not depend on it, only the unfold/fold layout does.
        """
        patch = _pair(self.config.patch_size if patch_size is None else patch_size)
        x = self.stem_out(self.stem(pixel_values))
        for stage in self.stages[:2]:
            x = stage(x)
        attentions = []
        for stage in self.stages[2:]:
            x, probs = stage(x, patch, need_weights=output_attentions)
            attentions.extend(probs)
        x = self.features(self.expand(x))
        logits = self.head(reduce(x, "b c h w -> b c", "mean")) if self.head is not None else None
        return VisionOutput(x, tuple(attentions) if output_attentions else None, logits)


def config_from_hf(cfg: dict) -> MobileViTConfig:
    """transformers MobileViTConfig dict (config.json) -> MobileViTConfig.

    Only classification backbones are supported: output_stride 32 (8 and 16 dilate stages for segmentation)
    and SiLU activations (transformers' "swish" is the same function). The transformer depths are not in the
    config: transformers fixes them at (2, 4, 3), our default.
    """
    if cfg.get("output_stride", 32) != 32:
        raise ValueError(f"unsupported output_stride {cfg.get('output_stride')!r}: only 32 (no dilation) is supported")
    if cfg.get("hidden_act", "silu") not in ("silu", "swish"):
        raise ValueError(f"unsupported hidden_act {cfg.get('hidden_act')!r}: only SiLU MobileViTs are supported")
    id2label = cfg.get("id2label") or {}
    architectures = cfg.get("architectures") or []
    with_head = any("Classification" in a for a in architectures)
    return MobileViTConfig(
        image_size=cfg.get("image_size", 256),
        channels=cfg.get("num_channels", 3),
        neck_sizes=tuple(cfg.get("neck_hidden_sizes", MobileViTConfig.neck_sizes)),
        hidden_sizes=tuple(cfg.get("hidden_sizes", MobileViTConfig.hidden_sizes)),
        heads=cfg.get("num_attention_heads", 4),
        patch_size=cfg.get("patch_size", 2),
        expand_ratio=cfg.get("expand_ratio", 4.0),
        mlp_ratio=cfg.get("mlp_ratio", 2.0),
        conv_kernel_size=cfg.get("conv_kernel_size", 3),
        qkv_bias=cfg.get("qkv_bias", True),
        layer_norm_eps=cfg.get("layer_norm_eps", 1e-5),
        labels=tuple(id2label[k] for k in sorted(id2label, key=int)) if with_head else (),
    )


# Applied in order, every one that matches (not first match only): sub-layer names first, then paths.
_RENAMES = [
    (r"\.convolution\.", ".conv."),
    (r"\.normalization\.", ".norm."),
    (r"\.expand_1x1\.", ".expand."),
    (r"\.conv_3x3\.", ".depthwise."),
    (r"\.reduce_1x1\.", ".reduce."),
    (r"^conv_stem\.", "stem."),
    (r"^encoder\.layer\.(\d+)\.layer\.", r"stages.\1.blocks."),
    (r"^encoder\.layer\.(\d+)\.downsampling_layer\.", r"stages.\1.downsample."),
    (r"^encoder\.layer\.(\d+)\.conv_kxk\.", r"stages.\1.block.local_conv."),
    (r"^encoder\.layer\.(\d+)\.conv_1x1\.conv\.", r"stages.\1.block.local_proj."),
    (r"^encoder\.layer\.(\d+)\.transformer\.layer\.(\d+)\.", r"stages.\1.block.layers.\2."),
    (r"^encoder\.layer\.(\d+)\.layernorm\.", r"stages.\1.block.norm."),
    (r"^encoder\.layer\.(\d+)\.conv_projection\.", r"stages.\1.block.proj."),
    (r"^encoder\.layer\.(\d+)\.fusion\.", r"stages.\1.block.fuse."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.attention\.attention\.", ".attn."),
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
    (r"^conv_1x1_exp\.", "expand."),
    (r"^classifier\.", "head."),
]


def convert_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Checkpoint keys (transformers 4.x names, optional `mobilevit.` prefix) -> MobileViT keys.

    BatchNorm `num_batches_tracked` entries are kept: our BatchNorms have the buffer too, so loading stays strict.
    """
    out = {}
    for key, value in state.items():
        key = key.removeprefix("mobilevit.")
        for pattern, repl in _RENAMES:
            key = re.sub(pattern, repl, key)
        out[key] = value  # unknown keys surface as an error in load_state_dict(strict=True)
    return out


FAMILY = Family("mobilevit", MobileViT, config_from_hf, convert_state_dict, PRESETS)
