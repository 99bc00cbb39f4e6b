"""The attention page's two tabs beyond the weight: what a layer or head change costs against one bare forward of the
same model, and what it sends to the browser.

For every ViT the sidebar offers (random weights of the same architecture: the cost does not depend on the values),
in one interleaved run: the median of a bare forward (`output_attentions=False`, the fused path), of
`query_key_map` (the joint picture: every head's normalisation, PCA and faithfulness) and of `contributions`
(Kobayashi's norms for the query and every token's share over all queries), each for a new layer and head. Then the
bytes a layer or head move sends: the joint map's Plotly JSON (what st.plotly_chart sends) and the contributions
tab's four JPEGs.

    python bench/bench_qk.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the figures are CPU figures

import torch  # noqa: E402

import vitviz  # noqa: E402
from vitviz import attention as att  # noqa: E402
from vitviz import attention_qk as qk  # noqa: E402
from vitviz.runtime import bench_setup  # noqa: E402
from vitviz.viz import attention as viz  # noqa: E402
from vitviz.viz.attention_qk import qk_figure  # noqa: E402
from vitviz.viz.encode import jpeg  # noqa: E402

from tests.apptest import photo_image  # noqa: E402
from ui.tabs.attention_qk import CONTRIB_PX  # noqa: E402

MODELS = (("dino-vits16", 224), ("deit-tiny", 224), ("vit-base-16", 224), ("dinov2-small", 224),
          ("dinov2-small-reg", 224), ("dino-vits8", 224), ("dinov2-small-reg", 518))


def ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(name: str, size: int, repeats: int) -> dict[str, float]:
    """Medians (ms) of a bare forward, the joint map and the contributions, interleaved; and the bytes sent."""
    model = vitviz.load_model(name, device="cpu")
    image = photo_image(size, size, seed=3)
    x = vitviz.preprocess(image, model.preprocessing) if size == 224 else torch.randn(1, 3, size, size)
    tr = att.trace_attention(model, x)
    depth, heads = tr.depth, tr.heads
    times = {"forward": [], "query_key_map": [], "contributions": []}
    with torch.inference_mode():
        model(x, output_attentions=False)  # warm-up
        for i in range(repeats):  # a new layer and head each time, so that nothing is reused
            layer, head = i % depth, (i * 5) % heads
            times["forward"].append(ms(lambda: model(x, output_attentions=False)))
            times["query_key_map"].append(ms(lambda: qk.query_key_map(tr, layer, head, tr.prefix + 7)))
            times["contributions"].append(ms(lambda: qk.contributions(model, tr, layer, head, tr.prefix + 7)))
    out = {key: statistics.median(values) for key, values in times.items()}
    view = qk.query_key_map(tr, depth - 1, 0, tr.prefix + 7)
    out["figure_kb"] = len(qk_figure(view, view.coloured_by("row"), colour_name="patch row", title="t").to_json()) / 1e3
    c = qk.contributions(model, tr, depth - 1, 0, tr.prefix + 7)
    display = image.resize((size, size)) if image.size != (size, size) else image
    base = viz.backdrop(display, model.config.patch_size, CONTRIB_PX)
    out["pictures_kb"] = sum(len(jpeg(viz.overlay(base, c.on_grid(v)))) for v in c.table.T) / 1e3
    out["tokens"] = tr.tokens
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    bench_setup()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU, {torch.get_num_threads()} torch threads, load average {load:.1f}; medians of {args.repeats}, ms")
    print(f"  {'model':<24} {'T':>5} {'forward':>8} {'q&k map':>8} {'ratio':>6} {'contrib.':>8} {'ratio':>6} "
          f"{'figure':>8} {'4 maps':>8}")
    for name, size in MODELS:
        r = measure(name, size, args.repeats)
        print(f"  {name + f' @ {size}':<24} {r['tokens']:5d} {r['forward']:8.1f} {r['query_key_map']:8.1f} "
              f"{r['query_key_map'] / r['forward']:6.2f} {r['contributions']:8.1f} "
              f"{r['contributions'] / r['forward']:6.2f} {r['figure_kb']:6.0f} kB {r['pictures_kb']:5.0f} kB",
              flush=True)


if __name__ == "__main__":
    main()
