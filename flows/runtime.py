"""Process-wide tuning for long-running flows."""

from __future__ import annotations

import gc

# Books of 5000 levels are hundreds of thousands of small, long-lived objects; with
# CPython's default thresholds a full collection walks them all every few seconds and
# stalls the worker for tens of milliseconds. Collect the young generation less often,
# and the old ones rarely: the sync engine creates no reference cycles on its hot path.
GC_THRESHOLDS = (50_000, 50, 100)


def tune_garbage_collector() -> None:
    gc.set_threshold(*GC_THRESHOLDS)

