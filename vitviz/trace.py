"""Record named intermediates of a forward pass through hooks on `Tap` modules.

Like vit-pytorch's `Recorder`, tracing never changes the model: hooks are registered for one forward and
removed afterwards (also on error), and the models keep no tensors on `self`. Only the taps that match the
requested patterns are hooked, so attention probabilities are materialised just for the layers asked for. A model
may be shared by threads (one per app session): hooks record only the thread that traces, and only that thread's
forward takes the explicit path.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Callable, Iterable
from weakref import WeakKeyDictionary

import torch
from torch import Tensor, nn

from .models.common import RECORDING, Tap, VisionOutput


@dataclass
class Trace:
    """The output of one forward pass and the tensors recorded at its taps, by qualified tap name."""

    output: VisionOutput | Tensor  # a Tensor when only a stage method was traced
    records: dict[str, Tensor] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Tensor:
        return self.records[name]

    def __contains__(self, name: str) -> bool:
        return name in self.records


# model -> {tap name: tap}. Walking named_modules() costs ~1 ms on MobileViT, a noticeable share of a 20 ms traced
# forward; our models never change their module tree after construction, so the walk is done once per model.
_TAPS: WeakKeyDictionary[nn.Module, dict[str, Tap]] = WeakKeyDictionary()
_TAPS_LOCK = threading.Lock()


def _taps(model: nn.Module) -> dict[str, Tap]:
    with _TAPS_LOCK:
        taps = _TAPS.get(model)
        if taps is None:
            taps = _TAPS[model] = {name: m for name, m in model.named_modules() if isinstance(m, Tap)}
        return taps


def tap_names(model: nn.Module) -> list[str]:
    """Qualified names of every tap in `model`, in module registration order."""
    return list(_taps(model))


@contextlib.contextmanager
def _recording(model: nn.Module, include: str | Iterable[str], keep: Callable[[Tensor], Tensor]):
    """Hook every tap matching a glob in `include` for the forward passes of this thread inside the block, and yield
    the dict they fill: tap name -> keep(output). Raises KeyError when a pattern matches no tap. The hooks and the
    thread's recording state are removed on exit, also on error."""
    patterns = [include] if isinstance(include, str) else list(include)
    taps = _taps(model)
    for pattern in patterns:
        if not any(fnmatchcase(name, pattern) for name in taps):
            raise KeyError(f"no tap matches {pattern!r}")
    records: dict[str, Tensor] = {}
    owner = threading.get_ident()

    def recorder(name: str):
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            if threading.get_ident() == owner:
                records[name] = keep(output)

        return hook

    selected = [name for name in taps if any(fnmatchcase(name, pattern) for pattern in patterns)]
    handles = []
    RECORDING.taps = frozenset(taps[name] for name in selected)
    try:
        for name in selected:
            handles.append(taps[name].register_forward_hook(recorder(name)))
        yield records
    finally:
        RECORDING.taps = frozenset()
        for handle in handles:
            handle.remove()


def trace(
    model: nn.Module,
    pixel_values: Tensor,
    include: str | Iterable[str] = "*",
    output_attentions: bool = False,
    method: str | None = None,
    **forward_kwargs,
) -> Trace:
    """Run `model(pixel_values)` once and record every tap whose name matches a glob in `include`.

    pixel_values (b, C, H, W) -> Trace. Examples of patterns: `"*"` (all), `"blocks.3.*"` (one ViT layer),
    `"*.probs"` (every attention map). Recorded tensors are detached and stay on the model's device.
    Raises KeyError when a pattern matches no tap, so a misspelt name cannot pass silently. `forward_kwargs` go to
    the model (Swin's `window_size`, MobileViT's `patch_size`). `method` names a stage method to run instead of
    the whole forward (e.g. ViT's `"embed"`): the trace's output is then whatever that method returns.
    """
    with _recording(model, include, Tensor.detach) as records, torch.inference_mode():
        if method is None:
            output = model(pixel_values, output_attentions=output_attentions, **forward_kwargs)
        else:
            output = getattr(model, method)(pixel_values, **forward_kwargs)
    return Trace(output, records)


@dataclass
class GradientTrace:
    """A forward pass with gradients: the tensors at the recorded taps and the target's gradient at each."""

    output: VisionOutput
    target: Tensor  # the scalar that was differentiated
    records: dict[str, Tensor]  # detached activations by tap name
    gradients: dict[str, Tensor]  # ∂target/∂activation, same shapes


def trace_gradients(
    model: nn.Module,
    pixel_values: Tensor,
    target: Callable[[VisionOutput], Tensor],
    include: str | Iterable[str],
    **forward_kwargs,
) -> GradientTrace:
    """Run `model(pixel_values)` with autograd on and differentiate `target(output)` (a scalar, e.g. one logit)
    with respect to every tap that matches `include`.

    pixel_values (b, C, H, W) -> GradientTrace. The model's parameters keep `requires_grad=False` (it is shared and
    never mutated): the graph starts at a copy of the input that requires grad. Recording `*.probs` taps makes the
    attention layers compute their probabilities explicitly, so their gradients exist (Chefer et al. 2021 need them).
    """
    with _recording(model, include, lambda output: output) as live, torch.inference_mode(False), torch.enable_grad():
        source = pixel_values.detach().clone().requires_grad_(True)
        output = model(source, output_attentions=False, **forward_kwargs)
        value = target(output)
        names = list(live)
        grads = torch.autograd.grad(value, [live[name] for name in names], allow_unused=True)
    gradients = {name: torch.zeros_like(live[name]) if g is None else g for name, g in zip(names, grads)}
    logits = None if output.logits is None else output.logits.detach()
    return GradientTrace(VisionOutput(output.last_hidden_state.detach(), None, logits), value.detach(),
                         {name: live[name].detach() for name in names}, gradients)
