"""Process-wide tuning and signals for long-running flows."""

from __future__ import annotations

import gc
import logging
import signal
import threading

log = logging.getLogger("marketprism")

# Books of 5000 levels are hundreds of thousands of small, long-lived objects; with
# CPython's default thresholds a full collection walks them all every few seconds and
# stalls the worker for tens of milliseconds. Collect the young generation less often,
# and the old ones rarely: the sync engine creates no reference cycles on its hot path.
GC_THRESHOLDS = (50_000, 50, 100)


def tune_garbage_collector() -> None:
    gc.set_threshold(*GC_THRESHOLDS)



def set_on_sigterm(what: str) -> threading.Event:
    """An event SIGTERM sets, so a flow ends in order (its sinks flushed) instead of dying
    with what they hold; `what` is logged when it comes."""
    event = threading.Event()

    def handler(signum: int, frame: object) -> None:
        log.info("SIGTERM: %s", what)
        event.set()

    signal.signal(signal.SIGTERM, handler)
    return event
