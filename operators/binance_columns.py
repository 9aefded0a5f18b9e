"""Typed decoding of a chunk of Binance frames, column by column.

`operators.binance_typed` answers one frame at a time. A recording is mostly book tickers,
trades and diffs, and checking them one by one costs more Python than reading them: here
a chunk's frames are read into columns of fields in one C loop (`operators/_binance_frames.c`,
msgspec for the frames it leaves), and its tickers, trades and diffs are checked as
columns (`operators.levels.all_pairs_pass`, `exchange_times`, `parse_sides`) and built
with one `map` each. The answers are `decode_typed`'s, frame for frame: a column that
fails any check goes back to `typed_message` one frame at a time (which finds, or defers,
the fault), and klines and aggTrades always go that way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import attrgetter, eq, gt
from typing import Any

from msgspec import UNSET, UnsetType

from operators.binance_typed import Decoded, Payload, typed_message, typed_payload
from operators.compiled_core import FRAMES
from operators.levels import BadMessage, all_pairs_pass, exchange_times, parse_sides
from operators.wire import MAX_FRAME_BYTES, DepthDiff
from schemas.columns import build_column
from schemas.events import Ticker, Trade
from schemas.raw import RawEvent

# The typed payload's fields, in the order of the columns a chunk is read into.
ROW_FIELDS = ("e", "E", "s", "U", "u", "b", "a", "B", "A", "t", "p", "q", "T", "m", "M")
Columns = tuple[list[Any], ...]
as_row: Callable[[Payload], tuple[Any, ...]] = attrgetter(*ROW_FIELDS)
_EVENT = ROW_FIELDS.index("e")
# The fields each column builder reads, in its order.
_TICKER_FIELDS = tuple(map(ROW_FIELDS.index, ("s", "u", "b", "B", "a", "A", "E")))
_TRADE_FIELDS = tuple(map(ROW_FIELDS.index, ("s", "t", "p", "q", "m", "T")))
_DIFF_FIELDS = tuple(map(ROW_FIELDS.index, ("s", "U", "u", "b", "a", "E")))
_DATA = attrgetter("data")
_KIND = attrgetter("kind")
_VENUE = attrgetter("venue")
_RECV_NS = attrgetter("recv_ns")
_SIDE = {True: "sell", False: "buy"}
_ONLY_WS = {"ws"}
_ONLY_INT = {int}
_ONLY_UNSET = {UnsetType}

# How a column is checked and built: its frames as received, their fields (in the builder's
# order, each a list) -> answers, or None.
Builder = Callable[[list[RawEvent], list[list[Any]], Callable[[str], str]], list[Decoded] | None]


def decode_typed_chunk(
    raws: Sequence[RawEvent], normalized: Callable[[str], str], interval_ok: Callable[[str], object]
) -> list[Decoded | None]:
    """`[decode_typed(raw, normalized, interval_ok) for raw in raws]`, the same answers.
    Frames are sorted into their columns, and the answers put back in place, by C loops."""
    columns, one_by_one = read_columns(raws)
    at_all = range(len(raws))
    kinds = list(map(_COLUMN_OF.get, columns[_EVENT]))
    answers: dict[int, Decoded | None] = {}
    for kind, (build, fields) in enumerate(_BUILDERS):
        where = list(compress(at_all, map(eq, kinds, repeat(kind))))
        if not where:
            continue
        column_raws = list(map(raws.__getitem__, where))
        built = build(column_raws, [list(map(columns[field].__getitem__, where)) for field in fields], normalized)
        if built is None:  # some frame fails a check: each one answers for itself
            built = [
                None if payload is None else typed_message(raw, payload, normalized, interval_ok)
                for raw, payload in zip(column_raws, map(typed_payload, column_raws))
            ]
        answers.update(zip(where, built))
    for at, payload in one_by_one.items():
        answers[at] = typed_message(raws[at], payload, normalized, interval_ok)
    return list(map(answers.get, at_all))


def read_columns(raws: Sequence[RawEvent]) -> tuple[Columns, dict[int, Payload]]:
    """What `typed_payload` reads of each frame, as one list per field of ROW_FIELDS: the
    fields of each book ticker, trade and diff (UNSET where absent; None at frames it reads
    nothing of, or reads one by one), and the payloads of the frames it reads one by one
    (klines, aggTrades), by position. The compiled reader takes the frames of the usual
    shape; msgspec reads the rest, so the answer does not depend on which one ran."""
    columns, unread = _compiled_columns(raws)
    one_by_one: dict[int, Payload] = {}
    for at in unread:
        payload = typed_payload(raws[at])
        if payload is None:
            continue
        if payload.e in _COLUMN_OF:
            for column, value in zip(columns, as_row(payload)):
                column[at] = value
        else:
            one_by_one[at] = payload
    return columns, one_by_one


def _compiled_columns(raws: Sequence[RawEvent]) -> tuple[Columns, list[int]]:
    """The columns the compiled reader fills and the positions it leaves to Python; only
    websocket frames are read typed."""
    if FRAMES is None:
        return tuple([None] * len(raws) for _ in ROW_FIELDS), list(range(len(raws)))
    columns: Columns
    columns, unread = FRAMES.binance_columns(list(map(_DATA, raws)), UNSET, MAX_FRAME_BYTES)
    if set(map(_KIND, raws)) != _ONLY_WS:
        for at, raw in enumerate(raws):
            if raw.kind != "ws":
                for column in columns:
                    column[at] = None
    return columns, unread


def _symbols(names: list[object], normalized: Callable[[str], str]) -> list[str] | None:
    """Each frame's symbol as ours (a chunk names a few), or None if any is not a symbol."""
    ours: dict[object, str] = {}
    for name in set(names):
        if type(name) is not str or not name:
            return None
        try:
            ours[name] = normalized(name)  # type: ignore[arg-type]
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


