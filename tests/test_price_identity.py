"""Price identity: a level's float key is exact, and both parsing paths agree on that.

Why: the book identifies a level by `float(price)`, which is exact only for decimals of at
most 15 significant digits (in the normal double range). `parse_side` checks a side in one
C-speed pass and explains a refusal in a slower per-level pass; if the two disagreed, a
price with 16 digits could slip through and share a key with its neighbour. Everything
here is judged against a reference written with `decimal.Decimal`, not against the code.

The grammar kept: ASCII digits with at most one point between digits. Leading zeros
("01.0") and trailing zeros ("1.00") are accepted and mean the same number as "1".
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable
from decimal import Context, Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from operators.book import OrderBook
from operators.book_sync import BookSync
from operators.decode import decode
from operators.levels import BadMessage, _check_level, parse_side
from operators.sync_base import SyncSettings
from schemas.events import BookDelta, BookFull
from schemas.raw import RawEvent

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALLEST_NORMAL = Decimal(sys.float_info.min)
TOO_BIG = Decimal(2) ** 1024 - Decimal(2) ** 970  # the least decimal that float() makes inf
WIDE = Context(prec=2000)  # counts the digits of any text generated here without rounding


# -- the reference -----------------------------------------------------------------------


def plain_decimal(text: object) -> bool:
    """ASCII digits with at most one point, digits on both sides of it."""
    if not isinstance(text, str):
        return False
    whole, point, fraction = text.partition(".")
    return all(part.isascii() and part.isdigit() for part in (whole, *([fraction] if point else [])))


def significant_digits(text: str) -> int:
    value = Decimal(text)
    return len(value.normalize(WIDE).as_tuple().digits) if value else 0


def price_ok(text: object) -> bool:
    return (
        plain_decimal(text)
        and SMALLEST_NORMAL <= Decimal(text) < TOO_BIG  # type: ignore[arg-type]
        and significant_digits(text) <= 15  # type: ignore[arg-type]
    )


def level_ok(level: object) -> bool:
    return (
        type(level) is list
        and 2 <= len(level) <= 4
        and price_ok(level[0])
        and plain_decimal(level[1])
        and Decimal(level[1]) < TOO_BIG
        and all(plain_decimal(extra) for extra in level[2:])
    )


def accepts(check: Callable[[], object]) -> bool:
    try:
        check()
    except BadMessage:
        return False
    return True


def fast_accepts(side: list[object]) -> bool:
    return accepts(lambda: parse_side(side, "bids", True))


def slow_accepts(side: list[object]) -> bool:
    return accepts(lambda: [_check_level(level, "bids", index) for index, level in enumerate(side)])


# -- texts of numbers ----------------------------------------------------------------------


def render(core: str, exponent: int, leading_zeros: int = 0, trailing_zeros: int = 0) -> str:
    """The text of int(core) * 10**exponent, padded with zeros that do not change the number."""
    if exponent >= 0:
        whole, fraction = core + "0" * exponent, ""
    elif -exponent < len(core):
        whole, fraction = core[:exponent], core[exponent:]
    else:
        whole, fraction = "0", "0" * (-exponent - len(core)) + core
    fraction += "0" * trailing_zeros
    return "0" * leading_zeros + whole + ("." + fraction if fraction else "")


@st.composite
def cores(draw: st.DrawFn, digits: st.SearchStrategy[int]) -> str:
    """Digit strings whose first and last digits are not zero: exactly `len` significant digits."""
    n = draw(digits)
    if n == 1:
        return draw(st.sampled_from("123456789"))
    middle = draw(st.text("0123456789", min_size=n - 2, max_size=n - 2))
    return draw(st.sampled_from("123456789")) + middle + draw(st.sampled_from("123456789"))


SIGNIFICANT = st.sampled_from([15, 16, 17]) | st.integers(1, 20)
EXPONENTS = st.integers(-20, 6) | st.integers(-340, 310)  # realistic, then the edges of doubles
PADDING = st.integers(0, 3)


def numbers(digits: st.SearchStrategy[int] = SIGNIFICANT) -> st.SearchStrategy[str]:
    return st.builds(render, cores(digits), EXPONENTS, PADDING, PADDING)


JUNK = (
    st.text("0123456789.|;", max_size=12)
    | st.sampled_from(["", ".", "1.", ".5", "1..2", "1.2.3", "1|2", "1;2", "|", ";", "1e5", "-1", "+1", " 1", "inf", "nan"])
    | st.none()
    | st.integers()
    | st.floats()
)
FIELDS = numbers() | st.just("0") | JUNK


@st.composite
def levels(draw: st.DrawFn) -> object:
    """Mostly levels that should pass (so whole sides often do), the rest anything at all."""
    if draw(st.integers(0, 3)):
        price = draw(st.builds(render, cores(st.integers(1, 15)), st.integers(-20, 6), PADDING, PADDING))
        extras = draw(st.sampled_from([[], ["0", "3"]]))
        return [price, draw(numbers(st.integers(1, 20)) | st.just("0")), *extras]
    if draw(st.integers(0, 30)) == 0:
        return draw(st.none() | st.just(("1", "1")) | st.just("1|1"))
    price = draw(numbers() | FIELDS)
    quantity = draw(numbers() | st.sampled_from(["0", "0.000"]) | FIELDS)
    extras = draw(st.lists(st.sampled_from(["0", "3", "12"]) | FIELDS, max_size=3))
    return [price, quantity, *extras]


# -- (a) both paths accept exactly what the reference accepts ------------------------------


@PROPERTY
@given(side=st.lists(levels(), min_size=1, max_size=5), bid=st.booleans())
def test_fast_path_accepts_exactly_what_the_slow_checker_and_the_reference_accept(side: list[object], bid: bool) -> None:
    expected = all(map(level_ok, side))
    assert accepts(lambda: parse_side(side, "bids" if bid else "asks", bid)) == expected
    assert slow_accepts(side) == expected


@PROPERTY
@given(price=numbers(), quantity=numbers(), okx=st.booleans())
def test_a_price_alone_is_accepted_iff_it_has_at_most_15_significant_digits(price: str, quantity: str, okx: bool) -> None:
    side = [[price, quantity, "0", "4"] if okx else [price, quantity]]
    assert fast_accepts(side) == slow_accepts(side) == level_ok(side[0])


@pytest.mark.parametrize(
    ("price", "accepted"),
    [
        ("1234567890123456", False),  # 16 characters, 16 digits: the text that used to slip through
        ("9007199254740993", False),  # 2**53 + 1: as a float it is its neighbour 2**53
        ("9007199254740990", True),  # 15 significant digits, exactly a double
        ("0.1000000000000001", False),
        ("100000000000000.0", True),
        ("000000000000000123456789012345", True),  # leading zeros are not significant
        ("0." + "0" * 306 + "1", True),  # 1e-307: a normal double
        ("0." + "0" * 310 + "1", False),  # 1e-311: subnormal, its neighbours share keys
    ],
)
def test_the_edges_of_exactness(price: str, accepted: bool) -> None:
    for side in ([[price, "1"]], [["5", "1"], [price, "2", "0", "1"]]):
        assert fast_accepts(side) == slow_accepts(side) == accepted == all(map(level_ok, side))
    assert float("9007199254740993") == float("9007199254740992")  # why 16 digits cannot be a key


class Text(str):
    """A str subclass (kept out of the strategies: hypothesis cannot replay one)."""


def test_a_str_subclass_is_read_as_the_text_it_is() -> None:
    for side, accepted in (
        ([[Text("100.5"), Text("1"), Text("0"), Text("2")]], True),
        ([[Text("1234567890123456"), "1"]], False),
        ([["100.5", "1", Text("1.2.3")]], False),
    ):
        assert fast_accepts(side) == slow_accepts(side) == accepted == all(map(level_ok, side))


def test_a_separator_inside_an_extra_field_is_refused() -> None:
    """Joined, ["1", "2", "3|4"] looks like a level of four plain fields."""
    for extra in ("3|4", "3;4|5", "", "1.2.3"):
        side = [["1", "2", extra]]
        assert not fast_accepts(side) and not slow_accepts(side)


# -- (b) two accepted prices share a key iff they are one number ---------------------------


@st.composite
def related_prices(draw: st.DrawFn) -> tuple[str, str]:
    """Two texts that are one number in other padding, neighbours in the last digit, or apart."""
    core = draw(cores(st.integers(1, 15) | st.sampled_from([14, 15])))
    exponent = draw(EXPONENTS)
    first = render(core, exponent, draw(PADDING), draw(PADDING))
    how = draw(st.sampled_from(["same", "neighbour", "other"]))
    if how == "same":
        return first, render(core, exponent, draw(PADDING), draw(PADDING))
    if how == "neighbour":
        step = draw(st.sampled_from([-1, 1]))
        return first, render(str(int(core) + step), exponent, draw(PADDING), draw(PADDING))
    return first, draw(numbers(st.integers(1, 15)))


@PROPERTY
@given(pair=related_prices(), bid=st.booleans())
def test_two_accepted_prices_share_a_key_iff_they_are_the_same_number(pair: tuple[str, str], bid: bool) -> None:
    first, second = pair
    if not (price_ok(first) and price_ok(second)):
        return  # a 16-digit neighbour or an out-of-range exponent: (a) covers refusals
    keys = parse_side([[first, "1"], [second, "2"]], "bids" if bid else "asks", bid).keys
    assert (keys[0] == keys[1]) == (Decimal(first) == Decimal(second))


@PROPERTY
@given(prices=st.lists(related_prices(), min_size=1, max_size=40))
def test_a_side_has_as_many_keys_as_distinct_numbers(prices: list[tuple[str, str]]) -> None:
    texts = [text for pair in prices for text in pair if price_ok(text)]
    changes = parse_side([[text, "1"] for text in texts], "asks", False)
    assert len(set(changes.keys)) == len(set(map(Decimal, texts)))


# -- (c) different texts of one number are one level; the latest text is published -------


@PROPERTY
@given(
    core=cores(st.integers(1, 15)),
    exponent=st.integers(-10, 4),
    paddings=st.lists(st.tuples(PADDING, PADDING), min_size=2, max_size=5),
    bid=st.booleans(),
)
def test_texts_of_one_number_are_one_level_holding_the_latest_text(
    core: str, exponent: int, paddings: list[tuple[int, int]], bid: bool
) -> None:
    texts = [render(core, exponent, lead, trail) for lead, trail in paddings]
    book = OrderBook()
    side = book.bids if bid else book.asks
    side.replace(parse_side([[texts[0], "1"]], "side", bid), None)
    for number, text in enumerate(texts[1:], start=2):
        side.apply(parse_side([[text, str(number)]], "side", bid))
        assert side.top(10) == [[text, str(number)]]
    side.apply(parse_side([[render(core, exponent, 1, 2), "0"]], "side", bid))  # removal in yet another text
    assert side.top(10) == []


def test_a_snapshot_naming_one_number_twice_keeps_its_last_text() -> None:
    book = OrderBook()
    book.asks.replace(parse_side([["1.0", "1"], ["2", "5"], ["01.00", "3"]], "asks", False), None)
    assert book.asks.top(10) == [["01.00", "3"], ["2", "5"]]


def okx_frame(action: str, bids: list[list[str]], asks: list[list[str]], checksum: int, seq: int, prev: int) -> str:
    entry = {"bids": bids, "asks": asks, "ts": "1700000000000", "checksum": checksum, "seqId": seq, "prevSeqId": prev}
    return orjson.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [entry]}).decode()


def okx_checksum(bid: list[str], ask: list[str]) -> int:
    crc = zlib.crc32(":".join([*bid[:2], *ask[:2]]).encode())
    return crc - 2**32 if crc >= 2**31 else crc


def test_okx_publishes_the_latest_text_of_a_level_and_verifies_its_checksum_over_it() -> None:
    """The exchange checksums its own latest text; the book must hold that text to agree."""
    sync = BookSync("okx:BTC-USDT", SyncSettings(depth=5, full_interval_ms=1))
    bid, ask = ["100.0", "1", "0", "1"], ["101.5", "2", "0", "1"]
    frames = [
        okx_frame("snapshot", [bid], [ask], okx_checksum(bid, ask), 10, -1),
        okx_frame("update", [["100.00", "3", "0", "1"]], [], okx_checksum(["100.00", "3"], ask), 11, 10),
    ]
    events = []
    for number, frame in enumerate(frames):
        raw = RawEvent(1_700_000_000_010_000_000 + number * 100_000_000, "okx", "c", "ws", None, None, frame)
        decoded = decode(raw)
        assert isinstance(decoded, list)
        for _, msg in decoded:
            events += sync.handle(msg)
    assert sync.machine.stats.checksums_verified == 2 and sync.machine.stats.checksum_failures == 0
    deltas = [e for e in events if isinstance(e, BookDelta)]
    fulls = [e for e in events if isinstance(e, BookFull)]
    assert [d.bid_updates for d in deltas] == [[["100.00", "3", "0", "1"]]]
    assert [[level[:2] for level in full.bids] for full in fulls] == [[["100.0", "1"]], [["100.00", "3"]]]
