"""Tickers and trades built from columns by the compiled builder equal the ones their
dataclass `__init__` builds, field by field (dataclass equality and every attribute)."""

from __future__ import annotations

from dataclasses import astuple, dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import columns
from schemas.events import Ticker, Trade

TEXT = st.text(max_size=5)
MAYBE_INT = st.none() | st.integers(0, 2**63 - 1)


def test_the_builder_is_built_and_takes_tickers_and_trades() -> None:
    assert columns._SLOTS is not None, "schemas/_slots.c was not built; run `pip install -e .`"
    assert set(columns._DIRECT) == {Ticker, Trade}


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(TEXT, TEXT, MAYBE_INT, TEXT, TEXT, TEXT, TEXT, st.none() | TEXT, MAYBE_INT, st.integers(0, 2**63)),
                     max_size=20))
def test_tickers_from_columns_are_the_tickers_init_builds(rows: list[tuple[object, ...]]) -> None:
    cols = [list(col) for col in zip(*rows)] if rows else [[] for _ in range(10)]
    built = columns.build_column(Ticker, *cols)
    expected = [Ticker(*row) for row in rows]  # type: ignore[arg-type]
    assert built == expected and [astuple(t) for t in built] == list(rows)
    assert all(type(t) is Ticker for t in built)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(TEXT, TEXT, TEXT, TEXT, TEXT, st.sampled_from(["buy", "sell"]), MAYBE_INT, st.integers(0, 10)),
                     max_size=20))
def test_trades_from_columns_are_the_trades_init_builds(rows: list[tuple[object, ...]]) -> None:
    cols = [list(col) for col in zip(*rows)] if rows else [[] for _ in range(8)]
    assert columns.build_column(Trade, *cols) == [Trade(*row) for row in rows]  # type: ignore[arg-type]


def test_a_class_whose_init_does_more_is_built_by_its_init() -> None:
    @dataclass(slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            self.value *= 2

    assert columns._stores_only(Checked) is None
    assert columns.build_column(Checked, [1, 2]) == [Checked(1), Checked(2)] and Checked(1).value == 2
