"""OKX v5 public message shapes: order-book channels, trades, tickers, candles, control frames.

`books`, `books-l2-tbt` and `books50-l2-tbt` share one protocol (snapshot, then updates
with optional `seqId`/`prevSeqId` and `checksum`), so they decode alike. Candles
(`candle1m`...) come from the business websocket (`/ws/v5/business`) as arrays
`[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`; its acks decode like the public ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from operators.book import LevelChanges
from operators.levels import BadMessage, check_candle, check_price_quantity, exchange_time, parse_side
from operators.wire import MAX_FRAME_BYTES, Ignored, OkxBookMessage, OkxDeepBook, Rejected
from schemas.events import Kline, Ticker, Trade
from schemas.raw import RawEvent

# Order-book channels and the number of best levels per side each one maintains.
BOOK_CHANNELS = {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50}
_CONTROL_EVENTS = frozenset({"subscribe", "unsubscribe", "login", "channel-conn-count"})

Decoded = tuple[str | None, object]

CANDLE_PREFIX = "candle"
# Candle bars of a fixed length, as OKX names them ("1m", "4H", "1D"); the unit in Binance's
# lower case on the event so both venues' "1m" agree. Months and the "utc" bars are not read.
_BAR = re.compile(r"([1-9][0-9]{0,2})([smHDW])").fullmatch
_BAR_MS = {"s": 1000, "m": 60_000, "H": 3_600_000, "D": 86_400_000, "W": 604_800_000}
_CANDLE_FIELDS = 9  # ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm


def _optional_int(entry: dict[str, Any], name: str) -> int | None:
    value = entry.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise BadMessage(f"field {name!r} must be an integer, got {value!r:.40}")
    return value


def _ms(entry: dict[str, Any], recv_ns: int) -> int | None:
    value = entry.get("ts")
    if value is None:
        return None
    if type(value) is not str or not value.isdigit():
        raise BadMessage(f"field 'ts' must be a string of digits, got {value!r:.40}")
    return exchange_time(int(value), recv_ns)


def _book(raw: RawEvent, obj: dict[str, Any], entry: dict[str, Any], window: int) -> OkxBookMessage:
    action = obj.get("action")
    if action not in ("snapshot", "update"):
        raise BadMessage(f"book action must be 'snapshot' or 'update', got {action!r:.40}")
    raw_bids, raw_asks = entry.get("bids"), entry.get("asks")
    return OkxBookMessage(
        snapshot=action == "snapshot",
        window=window,
        bids=parse_side(raw_bids, "bids", True),
        asks=parse_side(raw_asks, "asks", False),
        raw_bids=raw_bids,  # type: ignore[arg-type]
        raw_asks=raw_asks,  # type: ignore[arg-type]
        checksum=_optional_int(entry, "checksum"),
        seq_id=_optional_int(entry, "seqId"),
        prev_seq_id=_optional_int(entry, "prevSeqId"),
        exchange_ms=_ms(entry, raw.recv_ns),
        recv_ns=raw.recv_ns,
    )


def _trade(raw: RawEvent, symbol: str, entry: dict[str, Any]) -> Trade:
    check_price_quantity(entry.get("px"), entry.get("sz"), "trade")
    side = entry.get("side")
    if side not in ("buy", "sell"):
        raise BadMessage(f"trade side must be 'buy' or 'sell', got {side!r:.20}")
    trade_id = entry.get("tradeId")
    if type(trade_id) is not str or not trade_id:
        raise BadMessage(f"trade field 'tradeId' must be a non-empty string, got {trade_id!r:.40}")
    return Trade(raw.venue, symbol, trade_id, entry["px"], entry["sz"], side, _ms(entry, raw.recv_ns), raw.recv_ns)


def _ticker(raw: RawEvent, symbol: str, entry: dict[str, Any]) -> Ticker:
    check_price_quantity(entry.get("bidPx"), entry.get("bidSz"), "ticker bid")
    check_price_quantity(entry.get("askPx"), entry.get("askSz"), "ticker ask")
    last = entry.get("last")
    return Ticker(
        venue=raw.venue,
        symbol=symbol,
        update_id=None,
        best_bid_price=entry["bidPx"],
        best_bid_quantity=entry["bidSz"],
        best_ask_price=entry["askPx"],
        best_ask_quantity=entry["askSz"],
        last_price=last if type(last) is str else None,
        exchange_ms=_ms(entry, raw.recv_ns),
        recv_ns=raw.recv_ns,
    )


def _candle(raw: RawEvent, symbol: str, bar: str, entry: Any) -> Kline:
    shape = _BAR(bar)
    if shape is None:
        raise BadMessage(f"unsupported candle bar {bar!r:.20} (fixed-length bars such as 1m, 4H, 1D only)")
    if not isinstance(entry, list) or len(entry) < _CANDLE_FIELDS or not all(type(v) is str for v in entry):
        shape_text = "[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]"
        raise BadMessage(f"a candle must be {_CANDLE_FIELDS} strings {shape_text}, got {entry!r:.120}")
    ts, open_, high, low, close, volume, _, quote_volume, confirm = entry[:_CANDLE_FIELDS]
    if not ts.isdigit():
        raise BadMessage(f"candle open time {ts!r:.40} is not a string of digits")
    check_candle(open_, high, low, close, volume, quote_volume)
    if confirm not in ("0", "1"):
        raise BadMessage(f"candle confirm must be '0' or '1', got {confirm!r:.20}")
    count, unit = shape.groups()
    open_time = exchange_time(int(ts), raw.recv_ns)
    assert open_time is not None
    return Kline(
        venue=raw.venue,
        symbol=symbol,
        interval=f"{count}{unit.lower()}",
        open_time=open_time,
        close_time=open_time + int(count) * _BAR_MS[unit] - 1,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        quote_volume=quote_volume,
        trade_count=None,
        is_closed=confirm == "1",
        exchange_ms=None,
        recv_ns=raw.recv_ns,
    )


def _decode_push(raw: RawEvent, obj: dict[str, Any], symbol: str, channel: str) -> list[Decoded]:
    entries = obj.get("data")
    if channel.startswith(CANDLE_PREFIX) and isinstance(entries, list) and entries:
        bar = channel[len(CANDLE_PREFIX) :]
        return [(symbol, _candle(raw, symbol, bar, entry)) for entry in entries]
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise BadMessage("'data' must be a non-empty list of objects")
    if channel in BOOK_CHANNELS:
        return [(symbol, _book(raw, obj, entry, BOOK_CHANNELS[channel])) for entry in entries]
    if channel == "trades":
        return [(symbol, _trade(raw, symbol, entry)) for entry in entries]
    if channel == "tickers":
        return [(symbol, _ticker(raw, symbol, entry)) for entry in entries]
    raise BadMessage(f"unknown channel {channel!r:.40}")


def _deep_side(levels: Any, side: str, bids: bool) -> LevelChanges:
    """One side of a books-full answer, which must run from the best price outwards with
    each price once, as OKX sends it: full books show these levels in this order below the
    live window, so a side out of order is refused rather than published out of order."""
    changes = parse_side(levels, side, bids)
    keys = changes.keys  # a better level has a larger key
    if keys != sorted(keys, reverse=True) or len(set(keys)) != len(keys):
        at = next(i for i in range(1, len(keys)) if keys[i] >= keys[i - 1])
        raise BadMessage(f"{side} out of order: level {at} at price {levels[at][0]!r:.30} "
                         f"after {levels[at - 1][0]!r:.30}")
    return changes


def _decode_rest(raw: RawEvent, obj: dict[str, Any]) -> list[Decoded] | Ignored:
    """REST `books-full` (and `books`) answers become deep refreshes of the named book."""
    if raw.url is None or "/market/books" not in raw.url:
        return Ignored(raw.venue, "REST response")
    symbol = raw.symbol or (parse_qs(urlsplit(raw.url).query).get("instId") or [None])[0]
    if symbol is None:
        return [(None, Rejected(raw.venue, None, "REST books answer names no instrument", raw.recv_ns))]
    try:
        if obj.get("code") != "0":
            raise BadMessage(f"REST books answered code {obj.get('code')!r}: {obj.get('msg')!r:.200}")
        entries = obj.get("data")
        if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
            raise BadMessage("REST books 'data' must hold one object")
        entry = entries[0]
        deep = OkxDeepBook(
            _deep_side(entry.get("bids"), "bids", True),
            _deep_side(entry.get("asks"), "asks", False),
            _ms(entry, raw.recv_ns),
            raw.recv_ns,
        )
    except BadMessage as exc:
        return [(symbol, Rejected(raw.venue, symbol, f"books-full: {exc}", raw.recv_ns))]
    return [(symbol, deep)]


def decode_okx(raw: RawEvent, loads: Callable[[str], Any] = orjson.loads) -> list[Decoded] | Ignored:
    """One OKX frame -> [(instId, typed message or Rejected)], or an Ignored control frame;
    `loads` parses it (anything giving orjson's result and errors)."""
    if len(raw.data) > MAX_FRAME_BYTES:
        return [(raw.symbol, Rejected(raw.venue, raw.symbol, f"oversized frame of {len(raw.data)} bytes", raw.recv_ns))]
    if raw.data == "pong":
        return Ignored(raw.venue, "pong")
    try:
        obj = loads(raw.data)
    except orjson.JSONDecodeError as exc:
        return [(raw.symbol, Rejected(raw.venue, raw.symbol, f"malformed JSON: {exc}", raw.recv_ns))]
    if not isinstance(obj, dict):
        return [(raw.symbol, Rejected(raw.venue, raw.symbol, "message is not a JSON object", raw.recv_ns))]
    event = obj.get("event")
    if event in _CONTROL_EVENTS:
        return Ignored(raw.venue, f"{event} reply")
    if event == "error":
        reason = f"exchange error {obj.get('code')!r}: {obj.get('msg')!r:.200}"
        return [(raw.symbol, Rejected(raw.venue, raw.symbol, reason, raw.recv_ns))]
    if raw.kind == "rest":
        return _decode_rest(raw, obj)
    arg = obj.get("arg")
    symbol = arg.get("instId") if isinstance(arg, dict) else None
    channel = arg.get("channel") if isinstance(arg, dict) else None
    if type(symbol) is not str or type(channel) is not str:
        return [(raw.symbol, Rejected(raw.venue, raw.symbol, "push without arg.channel/arg.instId", raw.recv_ns))]
    try:
        return _decode_push(raw, obj, symbol, channel)
    except BadMessage as exc:
        return [(symbol, Rejected(raw.venue, symbol, f"{channel}: {exc}", raw.recv_ns))]
