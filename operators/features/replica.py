"""A float copy of one book, rebuilt from the normalized events (full books and deltas).

Why a copy: features must be computed identically live (a step downstream of book_sync)
and offline (a loop over a recording), and the events are what both see. The copy keeps
parallel sorted lists of float keys (bids negated, best first) and float sizes, so a
sample turns into numpy arrays with one conversion and no string parsing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from schemas.events import PriceQty


@dataclass(slots=True)
class SideChanges:
    """What one delta did to one side: levels that grew (limit orders) and shrank (cancels or fills)."""

    grew: int = 0
    shrank: int = 0
    added_size: float = 0.0  # sum of the quantities the delta wrote (the plan's bid_flow / ask_flow)


class FloatSide:
    __slots__ = ("keys", "sizes", "sign")

    def __init__(self, sign: float) -> None:
        self.sign = sign  # -1.0 for bids (keys are negated prices), 1.0 for asks
        self.keys: list[float] = []
        self.sizes: list[float] = []

    def load(self, levels: Sequence[PriceQty]) -> None:
        """A full book's side: best first and without zero sizes, as book_sync publishes it."""
        sign = self.sign
        self.keys = [sign * float(level[0]) for level in levels]
        self.sizes = [float(level[1]) for level in levels]

    def apply(self, updates: Sequence[PriceQty]) -> SideChanges:
        keys, sizes, sign = self.keys, self.sizes, self.sign
        changes = SideChanges()
        for level in updates:
            key, size = sign * float(level[0]), float(level[1])
            changes.added_size += size
            index = bisect_left(keys, key)
            old = sizes[index] if index != len(keys) and keys[index] == key else 0.0
            if size > old:
                changes.grew += 1
            elif size < old:
                changes.shrank += 1
            if old:
                if size:
                    sizes[index] = size
                else:
                    del keys[index], sizes[index]
            elif size:
                keys.insert(index, key)
                sizes.insert(index, size)
        return changes

    def prices(self, depth: int) -> np.ndarray:
        count = min(depth, len(self.keys))
        keys = np.fromiter(self.keys, dtype=np.float64, count=count)
        return -keys if self.sign < 0 else keys

    def quantities(self, depth: int) -> np.ndarray:
        return np.fromiter(self.sizes, dtype=np.float64, count=min(depth, len(self.sizes)))

    def top(self, depth: int) -> tuple[list[float], list[float]]:
        """The best `depth` prices and sizes as plain floats (cheap, for per-event order flow)."""
        return [self.sign * key for key in self.keys[:depth]], self.sizes[:depth]


class FloatBook:
    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids = FloatSide(-1.0)
        self.asks = FloatSide(1.0)

    def load(self, bids: Sequence[PriceQty], asks: Sequence[PriceQty]) -> None:
        self.bids.load(bids)
        self.asks.load(asks)

    def clear(self) -> None:
        self.bids = FloatSide(-1.0)
        self.asks = FloatSide(1.0)

    def is_empty(self) -> bool:
        return not self.bids.keys or not self.asks.keys
