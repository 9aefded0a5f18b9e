"""FI-2010 / DeepLOB event-driven inputs: the top 10 levels (40 raw inputs) and the
Kercheval-Zhang (2015) derived groups.

Raw order per level i (DeepLOB's): ask_price_i, ask_size_i, bid_price_i, bid_size_i. Levels a
side does not have are NaN (null in a dataset), never zero. Time-sensitive groups (u6
derivatives, u7-u9 intensities) need the previous sample and are computed by the engine
with `derivatives` and `intensities` below.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from operators.features.arrays import BookArrays
from operators.features.static import Features

LEVELS = 10
RAW_COLUMNS = tuple(
    f"{name}_{i}" for i in range(1, LEVELS + 1) for name in ("ask_price", "ask_size", "bid_price", "bid_size")
)
EVENT_TYPES = ("limit_ask", "limit_bid", "cancel_ask", "cancel_bid", "market_buy", "market_sell")


def _padded(values: np.ndarray, levels: int) -> np.ndarray:
    out = np.full(levels, np.nan)
    count = min(levels, len(values))
    out[:count] = values[:count]
    return out


def raw_levels(book: BookArrays, levels: int = LEVELS) -> np.ndarray:
    """[ask_p1, ask_q1, bid_p1, bid_q1, ask_p2, ...]: the 4 * `levels` DeepLOB inputs, float64."""
    columns = [_padded(a, levels) for a in (book.ask_prices, book.ask_sizes, book.bid_prices, book.bid_sizes)]
    return np.stack(columns, axis=1).reshape(-1)


def _value(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@cache
def _level_names(levels: int) -> tuple[tuple[str, ...], ...]:
    """Per level: the spread, mid, ask step and bid step column names (steps: one fewer)."""
    return tuple((f"spread_{i}", f"mid_{i}", f"ask_step_{i}", f"bid_step_{i}") for i in range(1, levels + 1))


def derived(book: BookArrays, levels: int = LEVELS) -> Features:
    """u2 spreads and mids per level; u3 price differences; u4 means; u5 accumulated differences."""
    ap, aq = _padded(book.ask_prices, levels), _padded(book.ask_sizes, levels)
    bp, bq = _padded(book.bid_prices, levels), _padded(book.bid_sizes, levels)
    asks, bids = ap.tolist(), bp.tolist()  # Python floats: the same IEEE arithmetic, without numpy scalars
    names = _level_names(levels)
    out: Features = {}
    for i in range(levels):
        out[names[i][0]] = _value(asks[i] - bids[i])
        out[names[i][1]] = _value((asks[i] + bids[i]) / 2.0)
    out["ask_price_span"] = _value(asks[levels - 1] - asks[0])
    out["bid_price_span"] = _value(bids[0] - bids[levels - 1])
    for i in range(levels - 1):
        out[names[i][2]] = _value(abs(asks[i + 1] - asks[i]))
        out[names[i][3]] = _value(abs(bids[i + 1] - bids[i]))
    # ndarray.mean's own steps (a pairwise sum over the count), without its Python overhead
    out["mean_ask_price"] = _value(np.add.reduce(ap) / levels)
    out["mean_bid_price"] = _value(np.add.reduce(bp) / levels)
    out["mean_ask_size"] = _value(np.add.reduce(aq) / levels)
    out["mean_bid_size"] = _value(np.add.reduce(bq) / levels)
    out["acc_price_diff"] = _value((ap - bp).sum())
    out["acc_size_diff"] = _value((aq - bq).sum())
    return out


_DERIVATIVE_NAMES = tuple(f"d_{name}" for name in RAW_COLUMNS)


def derivatives(raw: np.ndarray, previous: np.ndarray | None, seconds: float) -> Features:
    """u6: (x_t - x_prev) / dt per raw input, per second; null for the first sample or dt = 0."""
    names = _DERIVATIVE_NAMES[: len(raw)]
    if previous is None or seconds <= 0:
        return dict.fromkeys(names)
    rates = ((raw - previous) / seconds).tolist()
    return {name: None if rate != rate else rate for name, rate in zip(names, rates)}


def intensities(short: dict[str, float], long: dict[str, float], previous_short: dict[str, float] | None,
                seconds: float) -> Features:
    """u7 intensity per second over the short window, u8 1{short > long}, u9 d(short)/dt."""
    out: Features = {}
    for kind in EVENT_TYPES:
        out[f"intensity_{kind}"] = short[kind]
        out[f"intensity_{kind}_rising"] = 1.0 if short[kind] > long[kind] else 0.0
        if previous_short is None or seconds <= 0:
            out[f"intensity_{kind}_accel"] = None
        else:
            out[f"intensity_{kind}_accel"] = (short[kind] - previous_short[kind]) / seconds
    return out
