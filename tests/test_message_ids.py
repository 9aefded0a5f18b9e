"""Message ids against a real nats-server: every different message stored, every repeat dropped.

JetStream drops a message whose `Nats-Msg-Id` it saw within the duplicate window, without
an error. So these tests replay recordings (built here, or the real captures) into a
server on 127.0.0.1 and count what the streams hold, against counts taken from the
recordings themselves: each distinct message once, however often it is replayed, and no
message lost because another one happened to share its exchange id.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest

from connectors.nats import NatsJetStreamSink
from connectors.nats_server import EmbeddedNatsServer
from connectors.recording import RecordingWriter
from flows.replay import run_replay
from operators.routing import publications
from schemas.events import BookFull, QualityEvent
from schemas.raw import RawEvent
from schemas.streams import StreamSettings
from tests.conftest import REAL_DATA
from tests.streams import RefBook, okx_checksum_naive

STREAMS = ("ORDERBOOK_FULL", "ORDERBOOK_DELTA", "MARKET_TRADES", "MARKET_DATA")
START_NS = 1_700_000_000_000_000_000
STEP_NS = 100_000_000
NEVER_MS = 10**9  # a full interval no test recording reaches: full books only at snapshots
Stored = dict[str, list[tuple[bytes, str]]]


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("USER", "PASSWORD", "TOKEN", "CREDS_FILE", "DUPLICATE_WINDOW_S"):
        monkeypatch.delenv(f"MARKETPRISM_NATS_{name}", raising=False)
    monkeypatch.setenv("MARKETPRISM_REPLAY_SPILL_DIR", str(tmp_path / "spill"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    with EmbeddedNatsServer(tmp_path / "nats") as running:
        yield running


def read_streams(url: str) -> Stored:
    """Every stored message as (payload, Nats-Msg-Id), by subject, in stream order."""

    async def read() -> Stored:
        client = await nats.connect(url, allow_reconnect=False)
        try:
            js = client.jetstream()
            found: Stored = {}
            for name in STREAMS:
                state = (await js.stream_info(name)).state
                for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
                    msg = await js.get_msg(name, seq)
                    found.setdefault(msg.subject, []).append((msg.data, msg.headers["Nats-Msg-Id"]))
            return found
        finally:
            await client.close()

    return asyncio.run(read())


def counts(stored: Stored) -> dict[str, int]:
    return {subject_: len(messages) for subject_, messages in stored.items()}


def assert_ids_are_distinct_and_name_their_bytes(stored: Stored) -> None:
    """Every id is stored once; it ends in its payload's digest, or for a trade (which its
    venue's trade id names) and a kline (its open time and push) it is that name."""
    ids = Counter(msg_id for messages in stored.values() for _, msg_id in messages)
    assert max(ids.values()) == 1
    for messages in stored.values():
        for data, msg_id in messages:
            event = orjson.loads(data)
            if event["event_type"] == "trade":
                assert msg_id.endswith(f".{event['trade_id']}")
            elif event["event_type"] != "kline":
                assert msg_id.endswith(f".{zlib.crc32(data):08x}")


def replay(recording: Path, url: str, full_interval_ms: int = NEVER_MS, out: Path | None = None) -> None:
    run_replay([recording], out=out, nats_url=url, full_interval_ms=full_interval_ms, depth=50)


# -- recordings built here -----------------------------------------------------------------


def okx_book_frame(action: str, book: RefBook, bids: list[list[str]], asks: list[list[str]], **ids: int) -> str:
    entry: dict[str, Any] = {"bids": bids, "asks": asks, "ts": "1700000000000", "checksum": okx_checksum_naive(book), **ids}
    return orjson.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [entry]}).decode()


def write_okx(path: Path, frames: list[str]) -> Path:
    with RecordingWriter(path) as writer:
        for number, frame in enumerate(frames):
            writer.write(RawEvent(START_NS + number * STEP_NS, "okx", "c1", "ws", None, None, frame))
    return path


class OkxBook:
    """The exchange's side of a constructed recording: a RefBook and the frames that built it."""

    def __init__(self) -> None:
        self.book = RefBook()
        self.frames: list[str] = []

    def snapshot(self, bids: dict[str, str], asks: dict[str, str], **ids: int) -> None:
        self.book = RefBook(bids, asks)
        levels = [[[p, q, "0", "1"] for p, q in side.items()] for side in (bids, asks)]
        self.frames.append(okx_book_frame("snapshot", self.book, *levels, **ids))

    def update(self, bid: str, quantity: str, **ids: int) -> None:
        level = [bid, quantity, "0", "1"]
        self.book = self.book.applied([level], [])
        self.frames.append(okx_book_frame("update", self.book, [level], [], **ids))


