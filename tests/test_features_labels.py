"""Labels and causal normalization on tiny series, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from operators.features.labels import classes, event_labels, time_labels
from operators.features.normalize import DAY_MS, day_of, zscore

MIDS = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


def test_event_labels_previous_and_next_k_means():
    got = event_labels(MIDS, horizon=2, window=2)
    # t=1: past (1+2)/2, future (3+4)/2; t=2: (2+3)/2 vs (4+5)/2; t=3: (3+4)/2 vs (5+6)/2
    expected = [np.nan, (3.5 - 1.5) / 1.5, (4.5 - 2.5) / 2.5, (5.5 - 3.5) / 3.5, np.nan, np.nan]
    np.testing.assert_allclose(got, expected, equal_nan=True)


def test_smoothing_window_apart_from_horizon():
    got = event_labels(MIDS, horizon=3, window=1)  # the mid 3 events ahead over this mid
    np.testing.assert_allclose(got, [(4 - 1) / 1, (5 - 2) / 2, (6 - 3) / 3, np.nan, np.nan, np.nan], equal_nan=True)
    with pytest.raises(ValueError):
        event_labels(MIDS, horizon=2, window=3)


def test_time_labels_use_windows_of_time_and_null_where_not_covered():
    seconds = 10**9
    times = np.array([0, 1, 2, 3, 4, 5]) * seconds
    got = time_labels(MIDS, times, horizon_ns=2 * seconds, window_ns=2 * seconds)
    # t=2 s: past (0, 2] -> mids 2, 3; future (2, 4] -> mids 4, 5.  t=1 s: past window starts before the data
    np.testing.assert_allclose(got, [np.nan, np.nan, (4.5 - 2.5) / 2.5, (5.5 - 3.5) / 3.5, np.nan, np.nan],
                               equal_nan=True)


def test_classes_by_threshold():
    got = classes(np.array([0.002, -0.002, 0.0005, np.nan]), alpha=0.001)
    np.testing.assert_array_equal(got, [1, -1, 0, np.nan])


def test_zscore_uses_previous_days_only():
    timestamps = np.array([0, 1, DAY_MS, DAY_MS + 1, 2 * DAY_MS])
    matrix = np.array([[1.0], [3.0], [10.0], [20.0], [5.0]])
    got, used = zscore(day_of(timestamps), matrix, days_back=1)
    # day 0: nothing before -> null; day 1 with day 0's mean 2, std 1; day 2 with day 1's mean 15, std 5
    np.testing.assert_allclose(got[:, 0], [np.nan, np.nan, (10 - 2) / 1, (20 - 2) / 1, (5 - 15) / 5], equal_nan=True)
    assert sorted(used) == [1, 2]
    two, _ = zscore(day_of(timestamps), matrix, days_back=2)
    # day 2 with days 0 and 1: values 1, 3, 10, 20: mean 8.5, std sqrt(mean of squares - 8.5^2)
    std = np.sqrt((1 + 9 + 100 + 400) / 4 - 8.5**2)
    assert two[4, 0] == pytest.approx((5 - 8.5) / std)
