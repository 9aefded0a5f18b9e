"""The order book: exact decimal strings, ordered by a float key, for 5000+ levels per side.

Why this shape: a sorted Python list of float keys with `bisect` inserts and removes in C
(a 40 KB memmove at 5000 levels, about a microsecond), and a dict answers "is this price
here / what is its text" in O(1). The best level is always index 0, so top-of-book and
top-N reads never re-sort. The dict holds the level exactly as the wire delivered it
(`[price, quantity, ...]`, the parser's own list), so nothing is copied per level.

Identity by float is exact here: a decimal of at most 15 significant digits maps to a
unique IEEE-754 double, and `operators.levels` rejects prices with more.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass

# A wire level, `[price, quantity, ...]` as received; only the first two entries are used.
WireLevel = Sequence[str]


@dataclass(slots=True)
class LevelChanges:
    """One side of a parsed message: parallel lists, no object per level.

    `keys[i]` is the sort key of `wires[i]` (bids use the negated price, so both sides keep
    their best level at index 0); `wires[i]` is None where the wire said quantity 0.
    """

    keys: list[float]
    wires: list[WireLevel | None]

    def __len__(self) -> int:
        return len(self.keys)


class BookSide:
    """One side of a book. Levels deeper than `horizon` (a key) are unknown and not kept."""

    __slots__ = ("keys", "levels", "horizon")

    def __init__(self) -> None:
        self.keys: list[float] = []
        self.levels: dict[float, WireLevel] = {}
        self.horizon: float | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def replace(self, snapshot: LevelChanges, horizon: float | None) -> None:
        """Load a snapshot. Zero quantities in a snapshot mean "no level"."""
        self.levels = {key: wire for key, wire in zip(snapshot.keys, snapshot.wires) if wire is not None}
        self.keys = sorted(self.levels)
        self.horizon = horizon

    def apply(self, changes: LevelChanges) -> None:
        """Apply one side of an increment: upsert, or remove where the wire said 0."""
        keys, levels, horizon = self.keys, self.levels, self.horizon
        for key, wire in zip(changes.keys, changes.wires):
            if wire is None:
                if levels.pop(key, None) is not None:
                    del keys[bisect_left(keys, key)]
            elif key in levels:
                levels[key] = wire
            elif horizon is None or key <= horizon:
                insort(keys, key)
                levels[key] = wire

    def truncate(self, depth: int) -> None:
        """Forget levels past the best `depth` (a venue that only maintains a window)."""
        if len(self.keys) > depth:
            levels = self.levels
            for key in self.keys[depth:]:
                del levels[key]
            del self.keys[depth:]

    def best(self) -> WireLevel | None:
        return self.levels[self.keys[0]] if self.keys else None

    def top(self, depth: int) -> list[WireLevel]:
        """The best `depth` levels as wire levels (`[price, quantity, ...]`), best first."""
        return list(map(self.levels.__getitem__, self.keys[:depth]))


class OrderBook:
    """Both sides of one instrument's book."""

    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids = BookSide()
        self.asks = BookSide()

    def clear(self) -> None:
        self.bids = BookSide()
        self.asks = BookSide()

    def apply(self, bid_levels: LevelChanges, ask_levels: LevelChanges) -> None:
        self.bids.apply(bid_levels)
        self.asks.apply(ask_levels)

    def is_crossed(self) -> bool:
        """Best bid at or above best ask (bid keys are negated prices)."""
        if not self.bids.keys or not self.asks.keys:
            return False
        return -self.bids.keys[0] >= self.asks.keys[0]
