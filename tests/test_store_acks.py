"""The store's JetStream source acks through whatever connection it has now: a reconnect
between a message's delivery and its batch's commit must not leave the ack to a redelivery
(which may never come, and then the sink's writer and every later batch wait forever)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats

from connectors.acks import AckLedger
from connectors.jetstream import connect, ensure_streams
from connectors.jetstream_source import ConsumerLimits, JetStreamSource
from connectors.nats_server import EmbeddedNatsServer
from operators.routing import publications
from schemas.events import Trade
from schemas.streams import NatsAuth, StreamSettings

STREAM = "MARKET_TRADES"


async def _publish_trades(url: str, n: int, streams: StreamSettings) -> None:
    client = await connect(url, auth=NatsAuth(), name="test")
    js = client.jetstream()
    await ensure_streams(js, streams)
    for i in range(n):
        trade = Trade("binance", "BTC-USDT", str(i), "100.5", "0.1", "buy", 1_764_583_200_000 + i,
                      1_764_583_200_000_000_000 + i * 1000)
        for pub in publications(trade):
            await js.publish(pub.subject, pub.data, headers={"Nats-Msg-Id": pub.msg_id})
    await client.close()


async def _ack_pending(url: str, durable: str) -> int:
    client = await nats.connect(url)
    try:
        info = await client.jetstream().consumer_info(STREAM, durable)
        return info.num_ack_pending + info.num_pending
    finally:
        await client.close()


def _take(part, until, timeout_s: float = 20.0) -> list:  # type: ignore[no-untyped-def]
    got: list = []
    deadline = time.monotonic() + timeout_s
    while not until(got):
        assert time.monotonic() < deadline, f"timed out; got {len(got)} items"
        got.extend(part.next_batch())
        time.sleep(0.02)
    return got


def test_a_batch_committed_after_a_reconnect_is_acked_at_once_and_nothing_is_emitted_twice(tmp_path: Path) -> None:
    streams = StreamSettings()
    ledger = AckLedger()
    with EmbeddedNatsServer(tmp_path / "nats") as server:
        asyncio.run(_publish_trades(server.url, 20, streams))
        source = JetStreamSource(server.url, ledger=ledger, streams=streams, durable_prefix="acks-test",
                                 limits=ConsumerLimits(ack_wait_s=30.0))
        part = source.build_part("jetstream", STREAM, None)
        try:
            items = _take(part, lambda got: len(got) >= 20)
            assert sorted(i.seq for i in items) == list(range(1, 21))
            assert all(isinstance(reply, str) for reply in part._in_flight.values()), "held messages keep no payload"
            old = part._nc
            asyncio.run_coroutine_threadsafe(old.close(), part._loop).result(5)  # the consumer reconnects
            _take(part, lambda _: part._nc is not None and part._nc is not old and part._nc.is_connected)
            ticket = ledger.committed({STREAM: [i.seq for i in items]})
            started = time.monotonic()
            more = _take(part, lambda _: ticket.done.is_set())
            assert time.monotonic() - started < 10.0, "acked through the new connection, not after ack_wait (30 s)"
            assert more == [], "nothing emitted twice"
            assert asyncio.run(_ack_pending(server.url, f"acks-test-{STREAM}")) == 0
        finally:
            part.close()
