"""One book's stored events back in the order book_sync emitted them (pure).

Storage keeps each kind of event in its own table, sorted by exchange time, but what a
consumer of the events computes (the feature engine: which trades fall before which
update, where a fault breaks the book) depends on the order book_sync emitted them in,
which is the order their messages arrived in. That order is rebuilt from what is stored:

- full books and deltas follow the update ids, a delta before the full book at its id (a
  periodic full book follows the delta that brought the book there; a new sync's snapshot
  precedes the deltas above its id). Update ids must not go back within what is ordered
  (an OKX sequence reset would), as for `operators.stored_books`: a ValueError says so;
- each book event was emitted when the message that made it arrived: its own receive time,
  except deltas buffered before a snapshot and applied after it, which came out at the
  snapshot's. That is the running maximum of the receive times along the update ids;
- trades and quality events were emitted at their receive time. At equal times: a trade
  first (its message cannot be the one that made a book event), then by update id (a
  quality event naming none first), and at one id a delta before a quality event before a
  full book: a new sync says so before its snapshot, an audit's verdict follows the delta
  it checked and precedes the book it publishes.

The rebuilt order is the emitted one when the input arrived in receive-time order (as a
recording is replayed) and no two messages share a receive time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence

from schemas.events import BookDelta, BookFull, QualityEvent, Trade

_DELTA, _QUALITY, _FULL = 0, 1, 2
_NO_ID = -1

Key = tuple[int, int, int]


def _book_position(event: BookDelta | BookFull) -> tuple[int, int]:
    if isinstance(event, BookDelta):
        return event.update_id, _DELTA
    return event.last_update_id or 0, _FULL


def _book_events(fulls: Iterable[BookFull], deltas: Sequence[BookDelta]) -> Iterator[tuple[Key, object]]:
    """Full books (in update-id order, as stored) and deltas, each with the time it came out."""
    emitted_ns, last = 0, (0, _DELTA)
    ordered = heapq.merge(sorted(deltas, key=_book_position), fulls, key=_book_position)
    for event in ordered:
        position = _book_position(event)
        if position < last:
            raise ValueError(f"{event.venue}:{event.symbol}: full book {position[0]} stored after update {last[0]}: "
                             "the update ids go back (a sequence reset?), so the emitted order cannot be rebuilt "
                             "across it; build the stretches before and after it apart")
        emitted_ns, last = max(emitted_ns, event.recv_ns), position
        yield (emitted_ns, *position), event


def _market_key(event: Trade | QualityEvent) -> Key:
    if isinstance(event, Trade):
        return event.recv_ns, _NO_ID - 1, _QUALITY
    return event.recv_ns, _NO_ID if event.update_id is None else event.update_id, _QUALITY


def emission_order(
    fulls: Iterable[BookFull], deltas: Sequence[BookDelta], market: Iterable[Trade | QualityEvent]
) -> Iterator[object]:
    """One book's events in emitted order; `fulls` may be a generator (a long stretch of
    full books is never held at once), in update-id order."""
    others = sorted(((_market_key(event), event) for event in market), key=lambda item: item[0])
    for _, event in heapq.merge(_book_events(fulls, deltas), others, key=lambda item: item[0]):
        yield event
