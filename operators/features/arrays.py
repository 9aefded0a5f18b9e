"""Both sides of a book as float64 arrays, best level first: the input of every static feature."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class BookArrays:
    bid_prices: np.ndarray  # descending
    bid_sizes: np.ndarray
    ask_prices: np.ndarray  # ascending
    ask_sizes: np.ndarray

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


def number_label(n: float) -> str:
    """A column-name fragment for a setting: 5 -> "5", 2.5 -> "2.5", 1e6 -> "1000000"."""
    return str(int(n)) if float(n).is_integer() else f"{n:g}"
