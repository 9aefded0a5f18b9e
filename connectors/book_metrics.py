"""Per-book figures for Prometheus, from the counters book_sync hands over every second.

The sync machines keep cumulative counters (`BookStats`); this collector keeps the latest
of them per book and turns them into metrics at scrape time, so a scrape never waits on
the dataflow and the counters stay exactly the engine's. Beside the raw counters it
exports the plan's own success figures as ratios, with their targets:

| metric | target |
|---|---|
| `marketprism_snapshot_success_ratio` | > 0.99 |
| `marketprism_update_loss_ratio` | < 0.001 |
| `marketprism_checksum_pass_ratio` | > 0.99 |
| `marketprism_depth_completeness_ratio` | > 0.95 |
| `marketprism_publish_latency_seconds` (histogram) | P95 < 0.1 s |

Labels are `venue` and `symbol`; no setting, URL or credential is ever a label or a value.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.events import BookStats

# Counters of BookStats exported one for one: (field, metric name, help).
_COUNTERS = (
    ("messages", "marketprism_book_messages", "Depth messages handled (diffs, snapshots, rejected ones)"),
    ("updates_applied", "marketprism_book_updates_applied", "Book updates applied"),
    ("levels_applied", "marketprism_book_levels_applied", "Price levels applied"),
    ("snapshots", "marketprism_book_snapshots", "Snapshots that (re)synced the book"),
    ("resyncs", "marketprism_book_resyncs", "Times the book was dropped and a resync asked for"),
    ("gaps", "marketprism_book_gaps", "Sequence gaps detected"),
    ("checksums_verified", "marketprism_book_checksums_verified", "OKX checksums that matched"),
    ("checksum_failures", "marketprism_book_checksum_failures", "OKX checksums that did not match"),
    ("checksums_unverified", "marketprism_book_checksums_unverified", "OKX messages with checksum 0 or none"),
    ("crossed", "marketprism_book_crossed", "Times the book was crossed"),
    ("rejected", "marketprism_book_rejected", "Messages refused as malformed or absurd"),
    ("audits_passed", "marketprism_book_audits_passed", "Binance audits against a fresh snapshot that agreed"),
    ("audit_failures", "marketprism_book_audit_failures", "Binance audits that found the book different"),
    ("watchdog_actions", "marketprism_book_watchdog_actions", "Times the watchdog asked the source to act again"),
    ("trades", "marketprism_book_trades", "Trades passed through"),
)
# OKX `books` maintains 400 levels: that is what its live book can be complete to.
OKX_LIVE_LEVELS = 400
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


PUBLISH_LATENCY = Histogram(
    "marketprism_publish_latency_seconds",
    "From receiving an exchange message to handing what it produced to the NATS sink",
    ["venue", "kind"], buckets=LATENCY_BUCKETS,
)


@dataclass(slots=True)
class _Book:
    stats: BookStats
    synced: bool
    state_since_s: float
    read_at_s: float
    configured_depth: int


class BookMetrics(Collector):
    """The latest counters per book as Prometheus metrics; `observe` is thread-safe.

    One per process (`BOOK_METRICS`), registered with the default registry, like the
    source counters of `connectors.metrics`.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._books: dict[str, _Book] = {}
        if registry is not None:
            registry.register(self)

    def observe(self, key: str, stats: BookStats, *, synced: bool, at_ns: int, configured_depth: int) -> None:
        """Keep a book's latest counters (and when it last changed state)."""
        at_s = at_ns / 1e9
        with self._lock:
            previous = self._books.get(key)
            since = previous.state_since_s if previous is not None and previous.synced == synced else at_s
            self._books[key] = _Book(stats, synced, since, at_s, configured_depth)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            books = dict(self._books)
        labels = ["venue", "symbol"]
        synced = GaugeMetricFamily("marketprism_book_synced", "1 while the book is in sync, else 0", labels=labels)
        since = GaugeMetricFamily(
            "marketprism_book_state_since_seconds", "Unix time at which the book entered its current state", labels=labels
        )
        age = GaugeMetricFamily(
            "marketprism_book_last_update_age_seconds", "Seconds since a message last changed the book", labels=labels
        )
        depth = GaugeMetricFamily("marketprism_book_depth_levels", "Levels published per side", labels=[*labels, "side"])
        exact = GaugeMetricFamily(
            "marketprism_book_exact_levels", "Levels per side, from the top, provably the exchange's", labels=[*labels, "side"]
        )
        configured = GaugeMetricFamily("marketprism_book_configured_depth", "Levels per side asked for", labels=labels)
        spread = GaugeMetricFamily("marketprism_book_spread", "Best ask minus best bid (float, for display)", labels=labels)
        counters = {name: CounterMetricFamily(name, text, labels=labels) for _, name, text in _COUNTERS}
        ratios = {
            name: GaugeMetricFamily(name, text, labels=labels)
            for name, text in (
                ("marketprism_snapshot_success_ratio", "Snapshots that synced, of snapshots and resyncs (target > 0.99)"),
                ("marketprism_update_loss_ratio", "Gaps per applied update (target < 0.001)"),
                ("marketprism_checksum_pass_ratio", "Verified OKX checksums of those checked (target > 0.99)"),
                ("marketprism_depth_completeness_ratio", "Published levels of the configured depth, worst side (target > 0.95)"),
            )
        }
        for key, book in sorted(books.items()):
            venue, _, symbol = key.partition(":")
            values = [venue, symbol]
            stats = book.stats
            synced.add_metric(values, 1.0 if book.synced else 0.0)
            since.add_metric(values, book.state_since_s)
            if stats.last_recv_ns is not None:
                age.add_metric(values, max(0.0, book.read_at_s - stats.last_recv_ns / 1e9))
            configured.add_metric(values, book.configured_depth)
            if book.synced and stats.best_bid is not None and stats.best_ask is not None:
                spread.add_metric(values, float(stats.best_ask) - float(stats.best_bid))
            for side, published, exact_levels in (
                ("bid", stats.bid_levels, stats.exact_bid_levels), ("ask", stats.ask_levels, stats.exact_ask_levels)
            ):
                depth.add_metric([*values, side], published or 0)
                exact.add_metric([*values, side], exact_levels or 0)
            for field_name, name, _ in _COUNTERS:
                counters[name].add_metric(values, getattr(stats, field_name))
            attempts = stats.snapshots + stats.resyncs
            ratios["marketprism_snapshot_success_ratio"].add_metric(values, stats.snapshots / attempts if attempts else 1.0)
            applied = stats.updates_applied
            ratios["marketprism_update_loss_ratio"].add_metric(values, stats.gaps / applied if applied else 0.0)
            checked = stats.checksums_verified + stats.checksum_failures
            ratios["marketprism_checksum_pass_ratio"].add_metric(values, stats.checksums_verified / checked if checked else 1.0)
            published_depth = min(stats.bid_levels or 0, stats.ask_levels or 0)
            expected = min(book.configured_depth, OKX_LIVE_LEVELS) if venue == "okx" else book.configured_depth
            ratios["marketprism_depth_completeness_ratio"].add_metric(
                values, min(1.0, published_depth / expected) if book.synced else 0.0
            )
        yield from (synced, since, age, depth, exact, configured, spread, *counters.values(), *ratios.values())


BOOK_METRICS = BookMetrics(REGISTRY)
