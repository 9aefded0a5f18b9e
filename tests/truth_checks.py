"""Holding a published Binance full book against the simulator's truth at its update id.

A full book is exact over `exact_bid_levels` / `exact_ask_levels` from the top: there it
must be the truth level for level. Past that window it may only carry real levels: each
one a price the true book has, with its true quantity, in the true order.
"""

from __future__ import annotations

from decimal import Decimal

from sim.market import Market


def _pairs(levels: list[dict]) -> list[tuple[str, str]]:
    return [(level["price"], level["quantity"]) for level in levels]


def check_binance_full(full: dict, truth: Market) -> None:
    """Raise AssertionError unless the book is the truth over its exact window and real past it."""
    bids, asks = _pairs(full["bids"]), _pairs(full["asks"])
    update_id = full["last_update_id"]
    whole_bids, whole_asks = truth.book_at(update_id)
    for side, published, true, exact in (
        ("bid", bids, whole_bids, full["exact_bid_levels"]),
        ("ask", asks, whole_asks, full["exact_ask_levels"]),
    ):
        assert exact is not None and 0 <= exact <= len(published), (side, exact, len(published))
        assert published[:exact] == list(true[:exact]), f"{side}s differ from the truth inside the exact window at {update_id}"
        true_quantity = dict(true)
        for price, quantity in published[exact:]:
            assert true_quantity.get(price) == quantity, f"{side} {price} x {quantity} past the window is not real at {update_id}"
        prices = [Decimal(price) for price, _ in published]
        assert prices == sorted(prices, reverse=side == "bid"), f"{side}s out of order at {update_id}"
