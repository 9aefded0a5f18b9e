"""The native-protocol writer against a real `clickhouse-server` on 127.0.0.1.

Debian ships ClickHouse 18.16, which predates LowCardinality, codecs, DateTime64 and
insert deduplication tokens, so these tests create the production tables' columns, keys
and engine in 18.16's dialect (`compat_create_sql`); the production DDL itself is
verified on chDB. Without the token, a retried batch can land twice until its parts merge:
the checks read with FINAL and also after OPTIMIZE ... FINAL, where each row must be
stored exactly once. Skipped without the server binary, unless CI=true.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.clickhouse import ClickHouseSink
from connectors.clickhouse_backend import NativeBackend
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

_databases = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    running = ClickHouseServer(server_binary_or_skip(), tmp_path_factory.mktemp("clickhouse"), secrets.token_hex(12))
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
                                database=database, batch_rows=40, batch_age_s=0.05)
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
