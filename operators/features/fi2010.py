"""FI-2010 / DeepLOB event-driven inputs: the top 10 levels (40 raw inputs) and the
Kercheval-Zhang (2015) derived groups.

Raw order per level i (DeepLOB's): ask_price_i, ask_size_i, bid_price_i, bid_size_i. Levels a
side does not have are NaN (null in a dataset), never zero. Time-sensitive groups (u6
derivatives, u7-u9 intensities) need the previous sample and are computed by the engine
with `derivatives` and `intensities` below.
"""

from __future__ import annotations

import math

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


def derived(book: BookArrays, levels: int = LEVELS) -> Features:
    """u2 spreads and mids per level; u3 price differences; u4 means; u5 accumulated differences."""
    ap, aq = _padded(book.ask_prices, levels), _padded(book.ask_sizes, levels)
    bp, bq = _padded(book.bid_prices, levels), _padded(book.bid_sizes, levels)
    out: Features = {}
    for i in range(levels):
        out[f"spread_{i + 1}"] = _value(ap[i] - bp[i])
        out[f"mid_{i + 1}"] = _value((ap[i] + bp[i]) / 2.0)
    out["ask_price_span"] = _value(ap[levels - 1] - ap[0])
    out["bid_price_span"] = _value(bp[0] - bp[levels - 1])
    for i in range(levels - 1):
        out[f"ask_step_{i + 1}"] = _value(abs(ap[i + 1] - ap[i]))
        out[f"bid_step_{i + 1}"] = _value(abs(bp[i + 1] - bp[i]))
    out["mean_ask_price"] = _value(ap.mean())
    out["mean_bid_price"] = _value(bp.mean())
    out["mean_ask_size"] = _value(aq.mean())
    out["mean_bid_size"] = _value(bq.mean())
    out["acc_price_diff"] = _value((ap - bp).sum())
    out["acc_size_diff"] = _value((aq - bq).sum())
    return out


def derivatives(raw: np.ndarray, previous: np.ndarray | None, seconds: float) -> Features:
    """u6: (x_t - x_prev) / dt per raw input, per second; null for the first sample or dt = 0."""
    names = [f"d_{name}" for name in RAW_COLUMNS[: len(raw)]]
    if previous is None or seconds <= 0:
        return dict.fromkeys(names)
    rates = (raw - previous) / seconds
    return {name: _value(rate) for name, rate in zip(names, rates)}


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