def _tickers(raws: list[RawEvent], fields: list[list[Any]], normalized: Callable[[str], str]) -> list[Decoded] | None:
    names, update_ids, bids, bid_sizes, asks, ask_sizes, times = fields
    symbols = _symbols(names, normalized)
    if symbols is None:
        return None
    if UnsetType in set(map(type, update_ids)) | set(map(type, bid_sizes)) | set(map(type, ask_sizes)):
        return None  # no event type, yet not a ticker
    if not all_pairs_pass(bids + asks, bid_sizes + ask_sizes):  # both pairs of every ticker at once
        return None
    timed = _times(raws, times)
    if timed is None:
        return None
    recv_ns, exchange_ms = timed
    nothing = [None] * len(raws)
    built = build_column(
        Ticker, list(map(_VENUE, raws)), symbols, update_ids, bids, bid_sizes, asks, ask_sizes, nothing, exchange_ms, recv_ns
    )
    return list(zip(symbols, built))


def _trades(raws: list[RawEvent], fields: list[list[Any]], normalized: Callable[[str], str]) -> list[Decoded] | None:
    names, trade_ids, prices, quantities, makers, times = fields
    symbols = _symbols(names, normalized)
    if symbols is None:
        return None
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


def _diffs(raws: list[RawEvent], fields: list[list[Any]], normalized: Callable[[str], str]) -> list[Decoded] | None:
    names, first_ids, last_ids, bids, asks, times = fields
    symbols = _symbols(names, normalized)
    if symbols is None:
        return None
    if set(map(type, first_ids)) != _ONLY_INT or set(map(type, last_ids)) != _ONLY_INT:
        return None
    if any(map(gt, first_ids, last_ids)):
        return None
    count = len(raws)
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
_BUILDERS: tuple[tuple[Builder, tuple[int, ...]], ...] = (
    (_tickers, _TICKER_FIELDS), (_trades, _TRADE_FIELDS), (_diffs, _DIFF_FIELDS),
)
