"""Forward-pass speed of our modules vs transformers on the same checkpoint and input, measured in one run.

For each family: median time of our untraced forward (`output_attentions=False`: fused SDPA), our fully traced
forward (`vitviz.trace(model, x)`: every tap recorded, explicit softmax in every layer) and transformers' eager
forward with attentions (MobileViT has none). Ratios are what to compare on CPU (each the median of the ratios
within a round); absolute times only on a GPU.

    python bench/bench_models.py [--device cuda] [--repeats 15] [--threads 1] [--only dino-vits16 swin-tiny]
                                 [--glibc-malloc]

On Linux the process's allocator is set up as the app sets it up (`vitviz.runtime.keep_freed_memory`);
`--glibc-malloc` keeps glibc's defaults instead, for comparison.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import vitviz  # noqa: E402
from vitviz.runtime import bench_setup, keep_freed_memory  # noqa: E402


def hf_models():
    """(name, transformers model with the preset's architecture, input side, forward kwargs)."""
    from transformers import (MobileViTConfig, MobileViTForImageClassification, SwinConfig,
                              SwinForImageClassification, ViTConfig, ViTForImageClassification, ViTModel)

    eager = dict(attn_implementation="eager")
    with_attn = dict(output_attentions=True)
    yield "dino-vits16", ViTModel(ViTConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                            intermediate_size=1536, **eager), add_pooling_layer=False), 224, with_attn
    yield "deit-tiny", ViTForImageClassification(ViTConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3,
                                                           intermediate_size=768, num_labels=1000, **eager)), 224, with_attn
    yield "vit-base-16", ViTForImageClassification(ViTConfig(num_labels=1000, **eager)), 224, with_attn
    yield "swin-tiny", SwinForImageClassification(SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                                                             window_size=7, num_labels=1000, **eager)), 224, with_attn
    yield "mobilevit-xxs", MobileViTForImageClassification(MobileViTConfig(
        neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320], hidden_sizes=[64, 80, 96], expand_ratio=2.0, num_labels=1000)), 256, {}
    yield "mobilevit-s", MobileViTForImageClassification(MobileViTConfig(num_labels=1000)), 256, {}


def round_robin_ms(fns, repeats: int, device: torch.device) -> list[list[float]]:
    """Each function's time in every round, the functions measured one after the other in each round (in reverse
    order every other round), so that background load hits all alike and a ratio can be taken within a round.

    Wall time, except single-threaded on CPU: there the calling thread's CPU time, which time spent waiting for
    a core on a busy machine does not inflate.
    """
    clock = time.thread_time if device.type == "cpu" and torch.get_num_threads() == 1 else time.perf_counter
    for fn in fns:
        for _ in range(2):
            fn()
    times = [[] for _ in fns]
    for round_ in range(repeats):
        order = list(zip(fns, times))
        for fn, bucket in order if round_ % 2 == 0 else order[::-1]:  # no function always first, or always last
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = clock()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            bucket.append((clock() - start) * 1000)
    return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of the ratio within each round: a slow spell of a shared machine (other tenants' memory
    traffic slows even the thread's CPU time) scales both sides of a round alike, where it can fall on one
    side's median and not the other's."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", nargs="*", help="preset names to run")
    parser.add_argument("--glibc-malloc", action="store_true", help="keep glibc's default malloc thresholds")
    parser.add_argument("--keep-denormals", action="store_true", help="do not flush denormal floats to zero")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (1 gives stable figures on a busy machine)")
    args = parser.parse_args()
    bench_setup(args.threads, flush=not args.keep_denormals, malloc=not args.glibc_malloc)
    tuned = not args.glibc_malloc and keep_freed_memory()
    device = vitviz.models.common.pick_device(args.device)
    clock = "thread CPU time" if device.type == "cpu" and torch.get_num_threads() == 1 else "wall time"
    print(f"device {device} · torch {torch.__version__} · {torch.get_num_threads()} threads · median {clock} of {args.repeats}"
          f" · malloc {'as the app sets it (keep_freed_memory)' if tuned else 'defaults'}")
    print(f"{'model':<15}{'ours untraced ms':>18}{'ours traced ms':>16}{'transformers ms':>17}{'untraced/tf':>13}{'traced/untraced':>17}")
    for name, reference, side, kwargs in hf_models():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            reference.save_pretrained(tmp)
            ours = vitviz.load_model(tmp, device=device)
        reference = reference.eval().to(device)
        x = torch.randn(1, 3, side, side, device=device)
        with torch.inference_mode():
            untraced, traced, theirs = round_robin_ms(
                [lambda: ours(x, output_attentions=False), lambda: vitviz.trace(ours, x), lambda: reference(x, **kwargs)],
                args.repeats, device)
        ms = [statistics.median(t) for t in (untraced, traced, theirs)]
        print(f"{name:<15}{ms[0]:>18.1f}{ms[1]:>16.1f}{ms[2]:>17.1f}{paired_ratio(untraced, theirs):>13.2f}"
              f"{paired_ratio(traced, untraced):>17.2f}", flush=True)


if __name__ == "__main__":
    main()
