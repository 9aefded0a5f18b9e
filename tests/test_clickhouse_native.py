"""The native-protocol writer against a real `clickhouse-server` on 127.0.0.1.

Debian ships ClickHouse 18.16, which predates LowCardinality, codecs, DateTime64 and
insert deduplication tokens, so these tests create the production tables' columns, keys
and engine in 18.16's dialect (`compat_create_sql`); the production DDL itself is
verified on chDB. Without the token, a retried batch can land twice until its parts merge:
the checks read with FINAL and also after OPTIMIZE ... FINAL, where each row must be
stored exactly once. The server also listens over TLS (`tcp_port_secure`, a certificate
from a throw-away CA): the sink logs in there with a password from a file and checks the
certificate against the CA; a wrong password or an untrusted certificate is an error that
names neither password. Skipped without the server binary, unless CI=true.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import urllib.request

import pytest
from clickhouse_driver.errors import NetworkError, ServerException
from pydantic import SecretStr, ValidationError

from connectors.clickhouse import ClickHouseSink
from connectors.clickhouse_backend import NativeBackend, open_backend
from connectors.metrics_server import MetricsEndpoint
from connectors.nats_server import free_loopback_port
from schemas.clickhouse import TABLES, ClickHouseSettings, parse_url
from schemas.clickhouse_rows import batch_token, events_from_rows, table_of, to_batches
from tests.clickhouse_support import (
    ClickHouseServer,
    as_read_back,
    compat_create_sql,
    decode_full_books,
    feature_rows,
    recording,
    replay,
    server_binary_or_skip,
)
from tests.store_support import wait_for
from tests.tls_support import certificates

_databases = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    root = tmp_path_factory.mktemp("clickhouse")
    running = ClickHouseServer(server_binary_or_skip(), root, secrets.token_hex(12), tls=certificates(root / "tls"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def database(server: ClickHouseServer) -> str:
    name = f"native_test_{next(_databases)}"
    client = server.client()
    client.execute(f"CREATE DATABASE {name}")
    for table in TABLES.values():
        client.execute(compat_create_sql(table, name))
    return name


@pytest.fixture(scope="module")
def events() -> list[object]:
    replayed = replay(recording())
    return [e for e in [*replayed, *feature_rows(replayed)] if table_of(e) is not None]


def read_back(server: ClickHouseServer, database: str) -> Counter[str]:
    """Every stored event, read with FINAL (18.16 tables hold times as integer ticks already)."""
    client = server.client()
    read = {
        table.name: events_from_rows(table, client.execute(
            f"SELECT {', '.join(table.column_names)} FROM {database}.{table.name} FINAL ORDER BY {', '.join(table.order_by)}"
        ))
        for table in TABLES.values()
    }
    fulls = decode_full_books(read.pop("orderbook_full_depth"), read["orderbook_deltas"])  # type: ignore[arg-type]
    return Counter(repr(event) for events in [*read.values(), fulls] for event in events)


def counts_after_merge(server: ClickHouseServer, database: str) -> dict[str, int]:
    client = server.client()
    for name in TABLES:
        client.execute(f"OPTIMIZE TABLE {database}.{name} FINAL")
    return {name: client.execute(f"SELECT count() FROM {database}.{name}")[0][0] for name in TABLES}


def test_batches_go_in_over_the_native_protocol_and_come_back_exactly(
    server: ClickHouseServer, database: str, events: list[object]
) -> None:
    backend = NativeBackend(parse_url(server.url), server.USER, server.password)
    assert not backend.has_tokens, "18.16 has no insert_deduplication_token"
    batches = to_batches(events)
    for name, batch in batches.items():
        for _ in range(2):  # the same batch objects again, as a retry sends them
            backend.insert(database, TABLES[name], batch, batch_token(name, batch))
    backend.close()
    assert read_back(server, database) == Counter(map(repr, as_read_back(events)))
    stored = Counter(table_of(e).name for e in as_read_back(events))  # type: ignore[union-attr]
    assert counts_after_merge(server, database) == {name: stored[name] for name in batches}


def test_the_server_dies_mid_write_and_every_row_is_stored_once(
    server: ClickHouseServer, database: str, events: list[object], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = ClickHouseSettings(url=server.url, user=server.USER, password=SecretStr(server.password),
                                database=database, batch_rows=40, batch_age_s=0.05, features_interval_ms=0)
    sink = ClickHouseSink(config, tmp_path / "spill", retry_cap_s=0.3, close_timeout_s=30, manage_schema=False)
    partition = sink.build_part("clickhouse", "clickhouse", None)
    chunks = [events[i : i + 25] for i in range(0, len(events), 25)]
    third = len(chunks) // 3
    for i, chunk in enumerate(chunks):
        if i == third:
            server.kill()
        if i == 2 * third:
            assert sink.stats.on_disk > 0, "while the server is down, batches wait on disk"
            server.start()
        partition.write_batch(chunk)
        if i % 5 == 0:
            partition.snapshot()  # epochs end now and then, also during the outage
    partition.close()

    assert sink.stats.failures > 0 and sink.stats.spilled > 0 and sink.stats.on_disk == 0, sink.stats
    assert not list((tmp_path / "spill").glob("*.batch"))
    assert read_back(server, database) == Counter(map(repr, as_read_back(events)))
    expected = Counter(table_of(e).name for e in as_read_back(events))  # type: ignore[union-attr]
    assert counts_after_merge(server, database) == {name: expected[name] for name in TABLES}
    assert server.password not in caplog.text, "credentials are never logged"


def _scrape(endpoint: MetricsEndpoint) -> str:
    with urllib.request.urlopen(endpoint.url, timeout=10) as response:
        return response.read().decode()


def test_the_sink_logs_in_over_tls_with_a_password_file_and_no_secret_shows(
    server: ClickHouseServer, database: str, events: list[object], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert server.tls is not None
    password_file = tmp_path / "clickhouse-password"
    password_file.write_text(server.password + "\n")  # as `kubectl create secret --from-file` leaves it
    for name, value in (("URL", server.secure_url), ("USER", server.USER), ("PASSWORD_FILE", str(password_file)),
                        ("TLS_CA_FILE", str(server.tls.ca)), ("DATABASE", database), ("FEATURES_INTERVAL_MS", "0")):
        monkeypatch.setenv(f"MARKETPRISM_CLICKHOUSE_{name}", value)
    monkeypatch.delenv("MARKETPRISM_CLICKHOUSE_PASSWORD", raising=False)
    settings = ClickHouseSettings()
    endpoint = MetricsEndpoint("127.0.0.1", free_loopback_port()).start()
    try:
        sink = ClickHouseSink(settings, tmp_path / "spill", manage_schema=False)
        partition = sink.build_part("clickhouse", "clickhouse", None)
        partition.write_batch(events)
        partition.close()
        metrics = _scrape(endpoint)
    finally:
        endpoint.stop()
    assert sink.stats.failures == 0 and sink.stats.on_disk == 0, sink.stats
    assert f"connected to {server.secure_url}" in caplog.text  # the TLS-only port
    assert read_back(server, database) == Counter(map(repr, as_read_back(events)))
    shown = caplog.text + metrics + repr(settings) + str(settings) + repr(sink.stats) + repr(partition.__dict__)
    assert server.password not in shown


def test_a_wrong_password_or_an_untrusted_certificate_is_refused_without_showing_the_password(
    server: ClickHouseServer, events: list[object], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert server.tls is not None
    wrong = "wrong-" + server.password
    refused_settings = ClickHouseSettings(url=server.secure_url, user=server.USER, password=SecretStr(wrong),
                                          tls_ca_file=server.tls.ca, database="marketprism")
    with pytest.raises(ServerException) as refused:
        open_backend(refused_settings)
    assert "Wrong password" in str(refused.value)  # the server's own answer: TLS was accepted, the password not
    # Without our CA the server's certificate chains to nothing the client trusts.
    untrusted_settings = ClickHouseSettings(url=server.secure_url, user=server.USER, password=SecretStr(server.password))
    with pytest.raises(NetworkError) as untrusted:
        open_backend(untrusted_settings)
    assert "CERTIFICATE_VERIFY_FAILED" in str(untrusted.value)
    unchecked = open_backend(untrusted_settings.model_copy(update={"tls_verify": False}))  # what the check refused
    assert unchecked.query("SELECT 1") == [(1,)]
    unchecked.close()
    # The sink's retry loop logs each refusal in a line: never with the password.
    sink = ClickHouseSink(refused_settings, tmp_path / "spill", retry_cap_s=0.2, close_timeout_s=1, manage_schema=False)
    partition = sink.build_part("clickhouse", "clickhouse", None)
    partition.write_batch(events[:50])
    partition.snapshot()
    wait_for(lambda: sink.stats.failures >= 2, "the sink to retry the refused login")
    partition.close()
    assert "Wrong password" in caplog.text
    missing = ClickHouseSettings(url=server.secure_url, password_file=tmp_path / "absent")
    with pytest.raises(OSError, match="absent") as unreadable:
        missing.secret_password()
    for secret in (wrong, server.password):
        for shown in (str(refused.value), repr(refused.value), str(untrusted.value), str(unreadable.value),
                      caplog.text, repr(refused_settings), str(sink.stats)):
            assert secret not in shown
    with pytest.raises(ValidationError, match="not both"):
        ClickHouseSettings(url=server.secure_url, password=SecretStr(wrong), password_file=tmp_path / "absent")
    with pytest.raises(ValidationError, match="clickhouses://"):
        ClickHouseSettings(url=server.url, tls_ca_file=server.tls.ca)  # TLS settings on a plain URL: refused
