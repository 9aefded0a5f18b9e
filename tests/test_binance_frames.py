"""The compiled Binance frame reader reads each frame as JSON says it is, or leaves it.

Why: `operators/_binance_frames.c` reads nearly every Binance frame of a replay into
columns of typed fields. The fields it reads of a frame must hold exactly what the frame says (judged here against
Python's json reading of the same text) and what msgspec's typed payload would hold, and the
frames it leaves must be few on real captures, or the fast path would not be the path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from connectors.recording import read_recording
from operators.binance_columns import GROUP_FIELDS, GROUP_OF, decode_typed_chunk, place
from operators.binance_typed import decode_typed, typed_payload
from operators.binance_wire import KLINE_INTERVAL, normalized_symbol
from operators.compiled_core import FRAMES
from operators.wire import MAX_FRAME_BYTES
from schemas.raw import RawEvent
from sim.recording import generate_recording

PAYLOAD_FIELDS = ("e", "E", "s", "U", "u", "b", "a", "B", "A", "t", "p", "q", "T", "m", "M")
Row = tuple[int, tuple[Any, ...]]  # a frame's group and the fields its builder reads
PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def truth_row(text: str) -> Row | None:
    """The row by Python's own json: the frame's group (by its event type; none: a book
    ticker) and the payload's fields its group reads, UNSET where absent; None when the
    frame is not a combined-stream frame of a ticker, trade or diff."""
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    if type(frame) is not dict or set(frame) != {"stream", "data"} or type(frame["data"]) is not dict:
        return None
    payload = frame["data"]
    group = GROUP_OF.get(payload.get("e", UNSET))
    if group is None:
        return None
    return group, tuple(payload.get(name, UNSET) for name in GROUP_FIELDS[group])


def typed_row(text: str) -> Row | None:
    """The same by msgspec's typed payload."""
    payload = typed_payload(RawEvent(0, "binance", "c", "ws", None, None, text))
    group = None if payload is None else GROUP_OF.get(payload.e)
    if group is None:
        return None
    return group, tuple(getattr(payload, name) for name in GROUP_FIELDS[group])


def rows_of(texts: list[str | None]) -> list[Row | None]:
    """Each frame's group and fields as the compiled reader's groups hold them, or None
    where it left the frame to Python."""
    assert FRAMES is not None, "operators/_binance_frames.c was not built; run `pip install -e .`"
    groups, unread = FRAMES.binance_groups(texts, UNSET, MAX_FRAME_BYTES)
    assert len(groups) == len(GROUP_FIELDS)
    rows: list[Row | None] = [None] * len(texts)
    for group, ((positions, fields), names) in enumerate(zip(groups, GROUP_FIELDS)):
        assert len(fields) == len(names) and all(len(column) == len(positions) for column in fields)
        for i, at in enumerate(positions):
            assert rows[at] is None
            rows[at] = group, tuple(column[i] for column in fields)
    assert sorted(unread) == unread and all(rows[at] is None for at in unread)
    assert len(unread) + sum(row is not None for row in rows) == len(texts)
    return rows


def _binance_frames(path: Path) -> list[str]:
    return [item.data for item in read_recording(path)
            if isinstance(item, RawEvent) and item.venue in ("binance", "binance_us") and item.kind == "ws"]


def test_real_and_simulated_frames_read_as_json_says(tmp_path: Path, real_recordings: dict[str, Path]) -> None:
    generated = tmp_path / "sim.jsonl.zst"
    generate_recording(generated, venues=("binance",), symbols=("BTC-USDT", "ETH-USDT"), seconds=20, seed=5)
    binance = [(name, path) for name, path in real_recordings.items() if name.startswith("binance")]
    assert len(binance) == 2
    for name, path in [("simulator", generated), *binance]:
        texts = _binance_frames(path)
        rows = rows_of(texts)
        truths = list(map(truth_row, texts))
        read = [row for row in rows if row is not None]
        assert all(row == truth for row, truth in zip(rows, truths) if row is not None), name
        # Every row the reader gives is msgspec's too.
        assert all(typed_row(text) == row for text, row in zip(texts, rows) if row is not None), name
        # It is the path: it reads all but a few of the tickers, trades and diffs.
        wanted = sum(truth is not None for truth in truths)
        assert wanted and len(read) >= 0.99 * wanted, (name, len(read), wanted)


SCALARS = (
    st.text(st.characters(codec="ascii"), max_size=6) | st.text(max_size=3)
    | st.integers(-3, 3) | st.integers(2**63 - 2, 2**64 + 1) | st.sampled_from([0.5, 1.0, 1e20])
    | st.booleans() | st.none()
)
VALUES = SCALARS | st.lists(st.lists(SCALARS, max_size=3), max_size=3) | st.dictionaries(st.text(max_size=2), SCALARS, max_size=2)
KEYS = st.sampled_from(list(PAYLOAD_FIELDS) + ["k", "f", "x", "stream", "ee", ""])
PAYLOADS = st.dictionaries(KEYS, VALUES | st.sampled_from(["trade", "depthUpdate", "kline", "1.5"]), max_size=8)


