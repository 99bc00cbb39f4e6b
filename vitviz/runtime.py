"""Process-wide CPU and memory settings for serving the models, and the host line every benchmark prints first.

Denormal floats (below ~1.2e-38 in float32) are many times slower on x86 cores than normal ones. They arise in
these models whatever the weights: Swin's −100 shift mask gives exp(−100 − max) ≈ 1e-44 in every masked pair of
every shifted window, and transformers' initialisation (the MobileViT presets) leaves activations that decay into
them. On an Intel Xeon (AVX-512, AMX) MobileViT-XXS took 231 ms per forward without flushing and 27 ms with it;
Swin-T traced / untraced was 1.31 without and 1.09 with. `flush_denormals` makes every such value 0, the
standard setting for inference servers (x86's FTZ/DAZ bits); values above ~1.2e-38 are untouched, so parity with
transformers at 1e-4 is unaffected.

PyTorch's CPU performance tuning guide ("Switch memory allocator") recommends an allocator that reuses freed memory.
glibc's malloc instead hands freed blocks above a dynamic threshold back to the kernel; the next forward pass then
page-faults the same amount of fresh, zeroed memory in. A trace pays for that most, because it keeps every recorded
intermediate (MobileViT-XXS: 2 × 4 MB of stage-2 attention maps per image) and so can never reuse the freed blocks
of the layers before: on the 2-core machine it measured 1.16–1.24 × an untraced forward with glibc's defaults and
1.11–1.12 × with the thresholds below. Untraced forwards get faster too (MobileViT-XXS 21 → 19.5 ms).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import platform
import sys
import threading
import time

import torch

# mallopt parameters from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc refuses larger values on 64-bit (HEAP_MAX_SIZE / 2)


def flush_denormals() -> bool:
    """Flush denormal floats to zero in the calling thread and in every thread it starts later (x86 keeps the
    setting per thread; new threads inherit it). Returns False where the CPU has no such mode.

    The app calls it at the start of every script run: Streamlit runs each session's script in a thread of its own,
    started by the server's main thread, which never runs app code. Benchmarks call it once, before any thread.
    """
    return torch.set_flush_denormal(True)


def denormals_flushed() -> bool:
    """Whether arithmetic in the calling thread flushes denormal floats to zero."""
    return float(torch.full((1,), 1e-39) * 2) == 0.0


def host_line() -> str:
    """One line saying what the figures of a benchmark depend on: CPU model, its vector units, torch's thread
    count and whether denormals are flushed (the same code measured 10× apart between hosts through denormals)."""
    model, flags = platform.processor() or platform.machine(), set()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    avx512 = "yes" if any(f.startswith("avx512") for f in flags) else "no"
    amx = "yes" if any(f.startswith("amx") for f in flags) else "no"
    return (f"host: {model} · {os.cpu_count()} cores · AVX-512 {avx512} · AMX {amx} · torch capability "
            f"{torch.backends.cpu.get_cpu_capability()} · torch threads {torch.get_num_threads()} · flush denormals "
            f"{'on' if denormals_flushed() else 'off'} · torch {torch.__version__}")


def bench_setup(threads: int | None = None, flush: bool = True, malloc: bool = True) -> str:
    """What every bench/ script calls first: the app's process settings (denormals flushed, the app's allocator
    settings; `flush` / `malloc` False keep the defaults, for comparison), `threads` torch threads if given; then the
    host line, printed and returned."""
    if flush:
        flush_denormals()
    if malloc:
        keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    line = host_line()
    print(line, flush=True)
    return line


@functools.cache  # once per process: app.py runs on every rerun
def keep_freed_memory(trim_mb: int = 128, arenas: int = 2) -> bool:
    """Make glibc keep up to `trim_mb` MiB of freed memory per arena for reuse, serve blocks up to 32 MiB from it,
    and use at most `arenas` malloc arenas.

    Blocks above 32 MiB (a dino-vits8 attention map at 480 px is 311 MB) are still mapped and returned on free.
    glibc would otherwise open up to 8 arenas per core for the threads of concurrent sessions, each keeping its own
    freed memory; two arenas bound what is kept to 2 × `trim_mb`. Returns False, changing nothing, where the C
    library is not glibc (macOS, Windows, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; fixing either threshold also switches off glibc's dynamic adjustment.
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) and mallopt(_M_TRIM_THRESHOLD, trim_mb << 20)
                and mallopt(_M_ARENA_MAX, arenas))


@functools.cache  # once per process and `after`: app.py runs on every rerun
def freeze_loaded_objects(after: str = "") -> int:
    """Move every object alive now (the imported libraries: torch, streamlit, plotly, …) into the collector's
    permanent generation (`gc.freeze`, CPython ≥ 3.7). Returns how many objects that frozen generation holds.
    `after` names a library imported later, by some runs only (pandas: ~37,000 objects): the first call with it
    freezes that library too, with whatever else is alive at that moment (a few sessions' objects, once).

    Streamlit runs `gc.collect(2)` after every script run (`runner.postScriptGC`; this app replaces it with
    `CycleCollector`). A full collection walks every tracked object: with this app's imports about 300,000, measured
    at 215 ms per collection holding the GIL. Objects imported once for the life of the process never become
    garbage; frozen, they are no longer walked. No collection first: the imports leave about 20 objects of garbage,
    and a collection over all of them took 0.12 s of the first page's cold start.
    """
    gc.freeze()
    return gc.get_freeze_count()


class CycleCollector:
    """Full garbage collections at most once every `every_s` seconds, for a server that turns off Streamlit's
    collection after every run (`runner.postScriptGC = false` in .streamlit/config.toml).

    A full collection walks every tracked object created since `freeze_loaded_objects`: the sessions' state and the
    caches' figures grow to ~130,000 objects with 30 sessions, and the per-run collection then cost ~110 ms holding
    the GIL on every run (a quarter of the GIL's time under load). Reference cycles still come free within
    `every_s` (and Python's generational collector frees most earlier); everything without a cycle is freed by
    reference counting at once, as always.
    """

    def __init__(self, every_s: float = 10.0, clock=time.monotonic):
        self.every_s = every_s
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def maybe_collect(self) -> bool:
        """Collect fully if the last full collection is `every_s` old; True if this call collected. Sessions that
        finish at the same moment do not queue behind each other: only one of them collects."""
        if self._clock() - self._last < self.every_s or not self._lock.acquire(blocking=False):
            return False
        try:
            if self._clock() - self._last < self.every_s:
                return False
            gc.collect()
            self._last = self._clock()
            return True
        finally:
            self._lock.release()


COLLECTOR = CycleCollector()  # the server's: app.py calls COLLECTOR.maybe_collect() after every run
