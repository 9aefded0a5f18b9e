"""Exact decimal text <-> integers, for storing level arrays (migration 7).

Why: ClickHouse's T64 + ZSTD keeps a level array's integers a quarter (quantities) to a
third (prices, as steps) smaller than ZSTD keeps the same numbers as text, but a level's
identity is its exact text ("0.10" is not "0.1"). So the texts of one kind in a row (all
its prices, or all its quantities) become integers `m` with one `scale` (the value is
m x 10^-scale, the smallest scale that holds every value) and one `decimals`: the fixed
number of decimals every text has (Binance pads to 8), or SHORTEST (OKX writes no trailing
zero, and no dot for an integer). `encode` gives None for texts that fit neither (leading
zeros, "1.", "1.0" next to "1.00", a number past 64 bits): those stay text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from math import gcd

SHORTEST = -1  # `decimals` of texts in their shortest form
_TEXT = r"(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+"  # no leading zero, no sign, digits after a dot
_CANONICAL_JOINED = re.compile(rf"{_TEXT}(?:;{_TEXT})*+").fullmatch
_LARGEST = 2**63 - 1  # stored as Int64
_MAX_EXPONENT = 18
_MOST_DECIMALS = 100  # scale and decimals are stored as Int8


@dataclass(frozen=True, slots=True)
class Units:
    """Arrays of texts as integers: text = `text(m, scale, decimals)` for each m."""

    arrays: list[list[int]]
    scale: int
    decimals: int


def encode(arrays: Sequence[Sequence[str]]) -> Units | None:
    """The arrays' texts as integers of one scale and one text form, or None if they have none."""
    flat = [text for array in arrays for text in array]
    joined = ";".join(flat)
    if flat and (not _CANONICAL_JOINED(joined) or joined.count(";") != len(flat) - 1):
        return None  # (the count: no text holds the separator itself)
    dots = [text.find(".") for text in flat]
    digits = [0 if dot < 0 else len(text) - dot - 1 for text, dot in zip(flat, dots)]
    most = max(digits, default=0)
    if most > _MOST_DECIMALS:
        return None
    if all(d == most for d in digits):
        decimals = most
    elif all(d == 0 or text[-1] != "0" for text, d in zip(flat, digits)):
        decimals = SHORTEST
    else:
        return None
    units = [int(text.replace(".", "")) * 10 ** (most - d) for text, d in zip(flat, digits)]
    exponent = _common_zeros(units)
    if exponent:
        step = 10**exponent
        units = [u // step for u in units]
    if units and max(units) > _LARGEST:
        return None
    arrays_out, start = [], 0
    for array in arrays:
        arrays_out.append(units[start : start + len(array)])
        start += len(array)
    return Units(arrays_out, most - exponent, decimals)


def _common_zeros(units: Sequence[int]) -> int:
    """How many trailing decimal zeros every non-zero value has (0 if all are zero)."""
    common = gcd(*units)
    exponent = 0
    while common and exponent < _MAX_EXPONENT and common % 10 == 0:
        common //= 10
        exponent += 1
    return exponent


def texts(units: Sequence[int], scale: int, decimals: int) -> list[str]:
    """The exact texts back from `encode`'s integers."""
    if decimals == SHORTEST:
        if scale <= 0:
            return [str(m * 10**-scale) for m in units]
        one = 10**scale
        out = []
        for m in units:
            whole, fraction = divmod(m, one)
            kept = f"{fraction:0{scale}d}".rstrip("0")
            out.append(f"{whole}.{kept}" if kept else str(whole))
        return out
    factor = 10 ** (decimals - scale)  # decimals >= scale: the scale only drops common zeros
    if decimals == 0:
        return [str(m * factor) for m in units]
    one = 10**decimals
    return [f"{whole}.{fraction:0{decimals}d}" for whole, fraction in (divmod(m * factor, one) for m in units)]


def to_steps(units: Sequence[int], sign: int) -> list[int]:
    """The first value, then each one's step from the one before, times `sign` (-1 for bids,
    which fall: sorted sides then store small positive steps)."""
    return [units[0], *(sign * (b - a) for a, b in zip(units, units[1:]))] if units else []


def from_steps(steps: Sequence[int], sign: int) -> list[int]:
    """The inverse of `to_steps`."""
    if not steps:
        return []
    return list(accumulate(steps[1:], lambda total, step: total + sign * step, initial=steps[0]))
