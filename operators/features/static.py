"""The plan's per-book groups: price distribution and volume profile (its column names)."""

from __future__ import annotations

from operators.features.arrays import BookArrays

Features = dict[str, float | None]


def price_distribution(book: BookArrays) -> Features:
    """spread, spread_bps, mid_price, bid_depth, ask_depth, price_range (deepest ask - deepest bid)."""
    best_bid, best_ask = float(book.bid_prices[0]), float(book.ask_prices[0])
    mid = (best_bid + best_ask) / 2.0
    return {
        "best_bid": best_bid,
        "best_ask": best_ask,
        "spread": best_ask - best_bid,
        "spread_bps": (best_ask - best_bid) / mid * 1e4,
        "mid_price": mid,
        "bid_depth": float(len(book.bid_prices)),
        "ask_depth": float(len(book.ask_prices)),
        "price_range": float(book.ask_prices[-1] - book.bid_prices[-1]),
    }


def volume_profile(book: BookArrays) -> Features:
    """Totals, imbalance, average sizes, and concentration as the Herfindahl index of level sizes."""
    bid_total, ask_total = float(book.running_sums("bid")[0][-1]), float(book.running_sums("ask")[0][-1])
    total = bid_total + ask_total
    concentration = float(((book.bid_sizes / total) ** 2).sum() + ((book.ask_sizes / total) ** 2).sum())
    return {
        "total_bid_volume": bid_total,
        "total_ask_volume": ask_total,
        "volume_imbalance": (bid_total - ask_total) / total,
        "avg_bid_size": bid_total / len(book.bid_sizes),
        "avg_ask_size": ask_total / len(book.ask_sizes),
        "volume_concentration": concentration,
    }
