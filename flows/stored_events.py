"""One book's stored events, read back from ClickHouse in the order book_sync emitted them:
what `dataset build --from clickhouse` feeds the feature engine instead of a replay.

Full books are rebuilt as published (`operators.stored_books`) one keyframe at a time, so
an hour of 5000-level books is never held at once; deltas, trades and quality events of
the stretch are read whole (they are small) and `operators.emission_order` puts it all in
the emitted order. In flows/ because it joins storage I/O with operators' logic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from connectors.clickhouse_backend import Backend, read_events
from operators.emission_order import emission_order
from operators.stored_books import full_books
from schemas.clickhouse import KEYFRAME_INTERVAL_MS, ORDERBOOK_DELTAS, ORDERBOOK_FULL_DEPTH, QUALITY_EVENTS, TRADES
from schemas.clickhouse_rows import StoredFullBook
from schemas.events import BookDelta, BookFull, QualityEvent, Trade

# Deltas buffered before a snapshot carry earlier exchange times than it, and a trade's
# exchange time may lie after the update that follows it: read this much on either side.
MARGIN_MS = 60_000


def _by_keyframe(rows: Sequence[StoredFullBook], deltas: Sequence[BookDelta]) -> Iterator[BookFull]:
    """The full books of `rows`, rebuilt one run of rows from a whole one to the next at a time."""
    starts = [i for i, row in enumerate(rows) if row.base_update_id is None] + [len(rows)]
    for start, stop in zip(starts, starts[1:]):
        yield from full_books(rows[start:stop], deltas)


def _time_ms(book: BookFull) -> int:
    return book.exchange_ms if book.exchange_ms is not None else book.recv_ns // 1_000_000


def stored_events(
    backend: Backend, database: str, venue: str, symbol: str, *, since_ms: int | None = None,
    until_ms: int | None = None,
) -> Iterator[object]:
    """Full books, deltas, trades and quality events of `venue:symbol` in emitted order, from
    the first stored full book (from the keyframe before `since_ms` less MARGIN_MS, when
    given) to `until_ms` plus MARGIN_MS. Nothing when no full book is stored there."""
    keyframe = None if since_ms is None else (since_ms - MARGIN_MS) // KEYFRAME_INTERVAL_MS * KEYFRAME_INTERVAL_MS
    until = None if until_ms is None else until_ms + MARGIN_MS
    rows = [row for row in read_events(backend, database, ORDERBOOK_FULL_DEPTH, venue, symbol,
                                       since_ms=keyframe, until_ms=until) if isinstance(row, StoredFullBook)]
    if not rows:
        return
    # From the start of storage when no start is given: a trade before the first full book
    # counts in the first sample, as in a replay of the whole recording.
    since = None if since_ms is None else _time_ms(rows[0].book) - MARGIN_MS
    deltas = [d for d in read_events(backend, database, ORDERBOOK_DELTAS, venue, symbol, since_ms=since, until_ms=until)
              if isinstance(d, BookDelta)]
    market = [e for table in (TRADES, QUALITY_EVENTS)
              for e in read_events(backend, database, table, venue, symbol, since_ms=since, until_ms=until)
              if isinstance(e, (Trade, QualityEvent))]
    yield from emission_order(_by_keyframe(rows, deltas), deltas, market)
