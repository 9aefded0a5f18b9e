"""OKX 5000-level books: the live 400 from `books`, deeper levels from REST books-full, aged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from connectors.recording import RecordingWriter
from flows.replay import run_replay
from schemas.raw import RawEvent

T0 = 1_717_200_000_000_000_000
FULL_URL = "https://www.okx.com/api/v5/market/books-full?instId=BTC-USDT&sz=5000"


def _levels(start: int, step: int, count: int) -> list[list[str]]:
    return [[f"{start + step * i}.5", "1.25", "0", "2"] for i in range(count)]


def _replay_with_books_full(
    tmp_path: Path, answers: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A live snapshot (400 levels a side), the books-full answers (50 ms apart, after it),
    then a quiet update (a level far out in the live window changes size) a second later
    that brings the periodic full book: (the full books, the report)."""
    snapshot = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "snapshot",
                "data": [{"bids": _levels(89_999, -1, 400), "asks": _levels(90_001, 1, 400), "ts": "1717200000500",
                          "checksum": 0, "seqId": 10, "prevSeqId": -1}]}
    update = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
              "data": [{"bids": [["89600.5", "1.25", "0", "3"]], "asks": [], "ts": "1717200001250", "checksum": 0,
                        "seqId": 11, "prevSeqId": 10}]}
    recording = tmp_path / "okx.jsonl"
    with RecordingWriter(recording) as writer:
        writer.write(RawEvent(T0, "okx", "ws", "ws", None, None, orjson.dumps(snapshot).decode()))
        for i, answer in enumerate(answers):
            writer.write(RawEvent(T0 + (250 + 50 * i) * 1_000_000, "okx", "rest", "rest", "BTC-USDT", FULL_URL,
                                  orjson.dumps(answer).decode()))
        writer.write(RawEvent(T0 + 1_000_000_000, "okx", "ws", "ws", None, None, orjson.dumps(update).decode()))
    out = tmp_path / "events.jsonl"
    report = run_replay([recording], out=out, depth=1000)
    fulls = [event for line in out.read_bytes().splitlines() if (event := orjson.loads(line))["event_type"] == "orderbook"]
    return fulls, report


def _answer(bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": [{"bids": bids, "asks": asks, "ts": "1717200000000"}]}


def test_full_book_is_live_window_plus_aged_deep_levels(tmp_path: Path) -> None:
    live_bids = _levels(89_999, -1, 400)  # the snapshot's
    deep_bids = [level[:3] for level in _levels(89_999, -1, 1200)]
    deep_asks = [level[:3] for level in _levels(90_001, 1, 1200)]
    deep_bids[10][1] = "9.99"  # inside the live window: the live value must win
    # books-full taken after the snapshot (an older answer would be dropped with the old book)
    fulls, report = _replay_with_books_full(tmp_path, [_answer(deep_bids, deep_asks)])

    assert [(b["update_type"], b["last_update_id"], len(b["bids"])) for b in fulls] == [("snapshot", 10, 400), ("full_refresh", 11, 1000)]
    book = fulls[1]
    assert len(book["bids"]) == len(book["asks"]) == 1000
    assert book["depth_levels"] == 2000
    live, deep = book["bids"][:400], book["bids"][400:]
    assert [level["price"] for level in live] == [level[0] for level in live_bids]
    assert all("age_ms" not in level for level in live) and live[10]["quantity"] == "1.25"
    assert [level["price"] for level in deep] == [level[0] for level in deep_bids[400:1000]]
    assert {level["age_ms"] for level in deep} == {750}
    assert book["asks"][400]["price"] == "90401.5"
    assert report["books"]["okx:BTC-USDT"]["bid_levels"] == 400  # the report counts what the live channel keeps


def test_books_full_sides_out_of_order_are_refused_and_the_earlier_answer_kept(tmp_path: Path) -> None:
    good_bids = [level[:3] for level in _levels(89_999, -1, 600)]
    good_asks = [level[:3] for level in _levels(90_001, 1, 600)]
    swapped = [list(level) for level in good_bids]
    swapped[450], swapped[451] = swapped[451], swapped[450]  # 89548.5 before 89549.5: a bid side must descend
    repeated = [list(level) for level in good_asks]
    repeated[500] = list(repeated[499])  # 90500.5 twice
    fulls, report = _replay_with_books_full(
        tmp_path, [_answer(good_bids, good_asks), _answer(swapped, good_asks), _answer(good_bids, repeated)])

    book = fulls[-1]
    assert book["last_update_id"] == 11
    # The deep levels shown are the first answer's, in its order, aged from it (750 ms before the update).
    assert [level["price"] for level in book["bids"][400:]] == [level[0] for level in good_bids[400:600]]
    assert [level["price"] for level in book["asks"][400:]] == [level[0] for level in good_asks[400:600]]
    assert {level["age_ms"] for level in book["bids"][400:] + book["asks"][400:]} == {750}
    assert report["books"]["okx:BTC-USDT"]["rejected"] == 2
    errors = [error for error in report["errors"] if "books-full" in error]
    assert len(errors) == 2
    assert any("bids out of order: level 451 at price '89549.5' after '89548.5'" in error for error in errors)
    assert any("asks out of order: level 500 at price '90500.5' after '90500.5'" in error for error in errors)
