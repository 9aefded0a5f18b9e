"""Feeding the process's Prometheus figures from the collect dataflow.

MetricsSink — unit of parallelism: one stateless partition per worker (each book's
status comes from the worker that holds it); nothing to snapshot; delivery: at-most-once
(the counters are cumulative, the next update carries everything).
"""

from __future__ import annotations

import time
from functools import cache

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from prometheus_client import Histogram

from connectors.book_metrics import BOOK_METRICS, PUBLISH_LATENCY
from flows.steps import StatusUpdate
from schemas.events import BookDelta, BookFull, Kline, QualityEvent, Ticker, Trade

_KINDS: dict[type, str] = {
    BookDelta: "delta", BookFull: "full", Trade: "trade", Ticker: "ticker", Kline: "kline", QualityEvent: "quality",
}


@cache
def _latency_of(venue: str, kind: str) -> Histogram:
    """The histogram child of one venue and kind: `labels()` takes a lock and builds a key
    every call, and this runs for every published event on the worker."""
    return PUBLISH_LATENCY.labels(venue, kind)


def observe_latency(event: object) -> None:
    """Receive -> handed to the NATS sink, for every published event (run just before routing)."""
    kind = _KINDS.get(type(event))
    if kind is not None:
        _latency_of(event.venue, kind).observe((time.time_ns() - event.recv_ns) / 1e9)  # type: ignore[attr-defined]


class _MetricsPartition(StatelessSinkPartition[StatusUpdate]):
    def __init__(self, configured_depth: int) -> None:
        self._depth = configured_depth

    def write_batch(self, items: list[StatusUpdate]) -> None:
        for update in items:
            BOOK_METRICS.observe(
                update.key, update.stats, synced=update.synced, at_ns=update.at_ns, configured_depth=self._depth
            )


class MetricsSink(DynamicSink[StatusUpdate]):
    """Hands every book's status update to the process's Prometheus collector."""

    def __init__(self, configured_depth: int) -> None:
        self.configured_depth = configured_depth

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _MetricsPartition:
        return _MetricsPartition(self.configured_depth)
