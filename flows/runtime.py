"""Process-wide tuning for long-running flows."""

from __future__ import annotations

import gc
import sys

# Books of 5000 levels are hundreds of thousands of small, long-lived objects; with
# CPython's default thresholds a full collection walks them all every few seconds and
# stalls the worker for tens of milliseconds. Collect the young generation less often,
# and the old ones rarely: the sync engine creates no reference cycles on its hot path.
GC_THRESHOLDS = (50_000, 50, 100)


def tune_garbage_collector() -> None:
    gc.set_threshold(*GC_THRESHOLDS)


# A thread that wants the GIL waits this long before the holder is asked to let go
# (CPython's default: 5 ms). The collector's worker shares the GIL with the threads that
# decode REST answers, encode full books and publish; at 5 ms each of them could hold a
# message up for longer than the whole latency goal.
SWITCH_INTERVAL_S = 0.0005


# Live, a young-generation collection is a pause every message behind it waits for: at
# 50,000 objects it takes about 4 ms, at 10,000 under 1 ms. The objects that survive are
# few (book levels that replace others), so the middle generation stays small, and the
# full collections (all ~140,000 tracked objects of four 5000-level books, ~10 ms) come
# every 20 million allocations.
LIVE_GC_THRESHOLDS = (10_000, 20, 100)


def favour_the_worker() -> None:
    """Live collection: short collector pauses and short GIL turns (a replay keeps the
    throughput settings of `tune_garbage_collector`)."""
    gc.set_threshold(*LIVE_GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
