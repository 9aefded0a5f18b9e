"""Reading books back from ClickHouse: stored full books as published, and a book at a moment.

In flows/ because it joins storage I/O (connectors) with the rebuild logic (operators)."""

from __future__ import annotations

from connectors.clickhouse_backend import Backend, read_events
from operators.book import OrderBook
from operators.rebuild import rebuild
from operators.stored_books import full_books
from schemas.clickhouse import KEYFRAME_INTERVAL_MS, ORDERBOOK_DELTAS, ORDERBOOK_FULL_DEPTH
from schemas.clickhouse_rows import StoredFullBook
from schemas.events import BookDelta, BookFull

# Diffs buffered before a snapshot carry earlier times but later ids: read deltas from a
# little before the first full book and let the update ids decide.
LOOK_BACK_MS = 60_000


def read_full_books(
    backend: Backend, database: str, venue: str, symbol: str, *, since_ms: int | None = None, until_ms: int | None = None
) -> list[BookFull]:
    """One book's stored full books with exchange times in [since_ms, until_ms], each as it
    was published. Rows are read from the start of the slot of `since_ms` (a slot's first
    full book is stored whole), the deltas from a little earlier, so that every full book
    in the range can be rebuilt."""
    start = None if since_ms is None else since_ms // KEYFRAME_INTERVAL_MS * KEYFRAME_INTERVAL_MS
    rows = read_events(backend, database, ORDERBOOK_FULL_DEPTH, venue, symbol, since_ms=start, until_ms=until_ms)
    stored = [row for row in rows if isinstance(row, StoredFullBook)]
    if not stored:
        return []
    first = stored[0].book
    deltas_from = (first.exchange_ms if first.exchange_ms is not None else first.recv_ns // 1_000_000) - LOOK_BACK_MS
    deltas = read_events(backend, database, ORDERBOOK_DELTAS, venue, symbol, since_ms=deltas_from, until_ms=until_ms)
    books = full_books(stored, [d for d in deltas if isinstance(d, BookDelta)])
    return [b for b in books if since_ms is None or b.exchange_ms is None or b.exchange_ms >= since_ms]


def book_at_time(backend: Backend, database: str, venue: str, symbol: str, at_ms: int) -> tuple[OrderBook, int | None]:
    """The book as it was at `at_ms` (exchange time), and its update id."""
    fulls = read_full_books(backend, database, venue, symbol, since_ms=at_ms - LOOK_BACK_MS, until_ms=at_ms)
    if not fulls:
        raise LookupError(f"no stored full book of {venue}:{symbol} at or before {at_ms}")
    full = fulls[-1]
    since = (full.exchange_ms if full.exchange_ms is not None else full.recv_ns // 1_000_000) - LOOK_BACK_MS
    deltas = read_events(backend, database, ORDERBOOK_DELTAS, venue, symbol, since_ms=since, until_ms=at_ms)
    return rebuild(full, [d for d in deltas if isinstance(d, BookDelta)])
