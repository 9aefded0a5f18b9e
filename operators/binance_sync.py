"""Binance spot local book: the official snapshot + diff-depth procedure, step by step.

1. Buffer diffs until a snapshot arrives.
2. A snapshot older than the buffer (lastUpdateId + 1 < first buffered U) cannot be
   bridged: ask for another, keep buffering.
3. Drop diffs with u <= lastUpdateId; the first applied diff must have
   U <= lastUpdateId + 1 <= u; after that U == previous u + 1, or the book is dropped
   and a resync requested. A duplicate (u <= last applied u) is never applied twice.
4. A snapshot truncated at its limit knows nothing beyond its deepest level: such
   levels are not kept until a new snapshot reaches them.
"""

from __future__ import annotations

from collections import deque

from operators.book import LevelChanges
from operators.sync_base import SyncMachine, SyncSettings
from operators.wire import DepthDiff, DepthSnapshot
from schemas.events import BookFull, QualityEvent, ResyncRequest, UpdateType


def _horizon(levels: LevelChanges, limit: int | None) -> float | None:
    """The deepest known key of a snapshot side, or None when the side is complete."""
    if not levels.keys or (limit is not None and len(levels) < limit):
        return None
    return max(levels.keys)


class BinanceBookSync(SyncMachine):
    """One Binance (or Binance.US) spot book."""

    def __init__(self, venue: str, symbol: str, settings: SyncSettings) -> None:
        super().__init__(venue, symbol, settings)
        self.buffer: deque[DepthDiff] = deque()
        self.last_id: int | None = None
        self.prev_id: int | None = None
        self.first_id: int | None = None
        self.bridging = False
        self._exchange_ms: int | None = None

    def on_diff(self, diff: DepthDiff) -> list[object]:
        self.stats.messages += 1
        if not self.synced:
            return self._buffer(diff)
        return self._apply(diff)

    def on_snapshot(self, snap: DepthSnapshot) -> list[object]:
        self.stats.messages += 1
        if self.synced and self.last_id is not None and snap.last_id <= self.last_id:
            # Our book is already newer than this snapshot: nothing to learn from it.
            return []
        buffered = self.buffer
        if buffered and snap.last_id + 1 < buffered[0].first_id:
            self.stats.resyncs += 1
            detail = f"snapshot lastUpdateId={snap.last_id} is older than the first buffered U={buffered[0].first_id}"
            self.note_error(f"stale snapshot: {detail}; another requested")
            return self._stale(detail, snap)
        self.book.bids.replace(snap.bids, _horizon(snap.bids, snap.limit))
        self.book.asks.replace(snap.asks, _horizon(snap.asks, snap.limit))
        self.synced, self.bridging = True, True
        self.last_id, self.prev_id, self.first_id = snap.last_id, None, snap.last_id
        self._exchange_ms = None
        self.stats.snapshots += 1
        self.stats.last_update_id = snap.last_id
        out: list[object] = []
        if self.book.is_crossed():
            self.stats.crossed += 1
            return self.fault("crossed", f"snapshot lastUpdateId={snap.last_id} is crossed", snap.last_id, snap.recv_ns)
        out.append(self.full_book("snapshot", snap.last_id, snap.last_id, None, None, None, None, snap.recv_ns))
        self.buffer = deque()
        for diff in buffered:
            if not self.synced:
                self.buffer.append(diff)
            else:
                out.extend(self._apply(diff))
        return out

    def _stale(self, detail: str, snap: DepthSnapshot) -> list[object]:
        return [
            QualityEvent(self.venue, self.symbol, "stale_snapshot", detail, snap.last_id, snap.recv_ns),
            ResyncRequest(self.venue, self.symbol, f"stale_snapshot: {detail}", snap.recv_ns),
        ]

    def _buffer(self, diff: DepthDiff) -> list[object]:
        self.buffer.append(diff)
        if len(self.buffer) <= self.settings.max_buffered_diffs:
            return []
        dropped = self.buffer.popleft()
        detail = f"no snapshot yet; dropped buffered diff U={dropped.first_id} u={dropped.last_id}"
        return [QualityEvent(self.venue, self.symbol, "buffer_overflow", detail, dropped.last_id, diff.recv_ns)]

    def _apply(self, diff: DepthDiff) -> list[object]:
        last = self.last_id
        assert last is not None
        if diff.last_id <= last:
            return []  # already in the book (snapshot overlap or a duplicate)
        bridges = diff.first_id <= last + 1 if self.bridging else diff.first_id == last + 1
        if not bridges:
            self.stats.gaps += 1
            detail = f"expected U={'<=' if self.bridging else ''}{last + 1}, got U={diff.first_id} u={diff.last_id}"
            out = self.fault("gap", detail, diff.last_id, diff.recv_ns)
            self.buffer.append(diff)
            return out
        self.book.apply(diff.bids, diff.asks)
        self.bridging = False
        self.prev_id, self.first_id, self.last_id = last, diff.first_id, diff.last_id
        self._exchange_ms = diff.exchange_ms
        stats = self.stats
        stats.updates_applied += 1
        stats.levels_applied += len(diff.bids) + len(diff.asks)
        stats.last_update_id = diff.last_id
        if self.book.is_crossed():
            stats.crossed += 1
            return self.fault("crossed", f"book crossed after u={diff.last_id}", diff.last_id, diff.recv_ns)
        out: list[object] = [
            self.delta(diff.last_id, last, diff.first_id, diff.raw_bids, diff.raw_asks, diff.exchange_ms, diff.recv_ns)
        ]
        if self.full_due(diff.recv_ns):
            out.append(self._full("full_refresh", diff.recv_ns))
        return out

    def _full(self, update_type: UpdateType, recv_ns: int) -> BookFull:
        return self.full_book(
            update_type, self.last_id, self.first_id, self.prev_id, None, None, self._exchange_ms, recv_ns
        )
