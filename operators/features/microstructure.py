"""Weighted mid, Stoikov's microprice, book slope and volume-weighted prices near the mid."""

from __future__ import annotations

from dataclasses import dataclass

from operators.features.arrays import BookArrays, number_label
from operators.features.static import Features


def top_imbalance(book: BookArrays) -> float:
    """I = Qb / (Qb + Qa) at the best level, in [0, 1]."""
    bid, ask = float(book.bid_sizes[0]), float(book.ask_sizes[0])
    return bid / (bid + ask)


def weighted_mid(book: BookArrays) -> float:
    """Pb * (1 - I) + Pa * I: the mid leaning towards the thinner side."""
    imbalance = top_imbalance(book)
    return float(book.bid_prices[0]) * (1.0 - imbalance) + float(book.ask_prices[0]) * imbalance


@dataclass(frozen=True, slots=True)
class MicropriceTable:
    """Stoikov (2018) microprice adjustment g(I, S), fitted offline (`operators.features.microprice_fit`).

    State: the imbalance bucket (`buckets` equal slices of [0, 1]) and the spread in ticks
    (1 .. `spreads`, larger spreads share the last row). microprice = mid + adjustment[s][b].
    """

    tick: float
    buckets: int
    spreads: int
    adjustment: tuple[tuple[float, ...], ...]  # [spread state][imbalance bucket], in price units

    def state(self, book: BookArrays) -> tuple[int, int]:
        spread_ticks = int(round((float(book.ask_prices[0]) - float(book.bid_prices[0])) / self.tick))
        bucket = min(int(top_imbalance(book) * self.buckets), self.buckets - 1)
        return min(max(spread_ticks, 1), self.spreads) - 1, bucket

    def microprice(self, book: BookArrays) -> float:
        spread_state, bucket = self.state(book)
        return book.mid() + self.adjustment[spread_state][bucket]


def microprice(book: BookArrays, table: MicropriceTable | None) -> float:
    """The fitted microprice, or the weighted mid (its first-order proxy) when no fit is given."""
    return table.microprice(book) if table is not None else weighted_mid(book)


def book_slope(book: BookArrays, levels: int) -> Features:
    """Size resting per bp of distance: cumulative size of the best `levels` over the distance
    (in bps of the mid) from the mid to the last of them; null when that distance is 0."""
    mid = book.mid()
    out: Features = {}
    for side, prices, sizes in (("bid", book.bid_prices, book.bid_sizes), ("ask", book.ask_prices, book.ask_sizes)):
        count = min(levels, len(prices))
        distance_bps = abs(float(prices[count - 1]) - mid) / mid * 1e4
        out[f"{side}_slope"] = float(sizes[:count].sum()) / distance_bps if distance_bps > 0 else None
    return out


def vwap_within(book: BookArrays, bands_bps: tuple[float, ...]) -> Features:
    """Volume-weighted price of each side's levels within `n` bps of the mid; null if none is."""
    out: Features = {}
    for n in bands_bps:
        for side in ("bid", "ask"):
            count = book.levels_within(side, n)
            sizes, notionals = book.running_sums(side)
            out[f"vwap_{side}_{number_label(n)}bps"] = (
                float(notionals[count - 1]) / float(sizes[count - 1]) if count else None)
    return out


def microstructure(book: BookArrays, *, table: MicropriceTable | None, slope_levels: int,
                   bands_bps: tuple[float, ...]) -> Features:
    return {
        "top_imbalance": top_imbalance(book),
        "weighted_mid": weighted_mid(book),
        "microprice": microprice(book, table),
        **book_slope(book, slope_levels),
        **vwap_within(book, bands_bps),
    }
