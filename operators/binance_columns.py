"""Typed decoding of a chunk of Binance frames, column by column.

`operators.binance_typed` answers one frame at a time. A recording is mostly book tickers,
trades and diffs, and checking them one by one costs more Python than reading them: here
a chunk's frames are read in one C loop, and its tickers, trades and diffs are checked as
columns (`operators.levels.all_pairs_pass`, `exchange_times`, `parse_sides`) and built
with one `map` each. The answers are `decode_typed`'s, frame for frame: a chunk that is
not all plain combined-stream frames is read one frame at a time, a column that fails any
check goes back to `typed_message` one frame at a time (which finds, or defers, the
fault), and klines and aggTrades always go that way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter, gt

import msgspec
from msgspec import UNSET, UnsetType

from operators.binance_typed import COMBINED, Decoded, Payload, decode_combined, typed_message, typed_payload
from operators.levels import BadMessage, all_pairs_pass, exchange_times, parse_sides
from operators.wire import DepthDiff
from schemas.events import Ticker, Trade
from schemas.raw import RawEvent

_TICKER_FIELDS = attrgetter("u", "b", "B", "a", "A", "E")
_TRADE_FIELDS = attrgetter("t", "p", "q", "m", "T")
_DIFF_FIELDS = attrgetter("U", "u", "b", "a", "E")
_SYMBOL = attrgetter("s")
_EVENT = attrgetter("e")
_DATA = attrgetter("data")
_KIND = attrgetter("kind")
_VENUE = attrgetter("venue")
_RECV_NS = attrgetter("recv_ns")
_SIDE = {True: "sell", False: "buy"}
_ONLY_WS = {"ws"}
_ONLY_INT = {int}
# Frames of these kinds are built as columns; any other event goes one frame at a time.
_COLUMNS = frozenset({"trade", "depthUpdate"})

# How a column is checked and built: its frames, as received and as read -> answers, or None.
Builder = Callable[[list[RawEvent], list[Payload], Callable[[str], str]], list[Decoded] | None]


def decode_typed_chunk(
    raws: Sequence[RawEvent], normalized: Callable[[str], str], interval_ok: Callable[[str], object]
) -> list[Decoded | None]:
    """`[decode_typed(raw, normalized, interval_ok) for raw in raws]`, the same answers."""
    payloads = _read_all(raws)
    if payloads is None:  # some frame needs a closer look: read each on its own
        payloads = list(map(typed_payload, raws))
    answers: list[Decoded | None] = [None] * len(raws)
    events = [None if payload is None else payload.e for payload in payloads]  # None: left to the general path
    columns: tuple[tuple[list[int], Builder], ...] = (
        ([at for at, event in enumerate(events) if event is UNSET], _tickers),
        ([at for at, event in enumerate(events) if event == "trade"], _trades),
        ([at for at, event in enumerate(events) if event == "depthUpdate"], _diffs),
    )
    for at, event in enumerate(events):
        if event is not None and event is not UNSET and event not in _COLUMNS:
            answers[at] = typed_message(raws[at], payloads[at], normalized, interval_ok)  # type: ignore[arg-type]
    for where, build in columns:
        if not where:
            continue
        column_raws = [raws[at] for at in where]
        column_payloads: list[Payload] = [payloads[at] for at in where]  # type: ignore[misc]
        built = build(column_raws, column_payloads, normalized)
        if built is None:  # some frame fails a check: each one answers for itself
            built = list(map(typed_message, column_raws, column_payloads, repeat(normalized), repeat(interval_ok)))
        for at, answer in zip(where, built):
            answers[at] = answer
    return answers


def _read_all(raws: Sequence[RawEvent]) -> list[Payload] | None:
    """`typed_payload` of every frame, in C loops: when all are websocket frames in the
    combined envelope without escapes, and all read; otherwise None."""
    texts = list(map(_DATA, raws))
    if set(map(_KIND, raws)) != _ONLY_WS or "\\" in "".join(texts):
        return None
    if not all(map(str.startswith, texts, repeat(COMBINED))):
        return None
    try:
        return list(map(_DATA, map(decode_combined, texts)))
    except (msgspec.DecodeError, ValueError, TypeError):
        return None


def _symbols(payloads: list[Payload], normalized: Callable[[str], str]) -> list[str] | None:
    """Each frame's symbol as ours (a chunk names a few), or None if any is not a symbol."""
    names = list(map(_SYMBOL, payloads))
    ours: dict[object, str] = {}
    for name in set(names):
        if type(name) is not str or not name:
            return None
        try:
            ours[name] = normalized(name)
        except ValueError:
            return None
    return list(map(ours.__getitem__, names))


