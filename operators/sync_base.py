"""What every venue's sync machine shares: the book, its counters, and how it speaks.

A machine consumes decoded messages for one `venue:symbol` and returns normalized events.
It never publishes a book it cannot vouch for: any detected fault drops the book, emits a
quality event and a `ResyncRequest`, and only a fresh snapshot makes it valid again.
Every change of state is said as a quality event (`in_sync` / `out_of_sync`, with the
reason), and a watchdog (`watch`, driven by the caller's clock) makes sure no book stays
out of sync without its source being asked, ever more firmly, to act.
"""

from __future__ import annotations

import zlib

from dataclasses import dataclass

from operators.book import OrderBook
from schemas.events import (
    BookDelta, BookFull, BookStats, QualityEvent, QualityKind, ResyncRequest, SourceAction, UpdateType,
)  # fmt: skip

# At most this many error sentences are kept per book; the count of rejects is exact.
MAX_ERRORS_PER_BOOK = 100
# What the watchdog asks of the source on its first, second and later timeouts.
ESCALATION: tuple[SourceAction, ...] = ("snapshot", "resubscribe", "reconnect")


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """Knobs of the sync machines; defaults follow the product (5000 levels, 1 s fulls)."""

    depth: int = 5000
    full_interval_ms: int = 1000
    # `orderbook.snapshot`: the first book of every such slot of exchange time.
    snapshot_interval_ms: int = 10_000
    max_buffered_diffs: int = 10_000
    # Best levels per side carried by each delta, for consumers of `orderbook.delta`.
    delta_top_levels: int = 20
    # Binance audits: a fresh snapshot every `audit_interval_ms` per book (None: never ask),
    # early when a side's exact depth falls below `audit_exact_share` of `depth`, but never
    # two requests of one book within `audit_min_gap_ms`. `audit_retained_diffs` applied
    # diffs are kept to bring an older snapshot up to the live book.
    audit_interval_ms: int | None = 60_000
    audit_min_gap_ms: int = 10_000
    audit_exact_share: float = 0.95
    audit_retained_diffs: int = 600
    # The watchdog: a book not in sync this long has its source asked to act again.
    watchdog_ms: int = 30_000
    # OKX: books-full levels older than this are not published.
    deep_max_age_ms: int = 5_000


