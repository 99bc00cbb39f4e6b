"""ui.store.RunStore: bounded in bytes, one computation per key, background prefetch only on a quiet server."""
from __future__ import annotations

import threading
import time

from ui.store import RunStore


class Run:
    def __init__(self, nbytes: int):
        self.nbytes = nbytes


def wait_prefetch(store: RunStore) -> None:
    for thread in threading.enumerate():
        if thread.name == "run-store-prefetch":
            thread.join(30)
    assert not store.prefetching.locked()


def test_least_recently_used_runs_go_first_once_over_budget_and_the_newest_always_stays():
    store = RunStore(budget=250)
    for key in "abc":
        store.get(key, lambda: Run(100))
    assert list(store.items) == ["b", "c"]
    store.get("b", lambda: Run(100))  # a hit moves b to the end
    store.get("d", lambda: Run(100))
    assert list(store.items) == ["b", "d"]
    store.get("huge", lambda: Run(1000))
    assert list(store.items) == ["huge"]


def test_concurrent_callers_of_one_key_compute_it_once_and_other_keys_do_not_wait():
    store = RunStore(budget=1 << 20)
    calls, started, release = [], threading.Event(), threading.Event()

    def slow():
        calls.append("slow")
        started.set()
        release.wait(10)
        return Run(1)

    results = []
    threads = [threading.Thread(target=lambda: results.append(store.get("k", slow))) for _ in range(3)]
    for t in threads:
        t.start()
    started.wait(10)
    t0 = time.monotonic()
    store.get("other", lambda: Run(1))  # while "k" is still being computed
    assert time.monotonic() - t0 < 1
    release.set()
    for t in threads:
        t.join(10)
    assert calls == ["slow"] and len(results) == 3 and all(r is results[0] for r in results)


def test_one_at_a_time_runs_other_keys_after_each_other():
    store = RunStore(budget=1 << 20, one_at_a_time=True)
    running, overlaps = [], []

    def make(key):
        def run():
            overlaps.append(bool(running))
            running.append(key)
            time.sleep(0.05)
            running.remove(key)
            return Run(1)
        return run

    threads = [threading.Thread(target=store.get, args=(k, make(k))) for k in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert overlaps == [False] * 4 and len(store.items) == 4


def test_prefetch_computes_the_missing_jobs_in_order_in_the_background():
    store = RunStore(budget=1 << 20)
    store.get("m7", lambda: Run(1))
    made = []

    def job(key):
        return key, lambda: made.append(key) or Run(1)

    store.prefetch([job("m8"), job("m7"), job("m6")], quiet=lambda: True)
    wait_prefetch(store)
    assert made == ["m8", "m6"]  # m7 was stored already
    assert store.lookup("m8") is not None and store.lookup("m6") is not None


def test_prefetch_never_starts_on_a_busy_server_and_stops_when_it_gets_busy():
    store = RunStore(budget=1 << 20)
    made = []
    store.prefetch([("a", lambda: made.append("a") or Run(1))], quiet=lambda: False)
    wait_prefetch(store)
    assert made == [] and store.lookup("a") is None

    busy = threading.Event()

    def first():
        made.append("b")
        busy.set()  # a student's run starts while the first guess runs
        return Run(1)

    store.prefetch([("b", first), ("c", lambda: made.append("c") or Run(1))], quiet=lambda: not busy.is_set())
    wait_prefetch(store)
    assert made == ["b"] and store.lookup("c") is None


def test_a_failing_prefetch_job_frees_the_prefetcher():
    store = RunStore(budget=1 << 20)

    def broken():
        raise RuntimeError("out of memory, say")

    store.prefetch([("x", broken)], quiet=lambda: True)
    wait_prefetch(store)
    store.prefetch([("y", lambda: Run(1))], quiet=lambda: True)
    wait_prefetch(store)
    assert store.lookup("y") is not None and store.lookup("x") is None


def test_a_run_that_raises_stores_nothing_and_leaves_no_lock_behind():
    store = RunStore(budget=1000)

    def fail():
        raise ValueError("bad input")

    for _ in range(3):
        try:
            store.get("bad", fail)
        except ValueError:
            pass
        else:
            raise AssertionError("the error must reach the caller")
    assert store.lookup("bad") is None and store.computing == {}
    assert store.get("bad", lambda: Run(10)).nbytes == 10  # a later call computes it
