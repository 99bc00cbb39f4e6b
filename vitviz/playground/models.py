"""The playground's run settings and the three small models it trains on them: our own `ViT` in a tiny
configuration (Dosovitskiy et al. 2021, §3.1; position embeddings learned, fixed 2-D sin-cos as in MAE, or none:
ViT Table 8 / Appendix D.4 compares them), a CNN of about the same parameter count (the baseline that wins on small
data, d2l's and the UvA tutorial's comparison) and a patch MLP without attention (patch embedding, per-token MLP
blocks, mean pooling: the "same" task's control, see `vitviz.playground.tasks`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from ..embeddings import sincos_2d
from ..models.common import FeedForward, VisionOutput, init_random
from ..models.vit import ViT, ViTConfig
from .tasks import IMAGE_SIZES, TASKS

MODELS = ("vit", "cnn", "mlp")
POSITIONS = ("learned", "sincos", "none")


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a training run: the same RunConfig on the same machine gives the same curve."""

    task: str = "shape"  # key of vitviz.playground.TASKS
    model: str = "vit"  # "vit" (our ViT), "cnn" (the baseline), "mlp" (patch MLP, no attention)
    image_size: int = 32  # side of the task's square images, one of tasks.IMAGE_SIZES
    patch: int = 8  # P for "vit" and "mlp": a divisor of image_size, at most image_size / 2
    dim: int = 64  # D: token width ("vit", "mlp"); the CNN's widths follow from the parameter count
    depth: int = 2  # encoder layers ("vit") or MLP blocks ("mlp")
    heads: int = 4  # attention heads per layer ("vit"); must divide dim
    mlp_ratio: int = 2  # MLP hidden width / D
    pos: str = "learned"  # position embeddings ("vit", "mlp"): "learned", "sincos" (fixed 2-D) or "none"
    lr: float = 1e-3  # AdamW learning rate (constant)
    weight_decay: float = 0.05  # AdamW weight decay (not applied to norms, biases, CLS and E_pos)
    batch: int = 64  # training images per step (fixed: the "fixed batch size")
    steps: int = 1000  # step budget: the run stops by itself after this many steps
    seed: int = 0  # initial weights, training images and validation images all derive from it

    def problems(self) -> list[str]:
        """Why these settings cannot train, one clear sentence each (empty when they can)."""
        out = []
        if self.task not in TASKS:
            out.append(f"task {self.task!r} is not one of {', '.join(TASKS)}.")
        if self.model not in MODELS:
            out.append(f"model {self.model!r} is not one of {', '.join(MODELS)}.")
        if self.pos not in POSITIONS:
            out.append(f"position embedding {self.pos!r} is not one of {', '.join(POSITIONS)}.")
        if self.image_size not in IMAGE_SIZES:
            out.append(f"image size {self.image_size} is not one of {', '.join(map(str, IMAGE_SIZES))}.")
        elif self.patch not in patch_sizes(self.image_size):
            out.append(f"patch size {self.patch} must be one of {', '.join(map(str, patch_sizes(self.image_size)))} "
                       f"for {self.image_size} px images.")
        if self.dim % self.heads or self.dim % 4:
            out.append(f"D = {self.dim} must be a multiple of 4 and of the {self.heads} heads.")
        for name, low, high in (("dim", 8, 256), ("depth", 1, 6), ("heads", 1, 8), ("mlp_ratio", 1, 4),
                                ("batch", 1, 256), ("steps", 0, 20000)):
            if not low <= getattr(self, name) <= high:
                out.append(f"{name} = {getattr(self, name)} is outside {low}…{high}.")
        if not 1e-5 <= self.lr <= 1e-1:
            out.append(f"learning rate {self.lr} is outside 1e-5…0.1.")
        return out

    def checked(self) -> "RunConfig":
        """This config, or ValueError with every problem in one message."""
        problems = self.problems()
        if problems:
            raise ValueError(" ".join(problems))
        return self

    @property
    def classes(self) -> tuple[str, ...]:
        """The task's class names (msgids)."""
        return TASKS[self.task].classes