def test_a_sequence_reset_that_repeats_seq_ids_stores_every_update(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    """seqId < prevSeqId is a legal reset; the ids after it repeat earlier ones, content differs."""
    okx = OkxBook()
    okx.snapshot({"99": "1"}, {"101": "1"}, seqId=100, prevSeqId=-1)
    sent = []
    for seq in range(101, 106):
        okx.update("99", f"{seq - 99}", seqId=seq, prevSeqId=seq - 1)
        sent.append((seq, f"{seq - 99}"))
    okx.update("98", "7", seqId=101, prevSeqId=105)  # the reset: seqId 101 again
    sent.append((101, "7"))
    for seq in range(102, 106):
        okx.update("98", f"{seq}", seqId=seq, prevSeqId=seq - 1)
        sent.append((seq, f"{seq}"))
    recording = write_okx(tmp_path / "reset.jsonl", okx.frames)

    for _ in range(2):  # the second replay of one recording adds nothing
        replay(recording, server.url)
        stored = read_streams(server.url)
        pure = [orjson.loads(data) for data, _ in stored["orderbook.pure_delta.okx.btc-usdt"]]
        assert [(d["update_id"], d["bid_updates"][0]["quantity"]) for d in pure] == sent
        assert len(stored["orderbook.delta.okx.btc-usdt"]) == len(sent)
        assert len(stored["orderbook.full.okx.btc-usdt"]) == len(stored["orderbook.snapshot.okx.btc-usdt"]) == 1
        assert_ids_are_distinct_and_name_their_bytes(stored)


def test_a_recording_without_seq_ids_stores_every_full_book_and_update(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    """OKX `books` before 2022: no seqId at all, and updates may share an exchange time."""
    okx = OkxBook()
    snapshots = updates = 0
    for round_ in range(4):
        okx.snapshot({"99": "1", "98": str(round_ % 2 + 1)}, {"101": "1"})  # rounds 0 and 2 alike
        snapshots += 1
        for quantity in ("2", "3"):
            okx.update("97", quantity)
            updates += 1
    recording = write_okx(tmp_path / "no_seq.jsonl", okx.frames)

    for _ in range(2):
        replay(recording, server.url)
        stored = read_streams(server.url)
        assert counts(stored) == {
            "orderbook.full.okx.btc-usdt": snapshots,
            "orderbook.snapshot.okx.btc-usdt": snapshots,
            "orderbook.delta.okx.btc-usdt": updates,
            "orderbook.pure_delta.okx.btc-usdt": updates,
            # in_sync once, then each later snapshot replaces a book in sync: a `resync` each
            "market.okx.btc-usdt.quality": snapshots,
        }
        assert_ids_are_distinct_and_name_their_bytes(stored)


def test_two_tickers_received_together_are_both_stored(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    """OKX tickers carry no update id; one push (one receive time) may hold two of them."""

    def ticker(bid: str) -> dict[str, str]:
        return {"instId": "BTC-USDT", "bidPx": bid, "bidSz": "1", "askPx": "101", "askSz": "2", "last": "100", "ts": "1700000000000"}

    frames = [
        orjson.dumps({"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": [ticker("99"), ticker("99.5")]}).decode(),
        orjson.dumps({"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": [ticker("99.5")]}).decode(),
    ]
    recording = write_okx(tmp_path / "tickers.jsonl", frames)
    for _ in range(2):
        replay(recording, server.url)
        stored = read_streams(server.url)
        bids = [orjson.loads(data)["best_bid_price"] for data, _ in stored["market.okx.btc-usdt.ticker"]]
        assert bids == ["99", "99.5", "99.5"]
        assert_ids_are_distinct_and_name_their_bytes(stored)


def test_rejected_messages_reach_the_quality_subject_once_each(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    okx = OkxBook()
    okx.snapshot({"99": "1"}, {"101": "1"}, seqId=1, prevSeqId=-1)
    bad = okx_book_frame("update", okx.book, [["9007199254740993", "1", "0", "1"]], [], seqId=2, prevSeqId=1)
    recording = write_okx(tmp_path / "bad.jsonl", [*okx.frames, bad, bad])  # the same text, received twice
    for _ in range(2):
        replay(recording, server.url)
        stored = read_streams(server.url)
        quality = [orjson.loads(data) for data, _ in stored["market.okx.btc-usdt.quality"]]
        assert [(event["kind"], event["symbol_name"]) for event in quality] == [
            ("in_sync", "BTC-USDT"), ("rejected", "BTC-USDT"), ("rejected", "BTC-USDT")
        ]
        quality = quality[1:]
        assert "significant digits" in quality[0]["detail"]
        assert_ids_are_distinct_and_name_their_bytes(stored)


# -- what the lead's audits and state events will publish ------------------------------------


def full_book(bids: list[list[str]], recv_ns: int) -> BookFull:
    return BookFull(
        "binance", "BTC-USDT", "snapshot", 500, None, None, None, bids, [["101", "1"]], None, True, [], 1_700_000_000_000, recv_ns,
        snapshot_slot_start=True,
    )


def test_corrected_books_and_state_events_of_one_moment_each_get_their_own_id(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    """A book republished at the same update id with other levels, in_sync and out_of_sync at
    one receive time, a venue-wide event: all different messages, all stored, each once."""
    events: list[object] = [
        full_book([["99", "1"]], START_NS),
        full_book([["99", "2"]], START_NS),  # the audit's correction, same update id and time
        QualityEvent("binance", "BTC-USDT", "out_of_sync", "audit mismatch at 500", 500, START_NS),
        QualityEvent("binance", "BTC-USDT", "in_sync", "resynced at 500", 500, START_NS),
        QualityEvent("binance", None, "silent", "no message for 30 s", None, START_NS),
    ]
    pubs = [pub for event in events for pub in publications(event)]
    sink = NatsJetStreamSink(server.url, StreamSettings(), tmp_path / "spill")
    for _ in range(2):  # published again, as after a restart
        part = sink.build_part("nats_out", "nats", None)
        part.write_batch(pubs)
        part.close()
    stored = read_streams(server.url)
    assert counts(stored) == {
        "orderbook.full.binance.btc-usdt": 2,
        "orderbook.snapshot.binance.btc-usdt": 2,
        "market.binance.btc-usdt.quality": 2,
        "market.binance.-.quality": 1,
    }
    kinds = [orjson.loads(data)["kind"] for data, _ in stored["market.binance.btc-usdt.quality"]]
    assert kinds == ["out_of_sync", "in_sync"]
    assert_ids_are_distinct_and_name_their_bytes(stored)


# -- the real 2022 OKX capture -------------------------------------------------------------------


def _okx_capture_entries() -> Counter[tuple[str, str]]:
    """(channel, instId) -> data entries, read from the raw capture without our code."""
    found: Counter[tuple[str, str]] = Counter()
    for line in (REAL_DATA / "OKX.ws.1.0").read_text().splitlines():
        if "{" not in line:
            continue
        frame = orjson.loads(line[line.index("{"):])  # "<time>: <frame>", or what we sent
        if "data" in frame and "arg" in frame:
            found[(frame["arg"]["channel"], frame["arg"]["instId"])] += len(frame["data"])
    return found


def test_the_real_okx_capture_is_stored_whole_and_once(
    server: EmbeddedNatsServer, real_recordings: dict[str, Path], tmp_path: Path
) -> None:
    """2022 OKX: no seqId anywhere, so every full book used to share one id per book."""
    entries = _okx_capture_entries()
    out = tmp_path / "events.jsonl"
    replay(real_recordings["okx"], server.url, full_interval_ms=250, out=out)
    first = read_streams(server.url)
    replay(real_recordings["okx"], server.url, full_interval_ms=250)
    assert read_streams(server.url) == first
    assert_ids_are_distinct_and_name_their_bytes(first)
    emitted = Counter(
        (event["event_type"], event["symbol_name"].lower()) for event in map(orjson.loads, out.read_bytes().splitlines())
    )
    for (channel, inst), n in entries.items():
        symbol = inst.lower()
        if channel == "books":
            snapshots = 1  # each book was subscribed once
            assert len(first[f"orderbook.pure_delta.okx.{symbol}"]) == len(first[f"orderbook.delta.okx.{symbol}"]) == n - snapshots
            fulls = len(first[f"orderbook.full.okx.{symbol}"])
            assert fulls == emitted[("orderbook", symbol)] > snapshots
        elif channel == "trades":
            assert len(first[f"market.okx.{symbol}.trade"]) == n
        else:
            assert len(first[f"market.okx.{symbol}.ticker"]) == n
