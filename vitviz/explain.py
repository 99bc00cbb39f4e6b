"""Which patches made the decision? Explanation maps for one class, a test of their faithfulness, and the layer
at which the decision forms.

Maps, each (gh, gw) ≥ 0 over the patch grid (the formulas are in the shared reference, section Explanations):

- **CLS attention**: the last layer's attention of the CLS query to the patches, heads averaged (DINO's maps, one
  layer, no class: the same for every class).
- **Attention rollout** (Abnar & Zuidema 2020, §3), as the attention page computes it (`vitviz.attention`).
- **Gradient-weighted rollout** (Chefer, Gur & Wolf, ICCV 2021, "Generic Attention-model Explainability", §3.1,
  Eq. 5–6): per layer Ā_b = mean_heads(relu(∂y_t/∂A_b ⊙ A_b)), R = Π_b (I + Ā_b) (last layer on the left, so
  R ← R + Ā_b R layer by layer); the map is row CLS of R over the patches. Class-specific through the gradient.
- **Grad-CAM** (Selvaraju et al., ICCV 2017, Eq. 1–2): activations Z of a layer on the grid, w_c = mean over the grid
  of ∂y_t/∂Z_c, map = relu(Σ_c w_c Z_c). On a ViT, Z is LN(x) entering the last block (the layer pytorch-grad-cam's
  ViT example uses: after the last block the patch tokens no longer reach CLS, so their gradient would be zero). On
  Swin, the last stage's tokens before the final LayerNorm; on MobileViT, the feature map after the last 1×1
  expansion. Both classifiers average those positions, so Grad-CAM there is close to CAM (Zhou et al. 2016).

Faithfulness (Petsiuk et al., RISE, BMVC 2018, §4.1): rank the patches by a map, then **deletion** removes the top
k % and tracks the class probability (a faithful map makes it fall fast: low area), **insertion** starts from an
empty image and adds the top k % (a faithful map makes it rise fast: high area). On a ViT the patch tokens are
removed from the sequence after E_pos was added, each kept token keeping its own position (MAE's encoder, He et al.
2022, §3); "empty" is CLS and the registers alone. On Swin and MobileViT, whose windows and convolutions need the
full grid, a removed cell's pixels are replaced by a blurred copy of the image (RISE's insertion). Random rankings
are the baseline: a map is only informative where it beats their band (Wu et al., SaCo, CVPR 2024).

Logit lens (nostalgebraist 2020, for GPT-2; ViT-Explainer 2026 for one ViT): the classifier applied to the CLS token
after every layer through the final LayerNorm, as the last layer's output is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import rollout_layer, rollout_row
from .i18n import N_
from .models.swin import stage_grids
from .trace import trace, trace_gradients

VIT_METHODS = ("attention", "rollout", "grad_rollout", "gradcam")
FEATURE_METHODS = ("gradcam",)  # Swin and MobileViT: windowed or per-offset attention has no CLS row to read
METHOD_NAMES = {"attention": N_("CLS attention (last layer)"), "rollout": N_("Attention rollout"),  # shown through _()
                "grad_rollout": N_("Gradient rollout"), "gradcam": N_("Grad-CAM")}
STEPS = tuple(range(0, 101, 10))  # k: percent of the patches removed (deletion) or put back (insertion)
SEEDS = 5  # random rankings behind the baseline band (each costs as much as one method)
BLUR_SIGMA = 8.0  # px: what a removed Swin or MobileViT cell shows instead (RISE used σ = 5 at 224 px)
_BATCH_TOKENS = 1 << 14  # tokens (or images × 256) per forward of the deletion batches: bounds the memory


@dataclass(frozen=True, eq=False)
class Explanation:
    """The maps of one image for one class. Read-only: the app shares it between sessions."""

    target: int  # the class explained
    grid: tuple[int, int]  # (gh, gw) of the maps
    maps: dict[str, np.ndarray]  # method -> (gh, gw) float64 ≥ 0, in the method's own units
    logits: Tensor  # (classes,) of the unmodified image

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods mapped, in drawing order."""
        return tuple(self.maps)

    @property
    def stacked(self) -> np.ndarray:
        """Every map: (methods, gh, gw)."""
        return np.stack([self.maps[m] for m in self.maps])

    @property
    def agreement(self) -> np.ndarray:
        """Spearman's rank correlation between every two maps: (methods, methods), 1 on the diagonal.

        The patches are ranked as `ranking` orders them (ties in raster order), so equal values never average."""
        order = [rank_positions(v) for v in self.maps.values()]
        return np.array([[np.corrcoef(a, b)[0, 1] for b in order] for a in order])


