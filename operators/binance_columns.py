"""Typed decoding of a chunk of Binance frames, column by column.

`operators.binance_typed` answers one frame at a time. A recording is mostly book tickers,
trades and diffs, and checking them one by one costs more Python than reading them: here
a chunk's frames are read into rows of fields in one C loop (`operators/_binance_frames.c`,
msgspec for the frames it leaves), and its tickers, trades and diffs are checked as
columns (`operators.levels.all_pairs_pass`, `exchange_times`, `parse_sides`) and built
with one `map` each. The answers are `decode_typed`'s, frame for frame: a column that
fails any check goes back to `typed_message` one frame at a time (which finds, or defers,
the fault), and klines and aggTrades always go that way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import attrgetter, eq, gt, is_, itemgetter
from typing import Any

from msgspec import UNSET, UnsetType

from operators.binance_typed import Decoded, Payload, typed_message, typed_payload
from operators.compiled_core import FRAMES
from operators.levels import BadMessage, all_pairs_pass, exchange_times, parse_sides
from operators.wire import DepthDiff
from schemas.columns import build_column
from schemas.events import Ticker, Trade
from schemas.raw import RawEvent

# A frame read into a row: the typed payload's fields in this order, UNSET where absent.
ROW_FIELDS = ("e", "E", "s", "U", "u", "b", "a", "B", "A", "t", "p", "q", "T", "m", "M")
Row = tuple[Any, ...]
as_row: Callable[[Payload], Row] = attrgetter(*ROW_FIELDS)
_TICKER_FIELDS = itemgetter(4, 5, 7, 6, 8, 1)  # u, b, B, a, A, E
_TRADE_FIELDS = itemgetter(9, 10, 11, 13, 12)  # t, p, q, m, T
_DIFF_FIELDS = itemgetter(3, 4, 5, 6, 1)  # U, u, b, a, E
_SYMBOL = itemgetter(2)
_DATA = attrgetter("data")
_KIND = attrgetter("kind")
_VENUE = attrgetter("venue")
_RECV_NS = attrgetter("recv_ns")
_SIDE = {True: "sell", False: "buy"}
_ONLY_WS = {"ws"}
_ONLY_INT = {int}
_ONLY_UNSET = {UnsetType}

# How a column is checked and built: its frames, as received and as read -> answers, or None.
Builder = Callable[[list[RawEvent], list[Row], Callable[[str], str]], list[Decoded] | None]


def decode_typed_chunk(
    raws: Sequence[RawEvent], normalized: Callable[[str], str], interval_ok: Callable[[str], object]
) -> list[Decoded | None]:
    """`[decode_typed(raw, normalized, interval_ok) for raw in raws]`, the same answers.
    Frames are sorted into their columns, and the answers put back in place, by C loops."""
    rows, one_by_one = read_rows(raws)
    at_all = range(len(raws))
    kinds = list(map(_COLUMN_OF.get, [None if row is None else row[0] for row in rows]))
    answers: dict[int, Decoded | None] = {}
    for kind, build in enumerate(_BUILDERS):
        where = list(compress(at_all, map(eq, kinds, repeat(kind))))
        if not where:
            continue
        column_raws = list(map(raws.__getitem__, where))
        built = build(column_raws, list(map(rows.__getitem__, where)), normalized)
        if built is None:  # some frame fails a check: each one answers for itself
            built = [
                None if payload is None else typed_message(raw, payload, normalized, interval_ok)
                for raw, payload in zip(column_raws, map(typed_payload, column_raws))
            ]
        answers.update(zip(where, built))
    for at, payload in one_by_one.items():
        answers[at] = typed_message(raws[at], payload, normalized, interval_ok)
    return list(map(answers.get, at_all))


def read_rows(raws: Sequence[RawEvent]) -> tuple[list[Row | None], dict[int, Payload]]:
    """What `typed_payload` reads of each frame: a row for each book ticker, trade or diff
    (None where it reads nothing), and the payloads of the frames it reads one by one
    (klines, aggTrades), by position. The compiled reader takes the frames of the usual
    shape; msgspec reads the rest, so the answer does not depend on which one ran."""
    rows = _compiled_rows(raws)
    one_by_one: dict[int, Payload] = {}
    for at in compress(range(len(rows)), map(is_, rows, repeat(None))):
        payload = typed_payload(raws[at])
        if payload is None:
            continue
        if payload.e in _COLUMN_OF:
            rows[at] = as_row(payload)
        else:
            one_by_one[at] = payload
    return rows, one_by_one


def _compiled_rows(raws: Sequence[RawEvent]) -> list[Row | None]:
    """The rows the compiled reader gives (None where Python must look); only websocket
    frames are read typed."""
    if FRAMES is None:
        return [None] * len(raws)
    rows: list[Row | None] = FRAMES.binance_rows(list(map(_DATA, raws)), UNSET)
    if set(map(_KIND, raws)) != _ONLY_WS:
        rows = [row if raw.kind == "ws" else None for row, raw in zip(rows, raws)]
    return rows


def _symbols(rows: list[Row], normalized: Callable[[str], str]) -> list[str] | None:
    """Each frame's symbol as ours (a chunk names a few), or None if any is not a symbol."""
    names = list(map(_SYMBOL, rows))
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
    types = set(map(type, values))
    if types == _ONLY_UNSET:  # book tickers carry no time: nothing to check
        return recv_ns, [None] * len(values)
    if UnsetType in types:
        values = [None if value is UNSET else value for value in values]
    try:
        return recv_ns, exchange_times(values, recv_ns)
    except BadMessage:
        return None


