"""OKX v5 public channels `books`, `trades` and `tickers`, and the business channel
`candle1m`, written as the exchange writes them.

`books` carries only the best 400 levels per side. The real exchange does not repeat a
level that drops out of that window because better levels arrived, so subscribers keep
such levels; and it does send a level that enters the window from below. `BooksFeed`
reproduces this: it remembers what it has told the subscriber and, each 100 ms, sends
exactly the levels inside the current top 400 where the subscriber's copy differs from
the true book (new sizes, removals, levels that came into the window). Levels beyond the
window are never sent, so a subscriber may hold stale levels past its 400th, but its top
400 always equal the true top 400, `market.book_at(seqId, depth=400)`: that window is
what comparisons and the checksum cover.

Every window yields one `books` message: an update with `prevSeqId` equal to the last
`seqId`, or, when nothing happened, an empty keep-alive with `prevSeqId == seqId`.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right, insort
from typing import Any

import orjson

from sim.candles import CandlePush
from sim.decimal_text import decimal_text
from sim.market import ASK, BID, Level, Market, Top, Trade, Unit, Window
from sim.specs import SymbolSpec

Message = dict[str, Any]

BOOK_DEPTH = 400
CHECKSUM_DEPTH = 25
WS_URL = "wss://ws.okx.com:8443/ws/v5/public"
BUSINESS_WS_URL = "wss://ws.okx.com:8443/ws/v5/business"
CANDLE_CHANNEL = "candle1m"
CANDLE_PUSH_MS = 1000  # OKX: "the fastest push frequency is 1 push per second"
_EVERYTHING = 1 << 62  # the window's edge when a side has fewer than BOOK_DEPTH levels


def checksum(bids: list[Level], asks: list[Level]) -> int:
    """Signed CRC32 of "bid1px:bid1sz:ask1px:ask1sz:..." over the top 25 levels per side."""
    parts: list[str] = []
    for i in range(CHECKSUM_DEPTH):
        if i < len(bids):
            parts += bids[i]
        if i < len(asks):
            parts += asks[i]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def subscribed(channel: str, inst_id: str, conn_id: str, event: str = "subscribe") -> Message:
    """The acknowledgement of a subscription (or, with `event="unsubscribe"`, of its end)."""
    return {"event": event, "arg": {"channel": channel, "instId": inst_id}, "connId": conn_id}


def ws_error(code: str, msg: str, conn_id: str) -> Message:
    """A websocket error event, e.g. 60018 for an unknown channel or instrument."""
    return {"event": "error", "code": code, "msg": msg, "connId": conn_id}


def rest_books(spec: SymbolSpec, bids: list[Unit], asks: list[Unit], ts_ms: int, *, full: bool = False) -> Message:
    """A REST book body: `books` levels are `[px, sz, "0", numOrders]`, `books-full` (`full`) ones
    `[px, sz, numOrders]`; neither carries a seqId or a checksum."""
    row = _full_level if full else _level
    entry = {"asks": [row(spec, p, q) for p, q in asks], "bids": [row(spec, p, q) for p, q in bids], "ts": str(ts_ms)}
    return rest_ok([entry])


def rest_ok(data: list[Any]) -> Message:
    """OKX's REST envelope around `data`."""
    return {"code": "0", "msg": "", "data": data}


def rest_error(code: str, msg: str) -> Message:
    """OKX's REST envelope for an error, e.g. 50011 "Too Many Requests"."""
    return {"code": code, "msg": msg, "data": []}


class BooksFeed:
    """The server side of one `books` subscription: what the subscriber has been told, and what to send next."""

    def __init__(self, market: Market) -> None:
        self._market = market
        self._told: tuple[dict[int, int], dict[int, int]] = ({}, {})  # signed key -> lots
        self._told_keys: tuple[list[int], list[int]] = ([], [])  # sorted, best first
        self._edge = [_EVERYTHING, _EVERYTHING]  # signed key of the 400th level per side
        self.seq_id = -1

    def snapshot(self, ts_ms: int) -> Message:
        """The 400-level snapshot of the book now; it replaces whatever the subscriber had."""
        market = self._market
        levels: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
        for side in (BID, ASK):
            self._told[side].clear()
            self._told_keys[side].clear()
            for rank in range(min(BOOK_DEPTH, market.depth(side))):
                price = market.price_at(side, rank)
                lots = market.quantity(side, price)
                self._tell(side, price, lots)
                levels[side].append((price, lots))
            self._edge[side] = self._window_edge(side)
        return self._message("snapshot", levels, ts_ms, -1)

    def update(self, window: Window, ts_ms: int) -> Message:
        """The increment after `window`: the top-400 levels where the subscriber's copy is now wrong."""
        market = self._market
        touched = window.changes()
        levels: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
        for side in (BID, ASK):
            sign = -1 if side == BID else 1
            old_edge, edge = self._edge[side], self._window_edge(side)
            candidates = {sign * price for price in touched[side]}
            if edge > old_edge:  # the window reaches deeper: levels entered it, stale ones may be inside
                rank = min(BOOK_DEPTH, market.depth(side)) - 1
                while rank >= 0 and sign * market.price_at(side, rank) > old_edge:
                    candidates.add(sign * market.price_at(side, rank))
                    rank -= 1
                keys = self._told_keys[side]
                candidates.update(keys[bisect_right(keys, old_edge) : bisect_right(keys, edge)])
            for key in sorted(candidates):
                if key > edge:
                    break
                price = abs(key)
                lots = market.quantity(side, price)
                if lots != self._told[side].get(key, 0):
                    self._tell(side, price, lots)
                    levels[side].append((price, lots))
            self._edge[side] = edge
        return self._message("update", levels, ts_ms, self.seq_id)

    def _message(
        self, action: str, levels: tuple[list[tuple[int, int]], list[tuple[int, int]]], ts_ms: int, prev: int
    ) -> Message:
        market = self._market
        spec = market.spec
        self.seq_id = market.update_id
        top_bids, top_asks = market.current_book(depth=CHECKSUM_DEPTH)
        return {
            "arg": {"channel": "books", "instId": spec.symbol},
            "action": action,
            "data": [
                {
                    "asks": [_level(spec, p, q) for p, q in levels[ASK]],
                    "bids": [_level(spec, p, q) for p, q in levels[BID]],
                    "ts": str(ts_ms),
                    "checksum": checksum(top_bids, top_asks),
                    "prevSeqId": prev,
                    "seqId": self.seq_id,
                }
            ],
        }

    def _tell(self, side: int, price: int, lots: int) -> None:
        key = -price if side == BID else price
        told, keys = self._told[side], self._told_keys[side]
        if lots:
            if key not in told:
                insort(keys, key)
            told[key] = lots
        elif key in told:
            del told[key]
            del keys[bisect_left(keys, key)]

    def _window_edge(self, side: int) -> int:
        market = self._market
        if market.depth(side) < BOOK_DEPTH:
            return _EVERYTHING
        price = market.price_at(side, BOOK_DEPTH - 1)
        return -price if side == BID else price


