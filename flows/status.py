"""What a person watching the collector sees: the live view of `marketprism status`, and
the final summary.

StatusBoardSink — unit of parallelism: a partition per worker, all feeding one board;
nothing to snapshot; delivery: at-most-once (the events are advisory, the view reads the
process's cumulative metrics).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from typing import Any, TextIO

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from prometheus_client import REGISTRY, CollectorRegistry

from flows.status_view import Scrape, StatusView, draw, figures, scrape
from schemas.events import QualityEvent
from schemas.settings import StoreSettings

log = logging.getLogger("marketprism")

RECENT_EVENTS = 5


def store_metrics_url() -> str | None:
    """Where the store that `collect` starts serves its metrics (it reads the same
    environment), or None when its endpoint is off."""
    settings = StoreSettings()
    if settings.store_metrics_port == 0:
        return None
    host = "127.0.0.1" if settings.store_metrics_host in ("0.0.0.0", "::", "") else settings.store_metrics_host
    return f"http://{host}:{settings.store_metrics_port}/metrics"


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
    """The collector's live view during `collect`: the frames of `marketprism status`, drawn
    from this process's own metrics (and the store's endpoint, when `store_url` is given)
    every `interval_s` on a thread of its own, so the dataflow never waits on it. On a
    terminal the frame is redrawn in place, with the latest quality events under it;
    anywhere else (a log, a pipe) a plain line per interval. Quality events are logged."""

    def __init__(
        self,
        interval_s: float = 2.0,
        out: TextIO = sys.stdout,
        *,
        store_url: str | None = None,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.interval_s = interval_s
        self.out = out
        self.store_url = store_url
        self._registry = registry
        self._view = StatusView("MarketPrism collect")
        self._events: deque[str] = deque(maxlen=RECENT_EVENTS)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start drawing (once, however many workers build the board's sink)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="status-board", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop drawing, after a last frame."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(self.interval_s + 5)

    def note_quality(self, event: QualityEvent) -> None:
        level = logging.INFO if event.kind == "in_sync" else logging.WARNING  # coming back is good news
        log.log(level, "%s:%s %s: %s", event.venue, event.symbol, event.kind, event.detail)
        stamp = time.strftime("%H:%M:%S", time.gmtime(event.recv_ns / 1e9))
        with self._lock:
            self._events.append(f"{stamp} {event.venue}:{event.symbol} {event.kind}: {event.detail}")

    def frame(self) -> list[str]:
        """The lines of one frame now."""
        lines = self._view.lines(self._scrapes(), time.time())
        with self._lock:
            events = list(self._events)
        return lines + (["recent events:", *events] if events else [])

    def line(self) -> str:
        """The plain summary line now."""
        return self._view.summary(self._scrapes(), time.time())

    def _scrapes(self) -> list[Scrape]:
        own = figures(self._registry.collect())
        return [own] if self.store_url is None else [own, scrape(self.store_url)]

    def _run(self) -> None:
        tty = self.out.isatty()
        first = True
        while True:
            stopping = self._stop.wait(self.interval_s)
            try:
                if tty:
                    draw(self.frame(), self.out, first)
                    first = False
                else:
                    print(self.line(), file=self.out, flush=True)
            except (OSError, ValueError) as exc:  # the output closed under us: nothing to show it on
                log.debug("status board: %s", exc)
                return
            if stopping:
                return


class _BoardPartition(StatelessSinkPartition[Any]):
    def __init__(self, board: StatusBoard) -> None:
        self._board = board
        board.start()

    def write_batch(self, items: list[Any]) -> None:
        for item in items:
            if isinstance(item, QualityEvent):
                self._board.note_quality(item)

    def close(self) -> None:
        self._board.stop()


class StatusBoardSink(DynamicSink[Any]):
    """Feeds quality events to one StatusBoard, and draws it while the flow runs."""

    def __init__(self, board: StatusBoard) -> None:
        self.board = board

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _BoardPartition:
        return _BoardPartition(self.board)
