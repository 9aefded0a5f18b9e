"""`marketprism status`: a live terminal view of running collectors and stores, redrawn in place.

It reads their Prometheus endpoints (so it works against any process, local or in a
pod behind a port-forward) and shows one row per book: state, updates per second, the
published and exact depth, spread, checksums, audits, resyncs, gaps, P95 publish latency
and the age of the last update; then, from a store, its lag per stream, and the spills
of both. Problems are highlighted: a book out of sync, a failed checksum or audit since
the view started, a gap, a book silent for more than 10 s, a store more than 5 s behind a
stream, a collector spilling to disk (NATS away), ClickHouse down, an endpoint that does
not answer. The collector's own board during `collect` is this view too (`flows.status`).
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

# Samples of one scrape: (metric name, book key or stream name) -> value.
Samples = dict[tuple[str, str], float]
STALE_AFTER_S = 10.0
STORE_BEHIND_S = 5.0  # a store keeping up is about a batch age (1 s) behind
_RED, _BOLD, _RESET = "\x1b[31;1m", "\x1b[1m", "\x1b[0m"
_HOME, _CLEAR_LINE, _CLEAR_BELOW, _CLEAR = "\x1b[H", "\x1b[K", "\x1b[J", "\x1b[2J"
_COLUMNS = (
    ("book", 20), ("state", 6), ("upd/s", 6), ("depth", 11), ("exact", 11), ("spread", 10), ("cks ok/bad", 11),
    ("audits ok/bad", 13), ("resyncs", 7), ("gaps", 5), ("p95 ms", 7), ("age s", 6),
)
_STORE_COLUMNS = (("store stream", 20), ("pending", 9), ("unacked", 9), ("lag s", 8), ("stored/s", 9))


@dataclass(slots=True)
class Scrape:
    """What one endpoint said: book samples, latency buckets per venue, store samples per
    stream, unlabelled figures (spills, ClickHouse up), or why it said nothing."""

    samples: Samples
    buckets: dict[str, list[tuple[float, float]]]
    streams: Samples = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def parse(text: str) -> Scrape:
    """The figures the view shows, from a metrics page."""
    return figures(text_string_to_metric_families(text))


def figures(families: Iterable[Metric]) -> Scrape:
    """The figures the view shows, from metric families (a page parsed, or a registry's
    own: the collector's board reads its registry without writing and parsing the page,
    which held the GIL for about 5 ms a frame)."""
    samples: Samples = {}
    streams: Samples = {}
    scalars: dict[str, float] = {}
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "marketprism_publish_latency_seconds_bucket":
                buckets[labels["venue"]].append((float(labels["le"]), sample.value))
            elif "venue" in labels and "symbol" in labels:
                side = f":{labels['side']}" if "side" in labels else ""
                samples[(sample.name + side, f"{labels['venue']}:{labels['symbol']}")] = sample.value
            elif "stream" in labels:  # summed over tables
                key = (sample.name, labels["stream"])
                streams[key] = streams.get(key, 0.0) + sample.value
            elif not labels and sample.name.startswith("marketprism_"):
                scalars[sample.name] = sample.value
    return Scrape(samples, dict(buckets), streams, scalars)


def scrape(url: str, timeout_s: float = 2.0) -> Scrape:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return parse(response.read().decode())
    except (urllib.error.URLError, OSError) as exc:
        return Scrape({}, {}, error=f"{url}: {exc}")


def p95_ms(buckets: list[tuple[float, float]]) -> float | None:
    """The 95th percentile from cumulative buckets (upper bound of the bucket it falls in)."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] == 0:
        return None
    target = 0.95 * ordered[-1][1]
    return next(bound for bound, count in ordered if count >= target) * 1000


@dataclass(slots=True)
class _Merged:
    samples: Samples
    buckets: dict[str, list[tuple[float, float]]]
    streams: Samples
    scalars: dict[str, float]
    errors: list[str]


def _merge(scrapes: Sequence[Scrape]) -> _Merged:
    merged = _Merged({}, {}, {}, {}, [s.error for s in scrapes if s.error])
    for one in scrapes:
        merged.samples.update(one.samples)
        merged.buckets.update(one.buckets)
        merged.streams.update(one.streams)
        merged.scalars.update(one.scalars)
    return merged


def _red(line: str, troubled: bool) -> str:
    return f"{_RED}{line}{_RESET}" if troubled else line


