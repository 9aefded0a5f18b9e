"""Binance spot (and Binance.US) message shapes: everything venue-specific about parsing.

Handles the combined-stream envelope `{"stream", "data"}` and raw streams alike:
`depthUpdate`, `trade`, `aggTrade`, `bookTicker`, `kline`, and REST `/api/v3/depth` snapshots.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from operators.binance_typed import decode_typed
from operators.levels import BadMessage, check_candle, check_price_quantity, exchange_time, parse_side
from operators.wire import MAX_FRAME_BYTES, DepthDiff, DepthSnapshot, Ignored, Rejected
from schemas.events import Kline, Ticker, Trade
from schemas.raw import RawEvent
from schemas.symbols import normalize_binance_symbol

# Streams that are well-formed Binance data but carry nothing a book needs.
_UNUSED_EVENTS = frozenset({"24hrTicker", "24hrMiniTicker", "avgPrice", "outboundAccountPosition"})

Decoded = tuple[str | None, object]

# Kline intervals as Binance names them: "1s", "1m", "4h", "1d", "1w", "1M" (month).
KLINE_INTERVAL = re.compile(r"[1-9][0-9]{0,2}[smhdwM]").fullmatch


def _int(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if type(value) is not int or value < 0:
        raise BadMessage(f"field {name!r} must be a non-negative integer, got {value!r:.40}")
    return value


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if type(value) is not str or not value:
        raise BadMessage(f"field {name!r} must be a non-empty string, got {value!r:.40}")
    return value


@lru_cache(maxsize=4096)
def normalized_symbol(raw_symbol: str) -> str:
    return normalize_binance_symbol(raw_symbol)


def _symbol_of(payload: dict[str, Any]) -> str:
    try:
        return normalized_symbol(_text(payload, "s"))
    except ValueError as exc:
        raise BadMessage(str(exc)) from None


def _url_params(url: str | None) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query) if url else {}


def _snapshot(raw: RawEvent, payload: dict[str, Any]) -> Decoded:
    params = _url_params(raw.url)
    symbol = raw.symbol
    if symbol is None and "symbol" in params:
        symbol = normalize_binance_symbol(params["symbol"][0])
    if symbol is None:
        raise BadMessage("REST depth snapshot names no symbol (neither the recording nor the URL)")
    limit = int(params["limit"][0]) if params.get("limit", [""])[0].isdigit() else None
    snapshot = DepthSnapshot(
        last_id=_int(payload, "lastUpdateId"),
        bids=parse_side(payload.get("bids"), "bids", True),
        asks=parse_side(payload.get("asks"), "asks", False),
        limit=limit,
        recv_ns=raw.recv_ns,
    )
    return (symbol, snapshot)


def _depth_update(raw: RawEvent, payload: dict[str, Any]) -> Decoded:
    symbol = _symbol_of(payload)
    first_id, last_id = _int(payload, "U"), _int(payload, "u")
    if first_id > last_id:
        raise BadMessage(f"first update id U={first_id} is after last update id u={last_id}")
    raw_bids, raw_asks = payload.get("b"), payload.get("a")
    diff = DepthDiff(
        first_id=first_id,
        last_id=last_id,
        bids=parse_side(raw_bids, "b", True),
        asks=parse_side(raw_asks, "a", False),
        raw_bids=raw_bids,  # type: ignore[arg-type]
        raw_asks=raw_asks,  # type: ignore[arg-type]
        exchange_ms=exchange_time(payload.get("E"), raw.recv_ns),
        recv_ns=raw.recv_ns,
    )
    return (symbol, diff)


def _trade(raw: RawEvent, payload: dict[str, Any], id_field: str) -> Decoded:
    symbol = _symbol_of(payload)
    check_price_quantity(payload.get("p"), payload.get("q"), "trade")
    maker = payload.get("m")
    if type(maker) is not bool:
        raise BadMessage(f"trade field 'm' must be a boolean, got {maker!r:.20}")
    trade = Trade(
        venue=raw.venue,
        symbol=symbol,
        trade_id=str(_int(payload, id_field)),
        price=payload["p"],
        quantity=payload["q"],
        side="sell" if maker else "buy",
        exchange_ms=exchange_time(payload.get("T"), raw.recv_ns),
        recv_ns=raw.recv_ns,
    )
    return (symbol, trade)


def _book_ticker(raw: RawEvent, payload: dict[str, Any]) -> Decoded:
    symbol = _symbol_of(payload)
    check_price_quantity(payload.get("b"), payload.get("B"), "bookTicker bid")
    check_price_quantity(payload.get("a"), payload.get("A"), "bookTicker ask")
    ticker = Ticker(
        venue=raw.venue,
        symbol=symbol,
        update_id=_int(payload, "u"),
        best_bid_price=payload["b"],
        best_bid_quantity=payload["B"],
        best_ask_price=payload["a"],
        best_ask_quantity=payload["A"],
        last_price=None,
        exchange_ms=exchange_time(payload.get("E"), raw.recv_ns),
        recv_ns=raw.recv_ns,
    )
    return (symbol, ticker)


def _kline(raw: RawEvent, payload: dict[str, Any]) -> Decoded:
    symbol = _symbol_of(payload)
    candle = payload.get("k")
    if not isinstance(candle, dict):
        raise BadMessage(f"kline field 'k' must be an object, got {candle!r:.40}")
    if candle.get("s") != payload["s"]:
        raise BadMessage(f"kline names symbol {candle.get('s')!r:.20} inside an event for {payload['s']!r:.20}")
    open_time, close_time = exchange_time(_int(candle, "t"), raw.recv_ns), _int(candle, "T")
    assert open_time is not None
    if close_time <= open_time:
        raise BadMessage(f"kline close time T={close_time} is not after its open time t={open_time}")
    check_candle(candle.get("o"), candle.get("h"), candle.get("l"), candle.get("c"), candle.get("v"), candle.get("q"))
    interval = candle.get("i")
    if type(interval) is not str or not KLINE_INTERVAL(interval):
        raise BadMessage(f"kline interval {interval!r:.20} is not one of Binance's (1s, 1m, 4h, 1d, 1w, 1M...)")
    closed = candle.get("x")
    if type(closed) is not bool:
        raise BadMessage(f"kline field 'x' must be a boolean, got {closed!r:.20}")
    kline = Kline(
        venue=raw.venue,
        symbol=symbol,
        interval=interval,
        open_time=open_time,
        close_time=close_time,
        open=candle["o"],
        high=candle["h"],
        low=candle["l"],
        close=candle["c"],
        volume=candle["v"],
        quote_volume=candle["q"],
        trade_count=_int(candle, "n"),
        is_closed=closed,
        exchange_ms=exchange_time(payload.get("E"), raw.recv_ns),
        recv_ns=raw.recv_ns,
    )
    return (symbol, kline)


def _decode_payload(raw: RawEvent, payload: dict[str, Any]) -> Decoded | Ignored:
    if raw.kind == "rest":
        return _snapshot(raw, payload)
    event = payload.get("e")
    if event == "depthUpdate":
        return _depth_update(raw, payload)
    if event == "trade":
        return _trade(raw, payload, "t")
    if event == "aggTrade":
        return _trade(raw, payload, "a")
    if event == "kline":
        return _kline(raw, payload)
    if event is None and "u" in payload and "B" in payload and "A" in payload:
        return _book_ticker(raw, payload)
    if event in _UNUSED_EVENTS:
        return Ignored(raw.venue, str(event))
    if event is None and "id" in payload and "result" in payload:
        return Ignored(raw.venue, "subscription reply")
    raise BadMessage(f"unknown channel or event type {event!r:.40}")


def decode_binance(raw: RawEvent) -> list[Decoded] | Ignored:
    """One Binance message -> [(symbol, typed message or Rejected)], or an Ignored."""
    if len(raw.data) > MAX_FRAME_BYTES:
        return [(raw.symbol, Rejected(raw.venue, raw.symbol, f"oversized frame of {len(raw.data)} bytes", raw.recv_ns))]
    typed = decode_typed(raw, normalized_symbol, KLINE_INTERVAL)
    return [typed] if typed is not None else decode_general(raw)


def decode_general(raw: RawEvent) -> list[Decoded] | Ignored:
    """Any frame of a size within MAX_FRAME_BYTES, read into dicts: what the typed path
    defers, and every rejection with its sentence."""
    try:
        obj = orjson.loads(raw.data)
    except orjson.JSONDecodeError as exc:
        return [(raw.symbol, Rejected(raw.venue, raw.symbol, f"malformed JSON: {exc}", raw.recv_ns))]
    payload = obj.get("data") if isinstance(obj, dict) and "stream" in obj else obj
    if not isinstance(payload, dict):
        return [(raw.symbol, Rejected(raw.venue, raw.symbol, "message is not a JSON object", raw.recv_ns))]
    try:
        decoded = _decode_payload(raw, payload)
    except BadMessage as exc:
        symbol = raw.symbol
        if symbol is None:
            try:
                symbol = _symbol_of(payload)
            except BadMessage:
                symbol = None
        return [(symbol, Rejected(raw.venue, symbol, str(exc), raw.recv_ns))]
    return decoded if isinstance(decoded, Ignored) else [decoded]
