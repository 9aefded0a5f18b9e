"""The order book: exact decimal strings, ordered by a float key, for 5000+ levels per side.

Why this shape: two parallel sorted lists, float keys and the levels exactly as the wire
delivered them (`[price, quantity, ...]`, the parser's own lists, so nothing is copied
per level). `bisect` finds a level in C, and an insert or a removal moves only the
levels after it. The best level is kept last: most changes land near the top of the
book, so they move a few pointers instead of 5000 (a memmove of 40 KB per change), and
top-of-book is O(1). A full book is one reversed slice, never a re-sort.

Identity by float is exact here: a decimal of at most 15 significant digits in the normal
range maps to a unique IEEE-754 double, and `operators.levels` rejects every other price.
So "1.0" and "1.00" are one level: an update in either text replaces the level, and the
book then holds (and publishes) the text of the latest message.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from operators.compiled_core import CORE

T = TypeVar("T")

# A wire level, `[price, quantity, ...]` as received; only the first two entries are used.
WireLevel = Sequence[str]


@dataclass(slots=True)
class LevelChanges:
    """One side of a parsed message: parallel lists, no object per level.

    `keys[i]` is the sort key of `wires[i]`: a better level has a larger key (bids use the
    price, asks the negated price); `wires[i]` is None where the wire said quantity 0.
    """

    keys: list[float]
    wires: list[WireLevel | None]

    def __len__(self) -> int:
        return len(self.keys)


def untracked(levels: list[T]) -> list[T]:
    """The list itself, out of the garbage collector's care where the core is built: a list
    of levels cannot be part of a reference cycle, and walking the 5000-entry ones made most
    of a young collection's time. It must hold levels only, now and later."""
    return CORE.untracked(levels) if CORE is not None else levels  # type: ignore[no-any-return]


def best_first(side: list[T], stop: int, count: int) -> list[T]:
    """`side[stop - 1]`, `side[stop - 2]`, ... (`count` of them), as an untracked list."""
    if CORE is not None:
        return CORE.best_first(side, stop, count)  # type: ignore[no-any-return]
    return side[stop - count : stop][::-1]


class BookSide:
    """One side of a book, keys ascending: the deepest level first, the best last.

    `horizon` is the deepest key known to be exact (None: every level is). A snapshot cut
    at its limit knows nothing past its deepest level, so levels there that never changed
    are unknown; a level an increment gives there is still a real level with an exact
    quantity, so it is kept, but the side is provably exact only down to the horizon.
    """

    __slots__ = ("keys", "wires", "horizon")

    def __init__(self) -> None:
        self.keys: list[float] = []
        self.wires: list[WireLevel] = []
        self.horizon: float | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def replace(self, snapshot: LevelChanges, horizon: float | None) -> None:
        """Load a snapshot. Zero quantities in a snapshot mean "no level"."""
        levels = {key: wire for key, wire in zip(snapshot.keys, snapshot.wires) if wire is not None}
        self.keys = untracked(sorted(levels))
        self.wires = untracked(list(map(levels.__getitem__, self.keys)))
        self.horizon = horizon

    def take(self, other: BookSide) -> None:
        """Become `other` (its levels and its horizon); `other` must not be used afterwards."""
        self.keys, self.wires, self.horizon = other.keys, other.wires, other.horizon

    def apply(self, changes: LevelChanges) -> None:
        """Apply one side of an increment: upsert, or remove where the wire said 0."""
        if CORE is not None:
            CORE.apply_changes(self.keys, self.wires, changes.keys, changes.wires)
            return
        self.apply_in_python(changes)

    def apply_in_python(self, changes: LevelChanges) -> None:
        """`apply` without the compiled core (its definition)."""
        keys, wires = self.keys, self.wires
        size = len(keys)  # kept by hand: the loop runs once per level of every update
        for key, wire in zip(changes.keys, changes.wires):
            index = bisect_left(keys, key)
            if index < size and keys[index] == key:
                if wire is None:
                    del keys[index], wires[index]
                    size -= 1
                else:
                    wires[index] = wire
            elif wire is not None:
                keys.insert(index, key)
                wires.insert(index, wire)
                size += 1

    def exact_levels(self) -> int:
        """How many levels from the top are provably the exchange's."""
        horizon = self.horizon
        return len(self.keys) if horizon is None else len(self.keys) - bisect_left(self.keys, horizon)

    def truncate(self, depth: int) -> None:
        """Forget levels past the best `depth`; the exact window ends at the last level kept."""
        keys = self.keys
        cut = len(keys) - depth
        if cut > 0:
            if depth and (self.horizon is None or keys[cut] > self.horizon):
                self.horizon = keys[cut]
            del keys[:cut], self.wires[:cut]

    def best(self) -> WireLevel | None:
        return self.wires[-1] if self.wires else None

    def top(self, depth: int) -> list[WireLevel]:
        """The best `depth` levels as wire levels (`[price, quantity, ...]`), best first."""
        size = len(self.wires)
        return best_first(self.wires, size, min(depth, size)) if depth > 0 else []

    def below(self, depth: int) -> list[WireLevel]:
        """The levels past the best `depth`, best first."""
        cut = len(self.wires) - depth
        return best_first(self.wires, cut, cut) if cut > 0 else []

    def levels(self) -> list[WireLevel]:
        """Every level, best first."""
        return best_first(self.wires, len(self.wires), len(self.wires))


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
        bids, asks = self.bids, self.asks
        if CORE is not None:  # straight to the compiled core: once per update of every book
            CORE.apply_changes(bids.keys, bids.wires, bid_levels.keys, bid_levels.wires)
            CORE.apply_changes(asks.keys, asks.wires, ask_levels.keys, ask_levels.wires)
            return
        bids.apply_in_python(bid_levels)
        asks.apply_in_python(ask_levels)

    def is_crossed(self) -> bool:
        """Best bid at or above best ask (ask keys are negated prices)."""
        if not self.bids.keys or not self.asks.keys:
            return False
        return self.bids.keys[-1] >= -self.asks.keys[-1]