def _times(raws: list[RawEvent], values: list[object]) -> tuple[list[int], list[int | None]] | None:
    """The receive times of a column's frames and their exchange times (the field may be
    absent (UNSET) or null), or None when one is absurd: the typed path words that one."""
    recv_ns = list(map(_RECV_NS, raws))
    if UnsetType in set(map(type, values)):
        values = [None if value is UNSET else value for value in values]
    try:
        return recv_ns, exchange_times(values, recv_ns)
    except BadMessage:
        return None


def _tickers(raws: list[RawEvent], payloads: list[Payload], normalized: Callable[[str], str]) -> list[Decoded] | None:
    symbols = _symbols(payloads, normalized)
    if symbols is None:
        return None
    update_ids, bids, bid_sizes, asks, ask_sizes, times = map(list, zip(*map(_TICKER_FIELDS, payloads)))
    if UnsetType in set(map(type, update_ids)) | set(map(type, bid_sizes)) | set(map(type, ask_sizes)):
        return None  # no event type, yet not a ticker
    if not all_pairs_pass(bids + asks, bid_sizes + ask_sizes):  # both pairs of every ticker at once
        return None
    timed = _times(raws, times)
    if timed is None:
        return None
    recv_ns, exchange_ms = timed
    built = map(
        Ticker, map(_VENUE, raws), symbols, update_ids, bids, bid_sizes, asks, ask_sizes, repeat(None), exchange_ms, recv_ns
    )
    return list(zip(symbols, built))


def _trades(raws: list[RawEvent], payloads: list[Payload], normalized: Callable[[str], str]) -> list[Decoded] | None:
    symbols = _symbols(payloads, normalized)
    if symbols is None:
        return None
    trade_ids, prices, quantities, makers, times = map(list, zip(*map(_TRADE_FIELDS, payloads)))
    if set(map(type, trade_ids)) != _ONLY_INT or min(trade_ids) < 0 or set(map(type, makers)) != {bool}:
        return None
    if not all_pairs_pass(prices, quantities):
        return None
    timed = _times(raws, times)
    if timed is None:
        return None
    recv_ns, exchange_ms = timed
    sides = map(_SIDE.__getitem__, makers)
    built = map(Trade, map(_VENUE, raws), symbols, map(str, trade_ids), prices, quantities, sides, exchange_ms, recv_ns)
    return list(zip(symbols, built))


def _diffs(raws: list[RawEvent], payloads: list[Payload], normalized: Callable[[str], str]) -> list[Decoded] | None:
    symbols = _symbols(payloads, normalized)
    if symbols is None:
        return None
    first_ids, last_ids, bids, asks, times = map(list, zip(*map(_DIFF_FIELDS, payloads)))
    if set(map(type, first_ids)) != _ONLY_INT or set(map(type, last_ids)) != _ONLY_INT:
        return None
    if any(map(gt, first_ids, last_ids)):
        return None
    count = len(payloads)
    changes = parse_sides(bids + asks, [True] * count + [False] * count)
    if changes is None:
        return None
    timed = _times(raws, times)
    if timed is None:
        return None
    recv_ns, exchange_ms = timed
    built = map(DepthDiff, first_ids, last_ids, changes[:count], changes[count:], bids, asks, exchange_ms, recv_ns)
    return list(zip(symbols, built))
