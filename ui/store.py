"""A store of expensive model runs shared by every session of the server, bounded in bytes, with background
prefetch. Streamlit's own caches cannot serve here: `st.cache_data` pickles every value it returns (a Swin stage run
holds megabytes of arrays), and neither lets a page compute the next slider step in the background."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict


class RunStore:
    """Runs by key, shared by all sessions; least recently used dropped first once they hold more than `budget`
    bytes (the newest is always kept). Each key is computed once: a second caller of the same key waits for the
    first. Callers of other keys do not wait (`vitviz.trace` records per thread, so traces of the shared model may
    run side by side) unless `one_at_a_time`: for runs that use every core, where two at once only slow each other
    down. Lookups of stored runs never wait."""

    def __init__(self, budget: int, one_at_a_time: bool = False):
        self.budget, self.items = budget, OrderedDict()
        self.lock = threading.Lock()
        self.serial = threading.Lock() if one_at_a_time else None
        self.computing: dict[str, threading.Lock] = {}
        self.prefetching = threading.Lock()

    def lookup(self, key: str):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def get(self, key: str, make):
        found = self.lookup(key)
        if found is not None:
            return found
        with self.lock:
            computing = self.serial or self.computing.setdefault(key, threading.Lock())
        with computing:
            found = self.lookup(key)
            if found is not None:
                return found
            try:
                value = make()
            except BaseException:
                with self.lock:  # a waiting caller of the key then tries itself; a failed key leaves nothing behind
                    self.computing.pop(key, None)
                raise
            with self.lock:
                self.items[key] = value
                self.computing.pop(key, None)
                while len(self.items) > 1 and sum(v.nbytes for v in self.items.values()) > self.budget:
                    self.items.popitem(last=False)
            return value

    def prefetch(self, jobs: list[tuple[str, object]], quiet) -> None:
        """Compute the (key, make) jobs not stored yet, in order, in one background thread — unless a prefetch is
        already running, and only while `quiet()` holds before each job. The page asks for the runs of M − 1 and
        M + 1 after drawing M: a slider step then finds its model run ready and only draws. On a busy server (a
        class of thirty) a guess about the next step would take CPU from runs that students are waiting for."""
        if not quiet() or not self.prefetching.acquire(blocking=False):
            return

        def work() -> None:
            try:
                # Lowest CPU priority (Linux nices single threads) for the rest of a job once a student's run starts
                # meanwhile. torch runs small ops in this very thread.
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            except (AttributeError, OSError):
                pass
            try:
                for key, make in jobs:
                    if not quiet():
                        return
                    if self.lookup(key) is None:
                        self.get(key, make)
            except Exception:  # noqa: BLE001 - a failed prefetch only means the run happens on demand
                pass
            finally:
                self.prefetching.release()

        # not a daemon: at exit the interpreter waits for the run in progress (a daemon thread killed inside torch
        # aborts the process)
        threading.Thread(target=work, name="run-store-prefetch", daemon=False).start()
