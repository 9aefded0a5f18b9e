"""Typed decoding of a chunk of Binance frames, column by column.

`operators.binance_typed` answers one frame at a time. A recording is mostly book tickers,
trades and diffs, and checking them one by one costs more Python than reading them: here
a chunk's frames are gathered into groups (tickers, trades, diffs), each a column per
field, in one C loop (`operators/_binance_frames.c`, msgspec for the frames it leaves);
each group is checked column by column (`operators.levels.all_pairs_pass`,
`exchange_times`, `parse_sides`) and built with one `map`, and the answers are put back
in the chunk's order by another C loop. The answers are `decode_typed`'s, frame for
frame: a group that fails any check goes back to `typed_message` one frame at a time
(which finds, or defers, the fault), and klines and aggTrades always go that way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter, gt
from typing import Any

from msgspec import UNSET, UnsetType

from operators.binance_typed import Decoded, Payload, typed_message, typed_payload
from operators.compiled_core import FRAMES
from operators.levels import BadMessage, all_pairs_pass, exchange_times, parse_sides
from operators.wire import MAX_FRAME_BYTES, DepthDiff
from schemas.columns import build_column
from schemas.events import Ticker, Trade
from schemas.raw import RawEvent

# The groups a frame of a chunk falls in (by its event type `e`; absent: a book ticker),
# and the payload's fields each group's builder reads, in its order (the compiled reader's too).
GROUP_OF: dict[object, int] = {UNSET: 0, "trade": 1, "depthUpdate": 2}
GROUP_FIELDS = (("s", "u", "b", "B", "a", "A", "E"), ("s", "t", "p", "q", "m", "T"), ("s", "U", "u", "b", "a", "E"))
Group = tuple[list[int], tuple[list[Any], ...]]  # positions in the chunk, then one list per field
_GROUP_ROWS: tuple[Callable[[Payload], tuple[Any, ...]], ...] = tuple(attrgetter(*names) for names in GROUP_FIELDS)
_DATA = attrgetter("data")
_KIND = attrgetter("kind")
_VENUE = attrgetter("venue")
_RECV_NS = attrgetter("recv_ns")
_SIDE = {True: "sell", False: "buy"}
_ONLY_WS = {"ws"}
_ONLY_INT = {int}
_ONLY_UNSET = {UnsetType}

# How a group is checked and built: its frames as received, their fields (in the builder's
# order, each a list) -> answers, or None.
Builder = Callable[[list[RawEvent], list[list[Any]], Callable[[str], str]], list[Decoded] | None]


def decode_typed_chunk(
    raws: Sequence[RawEvent], normalized: Callable[[str], str], interval_ok: Callable[[str], object]
) -> list[Decoded | None]:
    """`[decode_typed(raw, normalized, interval_ok) for raw in raws]`, the same answers.
    Frames are sorted into their groups, and the answers put back in place, by C loops."""
    groups, one_by_one = read_groups(raws)
    pieces: list[tuple[list[int], list[Decoded | None]]] = []
    for build, (positions, fields) in zip(_BUILDERS, groups):
        if not positions:
            continue
        group_raws = list(map(raws.__getitem__, positions))
        built = build(group_raws, list(fields), normalized)
        if built is None:  # some frame fails a check: each one answers for itself
            built = [
                None if payload is None else typed_message(raw, payload, normalized, interval_ok)
                for raw, payload in zip(group_raws, map(typed_payload, group_raws))
            ]
        pieces.append((positions, built))
    if one_by_one:
        pieces.append((list(one_by_one), [typed_message(raws[at], payload, normalized, interval_ok)
                                          for at, payload in one_by_one.items()]))
    return place(len(raws), pieces)


def read_groups(raws: Sequence[RawEvent]) -> tuple[tuple[Group, ...], dict[int, Payload]]:
    """What `typed_payload` reads of each frame: the book tickers', trades' and diffs' fields
    by group (UNSET where absent), and the payloads of the frames read one by one (klines,
    aggTrades), by position. The compiled reader takes the frames of the usual shape;
    msgspec reads the rest, so the answer does not depend on which one ran."""
    groups, unread = _compiled_groups(raws)
    one_by_one: dict[int, Payload] = {}
    for at in unread:
        payload = typed_payload(raws[at])
        if payload is None:
            continue
        group = GROUP_OF.get(payload.e)
        if group is None:
            one_by_one[at] = payload
            continue
        positions, fields = groups[group]
        positions.append(at)  # builders answer frame by frame: the order within a group is free
        for column, value in zip(fields, _GROUP_ROWS[group](payload)):
            column.append(value)
    return groups, one_by_one


def _compiled_groups(raws: Sequence[RawEvent]) -> tuple[tuple[Group, ...], list[int]]:
    """The groups the compiled reader fills and the positions it leaves to Python; only
    websocket frames are read typed."""
    if FRAMES is None:
        empty = tuple(([], tuple([] for _ in names)) for names in GROUP_FIELDS)
        return empty, list(range(len(raws)))  # type: ignore[return-value]
    texts = list(map(_DATA, raws))
    if set(map(_KIND, raws)) != _ONLY_WS:
        texts = [raw.data if raw.kind == "ws" else None for raw in raws]
    groups: tuple[Group, ...]
    groups, unread = FRAMES.binance_groups(texts, UNSET, MAX_FRAME_BYTES)
    return groups, unread


def place(count: int, pieces: list[tuple[list[int], list[Decoded | None]]]) -> list[Decoded | None]:
    """A list of `count` answers (None where no piece gives one), each piece putting its
    values at its positions."""
    if FRAMES is not None:
        return FRAMES.place(count, pieces, None)  # type: ignore[no-any-return]
    return place_in_python(count, pieces)


def place_in_python(count: int, pieces: list[tuple[list[int], list[Decoded | None]]]) -> list[Decoded | None]:
    out: list[Decoded | None] = [None] * count
    for positions, values in pieces:
        for at, value in zip(positions, values, strict=True):
            out[at] = value
    return out


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


# The builders, in the order of GROUP_FIELDS.
_BUILDERS: tuple[Builder, ...] = (_tickers, _trades, _diffs)
