"""What every venue's sync machine shares: the book, its counters, and how it speaks.

A machine consumes decoded messages for one `venue:symbol` and returns normalized events.
It never publishes a book it cannot vouch for: any detected fault drops the book, emits a
quality event and a `ResyncRequest`, and only a fresh snapshot makes it valid again.
"""

from __future__ import annotations

from dataclasses import dataclass

from operators.book import OrderBook
from schemas.events import BookDelta, BookFull, BookStats, QualityEvent, QualityKind, ResyncRequest, UpdateType

# At most this many error sentences are kept per book; the count of rejects is exact.
MAX_ERRORS_PER_BOOK = 100


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """Knobs of the sync machines; defaults follow the product (5000 levels, 1 s fulls)."""

    depth: int = 5000
    full_interval_ms: int = 1000
    max_buffered_diffs: int = 10_000
    # Best levels per side carried by each delta, for consumers of `orderbook.delta`.
    delta_top_levels: int = 20


class SyncMachine:
    """Shared state and output helpers; subclasses implement `handle` for their venue."""

    def __init__(self, venue: str, symbol: str, settings: SyncSettings) -> None:
        self.venue = venue
        self.symbol = symbol
        self.settings = settings
        self.book = OrderBook()
        self.synced = False
        self.stats = BookStats()
        self._last_full_ns: int | None = None

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
        else:
            stats.best_bid = stats.best_ask = None
            stats.bid_levels = stats.ask_levels = None
        return stats

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

    # -- faults ----------------------------------------------------------------------

    def fault(self, kind: QualityKind, detail: str, update_id: int | None, recv_ns: int) -> list[object]:
        """Drop the book, say why, and ask the source for a fresh snapshot."""
        self.book.clear()
        self.synced = False
        self._last_full_ns = None
        self.stats.resyncs += 1
        self.note_error(f"{kind}: {detail}; book dropped, resync requested")
        return [
            QualityEvent(self.venue, self.symbol, kind, detail, update_id, recv_ns),
            ResyncRequest(self.venue, self.symbol, f"{kind}: {detail}", recv_ns),
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
        self._last_full_ns = recv_ns
        self.stats.last_recv_ns = recv_ns
        depth = min(depth or self.settings.depth, self.settings.depth)
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
        )

    def full_due(self, recv_ns: int) -> bool:
        """A periodic full book is due (recording time, so replays are deterministic)."""
        last = self._last_full_ns
        return last is not None and recv_ns - last >= self.settings.full_interval_ms * 1_000_000

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