def normalised(values: np.ndarray) -> np.ndarray:
    """A map scaled to 0…1 by its own minimum and maximum (the methods' units differ; a constant map becomes 0): what
    the page draws and describes."""
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def grad_cam(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM from one layer on the grid: activations and gradients (N, C) -> (N,) = relu(Z · mean_N(∂y/∂Z))."""
    weights = gradients.mean(dim=0)  # (C,)
    return (activations @ weights).clamp(min=0)


def gradient_rollout(probs: Sequence[Tensor], grads: Sequence[Tensor], query: int = 0) -> Tensor:
    """Row `query` of Chefer et al.'s R = Π_b (I + Ā_b), Ā_b = mean_heads(relu(∂y/∂A_b ⊙ A_b)).

    probs, grads: per layer (heads, T, T), first layer first -> (T,). Evaluated as a row times matrices, last layer
    first (`rollout_row`), so the T × T product is never formed.
    """
    def step(j: int) -> Tensor:
        factor = (grads[j] * probs[j]).clamp(min=0).mean(dim=0)  # (T, T)
        factor.diagonal().add_(1.0)
        return factor

    return rollout_row(step, len(probs), query)


def explain_vit(model: nn.Module, pixel_values: Tensor, target: int) -> Explanation:
    """Every ViT map for class `target` from one forward and one backward pass: pixel_values (1, C, H, W)."""
    depth, prefix, p = len(model.blocks), model.config.prefix, model.config.patch_size
    grid = (pixel_values.shape[-2] // p, pixel_values.shape[-1] // p)
    last = f"blocks.{depth - 1}.attn_input"
    traced = trace_gradients(model, pixel_values[:1], lambda out: out.logits[0, target],
                             include=["blocks.*.attn.probs", last])
    probs = [traced.records[f"blocks.{i}.attn.probs"][0] for i in range(depth)]  # (heads, T, T)
    grads = [traced.gradients[f"blocks.{i}.attn.probs"][0] for i in range(depth)]
    maps = {
        "attention": probs[-1][:, 0, prefix:].mean(dim=0),
        "rollout": rollout_row(lambda j: rollout_layer(probs[j], prefix=prefix), depth)[prefix:],
        "grad_rollout": gradient_rollout(probs, grads)[prefix:],
        "gradcam": grad_cam(traced.records[last][0, prefix:], traced.gradients[last][0, prefix:]),
    }
    return Explanation(target, grid, {k: v.double().reshape(grid).cpu().numpy() for k, v in maps.items()},
                       traced.output.logits[0])


def feature_grid(model: nn.Module, height: int, width: int) -> tuple[int, int]:
    """(h, w) of the map Grad-CAM reads on a Swin (its last stage) or a MobileViT (its `features`)."""
    cfg = model.config
    if hasattr(cfg, "depths") and hasattr(cfg, "window_size"):  # Swin: its last stage's grid
        return stage_grids(height, width, cfg.patch_size, len(cfg.depths))[-1]
    return -(-height // 32), -(-width // 32)  # MobileViT: five stride-2 steps


def _feature_tap(model: nn.Module) -> str:
    if hasattr(model, "features"):
        return "features"
    last = len(model.stages) - 1
    return f"stages.{last}.blocks.{len(model.stages[last].blocks) - 1}.out"


def explain_features(model: nn.Module, pixel_values: Tensor, target: int, **forward_kwargs) -> Explanation:
    """Grad-CAM of a Swin or MobileViT for class `target` on its last feature map: pixel_values (1, C, H, W)."""
    tap = _feature_tap(model)
    traced = trace_gradients(model, pixel_values[:1], lambda out: out.logits[0, target], include=tap, **forward_kwargs)
    z, g = traced.records[tap][0], traced.gradients[tap][0]
    if z.ndim == 3:  # MobileViT (C, h, w) -> (h·w, C); Swin's tokens are (h·w, C) already
        z, g = z.flatten(1).T, g.flatten(1).T
    grid = feature_grid(model, *pixel_values.shape[-2:])
    cam = grad_cam(z, g)
    return Explanation(target, grid, {"gradcam": cam.double().reshape(grid).cpu().numpy()}, traced.output.logits[0])


def is_vit(model: nn.Module) -> bool:
    """Whether the classifier reads a CLS token through blocks of global attention (every map and the logit lens),
    not a pooled feature map (Swin, MobileViT: Grad-CAM only, cells blurred instead of tokens removed)."""
    return hasattr(model, "blocks")


def explain(model: nn.Module, pixel_values: Tensor, target: int) -> Explanation:
    """Every map the model allows for class `target`: pixel_values (1, C, H, W) (`explain_vit` or
    `explain_features`)."""
    if is_vit(model):
        return explain_vit(model, pixel_values, target)
    return explain_features(model, pixel_values, target)


# heads × layers × T² attention numbers that the backward pass keeps twice (probabilities and their gradients):
# ViT-B at 384 px (577 tokens) is about 48 M, 190 MB each; beyond it the page asks for a lower resolution.
ATTENTION_BUDGET = 48_000_000


def tokens_over_budget(model: nn.Module, pixel_values: Tensor) -> int | None:
    """The tokens a ViT reads from pixel_values (1, C, H, W) when the gradients of all its attention maps would pass
    ATTENTION_BUDGET, else None (also for Swin and MobileViT, whose attention is windowed or per offset)."""
    if not is_vit(model):
        return None
    cfg = model.config
    tokens = (pixel_values.shape[-2] // cfg.patch_size) * (pixel_values.shape[-1] // cfg.patch_size) + cfg.prefix
    return tokens if cfg.heads * cfg.depth * tokens**2 > ATTENTION_BUDGET else None


@dataclass(frozen=True)
class Prediction:
    """The classifier's most probable classes for one image, the ones a student may ask to explain."""

    classes: tuple[int, ...]  # class indices, the most probable first
    probabilities: tuple[float, ...]  # their softmax probabilities
    labels: tuple[str, ...]  # their names


def predict(model: nn.Module, pixel_values: Tensor, k: int = 5) -> Prediction:
    """The k most probable classes of pixel_values (1, C, H, W), from one forward pass without attention maps."""
    with torch.inference_mode():
        logits = model(pixel_values[:1], output_attentions=False).logits[0].float().cpu()
    top = logits.softmax(-1).topk(k)
    labels = model.config.labels
    return Prediction(tuple(top.indices.tolist()), tuple(top.values.tolist()),
                      tuple(labels[i] for i in top.indices.tolist()))


def logit_lens(model: nn.Module, pixel_values: Tensor) -> Tensor:
    """The classifier read after every layer: pixel_values (1, C, H, W) -> logits (L, classes).

    Layer l's logits are head(pool(LN(z_l))) with the model's final LayerNorm and pooling (CLS, or [CLS; patch mean]
    for DINOv2), so the last row equals the model's own logits.
    """
    depth = len(model.blocks)
    traced = trace(model, pixel_values[:1], include="blocks.*.out")
    hidden = torch.cat([traced[f"blocks.{i}.out"] for i in range(depth)])  # (L, T, D)
    with torch.inference_mode():
        return model.head(model.pooled(model.norm(hidden)))


def ranking(values: np.ndarray | Tensor) -> Tensor:
    """Patch indices from the most to the least important by a map: (gh, gw) or (N,) -> (N,) long.

    Ties keep raster order (a stable sort), so a constant map ranks like no map at all.
    """
    flat = torch.as_tensor(np.asarray(values, dtype=np.float64)).flatten()
    return torch.sort(flat, descending=True, stable=True).indices


def rank_positions(values: np.ndarray) -> np.ndarray:
    """Each patch's place in `ranking`'s order, 0 = most important: (gh, gw) or (N,) -> (N,)."""
    return np.argsort(np.argsort(-np.asarray(values).ravel(), kind="stable"))


def random_rankings(n: int, seeds: int = SEEDS) -> Tensor:
    """`seeds` random orders of n patches, the same on every run: (seeds, n) long."""
    return torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(seed)) for seed in range(seeds)])


