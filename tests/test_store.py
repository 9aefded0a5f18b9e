"""The store dataflow: JSON back to rows, exactly once across kill -9, lost stretches marked,
feature rows stored as published."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from connectors.clickhouse_backend import ChdbBackend, read_events
from connectors.nats_server import EmbeddedNatsServer
from connectors.spill import SUFFIX
from operators.features.publish import feature_publication
from operators.routing import publications
from schemas.clickhouse import FEATURES
from schemas.clickhouse_rows import to_batches
from schemas.decoding import event_from_message
from schemas.features import FeatureRow
from schemas.publication import Publication
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.clickhouse_support import chdb_dir, feature_rows, recording, replay
from tests.live_support import read_streams, store_from
from tests.store_support import (
    acked, assert_stored_exactly_once, flow_env, free_port, kill_flows, last_seq, publish, run_flow, scrape_text,
    stream_counts, trades, wait_for,
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


def test_a_stretch_the_stream_discarded_before_the_store_read_it_is_stored_as_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = "store_gap"
    monkeypatch.setenv("MARKETPRISM_NATS_MARKET_TRADES__MAX_MSGS", "50")  # the store applies the same limits
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH", str(chdb_dir()))
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_DATABASE", database)
    with EmbeddedNatsServer(tmp_path / "nats") as server:
        publish(server.url, trades(1, 30))
        store_from(server.url, tmp_path)
        publish(server.url, trades(31, 100))  # the stream keeps sequences 81-130
        store_from(server.url, tmp_path)
    figures = _store_figures()  # the second run's
    backend = ChdbBackend(chdb_dir())
    try:
        ids = [row[0] for row in backend.query(f"SELECT toUInt32(trade_id) FROM {database}.trades ORDER BY 1")]
        gaps = backend.query(f"SELECT detail, update_id FROM {database}.quality_events WHERE kind = 'gap'")
    finally:
        backend.close()
    assert ids == list(range(1, 31)) + list(range(81, 131))
    assert len(gaps) == 1 and "MARKET_TRADES" in gaps[0][0] and "sequences 31-80 (50 messages)" in gaps[0][0]
    # What the second run served as metrics is what it stored: 50 trades, one gap of 50.
    assert figures['marketprism_store_stored_messages_total{stream="MARKET_TRADES",table="trades"}'] == len(ids) - 30
    assert figures['marketprism_store_gaps_total{stream="MARKET_TRADES"}'] == len(gaps)
    assert figures['marketprism_store_lost_messages_total{stream="MARKET_TRADES"}'] == 80 - 30
    assert figures['marketprism_store_inserted_rows_total{table="quality_events"}'] == len(gaps)
    assert figures["marketprism_store_spill_batches"] == 0 and figures["marketprism_store_clickhouse_up"] == 1


@pytest.mark.timeout(150)  # the fault it guards against is a store waiting forever
def test_a_batch_left_on_disk_after_its_acks_does_not_hold_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A store killed after JetStream confirmed a batch's acks and before it deleted the batch
    # file: the next store inserts it again (a no-op) and must not wait for redeliveries that
    # never come. Made here by putting back the files of a first store, killed while ClickHouse
    # was away, once a second store has stored and acked them. And with ack_wait under the
    # batch age, JetStream sends every message again while its batch waits: the copies that
    # arrive after the ack must not make a second row.
    database = "store_acked_batches"
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH", str(chdb_dir()))
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_DATABASE", database)
    monkeypatch.setenv("MARKETPRISM_STORE_ACK_WAIT_S", "1")
    monkeypatch.setenv("MARKETPRISM_STORE_BATCH_AGE_S", "1.5")
    spill = tmp_path / "spill" / "store"
    with EmbeddedNatsServer(tmp_path / "nats") as server:
        publish(server.url, trades(1, 50))
        env = {**os.environ, "MARKETPRISM_NATS_URL": server.url, "MARKETPRISM_DATA_DIR": str(tmp_path),
               "MARKETPRISM_STORE_METRICS_PORT": "0", "MARKETPRISM_CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{free_port()}"}
        run_flow("flows.store", env, tmp_path / "store.log")
        wait_for(lambda: len(list(spill.glob(f"*{SUFFIX}"))) >= 1, "the first store to hold its batch on disk")
        kill_flows()
        left = {path.name: path.read_bytes() for path in spill.glob(f"*{SUFFIX}")}
        publish(server.url, trades(51, 10))  # (the sink starts with the first message it is handed)
        store_from(server.url, tmp_path)  # stores them and acks them
        assert not list(spill.glob(f"*{SUFFIX}")) and acked(server.url, "MARKET_TRADES") == 60
        for name, data in left.items():
            (spill / name).write_bytes(data)
        publish(server.url, trades(61, 10))
        store_from(server.url, tmp_path)  # must insert them again and end, not wait for their redelivery
        assert not list(spill.glob(f"*{SUFFIX}")) and acked(server.url, "MARKET_TRADES") == 70
    from connectors.clickhouse_backend import ChdbBackend

    backend = ChdbBackend(chdb_dir())
    try:
        (rows, distinct), = backend.query(f"SELECT count(), uniqExact(trade_id) FROM {database}.trades")
    finally:
        backend.close()
    assert (rows, distinct) == (70, 70)
    # The last store committed the 50 put back (again: a no-op for ClickHouse) and 10 new ones.
    assert _store_figures()['marketprism_store_stored_messages_total{stream="MARKET_TRADES",table="trades"}'] == 60


def _store_figures() -> dict[str, float]:
    """The store metrics of this process (the last store flow built here), as `name{labels}` -> value."""
    from connectors.store_metrics import STORE_METRICS

    registry = CollectorRegistry()
    registry.register(STORE_METRICS)
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in generate_latest(registry).decode().splitlines() if not line.startswith("#")}


def _first_of_each_slot(published: list[dict[str, Any]], interval_ms: int) -> list[dict[str, Any]]:
    """The messages a features table sampled every `interval_ms` must hold: per book, the first
    message (stream order) whose `timestamp` falls in each slot; all of them for 0."""
    if not interval_ms:
        return published
    seen: set[tuple[str, str, int]] = set()
    firsts = []
    for payload in published:
        slot = (payload["exchange_name"], payload["symbol_name"], payload["timestamp"] // interval_ms)
        if slot not in seen:
            seen.add(slot)
            firsts.append(payload)
    return firsts


@pytest.mark.parametrize("interval_ms", [0, 1000])
def test_feature_rows_published_on_nats_are_stored_once_with_the_same_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval_ms: int
) -> None:
    """The FEATURES stream is stored like the others: every message once (or, sampled, the
    first of each book in every slot), its values as sent; every message acked either way."""
    database = f"store_features_{interval_ms}"
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH", str(chdb_dir()))
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_DATABASE", database)
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_FEATURES_INTERVAL_MS", str(interval_ms))
    rows = feature_rows(replay(recording(seconds=4)), every_updates=1)
    with EmbeddedNatsServer(tmp_path / "nats") as server:
        publish(server.url, rows)
        publish(server.url, rows[:20])  # a publisher's retry: same message ids
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
    kept = _first_of_each_slot(published, interval_ms)
    if interval_ms:
        assert len(published) > len(kept) > 8, "several slots per book, several messages per slot"
    assert total == len(stored) == len(kept), "each kept message stored once"
    assert _store_figures()["marketprism_store_features_not_kept_total"] == len(published) - len(kept)

    def key(venue: str, symbol: str, update_id: int | None, recv_ns: int) -> tuple[str, str, int, int]:
        return venue, symbol, update_id or 0, recv_ns

    sent = {key(p["exchange_name"], p["symbol_name"], p["update_id"], p["recv_ns"]): p for p in kept}
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
                             MARKETPRISM_RUN_SECONDS="120", MARKETPRISM_END_ON_SIGTERM="true")
        store_env = flow_env(simulator, server.url, tmp_path / "store", MARKETPRISM_STORE_ACK_WAIT_S="5")
        collector = run_flow("flows.collect", collector_env, tmp_path / "collector.log")
        store = run_flow("flows.store", store_env, tmp_path / "store.log")
        wait_for(lambda: acked(server.url, "ORDERBOOK_DELTA") > 150, "the store to store some deltas")
        store.send_signal(signal.SIGKILL)
        store.wait(30)
        killed_at = acked(server.url, "ORDERBOOK_DELTA")
        published = stream_counts(server.url)["pure_delta"]
        wait_for(lambda: stream_counts(server.url)["pure_delta"] > published + 150, "the collector to go on")
        assert collector.poll() is None, "the collector must still run when the store comes back"
        published_by_now = last_seq(server.url, "ORDERBOOK_DELTA")
        store = run_flow("flows.store", store_env, tmp_path / "store.log")  # on the killed one's metrics port
        wait_for(lambda: acked(server.url, "ORDERBOOK_DELTA") > killed_at, "the restarted store to store")
        metrics = f"http://127.0.0.1:{store_env['MARKETPRISM_STORE_METRICS_PORT']}/metrics"
        wait_for(lambda: "marketprism_store_stored_messages_total" in scrape_text(metrics), "its metrics endpoint")
        # What waited while no store ran, and what came after its restart: then the run ends
        # (SIGTERM: the collector's sinks flushed, exit status 0).
        wait_for(lambda: acked(server.url, "ORDERBOOK_DELTA") > published_by_now, "the restarted store to catch up")
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(120) == 0, (tmp_path / "collector.log").read_text()[-3000:]
        store.send_signal(signal.SIGTERM)  # store what the streams hold, then stop
        assert store.wait(120) == 0, (tmp_path / "store.log").read_text()[-3000:]
        assert_stored_exactly_once(server.url, tmp_path / "store" / "clickhouse")
