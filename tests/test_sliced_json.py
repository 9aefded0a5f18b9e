"""Sliced parsing of big answers (`schemas.sliced_json`) gives exactly orjson's parse, or
its error, whatever the strings hold; the live source's decoding of an OKX books-full
answer equals the replay's one-pass decoding."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.steps import decode_off_worker
from operators.decode import decode
from schemas.raw import RawEvent
from schemas.sliced_json import loads_in_slices
from sim.okx_format import encode, rest_books
from sim.specs import spec_for


class Pauses:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def books_full_text(levels: int) -> str:
    spec = spec_for("okx", "BTC-USDT")
    bids = [(spec.start_price - 1 - 3 * i, 100 + 7 * i) for i in range(levels)]
    asks = [(spec.start_price + 1 + 3 * i, 90 + 5 * i) for i in range(levels)]
    return encode(rest_books(spec, bids, asks, 1_700_000_000_123, full=True))


def test_a_books_full_answer_is_parsed_in_slices_to_the_same_document():
    text = books_full_text(5000)
    pauses = Pauses()
    parsed = loads_in_slices(text, slice_chars=32_768, pause=pauses)
    assert parsed == orjson.loads(text)
    assert len(parsed["data"][0]["bids"]) == 5000
    # two sides of about 150 KB each, cut about every 32 KB: four pauses a side at least
    assert pauses.count >= 2 * (len(text) // 2 // 32_768) >= 8


@pytest.mark.parametrize("text", [
    '{"a":[["x],[y","1"],["2","3"]],"b":1}',  # a cut point inside a string
    '{"a":[["x]]","1"],["2","3"]]}',  # the array's end inside a string
    '{"s":"[[1],[2]]","a":[["1"],["2"],["3"]]}',  # an array's text inside a string
    '{"a":[["\\u0000sliced-array-0"],["2"],["3"]]}',  # the marker inside a sliced array
    '{"m":"\\u0000sliced-array-0","a":[["1"],["2"],["3"]]}',  # the marker as another value
    '{"a":[["1"],["2"],["3"]],"a":[["4"],["5"],["6"]]}',  # a key given twice: the last wins
    '{"a":[[[1],[2]],[[3],[4]]]}',  # deeper arrays
    '[[1,2],[3,4],[5,6],[7,8]]',  # the document is the array
    '{"a":[["\\"],[\\"","1"],["2"]]}',  # escaped quotes around a cut point
    '{"a":[[1.5e3,-0,true,null],[{"k":[[9]]}]]}',
])
def test_strings_holding_brackets_or_the_marker_change_nothing(text: str):
    for slice_chars in (1, 3, 8, 15):
        assert loads_in_slices(text, slice_chars=slice_chars, pause=Pauses()) == orjson.loads(text)


@pytest.mark.parametrize("text", [
    '{"a":[["1"],["2"],["3"]',  # cut short
    '{"a":[["1"],["2",],["3"]]}',  # a trailing comma inside a slice
    '{"a":[["1"],["2"],["3"]]]}',  # one bracket too many after the array
    '{"a":[["1"],["2"],["3"]],}',
])
def test_malformed_documents_raise_orjsons_error(text: str):
    with pytest.raises(orjson.JSONDecodeError) as whole:
        orjson.loads(text)
    with pytest.raises(orjson.JSONDecodeError) as sliced:
        loads_in_slices(text, slice_chars=4, pause=Pauses())
    assert str(sliced.value) == str(whole.value)


_TEXTS = st.text(alphabet='[]",\\ab0.\x00-', max_size=6)
_LEVELS = st.lists(st.lists(st.one_of(_TEXTS, st.integers(-5, 5)), max_size=4), max_size=12)


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(_TEXTS, st.one_of(_LEVELS, _TEXTS), max_size=4),
       slice_chars=st.integers(1, 40))
def test_any_document_parses_as_orjson_parses_it(document: dict, slice_chars: int):
    text = orjson.dumps(document).decode()
    assert loads_in_slices(text, slice_chars=slice_chars, pause=Pauses()) == orjson.loads(text)


def test_the_live_sources_decoding_equals_the_replays():
    text = books_full_text(5000)
    url = "http://127.0.0.1:1/api/v5/market/books-full?instId=BTC-USDT&sz=5000"
    raw = RawEvent(1_700_000_000_200_000_000, "okx", "rest", "rest", "BTC-USDT", url, text)
    live = decode_off_worker(raw).decoded  # type: ignore[attr-defined]
    replayed = decode(raw)
    assert live == replayed
    (key, deep), = live
    assert key == "okx:BTC-USDT" and len(deep.bids.keys) == len(deep.asks.wires) == 5000
