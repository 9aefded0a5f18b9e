"""The compiled level core gives the answers its pure-Python twins give, and both give the
answers of references written here (a `decimal.Decimal` grammar check, a dict for a book).

Why: `operators/_levels_core.c` is what every replay and live book runs when `pip install`
built it; the Python loops stay the definition, for machines without a compiler. If the two
ever differed, the same recording would give different books on different machines.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators import compiled_core
from operators.book import BookSide, LevelChanges
from operators.levels import all_pairs_pass_in_python, parse_sides_in_python
from tests.test_price_identity import PROPERTY, TOO_BIG, level_ok, levels, numbers, plain_decimal

CORE = compiled_core.CORE


def test_the_core_is_built_by_pip_install() -> None:
    """`make test` installs the project with pip, which compiles the core: a missing core
    would quietly run every replay at a fraction of its speed."""
    assert CORE is not None, "operators/_levels_core.c was not built; run `pip install -e .`"


def _expected_changes(side: list[list[str]], bid: bool) -> tuple[list[float], list[list[str] | None]]:
    """Keys and wires by the reference: the price as a Decimal rounded once to a double."""
    keys = [float(Decimal(level[0])) * (1 if bid else -1) for level in side]
    wires = [None if float(Decimal(level[1])) == 0.0 else level for level in side]
    return keys, wires


@PROPERTY
@given(sides=st.lists(st.lists(levels(), max_size=4), min_size=1, max_size=4), bids=st.lists(st.booleans(), min_size=4, max_size=4))
def test_parse_sides_answers_as_the_python_twin_and_the_reference(sides: list[list[object]], bids: list[bool]) -> None:
    assert CORE is not None
    bids = bids[: len(sides)]
    compiled = CORE.parse_sides(sides, bids, LevelChanges)
    python = parse_sides_in_python(sides, bids)
    if compiled is None or python is None:
        # Refused by one: refused by both, unless only Python's closer look could accept
        # (a long price is left to Python by the core, which then counts its digits).
        assert python is None
        long_price = any(type(level) is list and len(level) and isinstance(level[0], str) and len(level[0]) > 15
                         for side in sides for level in side)
        assert compiled is None and (long_price or not all(level_ok(level) for side in sides for level in side))
        return
    assert all(level_ok(level) for side in sides for level in side)
    for got, twin, side, bid in zip(compiled, python, sides, bids):
        keys, wires = _expected_changes(side, bid)  # type: ignore[arg-type]
        assert got.keys == twin.keys == keys
        assert [wire is None for wire in got.wires] == [wire is None for wire in wires]
        assert all(got_wire is wire for got_wire, wire in zip(got.wires, wires) if wire is not None)


PRICES = st.integers(1, 60).map(lambda n: f"{n / 4:.2f}")
CHANGES = st.lists(st.tuples(PRICES, st.sampled_from(["0", "0.000", "1.5", "2", "0.01"])), max_size=30)


@PROPERTY
@given(snapshot=CHANGES, increments=st.lists(CHANGES, max_size=8), bid=st.booleans())
def test_apply_changes_keeps_the_book_a_dict_would(
    snapshot: list[tuple[str, str]], increments: list[list[tuple[str, str]]], bid: bool
) -> None:
    assert CORE is not None
    sign = 1 if bid else -1
    compiled, python = BookSide(), BookSide()
    truth: dict[float, list[str]] = {}
    for side in (compiled, python):
        side.replace(LevelChanges([sign * float(p) for p, _ in snapshot],
                                  [[p, q] if float(q) else None for p, q in snapshot]), None)
    for price, quantity in snapshot:  # a snapshot's zero quantities are no levels, not removals
        if float(quantity):
            truth[sign * float(price)] = [price, quantity]
    for increment in increments:
        changes = LevelChanges([sign * float(p) for p, _ in increment], [[p, q] if float(q) else None for p, q in increment])
        compiled.apply(changes)
        python.apply_in_python(changes)
        for price, quantity in increment:
            if float(quantity):
                truth[sign * float(price)] = [price, quantity]
            else:
                truth.pop(sign * float(price), None)
        assert compiled.keys == python.keys == sorted(truth)
        assert compiled.wires == python.wires == [truth[key] for key in sorted(truth)]


def test_no_sides_is_no_answer_in_both() -> None:
    assert CORE is not None
    assert CORE.parse_sides([], [], LevelChanges) is None and parse_sides_in_python([], []) is None


def test_apply_changes_refuses_keys_that_are_not_floats() -> None:
    assert CORE is not None
    with pytest.raises(TypeError):
        CORE.apply_changes([1.0], [["1", "1"]], [2], [["2", "1"]])


PAIR_FIELDS = numbers() | st.sampled_from(["0", "", "1e5", "-1", " 1", "1.", "nan", "١"]) | st.none() | st.integers()


@PROPERTY
@given(pairs=st.lists(st.tuples(PAIR_FIELDS, PAIR_FIELDS), max_size=6))
def test_all_pairs_pass_answers_as_the_python_twin_and_the_reference(pairs: list[tuple[object, object]]) -> None:
    assert CORE is not None
    prices, quantities = [p for p, _ in pairs], [q for _, q in pairs]
    expected = all(
        plain_decimal(price) and plain_decimal(quantity) and 0 < Decimal(price) < TOO_BIG  # type: ignore[arg-type]
        and float(Decimal(price)) > 0.0  # type: ignore[arg-type]
        for price, quantity in pairs
    )
    assert CORE.all_pairs_pass(prices, quantities) is expected
    assert all_pairs_pass_in_python(prices, quantities) is expected


@PROPERTY
@given(text=st.from_regex(r"[0-9]{1,8}\.[0-9]{1,7}|[0-9]{1,15}|0\.0{0,6}[1-9][0-9]{0,7}|[1-9][0-9]{0,14}\.[0-9]{1}", fullmatch=True))
def test_a_short_price_converts_to_the_double_float_gives(text: str) -> None:
    """The core divides the digits by a power of ten for texts of up to 15 digits: the
    same correctly rounded double as Python's float()."""
    assert CORE is not None
    parsed = CORE.parse_sides([[[text, text]]], [True], LevelChanges)
    if float(text) == 0.0 or len(text) > 15:
        assert parsed is None  # a price must be positive; a long one is Python's to count
        return
    assert parsed is not None and parsed[0].keys == [float(text)]
    assert (parsed[0].wires[0] is None) == (float(text) == 0.0)


