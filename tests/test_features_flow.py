"""Order flow, trade flow and intensities, by hand, through the engine's own event path."""

from __future__ import annotations

import pytest

from operators.features.engine import FeatureEngine, FeatureSettings
from operators.features.order_flow import event_ofi, multi_level_ofi
from schemas.events import BookDelta, BookFull, QualityEvent, Trade

approx = pytest.approx
MS = 1_000_000


def full(bids, asks, recv_ns=0):
    return BookFull("binance", "BTC-USDT", "snapshot", 1, None, None, None, bids, asks, None, True, [], None, recv_ns)


def delta(update_id, bids, asks, recv_ns):
    return BookDelta("binance", "BTC-USDT", update_id, None, None, bids, asks, update_id * 10, recv_ns)


def trade(side, quantity, recv_ns):
    return Trade("binance", "BTC-USDT", f"t{recv_ns}", "100", quantity, side, None, recv_ns)


# (before, after) of the best bid and the best ask, each (price, size); e_n by hand.
OFI_CASES = {
    "bid stays, size 2 -> 5": (((100, 2), (100, 5)), ((101, 1), (101, 1)), 5 - 2 + (-1 + 1)),
    "bid moves up": (((100, 2), (100.5, 4)), ((101, 1), (101, 1)), 4 + 0),
    "bid moves down": (((100, 2), (99.5, 7)), ((101, 1), (101, 1)), -2 + 0),
    "ask stays, size 3 -> 1": (((100, 2), (100, 2)), ((101, 3), (101, 1)), 0 + (-1 + 3)),
    "ask moves down": (((100, 2), (100, 2)), ((101, 3), (100.8, 2)), 0 - 2),
    "ask moves up": (((100, 2), (100, 2)), ((101, 3), (101.5, 6)), 0 + 3),
}


@pytest.mark.parametrize("case", OFI_CASES)
def test_event_ofi_non_strict_inequalities(case):
    (bid_before, bid_after), (ask_before, ask_after), expected = OFI_CASES[case]
    assert event_ofi(bid_before, bid_after, ask_before, ask_after) == expected


def test_multi_level_ofi_per_level_and_missing_levels():
    before = ([100.0, 99.0], [2.0, 5.0], [101.0, 102.0], [1.0, 4.0])
    after = ([100.0, 99.5], [3.0, 1.0], [101.0], [1.0])  # bid level 2 moved up; ask level 2 gone
    # level 1: bid 3 - 2, ask -1 + 1 -> 1; level 2: bid moved up -> +1, ask missing -> 0
    assert multi_level_ofi(before, after, 3) == [1.0, 1.0, 0.0]


def engine(**settings):
    eng = FeatureEngine("binance", "BTC-USDT", FeatureSettings(notionals=(), bands_bps=(), **settings))
    eng.on_event(full([["100", "2"], ["99", "5"]], [["101", "1"], ["102", "4"]]))
    return eng


def test_engine_accumulates_ofi_and_plan_flows_between_samples():
    eng = engine(every_updates=2)
    # update 1: best bid 100 x 2 -> 100.5 x 4 (bid up: +4); asks unchanged (-1 + 1)
    assert eng.on_event(delta(1, [["100.5", "4"]], [], 100 * MS)) is None
    # update 2: best ask 101 x 1 removed -> 102 x 4 (ask up: +1); bid stays 100.5 x 4 (4 - 4)
    row = eng.on_event(delta(2, [], [["101", "0"]], 200 * MS))
    assert row is not None and row.update_id == 2 and row.exchange_ms == 20 and row.recv_ns == 200 * MS
    v = row.values
    assert v["ofi"] == approx(4 + 1)
    assert v["ofi_1"] == approx(4 + 1)
    # level 2: bid 100 x 2 (was 99 x 5: moved up +2), then stays (2 - 2); ask 102 x 4 -> missing: 0
    assert v["ofi_2"] == approx(2)
    assert (v["bid_flow"], v["ask_flow"], v["net_flow"]) == approx((4, 0, 4))
    assert v["flow_ratio"] is None  # the plan's inf
    assert (v["update_count"], v["bid_update_count"], v["ask_update_count"]) == (2, 1, 1)
    assert (v["best_bid"], v["best_ask"], v["bid_depth"]) == (100.5, 102.0, 3)
    # the next sample starts from zero
    row = eng.on_event(delta(3, [["100.5", "1"]], [], 300 * MS))
    row = eng.on_event(delta(4, [], [["102", "6"]], 400 * MS))
    # bid stays 4 -> 1: -3; ask stays 4 -> 6: -6 + 4
    assert row.values["ofi"] == approx(-3 + (-6 + 4))
    assert row.values["bid_flow"] == 1 and row.values["ask_flow"] == 6 and row.values["flow_ratio"] == approx(1 / 6)


def test_trade_flow_signed_by_taker():
    eng = engine()
    eng.on_event(trade("buy", "0.5", 10 * MS))
    eng.on_event(trade("sell", "0.2", 20 * MS))
    eng.on_event(trade("buy", "1.5", 30 * MS))
    v = eng.on_event(delta(1, [["99", "6"]], [], 40 * MS)).values
    assert (v["trade_buy_volume"], v["trade_sell_volume"]) == approx((0.5 + 1.5, 0.2))
    assert v["signed_volume"] == approx(0.5 + 1.5 - 0.2) and v["trade_count"] == 3


def test_intensities_over_short_and_long_windows():
    eng = engine(intensity_short_ms=1000, intensity_long_ms=4000)
    # t = 0.5 s: two bid levels grow (limit_bid x 2), one ask level shrinks (cancel_ask)
    first = eng.on_event(delta(1, [["99", "6"], ["98", "1"]], [["102", "1"]], 500 * MS)).values
    assert first["intensity_limit_bid"] == 2 / 1.0 and first["intensity_cancel_ask"] == 1 / 1.0
    assert first["intensity_limit_bid_rising"] == 1.0  # 2 per s over 1 s > 2 / 4 s
    assert first["intensity_limit_bid_accel"] is None  # no previous sample
    # t = 2.5 s: one bid level shrinks; the limit_bid events of 0.5 s left the 1 s window
    second = eng.on_event(delta(2, [["99", "3"]], [], 2500 * MS)).values
    assert second["intensity_limit_bid"] == 0.0 and second["intensity_cancel_bid"] == 1.0
    assert second["intensity_limit_bid_rising"] == 0.0  # 0 < 2 / 4
    assert second["intensity_limit_bid_accel"] == approx((0.0 - 2.0) / 2.0)
    assert second["d_bid_size_2"] == approx((3 - 6) / 2.0)  # bid level 2 is 99: 6 -> 3 over 2 s


def test_interval_sampling_uses_receive_time():
    eng = engine(every_updates=None, interval_ms=1000)
    assert eng.on_event(delta(1, [["99", "6"]], [], 100 * MS)) is not None  # the first sample
    assert eng.on_event(delta(2, [["99", "7"]], [], 900 * MS)) is None
    assert eng.on_event(delta(3, [["99", "8"]], [], 1100 * MS)) is not None


def test_no_rows_after_a_break_until_the_next_full_book():
    eng = engine()
    eng.on_event(QualityEvent("binance", "BTC-USDT", "gap", "U != u + 1", 5, 0))
    assert eng.on_event(delta(6, [["99", "6"]], [], 100 * MS)) is None
    eng.on_event(full([["100", "1"]], [["101", "1"]], 150 * MS))
    assert eng.on_event(delta(7, [["99", "6"]], [], 200 * MS)).values["bid_depth"] == 2
