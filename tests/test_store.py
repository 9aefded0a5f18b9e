"""The store dataflow: JSON back to rows, exactly once across kill -9, lost stretches marked,
feature rows stored as published."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from connectors.clickhouse_backend import ChdbBackend, read_events
from connectors.jetstream import connect, ensure_streams
from connectors.nats_server import EmbeddedNatsServer
from operators.features.publish import feature_publication
from operators.routing import publications
from schemas.clickhouse import FEATURES
from schemas.clickhouse_rows import to_batches
from schemas.decoding import event_from_message
from schemas.events import Trade
from schemas.features import FeatureRow
from schemas.publication import Publication
from schemas.streams import NatsAuth, StreamSettings
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.clickhouse_support import chdb_dir, feature_rows, recording, replay
from tests.live_support import read_streams, store_from
from tests.store_support import (
    acked, assert_stored_exactly_once, flow_env, kill_flows, run_flow, stream_counts, wait_for,
)


@pytest.fixture(autouse=True)
def _no_flow_left_behind():
    """A failed test must not leave a collector or store running."""
    yield
    kill_flows()


def _without_ns_digits(batches: dict) -> dict:
    """The JSON carries receive times to the microsecond (feature rows: to the ns, as integers)."""
    for name, batch in batches.items():
        if name != FEATURES.name:
            batch["collected_at"] = [ns // 1000 * 1000 for ns in batch["collected_at"]]
    return batches


def _messages(event: object) -> list[Publication]:
    return [feature_publication(event)] if isinstance(event, FeatureRow) else publications(event)


def test_every_stored_subject_reads_back_as_the_rows_of_its_event() -> None:
    events = replay(recording(seconds=4))
    events += feature_rows(events)
    decoded = [e for event in events for p in _messages(event) if (e := event_from_message(p.subject, p.data))]
    assert to_batches(decoded) == _without_ns_digits(to_batches(events))
    assert FEATURES.name in to_batches(decoded)


def _trades(first: int, n: int) -> list:
    return [Trade("binance", "BTC-USDT", str(i), "100.5", "0.1", "buy", 1_764_583_200_000 + i,
                  1_764_583_200_000_000_000 + i * 1000) for i in range(first, first + n)]


async def _publish(url: str, events: list, streams: StreamSettings) -> None:
    client = await connect(url, auth=NatsAuth(), name="test")
    js = client.jetstream()
    await ensure_streams(js, streams)
    for event in events:
        for pub in _messages(event):
            await js.publish(pub.subject, pub.data, headers={"Nats-Msg-Id": pub.msg_id})
    await client.close()


def test_a_stretch_the_stream_discarded_before_the_store_read_it_is_stored_as_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = "store_gap"
    monkeypatch.setenv("MARKETPRISM_NATS_MARKET_TRADES__MAX_MSGS", "50")  # the store applies the same limits
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH", str(chdb_dir()))
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_DATABASE", database)
    streams = StreamSettings()
    with EmbeddedNatsServer(tmp_path / "nats") as server:
        asyncio.run(_publish(server.url, _trades(1, 30), streams))
        store_from(server.url, tmp_path)
        asyncio.run(_publish(server.url, _trades(31, 100), streams))  # the stream keeps sequences 81-130
        store_from(server.url, tmp_path)
    backend = ChdbBackend(chdb_dir())
    try:
        ids = [row[0] for row in backend.query(f"SELECT toUInt32(trade_id) FROM {database}.trades ORDER BY 1")]
        gaps = backend.query(f"SELECT detail, update_id FROM {database}.quality_events WHERE kind = 'gap'")
    finally:
        backend.close()
    assert ids == list(range(1, 31)) + list(range(81, 131))
    assert len(gaps) == 1 and "MARKET_TRADES" in gaps[0][0] and "sequences 31-80 (50 messages)" in gaps[0][0]


def test_feature_rows_published_on_nats_are_stored_once_with_the_same_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FEATURES stream is stored like the others: every message once, its values as sent."""
    database = "store_features"
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH", str(chdb_dir()))
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_DATABASE", database)
    rows = feature_rows(replay(recording(seconds=4)), every_updates=1)
    with EmbeddedNatsServer(tmp_path / "nats") as server:
        asyncio.run(_publish(server.url, rows, StreamSettings()))
        asyncio.run(_publish(server.url, rows[:20], StreamSettings()))  # a publisher's retry: same message ids
        published = [payload for messages in read_streams(server.url, ("FEATURES",)).values()
                     for _, payload, _ in messages]
        store_from(server.url, tmp_path)
        assert acked(server.url, "FEATURES") == len(published)
    backend = ChdbBackend(chdb_dir())
    try:
        total = backend.query(f"SELECT count() FROM {database}.features")[0][0]
        books = {(p["exchange_name"], p["symbol_name"]) for p in published}
        stored = [row for venue, symbol in books for row in read_events(backend, database, FEATURES, venue, symbol)]
    finally:
        backend.close()
    assert len(published) == len(rows) > 50 and {len(p["features"]) for p in published} == {len(rows[0].values)}
    assert total == len(stored) == len(published), "each message stored once"

    def key(venue: str, symbol: str, update_id: int | None, recv_ns: int) -> tuple[str, str, int, int]:
        return venue, symbol, update_id or 0, recv_ns

    sent = {key(p["exchange_name"], p["symbol_name"], p["update_id"], p["recv_ns"]): p for p in published}
    for row in stored:
        payload = sent.pop(key(row.venue, row.symbol, row.update_id, row.recv_ns))
        assert row.exchange_ms == payload["timestamp"]
        assert list(row.values) == list(payload["features"]), "names in the published order"
        assert row.values == payload["features"], "values equal to the bit, nulls as nulls"
    assert not sent


def test_kill_9_of_the_store_mid_run_then_a_restart_stores_every_message_once(tmp_path: Path) -> None:
    with SimulatorThread(SimSettings(seed=21, symbols=("BTC-USDT",))) as simulator, \
            EmbeddedNatsServer(tmp_path / "nats") as server:
        collector_env = flow_env(simulator, server.url, tmp_path / "collector", MARKETPRISM_SINKS="nats",
                             MARKETPRISM_RUN_SECONDS="45")
        store_env = flow_env(simulator, server.url, tmp_path / "store", MARKETPRISM_STORE_ACK_WAIT_S="5")
        collector = run_flow("flows.collect", collector_env, tmp_path / "collector.log")
        store = run_flow("flows.store", store_env, tmp_path / "store.log")
        wait_for(lambda: acked(server.url, "ORDERBOOK_DELTA") > 300, "the store to store some deltas")
        store.send_signal(signal.SIGKILL)
        store.wait(30)
        killed_at = acked(server.url, "ORDERBOOK_DELTA")
        published = stream_counts(server.url)["pure_delta"]
        wait_for(lambda: stream_counts(server.url)["pure_delta"] > published + 150, "the collector to go on")
        assert collector.poll() is None, "the collector must still run when the store comes back"
        store = run_flow("flows.store", store_env, tmp_path / "store.log")
        wait_for(lambda: acked(server.url, "ORDERBOOK_DELTA") > killed_at, "the restarted store to store")
        assert collector.wait(120) == 0, (tmp_path / "collector.log").read_text()[-3000:]
        store.send_signal(signal.SIGTERM)  # store what the streams hold, then stop
        assert store.wait(120) == 0, (tmp_path / "store.log").read_text()[-3000:]
        assert_stored_exactly_once(server.url, tmp_path / "store" / "clickhouse")