class TickerFeed:
    """The `tickers` channel of one instrument: last trade, best bid and ask, running 24 h figures."""

    def __init__(self, spec: SymbolSpec) -> None:
        self._spec = spec
        self._open = spec.start_price
        self._last, self._last_qty = spec.start_price, spec.median_qty
        self._high = spec.start_price + spec.start_price // 80
        self._low = spec.start_price - spec.start_price // 70
        self._volume = spec.median_qty * 250_000  # lots over 24 h
        self._turnover = self._volume * spec.start_price  # ticks x lots

    def on_trade(self, fill: Trade) -> None:
        self._last, self._last_qty = fill.price, fill.qty
        self._high, self._low = max(self._high, fill.price), min(self._low, fill.price)
        self._volume += fill.qty
        self._turnover += fill.price * fill.qty

    def message(self, top: Top, ts_ms: int) -> Message:
        spec = self._spec
        price, qty = spec.price_text, spec.qty_text
        bid, bid_qty, ask, ask_qty = top
        turnover = decimal_text(self._turnover, spec.price_decimals + spec.qty_decimals, None)
        return {
            "arg": {"channel": "tickers", "instId": spec.symbol},
            "data": [
                {
                    "instType": "SPOT",
                    "instId": spec.symbol,
                    "last": price(self._last),
                    "lastSz": qty(self._last_qty),
                    "askPx": price(ask),
                    "askSz": qty(ask_qty),
                    "bidPx": price(bid),
                    "bidSz": qty(bid_qty),
                    "open24h": price(self._open),
                    "high24h": price(self._high),
                    "low24h": price(self._low),
                    "sodUtc0": price(self._open),
                    "sodUtc8": price(self._open),
                    "volCcy24h": turnover,
                    "vol24h": qty(self._volume),
                    "ts": str(ts_ms),
                }
            ],
        }


def trade(spec: SymbolSpec, fill: Trade) -> Message:
    """One `trades` push; `side` is the taker's side."""
    return {
        "arg": {"channel": "trades", "instId": spec.symbol},
        "data": [
            {
                "instId": spec.symbol,
                "tradeId": str(fill.trade_id),
                "px": spec.price_text(fill.price),
                "sz": spec.qty_text(fill.qty),
                "side": "buy" if fill.taker_buys else "sell",
                "ts": str(fill.ts_ns // 1_000_000),
            }
        ],
    }


def candle(spec: SymbolSpec, push: CandlePush) -> Message:
    """One `candle1m` push: `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`, `ts` the
    candle's open time; for spot both volCcy and volCcyQuote are the quote volume."""
    bar, price = push.candle, spec.price_text
    quote = decimal_text(bar.quote_volume, spec.price_decimals + spec.qty_decimals, None)
    return {
        "arg": {"channel": CANDLE_CHANNEL, "instId": spec.symbol},
        "data": [
            [
                str(bar.open_ms), price(bar.open), price(bar.high), price(bar.low), price(bar.close),
                spec.qty_text(bar.volume), quote, quote, "1" if push.closed else "0",
            ]
        ],
    }


def encode(message: Message) -> str:
    return orjson.dumps(message).decode()


def _level(spec: SymbolSpec, price: int, lots: int) -> list[str]:
    if not lots:
        return [spec.price_text(price), "0", "0", "0"]
    return [spec.price_text(price), spec.qty_text(lots), "0", _orders(lots)]


def _full_level(spec: SymbolSpec, price: int, lots: int) -> list[str]:
    return [spec.price_text(price), spec.qty_text(lots), _orders(lots)]


def _orders(lots: int) -> str:
    # Order counts are not modelled; deriving one from the size keeps it stable per state.
    return str(1 + lots % 5)
