"""The plan's JSON for every normalized event: exact decimal text, ISO-8601 UTC times.

Levels are `{"price": "...", "quantity": "..."}` with the exchange's own text ("0" in a
delta means removal); symbols are `BTC-USDT`; every object carries `event_type` so mixed
streams (JSON Lines files) can be told apart, and otherwise only the plan's field names.
`processed_at` is the receive time of the input that produced the event, which keeps
replays byte-identical; a live sink may restamp it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from schemas.compiled import compiled
from schemas.events import BookDelta, BookFull, Kline, QualityEvent, Ticker, Trade

_TEXT = compiled("schemas._levels_text")


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    # Events arrive in time order, so a small cache turns most conversions into a lookup.
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso_from_ms(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


def iso_from_ns(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{_iso_second(seconds)}.{rest // 1000:06d}Z"


def _exchange_time(ms: int | None, recv_ns: int) -> str:
    return iso_from_ms(ms) if ms is not None else iso_from_ns(recv_ns)


def levels_json(
    levels: Sequence[Sequence[str]], deep: Sequence[Sequence[str]] = (), deep_age_ms: int | None = None
) -> orjson.Fragment:
    """`[{"price": ..., "quantity": ...}, ...]` rendered directly as JSON text; levels from
    an older, deeper source (OKX books-full) follow, each with its `age_ms`.

    Building one dict per level dominated the cost of 5000-level books. Writing the text
    is safe because every price and quantity was checked to be a plain decimal (digits
    and one dot) before it entered a book or a delta: nothing in them needs escaping.
    The compiled twin (`schemas/_levels_text.c`) writes the same text in one pass.
    """
    if _TEXT is not None:
        text = _TEXT.levels_text(levels, deep, deep_age_ms)
        if text is not None:
            return orjson.Fragment(text)
    return levels_json_in_python(levels, deep, deep_age_ms)


def levels_json_in_python(
    levels: Sequence[Sequence[str]], deep: Sequence[Sequence[str]] = (), deep_age_ms: int | None = None
) -> orjson.Fragment:
    """`levels_json` without the compiled twin (its definition)."""
    parts = [f'{{"price":"{level[0]}","quantity":"{level[1]}"}}' for level in levels]
    if deep:
        parts += [f'{{"price":"{level[0]}","quantity":"{level[1]}","age_ms":{deep_age_ms}}}' for level in deep]
    return orjson.Fragment(f"[{','.join(parts)}]")


def book_full_dict(book: BookFull) -> dict[str, Any]:
    collected = iso_from_ns(book.recv_ns)
    out = {
        "event_type": "orderbook",
        "exchange_name": book.venue,
        "symbol_name": book.symbol,
        "update_type": book.update_type,
        "last_update_id": book.last_update_id,
        "first_update_id": book.first_update_id,
        "prev_update_id": book.prev_update_id,
        "sequence_id": book.sequence_id,
        "bids": levels_json(book.bids, book.deep_bids, book.deep_age_ms),
        "asks": levels_json(book.asks, book.deep_asks, book.deep_age_ms),
        "depth_levels": len(book.bids) + len(book.asks) + len(book.deep_bids) + len(book.deep_asks),
        "exact_bid_levels": book.exact_bid_levels,
        "exact_ask_levels": book.exact_ask_levels,
        "checksum": book.checksum,
        "is_valid": book.is_valid,
        "validation_errors": book.validation_errors,
        "timestamp": _exchange_time(book.exchange_ms, book.recv_ns),
        "collected_at": collected,
        "processed_at": collected,
        **({"ml_features": book.ml_features} if book.ml_features is not None else {}),
    }
    if book.kept_bids or book.kept_asks:  # OKX: what the store needs to rebuild the book exactly
        out["kept_bids"] = levels_json(book.kept_bids)
        out["kept_asks"] = levels_json(book.kept_asks)
    return out


def book_delta_dict(delta: BookDelta) -> dict[str, Any]:
    return {
        "event_type": "pure_delta",
        "exchange_name": delta.venue,
        "symbol_name": delta.symbol,
        "update_id": delta.update_id,
        "prev_update_id": delta.prev_update_id,
        "first_update_id": delta.first_update_id,
        "bid_updates": levels_json(delta.bid_updates),
        "ask_updates": levels_json(delta.ask_updates),
        "total_bid_changes": len(delta.bid_updates),
        "total_ask_changes": len(delta.ask_updates),
        "timestamp": _exchange_time(delta.exchange_ms, delta.recv_ns),
        "collected_at": iso_from_ns(delta.recv_ns),
    }


def removed_prices(levels: Sequence[Sequence[str]]) -> list[str]:
    """The prices of an update whose quantity became 0 ("0", "0.00000000"), exact text.

    Every quantity was checked to be a plain decimal, so it is zero exactly when it holds
    no digit other than 0.
    """
    return [level[0] for level in levels if not level[1].strip("0.")]


def book_update_dict(delta: BookDelta) -> dict[str, Any]:
    """The plan's `orderbook.delta` payload: an update with its changes and the top of book."""
    collected = iso_from_ns(delta.recv_ns)
    return {
        "event_type": "orderbook",
        "exchange_name": delta.venue,
        "symbol_name": delta.symbol,
        "update_type": "update",
        "last_update_id": delta.update_id,
        "first_update_id": delta.first_update_id,
        "prev_update_id": delta.prev_update_id,
        "sequence_id": delta.update_id if delta.venue == "okx" else None,
        "bids": levels_json(delta.top_bids),
        "asks": levels_json(delta.top_asks),
        "depth_levels": len(delta.top_bids) + len(delta.top_asks),
        "bid_changes": levels_json(delta.bid_updates),
        "ask_changes": levels_json(delta.ask_updates),
        "removed_bids": removed_prices(delta.bid_updates),
        "removed_asks": removed_prices(delta.ask_updates),
        "checksum": None,
        "is_valid": True,
        "validation_errors": [],
        "timestamp": _exchange_time(delta.exchange_ms, delta.recv_ns),
        "collected_at": collected,
        "processed_at": collected,
    }


