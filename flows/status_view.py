"""`marketprism status`: a live terminal view of running collectors and stores, redrawn in place.

It reads their Prometheus endpoints (so it works against any process, local or in a
pod behind a port-forward) and shows one row per book: state, updates per second, the
published and exact depth, spread, checksums, audits, resyncs, gaps, P95 publish latency
and the age of the last update. Problems are highlighted: a book out of sync, a failed
checksum or audit since the view started, a gap, a book silent for more than 10 s, an
endpoint that does not answer.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from prometheus_client.parser import text_string_to_metric_families

# Samples of one scrape: (metric name, book key) -> value, plus histogram buckets per venue.
Samples = dict[tuple[str, str], float]
STALE_AFTER_S = 10.0
_RED, _BOLD, _RESET = "\x1b[31;1m", "\x1b[1m", "\x1b[0m"
_HOME, _CLEAR_LINE, _CLEAR_BELOW, _CLEAR = "\x1b[H", "\x1b[K", "\x1b[J", "\x1b[2J"
_COLUMNS = (
    ("book", 20), ("state", 6), ("upd/s", 6), ("depth", 11), ("exact", 11), ("spread", 10), ("cks ok/bad", 11),
    ("audits ok/bad", 13), ("resyncs", 7), ("gaps", 5), ("p95 ms", 7), ("age s", 6),
)


@dataclass(slots=True)
class Scrape:
    """What one endpoint said: book samples, latency buckets per venue, or why it said nothing."""

    samples: Samples
    buckets: dict[str, list[tuple[float, float]]]
    error: str | None = None


def scrape(url: str, timeout_s: float = 2.0) -> Scrape:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return Scrape({}, {}, error=f"{url}: {exc}")
    samples: Samples = {}
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "marketprism_publish_latency_seconds_bucket":
                buckets[labels["venue"]].append((float(labels["le"]), sample.value))
            elif "venue" in labels and "symbol" in labels:
                side = f":{labels['side']}" if "side" in labels else ""
                samples[(sample.name + side, f"{labels['venue']}:{labels['symbol']}")] = sample.value
    return Scrape(samples, dict(buckets))


def p95_ms(buckets: list[tuple[float, float]]) -> float | None:
    """The 95th percentile from cumulative buckets (upper bound of the bucket it falls in)."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] == 0:
        return None
    target = 0.95 * ordered[-1][1]
    return next(bound for bound, count in ordered if count >= target) * 1000


class StatusView:
    """Turns successive scrapes into rows; rates and "since the view started" need the previous ones."""

    def __init__(self) -> None:
        self._first: Samples = {}
        self._previous: tuple[float, Samples] | None = None

    def lines(self, scrapes: Sequence[Scrape], now_s: float) -> list[str]:
        samples: Samples = {}
        buckets: dict[str, list[tuple[float, float]]] = {}
        errors = [s.error for s in scrapes if s.error]
        for one in scrapes:
            samples.update(one.samples)
            buckets.update(one.buckets)
        for key, value in samples.items():
            self._first.setdefault(key, value)
        books = sorted({book for _, book in samples})
        header = " ".join(name.ljust(width) for name, width in _COLUMNS)
        out = [f"{_BOLD}MarketPrism status{_RESET}  {time.strftime('%H:%M:%S', time.gmtime(now_s))} UTC", header]
        for book in books:
            out.append(self._row(book, samples, buckets, now_s))
        if not books and not errors:
            out.append("no books reported yet")
        out.extend(f"{_RED}unreachable: {error}{_RESET}" for error in errors)
        self._previous = (now_s, samples)
        return out

    def _since_start(self, samples: Samples, name: str, book: str) -> float:
        return samples.get((name, book), 0.0) - self._first.get((name, book), 0.0)

    def _row(self, book: str, samples: Samples, buckets: dict[str, list[tuple[float, float]]], now_s: float) -> str:
        def value(name: str) -> float:
            return samples.get((name, book), 0.0)

        synced = value("marketprism_book_synced") == 1.0
        rate = 0.0
        if self._previous is not None and now_s > self._previous[0]:
            before = self._previous[1].get(("marketprism_book_updates_applied_total", book), value("marketprism_book_updates_applied_total"))
            rate = (value("marketprism_book_updates_applied_total") - before) / (now_s - self._previous[0])
        age = samples.get(("marketprism_book_last_update_age_seconds", book))
        spread = samples.get(("marketprism_book_spread", book))
        latency = p95_ms(buckets.get(book.partition(":")[0], []))
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
        return f"{_RED}{line}{_RESET}" if troubled else line


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
