"""Page faults of trace-like allocation rounds with glibc's default malloc settings and with the app's
(`vitviz.runtime.keep_freed_memory`), each round in a fresh interpreter per run so that runs do not share history.

A round keeps 16 × 4 MB tensors alive together and frees them, as a trace keeps its intermediates. With glibc's
defaults the freed memory goes back to the kernel and the next round page-faults it in again; with the app's
settings later rounds reuse it. Which rounds re-fault varies between runs (glibc's placement follows the history of
frees), which is why this is a benchmark and tests/test_runtime.py asserts only the settings' guarantees.

    python bench/bench_allocator.py [--runs 5] [--rounds 6]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from vitviz.runtime import bench_setup  # noqa: E402

ROUNDS = textwrap.dedent("""
    import resource, sys
    import torch
    from vitviz.runtime import keep_freed_memory

    torch.set_num_threads(1)  # every page fault on this thread, where RUSAGE_THREAD counts it
    if sys.argv[1] == "app":
        assert keep_freed_memory()

    def faults_of_one_round():
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        kept = [torch.ones(1 << 20) for _ in range(16)]
        del kept
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

    print(*[faults_of_one_round() for _ in range(int(sys.argv[2]))])
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    bench_setup()
    print(f"page faults per round (16 × 4 MB alive together, then freed; 16,384 pages = all of it), {args.runs} runs")
    for run in range(args.runs):
        for setting in ("defaults", "app"):
            out = subprocess.run([sys.executable, "-c", ROUNDS, setting, str(args.rounds)], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.split()
            print(f"run {run + 1}  {setting:<9}" + "".join(f"{int(n):>8}" for n in out), flush=True)


if __name__ == "__main__":
    main()
