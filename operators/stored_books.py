"""Full books back from their stored rows: keyframes, and books written against the previous one.

Pure: the caller reads one book's rows (`schemas.clickhouse_rows.StoredFullBook`, in key
order) and its deltas; this walks them forward. A row written against a base (the row
before it) is either the base book moved by the deltas in between, down to the base's
deepest level per side, then the stored tail, or the base with the stored level changes;
cut at the stored counts; its OKX books-full levels are the base's with the stored changes. Each step proves the chain: a row whose base is not the row before it,
or deltas that do not continue the book, raise `BrokenChain`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from operators.book import BookSide, OrderBook
from operators.levels import parse_side
from operators.rebuild import BrokenChain
from schemas.clickhouse_rows import CHANGES, StoredFullBook
from schemas.events import BookDelta, BookFull, PriceQty


def _side(levels: Sequence[PriceQty], bids: bool) -> BookSide:
    side = BookSide()
    side.replace(parse_side([list(level) for level in levels], "bids" if bids else "asks", bids), None)
    return side


def _continue(side: BookSide, base_edge: float | None, tail: Sequence[PriceQty], count: int, bids: bool) -> None:
    """Keep the levels down to the base's deepest one (none if the base side was empty), add
    the stored tail below them, keep the best `count`."""
    cut = len(side.keys) if base_edge is None else bisect_left(side.keys, base_edge)
    tail_side = _side(tail, bids)
    side.keys[:cut] = tail_side.keys
    side.wires[:cut] = tail_side.wires
    if len(side.keys) < count:
        raise BrokenChain(f"{len(side.keys)} levels rebuilt where the stored book had {count}")
    extra = len(side.keys) - count
    del side.keys[:extra], side.wires[:extra]


def _check_count(side: BookSide, count: int) -> None:
    if len(side.keys) != count:
        raise BrokenChain(f"{len(side.keys)} levels rebuilt where the stored book had {count}")


class _Walk:
    """One book's stored rows walked forward, with its deltas."""

    def __init__(self, deltas: Sequence[BookDelta]) -> None:
        self.deltas = deltas
        self.next_delta = 0
        self.book: OrderBook | None = None
        self.deep: tuple[BookSide, BookSide] | None = None
        self.full: BookFull | None = None

    def whole(self, row: StoredFullBook) -> BookFull:
        full = row.book
        self.book = OrderBook()
        self.book.bids = _side([*full.bids, *full.kept_bids], True)
        self.book.asks = _side([*full.asks, *full.kept_asks], False)
        self.deep = (_side(full.deep_bids, True), _side(full.deep_asks, False))
        return full

    def written_against(self, row: StoredFullBook) -> BookFull:
        base, book, deep = self.full, self.book, self.deep
        stored = row.book
        if base is None or book is None or deep is None or base.last_update_id != row.base_update_id:
            at = None if base is None else base.last_update_id
            raise BrokenChain(f"full book {stored.last_update_id} is written against {row.base_update_id}, "
                              f"the book before it in storage is at {at}")
        if row.encoding == CHANGES:
            book.apply(parse_side([list(level) for level in stored.bids], "bids", True),
                       parse_side([list(level) for level in stored.asks], "asks", False))
            _check_count(book.bids, row.bid_levels + row.kept_bid_levels)
            _check_count(book.asks, row.ask_levels + row.kept_ask_levels)
        else:
            edges = (book.bids.keys[0] if book.bids.keys else None, book.asks.keys[0] if book.asks.keys else None)
            self._advance(book, base.last_update_id, stored.last_update_id)  # type: ignore[arg-type]
            _continue(book.bids, edges[0], stored.bids, row.bid_levels + row.kept_bid_levels, True)
            _continue(book.asks, edges[1], stored.asks, row.ask_levels + row.kept_ask_levels, False)
        deep[0].apply(parse_side([list(level) for level in stored.deep_bids], "deep_bids", True))
        deep[1].apply(parse_side([list(level) for level in stored.deep_asks], "deep_asks", False))
        bids, asks = book.bids.levels(), book.asks.levels()  # [price, quantity] lists, never changed in place
        stored.bids, stored.kept_bids = bids[: row.bid_levels], bids[row.bid_levels :]
        stored.asks, stored.kept_asks = asks[: row.ask_levels], asks[row.ask_levels :]
        stored.deep_bids, stored.deep_asks = deep[0].levels(), deep[1].levels()
        return stored

    def _advance(self, book: OrderBook, at: int, until: int) -> None:
        deltas = self.deltas
        while self.next_delta < len(deltas) and deltas[self.next_delta].update_id <= until:
            delta = deltas[self.next_delta]
            self.next_delta += 1
            if delta.update_id <= at:
                continue
            if delta.prev_update_id != at:
                raise BrokenChain(f"delta {delta.update_id} follows {delta.prev_update_id}, the book is at {at}")
            book.apply(parse_side(delta.bid_updates, "bid_updates", True),
                       parse_side(delta.ask_updates, "ask_updates", False))
            at = delta.update_id
        if at != until:
            raise BrokenChain(f"the stored deltas bring the book to {at}, not to the full book's {until}")


def full_books(rows: Sequence[StoredFullBook], deltas: Sequence[BookDelta]) -> list[BookFull]:
    """Every stored full book of one book as it was published, from its rows in key order
    and the deltas of the same stretch (in key order, as read). Rows before the first
    whole one cannot be read without earlier rows and are left out."""
    walk = _Walk(deltas)
    out: list[BookFull] = []
    for row in rows:
        if row.base_update_id is None:
            full = walk.whole(row)
        elif walk.full is None:
            continue  # the whole row it goes back to lies before what was read
        else:
            full = walk.written_against(row)
        walk.full = full
        out.append(full)
    return out
