"""Turning wire price levels into book levels, with the value checks every venue shares.

A message is validated whole before anything is applied, so a bad level never leaves a
half-applied book behind. Errors are `BadMessage` with a sentence a person can act on.

The common case (every level fine) is checked with loops that run in C: the texts of a
side are joined and inspected as one string, and converted with `map(float)`.
Only a failing message pays for the slower pass that finds and names the bad level.
"""

from __future__ import annotations

import math
import re
from typing import Any

from operators.book import LevelChanges

# Plain decimal text as the exchanges send it: digits, one optional fraction, nothing else.
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch
# What a side joined as "p|q;p|q;..." may contain. With float() accepting every field and
# no dot next to a separator or at an end, each field is exactly a plain decimal.
_JOINED_ALPHABET = "0123456789.|;"
_LOOSE_DOTS = (".|", "|.", ".;", ";.")
# IEEE-754 doubles round-trip every decimal of up to 15 significant digits; a text of at
# most 16 characters (15 digits and a point) can never exceed that.
_MAX_SIGNIFICANT = 15
_ALWAYS_EXACT_LENGTH = _MAX_SIGNIFICANT + 1
# Exchange times outside [2010-01-01, receive time + 1 day] are absurd, not clock skew.
_EARLIEST_MS = 1_262_304_000_000
_MAX_AHEAD_MS = 86_400_000
_FIELD_JOIN = "|".join
_ONLY_LISTS = {list}


class BadMessage(ValueError):
    """A message that must not touch the book; the text says what is wrong with it."""


def _significant_digits(text: str) -> int:
    digits = text.replace(".", "").lstrip("0")
    if "." in text:
        digits = digits.rstrip("0")
    return len(digits)


def _check_level(entry: Any, side: str, index: int) -> None:
    """Raise BadMessage naming what is wrong with one level (the slow, explaining pass)."""
    if not isinstance(entry, list) or not 2 <= len(entry) <= 4:
        raise BadMessage(f"{side}[{index}] is not a [price, quantity] pair: {entry!r:.80}")
    price, quantity = entry[0], entry[1]
    if type(price) is not str or not _DECIMAL(price):
        raise BadMessage(f"{side}[{index}] price {price!r:.40} is not a decimal string")
    if type(quantity) is not str or not _DECIMAL(quantity):
        raise BadMessage(f"{side}[{index}] quantity {quantity!r:.40} is not a non-negative decimal string")
    if not all(type(extra) is str and _DECIMAL(extra) for extra in entry[2:]):
        raise BadMessage(f"{side}[{index}] has a non-decimal extra field: {entry!r:.80}")
    if not 0.0 < float(price) < math.inf:
        raise BadMessage(f"{side}[{index}] price {price!r:.40} is not a positive finite number")
    if not float(quantity) < math.inf:
        raise BadMessage(f"{side}[{index}] quantity {quantity!r:.40} is not finite")
    if _significant_digits(price) > _MAX_SIGNIFICANT:
        raise BadMessage(f"{side}[{index}] price {price!r} has more than {_MAX_SIGNIFICANT} significant digits")


def _explain(raw: Any, side: str) -> BadMessage:
    if not isinstance(raw, list):
        return BadMessage(f"{side} must be a list of levels, got {type(raw).__name__}")
    for index, entry in enumerate(raw):
        try:
            _check_level(entry, side, index)
        except BadMessage as exc:
            return exc
    return BadMessage(f"{side} could not be read")  # pragma: no cover - both passes apply the same rules


def parse_side(raw: Any, side: str, bids: bool) -> LevelChanges:
    """Check and convert one side's `[[price, qty, ...], ...]` into level changes.

    Prices must be positive plain decimals of at most 15 significant digits; quantities
    non-negative plain decimals. The book keeps each wire list itself; a zero quantity
    becomes None (removal).
    """
    if type(raw) is not list or (raw and set(map(type, raw)) != _ONLY_LISTS):
        raise _explain(raw, side)
    try:
        joined = ";".join(map(_FIELD_JOIN, raw))
        if (
            joined.strip(_JOINED_ALPHABET)
            or joined.startswith(".")
            or joined.endswith(".")
            or any(map(joined.__contains__, _LOOSE_DOTS))
        ):
            raise ValueError
        prices = [entry[0] for entry in raw]
        values = list(map(float, prices))
        sizes = list(map(float, [entry[1] for entry in raw]))
        if max(map(len, raw), default=2) > 4:
            raise ValueError
    except (ValueError, TypeError, IndexError, KeyError):
        raise _explain(raw, side) from None
    if raw:
        if not (min(values) > 0.0 and max(values) < math.inf and max(sizes) < math.inf):
            raise _explain(raw, side)
        if max(map(len, prices)) > _ALWAYS_EXACT_LENGTH and max(map(_significant_digits, prices)) > _MAX_SIGNIFICANT:
            raise _explain(raw, side)
    wires = [entry if size else None for entry, size in zip(raw, sizes)]
    return LevelChanges([-value for value in values] if bids else values, wires)


def check_price_quantity(price: object, quantity: object, what: str) -> None:
    """Validate one (price, quantity) pair outside a book side: trades and tickers."""
    if not (
        type(price) is str
        and type(quantity) is str
        and _DECIMAL(price)
        and _DECIMAL(quantity)
        and 0.0 < float(price) < math.inf
    ):
        _check_level([price, quantity], what, 0)
        raise BadMessage(f"{what}: price {price!r:.40} or quantity {quantity!r:.40} is invalid")


def check_candle(open_: object, high: object, low: object, close: object, volume: object, quote_volume: object) -> None:
    """Validate a candle's texts: positive prices with low <= open, close <= high, and
    non-negative volumes (a candle without trades repeats the last price with volume 0)."""
    values: dict[str, float] = {}
    for name, price in (("open", open_), ("high", high), ("low", low), ("close", close)):
        if type(price) is not str or not _DECIMAL(price) or not 0.0 < float(price) < math.inf:
            raise BadMessage(f"kline {name} price {price!r:.40} is not a positive decimal string")
        values[name] = float(price)
    for name, amount in (("volume", volume), ("quote volume", quote_volume)):
        if type(amount) is not str or not _DECIMAL(amount) or not float(amount) < math.inf:
            raise BadMessage(f"kline {name} {amount!r:.40} is not a non-negative decimal string")
    body = (values["open"], values["close"])
    if not values["low"] <= min(body) <= max(body) <= values["high"]:
        raise BadMessage(f"kline prices out of order: open {open_} high {high} low {low} close {close}")


def exchange_time(value: object, recv_ns: int) -> int | None:
    """Check an exchange timestamp (ms) against the local receive time; None when absent."""
    if value is None:
        return None
    if type(value) is not int:
        raise BadMessage(f"exchange time {value!r:.40} is not an integer of milliseconds")
    if not _EARLIEST_MS <= value <= recv_ns // 1_000_000 + _MAX_AHEAD_MS:
        raise BadMessage(f"absurd exchange time {value} ms (received at {recv_ns // 1_000_000} ms)")
    return value
