"""Venue dispatch for decoding: RawEvent -> messages keyed by `venue:SYMBOL`."""

from __future__ import annotations

from functools import lru_cache

from operators.binance_typed import decode_typed
from operators.binance_wire import KLINE_INTERVAL, normalized_symbol, decode_binance
from operators.okx_wire import decode_okx
from operators.wire import MAX_FRAME_BYTES, Ignored, Rejected
from schemas.raw import RawEvent

Keyed = tuple[str | None, object]

_BINANCE_VENUES = frozenset({"binance", "binance_us"})


@lru_cache(maxsize=4096)
def book_key(venue: str, symbol: str) -> str:
    return f"{venue}:{symbol}"


def decode(raw: RawEvent) -> list[Keyed] | Ignored:
    """Typed messages with their book key; None as key when the message named no book."""
    if raw.venue == "okx":
        decoded = decode_okx(raw)
    elif raw.venue in ("binance", "binance_us"):
        decoded = decode_binance(raw)
    else:
        return [(None, Rejected(raw.venue, None, f"unknown venue {raw.venue!r}", raw.recv_ns))]
    if isinstance(decoded, Ignored):
        return decoded
    return [(None if symbol is None else book_key(raw.venue, symbol), msg) for symbol, msg in decoded]


def decode_typed_keyed(raw: RawEvent) -> tuple[str, object] | None:
    """The typed path's one message with its book key, or None: then `decode` has the
    answer. The common Binance frames in a few calls, for a replay's millions of them."""
    if raw.venue not in _BINANCE_VENUES or len(raw.data) > MAX_FRAME_BYTES:
        return None
    typed = decode_typed(raw, normalized_symbol, KLINE_INTERVAL)
    return None if typed is None else (book_key(raw.venue, typed[0]), typed[1])
