"""Venue dispatch for decoding: RawEvent -> messages keyed by `venue:SYMBOL`."""

from __future__ import annotations

from functools import lru_cache

from operators.binance_wire import decode_binance
from operators.okx_wire import decode_okx
from operators.wire import Ignored, Rejected
from schemas.raw import RawEvent

Keyed = tuple[str | None, object]


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
    if type(decoded) is Ignored:
        return decoded
    return [(None if symbol is None else book_key(raw.venue, symbol), msg) for symbol, msg in decoded]  # type: ignore[union-attr]
