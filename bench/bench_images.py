"""Decoding time of `vitviz.load_image`: every case of the bad-input corpus (tests/corpus.py), a 24-megapixel
camera JPEG (decoded at a reduced DCT scale) and header-only decompression bombs (refused before decoding).

    python bench/bench_images.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from vitviz.runtime import bench_setup  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    fn()  # the first call pays for lazy imports
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def camera_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    arr = np.linspace(0, 200, 4000, dtype=np.float32)[:, None, None] + rng.normal(0, 12, (4000, 6000, 3))
    out = io.BytesIO()
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    bench_setup()
    from tests.corpus import cases, png_header_only
    from vitviz import ImageError, load_image

    def attempt(data: bytes):
        try:
            load_image(data)
        except ImageError:
            pass

    rows = [("24 MP camera JPEG (6000 × 4000)", camera_jpeg()),
            ("100 MP PNG header (bomb)", png_header_only(10_000, 10_000))]
    rows += [(f"corpus: {case.name}", case.data) for case in cases()]
    print(f"{'input':<48}{'median ms':>10}")
    for name, data in rows:
        print(f"{name:<48}{median_ms(lambda: attempt(data), args.repeats):>10.1f}", flush=True)


if __name__ == "__main__":
    main()
