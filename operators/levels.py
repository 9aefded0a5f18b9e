"""Turning wire price levels into book levels, with the value checks every venue shares.

A message is validated whole before anything is applied, so a bad level never leaves a
half-applied book behind. Errors are `BadMessage` with a sentence a person can act on.
"""

from __future__ import annotations

import math
import re
from typing import Any

from operators.book import Level

# Plain decimal text as the exchanges send it: digits, one optional fraction, nothing else.
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch
# Exchange times outside [2010-01-01, receive time + 1 day] are absurd, not clock skew.
_EARLIEST_MS = 1_262_304_000_000
_MAX_AHEAD_MS = 86_400_000
# IEEE-754 doubles round-trip every decimal of up to 15 significant digits.
_MAX_SIGNIFICANT = 15


class BadMessage(ValueError):
    """A message that must not touch the book; the text says what is wrong with it."""


def _significant_digits(text: str) -> int:
    digits = text.replace(".", "").lstrip("0")
    if "." in text:
        digits = digits.rstrip("0")
    return len(digits)


def parse_side(raw: Any, side: str, bids: bool) -> list[Level]:
    """Check and convert one side's `[[price, qty, ...], ...]` into levels.

    Prices must be positive plain decimals; quantities non-negative plain decimals;
    a zero quantity becomes "" (removal).
    """
    if not isinstance(raw, list):
        raise BadMessage(f"{side} must be a list of levels, got {type(raw).__name__}")
    out: list[Level] = []
    append = out.append
    for index, entry in enumerate(raw):
        try:
            price, quantity = entry[0], entry[1]
        except (TypeError, IndexError, KeyError):
            raise BadMessage(f"{side}[{index}] is not a [price, quantity] pair: {entry!r:.80}") from None
        if type(price) is not str or not _DECIMAL(price):
            raise BadMessage(f"{side}[{index}] price {price!r:.40} is not a decimal string")
        if type(quantity) is not str or not _DECIMAL(quantity):
            raise BadMessage(f"{side}[{index}] quantity {quantity!r:.40} is not a non-negative decimal string")
        value = float(price)
        if not 0.0 < value < math.inf:
            raise BadMessage(f"{side}[{index}] price {price!r} is not positive")
        if len(price) > _MAX_SIGNIFICANT + 1 and _significant_digits(price) > _MAX_SIGNIFICANT:
            raise BadMessage(f"{side}[{index}] price {price!r} has more than {_MAX_SIGNIFICANT} significant digits")
        append((-value if bids else value, price, quantity if float(quantity) else ""))
    return out


def exchange_time(value: object, recv_ns: int) -> int | None:
    """Check an exchange timestamp (ms) against the local receive time; None when absent."""
    if value is None:
        return None
    if type(value) is not int:
        raise BadMessage(f"exchange time {value!r:.40} is not an integer of milliseconds")
    if not _EARLIEST_MS <= value <= recv_ns // 1_000_000 + _MAX_AHEAD_MS:
        raise BadMessage(f"absurd exchange time {value} ms (received at {recv_ns // 1_000_000} ms)")
    return value
