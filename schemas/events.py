"""Normalized events as the pipeline carries them: slotted records of exact strings.

These are the hot-path forms; `schemas.encoding` turns them into the plan's JSON and
`schemas.models` describes that JSON (pydantic, JSON Schema). Times are integers:
exchange time in ms, local receive time in ns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

# A level as the exchange wrote it: `[price, quantity, ...]`; only the first two are used.
PriceQty = Sequence[str]

UpdateType = Literal["snapshot", "update", "delta", "full_refresh"]

# Kinds of quality events, one per thing that can go wrong with a book or its input.
QualityKind = Literal[
    "gap", "checksum_failure", "checksum_unverified", "crossed", "rejected", "stale_snapshot", "resync", "buffer_overflow",
    "audit_mismatch", "missing_seq_id", "silent", "sync_timeout", "in_sync", "out_of_sync",
]
# What a source is asked to do for a book, from the gentlest to the most thorough: fetch a
# REST snapshot (Binance; for OKX the same as resubscribe), re-subscribe the book's channels
# (a new OKX snapshot), or drop the connection and open a new one.
SourceAction = Literal["snapshot", "resubscribe", "reconnect"]


@dataclass(slots=True)
class BookFull:
    """A whole book at one update id: published after every (re)sync and periodically."""

    venue: str
    symbol: str
    update_type: UpdateType
    last_update_id: int | None
    first_update_id: int | None
    prev_update_id: int | None
    sequence_id: int | None
    bids: list[PriceQty]
    asks: list[PriceQty]
    checksum: int | None
    is_valid: bool
    validation_errors: list[str]
    exchange_ms: int | None
    recv_ns: int
    # OKX: levels below the live window from the latest REST books-full, and their age.
    deep_bids: list[PriceQty] = field(default_factory=list)
    deep_asks: list[PriceQty] = field(default_factory=list)
    deep_age_ms: int | None = None
    # OKX: levels kept past the live window; stored for exact rebuilds, never published.
    kept_bids: list[PriceQty] = field(default_factory=list)
    kept_asks: list[PriceQty] = field(default_factory=list)
    # How many levels per side, from the top, are provably the exchange's (the rest of
    # `bids`/`asks` are real levels past a snapshot's horizon, or OKX deep levels).
    exact_bid_levels: int | None = None
    exact_ask_levels: int | None = None
    # The first book of a `snapshot_interval_ms` slot of exchange time (or a fresh
    # snapshot): it also goes to `orderbook.snapshot`.
    snapshot_slot_start: bool = False
    # The plan's `ml_features`: the book's latest feature row (set by book_sync's live features).
    ml_features: dict[str, float | None] | None = None


@dataclass(slots=True)
class BookDelta:
    """The level changes of one applied update, as the exchange sent them ("0" removes)."""

    venue: str
    symbol: str
    update_id: int
    prev_update_id: int | None
    first_update_id: int | None
    bid_updates: list[list[str]]
    ask_updates: list[list[str]]
    exchange_ms: int | None
    recv_ns: int
    top_bids: list[PriceQty] = field(default_factory=list)  # the book's best levels after the update
    top_asks: list[PriceQty] = field(default_factory=list)


@dataclass(slots=True)
class Trade:
    venue: str
    symbol: str
    trade_id: str
    price: str
    quantity: str
    side: Literal["buy", "sell"]
    exchange_ms: int | None
    recv_ns: int


@dataclass(slots=True)
class Ticker:
    """Best bid/ask (and last price where the venue sends it) at one moment."""

    venue: str
    symbol: str
    update_id: int | None
    best_bid_price: str
    best_bid_quantity: str
    best_ask_price: str
    best_ask_quantity: str
    last_price: str | None
    exchange_ms: int | None
    recv_ns: int


@dataclass(slots=True)
class QualityEvent:
    """Something went wrong with a book or its input, and what was done about it."""

    venue: str
    symbol: str | None
    kind: QualityKind
    detail: str
    update_id: int | None
    recv_ns: int


@dataclass(slots=True)
class ResyncRequest:
    """Asks the source of `venue:symbol` to act (leaves through the control bus): by default a
    fresh snapshot; the watchdog escalates to a new subscription, then a new connection."""

    venue: str
    symbol: str
    reason: str
    recv_ns: int
    action: SourceAction = "snapshot"


@dataclass(slots=True)
class BookStats:
    """Running counters of one book, the replay report's per-book entry."""

    messages: int = 0
    updates_applied: int = 0
    levels_applied: int = 0
    snapshots: int = 0
    resyncs: int = 0
    gaps: int = 0
    checksums_verified: int = 0
    checksum_failures: int = 0
    checksums_unverified: int = 0
    crossed: int = 0
    rejected: int = 0
    audits_passed: int = 0
    audit_failures: int = 0
    audits_skipped: int = 0  # audit snapshots too old for the retained diffs to bring up to the book
    watchdog_actions: int = 0
    best_bid: str | None = None
    best_ask: str | None = None
    bid_levels: int | None = None
    ask_levels: int | None = None
    exact_bid_levels: int | None = None
    exact_ask_levels: int | None = None
    last_update_id: int | None = None
    trades: int = 0
    errors: list[str] = field(default_factory=list)
    errors_omitted: int = 0
    last_recv_ns: int | None = None  # receive time of the last message that changed the book


@dataclass(slots=True)
class Kline:
    """One candlestick update (Binance `@kline_<interval>`, OKX `candle<interval>`): the candle
    so far, or its final state when `is_closed`; venues push an open candle every second or two."""

    venue: str
    symbol: str
    interval: str  # "1m"
    open_time: int  # ms, the first millisecond of the candle
    close_time: int  # ms, its last millisecond
    open: str
    high: str
    low: str
    close: str
    volume: str  # base asset
    quote_volume: str
    trade_count: int | None  # None where the venue does not say (OKX)
    is_closed: bool
    exchange_ms: int | None  # the push's event time (Binance E); OKX sends none
    recv_ns: int


NormalizedEvent = BookFull | BookDelta | Trade | Ticker | QualityEvent | ResyncRequest | Kline
