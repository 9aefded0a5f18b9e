"""JetStream message ids (`Nats-Msg-Id`): equal messages get equal ids, different ones never share one.

JetStream stores one message per id within the stream's duplicate window (600 s by
default) and drops the rest without an error, so an id shared by two different messages
loses the second. An id is

    {kind}.{venue}.{symbol}.{update id or -}.{recv_ns}.{crc32 of the payload, 8 hex digits}

- `kind` is one letter per subject (f full, s snapshot, d delta, p pure_delta, t trade,
  k ticker, q quality): one event published on two subjects has two ids.
- The update id is the exchange's own (update id, seqId, trade id). It repeats after an
  OKX sequence reset and is missing from older recordings, so it identifies nothing alone;
  it makes an id readable and narrows what the digest has to tell apart.
- `recv_ns` is the receive time the event carries: ids come from the event, never from a
  clock, so a retried publish or a second replay of one recording repeats them exactly.
- The digest covers the published bytes, so messages that differ in anything (a Binance
  audit correcting a book at the same update id, two tickers received in one nanosecond,
  an `in_sync` and an `out_of_sync` at one moment) differ in id, and only byte-identical
  messages of one receipt share one. `zlib.crc32` hashes ~6 GB/s (about 0.09 ms for a
  500 KB book of 5000 levels per side); 32 bits suffice because the prefix already
  separates receipts and one receipt yields a handful of messages at most.
"""

from __future__ import annotations

import zlib

# The subject token for quality events about a venue rather than one of its books.
NO_SYMBOL = "-"


def id_stem(venue: str, symbol: str | None, update_id: int | str | None, recv_ns: int, payload: bytes) -> str:
    """The id without its kind letter: one digest serves every subject a payload goes to."""
    book = NO_SYMBOL if symbol is None else symbol.lower()
    update = "-" if update_id is None else update_id
    return f"{venue}.{book}.{update}.{recv_ns}.{zlib.crc32(payload):08x}"