class SyncMachine:
    """Shared state and output helpers; subclasses implement `handle` for their venue."""

    def __init__(self, venue: str, symbol: str, settings: SyncSettings) -> None:
        self.venue = venue
        self.symbol = symbol
        self.settings = settings
        self.book = OrderBook()
        self.synced = False
        self.stats = BookStats()
        self._next_full_ns: int | None = None  # when a periodic full book is due; None: no book yet
        self._snapshot_slot: int | None = None
        # Every book in sync enters the next snapshot slot at the same exchange time and
        # publishes a full book there; its periodic ones then follow this much later than
        # one interval, so that the books of a process do not all publish theirs in the same
        # millisecond (each is hundreds of KB: encoded one after another, and through
        # JetStream, they waited for each other). Fixed per book: replays stay deterministic.
        self._full_phase_ns = zlib.crc32(f"{venue}:{symbol}".encode()) % (settings.full_interval_ms * 1_000_000)
        # The watchdog's clock: since when the book has been out of sync, how often it barked,
        # and when anything (book, trade, ticker) was last heard for this key.
        self._out_since_ns: int | None = None
        self._escalation = 0
        self.heard_ns: int | None = None
        # After a restart: the last update id published before it, until the book is back in sync.
        self.resumed_after: int | None = None

    # -- reporting -------------------------------------------------------------------

    def snapshot_stats(self) -> BookStats:
        """The counters plus the book's current top and size (None while unsynced)."""
        stats = self.stats
        if self.synced:
            bid, ask = self.book.bids.best(), self.book.asks.best()
            stats.best_bid = bid[0] if bid else None
            stats.best_ask = ask[0] if ask else None
            stats.bid_levels = min(len(self.book.bids), self.published_depth())
            stats.ask_levels = min(len(self.book.asks), self.published_depth())
            stats.exact_bid_levels, stats.exact_ask_levels = self.exact_depths()
        else:
            stats.best_bid = stats.best_ask = None
            stats.bid_levels = stats.ask_levels = None
            stats.exact_bid_levels = stats.exact_ask_levels = None
        return stats

    def exact_depths(self) -> tuple[int, int]:
        """Levels per side, from the top, that are provably the exchange's (at most the published depth)."""
        depth = self.published_depth()
        return min(self.book.bids.exact_levels(), depth), min(self.book.asks.exact_levels(), depth)

    def published_depth(self) -> int:
        """How many levels per side this machine vouches for."""
        return self.settings.depth

    def note_error(self, text: str) -> None:
        if len(self.stats.errors) < MAX_ERRORS_PER_BOOK:
            self.stats.errors.append(f"{self.venue}:{self.symbol}: {text}")
        else:
            self.stats.errors_omitted += 1

    def reject(self, reason: str, recv_ns: int) -> list[object]:
        """Count a refused message; the book is untouched (a chain gap will show later)."""
        self.stats.messages += 1
        self.stats.rejected += 1
        self.note_error(f"rejected message: {reason}")
        return [QualityEvent(self.venue, self.symbol, "rejected", reason, None, recv_ns)]

    # -- state -----------------------------------------------------------------------

    def went_in_sync(self, reason: str, update_id: int | None, recv_ns: int) -> list[object]:
        """Mark the book valid; an `in_sync` event when it was not, after a `gap` event for
        what a restart missed (the ids between the last one published before it and this)."""
        was = self.synced
        self.synced = True
        self._out_since_ns = None
        self._escalation = 0
        if was:
            return []
        out: list[object] = []
        before, self.resumed_after = self.resumed_after, None
        if before is not None and update_id is not None and update_id > before + 1:
            self.stats.gaps += 1
            detail = f"restarted: update ids {before + 1}..{update_id} came while the collector was down"
            self.note_error(f"gap: {detail}")
            out.append(QualityEvent(self.venue, self.symbol, "gap", detail, update_id, recv_ns))
        out.append(QualityEvent(self.venue, self.symbol, "in_sync", reason, update_id, recv_ns))
        return out

    def _went_out_of_sync(self, reason: str, update_id: int | None, recv_ns: int) -> list[object]:
        was = self.synced
        self.synced = False
        self._snapshot_slot = None
        if self._out_since_ns is None or was:
            self._out_since_ns = recv_ns
        if not was:
            return []
        return [QualityEvent(self.venue, self.symbol, "out_of_sync", reason, update_id, recv_ns)]

    # -- faults ----------------------------------------------------------------------

    def fault(
        self, kind: QualityKind, detail: str, update_id: int | None, recv_ns: int, action: SourceAction = "snapshot"
    ) -> list[object]:
        """Drop the book, say why, and ask the source to act (by default: a fresh snapshot)."""
        self.book.clear()
        self._next_full_ns = None
        self.stats.resyncs += 1
        self.note_error(f"{kind}: {detail}; book dropped, resync requested")
        return [
            QualityEvent(self.venue, self.symbol, kind, detail, update_id, recv_ns),
            *self._went_out_of_sync(f"{kind}: {detail}", update_id, recv_ns),
            ResyncRequest(self.venue, self.symbol, f"{kind}: {detail}", recv_ns, action=action),
        ]

    def watch(self, now_ns: int) -> list[object]:
        """The watchdog, called now and then with the caller's clock: a book out of sync for
        `watchdog_ms` (since the start, a fault, or the last bark) has its source asked to
        act again, from a new snapshot to a new subscription to a new connection. A book in
        sync that has heard nothing at all for as long cannot vouch for itself either (a
        silent socket looks like a quiet market): it goes out of sync, with a new connection
        asked for."""
        if self.synced:
            heard = self.heard_ns
            if heard is None or (now_ns - heard) // 1_000_000 < self.settings.watchdog_ms:
                return []
            detail = f"nothing heard for {(now_ns - heard) / 1e9:.1f} s"
            return self.fault("silent", detail, self.stats.last_update_id, now_ns, action="reconnect")
        if self._out_since_ns is None:
            self._out_since_ns = now_ns  # the first look: the clock starts now
            return []
        waited_ms = (now_ns - self._out_since_ns) // 1_000_000
        if waited_ms < self.settings.watchdog_ms:
            return []
        action = ESCALATION[min(self._escalation, len(ESCALATION) - 1)]
        self._escalation += 1
        self._out_since_ns = now_ns
        self.stats.watchdog_actions += 1
        detail = f"not in sync for {waited_ms / 1000:.1f} s; asking the source to {action}"
        self.note_error(f"sync_timeout: {detail}")
        return [
            QualityEvent(self.venue, self.symbol, "sync_timeout", detail, None, now_ns),
            ResyncRequest(self.venue, self.symbol, f"sync_timeout: {detail}", now_ns, action=action),
        ]

    # -- output ----------------------------------------------------------------------

    def full_book(
        self,
        update_type: UpdateType,
        last_id: int | None,
        first_id: int | None,
        prev_id: int | None,
        sequence_id: int | None,
        checksum: int | None,
        exchange_ms: int | None,
        recv_ns: int,
        depth: int | None = None,
    ) -> BookFull:
        """The book's best `depth` levels (default: the settings') as a valid full book."""
        self.stats.last_recv_ns = recv_ns
        depth = min(depth or self.settings.depth, self.settings.depth)
        exact_bids, exact_asks = self.exact_depths()
        in_a_slot = self._snapshot_slot is not None  # since the book is in sync
        entered = self._enter_snapshot_slot(exchange_ms, recv_ns)
        phase = self._full_phase_ns if entered and in_a_slot else 0  # the slot boundary all books share
        self._next_full_ns = recv_ns + self.settings.full_interval_ms * 1_000_000 + phase
        return BookFull(
            venue=self.venue,
            symbol=self.symbol,
            update_type=update_type,
            last_update_id=last_id,
            first_update_id=first_id,
            prev_update_id=prev_id,
            sequence_id=sequence_id,
            bids=self.book.bids.top(depth),
            asks=self.book.asks.top(depth),
            checksum=checksum,
            is_valid=True,
            validation_errors=[],
            exchange_ms=exchange_ms,
            recv_ns=recv_ns,
            exact_bid_levels=exact_bids,
            exact_ask_levels=exact_asks,
            snapshot_slot_start=entered or update_type == "snapshot",
        )

    def _snapshot_slot_of(self, exchange_ms: int | None, recv_ns: int) -> int:
        ms = exchange_ms if exchange_ms is not None else recv_ns // 1_000_000
        return ms // self.settings.snapshot_interval_ms

    def _enter_snapshot_slot(self, exchange_ms: int | None, recv_ns: int) -> bool:
        slot = self._snapshot_slot_of(exchange_ms, recv_ns)
        entered = slot != self._snapshot_slot
        self._snapshot_slot = slot
        return entered

    def full_due(self, exchange_ms: int | None, recv_ns: int) -> bool:
        """A periodic full book is due: the full interval has passed (after the full book at
        a slot boundary, plus the book's phase), or the book just entered a new snapshot slot
        of exchange time (recording time, so replays are deterministic)."""
        due = self._next_full_ns
        if due is None:
            return False
        if recv_ns >= due:
            return True
        return self._snapshot_slot_of(exchange_ms, recv_ns) != self._snapshot_slot

    def delta(
        self,
        update_id: int,
        prev_id: int | None,
        first_id: int | None,
        raw_bids: list[list[str]],
        raw_asks: list[list[str]],
        exchange_ms: int | None,
        recv_ns: int,
    ) -> BookDelta:
        self.stats.last_recv_ns = recv_ns
        top = min(self.settings.delta_top_levels, self.published_depth())
        return BookDelta(
            self.venue, self.symbol, update_id, prev_id, first_id, raw_bids, raw_asks, exchange_ms, recv_ns,
            self.book.bids.top(top), self.book.asks.top(top),
        )
