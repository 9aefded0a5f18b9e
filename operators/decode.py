"""Venue dispatch for decoding: RawEvent -> messages keyed by `venue:SYMBOL`."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

import orjson

from operators.binance_columns import decode_typed_chunk
from operators.binance_wire import KLINE_INTERVAL, normalized_symbol, decode_binance
from operators.okx_wire import decode_okx
from operators.wire import Ignored, Rejected
from schemas.raw import RawEvent

Keyed = tuple[str | None, object]

_BINANCE_VENUES = frozenset({"binance", "binance_us"})
_ONLY_RAW = {RawEvent}
_VENUE = attrgetter("venue")
_SYMBOL = itemgetter(0)
_MESSAGE = itemgetter(1)


@lru_cache(maxsize=4096)
def book_key(venue: str, symbol: str) -> str:
    return f"{venue}:{symbol}"


def decode(raw: RawEvent, *, okx_loads: Callable[[str], Any] = orjson.loads) -> list[Keyed] | Ignored:
    """Typed messages with their book key; None as key when the message named no book.
    `okx_loads` parses OKX messages: the live source's thread parses `books-full` answers
    (every second, 330 KB) in slices; Binance's deep answers, snapshots at syncs and
    audits only, take the typed decoder's one pass."""
    if raw.venue == "okx":
        decoded = decode_okx(raw, okx_loads)
    elif raw.venue in ("binance", "binance_us"):
        decoded = decode_binance(raw)
    else:
        return [(None, Rejected(raw.venue, None, f"unknown venue {raw.venue!r}", raw.recv_ns))]
    if isinstance(decoded, Ignored):
        return decoded
    return [(None if symbol is None else book_key(raw.venue, symbol), msg) for symbol, msg in decoded]


def decode_typed_chunk_keyed(items: list[object]) -> tuple[list[str | None], list[object]]:
    """The typed path's answer for each item of a replay chunk (RawEvents and defects): its
    book key and message, or None as key where `decode` has the answer. The common Binance
    frames of a replay's millions in a few calls, their tickers, trades and diffs checked
    column by column; a chunk the typed path answers whole is keyed by C loops. (The typed
    path leaves oversized frames to the general one.)"""
    venues = set(map(_VENUE, items)) if items and set(map(type, items)) == _ONLY_RAW else None
    if venues is not None and venues <= _BINANCE_VENUES:  # a replay of Binance, as usual: all of it
        binance: list[int] | range = range(len(items))
    else:
        binance = [at for at, item in enumerate(items) if type(item) is RawEvent and item.venue in _BINANCE_VENUES]
    typed = decode_typed_chunk([items[at] for at in binance], normalized_symbol, KLINE_INTERVAL)  # type: ignore[misc]
    if type(binance) is range and None not in typed:
        return _book_keys(items, venues, list(map(_SYMBOL, typed))), list(map(_MESSAGE, typed))  # type: ignore[arg-type]
    keys: list[str | None] = [None] * len(items)
    messages: list[object] = [None] * len(items)
    for at, answer in zip(binance, typed):
        if answer is not None:
            keys[at] = book_key(items[at].venue, answer[0])  # type: ignore[attr-defined]
            messages[at] = answer[1]
    return keys, messages


def _book_keys(items: list[object], venues: set[str], symbols: list[str]) -> list[str]:
    """Each item's book key: by one dict lookup per item when the chunk is of one venue."""
    if len(venues) != 1:
        return list(map(book_key, map(_VENUE, items), symbols))
    venue = next(iter(venues))
    key_of = {symbol: book_key(venue, symbol) for symbol in set(symbols)}
    return list(map(key_of.__getitem__, symbols))
