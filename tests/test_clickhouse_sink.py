"""The ClickHouse sink in Bytewax dataflows, on the embedded engine (chDB): replays land
once however often they run, batches spilled while the server was away are inserted by
the next run, and a batch the server refuses is kept aside rather than blocking the rest."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main

from connectors.acks import AckLedger, Stored
from connectors.clickhouse import REJECTED_DIR, ClickHouseSink, _decode
from connectors.clickhouse_backend import ChdbBackend, ensure_schema
from connectors.nats_server import free_loopback_port
from connectors.replay_source import RecordingSource
from flows.steps import UNKEYED, BookSyncLogic, decode_step
from operators.sync_base import SyncSettings
from schemas.clickhouse import TABLES, TRADES, ClickHouseSettings
from schemas.clickhouse_rows import table_of
from tests.clickhouse_support import as_read_back, chdb_dir, read_stored, recording, replay

_databases = itertools.count()


@pytest.fixture(autouse=True)
def _no_clickhouse_settings_from_the_developer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("URL", "USER", "PASSWORD", "DATABASE", "EMBEDDED_PATH", "RETENTION_DAYS", "BATCH_ROWS", "BATCH_AGE_S"):
        monkeypatch.delenv(f"MARKETPRISM_CLICKHOUSE_{name}", raising=False)


@pytest.fixture(scope="module")
def reader() -> Iterator[ChdbBackend]:
    """A session of our own on the sinks' chDB directory (chDB shares one directory per process)."""
    chdb = ChdbBackend(chdb_dir())
    yield chdb
    chdb.close()


def settings(**overrides: object) -> ClickHouseSettings:
    values: dict[str, object] = {"embedded_path": chdb_dir(), "database": f"sink_test_{next(_databases)}", "batch_rows": 200}
    return ClickHouseSettings(**(values | overrides))  # type: ignore[arg-type]


def storing_flow(path: Path, sink: ClickHouseSink) -> Dataflow:
    """The replay flow's steps, ending in the ClickHouse sink (as flows.collect will wire it)."""
    flow = Dataflow("store")
    decoded = op.flat_map("decode", op.input("recording", flow, RecordingSource([path])), decode_step)
    routed = op.branch("has_book", decoded, lambda kv: kv[0] != UNKEYED)
    synced = op.stateful("book_sync", routed.trues, lambda resume: BookSyncLogic(SyncSettings(), resume))
    op.output("clickhouse", synced, sink)
    return flow


def stored_events() -> list[object]:
    return [e for e in replay(recording()) if table_of(e) is not None]


def read_all(reader: ChdbBackend, database: str, events: list[object]) -> Counter[str]:
    books = {(e.venue, e.symbol or "") for e in events}  # type: ignore[attr-defined]
    return Counter(map(repr, read_stored(reader, database, books)))


def test_a_replay_stores_every_event_once_however_often_it_runs(reader: ChdbBackend, tmp_path: Path) -> None:
    config = settings()
    for _ in range(2):
        sink = ClickHouseSink(config, tmp_path / "spill")
        run_main(storing_flow(recording(), sink))
        assert sink.stats.on_disk == 0 and sink.stats.failures == 0, sink.stats
        for name in TABLES:
            reader.execute(f"SYSTEM STOP MERGES {config.database}.{name}")  # so a merge cannot hide a duplicate
    expected = stored_events()
    assert sink.stats.inserted_rows == len(expected) and sink.stats.inserted_batches > len(TABLES)
    assert read_all(reader, config.database, expected) == Counter(map(repr, as_read_back(expected)))
    raw = reader.query(f"SELECT count() FROM {config.database}.orderbook_deltas")[0][0]
    assert raw == sum(type(e).__name__ == "BookDelta" for e in expected), "the second run's batches were dropped by token"


def test_batches_spilled_while_the_server_was_away_are_inserted_by_the_next_run(
    reader: ChdbBackend, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    nobody = settings(url=f"clickhouse://127.0.0.1:{free_loopback_port()}")  # nothing listens there
    away = ClickHouseSink(nobody, spill, close_timeout_s=0.5, retry_cap_s=0.2)
    run_main(storing_flow(recording(), away))
    assert away.stats.inserted_rows == 0 and away.stats.failures > 0
    assert away.stats.on_disk > len(TABLES) and len(list(spill.glob("*.batch"))) == away.stats.on_disk

    back = ClickHouseSink(settings(database=nobody.database), spill)
    partition = back.build_part("clickhouse", "clickhouse", None)
    partition.close()  # nothing new to write: it drains what the last run left
    expected = stored_events()
    assert back.stats.inserted_rows == len(expected) and not list(spill.glob("*.batch"))
    assert read_all(reader, nobody.database, expected) == Counter(map(repr, as_read_back(expected)))


def test_a_batch_the_server_refuses_is_kept_aside_and_the_rest_flows_on(reader: ChdbBackend, tmp_path: Path) -> None:
    config = settings()
    ensure_schema(reader, config.database, {})
    reader.execute(f"DROP TABLE {config.database}.trades")  # a table someone changed by hand: no side column
    columns = ", ".join(f"{c.name} {c.type}" for c in TRADES.columns if c.name != "side")
    reader.execute(f"CREATE TABLE {config.database}.trades ({columns}) ENGINE = MergeTree ORDER BY trade_id")
    sink = ClickHouseSink(config, tmp_path / "spill", retry_cap_s=0.05, max_refusals=2, manage_schema=False)
    run_main(storing_flow(recording(), sink))

    expected = stored_events()
    trades = [e for e in expected if type(e).__name__ == "Trade"]
    kept = [_decode(p.read_bytes()) for p in sorted((tmp_path / "spill" / REJECTED_DIR).glob("*.batch"))]
    assert sink.stats.rejected == len(kept) > 0
    assert sum(batch.rows for batch in kept) == len(trades) and {batch.table for batch in kept} == {"trades"}
    assert sink.stats.inserted_rows == len(expected) - len(trades), "every other table was stored"


def test_a_stream_message_no_table_stores_is_acked_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = AckLedger()
    sink = ClickHouseSink(settings(), tmp_path / "spill", ledger=ledger)
    partition = sink.build_part("clickhouse", "clickhouse", None)
    try:
        with caplog.at_level(logging.WARNING):
            partition.write_batch([Stored("MARKET_DATA", 42, "MARKET_DATA:42", object())])
    finally:
        partition.close()
    assert [seqs for _, seqs in ledger.take_ready("MARKET_DATA")] == [[42]], "acked, not redelivered forever"
    assert sink.stats.no_table == 1 and sink.stats.inserted_rows == 0
    assert "MARKET_DATA:42 holds a object, which no table stores" in caplog.text
