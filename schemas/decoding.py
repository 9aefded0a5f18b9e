"""The collector's JSON (`schemas.encoding`) back into normalized events, for the store.

The inverse of the encoders for what storage keeps: exact decimal text untouched, ISO
times back to integer ticks (exchange time in ms; receive time in ns, at the microsecond
the JSON carries). An exchange time the venue did not send was written as the receive
time and reads back as such, as it does from ClickHouse. Deep levels (OKX books-full)
are told apart by their `age_ms`. A delta's top of book is not restored: storage does not
keep it (the full book and the deltas rebuild it). Feature rows carry integer ticks and
float values, and come back exactly.
"""

from __future__ import annotations

from calendar import timegm
from collections.abc import Callable
from functools import lru_cache
from time import strptime
from typing import Any

import orjson

from schemas.events import BookDelta, BookFull, Kline, PriceQty, QualityEvent, Ticker, Trade
from schemas.features import FeatureRow


@lru_cache(maxsize=4096)
def _epoch_second(text: str) -> int:
    return timegm(strptime(text, "%Y-%m-%dT%H:%M:%S"))


def _ticks(iso: str, digits: int) -> int:
    """`2026-12-01T10:00:00.123Z` -> ticks of 10^-digits s (the fraction padded or cut)."""
    seconds, _, fraction = iso.rstrip("Z").partition(".")
    return _epoch_second(seconds) * 10**digits + int((fraction + "0" * digits)[:digits])


def ms_from_iso(iso: str) -> int:
    return _ticks(iso, 3)


def ns_from_iso(iso: str) -> int:
    return _ticks(iso, 9)


def _levels(levels: list[dict[str, Any]]) -> list[PriceQty]:
    return [[level["price"], level["quantity"]] for level in levels]


def _split_deep(levels: list[dict[str, Any]]) -> tuple[list[PriceQty], list[PriceQty], int | None]:
    live = [level for level in levels if "age_ms" not in level]
    deep = [level for level in levels if "age_ms" in level]
    return _levels(live), _levels(deep), deep[0]["age_ms"] if deep else None


def _full(d: dict[str, Any]) -> BookFull:
    bids, deep_bids, bid_age = _split_deep(d["bids"])
    asks, deep_asks, ask_age = _split_deep(d["asks"])
    return BookFull(
        venue=d["exchange_name"], symbol=d["symbol_name"], update_type=d["update_type"],
        last_update_id=d["last_update_id"], first_update_id=d["first_update_id"],
        prev_update_id=d["prev_update_id"], sequence_id=d["sequence_id"], bids=bids, asks=asks,
        checksum=d["checksum"], is_valid=d["is_valid"], validation_errors=list(d["validation_errors"]),
        exchange_ms=ms_from_iso(d["timestamp"]), recv_ns=ns_from_iso(d["collected_at"]),
        deep_bids=deep_bids, deep_asks=deep_asks, deep_age_ms=bid_age if bid_age is not None else ask_age,
        kept_bids=_levels(d.get("kept_bids", [])), kept_asks=_levels(d.get("kept_asks", [])),
        exact_bid_levels=d["exact_bid_levels"], exact_ask_levels=d["exact_ask_levels"],
    )


def _delta(d: dict[str, Any]) -> BookDelta:
    return BookDelta(
        venue=d["exchange_name"], symbol=d["symbol_name"], update_id=d["update_id"],
        prev_update_id=d["prev_update_id"], first_update_id=d["first_update_id"],
        bid_updates=[[lv["price"], lv["quantity"]] for lv in d["bid_updates"]],
        ask_updates=[[lv["price"], lv["quantity"]] for lv in d["ask_updates"]],
        exchange_ms=ms_from_iso(d["timestamp"]), recv_ns=ns_from_iso(d["collected_at"]),
    )


def _trade(d: dict[str, Any]) -> Trade:
    return Trade(
        venue=d["exchange_name"], symbol=d["symbol_name"], trade_id=d["trade_id"], price=d["price"],
        quantity=d["quantity"], side=d["side"], exchange_ms=ms_from_iso(d["timestamp"]),
        recv_ns=ns_from_iso(d["collected_at"]),
    )


def _ticker(d: dict[str, Any]) -> Ticker:
    return Ticker(
        venue=d["exchange_name"], symbol=d["symbol_name"], update_id=d["update_id"],
        best_bid_price=d["best_bid_price"], best_bid_quantity=d["best_bid_quantity"],
        best_ask_price=d["best_ask_price"], best_ask_quantity=d["best_ask_quantity"], last_price=d["last_price"],
        exchange_ms=ms_from_iso(d["timestamp"]), recv_ns=ns_from_iso(d["collected_at"]),
    )


def _kline(d: dict[str, Any]) -> Kline:
    return Kline(
        venue=d["exchange_name"], symbol=d["symbol_name"], interval=d["interval"],
        open_time=ms_from_iso(d["open_time"]), close_time=ms_from_iso(d["close_time"]), open=d["open_price"],
        high=d["high_price"], low=d["low_price"], close=d["close_price"], volume=d["volume"],
        quote_volume=d["quote_volume"], trade_count=d["trade_count"], is_closed=d["is_closed"],
        exchange_ms=ms_from_iso(d["timestamp"]), recv_ns=ns_from_iso(d["collected_at"]),
    )


def _quality(d: dict[str, Any]) -> QualityEvent:
    return QualityEvent(
        venue=d["exchange_name"], symbol=d["symbol_name"], kind=d["kind"], detail=d["detail"],
        update_id=d["update_id"], recv_ns=ns_from_iso(d["collected_at"]),
    )


def _features(d: dict[str, Any]) -> FeatureRow:
    """`schemas.features.feature_dict` carries its times as integer ticks already."""
    return FeatureRow(
        venue=d["exchange_name"], symbol=d["symbol_name"], update_id=d["update_id"], exchange_ms=d["timestamp"],
        recv_ns=d["recv_ns"], values=d["features"],
    )


# What the store keeps, by the subject's kind token. `orderbook.snapshot` repeats an
# `orderbook.full` message and `orderbook.delta` carries the update `pure_delta` carries:
# each is stored once, from the smaller or the canonical subject.
_DECODERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "full": _full,
    "pure_delta": _delta,
    "trade": _trade,
    "ticker": _ticker,
    "kline": _kline,
    "quality": _quality,
    "features": _features,
}


def stored_kind(subject: str) -> str | None:
    """`orderbook.full.okx.btc-usdt` -> `full`, `market.okx.btc-usdt.kline.1m` -> `kline`,
    `features.okx.btc-usdt` -> `features`; None for a subject whose messages another subject
    already stores (snapshot, delta)."""
    tokens = subject.split(".")
    if tokens[0] == "features":
        kind = tokens[0]
    else:
        kind = tokens[1] if tokens[0] == "orderbook" else tokens[3] if len(tokens) > 3 else ""
    return kind if kind in _DECODERS else None


def event_from_message(subject: str, data: bytes) -> object | None:
    """The event a stored subject's message carries, or None for a duplicate subject."""
    kind = stored_kind(subject)
    return None if kind is None else _DECODERS[kind](orjson.loads(data))