def _tickers(raws: list[RawEvent], rows: list[Row], normalized: Callable[[str], str]) -> list[Decoded] | None:
    symbols = _symbols(rows, normalized)
    if symbols is None:
        return None
    update_ids, bids, bid_sizes, asks, ask_sizes, times = map(list, zip(*map(_TICKER_FIELDS, rows)))
    if UnsetType in set(map(type, update_ids)) | set(map(type, bid_sizes)) | set(map(type, ask_sizes)):
        return None  # no event type, yet not a ticker
    if not all_pairs_pass(bids + asks, bid_sizes + ask_sizes):  # both pairs of every ticker at once
        return None
    timed = _times(raws, times)
    if timed is None:
        return None
    recv_ns, exchange_ms = timed
    nothing = [None] * len(rows)
    built = build_column(
        Ticker, list(map(_VENUE, raws)), symbols, update_ids, bids, bid_sizes, asks, ask_sizes, nothing, exchange_ms, recv_ns
    )
    return list(zip(symbols, built))


def _trades(raws: list[RawEvent], rows: list[Row], normalized: Callable[[str], str]) -> list[Decoded] | None:
    symbols = _symbols(rows, normalized)
    if symbols is None:
        return None
    trade_ids, prices, quantities, makers, times = map(list, zip(*map(_TRADE_FIELDS, rows)))
    if set(map(type, trade_ids)) != _ONLY_INT or min(trade_ids) < 0 or set(map(type, makers)) != {bool}:
        return None
    if not all_pairs_pass(prices, quantities):
        return None
    timed = _times(raws, times)
    if timed is None:
        return None
    recv_ns, exchange_ms = timed
    sides = list(map(_SIDE.__getitem__, makers))
    built = build_column(
        Trade, list(map(_VENUE, raws)), symbols, list(map(str, trade_ids)), prices, quantities, sides, exchange_ms, recv_ns
    )
    return list(zip(symbols, built))


def _diffs(raws: list[RawEvent], rows: list[Row], normalized: Callable[[str], str]) -> list[Decoded] | None:
    symbols = _symbols(rows, normalized)
    if symbols is None:
        return None
    first_ids, last_ids, bids, asks, times = map(list, zip(*map(_DIFF_FIELDS, rows)))
    if set(map(type, first_ids)) != _ONLY_INT or set(map(type, last_ids)) != _ONLY_INT:
        return None
    if any(map(gt, first_ids, last_ids)):
        return None
    count = len(rows)
    changes = parse_sides(bids + asks, [True] * count + [False] * count)
    if changes is None:
        return None
    timed = _times(raws, times)
    if timed is None:
        return None
    recv_ns, exchange_ms = timed
    built = map(DepthDiff, first_ids, last_ids, changes[:count], changes[count:], bids, asks, exchange_ms, recv_ns)
    return list(zip(symbols, built))


# A row's column by its event type (`e`; absent: a book ticker).
_COLUMN_OF: dict[object, int] = {UNSET: 0, "trade": 1, "depthUpdate": 2}
_BUILDERS: tuple[Builder, ...] = (_tickers, _trades, _diffs)
