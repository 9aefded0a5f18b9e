"""OKX local book for `books`, `books-l2-tbt` and `books50-l2-tbt`.

- A snapshot replaces the book (also while synced).
- `seqId`/`prevSeqId`, when present: each update's prevSeqId equals the previous seqId;
  prevSeqId == seqId with no levels is a keep-alive; seqId < prevSeqId is a legal reset.
  A repeat of one of the last `RECENT_IDS` applied messages (same prevSeqId and seqId)
  is dropped; anything else that does not chain is a gap, a lost reset included.
- Messages without those fields (older recordings) are accepted; the checksum guards them.
  But once a snapshot brought seqId, an update of that book without it is a fault.
- Every non-zero checksum is verified after applying; 0 or absent counts as unverified.
- The channel maintains only its best 400 (or 50) levels: a level pushed out of that
  window gets no more updates, yet it is the right level again if it comes back before
  anything touched it. So the book keeps such levels (at least the window, up to
  `settings.depth` per side) but publishes only the window, which is what it vouches for.
- Levels below the window come from the latest REST books-full (no seqId, no checksum):
  forgotten at every fault and new snapshot, and not published once older than
  `settings.deep_max_age_ms`.
"""

from __future__ import annotations

from collections import deque

from operators.okx_checksum import okx_checksum
from operators.sync_base import SyncMachine, SyncSettings
from operators.book import BookSide, LevelChanges, WireLevel, untracked
from operators.wire import OkxBookMessage, OkxDeepBook
from schemas.events import BookFull, QualityEvent, QualityKind, SourceAction, UpdateType


# How many applied messages' (prevSeqId, seqId, exchange time) are remembered to recognise repeats.
RECENT_IDS = 256


