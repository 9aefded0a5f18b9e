"""The typed (msgspec) Binance path answers only where it gives what the general path gives.

Every frame of generated recordings (with faults) and of the real captures, then frames with
fields changed to any JSON value, dropped or added: whenever the typed path answers, its
message equals the general path's; where it does not, the general path decides (and words
every rejection). The column-wise chunk decoder gives, frame for frame, the typed path's answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.recording import read_recording
from operators.binance_columns import decode_typed_chunk
from operators.binance_typed import decode_typed
from operators.binance_wire import KLINE_INTERVAL, normalized_symbol, decode_general
from schemas.raw import RawEvent
from sim.faults import FaultPlan
from sim.recording import generate_recording

RECV_NS = 1_717_200_000_500_000_000
DIFF = {"e": "depthUpdate", "E": 1717200000400, "s": "BTCUSDT", "U": 10, "u": 12,
        "b": [["90000.01", "0.5"], ["89999.00", "0"]], "a": [["90000.02", "1.25"]]}
TRADE = {"e": "trade", "E": 1717200000400, "s": "BTCUSDT", "t": 7, "p": "90000.01", "q": "0.001",
         "T": 1717200000399, "m": True, "M": True}
AGG = {"e": "aggTrade", "E": 1717200000400, "s": "BTCUSDT", "a": 70, "p": "90000.01", "q": "0.001",
       "f": 7, "l": 8, "T": 1717200000399, "m": False, "M": True}
TICKER = {"u": 12, "s": "BTCUSDT", "b": "90000.01", "B": "0.5", "a": "90000.02", "A": "1.25"}
KLINE = {"e": "kline", "E": 1717200000400, "s": "BTCUSDT", "k": {
    "t": 1717200000000, "T": 1717200059999, "s": "BTCUSDT", "i": "1m", "f": 1, "L": -1, "o": "90000.00",
    "c": "90000.01", "h": "90001.00", "l": "89999.00", "v": "1.5", "n": 3, "x": False, "q": "135000.0",
    "V": "0.5", "Q": "45000.0", "B": "0"}}
SAMPLES = [DIFF, TRADE, AGG, TICKER, KLINE]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "0", "1", "1.5", "01.50", "-1", "1e5", "abc", "BTCUSDT", "1m", "7x", "1.", ".5", "9" * 40]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["s", "t", "x"]), inner, max_size=2),
    max_leaves=6,
)


def _agree(raw: RawEvent) -> bool:
    typed = decode_typed(raw, normalized_symbol, KLINE_INTERVAL)
    return typed is None or [typed] == decode_general(raw)


def _raw(data: str) -> RawEvent:
    return RawEvent(RECV_NS, "binance", "binance-ws", "ws", None, None, data)


def test_every_frame_of_recordings_agrees(tmp_path: Path, real_recordings: dict[str, Path]) -> None:
    path = tmp_path / "faulty.jsonl.zst"
    faults = FaultPlan(seed=4, drop=2, duplicate=2, swap=1, not_json=2, bad_price=2, negative_qty=2, resnapshot=1)
    generate_recording(path, venues=("binance",), symbols=("BTC-USDT", "ETH-USDT"), seconds=15, seed=9, faults=faults)
    answered = 0
    for recording in [path, *real_recordings.values()]:
        for raw in read_recording(recording):
            if isinstance(raw, RawEvent) and raw.venue != "okx":
                assert _agree(raw), raw.data[:300]
                answered += decode_typed(raw, normalized_symbol, KLINE_INTERVAL) is not None
    assert answered > 1000  # the typed path really answers most frames


@settings(max_examples=600, deadline=None)
@given(
    sample=st.sampled_from(SAMPLES), combined=st.booleans(), field=st.sampled_from(
        ["e", "E", "s", "U", "u", "b", "a", "B", "A", "t", "p", "q", "T", "m", "M", "f", "l", "k", "extra"]
    ),
    value=json_values, drop=st.booleans(), in_candle=st.booleans(),
)
def test_changed_frames_agree(
    sample: dict, combined: bool, field: str, value: object, drop: bool, in_candle: bool
) -> None:
    payload = orjson.loads(orjson.dumps(sample))
    target = payload["k"] if in_candle and "k" in payload else payload
    if drop:
        target.pop(field, None)
    else:
        target[field] = value
    frame = {"stream": "btcusdt@x", "data": payload} if combined else payload
    assert _agree(_raw(json.dumps(frame, separators=(",", ":"))))  # json: ints past 64 bits too


def test_untouched_samples_take_the_typed_path() -> None:
    for sample in SAMPLES:
        for frame in (sample, {"stream": "btcusdt@x", "data": sample}):
            raw = _raw(orjson.dumps(frame).decode())
            assert decode_typed(raw, normalized_symbol, KLINE_INTERVAL) is not None, frame
            assert _agree(raw)


def _one_by_one(raws: list[RawEvent]) -> list[object]:
    return [decode_typed(raw, normalized_symbol, KLINE_INTERVAL) for raw in raws]


def _by_columns(raws: list[RawEvent]) -> list[object]:
    return decode_typed_chunk(raws, normalized_symbol, KLINE_INTERVAL)


def test_chunks_of_recordings_agree_column_by_column(tmp_path: Path, real_recordings: dict[str, Path]) -> None:
    path = tmp_path / "faulty.jsonl.zst"
    faults = FaultPlan(seed=5, drop=2, duplicate=2, swap=1, not_json=2, bad_price=3, negative_qty=3, resnapshot=1)
    generate_recording(path, venues=("binance",), symbols=("BTC-USDT", "ETH-USDT"), seconds=15, seed=11, faults=faults)
    for recording in [path, *real_recordings.values()]:
        raws = [raw for raw in read_recording(recording) if isinstance(raw, RawEvent) and raw.venue != "okx"]
        for start in range(0, len(raws), 300):
            chunk = raws[start : start + 300]
            assert _by_columns(chunk) == _one_by_one(chunk)


@settings(max_examples=400, deadline=None)
@given(
    samples=st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=8), combined=st.booleans(),
    changed=st.integers(min_value=0, max_value=7), field=st.sampled_from(
        ["e", "E", "s", "U", "u", "b", "a", "B", "A", "t", "p", "q", "T", "m", "M", "f", "l", "k", "extra"]
    ),
    value=json_values, drop=st.booleans(),
)
def test_chunks_with_a_changed_frame_agree_column_by_column(
    samples: list[dict], combined: bool, changed: int, field: str, value: object, drop: bool
) -> None:
    """One frame of a chunk changed: its column may fail a check, and then every frame of
    the column still gets the answer it gets on its own."""
    raws = []
    for at, sample in enumerate(samples):
        payload = orjson.loads(orjson.dumps(sample))
        if at == changed % len(samples):
            if drop:
                payload.pop(field, None)
            else:
                payload[field] = value
        frame = {"stream": "btcusdt@x", "data": payload} if combined else payload
        raws.append(_raw(json.dumps(frame, separators=(",", ":"))))
    assert _by_columns(raws) == _one_by_one(raws)
