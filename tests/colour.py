"""Colour arithmetic the tests share: sRGB to linear light, WCAG 2.1 relative luminance and contrast, and the
colour-vision deficiencies as Chromium's Emulation.setEmulatedVisionDeficiency applies them: Machado, Oliveira &
Fernandes (2009) at severity 1 on linear RGB; achromatopsia keeps only the luminance."""
from __future__ import annotations

import numpy as np

DEFICIENCIES = {
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
    "achromatopsia": np.tile([0.2126, 0.7152, 0.0722], (3, 1)),
}


def linear(rgb) -> np.ndarray:
    """sRGB (0…255, any leading shape) -> linear light (0…1)."""
    c = np.asarray(rgb, dtype=np.float64) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def luminance(rgb, deficiency: str = "normal") -> float:
    """WCAG 2.1 relative luminance of an sRGB colour (0…255) as seen with `deficiency`."""
    return float(np.clip(DEFICIENCIES[deficiency] @ linear(rgb), 0, 1) @ [0.2126, 0.7152, 0.0722])


def contrast(a, b, deficiency: str = "normal") -> float:
    """WCAG 2.1 contrast ratio of two sRGB colours as seen with `deficiency` (1…21)."""
    high, low = sorted((luminance(a, deficiency), luminance(b, deficiency)), reverse=True)
    return (high + 0.05) / (low + 0.05)
