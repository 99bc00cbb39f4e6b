"""Shared test utilities: tiny transformers checkpoints saved locally (no hub access in tests)."""
from __future__ import annotations

from pathlib import Path

import torch


def perturb_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values, so zero-initialised biases and LayerNorms are tested too."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.1 + (1.0 if param.ndim == 1 and param.mean() == 1 else 0.0))
    return model


def save(model: torch.nn.Module, path: Path) -> Path:
    model.save_pretrained(path)
    return path


def recording_ended(model) -> bool:
    """Whether this thread records nothing any more: no trace state left behind, no tap of `model` active."""
    from vitviz.models.common import RECORDING, Tap

    return not getattr(RECORDING, "names", None) and not any(m.active for m in model.modules() if isinstance(m, Tap))
