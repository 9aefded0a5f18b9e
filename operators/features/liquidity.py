"""Liquidity: size resting within bps bands of the mid, and the cost of trading a notional."""

from __future__ import annotations

import numpy as np

from operators.features.arrays import BookArrays, number_label
from operators.features.static import Features


def depth_within(book: BookArrays, bands_bps: tuple[float, ...]) -> Features:
    """Base-asset size per side at prices within `n` bps of the mid (inclusive)."""
    out: Features = {}
    for n in bands_bps:
        for side in ("bid", "ask"):
            count = book.levels_within(side, n)
            sizes, _ = book.running_sums(side)
            out[f"{side}_depth_{number_label(n)}bps"] = float(sizes[count - 1]) if count else 0.0
    return out


def average_fill_price(book: BookArrays, side: str, notional: float) -> float | None:
    """The average price of spending (or raising) `notional` in quote currency by walking a
    side's levels best first, the last one partly; None when the side holds less than that."""
    prices, _ = book.side(side)
    sizes, notionals = book.running_sums(side)
    if len(notionals) == 0 or notionals[-1] < notional:
        return None
    last = int(np.searchsorted(notionals, notional))  # the first level that completes the notional
    before_notional = float(notionals[last - 1]) if last else 0.0
    before_size = float(sizes[last - 1]) if last else 0.0
    quantity = before_size + (notional - before_notional) / float(prices[last])
    return notional / quantity


def cost_to_trade(book: BookArrays, notionals: tuple[float, ...]) -> Features:
    """Slippage in bps of the mid of a market buy (walking asks) and a market sell (walking
    bids) of each notional: (avg - mid) / mid * 1e4 and (mid - avg) / mid * 1e4."""
    mid = book.mid()
    out: Features = {}
    for notional in notionals:
        buy = average_fill_price(book, "ask", notional)
        sell = average_fill_price(book, "bid", notional)
        out[f"buy_cost_bps_{number_label(notional)}"] = None if buy is None else (buy - mid) / mid * 1e4
        out[f"sell_cost_bps_{number_label(notional)}"] = None if sell is None else (mid - sell) / mid * 1e4
    return out
