"""Stricter OKX, read back from NATS: a seqId chain that loses its seqId is a fault, and
deep levels from books-full never outlive the book they were merged with, nor their age."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from connectors.nats_server import EmbeddedNatsServer
from connectors.recording import RecordingWriter
from flows.replay import run_replay
from schemas.raw import RawEvent
from tests.live_support import read_streams
from tests.streams import RefBook, okx_checksum_naive

T0 = 1_717_200_000_000_000_000
MS = 1_000_000
FULL_URL = "https://www.okx.com/api/v5/market/books-full?instId=BTC-USDT&sz=5000"
LIVE_BIDS = {f"{90_000 - i}.5": "1" for i in range(400)}
LIVE_ASKS = {f"{90_001 + i}.5": "1" for i in range(400)}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedNatsServer]:
    monkeypatch.setenv("MARKETPRISM_REPLAY_SPILL_DIR", str(tmp_path / "spill"))
    with EmbeddedNatsServer(tmp_path / "nats") as running:
        yield running


class OkxFeed:
    """The exchange's side: its book, and every frame it sends, with receive times."""

    def __init__(self) -> None:
        self.book = RefBook(LIVE_BIDS, LIVE_ASKS)
        self.frames: list[RawEvent] = []

    def _books(self, at_ms: int, action: str, bids: dict[str, str], asks: dict[str, str], **ids: int | None) -> None:
        levels = [[[p, q, "0", "1"] for p, q in side.items()] for side in (bids, asks)]
        entry = {"bids": levels[0], "asks": levels[1], "ts": str(T0 // MS + at_ms), "checksum": okx_checksum_naive(self.book)}
        entry.update({name: value for name, value in ids.items() if value is not None})
        frame = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [entry]}
        self.frames.append(RawEvent(T0 + at_ms * MS, "okx", "c1", "ws", None, None, orjson.dumps(frame).decode()))

    def snapshot(self, at_ms: int, seq: int) -> None:
        self.book = RefBook(LIVE_BIDS, LIVE_ASKS)
        self._books(at_ms, "snapshot", LIVE_BIDS, LIVE_ASKS, seqId=seq, prevSeqId=-1)

    def update(self, at_ms: int, quantity: str, seq: int | None, prev: int | None) -> None:
        self.book = self.book.applied([["90000.5", quantity]], [])
        self._books(at_ms, "update", {"90000.5": quantity}, {}, seqId=seq, prevSeqId=prev)

    def books_full(self, at_ms: int) -> None:
        bids = [[f"{90_000 - i}.5", "2", "1"] for i in range(1000)]
        asks = [[f"{90_001 + i}.5", "2", "1"] for i in range(1000)]
        answer = {"code": "0", "msg": "", "data": [{"bids": bids, "asks": asks, "ts": str(T0 // MS + at_ms)}]}
        self.frames.append(RawEvent(T0 + at_ms * MS, "okx", "rest", "rest", "BTC-USDT", FULL_URL, orjson.dumps(answer).decode()))


def _replayed(feed: OkxFeed, tmp_path: Path, url: str) -> dict[str, list]:
    recording = tmp_path / "okx.jsonl"
    with RecordingWriter(recording) as writer:
        for frame in feed.frames:
            writer.write(frame)
    run_replay([recording], nats_url=url, full_interval_ms=1000, depth=1000)
    return read_streams(url, ("ORDERBOOK_FULL", "MARKET_DATA"))


def test_an_update_without_seq_id_after_a_sequenced_snapshot_is_a_fault(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    feed = OkxFeed()
    feed.snapshot(0, seq=10)
    feed.update(100, "2", seq=11, prev=10)
    feed.update(200, "3", seq=None, prev=None)  # the chain loses its ids: not a message to trust
    feed.update(300, "4", seq=13, prev=12)  # ignored: the book waits for a new snapshot
    feed.snapshot(400, seq=20)
    stored = _replayed(feed, tmp_path, server.url)
    quality = [(event["kind"], event["update_id"]) for _, event, _ in stored["market.okx.btc-usdt.quality"]]
    assert quality == [("in_sync", 10), ("missing_seq_id", 11), ("out_of_sync", 11), ("in_sync", 20)]
    fulls = [(full["update_type"], full["last_update_id"]) for _, full, _ in stored["orderbook.full.okx.btc-usdt"]]
    assert fulls == [("snapshot", 10), ("snapshot", 20)]


def test_deep_levels_go_with_a_fault_a_new_snapshot_and_age(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    feed = OkxFeed()
    feed.snapshot(0, seq=10)
    feed.books_full(100)
    feed.update(1_000, "2", seq=11, prev=10)  # full book: 400 live + 600 deep, 900 ms old
    feed.snapshot(1_100, seq=30)  # a new subscription's snapshot: the deep levels were merged with the old book
    feed.update(2_100, "3", seq=31, prev=30)  # full book: live levels only
    feed.books_full(2_200)
    feed.update(3_100, "4", seq=32, prev=31)  # full book: deep levels again, 900 ms old
    feed.update(9_000, "5", seq=33, prev=32)  # 6.8 s later: too old to publish (limit 5 s)
    feed.books_full(9_100)
    feed.update(9_200, "6", seq=35, prev=34)  # a gap: fault, book and deep levels dropped
    feed.snapshot(9_300, seq=40)
    feed.update(10_300, "7", seq=41, prev=40)  # full book: live only, the books-full before the fault is gone
    stored = _replayed(feed, tmp_path, server.url)
    fulls = [
        (full["last_update_id"], len(full["bids"]), {level.get("age_ms") for level in full["bids"][400:]})
        for _, full, _ in stored["orderbook.full.okx.btc-usdt"]
    ]
    assert fulls == [
        (10, 400, set()), (11, 1000, {900}), (30, 400, set()), (31, 400, set()), (32, 1000, {900}),
        (33, 400, set()), (40, 400, set()), (41, 400, set()),
    ]
