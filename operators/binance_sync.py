"""Binance spot local book: the official snapshot + diff-depth procedure, and audits.

1. Buffer diffs until a snapshot arrives.
2. A snapshot older than the buffer (lastUpdateId + 1 < first buffered U) cannot be
   bridged: ask for another, keep buffering.
3. Drop diffs with u <= lastUpdateId; the first applied diff must have
   U <= lastUpdateId + 1 <= u; after that U == previous u + 1, or the book is dropped
   and a resync requested. A duplicate (u <= last applied u) is never applied twice.
4. A snapshot cut at its limit knows nothing beyond its deepest level: levels a diff
   gives there are kept (they are exact), but the side is provably exact only down to
   the snapshot's deepest level (`BookSide.horizon`), and only a fresh snapshot widens it.
5. Binance sends no checksum, so a fresh snapshot is the only proof that a live book is
   still the exchange's: every `audit_interval_ms`, and early when a side's exact depth
   falls below `audit_exact_share` of the depth, the machine asks for one. A snapshot
   that arrives while the book is in sync is an audit (`operators.binance_audit`).
"""

from __future__ import annotations

from collections import deque

from operators.binance_audit import Shadow, first_difference
from operators.book import LevelChanges
from operators.sync_base import SyncMachine, SyncSettings
from operators.wire import DepthDiff, DepthSnapshot
from schemas.events import BookFull, QualityEvent, QualityKind, ResyncRequest, SourceAction, UpdateType


