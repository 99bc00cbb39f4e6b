"""Building blocks shared by the ViT, Swin and MobileViT modules.

Multi-head self-attention follows Vaswani et al. 2017, §3.2 ("Attention Is All You Need"), in the pre-norm
arrangement of the ViT paper (Dosovitskiy et al. 2021, §3.1, Eq. 2–3). `Tap` is the observation point that
`vitviz.trace` records, in the spirit of vit-pytorch's `Recorder`: the models never keep tensors for the app.
"""
from __future__ import annotations

import re
import threading
import zlib
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ..preprocess import Preprocessing


# What vitviz.trace records in the current thread: `names` {tap: qualified name} of the taps asked for, `records`
# the dict they fill, `keep` applied to each tensor. Models are shared between app sessions, which run in separate
# threads: the recording state is per thread, and a trace changes nothing on the model (no hooks to add or remove).
RECORDING = threading.local()


class Provenance:
    """Where a model's weights came from and how its checkpoint prepares the input: what `vitviz.load_model` records
    on every model it returns (ViT, Swin and MobileViT mix this in, so both are declared, typed attributes)."""

    source: str = ""  # the preset name (deterministic random weights), the hub id or the folder loaded
    preprocessing: Preprocessing | None = None  # the checkpoint's resize, crop, mean and std

    def same_provenance(self, model: Provenance) -> None:
        """Take `model`'s provenance: a model derived from it (resized patches) reads the same checkpoint."""
        self.source, self.preprocessing = model.source, model.preprocessing


class Tap(nn.Identity):
    """A named point in a forward pass that returns its input unchanged.

    While `vitviz.trace` records this tap in the current thread, what passes through is stored under the tap's
    qualified name. `active` is true then, so a module can compute an intermediate that the fast path skips
    (explicit attention probabilities instead of fused SDPA) only when someone records it.
    """

    def forward(self, x: Tensor) -> Tensor:
        """x (any shape) -> x, recorded when this thread's trace asked for this tap."""
        name = (getattr(RECORDING, "names", None) or {}).get(self)
        if name is not None:
            RECORDING.records[name] = RECORDING.keep(x)
        return x

    @property
    def active(self) -> bool:
        return self in (getattr(RECORDING, "names", None) or {})


@dataclass
class VisionOutput:
    """What every vitviz model returns, named as transformers names it."""

    last_hidden_state: Tensor  # ViT (b, 1+n, d); Swin (b, h·w, c) after the last stage; MobileViT (b, c, h, w)
    attentions: tuple[Tensor, ...] | None = None  # one per layer, shaped as transformers returns them
    logits: Tensor | None = None  # (b, num_labels) when the checkpoint has a classifier