def test_the_wires_a_book_keeps_are_out_of_the_garbage_collectors_care() -> None:
    """A kept wire (a list of strings nobody changes) cannot be in a reference cycle; the
    young collections that walked tens of thousands of them stalled the worker."""
    import gc

    assert CORE is not None
    side = [["100.5", "2"], ["100.4", "0"], ["100.3", "1", "0", "1"]]
    changes = CORE.parse_sides([side], [True], LevelChanges)[0]
    assert [gc.is_tracked(level) for level in side] == [False, True, False]  # the removal stays as it was
    assert changes.wires == [side[0], None, side[2]]
    assert not gc.is_tracked(changes.keys) and not gc.is_tracked(changes.wires) and not gc.is_tracked(side)


@PROPERTY
@given(snapshot=CHANGES, depth=st.integers(0, 40))
def test_a_sides_levels_best_first_are_the_reversed_slices_and_untracked(snapshot: list[tuple[str, str]], depth: int) -> None:
    """top, below and levels: the levels a reversed slice of the side gives (best first), in
    lists the collector does not walk (5000-entry ones made most of a young collection)."""
    import gc

    assert CORE is not None
    side = BookSide()
    side.replace(LevelChanges([float(p) for p, _ in snapshot], [[p, q] if float(q) else None for p, q in snapshot]), None)
    wires = side.wires
    assert not gc.is_tracked(side.keys) and not gc.is_tracked(wires)
    answers = (side.top(depth), side.below(depth), side.levels())
    assert answers == (wires[::-1][:depth], wires[::-1][depth:], wires[::-1])
    assert not any(gc.is_tracked(levels) for levels in answers if levels)
    with pytest.raises(IndexError):
        CORE.best_first(wires, len(wires) + 1, 0)


def test_without_the_core_the_levels_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    side = BookSide()
    side.replace(LevelChanges([1.0, 2.0, 3.0], [["1", "1"], ["2", "1"], ["3", "1"]]), None)
    compiled = (side.top(2), side.below(2), side.levels())
    monkeypatch.setattr("operators.book.CORE", None)
    assert (side.top(2), side.below(2), side.levels()) == compiled == (
        [["3", "1"], ["2", "1"]], [["1", "1"]], [["3", "1"], ["2", "1"], ["1", "1"]])