def _horizon(levels: LevelChanges, limit: int | None) -> float | None:
    """The deepest known key of a snapshot side, or None when the side is complete."""
    if not levels.keys or (limit is not None and len(levels) < limit):
        return None
    return min(levels.keys)


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
        # Applied diffs, newest last: what brings an audit snapshot older than the book up to it.
        self._applied: deque[DepthDiff] = deque(maxlen=settings.audit_retained_diffs)
        self._shadow: Shadow | None = None  # an audit snapshot newer than the book, catching up
        self._last_snapshot_ns: int | None = None
        self._audit_asked_ns: int | None = None

    def on_diff(self, diff: DepthDiff) -> list[object]:
        self.stats.messages += 1
        if not self.synced:
            return self._buffer(diff)
        return self._apply(diff)

    def on_snapshot(self, snap: DepthSnapshot) -> list[object]:
        self.stats.messages += 1
        self._last_snapshot_ns = snap.recv_ns
        self._audit_asked_ns = None
        if self.synced:
            return self._audit(snap)
        buffered = self.buffer
        if buffered and snap.last_id + 1 < buffered[0].first_id:
            self.stats.resyncs += 1
            detail = f"snapshot lastUpdateId={snap.last_id} is older than the first buffered U={buffered[0].first_id}"
            self.note_error(f"stale snapshot: {detail}; another requested")
            return self._stale(detail, snap)
        self.book.bids.replace(snap.bids, _horizon(snap.bids, snap.limit))
        self.book.asks.replace(snap.asks, _horizon(snap.asks, snap.limit))
        self.bridging = True
        self.last_id, self.prev_id, self.first_id = snap.last_id, None, snap.last_id
        self._exchange_ms = None
        self._applied.clear()
        self.stats.snapshots += 1
        self.stats.last_update_id = snap.last_id
        if self.book.is_crossed():
            self.stats.crossed += 1
            return self.fault("crossed", f"snapshot lastUpdateId={snap.last_id} is crossed", snap.last_id, snap.recv_ns)
        out = self.went_in_sync(f"snapshot lastUpdateId={snap.last_id}", snap.last_id, snap.recv_ns)
        out.append(self.full_book("snapshot", snap.last_id, snap.last_id, None, None, None, None, snap.recv_ns))
        self.buffer = deque()
        for diff in buffered:
            if not self.synced:
                self.buffer.append(diff)
            else:
                out.extend(self._apply(diff))
        return out

    def fault(
        self, kind: QualityKind, detail: str, update_id: int | None, recv_ns: int, action: SourceAction = "snapshot"
    ) -> list[object]:
        self._shadow = None  # an audit in progress has nothing left to compare with
        self._applied.clear()
        return super().fault(kind, detail, update_id, recv_ns, action)

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
        self._applied.append(diff)
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
        shadow = self._shadow
        if shadow is not None and shadow.catch_up(diff):
            self._shadow = None
            out.extend(self._settle(shadow, diff.recv_ns))
        elif self.full_due(diff.exchange_ms, diff.recv_ns):
            out.append(self._full("full_refresh", diff.recv_ns))
        out.extend(self._audit_due(diff.recv_ns))
        return out

    # -- audits ----------------------------------------------------------------------

    def _audit_due(self, recv_ns: int) -> list[object]:
        """Ask for an audit snapshot when one is due and none was asked for lately."""
        settings = self.settings
        if settings.audit_interval_ms is None or self._shadow is not None:
            return []
        gap_ns = settings.audit_min_gap_ms * 1_000_000
        asked = self._audit_asked_ns
        if asked is not None and recv_ns - asked < gap_ns:
            return []  # one request at a time; a lost one is asked again after the gap
        since_ns = recv_ns - (self._last_snapshot_ns if self._last_snapshot_ns is not None else recv_ns)
        if since_ns >= settings.audit_interval_ms * 1_000_000:
            reason = f"audit: last snapshot {since_ns / 1e9:.0f} s ago"
        elif since_ns < gap_ns:
            return []  # too soon after the last snapshot: the usual case
        elif (exact := min(self.exact_depths())) < settings.audit_exact_share * self.published_depth():
            reason = f"audit: exact depth down to {exact} of {self.published_depth()} levels"
        else:
            return []
        self._audit_asked_ns = recv_ns
        return [ResyncRequest(self.venue, self.symbol, reason, recv_ns, action="snapshot")]

    def _audit(self, snap: DepthSnapshot) -> list[object]:
        """A snapshot while in sync: build a shadow book from it and bring it to the live
        book's update id, now (retained diffs) or as the next diffs arrive."""
        assert self.last_id is not None
        shadow = Shadow(snap, _horizon(snap.bids, snap.limit), _horizon(snap.asks, snap.limit))
        self._shadow = None  # the newest snapshot is the one to audit with
        if snap.last_id > self.last_id:
            self._shadow = shadow  # ahead of the live book: it catches up with the diffs to come
            return []
        if not shadow.replay(self._applied, self.last_id):
            self.stats.audits_skipped += 1
            self.note_error(
                f"audit skipped: snapshot lastUpdateId={snap.last_id} is older than the retained diffs"
            )
            return []
        return self._settle(shadow, snap.recv_ns)

    def _settle(self, shadow: Shadow, recv_ns: int) -> list[object]:
        """Compare the shadow with the live book over their common exact window; either
        way the live book takes the shadow's levels, so its exact depth is whole again."""
        difference = first_difference(self.book, shadow.book)
        out: list[object] = []
        if difference is None:
            self.stats.audits_passed += 1
        else:
            self.stats.audit_failures += 1
            detail = f"at update id {self.last_id}: {difference}; the book now follows the snapshot"
            self.note_error(f"audit_mismatch: {detail}")
            out.append(QualityEvent(self.venue, self.symbol, "audit_mismatch", detail, self.last_id, recv_ns))
        self.book.bids.take(shadow.book.bids)
        self.book.asks.take(shadow.book.asks)
        if self.book.is_crossed():
            self.stats.crossed += 1
            return out + self.fault("crossed", f"audited book crossed at u={self.last_id}", self.last_id, recv_ns)
        out.append(self._full("snapshot", recv_ns))
        return out

    def _full(self, update_type: UpdateType, recv_ns: int) -> BookFull:
        return self.full_book(
            update_type, self.last_id, self.first_id, self.prev_id, None, None, self._exchange_ms, recv_ns
        )
