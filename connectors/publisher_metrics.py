"""The collector's NATS sink for Prometheus: what waits in memory and on disk (data/spill/nats)
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
    """The NATS sink's gauges and counters; `watch` points it at the running sink's stats.

    One per process (`PUBLISHER_METRICS`), registered with the default registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._stats: PublisherStats | None = None
        if registry is not None:
            registry.register(self)

    def watch(self, stats: PublisherStats) -> None:
        with self._lock:
            self._stats = stats

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            stats = self._stats
        if stats is None:
            return
        gauges = (
            ("marketprism_nats_spill_messages", "Messages waiting in spill files for NATS", stats.on_disk),
            ("marketprism_nats_spill_bytes", "Bytes of those spill files", stats.on_disk_bytes),
            ("marketprism_nats_buffered_messages", "Messages waiting in memory for NATS", stats.buffered),
        )
        counters = (
            ("marketprism_nats_published_messages", "Messages sent, retries included", stats.published),
            ("marketprism_nats_failures", "Failed connects and failed batches (sent again)", stats.failures),
            ("marketprism_nats_rejected_messages", "Messages refused for good, kept in rejected.records", stats.rejected),
        )
        for name, text, value in gauges:
            yield GaugeMetricFamily(name, text, value=value)
        for name, text, value in counters:
            yield CounterMetricFamily(name, text, value=value)


PUBLISHER_METRICS = PublisherMetrics(REGISTRY)
