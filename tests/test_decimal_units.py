"""Decimal text <-> integers (schemas.decimal_units): hand-worked values, and exact round trips."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.decimal_units import SHORTEST, Units, encode, from_steps, texts, to_steps


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ([["0.00000100"]], Units([[1]], scale=6, decimals=8)),
        ([["1.0"]], Units([[1]], scale=0, decimals=1)),
        ([["50000.00"]], Units([[5]], scale=-4, decimals=2)),
        # Binance: 8 decimals always; the scale is what the values need (BTC lots of 10^-5).
        ([["0.00000000", "0.01153000"], ["0.37285000"]], Units([[0, 1153], [37285]], scale=5, decimals=8)),
        ([["89999.62000000", "89999.56000000"]], Units([[8999962, 8999956]], scale=2, decimals=8)),
        # OKX: the shortest form, an integer without a dot, "0" for a removed level.
        ([["90000", "90000.1"], ["0"]], Units([[900000, 900001], [0]], scale=1, decimals=SHORTEST)),
        ([["0.0722949", "0.00600025"]], Units([[7229490, 600025]], scale=8, decimals=SHORTEST)),
        ([["3", "0"]], Units([[3, 0]], scale=0, decimals=0)),
        ([[], []], Units([[], []], scale=0, decimals=0)),
    ],
)
def test_texts_become_integers_of_one_scale_and_come_back_exactly(arrays: list[list[str]], expected: Units) -> None:
    assert encode(arrays) == expected
    assert [texts(units, expected.scale, expected.decimals) for units in expected.arrays] == arrays


@pytest.mark.parametrize(
    "arrays",
    [
        [["1.0", "1.00"]],  # neither one width nor the shortest form
        [["0.10", "0.5"]],
        [["007"]], [["1."]], [[".5"]], [["-1"]], [["1e5"]], [[" 1"]],
        [["123456789012345678901"]],  # past Int64
        [["0." + "0" * 120 + "1"]],  # a scale Int8 cannot hold
    ],
)
def test_texts_without_an_integer_form_stay_text(arrays: list[list[str]]) -> None:
    assert encode(arrays) is None


def test_price_steps_are_small_and_positive_on_sorted_sides() -> None:
    assert to_steps([8999962, 8999956, 8999955], -1) == [8999962, 6, 1]
    assert to_steps([8999957, 8999958, 9000061], 1) == [8999957, 1, 103]
    assert from_steps([8999962, 6, 1], -1) == [8999962, 8999956, 8999955]
    assert to_steps([], 1) == [] and from_steps([], -1) == []


_digits = st.text("0123456789", min_size=1, max_size=12)
_canonical = st.builds(lambda whole, fraction: str(int(whole)) + (f".{fraction}" if fraction else ""),
                       _digits, st.one_of(st.just(""), _digits))
_any_text = st.one_of(_canonical, st.text("0123456789.", min_size=1, max_size=10))


@given(st.lists(st.lists(st.integers(0, 10**10), min_size=1, max_size=6), min_size=1, max_size=4), st.integers(0, 8))
def test_fixed_width_texts_round_trip(arrays: list[list[int]], width: int) -> None:
    fixed = [[f"{Decimal(units).scaleb(-width):.{width}f}" for units in array] for array in arrays]
    units = encode(fixed)
    assert units is not None and units.decimals == width
    assert [texts(u, units.scale, units.decimals) for u in units.arrays] == fixed


@given(st.lists(st.lists(_any_text, max_size=6), min_size=1, max_size=4))
def test_whatever_encodes_comes_back_as_the_same_text(arrays: list[list[str]]) -> None:
    units = encode(arrays)
    if units is not None:
        assert [texts(u, units.scale, units.decimals) for u in units.arrays] == arrays
        assert [[Decimal(t) for t in array] for array in arrays] == [
            [Decimal(m).scaleb(-units.scale) for m in u] for u in units.arrays]


@given(st.lists(st.integers(-(2**40), 2**40), max_size=20), st.sampled_from([-1, 1]))
def test_steps_round_trip(units: list[int], sign: int) -> None:
    assert from_steps(to_steps(units, sign), sign) == units
