"""A consumer's view of the output: rebuild books from published full books and deltas.

Written as naively as possible (dicts of Decimal), so agreeing with it means the published
stream really carries the book.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


class ReplicaBook:
    def __init__(self) -> None:
        self.bids: dict[Decimal, str] = {}
        self.asks: dict[Decimal, str] = {}

    def load(self, full: dict[str, Any]) -> None:
        self.bids = {Decimal(l["price"]): l["quantity"] for l in full["bids"]}
        self.asks = {Decimal(l["price"]): l["quantity"] for l in full["asks"]}

    def apply(self, delta: dict[str, Any]) -> None:
        for side, changes in ((self.bids, delta["bid_updates"]), (self.asks, delta["ask_updates"])):
            for level in changes:
                if Decimal(level["quantity"]) == 0:
                    side.pop(Decimal(level["price"]), None)
                else:
                    side[Decimal(level["price"])] = level["quantity"]

    def best_bid(self) -> Decimal | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> Decimal | None:
        return min(self.asks) if self.asks else None

    def top(self, depth: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids, reverse=True)[:depth]
        asks = sorted(self.asks)[:depth]
        return [(str(p), self.bids[p]) for p in bids], [(str(p), self.asks[p]) for p in asks]
