"""Turning wire price levels into book levels, with the value checks every venue shares.

A message is validated whole before anything is applied, so a bad level never leaves a
half-applied book behind. Errors are `BadMessage` with a sentence a person can act on.

The common case (every level fine) is checked with loops that run in C: the texts of a
side are joined and matched as one string, and converted with `map(float)`. Only a
failing message pays for the slower pass that finds and names the bad level. Both passes
accept exactly the same inputs (`tests/test_price_identity.py` holds them to that).
"""

from __future__ import annotations

import math
import re
import sys
from itertools import chain, repeat
from operator import itemgetter, neg
from typing import Any

from operators.book import LevelChanges
from operators.compiled_core import CORE

# Plain decimal text as the exchanges send it: digits, one optional fraction, nothing else
# ("01.50" is accepted and means 1.5). Possessive quantifiers: the C matcher never backtracks.
_DECIMAL_PATTERN = r"[0-9]++(?:\.[0-9]++)?+"
_DECIMAL = re.compile(_DECIMAL_PATTERN).fullmatch
# A side joined as "p|q;p|q|x|n;...": plain decimals separated by "|" (fields) and ";"
# (levels). It proves every field a plain decimal once no field holds a separator itself.
_JOINED_DECIMALS = re.compile(rf"{_DECIMAL_PATTERN}(?:[|;]{_DECIMAL_PATTERN})*+").fullmatch
# Fields joined by "|": plain decimals, once no field holds a "|" itself.
_FIELDS = re.compile(rf"{_DECIMAL_PATTERN}(?:\|{_DECIMAL_PATTERN})*+").fullmatch
# IEEE-754 doubles keep distinct every decimal of up to 15 significant digits in the normal
# range, so such a price can be a level's float key. A text of at most 15 characters has
# at most 15 digits; longer texts are counted.
_MAX_SIGNIFICANT = 15
_ALWAYS_EXACT_LENGTH = _MAX_SIGNIFICANT
_SMALLEST_NORMAL = sys.float_info.min
# Exchange times outside [2010-01-01, receive time + 1 day] are absurd, not clock skew.
_EARLIEST_MS = 1_262_304_000_000
_MAX_AHEAD_MS = 86_400_000
_FIELD_JOIN = "|".join
_ONLY_LISTS = {list}
_ONLY_STR = {str}
_ONLY_INT = {int}
_PRICE = itemgetter(0)
_QUANTITY = itemgetter(1)


class BadMessage(ValueError):
    """A message that must not touch the book; the text says what is wrong with it."""


def _significant_digits(text: str) -> int:
    """Digits from the first non-zero one to the last ("0.0120" and "1200" have two)."""
    return len(text.replace(".", "").strip("0"))


def _most_significant_digits(texts: list[str]) -> int:
    """`max(map(_significant_digits, texts))`, with every step a C-level map."""
    digits = map(str.replace, texts, repeat("."), repeat(""))
    return max(map(len, map(str.strip, digits, repeat("0"))))