def counts(n: int, steps: Sequence[int] = STEPS) -> list[int]:
    """How many of n patches k % is, for each k of `steps`."""
    return [round(k * n / 100) for k in steps]


def _kept_sets(rankings: Tensor, steps: Sequence[int]) -> dict[int, list[tuple[int, int, int, Tensor]]]:
    """For every count of kept patches, the (ranking, curve, step, kept indices) that keep that many.

    Curve 0 is deletion (the top c removed), curve 1 insertion (only the top c kept). Grouping by the count lets all
    rankings and both curves run together in batches of one sequence length; the full and the empty input are the
    same for every ranking and appear once.
    """
    n = rankings.shape[1]
    jobs: dict[int, list] = {}
    for m, order in enumerate(rankings):
        for s, c in enumerate(counts(n, steps)):
            jobs.setdefault(n - c, []).append((m, 0, s, order[c:]))
            jobs.setdefault(c, []).append((m, 1, s, order[:c]))
    return jobs


def _curves(rankings: Tensor, steps: Sequence[int], run, batch_size) -> Tensor:
    """Drive deletion and insertion: `run(kept)` maps a list of kept-index tensors (all of one length) to class
    probabilities (len, classes); `batch_size(count)` bounds a batch. -> (M, 2, K, classes)."""
    n, out = rankings.shape[1], None
    for count, items in _kept_sets(rankings, steps).items():
        unique = items[:1] if count in (0, n) else items
        size = max(1, batch_size(count))
        probs = torch.cat([run([idx for *_job, idx in unique[i:i + size]]) for i in range(0, len(unique), size)])
        if out is None:
            out = torch.empty(rankings.shape[0], 2, len(steps), probs.shape[-1])
        for i, (m, curve, s, _kept) in enumerate(items):
            out[m, curve, s] = probs[i if len(unique) == len(items) else 0]
    return out