def patch_sizes(image_size: int) -> list[int]:
    """Allowed patch sizes for an image side: its divisors from 2 up to half the side (at least 2 × 2 patches)."""
    return [p for p in range(2, image_size // 2 + 1) if image_size % p == 0]


# Named settings for the comparisons the issue asks for; "default" trains at >= 20 steps/s on one core (README).
PRESETS: dict[str, RunConfig] = {
    "default": RunConfig(),
    "where": RunConfig(task="where"),
    "where-no-pos": RunConfig(task="where", pos="none"),
    "where-sincos": RunConfig(task="where", pos="sincos"),
    "same": RunConfig(task="same", steps=2000),
    "same-no-attention": RunConfig(task="same", model="mlp", steps=2000),
    "shape-p4": RunConfig(patch=4),
    "shape-cnn": RunConfig(model="cnn"),
}


def vit_config(config: RunConfig) -> ViTConfig:
    """The tiny ViTConfig of a run: classes from its task, E_pos as asked."""
    return ViTConfig(image_size=config.image_size, patch_size=config.patch, dim=config.dim, depth=config.depth,
                     heads=config.heads, mlp_dim=config.mlp_ratio * config.dim, layer_norm_eps=1e-6,
                     labels=config.classes, position=config.pos)


class PatchMLP(nn.Module):
    """The no-attention control: patch embedding + E_pos, `depth` pre-norm per-token MLP blocks (hidden width
    doubled so the parameter count matches the ViT's attention + MLP), LayerNorm per token, mean over tokens, linear
    head. Its logits are a sum of one term per patch, so no patch can change how another one counts."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.config = cfg
        p = cfg.patch_size
        self.patch_embed = nn.Conv2d(cfg.channels, cfg.dim, kernel_size=p, stride=p)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.grid**2, cfg.dim))
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps) for _ in range(cfg.depth))
        self.mlps = nn.ModuleList(FeedForward(cfg.dim, 2 * cfg.mlp_dim) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)
        self.head = nn.Linear(cfg.dim, len(cfg.labels))

    def forward(self, pixel_values: Tensor, output_attentions: bool = False) -> VisionOutput:
        """(b, C, S, S) -> VisionOutput: last_hidden_state (b, N, D), logits (b, classes); no attentions."""
        x = rearrange(self.patch_embed(pixel_values), "b d h w -> b (h w) d") + self.pos_embed
        for norm, mlp in zip(self.norms, self.mlps):
            x = x + mlp(norm(x))
        x = self.norm(x)
        return VisionOutput(x, None, self.head(x.mean(dim=1)))


class SmallCNN(nn.Module):
    """The baseline: four 3 × 3 conv layers with stride 2, batch norm and ReLU, global average pooling and a linear
    head; widths chosen for about the tiny ViT's parameter count (~80 k). Stride 2 from the first layer keeps its
    multiply-adds near the ViT's (1.7 M per 32 px image; stride 1 first made it 6.7 M and 4 × slower on the CPU)."""

    def __init__(self, classes: int, widths: tuple[int, ...] = (32, 48, 64, 64)):
        super().__init__()
        layers, c_in = [], 3
        for c in widths:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU()]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, classes)

    def forward(self, pixel_values: Tensor, output_attentions: bool = False) -> VisionOutput:
        """(b, 3, S, S) -> VisionOutput: last_hidden_state (b, C, S/16, S/16), logits (b, classes); no attentions."""
        x = self.features(pixel_values)
        return VisionOutput(x, None, self.head(x.mean(dim=(2, 3))))


def build_model(config: RunConfig) -> nn.Module:
    """A run's model with its initial weights, deterministic from `config.seed` (init_random's generator: no global
    RNG, so runs built in parallel threads do not disturb each other). E_pos: learned ones start as a truncated
    normal (std 0.02), "sincos" is MAE's 2-D table (zero for CLS), "none" zeros; the last two are never trained."""
    config = config.checked()
    cfg = vit_config(config)
    if config.model == "cnn":
        model = SmallCNN(len(config.classes))
    else:
        model = ViT(cfg) if config.model == "vit" else PatchMLP(cfg)
    init_random(model, f"playground:{config.model}:{config.seed}")
    if config.model != "cnn" and config.pos != "learned":
        with torch.no_grad():
            table = sincos_2d((cfg.grid, cfg.grid), cfg.dim) if config.pos == "sincos" else torch.zeros(cfg.grid**2, cfg.dim)
            model.pos_embed.copy_(table[None] if config.model == "mlp" else torch.cat([torch.zeros(1, cfg.dim), table])[None])
    return model


def trained_parameters(model: nn.Module, config: RunConfig) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, not decayed) parameters for AdamW: matrices and kernels decay; norms, biases, the CLS token and
    learned E_pos do not (the ViT / DeiT recipe); fixed E_pos ("sincos", "none") is in neither (never trained)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if name == "pos_embed" and config.pos != "learned":
            continue
        (decay if param.ndim >= 2 and name not in ("cls_token", "pos_embed") else no_decay).append(param)
    return decay, no_decay


def parameter_count(model: nn.Module) -> int:
    """Number of scalars in the model's parameters (fixed E_pos included: it is part of the model)."""
    return sum(p.numel() for p in model.parameters())