class Family(NamedTuple):
    """How `vitviz.weights` builds and loads one model family."""

    model_type: str  # config.json's "model_type"
    model_class: type[nn.Module]  # built as model_class(config)
    config_from_hf: Callable[[dict], object]  # config.json dict -> our frozen config
    convert_state_dict: Callable[[dict[str, Tensor]], dict[str, Tensor]]  # checkpoint keys -> our keys
    presets: dict  # preset name -> config


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections, as the hub checkpoints store them.

    Taps: `q`, `k`, `v` (b, heads, n, head_dim) and `probs` (b, heads, n, n).
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.query = nn.Linear(dim, dim, bias=qkv_bias)
        self.key = nn.Linear(dim, dim, bias=qkv_bias)
        self.value = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.q, self.k, self.v = Tap(), Tap(), Tap()
        self.probs = Tap()

    def forward(self, x: Tensor, bias: Tensor | None = None, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x (b, n, dim), bias broadcastable to (b, heads, n, n) -> (b, n, dim), probs (b, heads, n, n) or None.

        The fused `scaled_dot_product_attention` never materialises the n × n matrix; the explicit softmax
        runs only when the probabilities are asked for or traced.
        """
        q = self.q(rearrange(self.query(x), "b n (heads d) -> b heads n d", heads=self.heads))
        k = self.k(rearrange(self.key(x), "b n (heads d) -> b heads n d", heads=self.heads))
        v = self.v(rearrange(self.value(x), "b n (heads d) -> b heads n d", heads=self.heads))
        probs = None
        if need_weights or self.probs.active:
            # q is scaled rather than the scores (n·d products instead of n·n), and the softmax runs in place: at
            # 3,601 tokens every pass over, or extra copy of, an n × n matrix costs tens of MB and page faults.
            scores = (q * self.scale) @ k.transpose(-2, -1)  # (b, heads, n, n)
            if bias is not None:
                scores.add_(bias)
            if scores.requires_grad:  # autograd (vitviz.trace_gradients) cannot differentiate an out= softmax
                probs = self.probs(scores.softmax(dim=-1))
            else:
                probs = self.probs(torch.softmax(scores, dim=-1, out=scores))
            context = probs @ v  # (b, heads, n, d)
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        return self.proj(rearrange(context, "b heads n d -> b n (heads d)")), probs


class FeedForward(nn.Module):
    """Two-layer MLP of a transformer block: (b, n, dim) -> (b, n, dim)."""

    def __init__(self, dim: int, hidden: int, act: type[nn.Module] = nn.GELU):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        """x (b, n, dim) -> (b, n, dim)."""
        return self.fc2(self.act(self.fc1(x)))


def rename_keys(
    state: dict[str, Tensor], prefix: str, renames: list[tuple[str, str]], drop: Callable[[str], bool]
) -> dict[str, Tensor]:
    """Checkpoint keys -> our keys: strip `prefix`, skip keys for which `drop` is true, apply the first matching
    (regex, replacement). Unknown keys pass through unchanged and fail the strict `load_state_dict`."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix(prefix)
        if drop(key):
            continue
        for pattern, repl in renames:
            new, n = re.subn(pattern, repl, key)
            if n:
                key = new
                break
        out[key] = value
    return out


def build_uninitialised(model_class: type[nn.Module], config) -> nn.Module:
    """`model_class(config)` in CPU memory with every parameter and buffer left uninitialised, for a caller that sets
    them all next (`init_random`, or a strict `load_state_dict`). Built on the meta device: nn.Linear's own Kaiming
    initialisation, overwritten at once anyway, took 0.16 s of ViT-S/16's first page at a cold start."""
    with torch.device("meta"):
        model = model_class(config)
    # Not `to_empty`: its empty_like on meta tensors imports sympy (0.5 s) on first use.
    return model._apply(lambda t: torch.empty(t.shape, dtype=t.dtype))


def init_random(model: nn.Module, name: str) -> nn.Module:
    """Give `model` deterministic random weights derived from `name` (the offline presets), every parameter and
    buffer set, so `model` may come from `build_uninitialised`.

    Linear and embedding parameters get a truncated normal with std 0.02 as in the ViT and Swin
    reference code; convolutions get He-normal weights so activations keep their scale through
    MobileViT's deep conv stack (its BatchNorms run on stored statistics in eval mode: mean 0, variance 1).
    """
    norms = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    unset = {n for n, _ in model.named_buffers()} - {f"{n}.{b}" for n, m in norms for b, _ in m.named_buffers()}
    if unset:  # a buffer added to a model must be given its value here
        raise TypeError(f"init_random does not know how to set the buffers {sorted(unset)}")
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    with torch.no_grad():
        for _, norm in norms:
            norm.reset_running_stats()
        for param_name, param in model.named_parameters():
            leaf = param_name.rsplit(".", 1)[-1]
            if param.ndim == 1 and leaf in ("weight", "lambda1"):  # normalisation and LayerScale scales
                param.fill_(1.0)
            elif param.ndim == 1:
                param.zero_()
            else:
                std = (2.0 / param[0].numel()) ** 0.5 if param.ndim == 4 else 0.02
                param.normal_(generator=generator).clamp_(-2, 2).mul_(std)  # in place: what randn(shape) gives
    return model


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: the one given, else cuda, else mps, else cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
