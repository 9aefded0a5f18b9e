"""Pydantic descriptions of the published JSON, for JSON Schema export and edge validation.

The hot path never builds these: `schemas.encoding` writes the same shapes directly.
Field names are the plan's (`EnhancedOrderBook`, `OrderBookDelta`), so consumer code
written against the plan reads our payloads unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
DecimalText = Annotated[str, Field(pattern=DECIMAL_PATTERN)]


class PriceLevel(BaseModel):
    """One level; the exchange's exact decimal text. In deltas quantity "0" removes the level."""

    model_config = ConfigDict(extra="forbid")
    price: str = Field(pattern=DECIMAL_PATTERN)
    quantity: str = Field(pattern=DECIMAL_PATTERN)
    age_ms: int | None = Field(
        default=None, description="OKX levels below the live 400: age of the books-full refresh they come from"
    )


class EnhancedOrderBook(BaseModel):
    """A full book (update_type snapshot after a (re)sync, full_refresh periodically)."""

    model_config = ConfigDict(extra="forbid")
    event_type: Literal["orderbook"] = "orderbook"
    exchange_name: str
    symbol_name: str
    update_type: Literal["snapshot", "update", "delta", "full_refresh"]
    last_update_id: int | None
    first_update_id: int | None = None
    prev_update_id: int | None = None
    sequence_id: int | None = None
    bids: list[PriceLevel] = Field(description="best (highest) first")
    asks: list[PriceLevel] = Field(description="best (lowest) first")
    depth_levels: int = Field(ge=0, description="len(bids) + len(asks)")
    exact_bid_levels: int | None = Field(
        default=None, ge=0,
        description="full books: how many bids, from the best, are provably the exchange's; deeper ones are real "
        "levels past the last snapshot's horizon (Binance) or books-full levels with their age_ms (OKX)",
    )
    exact_ask_levels: int | None = Field(default=None, ge=0, description="the same for asks")
    kept_bids: list[PriceLevel] | None = Field(
        default=None, description="OKX full books: the engine's levels past the live window, not vouched for by a "
        "checksum; present when there are any, so that storage rebuilds the book exactly as the engine held it",
    )
    kept_asks: list[PriceLevel] | None = Field(default=None, description="the same for asks")
    bid_changes: list[PriceLevel] | None = Field(default=None, description="update only: the levels it changed")
    ask_changes: list[PriceLevel] | None = None
    removed_bids: list[DecimalText] | None = Field(
        default=None, description="update only: prices of bid_changes whose quantity became 0, exact text"
    )
    removed_asks: list[DecimalText] | None = Field(default=None, description="update only: the same for asks")
    checksum: int | None = None
    is_valid: bool = True
    validation_errors: list[str] = []
    timestamp: datetime = Field(description="exchange time (receive time where the venue sends none)")
    collected_at: datetime
    processed_at: datetime


class OrderBookDelta(BaseModel):
    """The level changes of one applied update, exactly as the exchange sent them."""

    model_config = ConfigDict(extra="forbid")
    event_type: Literal["pure_delta"] = "pure_delta"
    exchange_name: str
    symbol_name: str
    update_id: int
    prev_update_id: int | None = None
    first_update_id: int | None = None
    bid_updates: list[PriceLevel] = []
    ask_updates: list[PriceLevel] = []
    total_bid_changes: int = 0
    total_ask_changes: int = 0
    timestamp: datetime
    collected_at: datetime


class NormalizedTrade(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_type: Literal["trade"] = "trade"
    exchange_name: str
    symbol_name: str
    trade_id: str
    price: str = Field(pattern=DECIMAL_PATTERN)
    quantity: str = Field(pattern=DECIMAL_PATTERN)
    age_ms: int | None = Field(
        default=None, description="OKX levels below the live 400: age of the books-full refresh they come from"
    )
    side: Literal["buy", "sell"] = Field(description="the taker's side")
    timestamp: datetime
    collected_at: datetime


class NormalizedTicker(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_type: Literal["ticker"] = "ticker"
    exchange_name: str
    symbol_name: str
    update_id: int | None = Field(description="Binance bookTicker u: the book update id it reflects")
    best_bid_price: str = Field(pattern=DECIMAL_PATTERN)
    best_bid_quantity: str = Field(pattern=DECIMAL_PATTERN)
    best_ask_price: str = Field(pattern=DECIMAL_PATTERN)
    best_ask_quantity: str = Field(pattern=DECIMAL_PATTERN)
    last_price: str | None = None
    timestamp: datetime
    collected_at: datetime


class NormalizedKline(BaseModel):
    """One candlestick update: the candle so far, or its final state once `is_closed`."""

    model_config = ConfigDict(extra="forbid", title="Kline")
    event_type: Literal["kline"] = "kline"
    exchange_name: str
    symbol_name: str
    interval: str = Field(description='"1m"; the unit in lower case for minutes, hours, days, weeks')
    open_time: datetime = Field(description="the candle's first millisecond")
    close_time: datetime = Field(description="its last millisecond")
    open_price: DecimalText
    high_price: DecimalText
    low_price: DecimalText
    close_price: DecimalText
    volume: DecimalText = Field(description="traded in the base asset")
    quote_volume: DecimalText = Field(description="traded in the quote asset")
    trade_count: int | None = Field(ge=0, description="None where the venue does not say (OKX)")
    is_closed: bool = Field(description="false while the candle is still open; its last update is true")
    timestamp: datetime = Field(description="the push's exchange time (receive time where the venue sends none: OKX)")
    collected_at: datetime


class QualityEventModel(BaseModel):
    """A gap, checksum failure, crossed book, rejected message or resync, and its cause."""

    model_config = ConfigDict(extra="forbid", title="QualityEvent")
    event_type: Literal["quality"] = "quality"
    exchange_name: str
    symbol_name: str | None
    kind: Literal[
        "gap", "checksum_failure", "checksum_unverified", "crossed", "rejected", "stale_snapshot", "resync",
        "buffer_overflow", "audit_mismatch", "missing_seq_id", "silent", "sync_timeout", "in_sync", "out_of_sync",
    ] = Field(description="in_sync / out_of_sync: the book's state changed, `detail` says why")
    detail: str
    update_id: int | None
    collected_at: datetime


EVENT_MODELS: dict[str, type[BaseModel]] = {
    "orderbook": EnhancedOrderBook,
    "pure_delta": OrderBookDelta,
    "trade": NormalizedTrade,
    "ticker": NormalizedTicker,
    "quality": QualityEventModel,
    "kline": NormalizedKline,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every published event, by event_type."""
    return {name: model.model_json_schema() for name, model in EVENT_MODELS.items()}
