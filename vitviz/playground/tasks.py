"""The playground's tasks: small RGB images of coloured shapes made on the fly, each task chosen to teach one thing
about vision transformers (issue 34). Rendering is vectorised over the batch (no per-image Python loop) and every
random number comes from a generator seeded by the caller, so a seed always gives the same images and labels.

- "shape" (what shape?): local evidence in a few patches, where a small CNN does well.
- "where" (which quadrant?): the shape's kind and look do not matter, only its place. A ViT with CLS pooling and no
  position embedding is permutation-invariant over patches (ViT §3.1, Eq. 1; Table 8 compares 1-D, 2-D and none),
  and the quadrants are aligned to every allowed patch size, so without E_pos the task is at chance.
- "same" (same kind or not?): two shapes in two different quadrants. Every patch sees at most one shape, so a model
  that scores each patch on its own and adds the scores (patch MLP + mean pooling + linear head) cannot represent
  the answer: with s(kind) the score of one shape, "same" needs 2·s(a) > t and 2·s(b) > t while s(a) + s(b) < t,
  which no s satisfies. The answer needs attention between the patches of the two shapes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torch import Tensor

from ..i18n import N_

KINDS = (N_("square"), N_("circle"), N_("triangle"), N_("cross"))
# Bright shape colours on a dark background (every one at least 4.5:1 against it): the colour never carries the
# label, it only makes the shapes differ in more than kind.
PALETTE = torch.tensor([
    (0.95, 0.30, 0.25), (0.30, 0.85, 0.35), (0.35, 0.55, 1.00), (0.98, 0.85, 0.25),
    (0.95, 0.40, 0.90), (0.30, 0.90, 0.95), (1.00, 0.60, 0.20), (0.95, 0.95, 0.95),
])
QUADRANTS = (N_("top left"), N_("top right"), N_("bottom left"), N_("bottom right"))
IMAGE_SIZES = (32, 48, 64)  # sides the tasks are drawn at: multiples of 16, so quadrants align with every patch
NOISE = 0.03  # amplitude of the background's pixel noise: no task can be solved from a single exact colour


@dataclass(frozen=True)
class Task:
    """One classification task of the playground."""

    name: str  # key in TASKS and on the command line
    title: str  # short title, a msgid (translate with vitviz.i18n._ where shown)
    question: str  # the question every image answers, a msgid
    teaches: str  # what the task shows about ViTs, one sentence, a msgid
    classes: tuple[str, ...]  # class names in label order, msgids
    draw: Callable[[int, torch.Generator, int], tuple[Tensor, Tensor, Tensor]]  # (n, generator, size) -> layout

    def make(self, n: int, seed: int, size: int = 32, device: str | torch.device = "cpu") -> tuple[Tensor, Tensor]:
        """`n` images and labels from `seed`: images (n, 3, size, size) float32 in [0, 1], exact multiples of 1/255
        (so a round trip through uint8 PNG loses nothing), labels (n,) int64 in [0, len(classes))."""
        if size not in IMAGE_SIZES:
            raise ValueError(f"image size {size} is not one of {IMAGE_SIZES}")
        generator = torch.Generator().manual_seed(int(seed))
        shapes, labels, background = self.draw(n, generator, size)
        images = render(shapes, background, size, generator)
        return images.to(device), labels.to(device)

    def examples(self, n: int, seed: int, size: int = 32) -> "Examples":
        """`n` images for showing: `Examples` with uint8 (n, size, size, 3) pictures and their labels."""
        images, labels = self.make(n, seed, size)
        return Examples(to_uint8(images), labels.numpy(), self.classes)


@dataclass(frozen=True)
class Examples:
    """A task's images as pictures, with their labels (the example grid, the sidebar's sample photos)."""

    images: np.ndarray  # (n, size, size, 3) uint8 RGB
    labels: np.ndarray  # (n,) int64 class index
    classes: tuple[str, ...]  # class names (msgids) in label order

    def pil(self, i: int) -> Image.Image:
        """Image `i` as an RGB PIL image (what vitviz.preprocess takes)."""
        return Image.fromarray(self.images[i], "RGB")


def to_uint8(images: Tensor) -> np.ndarray:
    """(n, 3, S, S) float in [0, 1] -> (n, S, S, 3) uint8."""
    return rearrange((images.detach().cpu() * 255).round().clamp(0, 255).to(torch.uint8), "n c h w -> n h w c").numpy()


def uniform(generator: torch.Generator, low: float | Tensor, high: float | Tensor, n: int) -> Tensor:
    """(n,) float32 uniform in [low, high) (bounds scalars or (n,) tensors)."""
    return low + (high - low) * torch.rand(n, generator=generator)


def shape_masks(cx: Tensor, cy: Tensor, r: Tensor, kind: Tensor, size: int) -> Tensor:
    """Where one shape per image covers the pixel centres: centre (cx, cy), half-size r, kind index (all (n,)) ->
    (n, size, size) bool. Square |dx|, |dy| ≤ r; circle dx² + dy² ≤ r²; triangle pointing up, apex at dy = −r, base
    at dy = r; cross two bars 2r long and 2r/3 wide."""
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    dx = grid[None, None, :] - cx[:, None, None]
    dy = grid[None, :, None] - cy[:, None, None]
    r = r[:, None, None]
    ax, ay = dx.abs(), dy.abs()
    inside = (ax <= r) & (ay <= r)
    masks = torch.stack([
        inside,
        dx * dx + dy * dy <= r * r,
        inside & (ax <= (dy + r) / 2),
        inside & ((ax <= r / 3) | (ay <= r / 3)),
    ])  # (kinds, n, size, size)
    return masks.gather(0, kind[None, :, None, None].expand(1, -1, size, size))[0]


def render(shapes: Tensor, background: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """Draw shapes (n, m, 5) rows (cx, cy, r, kind, colour index) over backgrounds (n,) grey levels with noise ->
    (n, 3, size, size) float32 in [0, 1], quantised to multiples of 1/255."""
    n, m, _ = shapes.shape
    images = background[:, None, None, None] + NOISE * (2 * torch.rand(n, 1, size, size, generator=generator) - 1)
    images = images.expand(n, 3, size, size).clone()
    for j in range(m):  # over the (one or two) shapes of an image, not over images
        cx, cy, r, kind, colour = shapes[:, j].unbind(1)
        mask = shape_masks(cx, cy, r, kind.long(), size)[:, None]  # (n, 1, size, size)
        images = torch.where(mask, PALETTE[colour.long()][:, :, None, None], images)
    return (images.clamp(0, 1) * 255).round() / 255


def dark_backgrounds(n: int, generator: torch.Generator) -> Tensor:
    """(n,) background grey levels: dark enough for every palette colour to stand out."""
    return uniform(generator, 0.04, 0.16, n)


def in_quadrant(quadrant: Tensor, r: Tensor, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Centres (cx, cy), each (n,), uniform among those that keep a shape of half-size r (n,) wholly inside its
    quadrant (n,) (0 top left, 1 top right, 2 bottom left, 3 bottom right)."""
    half = size / 2
    n = quadrant.shape[0]
    x0, y0 = (quadrant % 2) * half, (quadrant // 2) * half
    cx = x0 + uniform(generator, r + 0.5, half - r - 0.5, n)
    cy = y0 + uniform(generator, r + 0.5, half - r - 0.5, n)
    return cx, cy


def random_kinds_colours(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(n,) kind indices and (n,) palette indices, uniform."""
    return (torch.randint(len(KINDS), (n,), generator=generator),
            torch.randint(len(PALETTE), (n,), generator=generator))


def draw_shape(n: int, generator: torch.Generator, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """One shape anywhere, half-size 12–28 % of the side; label = its kind. -> shapes (n, 1, 5), labels, backgrounds."""
    kind, colour = random_kinds_colours(n, generator)
    r = uniform(generator, 0.12 * size, 0.28 * size, n)
    cx = uniform(generator, r + 0.5, size - r - 0.5, n)
    cy = uniform(generator, r + 0.5, size - r - 0.5, n)
    shapes = torch.stack([cx, cy, r, kind.float(), colour.float()], dim=1)[:, None]
    return shapes, kind, dark_backgrounds(n, generator)


def draw_where(n: int, generator: torch.Generator, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """One shape of any kind wholly inside a quadrant, half-size 8–19 % of the side; label = the quadrant."""
    kind, colour = random_kinds_colours(n, generator)
    quadrant = torch.randint(4, (n,), generator=generator)
    r = uniform(generator, 0.08 * size, 0.19 * size, n)
    cx, cy = in_quadrant(quadrant, r, size, generator)
    shapes = torch.stack([cx, cy, r, kind.float(), colour.float()], dim=1)[:, None]
    return shapes, quadrant, dark_backgrounds(n, generator)


def draw_same(n: int, generator: torch.Generator, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Two shapes in two different quadrants, each with its own colour and size (half-size 17–22 % of the side: big
    enough to tell the kinds apart from their patches; with 11–19 % the default ViT stayed at chance for 2000 steps);
    label 1 when both are of the same kind (half of the images), else 0. The second kind is the first one or,
    for "different", uniform among the others, so each kind is as common in both classes."""
    first, colour1 = random_kinds_colours(n, generator)
    same = torch.rand(n, generator=generator) < 0.5
    other = (first + torch.randint(1, len(KINDS), (n,), generator=generator)) % len(KINDS)
    second = torch.where(same, first, other)
    colour2 = torch.randint(len(PALETTE), (n,), generator=generator)
    q1 = torch.randint(4, (n,), generator=generator)
    q2 = (q1 + torch.randint(1, 4, (n,), generator=generator)) % 4
    rows = []
    for kind, colour, quadrant in ((first, colour1, q1), (second, colour2, q2)):
        r = uniform(generator, 0.17 * size, 0.22 * size, n)
        cx, cy = in_quadrant(quadrant, r, size, generator)
        rows.append(torch.stack([cx, cy, r, kind.float(), colour.float()], dim=1))
    return torch.stack(rows, dim=1), same.long(), dark_backgrounds(n, generator)


TASKS: dict[str, Task] = {
    "shape": Task("shape", N_("What shape?"), N_("Which shape is in the picture?"),
                  N_("Local evidence: the answer lies in a few neighbouring patches."), KINDS, draw_shape),
    "where": Task("where", N_("Where is it?"), N_("In which quadrant is the shape?"),
                  N_("Position: without position embeddings a ViT cannot tell where a patch was."), QUADRANTS,
                  draw_where),
    "same": Task("same", N_("Same or different?"), N_("Are the two shapes of the same kind?"),
                 N_("Attention: the answer needs the patches of both shapes together."), (N_("different"), N_("same")),
                 draw_same),
}


def chance(task: Task) -> float:
    """Accuracy of guessing (every task's classes are equally likely)."""
    return 1.0 / len(task.classes)

