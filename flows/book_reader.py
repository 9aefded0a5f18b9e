"""Reading a book back from ClickHouse at a moment: nearest full book plus the deltas after it.

In flows/ because it joins storage I/O (connectors) with the rebuild logic (operators)."""

from __future__ import annotations

from connectors.clickhouse_backend import Backend, read_events
from operators.book import OrderBook
from operators.rebuild import rebuild
from schemas.clickhouse import ORDERBOOK_DELTAS, ORDERBOOK_FULL_DEPTH
from schemas.events import BookDelta, BookFull

LOOK_BACK_MS = 60_000


def book_at_time(backend: Backend, database: str, venue: str, symbol: str, at_ms: int) -> tuple[OrderBook, int | None]:
    """The book as it was at `at_ms` (exchange time), and its update id."""
    fulls = read_events(backend, database, ORDERBOOK_FULL_DEPTH, venue, symbol, until_ms=at_ms, newest_first=True, limit=1)
    if not fulls:
        raise LookupError(f"no stored full book of {venue}:{symbol} at or before {at_ms}")
    full = fulls[0]
    assert isinstance(full, BookFull)
    # Diffs buffered before a snapshot carry earlier times but later ids: look back a
    # little and let the update ids decide.
    since = (full.exchange_ms if full.exchange_ms is not None else full.recv_ns // 1_000_000) - LOOK_BACK_MS
    deltas = read_events(backend, database, ORDERBOOK_DELTAS, venue, symbol, since_ms=since, until_ms=at_ms)
    return rebuild(full, [d for d in deltas if isinstance(d, BookDelta)])