def _check_level(entry: Any, side: str, index: int) -> None:
    """Raise BadMessage naming what is wrong with one level (the slow, explaining pass)."""
    if type(entry) is not list or not 2 <= len(entry) <= 4:
        raise BadMessage(f"{side}[{index}] is not a [price, quantity] pair: {entry!r:.80}")
    price, quantity = entry[0], entry[1]
    if not isinstance(price, str) or not _DECIMAL(price):
        raise BadMessage(f"{side}[{index}] price {price!r:.40} is not a decimal string")
    if not isinstance(quantity, str) or not _DECIMAL(quantity):
        raise BadMessage(f"{side}[{index}] quantity {quantity!r:.40} is not a non-negative decimal string")
    if not all(isinstance(extra, str) and _DECIMAL(extra) for extra in entry[2:]):
        raise BadMessage(f"{side}[{index}] has a non-decimal extra field: {entry!r:.80}")
    if not _SMALLEST_NORMAL <= float(price) < math.inf:
        raise BadMessage(
            f"{side}[{index}] price {price!r:.40} is not a positive finite number (at least {_SMALLEST_NORMAL})"
        )
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

    Prices must be plain decimals of at most 15 significant digits in the normal double
    range (so each is its own float key); quantities non-negative plain decimals. The
    book keeps each wire list itself; a zero quantity becomes None (removal).
    """
    if CORE is not None and type(raw) is list:
        parsed = CORE.parse_sides([raw], [bids], LevelChanges)
        if parsed is not None:
            return parsed[0]  # type: ignore[no-any-return]
    if type(raw) is not list or (raw and set(map(type, raw)) != _ONLY_LISTS):
        raise _explain(raw, side)
    if not raw:
        return LevelChanges([], [])
    try:
        joined = ";".join(map(_FIELD_JOIN, raw))
        widest = max(map(len, raw))
        if (
            not _JOINED_DECIMALS(joined)
            or widest > 4
            # A separator inside an extra field would fake a boundary; prices and
            # quantities holding one fail float() below.
            or (widest > 2 and joined.count("|") + joined.count(";") != sum(map(len, raw)) - 1)
        ):
            raise ValueError
        prices = [entry[0] for entry in raw]
        values = list(map(float, prices))
        sizes = list(map(float, [entry[1] for entry in raw]))
    except (ValueError, TypeError, IndexError):
        raise _explain(raw, side) from None
    if not (min(values) >= _SMALLEST_NORMAL and max(values) < math.inf and max(sizes) < math.inf):
        raise _explain(raw, side)
    if max(map(len, prices)) > _ALWAYS_EXACT_LENGTH and _most_significant_digits(prices) > _MAX_SIGNIFICANT:
        raise _explain(raw, side)
    wires = [entry if size else None for entry, size in zip(raw, sizes)]
    return LevelChanges(values if bids else [-value for value in values], wires)


def parse_sides(sides: list[Any], bids: list[bool]) -> list[LevelChanges] | None:
    """`parse_side` of every side of a chunk's messages at once (`bids[i]`: side i is bids),
    the same level changes; None when any side would fail, and then each is parsed on its
    own, which names the fault."""
    if CORE is not None:
        return CORE.parse_sides(sides, bids, LevelChanges)  # type: ignore[no-any-return]
    return parse_sides_in_python(sides, bids)


def parse_sides_in_python(sides: list[Any], bids: list[bool]) -> list[LevelChanges] | None:
    """`parse_sides` without the compiled core (its definition). The checks run once over
    all levels, so a chunk's diffs pay the C loops' start-up once instead of per side."""
    if set(map(type, sides)) != _ONLY_LISTS:
        return None
    levels = list(chain.from_iterable(sides))
    if not levels:
        return [LevelChanges([], []) for _ in sides]
    try:
        if set(map(type, levels)) != _ONLY_LISTS:
            return None
        widths = list(map(len, levels))
        if min(widths) < 2 or max(widths) > 4:
            return None
        # Every field joined by "|": the count of separators proves no field holds one.
        joined = "|".join(chain.from_iterable(levels))
        if not _FIELDS(joined) or joined.count("|") != sum(widths) - 1:
            return None
        prices = list(map(_PRICE, levels))
        values = list(map(float, prices))
        sizes = list(map(float, map(_QUANTITY, levels)))
    except (ValueError, TypeError):
        return None
    if not (min(values) >= _SMALLEST_NORMAL and max(values) < math.inf and max(sizes) < math.inf):
        return None
    if max(map(len, prices)) > _ALWAYS_EXACT_LENGTH:
        return None  # the rare long price: each side counts its digits on its own
    wires = [entry if size else None for entry, size in zip(levels, sizes)]
    out: list[LevelChanges] = []
    start = 0
    for side, bid in zip(sides, bids):
        end = start + len(side)
        keys = values[start:end]
        out.append(LevelChanges(keys if bid else list(map(neg, keys)), wires[start:end]))
        start = end
    return out


def check_price_quantity(price: object, quantity: object, what: str) -> None:
    """Validate one (price, quantity) pair outside a book side: trades and tickers.

    Their prices are carried and stored as text and never identify anything (trades are
    keyed by trade id, tickers by time), so the 15-digit rule of book prices is not applied.
    """
    if not (
        type(price) is str
        and type(quantity) is str
        and _DECIMAL(price)
        and _DECIMAL(quantity)
        and 0.0 < float(price) < math.inf
    ):
        _check_level([price, quantity], what, 0)
        raise BadMessage(f"{what}: price {price!r:.40} or quantity {quantity!r:.40} is invalid")


def all_pairs_pass(prices: list[object], quantities: list[object]) -> bool:
    """True when every (price, quantity) pair passes `check_price_quantity`, checked as
    columns (a chunk's trades or tickers, of equal lengths). On False the caller checks
    the pairs one by one."""
    if CORE is not None:
        return CORE.all_pairs_pass(prices, quantities)  # type: ignore[no-any-return]
    return all_pairs_pass_in_python(prices, quantities)


def all_pairs_pass_in_python(prices: list[object], quantities: list[object]) -> bool:
    """`all_pairs_pass` without the compiled core (its definition): every text joined and
    matched once, the prices converted by one `map(float)`."""
    if not prices:
        return True
    if set(map(type, prices)) != _ONLY_STR or set(map(type, quantities)) != _ONLY_STR:
        return False
    joined = "|".join(chain(prices, quantities))
    if not _FIELDS(joined) or joined.count("|") != 2 * len(prices) - 1:
        return False
    values = list(map(float, prices))
    return min(values) > 0.0 and max(values) < math.inf


_TWO_PAIRS = re.compile("\\|".join([_DECIMAL_PATTERN] * 4)).fullmatch


def two_pairs_pass(price: object, quantity: object, price2: object, quantity2: object) -> bool:
    """True when both pairs pass `check_price_quantity` (a book ticker's bid and ask), in
    one match: no field can hold the "|" between them, so the joined text matches exactly
    when every field does. A caller that gets False asks `check_price_quantity` why."""
    return (
        type(price) is str
        and type(quantity) is str
        and type(price2) is str
        and type(quantity2) is str
        and _TWO_PAIRS(f"{price}|{quantity}|{price2}|{quantity2}") is not None
        and 0.0 < float(price) < math.inf
        and 0.0 < float(price2) < math.inf
    )


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


def exchange_times(values: list[object], recv_ns: list[int]) -> list[int | None]:
    """`exchange_time` of each value against its receive time, as a column: when every value
    is an integer inside the bounds of the earliest receive time, they are all good as they
    are; otherwise each is checked on its own (and the first bad one raises)."""
    if (
        values
        and set(map(type, values)) == _ONLY_INT
        and min(values) >= _EARLIEST_MS  # type: ignore[type-var]
        and max(values) <= min(recv_ns) // 1_000_000 + _MAX_AHEAD_MS  # type: ignore[type-var, operator]
    ):
        return values  # type: ignore[return-value]
    return list(map(exchange_time, values, recv_ns))
