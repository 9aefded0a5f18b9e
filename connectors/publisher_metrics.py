"""The collector's NATS sinks for Prometheus: what waits in memory and on disk (data/spill/nats*)
while NATS does not take it, and what the server refused or failed.

Read from the sink's own `PublisherStats` at scrape time, as the book metrics are. Non-zero
spill means NATS was away or too slow: the messages are safe on disk and go out in order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connectors.nats import PublisherStats


class PublisherMetrics(Collector):
    """The NATS sinks' gauges and counters, summed over the sinks `watch` was given (the
    collector has two: one for full books, encoded off the worker, and one for the rest).

    One per process (`PUBLISHER_METRICS`), registered with the default registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._stats: list[PublisherStats] = []
        if registry is not None:
            registry.register(self)

    def watch(self, *stats: PublisherStats) -> None:
        """Report these sinks from now on (instead of any watched before)."""
        with self._lock:
            self._stats = list(stats)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            watched = list(self._stats)
        if not watched:
            return

        def total(field: str) -> int:
            return sum(getattr(stats, field) for stats in watched)

        gauges = (
            ("marketprism_nats_spill_messages", "Messages waiting in spill files for NATS", total("on_disk")),
            ("marketprism_nats_spill_bytes", "Bytes of those spill files", total("on_disk_bytes")),
            ("marketprism_nats_buffered_messages", "Messages waiting in memory for NATS", total("buffered")),
        )
        counters = (
            ("marketprism_nats_published_messages", "Messages sent, retries included", total("published")),
            ("marketprism_nats_failures", "Failed connects and failed batches (sent again)", total("failures")),
            ("marketprism_nats_rejected_messages", "Messages refused for good, kept in rejected.records",
             total("rejected")),
        )
        for name, text, value in gauges:
            yield GaugeMetricFamily(name, text, value=value)
        for name, text, value in counters:
            yield CounterMetricFamily(name, text, value=value)


PUBLISHER_METRICS = PublisherMetrics(REGISTRY)
