"""Typed (msgspec) decoding of the Binance messages a replay is made of, as a fast path.

`operators.binance_wire` reads any frame into dicts (orjson) and explains every fault. Most
frames are diffs, trades, book tickers and klines of known shape; msgspec reads those
straight into slotted structs without building a dict per message. The rule that keeps
the two paths one: the fast path answers only when it can give exactly what the general
path would, and returns None otherwise (an unknown field, an odd type, an int that orjson
would read as a float, any failed check), so every rejection is still the general path's,
with its sentence. The same value checks (`operators.levels`) run on both paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from operators.levels import BadMessage, check_candle, check_price_quantity, exchange_time, parse_side, two_pairs_pass
from operators.wire import MAX_FRAME_BYTES, DepthDiff
from schemas.events import Kline, Ticker, Trade
from schemas.raw import RawEvent

# orjson reads integers in [-2**63, 2**64) as int and wider ones as float; the general path
# refuses a float where it wants an int, so the fast path must not accept wider ones either
# (msgspec bounds stop at int64: the rare ids past it take the general path).
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]
AnyInt = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
Levels = list[list[str]]

Decoded = tuple[str, object]


class _Candle(Struct, forbid_unknown_fields=True):
    """`k` of a kline event; f/L/V/Q/B are read only so that their presence is allowed."""

    t: Count
    T: Count
    s: str
    i: str
    o: str
    c: str
    h: str
    l: str  # noqa: E741 - Binance's name
    v: str
    n: Count
    x: bool
    q: str
    f: AnyInt | UnsetType = UNSET
    L: AnyInt | UnsetType = UNSET
    V: str | UnsetType = UNSET
    Q: str | UnsetType = UNSET
    B: str | UnsetType = UNSET


class Payload(Struct, forbid_unknown_fields=True):
    """Every field of a diff, trade, aggTrade, bookTicker or kline event; `b`/`a` differ by event."""

    e: str | UnsetType = UNSET
    E: AnyInt | None | UnsetType = UNSET
    s: str | UnsetType = UNSET
    U: Count | UnsetType = UNSET
    u: Count | UnsetType = UNSET
    b: AnyInt | str | Levels | UnsetType = UNSET
    a: AnyInt | str | Levels | UnsetType = UNSET
    B: str | UnsetType = UNSET
    A: str | UnsetType = UNSET
    t: Count | UnsetType = UNSET
    p: str | UnsetType = UNSET
    q: str | UnsetType = UNSET
    T: AnyInt | None | UnsetType = UNSET
    m: bool | UnsetType = UNSET
    M: bool | UnsetType = UNSET
    f: AnyInt | UnsetType = UNSET
    l: AnyInt | UnsetType = UNSET  # noqa: E741 - Binance's name
    k: _Candle | UnsetType = UNSET


class _Combined(Struct, forbid_unknown_fields=True):
    """The combined-stream envelope `{"stream", "data"}`."""

    stream: str
    data: Payload


COMBINED = '{"stream":'
decode_combined = msgspec.json.Decoder(_Combined).decode
_decode_plain = msgspec.json.Decoder(Payload).decode


def _time(value: int | None | UnsetType, recv_ns: int) -> int | None:
    return None if value is UNSET else exchange_time(value, recv_ns)  # type: ignore[arg-type]


def _diff(raw: RawEvent, p: Payload, symbol: str) -> Decoded | None:
    first_id, last_id, bids, asks = p.U, p.u, p.b, p.a
    if first_id is UNSET or last_id is UNSET or type(bids) is not list or type(asks) is not list:
        return None
    if first_id > last_id:  # type: ignore[operator]
        return None
    diff = DepthDiff(
        first_id,  # type: ignore[arg-type]
        last_id,  # type: ignore[arg-type]
        parse_side(bids, "b", True),
        parse_side(asks, "a", False),
        bids,
        asks,
        _time(p.E, raw.recv_ns),
        raw.recv_ns,
    )
    return (symbol, diff)


def _trade(raw: RawEvent, p: Payload, symbol: str, trade_id: object) -> Decoded | None:
    price, quantity, maker = p.p, p.q, p.m
    if type(trade_id) is not int or trade_id < 0 or type(maker) is not bool:
        return None
    check_price_quantity(price, quantity, "trade")
    side = "sell" if maker else "buy"
    trade = Trade(raw.venue, symbol, str(trade_id), price, quantity, side, _time(p.T, raw.recv_ns), raw.recv_ns)  # type: ignore[arg-type]
    return (symbol, trade)


def _ticker(raw: RawEvent, p: Payload, symbol: str) -> Decoded | None:
    bid, bid_qty, ask, ask_qty = p.b, p.B, p.a, p.A
    if not two_pairs_pass(bid, bid_qty, ask, ask_qty):
        return None
    ticker = Ticker(
        raw.venue, symbol, p.u, bid, bid_qty, ask, ask_qty, None, _time(p.E, raw.recv_ns), raw.recv_ns  # type: ignore[arg-type]
    )
    return (symbol, ticker)


def _kline(raw: RawEvent, p: Payload, symbol: str, interval_ok: Callable[[str], object]) -> Decoded | None:
    candle = p.k
    if candle is UNSET or candle.s != p.s:  # type: ignore[union-attr]
        return None
    open_time = exchange_time(candle.t, raw.recv_ns)  # type: ignore[union-attr]
    close_time = candle.T  # type: ignore[union-attr]
    assert open_time is not None
    if close_time <= open_time or not interval_ok(candle.i):  # type: ignore[union-attr]
        return None
    check_candle(candle.o, candle.h, candle.l, candle.c, candle.v, candle.q)  # type: ignore[union-attr]
    kline = Kline(
        raw.venue, symbol, candle.i, open_time, close_time, candle.o, candle.h, candle.l, candle.c,  # type: ignore[union-attr]
        candle.v, candle.q, candle.n, candle.x, _time(p.E, raw.recv_ns), raw.recv_ns,  # type: ignore[union-attr]
    )
    return (symbol, kline)


def decode_typed(
    raw: RawEvent, normalized: Callable[[str], str], interval_ok: Callable[[str], object]
) -> Decoded | None:
    """(symbol, message) exactly as the general path would give it, or None to defer to it.

    `normalized` maps a Binance symbol to ours and `interval_ok` accepts a kline interval:
    the general path's own, so both paths agree on them by construction.
    """
    payload = typed_payload(raw)
    return None if payload is None else typed_message(raw, payload, normalized, interval_ok)


def typed_payload(raw: RawEvent) -> Payload | None:
    """The frame read into the typed shape, or None when only the general path may read it."""
    text = raw.data
    if raw.kind != "ws" or len(text) > MAX_FRAME_BYTES or "\\" in text:  # escapes: every question of text is orjson's
        return None
    try:
        return decode_combined(text).data if text.startswith(COMBINED) else _decode_plain(text)
    except (msgspec.DecodeError, ValueError, TypeError):
        return None


def typed_message(
    raw: RawEvent, p: Payload, normalized: Callable[[str], str], interval_ok: Callable[[str], object]
) -> Decoded | None:
    """`decode_typed`'s answer for a frame already read by `typed_payload`."""
    try:
        s = p.s
        if type(s) is not str or not s:
            return None
        symbol = normalized(s)
        event = p.e
        if event == "depthUpdate":
            return _diff(raw, p, symbol)
        if event == "trade":
            return _trade(raw, p, symbol, p.t)
        if event == "aggTrade":
            return _trade(raw, p, symbol, p.a)
        if event == "kline":
            return _kline(raw, p, symbol, interval_ok)
        if is_ticker(p):
            return _ticker(raw, p, symbol)
    except (BadMessage, ValueError, TypeError):
        return None
    return None


def is_ticker(p: Payload) -> bool:
    """A book ticker, as the general path tells one: no event type, and u, B and A present."""
    return p.e is UNSET and p.u is not UNSET and p.B is not UNSET and p.A is not UNSET
