"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", §3.1, Eq. 1–4).

The stages are methods named after the paper's description of Eq. 1: `patchify` cuts the image into P×P
patches, `flatten` turns each into a P²·C vector, `project` applies the linear map E, `add_cls` prepends
x_class, `add_position` adds E_pos, and `blocks` runs the L pre-norm encoder layers. The projection weight is
stored as the checkpoint's Conv2d(kernel = stride = P); `project` uses it as the equivalent Linear(P²C → D).
Serves DINO (Caron et al. 2021), DeiT (Touvron et al. 2021) and the original ViT checkpoints, and DINOv2 (Oquab
et al. 2024, §4 and §5), whose blocks scale each residual branch per channel (LayerScale, Touvron et al. 2021,
"Going deeper with Image Transformers", §2.1). "Vision Transformers Need Registers" (Darcet et al., ICLR 2024, §2.2)
adds R learned register tokens after the position embeddings (`add_registers`): the sequence is [CLS, reg₁…reg_R,
patches] and the patches start at `prefix = 1 + R`. Other patch sizes reuse a checkpoint through FlexiViT's
pseudo-inverse kernel resize (Beyer et al. 2023, §3.4).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .common import Family, FeedForward, MultiHeadSelfAttention, Provenance, Tap, VisionOutput, rename_keys


@dataclass(frozen=True)
class ViTConfig:
    """Architecture of a ViT checkpoint."""

    image_size: int = 224  # side of the square input the position embeddings were trained for
    patch_size: int = 16  # P: side of a square patch in pixels
    channels: int = 3  # C: input channels
    dim: int = 384  # D: token width
    depth: int = 12  # L: number of encoder layers
    heads: int = 6  # attention heads per layer
    mlp_dim: int = 1536  # hidden width of the MLP
    qkv_bias: bool = True  # whether the q/k/v projections have a bias
    layer_norm_eps: float = 1e-12  # epsilon of every LayerNorm (the hub configs say 1e-12)
    labels: tuple[str, ...] = ()  # class names; empty for a backbone without classifier (DINO)
    layer_scale: bool = False  # DINOv2: x + λ ⊙ f(x) on both residual branches, λ trained per channel
    registers: int = 0  # R register tokens inserted after CLS, without position embedding (Darcet et al.)
    antialias: bool = False  # whether E_pos is resized with an antialiased bicubic (DINOv2 with registers)
    pool: str = "cls"  # classifier input: "cls" (ViT, DeiT) or "cls+mean" ([CLS; mean of patch tokens], DINOv2)
    position: str = "learned"  # E_pos: "learned" (checkpoints), fixed 2-D "sincos" (MAE) or "none" (zeros; playground)

    @property
    def grid(self) -> int:
        """Patches per side at the native resolution."""
        return self.image_size // self.patch_size

    @property
    def prefix(self) -> int:
        """Tokens before the first patch token: CLS and the registers."""
        return 1 + self.registers


PRESETS = {
    "dino-vits16": ViTConfig(patch_size=16, dim=384, heads=6, mlp_dim=1536),
    "dino-vits8": ViTConfig(patch_size=8, dim=384, heads=6, mlp_dim=1536),
    "deit-tiny": ViTConfig(patch_size=16, dim=192, heads=3, mlp_dim=768, labels=tuple(f"class {i}" for i in range(1000))),
    "vit-base-16": ViTConfig(patch_size=16, dim=768, heads=12, mlp_dim=3072, labels=tuple(f"class {i}" for i in range(1000))),
}
_DINOV2 = dict(image_size=518, patch_size=14, layer_norm_eps=1e-6, layer_scale=True)
PRESETS |= {
    "dinov2-small": ViTConfig(dim=384, heads=6, mlp_dim=1536, **_DINOV2),
    "dinov2-small-reg": ViTConfig(dim=384, heads=6, mlp_dim=1536, registers=4, antialias=True, **_DINOV2),
    "dinov2-small-cls": ViTConfig(dim=384, heads=6, mlp_dim=1536, pool="cls+mean",
                                  labels=tuple(f"class {i}" for i in range(1000)), **_DINOV2),
    "dinov2-large": ViTConfig(dim=1024, depth=24, heads=16, mlp_dim=4096, **_DINOV2),
    "dinov2-large-reg": ViTConfig(dim=1024, depth=24, heads=16, mlp_dim=4096, registers=4, antialias=True, **_DINOV2),
}


class LayerScale(nn.Module):
    """x ⊙ λ with one trained λ per channel (CaiT §2.1): (b, n, dim) -> (b, n, dim)."""

    def __init__(self, dim: int):
        super().__init__()
        self.lambda1 = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.lambda1


