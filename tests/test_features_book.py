"""Static features of a small book, against values worked out by hand.

The book (price, size), best first:
    bids 100.0 x 2, 99.5 x 1, 99.0 x 3        asks 100.5 x 1, 101.0 x 2, 102.0 x 4
so mid = 100.25 and spread = 0.5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from operators.features import fi2010
from operators.features.arrays import BookArrays
from operators.features.images import OrderBookSnapshotStack, depth_image, price_heatmap
from operators.features.liquidity import cost_to_trade, depth_within
from operators.features.microstructure import MicropriceTable, book_slope, microprice, microstructure, vwap_within
from operators.features.static import price_distribution, volume_profile

BOOK = BookArrays.of([(100.0, 2), (99.5, 1), (99.0, 3)], [(100.5, 1), (101.0, 2), (102.0, 4)])
approx = pytest.approx


def test_price_distribution():
    assert price_distribution(BOOK) == approx({
        "best_bid": 100.0, "best_ask": 100.5, "spread": 0.5, "spread_bps": (100.5 - 100.0) / 100.25 * 1e4,
        "mid_price": 100.25, "bid_depth": 3, "ask_depth": 3, "price_range": 102.0 - 99.0,
    })


def test_volume_profile():
    assert volume_profile(BOOK) == approx({
        "total_bid_volume": 6, "total_ask_volume": 7, "volume_imbalance": (6 - 7) / 13,
        "avg_bid_size": 6 / 3, "avg_ask_size": 7 / 3,
        "volume_concentration": (2**2 + 1**2 + 3**2 + 1**2 + 2**2 + 4**2) / 13**2,
    })


def test_weighted_mid_and_microprice_proxy():
    features = microstructure(BOOK, table=None, slope_levels=2, bands_bps=())
    imbalance = 2 / (2 + 1)
    assert features["top_imbalance"] == approx(imbalance)
    assert features["weighted_mid"] == approx(100.0 * (1 - imbalance) + 100.5 * imbalance)  # 100.333...
    assert features["microprice"] == features["weighted_mid"]


def test_fitted_microprice_uses_imbalance_bucket_and_spread_state():
    table = MicropriceTable(tick=0.5, buckets=2, spreads=2, adjustment=((-0.1, 0.1), (-0.2, 0.2)))
    # spread 0.5 = 1 tick -> row 0; imbalance 2/3 -> bucket 1 (upper half)
    assert microprice(BOOK, table) == approx(100.25 + 0.1)
    wide = BookArrays.of([(100.0, 1)], [(101.5, 3)])  # 3 ticks -> last row; imbalance 1/4 -> bucket 0
    assert microprice(wide, table) == approx(100.75 - 0.2)


def test_book_slope():
    assert book_slope(BOOK, 2) == approx({
        "bid_slope": (2 + 1) / ((100.25 - 99.5) / 100.25 * 1e4),
        "ask_slope": (1 + 2) / ((101.0 - 100.25) / 100.25 * 1e4),
    })


def test_vwap_within_bands():
    # 50 bps: bids >= 100.25 * 0.995 = 99.74875, asks <= 100.25 * 1.005 = 100.75125
    # 100 bps: bids >= 99.2475, asks <= 101.2525; 1 bp: nothing on either side
    assert vwap_within(BOOK, (1, 50, 100)) == approx({
        "vwap_bid_1bps": None, "vwap_ask_1bps": None,
        "vwap_bid_50bps": 100.0, "vwap_ask_50bps": 100.5,
        "vwap_bid_100bps": (100.0 * 2 + 99.5 * 1) / 3, "vwap_ask_100bps": (100.5 * 1 + 101.0 * 2) / 3,
    })


def test_depth_within_bands():
    got = depth_within(BOOK, (10, 100, 200))
    # 200 bps: bids >= 98.245 (all three), asks <= 102.255 (all three)
    assert got == approx({
        "bid_depth_10bps": 0, "ask_depth_10bps": 0,
        "bid_depth_100bps": 2 + 1, "ask_depth_100bps": 1 + 2,
        "bid_depth_200bps": 2 + 1 + 3, "ask_depth_200bps": 1 + 2 + 4,
    })


def test_cost_to_trade_walks_the_book():
    got = cost_to_trade(BOOK, (150, 10_000))
    # buy 150 quote: all of 100.5 x 1 (100.5), then 49.5 / 101.0 units of the next level
    buy_average = 150 / (1 + 49.5 / 101.0)
    # sell 150 quote: 1.5 units of the 100.0 x 2 bid
    sell_average = 150 / 1.5
    assert got == approx({
        "buy_cost_bps_150": (buy_average - 100.25) / 100.25 * 1e4,
        "sell_cost_bps_150": (100.25 - sell_average) / 100.25 * 1e4,
        "buy_cost_bps_10000": None, "sell_cost_bps_10000": None,  # more than either side holds
    })


def test_raw_inputs_in_deeplob_order_and_missing_levels_nan():
    raw = fi2010.raw_levels(BOOK, levels=4)
    expected = [100.5, 1, 100.0, 2, 101.0, 2, 99.5, 1, 102.0, 4, 99.0, 3]
    assert raw[:12].tolist() == expected
    assert np.isnan(raw[12:]).all() and len(raw) == 16
    assert fi2010.RAW_COLUMNS[:4] == ("ask_price_1", "ask_size_1", "bid_price_1", "bid_size_1")
    assert len(fi2010.RAW_COLUMNS) == 40


def test_kercheval_zhang_derived_groups():
    got = fi2010.derived(BOOK, levels=3)
    assert got == approx({
        "spread_1": 0.5, "mid_1": 100.25, "spread_2": 101.0 - 99.5, "mid_2": (101.0 + 99.5) / 2,
        "spread_3": 102.0 - 99.0, "mid_3": (102.0 + 99.0) / 2,
        "ask_price_span": 102.0 - 100.5, "bid_price_span": 100.0 - 99.0,
        "ask_step_1": 0.5, "bid_step_1": 0.5, "ask_step_2": 1.0, "bid_step_2": 0.5,
        "mean_ask_price": (100.5 + 101.0 + 102.0) / 3, "mean_bid_price": (100.0 + 99.5 + 99.0) / 3,
        "mean_ask_size": (1 + 2 + 4) / 3, "mean_bid_size": (2 + 1 + 3) / 3,
        "acc_price_diff": 0.5 + 1.5 + 3.0, "acc_size_diff": (1 - 2) + (2 - 1) + (4 - 3),
    })
    ten = fi2010.derived(BOOK)  # levels 4..10 do not exist: null, never zero
    assert ten["spread_4"] is None and ten["mean_ask_price"] is None and ten["spread_3"] == approx(3.0)


def test_derivatives_per_second():
    before = np.array([100.5, 1.0, 100.0, 2.0])
    after = np.array([100.6, 3.0, 100.0, 1.0])
    got = fi2010.derivatives(after, before, 0.5)
    assert got == approx({"d_ask_price_1": (100.6 - 100.5) / 0.5, "d_ask_size_1": (3 - 1) / 0.5,
                          "d_bid_price_1": 0.0, "d_bid_size_1": (1 - 2) / 0.5})
    assert set(fi2010.derivatives(after, None, 0.5).values()) == {None}


def test_depth_image_normalized_by_largest_size():
    image = depth_image(BOOK, depth=4)
    assert image.tolist() == [[2 / 4, 1 / 4], [1 / 4, 2 / 4], [3 / 4, 4 / 4], [0, 0]]


def test_price_heatmap_sums_sizes_into_nearest_bins():
    # half range 2.0 around 100.25 -> 5 points 98.25, 99.25, 100.25, 101.25, 102.25 (step 1)
    heatmap = price_heatmap(BOOK, bins=5, levels=100, half_range_bps=2.0 / 100.25 * 1e4)
    # bids 100.0 -> 1.75 -> bin 2; 99.5 -> 1.25 -> bin 1; 99.0 -> 0.75 -> bin 1
    # asks 100.5 -> 2.25 -> bin 2; 101.0 -> 2.75 -> bin 3; 102.0 -> 3.75 -> bin 4
    assert heatmap[:, 0].tolist() == [0, 1 + 3, 2, 0, 0]
    assert heatmap[:, 1].tolist() == [0, 0, 1, 2, 4]
    assert price_heatmap(BOOK, bins=200).shape == (200, 2)


def test_snapshot_stack_keeps_one_image_per_interval():
    stack = OrderBookSnapshotStack(stack_size=2, update_interval=1.0)
    first, skipped, second = np.zeros((3, 2)), np.ones((3, 2)), np.full((3, 2), 2.0)
    assert stack.add_snapshot(first, 0) and stack.get_stacked_tensor() is None
    assert not stack.add_snapshot(skipped, 500_000_000)
    assert stack.add_snapshot(second, 1_000_000_000)
    tensor = stack.get_stacked_tensor()
    assert tensor.shape == (2, 3, 2) and tensor[0].tolist() == first.tolist() and tensor[1].tolist() == second.tolist()


def test_no_feature_is_nan_on_a_full_book():
    values = {**price_distribution(BOOK), **volume_profile(BOOK), **cost_to_trade(BOOK, (150,))}
    assert not any(v is not None and math.isnan(v) for v in values.values())


def test_microprice_fit_on_a_hand_made_chain():
    from operators.features.microprice_fit import fit_microprice

    # spread always 1 tick; two buckets. From the high-imbalance bucket the mid always
    # rises one tick at the next sample and the book lands in the low bucket; from the low
    # bucket it stays and the book moves to the high bucket.
    mids = np.array([100.0, 100.0, 100.5, 100.5, 101.0, 101.0, 101.5])
    imbalance = np.array([0.2, 0.8, 0.2, 0.8, 0.2, 0.8, 0.2])
    table = fit_microprice(mids, imbalance, np.full(7, 0.5), tick=0.5, buckets=2, spread_states=1, terms=1,
                           symmetric=False)
    # high bucket: G1 = +0.5 (the next change); low bucket: stays, then from high +0.5
    # G1 = (1 - Q)^-1 r with Q = [[0, 1], [0, 0]], r = [0, 0.5] -> [0.5, 0.5]
    assert table.adjustment[0] == approx((0.5, 0.5))
    # symmetric: the mirrored chain adds high -> low staying and low -> high falling 0.5.
    # Per state 6 visits: Q = [[0, 1/2], [1/2, 0]], r = [-0.5 * 3/6, +0.5 * 3/6] = [-1/4, 1/4];
    # (1 - Q)^-1 = [[1, 1/2], [1/2, 1]] / (3/4), so G1 = [-1/4 + 1/8, 1/4 - 1/8] / (3/4) = [-1/6, 1/6]
    symmetric = fit_microprice(mids, imbalance, np.full(7, 0.5), tick=0.5, buckets=2, spread_states=1, terms=1)
    assert symmetric.adjustment[0] == approx((-1 / 6, 1 / 6))
    # one more term: B = (1 - Q)^-1 T with T = [[0, 1/2], [1/2, 0]] -> B = [[1/3, 2/3], [2/3, 1/3]]
    # B G1 = [(-1/6 + 2/6) / 3, (-2/6 + 1/6) / 3] = [1/18, -1/18]
    two = fit_microprice(mids, imbalance, np.full(7, 0.5), tick=0.5, buckets=2, spread_states=1, terms=2)
    assert two.adjustment[0] == approx((-1 / 6 + 1 / 18, 1 / 6 - 1 / 18))