def token_curves(model: nn.Module, pixel_values: Tensor, rankings: Tensor, steps: Sequence[int] = STEPS) -> Tensor:
    """Deletion and insertion on a ViT by removing patch tokens: class probabilities (M, 2, K, classes).

    pixel_values (1, C, H, W), rankings (M, N) patch orders -> [m, 0, s] the probabilities with the top steps[s] %
    of ranking m removed, [m, 1, s] with only those kept. Tokens are dropped from z_0 after E_pos was added; CLS and
    the registers always stay. Every count of kept tokens is one batch (chunked to bound the memory).
    """
    prefix = model.config.prefix
    with torch.inference_mode():
        sequence = model.embed(pixel_values[:1])[0]  # (T, D)
        front, patches = sequence[:prefix], sequence[prefix:]

        def run(kept: list[Tensor]) -> Tensor:
            index = torch.stack([idx.sort().values for idx in kept]).to(patches.device)  # (B, count)
            batch = torch.cat([front.expand(len(kept), -1, -1), patches[index]], dim=1)  # (B, prefix+count, D)
            return model.encode(batch).logits.float().softmax(-1).cpu()

        return _curves(rankings, steps, run, lambda count: _BATCH_TOKENS // (count + prefix))


def blur(pixel_values: Tensor, sigma: float = BLUR_SIGMA) -> Tensor:
    """Gaussian blur of every channel, reflected at the borders: (b, C, H, W) -> (b, C, H, W).

    Linear with weights summing to one, so blurring normalised pixels equals normalising blurred pixels.
    """
    radius = int(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=pixel_values.dtype, device=pixel_values.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c, (h, w) = pixel_values.shape[1], pixel_values.shape[-2:]
    pad_h, pad_w = min(radius, h - 1), min(radius, w - 1)  # reflection needs a pad smaller than the side
    out = F.pad(pixel_values, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    out = F.conv2d(out, kernel[radius - pad_w: radius + pad_w + 1].view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel[radius - pad_h: radius + pad_h + 1].view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def cell_masks(grid: tuple[int, int], height: int, width: int) -> Tensor:
    """Which pixels each cell of a (gh, gw) grid covers, the image split as evenly as integers allow: (N, H, W) bool."""
    rows = torch.linspace(0, height, grid[0] + 1).round().long().tolist()
    cols = torch.linspace(0, width, grid[1] + 1).round().long().tolist()
    masks = torch.zeros(grid[0] * grid[1], height, width, dtype=torch.bool)
    for r in range(grid[0]):
        for c in range(grid[1]):
            masks[r * grid[1] + c, rows[r]:rows[r + 1], cols[c]:cols[c + 1]] = True
    return masks


def pixel_curves(model: nn.Module, pixel_values: Tensor, rankings: Tensor, grid: tuple[int, int],
                 steps: Sequence[int] = STEPS, **forward_kwargs) -> Tensor:
    """Deletion and insertion on a Swin or MobileViT by blurring cells: class probabilities (M, 2, K, classes).

    pixel_values (1, C, H, W), rankings (M, gh·gw) cell orders over `grid` -> as `token_curves`, but a removed cell
    shows the blurred image (`blur`) and insertion starts from the whole image blurred.
    """
    image = pixel_values[:1]
    blurred = blur(image)
    masks = cell_masks(grid, *image.shape[-2:]).to(image.device)

    def run(kept: list[Tensor]) -> Tensor:
        shown = torch.stack([masks[idx].any(dim=0) for idx in kept])[:, None]  # (B, 1, H, W): original pixels
        batch = torch.where(shown, image, blurred)  # (B, C, H, W)
        return model(batch, output_attentions=False, **forward_kwargs).logits.float().softmax(-1).cpu()

    with torch.inference_mode():
        return _curves(rankings, steps, run, lambda count: 16)


def area(curve: np.ndarray | Tensor, steps: Sequence[int] = STEPS) -> np.ndarray:
    """Area under probability curves over the fraction k/100 (trapezoids): (..., K) -> (...)."""
    y = np.asarray(curve, dtype=np.float64)
    x = np.asarray(steps, dtype=np.float64) / 100
    return ((y[..., 1:] + y[..., :-1]) * np.diff(x) / 2).sum(axis=-1)


@dataclass(frozen=True)
class Verdict:
    """One method's deletion or insertion area against the random band, on one image."""

    auc: float  # area under the method's curve
    random_mean: float  # mean area of the random rankings
    random_std: float  # their standard deviation (ddof = 1)
    beats: bool  # outside the band on the faithful side: below mean − 2σ (deletion) or above mean + 2σ (insertion)


def verdict(auc: float, random_aucs: np.ndarray, curve: int) -> Verdict:
    """Compare one area with the random areas; curve 0 is deletion (lower is better), 1 insertion (higher)."""
    mean, std = float(np.mean(random_aucs)), float(np.std(random_aucs, ddof=1))
    beats = auc < mean - 2 * std if curve == 0 else auc > mean + 2 * std
    return Verdict(float(auc), mean, std, bool(beats))


def curves(model: nn.Module, pixel_values: Tensor, rankings: Tensor, grid: tuple[int, int]) -> Tensor:
    """Deletion and insertion for rankings (M, gh·gw) over `grid`, tokens removed from a ViT (`token_curves`),
    cells blurred on a Swin or MobileViT (`pixel_curves`): class probabilities (M, 2, K, classes)."""
    if is_vit(model):
        return token_curves(model, pixel_values, rankings)
    return pixel_curves(model, pixel_values, rankings, grid)


def random_curves(model: nn.Module, pixel_values: Tensor, grid: tuple[int, int]) -> Tensor:
    """The random band's curves for every class at once (a class change reuses them): (SEEDS, 2, K, classes)."""
    return curves(model, pixel_values, random_rankings(grid[0] * grid[1]), grid)


@dataclass(frozen=True, eq=False)
class Faithfulness:
    """Every map of one class tested by deletion and insertion against the random band, on one image."""

    methods: tuple[str, ...]  # the maps tested, in the explanation's order
    curves: np.ndarray  # (M, 2, K) probability of the class: [m, 0] deletion, [m, 1] insertion, over STEPS
    random: np.ndarray  # (SEEDS, 2, K) the same for the random rankings
    verdicts: tuple[tuple[Verdict, Verdict], ...]  # per method: (deletion, insertion)

    @property
    def random_areas(self) -> np.ndarray:
        """(SEEDS, 2) areas of the random curves."""
        return area(self.random)

    @property
    def random_mean(self) -> np.ndarray:
        """(2,) mean random area of deletion and of insertion."""
        return self.random_areas.mean(axis=0)

    @property
    def random_std(self) -> np.ndarray:
        """(2,) their standard deviations (ddof = 1)."""
        return self.random_areas.std(axis=0, ddof=1)

    @property
    def beaten(self) -> tuple[str, ...]:
        """The methods that beat the random band on both curves."""
        return tuple(m for m, (d, i) in zip(self.methods, self.verdicts) if d.beats and i.beats)


def judge(methods: Sequence[str], method_curves: np.ndarray, random: np.ndarray) -> Faithfulness:
    """Each method's deletion and insertion area against the random ones: method_curves (M, 2, K) and random
    (S, 2, K) probabilities of one class."""
    ours, band = np.asarray(method_curves), np.asarray(random)
    random_areas = area(band)  # (S, 2)
    verdicts = []
    for areas in area(ours):  # (2,) per method
        verdicts.append((verdict(areas[0], random_areas[:, 0], 0), verdict(areas[1], random_areas[:, 1], 1)))
    return Faithfulness(tuple(methods), ours, band, tuple(verdicts))


def faithfulness(model: nn.Module, pixel_values: Tensor, explanation: Explanation, band: Tensor) -> Faithfulness:
    """Deletion and insertion of every map of `explanation` (its class), judged against `band`, the random curves of
    every class (`random_curves`, (SEEDS, 2, K, classes)): pixel_values (1, C, H, W)."""
    rankings = torch.stack([ranking(v) for v in explanation.maps.values()])  # (M, N)
    ours = curves(model, pixel_values, rankings, explanation.grid)[..., explanation.target]
    return judge(explanation.methods, ours.numpy(), band[..., explanation.target].numpy())


@dataclass(frozen=True, eq=False)
class LensReading:
    """The logit lens read for one class: when it becomes the answer."""

    target: int  # the class
    ranks: np.ndarray  # (L,) its rank after every layer, 1 = the most probable (ties count in its favour)
    first_top1: int | None  # 0-based first layer from which it stays the most probable to the end; None: never
    rows: tuple[int, ...]  # classes of the heatmap: the last layer's top 5, then the class if not among them
    row_probs: np.ndarray  # (len(rows), L) their probabilities after every layer
    final_probability: float  # its probability after the last layer (the model's own)

    @property
    def chosen(self) -> int:
        """The class's row in `rows`."""
        return self.rows.index(self.target)


@dataclass(frozen=True, eq=False)
class LogitLens:
    """The classifier's probabilities after every layer of one image. Read-only: the app shares it between
    sessions."""

    probs: np.ndarray  # (L, classes) softmax of `logit_lens`
    labels: tuple[str, ...]  # (classes,) the classes' names
    pool: str  # what the head reads: "cls" or "cls+mean" (DINOv2)

    @property
    def depth(self) -> int:
        return self.probs.shape[0]

    @property
    def top(self) -> np.ndarray:
        """(L, 5) the five most probable classes after every layer, the most probable first."""
        return np.argsort(-self.probs, axis=1)[:, :5]

    def read(self, target: int) -> LensReading:
        """The numbers and rows the lens shows for class `target`."""
        probs = self.probs
        final = [int(i) for i in np.argsort(-probs[-1])[:5]]
        rows = tuple(final + ([target] if target not in final else []))
        ranks = (probs > probs[:, [target]]).sum(axis=1) + 1
        first = next((layer for layer in range(self.depth) if ranks[layer:].max() == 1), None)
        return LensReading(target, ranks, first, rows, probs[:, list(rows)].T, float(probs[-1, target]))


def lens(model: nn.Module, pixel_values: Tensor) -> LogitLens:
    """`logit_lens` of pixel_values (1, C, H, W) as probabilities, for every class at once."""
    return LogitLens(logit_lens(model, pixel_values).float().softmax(-1).cpu().numpy(), tuple(model.config.labels),
                     model.config.pool)
