"""Both sides of a book as float64 arrays, best level first: the input of every static feature."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np


@dataclass(slots=True)
class BookArrays:
    bid_prices: np.ndarray  # descending
    bid_sizes: np.ndarray
    ask_prices: np.ndarray  # ascending
    ask_sizes: np.ndarray
    # Running sums per side (size, price x size), computed once and shared by the band and
    # cost features: one pass over 5000 levels instead of one per band; likewise the levels
    # within each band, which the depth and the vwap features both ask for.
    _sums: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _within: dict[tuple[str, float], int] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> BookArrays:
        """From (price, size) pairs, best first (tests and examples write books this way)."""
        bid = np.array(bids, dtype=np.float64).reshape(-1, 2)
        ask = np.array(asks, dtype=np.float64).reshape(-1, 2)
        return cls(bid[:, 0], bid[:, 1], ask[:, 0], ask[:, 1])

    def has_both_sides(self) -> bool:
        return len(self.bid_prices) > 0 and len(self.ask_prices) > 0

    def mid(self) -> float:
        return (float(self.bid_prices[0]) + float(self.ask_prices[0])) / 2.0

    def side(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return (self.bid_prices, self.bid_sizes) if name == "bid" else (self.ask_prices, self.ask_sizes)

    def running_sums(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative size and cumulative notional (price x size) of a side, best level first."""
        sums = self._sums.get(name)
        if sums is None:
            prices, sizes = self.side(name)
            sums = self._sums[name] = (np.cumsum(sizes), np.cumsum(prices * sizes))
        return sums

    def levels_within(self, name: str, bps: float) -> int:
        """How many of a side's best levels lie within `bps` of the mid (inclusive)."""
        count = self._within.get((name, bps))
        if count is None:
            mid = self.mid()
            if name == "bid":  # descending: count the prices >= the edge
                edge = mid * (1 - bps / 1e4)
                count = len(self.bid_prices) - int(self.bid_prices[::-1].searchsorted(edge, side="left"))
            else:
                count = int(self.ask_prices.searchsorted(mid * (1 + bps / 1e4), side="right"))
            self._within[(name, bps)] = count
        return count


@lru_cache(maxsize=256)
def number_label(n: float) -> str:
    """A column-name fragment for a setting: 5 -> "5", 2.5 -> "2.5", 1e6 -> "1000000"."""
    return str(int(n)) if float(n).is_integer() else f"{n:g}"
