"""A ClickHouse outage while the collector runs: the collector keeps publishing at its rate,
and once the server is back every message is stored once (clickhouse-server 18.16).

The store logs in as production should: over TLS (`clickhouses://`, the server's
certificate checked against a throw-away CA) with its password in a file, and the
password shows nowhere in its log, through the outage and the reconnects."""

from __future__ import annotations

import secrets
import signal
import time
from pathlib import Path

import pytest

from schemas.clickhouse import TABLES
from sim.server import SimulatorThread
from sim.settings import SimSettings
from connectors.nats_server import EmbeddedNatsServer
from tests.clickhouse_support import ClickHouseServer, compat_create_sql, server_binary_or_skip
from tests.store_support import STORED, acked, flow_env, kill_flows, last_seq, run_flow, stream_counts, wait_for
from tests.tls_support import certificates

DATABASE = "store_outage"
WINDOW_S = 5.0


@pytest.fixture(autouse=True)
def _no_flow_left_behind():
    """A failed test must not leave a collector or store running."""
    yield
    kill_flows()


def _published_per_s(url: str) -> float:
    """Messages a second reaching the streams over WINDOW_S (a sliding read, not a sleep to synchronise)."""
    before, started = sum(stream_counts(url).values()), time.monotonic()
    deadline = started + WINDOW_S
    while time.monotonic() < deadline:
        time.sleep(0.5)
    return (sum(stream_counts(url).values()) - before) / (time.monotonic() - started)


def test_a_clickhouse_outage_neither_slows_the_collector_nor_loses_a_message(tmp_path: Path) -> None:
    tls = certificates(tmp_path / "tls")
    clickhouse = ClickHouseServer(server_binary_or_skip(), tmp_path / "clickhouse-server", secrets.token_hex(12), tls=tls)
    clickhouse.start()
    password_file = tmp_path / "clickhouse-password"
    password_file.write_text(clickhouse.password)
    try:
        client = clickhouse.client()
        client.execute(f"CREATE DATABASE {DATABASE}")
        for table in TABLES.values():
            client.execute(compat_create_sql(table, DATABASE))
        client.disconnect()
        with SimulatorThread(SimSettings(seed=5, symbols=("BTC-USDT",))) as simulator, \
                EmbeddedNatsServer(tmp_path / "nats") as nats_server:
            collector = run_flow("flows.collect", flow_env(simulator, nats_server.url, tmp_path / "collector",
                                                    MARKETPRISM_SINKS="nats", MARKETPRISM_RUN_SECONDS="120",
                                                    MARKETPRISM_END_ON_SIGTERM="true"),
                              tmp_path / "collector.log")
            store = run_flow("flows.store", flow_env(
                simulator, nats_server.url, tmp_path / "store", MARKETPRISM_CLICKHOUSE_URL=clickhouse.secure_url,
                MARKETPRISM_CLICKHOUSE_USER=clickhouse.USER, MARKETPRISM_CLICKHOUSE_PASSWORD_FILE=str(password_file),
                MARKETPRISM_CLICKHOUSE_TLS_CA_FILE=str(tls.ca),
                MARKETPRISM_CLICKHOUSE_DATABASE=DATABASE, MARKETPRISM_STORE_MANAGE_SCHEMA="false",
                MARKETPRISM_STORE_ACK_WAIT_S="5",
            ), tmp_path / "store.log")
            wait_for(lambda: acked(nats_server.url, "ORDERBOOK_DELTA") > 100, "the store to store some deltas")
            rate_before = _published_per_s(nats_server.url)
            clickhouse.kill()
            stored_before = acked(nats_server.url, "ORDERBOOK_DELTA")
            rate_during = _published_per_s(nats_server.url)
            stored_during = acked(nats_server.url, "ORDERBOOK_DELTA") - stored_before
            clickhouse.start()
            # Back: the store stores what waited through the outage, then what came after it;
            # then the collector's run ends (SIGTERM: its sinks flushed, exit status 0).
            published_by_now = last_seq(nats_server.url, "ORDERBOOK_DELTA")
            wait_for(lambda: acked(nats_server.url, "ORDERBOOK_DELTA") > published_by_now,
                     "the store to catch up after the outage", timeout_s=120)
            collector.send_signal(signal.SIGTERM)
            assert collector.wait(120) == 0, (tmp_path / "collector.log").read_text()[-3000:]
            store.send_signal(signal.SIGTERM)
            assert store.wait(180) == 0, (tmp_path / "store.log").read_text()[-3000:]
            in_nats = stream_counts(nats_server.url)
        assert rate_during >= 0.7 * rate_before, (rate_before, rate_during)
        assert stored_during <= 50, "the server was down: nothing should have been acknowledged meanwhile"
        client = clickhouse.client()
        for kind, (table, key) in STORED.items():
            rows, distinct = client.execute(f"SELECT count(), uniqExact({key}) FROM {DATABASE}.{table}")[0]
            assert distinct == in_nats[kind] > 0, (kind, distinct, in_nats[kind])
            # 18.16 has no insert_deduplication_token: a batch the server took just before it was
            # killed, and that the store then sent again, is there twice until parts merge.
            assert rows - distinct <= max(50, rows // 20), (kind, rows, distinct)
        client.disconnect()  # a connection left open holds the server's SIGTERM shutdown for its 10 s timeout
        store_log = (tmp_path / "store.log").read_text()
        assert store_log.count(f"connected to {clickhouse.secure_url}") >= 2  # the TLS-only port, before and after the outage
        assert clickhouse.password not in store_log
    finally:
        clickhouse.stop()
