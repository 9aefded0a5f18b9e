"""Liquidity: size resting within bps bands of the mid, and the cost of trading a notional."""

from __future__ import annotations

import numpy as np

from operators.features.arrays import BookArrays, number_label
from operators.features.static import Features


def depth_within(book: BookArrays, bands_bps: tuple[float, ...]) -> Features:
    """Base-asset size per side at prices within `n` bps of the mid (inclusive)."""
    mid = book.mid()
    out: Features = {}
    for n in bands_bps:
        out[f"bid_depth_{number_label(n)}bps"] = float(book.bid_sizes[book.bid_prices >= mid * (1 - n / 1e4)].sum())
        out[f"ask_depth_{number_label(n)}bps"] = float(book.ask_sizes[book.ask_prices <= mid * (1 + n / 1e4)].sum())
    return out


def average_fill_price(prices: np.ndarray, sizes: np.ndarray, notional: float) -> float | None:
    """The average price of spending (or raising) `notional` in quote currency by walking the
    levels best first, the last one partly; None when the book holds less than that."""
    level_notional = prices * sizes
    cumulative = np.cumsum(level_notional)
    if len(cumulative) == 0 or cumulative[-1] < notional:
        return None
    last = int(np.searchsorted(cumulative, notional))  # the first level that completes the notional
    before = float(cumulative[last - 1]) if last else 0.0
    quantity = float(sizes[:last].sum()) + (notional - before) / float(prices[last])
    return notional / quantity


def cost_to_trade(book: BookArrays, notionals: tuple[float, ...]) -> Features:
    """Slippage in bps of the mid of a market buy (walking asks) and a market sell (walking
    bids) of each notional: (avg - mid) / mid * 1e4 and (mid - avg) / mid * 1e4."""
    mid = book.mid()
    out: Features = {}
    for notional in notionals:
        buy = average_fill_price(book.ask_prices, book.ask_sizes, notional)
        sell = average_fill_price(book.bid_prices, book.bid_sizes, notional)
        out[f"buy_cost_bps_{number_label(notional)}"] = None if buy is None else (buy - mid) / mid * 1e4
        out[f"sell_cost_bps_{number_label(notional)}"] = None if sell is None else (mid - sell) / mid * 1e4
    return out
