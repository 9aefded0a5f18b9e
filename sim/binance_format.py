"""Binance spot public market data, written as the exchange writes it.

Compact JSON, prices and sizes as 8-decimal strings, the combined-stream envelope
`{"stream": "btcusdt@depth@100ms", "data": {...}}` on the websocket (a raw `/ws/`
stream sends only `data`), and the bare `GET /api/v3/depth` and `exchangeInfo` bodies
over REST. Messages are built as dicts so that `faults` can damage a copy; `encode`
gives the text.
"""

from __future__ import annotations

from typing import Any

import orjson

from sim.candles import CandlePush
from sim.market import ASK, BID, Market, Top, Trade, Window
from sim.decimal_text import decimal_text
from sim.specs import BINANCE_DECIMALS, SymbolSpec

Message = dict[str, Any]

DEPTH_STREAM = "depth@100ms"
KLINE_STREAM = "kline_1m"
KLINE_PUSH_MS = 2000  # Binance: "Update Speed: 2000ms" for intervals other than 1s
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


def agg_trade(spec: SymbolSpec, fill: Trade) -> Message:
    """One `@aggTrade` event. The model fills one price level per trade, so every fill is its own aggregate."""
    ms = fill.ts_ns // 1_000_000
    return {
        "stream": stream_name(spec.symbol, "aggTrade"),
        "data": {
            "e": "aggTrade",
            "E": ms,
            "s": wire_symbol(spec.symbol),
            "a": fill.trade_id - spec.first_trade_id // 4,
            "p": spec.price_text(fill.price),
            "q": spec.qty_text(fill.qty),
            "f": fill.trade_id,
            "l": fill.trade_id,
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


def kline(spec: SymbolSpec, push: CandlePush) -> Message:
    """One `@kline_1m` event: the candle so far (`x` false) or its final state (`x` true).
    Quote volumes are exact sums of price x quantity, written with the venue's 8 decimals."""
    candle, wire = push.candle, wire_symbol(spec.symbol)
    price, qty = spec.price_text, spec.qty_text
    quote_decimals = spec.price_decimals + spec.qty_decimals
    return {
        "stream": stream_name(spec.symbol, KLINE_STREAM),
        "data": {
            "e": "kline",
            "E": push.at_ms,
            "s": wire,
            "k": {
                "t": candle.open_ms,
                "T": candle.close_ms,
                "s": wire,
                "i": "1m",
                "f": candle.first_trade_id,
                "L": candle.last_trade_id,
                "o": price(candle.open),
                "c": price(candle.close),
                "h": price(candle.high),
                "l": price(candle.low),
                "v": qty(candle.volume),
                "n": candle.trades,
                "x": push.closed,
                "q": decimal_text(candle.quote_volume, quote_decimals, spec.text_decimals),
                "V": qty(candle.taker_buy_volume),
                "Q": decimal_text(candle.taker_buy_quote_volume, quote_decimals, spec.text_decimals),
                "B": "0",
            },
        },
    }


def depth_snapshot(market: Market, update_id: int, limit: int) -> Message:
    """The REST depth body for the book as of `update_id`, cut at `limit` levels per side."""
    bids, asks = market.book_at(update_id, depth=limit)
    return {"lastUpdateId": update_id, "bids": bids, "asks": asks}


def server_shutdown(ms: int) -> Message:
    """The last event on a connection the server is about to close; it has no stream envelope."""
    return {"e": "serverShutdown", "E": ms}


def exchange_info(specs: list[SymbolSpec], server_ms: int, weight_limit: int) -> Message:
    """The `GET /api/v3/exchangeInfo` body for `specs`: rate limits, and per symbol its assets and grid filters."""
    return {
        "timezone": "UTC",
        "serverTime": server_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": [_symbol_info(spec) for spec in specs],
    }


def error(code: int, msg: str) -> Message:
    """A REST error body, e.g. -1121 "Invalid symbol."."""
    return {"code": code, "msg": msg}


def encode(message: Message) -> str:
    return orjson.dumps(message).decode()


def _levels(spec: SymbolSpec, changes: dict[int, int], *, descending: bool) -> list[list[str]]:
    return [[spec.price_text(p), spec.qty_text(changes[p])] for p in sorted(changes, reverse=descending)]


def _symbol_info(spec: SymbolSpec) -> Message:
    base, quote = spec.symbol.split("-")
    tick = decimal_text(1, spec.price_decimals, BINANCE_DECIMALS)
    step = decimal_text(1, spec.qty_decimals, BINANCE_DECIMALS)
    return {
        "symbol": wire_symbol(spec.symbol),
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": BINANCE_DECIMALS,
        "quoteAsset": quote,
        "quotePrecision": BINANCE_DECIMALS,
        "quoteAssetPrecision": BINANCE_DECIMALS,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000.00000000", "stepSize": step},
        ],
        "permissionSets": [["SPOT", "MARGIN"]],
    }
