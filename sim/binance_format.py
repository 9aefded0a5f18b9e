"""Binance spot public market data, written as the exchange writes it.

Compact JSON, prices and sizes as 8-decimal strings, the combined-stream envelope
`{"stream": "btcusdt@depth@100ms", "data": {...}}` on the websocket, and the bare
`GET /api/v3/depth` body over REST. Messages are built as dicts so that `faults`
can damage a copy; `encode` gives the text.
"""

from __future__ import annotations

from typing import Any

import orjson

from sim.market import ASK, BID, Market, Top, Trade, Window
from sim.specs import SymbolSpec

Message = dict[str, Any]

DEPTH_STREAM = "depth@100ms"
REST_BASE = "https://api.binance.com"
WS_BASE = "wss://stream.binance.com:9443"


def wire_symbol(symbol: str) -> str:
    """"BTC-USDT" -> "BTCUSDT"."""
    return symbol.replace("-", "")


def stream_name(symbol: str, channel: str) -> str:
    """"BTC-USDT", "trade" -> "btcusdt@trade"."""
    return f"{wire_symbol(symbol).lower()}@{channel}"


def depth_url(symbol: str, limit: int) -> str:
    return f"{REST_BASE}/api/v3/depth?symbol={wire_symbol(symbol)}&limit={limit}"


def depth_update(spec: SymbolSpec, window: Window) -> Message | None:
    """The 100 ms diff of one window: every touched level once, U..u its update ids; None if quiet."""
    if not window.steps:
        return None
    changes = window.changes()
    return {
        "stream": stream_name(spec.symbol, DEPTH_STREAM),
        "data": {
            "e": "depthUpdate",
            "E": window.end_ns // 1_000_000,
            "s": wire_symbol(spec.symbol),
            "U": window.steps[0].update_id,
            "u": window.steps[-1].update_id,
            "b": _levels(spec, changes[BID], descending=True),
            "a": _levels(spec, changes[ASK], descending=False),
        },
    }


def trade(spec: SymbolSpec, fill: Trade) -> Message:
    """One `@trade` event; `m` is true when the buyer was the maker, i.e. the taker sold."""
    ms = fill.ts_ns // 1_000_000
    return {
        "stream": stream_name(spec.symbol, "trade"),
        "data": {
            "e": "trade",
            "E": ms,
            "s": wire_symbol(spec.symbol),
            "t": fill.trade_id,
            "p": spec.price_text(fill.price),
            "q": spec.qty_text(fill.qty),
            "T": ms,
            "m": not fill.taker_buys,
            "M": True,
        },
    }


def book_ticker(spec: SymbolSpec, update_id: int, top: Top) -> Message:
    """One `@bookTicker` event: the best bid and ask of the book as of `update_id`."""
    bid, bid_qty, ask, ask_qty = top
    return {
        "stream": stream_name(spec.symbol, "bookTicker"),
        "data": {
            "u": update_id,
            "s": wire_symbol(spec.symbol),
            "b": spec.price_text(bid),
            "B": spec.qty_text(bid_qty),
            "a": spec.price_text(ask),
            "A": spec.qty_text(ask_qty),
        },
    }


def depth_snapshot(market: Market, update_id: int, limit: int) -> Message:
    """The REST depth body for the book as of `update_id`, cut at `limit` levels per side."""
    bids, asks = market.book_at(update_id, depth=limit)
    return {"lastUpdateId": update_id, "bids": bids, "asks": asks}


def encode(message: Message) -> str:
    return orjson.dumps(message).decode()


def _levels(spec: SymbolSpec, changes: dict[int, int], *, descending: bool) -> list[list[str]]:
    return [[spec.price_text(p), spec.qty_text(changes[p])] for p in sorted(changes, reverse=descending)]