def trade_dict(trade: Trade) -> dict[str, Any]:
    return {
        "event_type": "trade",
        "exchange_name": trade.venue,
        "symbol_name": trade.symbol,
        "trade_id": trade.trade_id,
        "price": trade.price,
        "quantity": trade.quantity,
        "side": trade.side,
        "timestamp": _exchange_time(trade.exchange_ms, trade.recv_ns),
        "collected_at": iso_from_ns(trade.recv_ns),
    }


def ticker_dict(ticker: Ticker) -> dict[str, Any]:
    return {
        "event_type": "ticker",
        "exchange_name": ticker.venue,
        "symbol_name": ticker.symbol,
        "update_id": ticker.update_id,
        "best_bid_price": ticker.best_bid_price,
        "best_bid_quantity": ticker.best_bid_quantity,
        "best_ask_price": ticker.best_ask_price,
        "best_ask_quantity": ticker.best_ask_quantity,
        "last_price": ticker.last_price,
        "timestamp": _exchange_time(ticker.exchange_ms, ticker.recv_ns),
        "collected_at": iso_from_ns(ticker.recv_ns),
    }


def kline_dict(kline: Kline) -> dict[str, Any]:
    return {
        "event_type": "kline",
        "exchange_name": kline.venue,
        "symbol_name": kline.symbol,
        "interval": kline.interval,
        "open_time": iso_from_ms(kline.open_time),
        "close_time": iso_from_ms(kline.close_time),
        "open_price": kline.open,
        "high_price": kline.high,
        "low_price": kline.low,
        "close_price": kline.close,
        "volume": kline.volume,
        "quote_volume": kline.quote_volume,
        "trade_count": kline.trade_count,
        "is_closed": kline.is_closed,
        "timestamp": _exchange_time(kline.exchange_ms, kline.recv_ns),
        "collected_at": iso_from_ns(kline.recv_ns),
    }


def quality_dict(event: QualityEvent) -> dict[str, Any]:
    return {
        "event_type": "quality",
        "exchange_name": event.venue,
        "symbol_name": event.symbol,
        "kind": event.kind,
        "detail": event.detail,
        "update_id": event.update_id,
        "collected_at": iso_from_ns(event.recv_ns),
    }


_ENCODERS = {
    BookFull: book_full_dict,
    BookDelta: book_delta_dict,
    Trade: trade_dict,
    Ticker: ticker_dict,
    QualityEvent: quality_dict,
    Kline: kline_dict,
}


def encode_event(event: object) -> bytes | None:
    """One JSON line (without newline), or None for internal signals (resync requests)."""
    encoder = _ENCODERS.get(type(event))  # type: ignore[call-overload]
    return orjson.dumps(encoder(event)) if encoder else None
