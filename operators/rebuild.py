"""Rebuilding a book from storage: the nearest full book, then the deltas after it.

Pure: the caller reads the events; this only proves they chain and applies them, with the
same book structure and value checks as the live engine.
"""

from __future__ import annotations

from collections.abc import Iterable

from operators.book import OrderBook
from operators.levels import parse_side
from schemas.events import BookDelta, BookFull


class BrokenChain(ValueError):
    """The stored deltas do not continue the stored full book: the book cannot be vouched for."""


def rebuild(full: BookFull, deltas: Iterable[BookDelta], until_id: int | None = None) -> tuple[OrderBook, int | None]:
    """The book of `full` moved forward by the deltas that follow it (up to `until_id`);
    returns the book and the update id it is at."""
    book = OrderBook()
    bids = [list(level[:2]) for level in [*full.bids, *full.kept_bids]]
    asks = [list(level[:2]) for level in [*full.asks, *full.kept_asks]]
    book.bids.replace(parse_side(bids, "bids", True), None)
    book.asks.replace(parse_side(asks, "asks", False), None)
    at = full.last_update_id
    for delta in deltas:
        if at is not None and delta.update_id <= at:
            continue
        if until_id is not None and delta.update_id > until_id:
            break
        if delta.prev_update_id != at:
            raise BrokenChain(f"delta {delta.update_id} follows {delta.prev_update_id}, the book is at {at}")
        book.apply(parse_side(delta.bid_updates, "bid_updates", True), parse_side(delta.ask_updates, "ask_updates", False))
        at = delta.update_id
    return book, at