class Block(nn.Module):
    """Pre-norm encoder layer (Eq. 2–3): x + MSA(LN(x)), then x + MLP(LN(x)); with layer_scale each branch is
    multiplied by its λ first (DINOv2)."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)
        self.attn = MultiHeadSelfAttention(cfg.dim, cfg.heads, cfg.qkv_bias)
        self.norm2 = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)
        self.mlp = FeedForward(cfg.dim, cfg.mlp_dim, nn.GELU)
        self.ls1 = LayerScale(cfg.dim) if cfg.layer_scale else nn.Identity()
        self.ls2 = LayerScale(cfg.dim) if cfg.layer_scale else nn.Identity()
        self.attn_input, self.out = Tap(), Tap()

    def forward(self, x: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x (b, n, dim) -> (b, n, dim), attention probs (b, heads, n, n) or None."""
        attended, probs = self.attn(self.attn_input(self.norm1(x)), need_weights=need_weights)
        x = x + self.ls1(attended)
        return self.out(x + self.ls2(self.mlp(self.norm2(x)))), probs


class ViT(Provenance, nn.Module):
    """A ViT whose every stage is a method; taps record each stage for `vitviz.trace`.

    Taps: `patches` (b, gh, gw, P, P, C), `flat` (b, n, P²C), `embeddings` (b, n, D), `tokens` (b, 1+n, D),
    `e_pos` (1, 1+n, D) as added, `position` (b, 1+n, D), `sequence` (b, 1+R+n, D) with the registers (the same
    as `position` when R = 0), per layer `blocks.{i}.attn_input` (LN(x), what the attention reads),
    `blocks.{i}.attn.{q,k,v,probs}` and `blocks.{i}.out` over all 1+R+n tokens.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        cfg = config
        self.patch_embed = nn.Conv2d(cfg.channels, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.grid**2, cfg.dim))
        if cfg.registers:
            self.register_tokens = nn.Parameter(torch.zeros(1, cfg.registers, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)
        head_in = 2 * cfg.dim if cfg.pool == "cls+mean" else cfg.dim
        self.head = nn.Linear(head_in, len(cfg.labels)) if cfg.labels else None
        self.patches, self.flat, self.embeddings = Tap(), Tap(), Tap()
        self.tokens, self.e_pos, self.position, self.sequence = Tap(), Tap(), Tap(), Tap()

    def patchify(self, pixel_values: Tensor) -> Tensor:
        """(b, C, H, W) -> patches (b, H//P, W//P, P, P, C).

        Pixels beyond the last whole patch are dropped, as Conv2d(stride = P) drops them.
        """
        p = self.config.patch_size
        gh, gw = pixel_values.shape[-2] // p, pixel_values.shape[-1] // p
        if gh == 0 or gw == 0:
            raise ValueError(f"input {tuple(pixel_values.shape[-2:])} is smaller than one {p}×{p} patch")
        x = pixel_values[..., : gh * p, : gw * p]
        return self.patches(rearrange(x, "b c (h p1) (w p2) -> b h w p1 p2 c", p1=p, p2=p))

    def flatten(self, patches: Tensor) -> Tensor:
        """(b, gh, gw, P, P, C) -> (b, N, P·P·C) in raster order of patches and (p1 p2 c) order inside each."""
        return self.flat(rearrange(patches, "b h w p1 p2 c -> b (h w) (p1 p2 c)"))

    def projection_matrix(self) -> Tensor:
        """The Conv2d kernel as the Linear weight E of Eq. 1: (D, C, P, P) -> (D, P·P·C)."""
        return rearrange(self.patch_embed.weight, "d c p1 p2 -> d (p1 p2 c)")

    def project(self, flat: Tensor) -> Tensor:
        """(b, N, P²C) -> (b, N, D): x_p E + b, the same numbers as Conv2d(kernel = stride = P)."""
        return self.embeddings(F.linear(flat, self.projection_matrix(), self.patch_embed.bias))

    def add_cls(self, embeddings: Tensor) -> Tensor:
        """(b, N, D) -> (b, 1+N, D) with the learned class token x_class in front."""
        cls = self.cls_token.expand(embeddings.shape[0], -1, -1)
        return self.tokens(torch.cat([cls, embeddings], dim=1))

    def position_embeddings(self, grid: tuple[int, int]) -> Tensor:
        """E_pos for a (gh, gw) patch grid: (1, 1+gh·gw, D).

        A different grid is reached as transformers 5.x does with `interpolate_pos_encoding=True`: the CLS entry
        is kept and the patch entries are resized bicubically in float32 (align_corners=False; antialiased only
        for DINOv2 with registers, as its checkpoints were trained), height and width separately, so non-square
        grids get their own aspect.
        """
        g = self.config.grid
        if grid == (g, g):
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        patch_pos = rearrange(patch_pos, "1 (h w) d -> 1 d h w", h=g, w=g).float()  # half-precision bicubic drifts
        patch_pos = F.interpolate(patch_pos, size=grid, mode="bicubic", align_corners=False,
                                  antialias=self.config.antialias).to(cls_pos.dtype)
        return torch.cat([cls_pos, rearrange(patch_pos, "1 d h w -> 1 (h w) d")], dim=1)

    def add_position(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """(b, 1+N, D) -> (b, 1+N, D): z_0 = [x_class; x_p E] + E_pos (Eq. 1)."""
        return self.position(tokens + self.e_pos(self.position_embeddings(grid)))

    def add_registers(self, position: Tensor) -> Tensor:
        """(b, 1+N, D) -> (b, 1+R+N, D): the R register tokens go between CLS and the patches, after E_pos was
        added, so they carry no position (Darcet et al. §2.2). Unchanged when the model has none."""
        if not self.config.registers:
            return self.sequence(position)
        registers = self.register_tokens.expand(position.shape[0], -1, -1)
        return self.sequence(torch.cat([position[:, :1], registers, position[:, 1:]], dim=1))

    def embed(self, pixel_values: Tensor) -> Tensor:
        """Eq. 1: (b, C, H, W) -> z_0 (b, 1+R+N, D)."""
        patches = self.patchify(pixel_values)
        tokens = self.add_cls(self.project(self.flatten(patches)))
        return self.add_registers(self.add_position(tokens, tuple(patches.shape[1:3])))

    def with_patch_size(self, patch_size: int) -> "ViT":
        """A new ViT that reads patch_size × patch_size patches with this checkpoint's weights.

        The projection kernel is PI-resized (`resize_patch_kernel`); position embeddings keep the native grid
        and are interpolated to whatever grid the input makes. Every other parameter is shared, not copied,
        so the original model is left untouched.
        """
        if patch_size == self.config.patch_size:
            return self
        cfg = replace(self.config, patch_size=patch_size, image_size=self.config.grid * patch_size)
        state = dict(self.state_dict())
        state["patch_embed.weight"] = resize_patch_kernel(self.patch_embed.weight.detach(), patch_size)
        with torch.device("meta"):  # no memory and no initialisation for parameters that are replaced at once
            model = ViT(cfg)
        model.load_state_dict(state, assign=True)
        model.same_provenance(self)
        return model.eval().requires_grad_(False)

    def forward(self, pixel_values: Tensor, output_attentions: bool = True) -> VisionOutput:
        """pixel_values (b, C, H, W) of any size ≥ P -> VisionOutput.

        last_hidden_state (b, 1+R+N, D) after the final LayerNorm; attentions: one (b, heads, 1+R+N, 1+R+N) per
        layer when `output_attentions` (False uses fused attention); logits (b, classes) from the CLS token, or from
        [CLS; mean of the patch tokens] for DINOv2's classifier.
        """
        return self.encode(self.embed(pixel_values), output_attentions)

    def encode(self, sequence: Tensor, output_attentions: bool = False) -> VisionOutput:
        """Eq. 2–4 on an embedded sequence z_0 (b, 1+R+n, D), any n ≥ 0 -> VisionOutput as `forward` returns it.

        The tokens need not form a grid: the explanation page removes patch tokens after E_pos was added (each kept
        token keeps its own position, as MAE's encoder does) and runs the rest.
        """
        x, attentions = sequence, []
        for block in self.blocks:
            x, probs = block(x, need_weights=output_attentions)
            attentions.append(probs)
        x = self.norm(x)
        logits = self.head(self.pooled(x)) if self.head is not None else None
        return VisionOutput(x, tuple(attentions) if output_attentions else None, logits)

    def pooled(self, hidden: Tensor) -> Tensor:
        """The classifier's input: (b, 1+R+N, D) -> (b, D), or (b, 2D) for pool "cls+mean" (the mean half is zero
        when no patch token is left)."""
        if self.config.pool == "cls+mean":
            patches = hidden[:, self.config.prefix:]
            mean = patches.mean(dim=1) if patches.shape[1] else torch.zeros_like(hidden[:, 0])
            return torch.cat([hidden[:, 0], mean], dim=1)
        return hidden[:, 0]


def resize_patch_kernel(weight: Tensor, size: int) -> Tensor:
    """FlexiViT PI-resize: (D, C, P, P) -> (D, C, size, size).

    With B the bilinear resize of a P×P patch to size×size, the new kernel is w' = pinv(B)ᵀ w, so that
    ⟨B x, w'⟩ = ⟨x, w⟩: an upsampled patch gives exactly the token the original patch gave (a least-squares
    match when shrinking).
    """
    old = weight.shape[-1]
    basis = torch.eye(old * old, dtype=torch.float64, device=weight.device).reshape(old * old, 1, old, old)
    resize = F.interpolate(basis, size=(size, size), mode="bilinear", align_corners=False)  # (P², 1, s, s)
    resize = rearrange(resize, "basis 1 s1 s2 -> (s1 s2) basis")  # B: (s², P²)
    flat = rearrange(weight.double(), "d c p1 p2 -> d c (p1 p2)")
    new = flat @ torch.linalg.pinv(resize)  # (d, c, s²)
    return rearrange(new, "d c (s1 s2) -> d c s1 s2", s1=size).to(weight.dtype)


def config_from_hf(cfg: dict) -> ViTConfig:
    """transformers ViTConfig dict (config.json) -> ViTConfig."""
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"unsupported hidden_act {cfg.get('hidden_act')!r}: only exact GELU ViTs are supported")
    id2label = cfg.get("id2label") or {}
    architectures = cfg.get("architectures") or []
    with_head = any("Classification" in a for a in architectures)
    return ViTConfig(
        image_size=cfg.get("image_size", 224),
        patch_size=cfg.get("patch_size", 16),
        channels=cfg.get("num_channels", 3),
        dim=cfg["hidden_size"],
        depth=cfg["num_hidden_layers"],
        heads=cfg["num_attention_heads"],
        mlp_dim=cfg["intermediate_size"],
        qkv_bias=cfg.get("qkv_bias", True),
        layer_norm_eps=cfg.get("layer_norm_eps", 1e-12),
        labels=tuple(id2label[k] for k in sorted(id2label, key=int)) if with_head else (),
    )


_RENAMES = [
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed."),
    (r"^embeddings\.cls_token$", "cls_token"),
    (r"^embeddings\.position_embeddings$", "pos_embed"),
    (r"^encoder\.layer\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.", r"blocks.\1.attn.\2."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layer\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.mlp.fc1."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.mlp.fc2."),
    (r"^layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]


def convert_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Checkpoint keys (transformers 4.x names, optional `vit.` prefix) -> ViT keys. The pooler is dropped."""
    return rename_keys(state, "vit.", _RENAMES, drop=lambda key: key.startswith("pooler."))


