"""Causal z-score normalization, as DeepLOB does it: each day's samples scaled with the
mean and standard deviation of the previous day(s) only, so no statistic sees the future."""

from __future__ import annotations

import numpy as np

DAY_MS = 86_400_000


def day_of(timestamps_ms: np.ndarray) -> np.ndarray:
    """UTC day number of each sample."""
    return timestamps_ms // DAY_MS


def daily_statistics(days: np.ndarray, matrix: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per day and column: the sum, the sum of squares and the count of non-NaN values."""
    stats: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for day in np.unique(days):
        rows = matrix[days == day]
        counts = np.sum(~np.isnan(rows), axis=0)
        sums = np.nansum(rows, axis=0)
        squares = np.nansum(rows * rows, axis=0)
        stats[int(day)] = (sums, squares, counts)
    return stats


def previous_days_scale(stats: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], day: int,
                        days_back: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and std of the `days_back` calendar days before `day` (None if none of them has data)."""
    held = [stats[d] for d in range(day - days_back, day) if d in stats]
    if not held:
        return None
    sums = sum(s for s, _, _ in held)
    squares = sum(q for _, q, _ in held)
    counts = sum(c for _, _, c in held)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
        std = np.sqrt(np.maximum(squares / counts - mean * mean, 0.0))
    return mean, std


def zscore(days: np.ndarray, matrix: np.ndarray, days_back: int) -> tuple[np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """The normalized matrix (NaN where no previous day exists or a std is 0) and the
    statistics used per day."""
    stats = daily_statistics(days, matrix)
    out = np.full(matrix.shape, np.nan)
    used: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for day in sorted(stats):
        scale = previous_days_scale(stats, day, days_back)
        if scale is None:
            continue
        mean, std = scale
        used[day] = scale
        rows = days == day
        with np.errstate(invalid="ignore", divide="ignore"):
            normalized = (matrix[rows] - mean) / std
        normalized[:, ~(std > 0)] = np.nan
        out[rows] = normalized
    return out, used
