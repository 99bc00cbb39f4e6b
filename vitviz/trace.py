"""Record named intermediates of a forward pass at its `Tap` modules.

In the spirit of vit-pytorch's `Recorder`, the models keep no tensors on `self`; tracing does not even change the
model: what to record is this thread's state (`RECORDING`), set for one forward and restored afterwards (also on
error). A model is shared by threads (one per app session), so forward hooks, which every thread's forward would
meet, were the wrong tool: each added tap cost ~10 µs per traced forward to register, call and remove, and every
other session's forward ran the hook machinery meanwhile. Only the taps that match the requested patterns record,
so attention probabilities are materialised just for the layers asked for, and only in the tracing thread.
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
    """Record every tap matching a glob in `include` in the forward passes of this thread inside the block, and
    yield the dict they fill: tap name -> keep(tensor). Raises KeyError when a pattern matches no tap. The thread's
    recording state is restored on exit, also on error."""
    patterns = [include] if isinstance(include, str) else list(include)
    taps = _taps(model)
    for pattern in patterns:
        if not any(fnmatchcase(name, pattern) for name in taps):
            raise KeyError(f"no tap matches {pattern!r}")
    records: dict[str, Tensor] = {}
    before = tuple(getattr(RECORDING, attr, None) for attr in ("names", "records", "keep"))
    RECORDING.names = {tap: name for name, tap in taps.items() if any(fnmatchcase(name, p) for p in patterns)}
    RECORDING.records, RECORDING.keep = records, keep
    try:
        yield records
    finally:
        RECORDING.names, RECORDING.records, RECORDING.keep = before


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
