"""Auditing a live Binance book against a fresh snapshot.

A snapshot is taken at its own update id; the live book stands at another. The shadow
book is built from the snapshot and brought to the live book's id with the same diffs
the live book applied (older ones retained, newer ones as they arrive), then the two
are compared level by level over the window both know to be exact.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from operators.book import BookSide, OrderBook
from operators.wire import DepthDiff, DepthSnapshot


class Shadow:
    """A book built from an audit snapshot, moved forward by the live book's diffs."""

    __slots__ = ("book", "last_id")

    def __init__(self, snap: DepthSnapshot, bid_horizon: float | None, ask_horizon: float | None) -> None:
        self.book = OrderBook()
        self.book.bids.replace(snap.bids, bid_horizon)
        self.book.asks.replace(snap.asks, ask_horizon)
        self.last_id = snap.last_id

    def catch_up(self, diff: DepthDiff) -> bool:
        """Apply a diff the live book just applied; True once the shadow stands where the live book does.

        The live book's diffs are contiguous, so the first one past the snapshot's id
        bridges it (U <= lastUpdateId + 1 <= u).
        """
        if diff.last_id <= self.last_id:
            return False  # already in the snapshot
        self.book.apply(diff.bids, diff.asks)
        self.last_id = diff.last_id
        return True

    def replay(self, applied: Iterable[DepthDiff], live_id: int) -> bool:
        """Bring an older snapshot up to `live_id` with retained diffs; False when they do not reach back to it."""
        newer = [diff for diff in applied if diff.last_id > self.last_id]
        if newer and newer[0].first_id > self.last_id + 1:
            return False
        if not newer and self.last_id != live_id:
            return False
        for diff in newer:
            self.book.apply(diff.bids, diff.asks)
        self.last_id = live_id
        return True


def _exact_bound(live: BookSide, shadow: BookSide) -> tuple[int, int]:
    """How many levels of each side, from the top, lie inside both horizons (the window both know exactly)."""
    horizons = [h for h in (live.horizon, shadow.horizon) if h is not None]
    if not horizons:
        return len(live.keys), len(shadow.keys)
    bound = max(horizons)  # the shallower one: keys grow towards the best level
    return len(live.keys) - bisect_left(live.keys, bound), len(shadow.keys) - bisect_left(shadow.keys, bound)


def _side_difference(name: str, live: BookSide, shadow: BookSide) -> str | None:
    n_live, n_shadow = _exact_bound(live, shadow)
    live_levels, shadow_levels = live.top(n_live), shadow.top(n_shadow)
    live_keys, shadow_keys = live.keys[len(live.keys) - n_live :], shadow.keys[len(shadow.keys) - n_shadow :]
    live_qty = [wire[1] for wire in live_levels]
    shadow_qty = [wire[1] for wire in shadow_levels]
    if live_keys == shadow_keys and live_qty == shadow_qty:
        return None
    for rank in range(max(n_live, n_shadow)):
        have = live_levels[rank] if rank < n_live else None
        want = shadow_levels[rank] if rank < n_shadow else None
        if have is None or want is None or live_keys[-1 - rank] != shadow_keys[-1 - rank] or have[1] != want[1]:
            shown_have = f"{have[0]} x {have[1]}" if have is not None else "nothing"
            shown_want = f"{want[0]} x {want[1]}" if want is not None else "nothing"
            return f"{name} level {rank + 1}: the book had {shown_have}, the exchange has {shown_want}"
    return None  # pragma: no cover - the slices differed, so some rank does


def first_difference(live: OrderBook, shadow: OrderBook) -> str | None:
    """The first level where the two books differ inside their common exact window, or None."""
    return _side_difference("bid", live.bids, shadow.bids) or _side_difference("ask", live.asks, shadow.asks)
