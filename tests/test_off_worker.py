"""Heavy work off the collector's worker: REST answers decoded on the source's thread, full
books encoded on the sink's, with nothing changed in what comes out.

The live source is run against the simulator and judged by its truth (the snapshot's
levels at its update id) and by decoding the same text again here; the off-worker sink
is judged by what reaches the sink it wraps, in order, and by when `snapshot` returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import orjson
import pytest
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from connectors.control import InProcessControlBus
from connectors.live_source import LiveSource
from connectors.off_worker_sink import OffWorkerSink
from connectors.recording import event_to_json
from flows.steps import DecodedRawEvent, decode_off_worker, decode_step
from operators.decode import decode
from schemas.publication import Publication
from schemas.raw import RawEvent
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.sim_server_support import wait_for
from tests.source_support import counted, sim_feeds

DEPTH = 100


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimSettings(seed=5)) as thread:
        yield thread


def _until_rest(source: LiveSource, key: str, timeout: float = 15.0) -> tuple[list[RawEvent], RawEvent]:
    """Poll the partition as Bytewax would, until its first REST answer arrives."""
    part = source.build("exchanges", 0, 1)
    seen: list[RawEvent] = []

    def answer() -> RawEvent | None:
        batch = part.next_batch()
        seen.extend(batch)
        return next((event for event in batch if event.kind == "rest"), None)

    try:
        return seen, wait_for(answer, timeout, f"a REST answer from {key}")
    finally:
        part.close()


@pytest.mark.parametrize("key", ["binance:BTC-USDT", "okx:ETH-USDT"])
def test_rest_answers_arrive_decoded_and_decode_as_their_text_does(sim: SimulatorThread, key: str) -> None:
    feeds = sim_feeds(sim, InProcessControlBus(), depth=DEPTH, okx_deep_interval_s=1.0)
    seen, answer = _until_rest(LiveSource([key], feeds, prepare=decode_off_worker), key)

    assert type(answer) is DecodedRawEvent
    assert all(type(event) is RawEvent for event in seen if event.kind != "rest"), "socket messages are not touched"
    plain = RawEvent(answer.recv_ns, answer.venue, answer.conn, answer.kind, answer.symbol, answer.url, answer.data)
    assert answer.decoded == decode(plain)
    assert decode_step(answer) == decode_step(plain)
    assert event_to_json(answer) == event_to_json(plain), "recorded exactly as the answer came"

    venue, _, symbol = key.partition(":")
    body = orjson.loads(answer.data)
    ((_, decoded),) = answer.decoded
    if venue == "binance":
        true_bids, true_asks = sim.truth(venue, symbol).book_at(body["lastUpdateId"], depth=DEPTH)
        assert [tuple(wire) for wire in decoded.bids.wires] == list(true_bids)
        assert [tuple(wire) for wire in decoded.asks.wires] == list(true_asks)
    else:  # books-full has no update id to hold it against: its own text is the truth
        assert decoded.bids.wires == body["data"][0]["bids"] and decoded.asks.wires == body["data"][0]["asks"]


def test_a_failing_prepare_hands_the_answer_over_as_it_came(sim: SimulatorThread, caplog: pytest.LogCaptureFixture) -> None:
    def broken(raw: RawEvent) -> RawEvent:
        raise RuntimeError("broken on purpose")

    key = "binance:ETH-USDT"
    feeds = sim_feeds(sim, InProcessControlBus(), depth=DEPTH)
    before = counted("rest_failures", book=key, outcome="prepare")
    with caplog.at_level(logging.ERROR):
        _, answer = _until_rest(LiveSource([key], feeds, prepare=broken), key)
    assert type(answer) is not DecodedRawEvent and orjson.loads(answer.data)["lastUpdateId"] > 0, "not decoded"
    assert any(f"{key}: preparing a REST answer failed" in record.getMessage() for record in caplog.records)
    assert counted("rest_failures", book=key, outcome="prepare") >= before + 1


# ----- the off-worker sink -----


class _Kept(StatefulSinkPartition[Publication, int]):
    """Keeps what it is given, and on which thread; `gate` holds writes back until set."""

    def __init__(self, gate: threading.Event) -> None:
        self.kept: list[Publication] = []
        self.threads: set[str] = set()
        self.gate = gate
        self.closed = False

    def write_batch(self, values: list[Publication]) -> None:
        self.gate.wait(10)
        self.threads.add(threading.current_thread().name)
        self.kept.extend(values)

    def snapshot(self) -> int:
        return len(self.kept)

    def close(self) -> None:
        self.closed = True


class _KeptSink(FixedPartitionedSink[Publication, int]):
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.part: _Kept | None = None

    def list_parts(self) -> list[str]:
        return ["only"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Kept:
        self.part = _Kept(self.gate)
        return self.part


def _encode(n: int) -> list[Publication]:
    return [Publication(f"orderbook.full.sim.n{n}", str(n).encode(), f"f.{n}")]


def test_the_sink_encodes_on_its_own_thread_in_order_and_snapshot_waits_for_it() -> None:
    inner = _KeptSink()
    part = OffWorkerSink(inner, _encode).build_part("nats_full", "only", None)
    assert inner.part is not None
    part.write_batch([1, 2, 3])
    part.write_batch([4, 5])
    assert inner.part.kept == [], "held back by the gate: the worker did not wait for the writes"

    done = threading.Event()
    snapshot: list[int] = []
    threading.Thread(target=lambda: (snapshot.append(part.snapshot()), done.set())).start()
    assert not done.wait(0.2), "snapshot returned before the items were written through"
    inner.gate.set()
    assert done.wait(10)
    assert snapshot == [5], "the wrapped sink had all five when the epoch ended"
    assert [pub.data for pub in inner.part.kept] == [b"1", b"2", b"3", b"4", b"5"]
    assert inner.part.threads == {"encode nats_full"}
    part.close()
    assert inner.part.closed


def test_a_failed_encoding_stops_the_flow_with_the_cause() -> None:
    inner = _KeptSink()
    inner.gate.set()

    def encode(n: int) -> list[Publication]:
        if n == 2:
            raise ValueError("cannot encode 2")
        return _encode(n)

    part = OffWorkerSink(inner, encode).build_part("nats_full", "only", None)
    part.write_batch([1])
    part.write_batch([2])
    with pytest.raises(RuntimeError, match="encoding or writing failed") as failure:
        part.snapshot()
    assert isinstance(failure.value.__cause__, ValueError)
    assert inner.part is not None and [pub.data for pub in inner.part.kept] == [b"1"]