class StatusView:
    """Turns successive scrapes into a frame (`lines`) or a one-line summary (`summary`);
    rates and "since the view started" need the previous scrapes."""

    def __init__(self, title: str = "MarketPrism status") -> None:
        self.title = title
        self._first: Samples = {}
        self._previous_at: float | None = None
        self._previous_books: Samples = {}
        self._previous_streams: Samples = {}

    def lines(self, scrapes: Sequence[Scrape], now_s: float) -> list[str]:
        merged = self._take(scrapes)
        header = " ".join(name.ljust(width) for name, width in _COLUMNS)
        out = [f"{_BOLD}{self.title}{_RESET}  {time.strftime('%H:%M:%S', time.gmtime(now_s))} UTC", header]
        books = sorted({book for _, book in merged.samples})
        out.extend(_red(*self._row(book, merged, now_s)) for book in books)
        if not books and not merged.errors:
            out.append("no books reported yet")
        out.extend(self._store_lines(merged, now_s))
        spill = self._spill(merged)
        if spill is not None:
            out.append(_red(*spill))
        out.extend(f"{_RED}unreachable: {error}{_RESET}" for error in merged.errors)
        self._remember(merged, now_s)
        return out

    def summary(self, scrapes: Sequence[Scrape], now_s: float) -> str:
        """One plain line: the books in sync, the updates a second, the troubled books, the
        store's lag and the spills (for a log, where redrawing makes no sense)."""
        merged = self._take(scrapes)
        books = sorted({book for _, book in merged.samples})
        rows = [(book, self._row(book, merged, now_s)[1]) for book in books]
        synced = sum(merged.samples.get(("marketprism_book_synced", book)) == 1.0 for book in books)
        rate = sum(self._rate(merged.samples, self._previous_books, "marketprism_book_updates_applied_total", book, now_s)
                   for book in books)
        parts = [time.strftime("%H:%M:%S", time.gmtime(now_s)), f"books {synced}/{len(books)} in sync", f"{rate:.0f} upd/s"]
        troubled = [book for book, bad in rows if bad]
        if troubled:
            parts.append("PROBLEMS " + " ".join(troubled))
        streams = sorted({stream for _, stream in merged.streams})
        if streams:
            behind = sum(merged.streams.get((n, s), 0.0) for s in streams
                         for n in ("marketprism_store_pending_messages", "marketprism_store_unacked_messages"))
            lag = max(merged.streams.get(("marketprism_store_lag_seconds", s), 0.0) for s in streams)
            parts.append(f"store {behind:.0f} messages, {lag:.1f} s behind")
        spill = self._spill(merged)
        if spill is not None:
            parts.append(spill[0])
        parts.extend(f"unreachable: {error}" for error in merged.errors)
        self._remember(merged, now_s)
        return "; ".join(parts)

    def _take(self, scrapes: Sequence[Scrape]) -> _Merged:
        merged = _merge(scrapes)
        for key, value in merged.samples.items():
            self._first.setdefault(key, value)
        return merged

    def _since_start(self, samples: Samples, name: str, book: str) -> float:
        return samples.get((name, book), 0.0) - self._first.get((name, book), 0.0)

    def _remember(self, merged: _Merged, now_s: float) -> None:
        self._previous_at, self._previous_books, self._previous_streams = now_s, merged.samples, merged.streams

    def _rate(self, samples: Samples, previous: Samples, name: str, key: str, now_s: float) -> float:
        """Per second since the previous frame (0 for the first, or a key new since)."""
        if self._previous_at is None or now_s <= self._previous_at:
            return 0.0
        before = previous.get((name, key), samples.get((name, key), 0.0))
        return (samples.get((name, key), 0.0) - before) / (now_s - self._previous_at)

    def _row(self, book: str, merged: _Merged, now_s: float) -> tuple[str, bool]:
        samples = merged.samples

        def value(name: str) -> float:
            return samples.get((name, book), 0.0)

        synced = value("marketprism_book_synced") == 1.0
        rate = self._rate(samples, self._previous_books, "marketprism_book_updates_applied_total", book, now_s)
        age = samples.get(("marketprism_book_last_update_age_seconds", book))
        spread = samples.get(("marketprism_book_spread", book))
        latency = p95_ms(merged.buckets.get(book.partition(":")[0], []))
        cells = (
            book, "synced" if synced else "OUT", f"{rate:.1f}",
            f"{value('marketprism_book_depth_levels:bid'):.0f}/{value('marketprism_book_depth_levels:ask'):.0f}",
            f"{value('marketprism_book_exact_levels:bid'):.0f}/{value('marketprism_book_exact_levels:ask'):.0f}",
            "-" if spread is None else f"{spread:.8g}",
            f"{value('marketprism_book_checksums_verified_total'):.0f}/{value('marketprism_book_checksum_failures_total'):.0f}",
            f"{value('marketprism_book_audits_passed_total'):.0f}/{value('marketprism_book_audit_failures_total'):.0f}",
            f"{value('marketprism_book_resyncs_total'):.0f}", f"{value('marketprism_book_gaps_total'):.0f}",
            "-" if latency is None else f"{latency:.0f}", "-" if age is None else f"{age:.1f}",
        )
        line = " ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, _COLUMNS))
        troubled = (
            not synced
            or (age is not None and age > STALE_AFTER_S)
            or any(
                self._since_start(samples, name, book) > 0
                for name in (
                    "marketprism_book_checksum_failures_total", "marketprism_book_audit_failures_total",
                    "marketprism_book_gaps_total",
                )
            )
        )
        return line, troubled

    def _store_lines(self, merged: _Merged, now_s: float) -> list[str]:
        """A row per stream of the store's: messages waiting, delivered and unacked, the lag,
        messages stored a second; red when the lag passes STORE_BEHIND_S."""
        streams = merged.streams
        names = sorted({stream for name, stream in streams if name == "marketprism_store_lag_seconds"})
        if not names:
            return []
        out = [" ".join(name.ljust(width) for name, width in _STORE_COLUMNS)]
        for stream in names:
            lag = streams.get(("marketprism_store_lag_seconds", stream), 0.0)
            stored = self._rate(streams, self._previous_streams, "marketprism_store_stored_messages_total", stream, now_s)
            cells = (
                stream, f"{streams.get(('marketprism_store_pending_messages', stream), 0.0):.0f}",
                f"{streams.get(('marketprism_store_unacked_messages', stream), 0.0):.0f}", f"{lag:.1f}", f"{stored:.1f}",
            )
            out.append(_red(" ".join(str(c).ljust(w) for c, (_, w) in zip(cells, _STORE_COLUMNS)), lag > STORE_BEHIND_S))
        return out

    @staticmethod
    def _spill(merged: _Merged) -> tuple[str, bool] | None:
        """What waits on disk: the collector's NATS spill (any of it means NATS is away) and
        the store's batches (always a few for a moment; troubling when ClickHouse is down)."""
        scalars = merged.scalars
        parts: list[str] = []
        troubled = False
        if "marketprism_nats_spill_messages" in scalars:
            messages = scalars["marketprism_nats_spill_messages"]
            parts.append(f"NATS spill {messages:.0f} messages ({scalars.get('marketprism_nats_spill_bytes', 0.0):.0f} B)")
            troubled |= messages > 0
        if "marketprism_store_spill_batches" in scalars:
            parts.append(f"store spill {scalars['marketprism_store_spill_batches']:.0f} batches "
                         f"({scalars.get('marketprism_store_spill_bytes', 0.0):.0f} B)")
        if scalars.get("marketprism_store_clickhouse_up") == 0.0:
            parts.append("ClickHouse DOWN")
            troubled = True
        return (", ".join(parts), troubled) if parts else None


def draw(lines: list[str], out: TextIO, first: bool) -> None:
    """Redraw in place: home the cursor, overwrite each line, clear what the last frame left below."""
    frame = (_CLEAR if first else "") + _HOME + "".join(f"{line}{_CLEAR_LINE}\n" for line in lines) + _CLEAR_BELOW
    out.write(frame)
    out.flush()


def run(urls: Sequence[str], interval_s: float, once: bool, out: TextIO = sys.stdout) -> int:
    view, first = StatusView(), True
    while True:
        scrapes = [scrape(url) for url in urls]
        lines = view.lines(scrapes, time.time())
        if once:
            out.write("\n".join(lines) + "\n")
            return 0 if not any(s.error for s in scrapes) else 1
        draw(lines, out, first)
        first = False
        time.sleep(interval_s)
