"""What venue decoders hand to the sync machines: typed messages, rejections, ignorables.

Decoding is stateless, so it runs before the stream is keyed by `venue:symbol`; the
machines behind the key only ever see well-formed, value-checked messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from operators.book import LevelChanges

# Frames above this size are refused before parsing (a 5000-level snapshot is ~250 KB).
MAX_FRAME_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class DepthDiff:
    """A Binance diff-depth event covering update ids first_id..last_id."""

    first_id: int
    last_id: int
    bids: LevelChanges
    asks: LevelChanges
    raw_bids: list[list[str]]
    raw_asks: list[list[str]]
    exchange_ms: int | None
    recv_ns: int


@dataclass(slots=True)
class DepthSnapshot:
    """A Binance REST depth snapshot; `limit` is the depth asked for, when known."""

    last_id: int
    bids: LevelChanges
    asks: LevelChanges
    limit: int | None
    recv_ns: int


@dataclass(slots=True)
class OkxBookMessage:
    """One entry of an OKX order-book push (`books`, `books-l2-tbt`, `books50-l2-tbt`)."""

    snapshot: bool
    window: int
    bids: LevelChanges
    asks: LevelChanges
    raw_bids: list[list[str]]
    raw_asks: list[list[str]]
    checksum: int | None
    seq_id: int | None
    prev_seq_id: int | None
    exchange_ms: int | None
    recv_ns: int


@dataclass(slots=True)
class OkxDeepBook:
    """An OKX REST `books-full` answer: up to 5000 levels, no sequence id, no checksum."""

    bids: LevelChanges
    asks: LevelChanges
    exchange_ms: int | None
    recv_ns: int


@dataclass(slots=True)
class Rejected:
    """A message that was refused; `symbol` is set when the message named its book."""

    venue: str
    symbol: str | None
    reason: str
    recv_ns: int


@dataclass(slots=True)
class Ignored:
    """A well-formed message we do not use (subscription acks, pongs, 24 h tickers)."""

    venue: str
    what: str


BookMessage = DepthDiff | DepthSnapshot | OkxBookMessage
