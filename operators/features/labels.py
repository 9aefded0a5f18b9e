"""DeepLOB-style labels: the smoothed mid-price change, by events and by time, with no made-up values.

For sample t, with smoothing window w and horizon h (w <= h, so the two means never share
a sample):
    m_minus(t) = mean of the w mids up to and including t
    m_plus(t)  = mean of the w mids ending h after t   (w = h: the next h mids, as DeepLOB)
    label(t)   = (m_plus - m_minus) / m_minus,   class = 1 up if > alpha, -1 down if < -alpha, else 0
By time, "the w mids" are the samples whose time lies in (end - w, end]. A label whose
windows run past either end of the data is NaN (null in the dataset).
"""

from __future__ import annotations

import numpy as np


def _cumulative(mids: np.ndarray) -> tuple[float, np.ndarray]:
    """Running sums of the mids less the first one: window means from differences of these
    stay exact to ~1e-16 relative, where sums of raw prices would lose 8 digits in an hour."""
    base = float(mids[0]) if len(mids) else 0.0
    return base, np.concatenate(([0.0], np.cumsum(mids - base, dtype=np.float64)))


def event_labels(mids: np.ndarray, *, horizon: int, window: int) -> np.ndarray:
    """Labels over `horizon` events, smoothed over `window` events."""
    if not 1 <= window <= horizon:
        raise ValueError(f"need 1 <= window ({window}) <= horizon ({horizon})")
    n = len(mids)
    base, total = _cumulative(mids)
    out = np.full(n, np.nan)
    t = np.arange(n)
    valid = (t >= window - 1) & (t + horizon <= n - 1)
    t = t[valid]
    past = base + (total[t + 1] - total[t + 1 - window]) / window
    future = base + (total[t + horizon + 1] - total[t + horizon + 1 - window]) / window
    out[valid] = (future - past) / past
    return out


def time_labels(mids: np.ndarray, times_ns: np.ndarray, *, horizon_ns: int, window_ns: int) -> np.ndarray:
    """Labels over `horizon_ns` of time, smoothed over `window_ns` (times non-decreasing)."""
    if not 0 < window_ns <= horizon_ns:
        raise ValueError(f"need 0 < window ({window_ns}) <= horizon ({horizon_ns})")
    n = len(mids)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    base, total = _cumulative(mids)
    index = np.arange(n)
    past_lo = np.searchsorted(times_ns, times_ns - window_ns, side="right")
    future_lo = np.searchsorted(times_ns, times_ns + horizon_ns - window_ns, side="right")
    future_hi = np.searchsorted(times_ns, times_ns + horizon_ns, side="right")
    covered = (times_ns - window_ns >= times_ns[0]) & (times_ns + horizon_ns <= times_ns[-1])
    valid = covered & (future_hi > future_lo) & (future_lo > index)
    past = base + (total[index + 1] - total[past_lo]) / (index + 1 - past_lo)
    future = base + (total[future_hi] - total[future_lo]) / np.maximum(future_hi - future_lo, 1)
    out[valid] = ((future - past) / past)[valid]
    return out


def classes(labels: np.ndarray, alpha: float) -> np.ndarray:
    """1 up, 0 stationary, -1 down as float (NaN where the label is)."""
    out = np.where(labels > alpha, 1.0, np.where(labels < -alpha, -1.0, 0.0))
    out[np.isnan(labels)] = np.nan
    return out