def _render(payload: dict[str, Any], spacing: str, escape: bool) -> str:
    text = json.dumps({"stream": "btcusdt@x", "data": payload}, separators=(",", ":"), ensure_ascii=False)
    if spacing:
        text = text.replace(",", "," + spacing).replace(":", ":" + spacing)
    return text.replace('"s"', '"\\u0073"') if escape else text


@PROPERTY
@given(payload=PAYLOADS, spacing=st.sampled_from(["", "", " ", "\n"]), escape=st.booleans())
def test_any_frame_reads_as_json_says_or_is_left(payload: dict[str, Any], spacing: str, escape: bool) -> None:
    text = _render(payload, spacing, escape)
    row = rows_of([text])[0]
    if row is None:
        return
    assert row == truth_row(text)
    assert typed_row(text) == row


@pytest.mark.parametrize("text", [
    '{"stream":"a","data":{"u":1,"s":"BTCUSDT","b":"1.0","B":"2","a":"1.1","A":"3"}}',
    '{"stream":"a","data":{"e":"trade","E":1,"s":"X","t":0,"p":"1","q":"2","T":null,"m":true,"M":false}}',
    '{"stream":"a","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","2"],["3","0"]],"a":[]}}',
    '{"stream":"a","data":{}}',
])
def test_frames_of_the_usual_shape_are_read(text: str) -> None:
    assert rows_of([text])[0] == truth_row(text) is not None


@pytest.mark.parametrize("text", [
    '{"data":{"u":1},"stream":"a"}',  # another order
    '{"stream":"a","data":{"u":01}}',  # not JSON
    '{"stream":"a","data":{"u":-1}}',  # negative count
    '{"stream":"a","data":{"u":9223372036854775808}}',  # past int64
    '{"stream":"a","data":{"u":1.0}}',  # a float
    '{"stream":"a","data":{"u":1,"u":2}}',  # twice
    '{"stream":"a","data":{"e":"kline","k":{}}}',  # read one by one
    '{"stream":"a","data":{"s":"\\u00e9"}}',  # an escape
    '{"stream":"a","data":{"s":"é"}}',  # not ASCII
    '{"stream":"a","data":{"b":[[]]}}',  # an empty level
    '{"stream":"a","data":{"u":1}} ',  # trailing text
    '{"stream":"a","data":{"u":1}',  # cut short
])
def test_other_frames_are_left_to_msgspec(text: str) -> None:
    assert rows_of([text])[0] is None


def test_a_chunk_answers_as_each_frame_alone(real_recordings: dict[str, Path]) -> None:
    """The compiled rows feed the columns: a chunk's answers are `decode_typed`'s, frame by frame."""
    raws = [item for path in real_recordings.values() for item in read_recording(path)
            if isinstance(item, RawEvent) and item.venue in ("binance", "binance_us")]
    assert len(raws) > 500
    for start in range(0, len(raws), 500):
        chunk = raws[start:start + 500]
        assert decode_typed_chunk(chunk, normalized_symbol, KLINE_INTERVAL) == [
            decode_typed(raw, normalized_symbol, KLINE_INTERVAL) for raw in chunk]


def test_a_frame_longer_than_the_limit_is_left_to_the_general_path() -> None:
    assert FRAMES is not None
    text = '{"stream":"a","data":{"u":1,"s":"BTCUSDT","b":"1.0","B":"2","a":"1.1","A":"3"}}'
    assert FRAMES.binance_groups([text], UNSET, len(text))[1] == []
    assert FRAMES.binance_groups([text], UNSET, len(text) - 1)[1] == [0]
    assert typed_payload(RawEvent(0, "binance", "c", "ws", None, None, "x" * (MAX_FRAME_BYTES + 1))) is None


def test_what_is_not_a_text_is_left_to_python() -> None:
    text = '{"stream":"a","data":{"u":1,"s":"BTCUSDT","b":"1.0","B":"2","a":"1.1","A":"3"}}'
    assert rows_of([None, text, b"{}"]) == [None, (0, ("BTCUSDT", 1, "1.0", "2", "1.1", "3", UNSET)), None]  # type: ignore[list-item]


@pytest.mark.parametrize("compiled", [True, False])
def test_answers_are_put_back_in_the_chunks_order(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if compiled:
        assert FRAMES is not None, "operators/_binance_frames.c was not built"
    else:
        monkeypatch.setattr("operators.binance_columns.FRAMES", None)
    assert place(5, [([3, 0], ["d", "a"]), ([1], ["b"])]) == ["a", "b", None, "d", None]  # type: ignore[list-item]
    with pytest.raises(IndexError):
        place(2, [([2], ["x"])])  # type: ignore[list-item]
