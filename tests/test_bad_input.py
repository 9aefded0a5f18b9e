"""Bad input is refused with a clear reason, counted, and the replay goes on."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from connectors.recording import RecordingWriter
from flows.replay import run_replay
from operators.wire import MAX_FRAME_BYTES
from schemas.raw import RawEvent

T0 = 1_717_200_000_000_000_000  # 2024-06-01T00:00:00Z in ns
SNAPSHOT_URL = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000"


def _depth(first: int, last: int, bids: list, asks: list, ms: int = 1_717_200_000_100) -> str:
    data = {"e": "depthUpdate", "E": ms, "s": "BTCUSDT", "U": first, "u": last, "b": bids, "a": asks}
    return orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data}).decode()


def _okx_book(action: str, bids: list, asks: list, seq: int, prev: int) -> str:
    entry = {"bids": bids, "asks": asks, "ts": "1717200000100", "checksum": 0, "seqId": seq, "prevSeqId": prev}
    return orjson.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [entry]}).decode()


def _write(path: Path, messages: list[tuple[str, str, str | None, str]]) -> Path:
    with RecordingWriter(path) as writer:
        for index, (venue, kind, symbol, data) in enumerate(messages):
            url = SNAPSHOT_URL if kind == "rest" else None
            writer.write(RawEvent(T0 + index * 100_000_000, venue, "c1", kind, symbol, url, data))
    return path


def _kline(high: str) -> str:
    candle = {"t": 1_717_200_000_000, "T": 1_717_200_059_999, "s": "BTCUSDT", "i": "1m", "f": 1, "L": 2, "o": "90000.00",
              "c": "90001.00", "h": high, "l": "89999.00", "v": "0.5", "n": 2, "x": False, "q": "45000.25"}
    return orjson.dumps({"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1_717_200_000_100, "s": "BTCUSDT", "k": candle}}).decode()


def _okx_candle(confirm: str) -> str:
    row = ["1717200000000", "90000", "90002", "89999", "90001", "0.5", "45000.25", "45000.25", confirm]
    return orjson.dumps({"arg": {"channel": "candle1m", "instId": "BTC-USDT"}, "data": [row]}).decode()


GOOD_BINANCE = [
    ("binance", "ws", None, _depth(100, 101, [["90000.00", "1.5"]], [])),
    ("binance", "rest", "BTC-USDT", orjson.dumps({"lastUpdateId": 100, "bids": [["89999.99", "2"]], "asks": [["90000.01", "3"]]}).decode()),
]

BAD = {
    "malformed JSON": ("binance", "ws", None, '{"stream": "btcusdt@depth@100ms", "data": {"e": '),
    "missing field": ("binance", "ws", None, orjson.dumps({"stream": "x", "data": {"e": "depthUpdate", "s": "BTCUSDT", "u": 5, "b": [], "a": []}}).decode()),
    "non-numeric price": ("binance", "ws", None, _depth(102, 102, [["abc", "1"]], [])),
    "negative quantity": ("binance", "ws", None, _depth(102, 102, [["90000.00", "-1"]], [])),
    "nan price": ("binance", "ws", None, _depth(102, 102, [["nan", "1"]], [])),
    "oversized frame": ("binance", "ws", None, " " * (MAX_FRAME_BYTES + 1)),
    "unknown channel": ("binance", "ws", None, orjson.dumps({"stream": "x", "data": {"e": "weird", "s": "BTCUSDT"}}).decode()),
    "absurd timestamp": ("binance", "ws", None, _depth(102, 102, [["90000.00", "1"]], [], ms=42)),
    "okx bad size": ("okx", "ws", None, _okx_book("update", [["90000", "x", "0", "1"]], [], 2, 1)),
    "okx unknown channel": ("okx", "ws", None, orjson.dumps({"arg": {"channel": "nope", "instId": "BTC-USDT"}, "data": [{}]}).decode()),
    "kline high below its close": ("binance", "ws", None, _kline(high="90000.50")),
    "okx candle confirm": ("okx", "ws", None, _okx_candle(confirm="yes")),
}

EXPECTED_REASON = {
    "malformed JSON": "malformed JSON",
    "missing field": "field 'U'",
    "non-numeric price": "not a decimal string",
    "negative quantity": "not a non-negative decimal string",
    "nan price": "not a decimal string",
    "oversized frame": "oversized frame",
    "unknown channel": "unknown channel",
    "absurd timestamp": "absurd exchange time",
    "okx bad size": "not a non-negative decimal string",
    "okx unknown channel": "unknown channel",
    "kline high below its close": "kline prices out of order",
    "okx candle confirm": "candle confirm must be '0' or '1'",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_message_is_rejected_counted_and_replay_continues(case: str, tmp_path: Path) -> None:
    okx_snapshot = ("okx", "ws", None, _okx_book("snapshot", [["89999", "1", "0", "1"]], [["90001", "1", "0", "1"]], 1, -1))
    okx_next = ("okx", "ws", None, _okx_book("update", [["89998", "4", "0", "1"]], [], 2, 1))
    after = ("binance", "ws", None, _depth(102, 103, [["89999.50", "0.1"]], []))
    messages = [*GOOD_BINANCE, okx_snapshot, BAD[case], after, okx_next]
    report = run_replay([_write(tmp_path / "r.jsonl", messages)])

    errors = report["errors"]
    assert len(errors) == 1 and EXPECTED_REASON[case] in errors[0], errors
    rejected = sum(book["rejected"] for book in report["books"].values())
    named = BAD[case][2] is not None or case not in ("malformed JSON", "oversized frame")
    assert rejected == (1 if named else 0)
    # The replay went on: the message after the bad one was applied to both books.
    assert report["books"]["binance:BTC-USDT"]["last_update_id"] == 103
    assert report["books"]["binance:BTC-USDT"]["best_bid"] == "90000.00"
    assert report["books"]["okx:BTC-USDT"]["last_update_id"] == 2


def test_rejected_diff_breaks_the_chain_and_forces_a_resync(tmp_path: Path) -> None:
    """A refused increment is a missing increment: the next one is a gap, never applied blindly."""
    messages = [
        *GOOD_BINANCE,
        ("binance", "ws", None, _depth(102, 102, [["abc", "1"]], [])),
        ("binance", "ws", None, _depth(103, 103, [["89999.50", "0.1"]], [])),
    ]
    report = run_replay([_write(tmp_path / "r.jsonl", messages)])
    book = report["books"]["binance:BTC-USDT"]
    assert (book["rejected"], book["gaps"], book["resyncs"]) == (1, 1, 1)
    assert book["best_bid"] is None and book["bid_levels"] is None
    assert any("gap: expected U=102, got U=103" in e for e in report["errors"])


def test_damaged_recording_lines_are_reported(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", GOOD_BINANCE)
    with open(path, "ab") as out:
        out.write(b"this is not json\n")
        out.write(b'{"recv_ns": "soon", "venue": "binance", "kind": "ws", "data": "{}"}\n')
        out.write(b'{"recv_ns": 1, "venue": "kraken", "kind": "ws", "data": "{}"}\n')
    report = run_replay([path])
    assert len(report["errors"]) == 3
    assert any("not JSON" in e for e in report["errors"])
    assert any("recv_ns must be a non-negative integer" in e for e in report["errors"])
    assert any("unknown venue 'kraken'" in e for e in report["errors"])
    assert report["books"]["binance:BTC-USDT"]["snapshots"] == 1