def dinov2_config_from_hf(cfg: dict) -> ViTConfig:
    """transformers Dinov2Config or Dinov2WithRegistersConfig dict (config.json) -> ViTConfig."""
    if cfg.get("use_swiglu_ffn"):
        raise ValueError("DINOv2 with a SwiGLU MLP (ViT-g) is not supported")
    registers = cfg.get("num_register_tokens", 0) if cfg.get("model_type") == "dinov2_with_registers" else 0
    dim = cfg["hidden_size"]
    return replace(
        config_from_hf({**cfg, "intermediate_size": int(dim * cfg.get("mlp_ratio", 4))}),
        layer_norm_eps=cfg.get("layer_norm_eps", 1e-6),
        layer_scale=True,
        registers=registers,
        antialias=bool(registers),
        pool="cls+mean",
    )


_DINOV2_RENAMES = [
    (r"^embeddings\.register_tokens$", "register_tokens"),
    (r"^encoder\.layer\.(\d+)\.norm(1|2)\.", r"blocks.\1.norm\2."),
    (r"^encoder\.layer\.(\d+)\.layer_scale(1|2)\.", r"blocks.\1.ls\2."),
    (r"^encoder\.layer\.(\d+)\.mlp\.", r"blocks.\1.mlp."),
    *_RENAMES,
]


def convert_dinov2_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """DINOv2 checkpoint keys (optional `dinov2.` or `dinov2_with_registers.` prefix) -> ViT keys. The mask token
    (used only for masked-image pre-training) is dropped."""
    prefix = "dinov2_with_registers." if any(k.startswith("dinov2_with_registers.") for k in state) else "dinov2."
    return rename_keys(state, prefix, _DINOV2_RENAMES, drop=lambda key: key == "embeddings.mask_token")


FAMILY = Family("vit", ViT, config_from_hf, convert_state_dict, PRESETS)
DINOV2_FAMILY = Family("dinov2", ViT, dinov2_config_from_hf, convert_dinov2_state_dict, {})
DINOV2_REGISTERS_FAMILY = Family("dinov2_with_registers", ViT, dinov2_config_from_hf, convert_dinov2_state_dict, {})
