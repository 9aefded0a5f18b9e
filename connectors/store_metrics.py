"""The store's figures for Prometheus: how far behind the streams it is, what it stored,
what failed, what waits on disk, and whether ClickHouse answers.

Like the collector's book metrics, the counters stay the store's own (`SourceStats` of the
JetStream source, `SinkStats` of the ClickHouse sink) and become metrics at scrape time,
so a scrape never waits on the dataflow. The lag is read from NATS (a `StoreLagMonitor`
every few seconds), not from the store's memory: it stays true while the store is stuck.
A lag reading older than `LAG_FRESH_S` is not served, so a store that cannot reach NATS
shows no lag rather than an old "up to date".

Labels are `stream` and `table`; no setting, URL or credential is ever a label or a value.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connectors.clickhouse import SinkStats
from connectors.jetstream_source import SourceStats
from connectors.store_lag import StoreLag

LAG_FRESH_S = 30.0


class StoreMetrics(Collector):
    """The store flow's counters and the latest lag reading; `watch` and `note_lag` are thread-safe.

    One per process (`STORE_METRICS`), registered with the default registry; `build_flow`
    of `flows.store` hands it the flow's stats.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._source: SourceStats | None = None
        self._sink: SinkStats | None = None
        self._lag: tuple[float, StoreLag] | None = None
        if registry is not None:
            registry.register(self)

    def watch(self, *, source: SourceStats, sink: SinkStats) -> None:
        with self._lock:
            self._source, self._sink = source, sink

    def note_lag(self, lag: StoreLag) -> None:
        with self._lock:
            self._lag = (time.monotonic(), lag)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            source, sink, lag = self._source, self._sink, self._lag
        if lag is not None and time.monotonic() - lag[0] <= LAG_FRESH_S:
            yield from _lag_families(lag[1])
        if source is not None:
            yield from _source_families(source)
        if sink is not None:
            yield from _sink_families(sink)


def _lag_families(lag: StoreLag) -> Iterator[Metric]:
    pending = GaugeMetricFamily(
        "marketprism_store_pending_messages", "Messages of the stream not delivered to the store yet", labels=["stream"]
    )
    unacked = GaugeMetricFamily(
        "marketprism_store_unacked_messages", "Messages delivered to the store and not acknowledged (not stored) yet",
        labels=["stream"],
    )
    seconds = GaugeMetricFamily(
        "marketprism_store_lag_seconds", "Age of the oldest message of the stream the store has not stored (0: none)",
        labels=["stream"],
    )
    for stream, one in sorted(lag.streams.items()):
        pending.add_metric([stream], one.pending)
        unacked.add_metric([stream], one.unacked)
        seconds.add_metric([stream], one.seconds)
    yield from (pending, unacked, seconds)


def _source_families(source: SourceStats) -> Iterator[Metric]:
    gaps = CounterMetricFamily(
        "marketprism_store_gaps", "Stretches the stream discarded before the store read them, stored as gap events",
        labels=["stream"],
    )
    lost = CounterMetricFamily(
        "marketprism_store_lost_messages", "Messages in those stretches (lost to storage, marked)", labels=["stream"]
    )
    for stream, n in sorted(dict(source.gaps).items()):
        gaps.add_metric([stream], n)
    for stream, n in sorted(dict(source.lost_messages).items()):
        lost.add_metric([stream], n)
    yield from (gaps, lost)


def _sink_families(sink: SinkStats) -> Iterator[Metric]:
    stored = CounterMetricFamily(
        "marketprism_store_stored_messages",
        "Stream messages in batches committed to ClickHouse (a batch inserted again after a restart counts again)",
        labels=["stream", "table"],
    )
    for (stream, table), n in sorted(dict(sink.stored_messages).items()):
        stored.add_metric([stream, table], n)
    rows = CounterMetricFamily("marketprism_store_inserted_rows", "Rows in committed batches", labels=["table"])
    for table, n in sorted(dict(sink.inserted_by_table).items()):
        rows.add_metric([table], n)
    batches = CounterMetricFamily("marketprism_store_batches_committed", "Batches ClickHouse confirmed", labels=["table"])
    for table, n in sorted(dict(sink.batches_by_table).items()):
        batches.add_metric([table], n)
    failures = CounterMetricFamily(
        "marketprism_store_insert_failures", "Failed connects and inserts; each is retried after a backoff"
    )
    failures.add_metric([], sink.failures)
    rejected = CounterMetricFamily(
        "marketprism_store_batches_rejected", "Batches ClickHouse refused for good, kept in spill/store/rejected"
    )
    rejected.add_metric([], sink.rejected)
    spill_batches = GaugeMetricFamily(
        "marketprism_store_spill_batches",
        "Batches on disk in spill/store: written before their insert, kept while ClickHouse is away",
    )
    spill_batches.add_metric([], sink.on_disk)
    spill_bytes = GaugeMetricFamily("marketprism_store_spill_bytes", "Bytes of those batches")
    spill_bytes.add_metric([], sink.on_disk_bytes)
    between_samples = CounterMetricFamily(
        "marketprism_store_features_not_kept",
        "Feature messages acked without a row: between the table's samples (MARKETPRISM_CLICKHOUSE_FEATURES_INTERVAL_MS)",
    )
    between_samples.add_metric([], sink.features_not_kept)
    no_table = CounterMetricFamily(
        "marketprism_store_messages_without_table", "Stream messages of a kind no table stores: acked, logged, not stored",
    )
    no_table.add_metric([], sink.no_table)
    yield from (stored, rows, batches, failures, rejected, spill_batches, spill_bytes, between_samples, no_table)
    if sink.connected is not None:
        up = GaugeMetricFamily("marketprism_store_clickhouse_up", "1 if the last connect or insert worked, else 0")
        up.add_metric([], 1.0 if sink.connected else 0.0)
        yield up


STORE_METRICS = StoreMetrics(REGISTRY)
