"""What a person watching the collector sees: a live table per book, and the final summary.

StatusBoardSink — unit of parallelism: one partition (the board is one table); nothing
to snapshot; delivery: at-most-once (status is advisory, the counters are cumulative).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.store_lag import StoreLag
from flows.steps import StatusUpdate
from schemas.events import BookStats, QualityEvent

log = logging.getLogger("marketprism")

_COLUMNS = (
    ("book", 22), ("state", 8), ("upd/s", 7), ("depth", 11), ("spread", 12), ("cks ok", 7), ("cks bad", 7),
    ("resyncs", 7), ("gaps", 5), ("lag ms", 7),
)


def _row(cells: tuple[object, ...]) -> str:
    return " ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, _COLUMNS))


def _spread(stats: BookStats) -> str:
    if stats.best_bid is None or stats.best_ask is None:
        return "-"
    return f"{float(stats.best_ask) - float(stats.best_bid):.8g}"


_REPORT_COLUMNS = (
    ("book", 22), ("msgs", 7), ("applied", 8), ("snaps", 5), ("resyncs", 7), ("gaps", 4),
    ("cks ok", 6), ("cks bad", 7), ("rej", 4), ("best bid", 14), ("best ask", 14), ("levels", 11),
)


def format_report(report: dict[str, Any]) -> str:
    """A table a person can read at a glance: one line per book, then trades and errors."""
    header = " ".join(name.ljust(width) for name, width in _REPORT_COLUMNS)
    lines = [header, "-" * len(header)]
    for key, book in report["books"].items():
        levels = f"{book['bid_levels']}/{book['ask_levels']}" if book["bid_levels"] is not None else "unsynced"
        cells = (
            key, book["messages"], book["updates_applied"], book["snapshots"], book["resyncs"], book["gaps"],
            book["checksums_verified"], book["checksum_failures"], book["rejected"], book["best_bid"] or "-",
            book["best_ask"] or "-", levels,
        )
        lines.append(" ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, _REPORT_COLUMNS)))
    trades = ", ".join(f"{key} {count}" for key, count in report["trades"].items()) or "none"
    lines.append(f"trades: {trades}")
    lines.append(f"errors: {len(report['errors'])}")
    lines.extend(f"  {error}" for error in report["errors"][:20])
    if len(report["errors"]) > 20:
        lines.append(f"  ... {len(report['errors']) - 20} more in the report file")
    store = report.get("store")
    if store is not None:
        lines.append(f"store: {store['error']}" if "error" in store else
                     f"store: {store['messages_behind']} messages, {store['seconds_behind']:.1f} s behind the streams")
    return "\n".join(lines)



class StatusBoard:
    """Keeps the latest counters per book and prints the table every `interval_s`."""

    def __init__(self, interval_s: float = 2.0, out: TextIO = sys.stdout) -> None:
        self.interval_s = interval_s
        self.out = out
        self.latest: dict[str, StatusUpdate] = {}
        self._previous: dict[str, tuple[float, int]] = {}
        self._rates: dict[str, float] = {}
        self._last_print = 0.0
        self.quality_events = 0
        self.store_lag: StoreLag | None = None  # read from NATS by a StoreLagMonitor, when storing

    def update(self, status: StatusUpdate) -> None:
        now = time.monotonic()
        before = self._previous.get(status.key)
        if before is not None and now > before[0]:
            self._rates[status.key] = (status.stats.updates_applied - before[1]) / (now - before[0])
        self._previous[status.key] = (now, status.stats.updates_applied)
        self.latest[status.key] = status
        if now - self._last_print >= self.interval_s:
            self._last_print = now
            self.print_table()

    def note_store_lag(self, lag: StoreLag) -> None:
        self.store_lag = lag

    def note_quality(self, event: QualityEvent) -> None:
        self.quality_events += 1
        level = logging.INFO if event.kind == "in_sync" else logging.WARNING  # coming back is good news
        log.log(level, "%s:%s %s: %s", event.venue, event.symbol, event.kind, event.detail)

    def table(self) -> str:
        lines = [_row(tuple(name for name, _ in _COLUMNS))]
        for key in sorted(self.latest):
            status = self.latest[key]
            stats = status.stats
            lag = "-" if stats.last_recv_ns is None else f"{(status.at_ns - stats.last_recv_ns) / 1e6:.0f}"
            depth = f"{stats.bid_levels}/{stats.ask_levels}" if status.synced else "-"
            lines.append(_row((
                key, "synced" if status.synced else "syncing", f"{self._rates.get(key, 0.0):.1f}", depth,
                _spread(stats), stats.checksums_verified, stats.checksum_failures, stats.resyncs, stats.gaps, lag,
            )))
        if self.store_lag is not None:
            lines.append(self.store_lag.describe())
        return "\n".join(lines)

    def print_table(self) -> None:
        print(self.table() + "\n", file=self.out, flush=True)


class _BoardPartition(StatelessSinkPartition[Any]):
    def __init__(self, board: StatusBoard) -> None:
        self._board = board

    def write_batch(self, items: list[Any]) -> None:
        for item in items:
            if isinstance(item, StatusUpdate):
                self._board.update(item)
            elif isinstance(item, QualityEvent):
                self._board.note_quality(item)


class StatusBoardSink(DynamicSink[Any]):
    """Feeds status updates and quality events to one StatusBoard."""

    def __init__(self, board: StatusBoard) -> None:
        self.board = board

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _BoardPartition:
        return _BoardPartition(self.board)
