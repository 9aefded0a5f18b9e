"""The unit every source emits and every recording stores: one received message, untouched.

Nothing here is parsed: `data` is the exact text the exchange sent, so a recording
replays byte for byte through the same sync code that ran live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgspec

Venue = Literal["binance", "binance_us", "okx"]
MessageKind = Literal["ws", "rest"]

VENUES: tuple[str, ...] = ("binance", "binance_us", "okx")
KINDS: tuple[str, ...] = ("ws", "rest")


class RawEvent(msgspec.Struct, frozen=True, gc=False):
    """One message as received: the local receive time in ns, where it came from, its text.

    A msgspec struct: recordings are read into it in one C call, and it holds only texts and
    numbers, so the garbage collector need not track the millions a replay creates."""

    recv_ns: int
    venue: str
    conn: str
    kind: str
    symbol: str | None
    url: str | None
    data: str


class ParsedRawEvent(RawEvent, frozen=True, gc=True):
    """A REST answer whose text the REST client already parsed, to check that it is JSON:
    `document` is that parse (orjson's result), so decoding need not parse a 330 KB OKX
    books-full answer a second time. It records as the plain RawEvent it is."""

    document: object


def as_received(event: RawEvent) -> RawEvent:
    """The message alone, without what a subclass derived from it (a parsed document, a
    decoding), for whoever keeps it a while: a decoded OKX books-full holds 50,000 objects."""
    if type(event) is RawEvent:
        return event
    return RawEvent(event.recv_ns, event.venue, event.conn, event.kind, event.symbol, event.url, event.data)


@dataclass(slots=True, frozen=True)
class RecordingDefect:
    """A recording line that could not be read; replay reports it and carries on."""

    where: str
    reason: str