class OkxBookSync(SyncMachine):
    """One OKX instrument's book (spot, futures, swaps and options share the protocol)."""

    def __init__(self, venue: str, symbol: str, settings: SyncSettings) -> None:
        super().__init__(venue, symbol, settings)
        self.seq_id: int | None = None
        self.prev_seq_id: int | None = None
        self.checksum: int | None = None
        self._recent: deque[tuple[int, int, int | None]] = deque(maxlen=RECENT_IDS)
        self._deep: OkxDeepBook | None = None
        self.applied = 0
        self.window = self.settings.depth
        self._exchange_ms: int | None = None
        self._sequenced = False  # the current subscription delivers seqId

    def on_book(self, msg: OkxBookMessage) -> list[object]:
        self.stats.messages += 1
        if msg.snapshot:
            return self._snapshot(msg)
        if not self.synced:
            return []  # waiting for the snapshot a resubscription brings
        return self._update(msg)

    def on_deep(self, deep: OkxDeepBook) -> list[object]:
        """Keep the latest books-full answer; full books show it below the live window."""
        self._deep = deep
        return []

    def _below(self, side: BookSide, depth: int, deep: LevelChanges, room: int) -> list[WireLevel]:
        """Deep levels strictly past the last live level (of the best `depth`), at most `room` of them."""
        if room <= 0 or not side.keys or depth <= 0:
            return []
        edge = side.keys[max(len(side.keys) - depth, 0)]
        past = [wire for key, wire in zip(deep.keys, deep.wires) if key < edge and wire is not None]
        return untracked(past[:room])

    def _update_id(self, msg: OkxBookMessage) -> int:
        """seqId where the venue sends it; otherwise the exchange time orders the updates."""
        if msg.seq_id is not None:
            return msg.seq_id
        return msg.exchange_ms if msg.exchange_ms is not None else self.applied

    def fault(
        self, kind: QualityKind, detail: str, update_id: int | None, recv_ns: int, action: SourceAction = "snapshot"
    ) -> list[object]:
        self._deep = None  # deep levels were merged against a book we no longer trust
        return super().fault(kind, detail, update_id, recv_ns, action)

    def exact_depths(self) -> tuple[int, int]:
        """The live window is exact (seqId chain and checksums); kept and deep levels are not."""
        depth = self.published_depth()
        return min(len(self.book.bids), depth), min(len(self.book.asks), depth)

    def _snapshot(self, msg: OkxBookMessage) -> list[object]:
        replaced = self._replaced(msg)
        self.book.bids.replace(msg.bids, None)
        self.book.asks.replace(msg.asks, None)
        self._keep_window(msg.window)
        self._deep = None  # merged against the old book: wait for an answer taken after this snapshot
        self._sequenced = msg.seq_id is not None
        self.seq_id, self.prev_seq_id = msg.seq_id, msg.prev_seq_id
        self._recent.clear()  # a snapshot may restart the ids: earlier ones identify nothing now
        self._remember(msg)
        self.stats.snapshots += 1
        self.stats.last_update_id = msg.seq_id
        self._exchange_ms = msg.exchange_ms
        failure = self._verify(msg)
        if failure:
            return failure
        out = replaced + self.went_in_sync(f"snapshot seqId={msg.seq_id}", msg.seq_id, msg.recv_ns)
        out.append(self._full("snapshot", msg))
        return out

    def _replaced(self, msg: OkxBookMessage) -> list[object]:
        """A snapshot that replaces a book in sync (a new subscription or connection) ends its
        chain of deltas: say so, so that consumers re-anchor on this snapshot."""
        if not self.synced:
            return []
        detail = f"a new snapshot (seqId={msg.seq_id}) replaced the book at seqId={self.seq_id}; deltas restart from it"
        return [QualityEvent(self.venue, self.symbol, "resync", detail, msg.seq_id, msg.recv_ns)]

    def _update(self, msg: OkxBookMessage) -> list[object]:
        seq, prev = msg.seq_id, msg.prev_seq_id
        if self._sequenced and (seq is None or prev is None):
            detail = f"an update without seqId/prevSeqId after seqId={self.seq_id}"
            return self.fault("missing_seq_id", detail, self.seq_id, msg.recv_ns)
        if seq is not None and prev is not None and self.seq_id is not None:
            if seq < prev and (prev, seq, msg.exchange_ms) in self._recent:
                # A reset applied already, delivered again once the new chain has climbed back
                # to its prevSeqId: the ids alone would pass it as a new reset (which they may
                # legally repeat), its exchange time says it is the same message.
                return []
            if prev != self.seq_id:
                if self._applied_ids(prev, seq):
                    return []  # an applied message delivered again
                self.stats.gaps += 1
                detail = f"expected prevSeqId={self.seq_id}, got prevSeqId={prev} seqId={seq}"
                return self.fault("gap", detail, seq, msg.recv_ns)
            if seq == prev and not msg.bids and not msg.asks:
                self._remember(msg)
                return self._verify(msg)  # keep-alive: nothing changes, the checksum still holds
        self.book.apply(msg.bids, msg.asks)
        self._keep_window(msg.window)
        previous = self.seq_id
        self.seq_id, self.prev_seq_id = seq, prev
        if seq is not None and prev is not None and seq < prev:
            self._recent.clear()  # ids before a reset may come again: they no longer identify messages
        self._remember(msg)
        self.applied += 1
        stats = self.stats
        stats.updates_applied += 1
        stats.levels_applied += len(msg.bids) + len(msg.asks)
        stats.last_update_id = seq
        self._exchange_ms = msg.exchange_ms
        failure = self._verify(msg)
        if failure:
            return failure
        update_id = self._update_id(msg)
        out: list[object] = [
            self.delta(update_id, previous, None, msg.raw_bids, msg.raw_asks, msg.exchange_ms, msg.recv_ns)
        ]
        if self.full_due(msg.exchange_ms, msg.recv_ns):
            out.append(self._full("full_refresh", msg))
        return out

    def published_depth(self) -> int:
        return min(self.window, self.settings.depth)

    def _remember(self, msg: OkxBookMessage) -> None:
        if msg.seq_id is not None and msg.prev_seq_id is not None:
            self._recent.append((msg.prev_seq_id, msg.seq_id, msg.exchange_ms))

    def _applied_ids(self, prev: int, seq: int) -> bool:
        """A message with these ids was applied lately (in the current chain of ids)."""
        return any(applied_prev == prev and applied_seq == seq for applied_prev, applied_seq, _ in self._recent)

    def _keep_window(self, window: int) -> None:
        # Never below the window: the venue still maintains those levels and checksums them.
        self.window = window
        keep = max(window, self.settings.depth)
        self.book.bids.truncate(keep)
        self.book.asks.truncate(keep)

    def _verify(self, msg: OkxBookMessage) -> list[object]:
        """Checksum and crossing checks after a message applied; a fault list, or []."""
        update_id = self._update_id(msg)
        self.checksum = msg.checksum
        if not msg.checksum:
            self.stats.checksums_unverified += 1
        else:
            local = okx_checksum(self.book)
            if local != msg.checksum:
                self.stats.checksum_failures += 1
                detail = f"checksum {msg.checksum} from the exchange, {local} computed, at id {update_id}"
                return self.fault("checksum_failure", detail, update_id, msg.recv_ns)
            self.stats.checksums_verified += 1
        if self.book.is_crossed():
            self.stats.crossed += 1
            return self.fault("crossed", f"book crossed at id {update_id}", update_id, msg.recv_ns)
        return []

    def _full(self, update_type: UpdateType, msg: OkxBookMessage) -> BookFull:
        depth = self.published_depth()
        full = self.full_book(
            update_type, self.seq_id, None, self.prev_seq_id, self.seq_id, self.checksum, self._exchange_ms, msg.recv_ns,
            depth=depth,
        )
        full.kept_bids = self.book.bids.below(depth)
        full.kept_asks = self.book.asks.below(depth)
        deep = self._deep
        if deep is not None and (msg.recv_ns - deep.recv_ns) // 1_000_000 <= self.settings.deep_max_age_ms:
            room = self.settings.depth - depth
            full.deep_bids = self._below(self.book.bids, depth, deep.bids, room)
            full.deep_asks = self._below(self.book.asks, depth, deep.asks, room)
            full.deep_age_ms = (msg.recv_ns - deep.recv_ns) // 1_000_000
        return full
