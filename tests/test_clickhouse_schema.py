"""The production DDL, migrations, batches and reads, on the real ClickHouse engine (chDB).

Events come from a generated recording replayed through the sync engine, faults included,
so every table gets real rows: what goes in must come out exactly, each event once.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest
from pydantic import ValidationError

from connectors.clickhouse_backend import ChdbBackend, ensure_schema, read_events
from schemas.clickhouse import MIGRATIONS, TABLES, ClickHouseSettings, parse_url
from schemas.clickhouse_rows import add_event, batch_len, batch_token, table_of, to_batches
from schemas.events import BookDelta, BookFull, Kline, QualityEvent, Trade
from tests.clickhouse_support import as_read_back, chdb_dir, recording, replay

_databases = itertools.count()


@pytest.fixture(scope="module")
def backend() -> Iterator[ChdbBackend]:
    chdb = ChdbBackend(chdb_dir())
    yield chdb
    chdb.close()


@pytest.fixture
def database(backend: ChdbBackend) -> str:
    """A fresh database with the production schema."""
    name = f"schema_test_{next(_databases)}"
    ensure_schema(backend, name, {})
    return name


@pytest.fixture(scope="module")
def events() -> list[object]:
    return replay(recording())


def insert_all(backend: ChdbBackend, database: str, events: Sequence[object]) -> dict[str, int]:
    rows = {}
    for name, batch in to_batches(events).items():
        backend.insert(database, TABLES[name], batch, batch_token(name, batch))
        rows[name] = batch_len(batch)
    return rows


def count(backend: ChdbBackend, database: str, table: str, final: bool = False) -> int:
    return int(backend.query(f"SELECT count() FROM {database}.{table}{' FINAL' if final else ''}")[0][0])


def test_migrations_create_every_table_once_and_running_them_again_does_nothing(backend: ChdbBackend) -> None:
    ran = ensure_schema(backend, "migrations_test", {})
    assert sum(sql.startswith("CREATE TABLE") for sql in ran) == len(TABLES)
    assert ensure_schema(backend, "migrations_test", {}) == [], "a second start must change nothing"
    applied = backend.query("SELECT version FROM migrations_test.schema_migrations FINAL ORDER BY version")
    assert applied == [(migration.version,) for migration in MIGRATIONS]
    tables: dict[str, str] = dict(backend.query(
        "SELECT name, engine_full FROM system.tables WHERE database = 'migrations_test' AND name != 'schema_migrations'"
    ))
    assert set(tables) == set(TABLES)
    for name, engine in tables.items():
        table = TABLES[name]
        assert engine.startswith(f"ReplacingMergeTree({table.version_column}) PARTITION BY toYYYYMM({table.time_column})")
        assert f"ORDER BY ({', '.join(table.order_by)})" in engine
        assert "non_replicated_deduplication_window = 1000" in engine
    codecs: dict[str, str] = dict(backend.query(
        "SELECT name, compression_codec FROM system.columns WHERE database = 'migrations_test' AND table = 'orderbook_full_depth'"
    ))
    assert codecs["bid_prices"] == "CODEC(ZSTD(9))" and codecs["timestamp"] == "CODEC(DoubleDelta, ZSTD(1))"


def test_retention_follows_the_setting_on_every_start(backend: ChdbBackend) -> None:
    ensure_schema(backend, "retention_test", {"orderbook_deltas": 30})
    ttl = "SELECT engine_full FROM system.tables WHERE database = 'retention_test' AND name = 'orderbook_deltas'"
    assert "TTL toDateTime(timestamp) + toIntervalDay(30)" in backend.query(ttl)[0][0]
    assert ensure_schema(backend, "retention_test", {"orderbook_deltas": 30}) == []
    assert ensure_schema(backend, "retention_test", {"orderbook_deltas": 7}) == [
        "ALTER TABLE retention_test.orderbook_deltas MODIFY TTL toDateTime(timestamp) + toIntervalDay(7)"
    ]
    ensure_schema(backend, "retention_test", {})
    assert " TTL " not in backend.query(ttl)[0][0], "no retention set: rows are kept forever"


def test_every_event_comes_back_exactly_with_its_decimal_text(backend: ChdbBackend, database: str, events: list[object]) -> None:
    rows = insert_all(backend, database, events)
    quality = [e for e in events if isinstance(e, QualityEvent)]
    assert sum(e.kind not in ("in_sync", "out_of_sync") for e in quality) == 2, "the recording's two faults"
    assert rows.keys() == TABLES.keys() and rows["quality_events"] == len(quality), "every quality event is stored"
    stored = [e for e in events if table_of(e) is not None]
    books = {(e.venue, e.symbol or "") for e in stored}  # type: ignore[attr-defined]
    back = [
        event
        for table in TABLES.values()
        for venue, symbol in books
        for event in read_events(backend, database, table, venue, symbol)
    ]
    assert Counter(map(repr, back)) == Counter(map(repr, as_read_back(stored)))
    assert any(isinstance(e, Kline) for e in back), "the recording's klines are stored too"
    okx_full = next(e for e in back if isinstance(e, BookFull) and e.venue == "okx")
    assert okx_full.checksum is not None and okx_full.prev_update_id == -1, "OKX snapshot ids survive"


def test_a_batch_sent_twice_is_stored_once(backend: ChdbBackend, database: str, events: list[object]) -> None:
    for name in TABLES:
        backend.execute(f"SYSTEM STOP MERGES {database}.{name}")  # so a merge cannot hide a duplicate
    batches = to_batches(events)
    for name, batch in batches.items():
        backend.insert(database, TABLES[name], batch, batch_token(name, batch))
        once = count(backend, database, name)  # klines: a candle's updates already collapse within the insert
        backend.insert(database, TABLES[name], batch, batch_token(name, batch))  # a retry after a lost reply
        assert count(backend, database, name) == once > 0, f"{name}: the token must drop the second insert"


def test_rows_replayed_in_other_batches_collapse_to_one(backend: ChdbBackend, database: str, events: list[object]) -> None:
    """A re-run cuts batches differently, so tokens differ: the sorting key catches those."""
    trades = [e for e in events if isinstance(e, Trade)]
    backend.execute(f"SYSTEM STOP MERGES {database}.trades")
    insert_all(backend, database, trades)
    for start in range(0, len(trades), 100):
        insert_all(backend, database, trades[start : start + 100])
    assert count(backend, database, "trades") == 2 * len(trades)
    assert count(backend, database, "trades", final=True) == len(trades)
    backend.execute(f"SYSTEM START MERGES {database}.trades")
    backend.execute(f"OPTIMIZE TABLE {database}.trades FINAL")
    assert count(backend, database, "trades") == len(trades), "merges keep one row per trade"


def test_a_stored_book_rebuilds_from_a_full_book_and_the_deltas_after_it(
    backend: ChdbBackend, database: str, events: list[object]
) -> None:
    """`book --at`: the latest full book at or before a time, plus the deltas since, is the book
    the exchange had (checked against a later full book the engine stored)."""
    insert_all(backend, database, events)
    fulls = read_events(backend, database, TABLES["orderbook_full_depth"], "binance", "BTC-USDT")
    assert len(fulls) >= 3
    target = fulls[-1]
    assert isinstance(target, BookFull) and target.exchange_ms is not None
    [start] = read_events(backend, database, TABLES["orderbook_full_depth"], "binance", "BTC-USDT",
                          until_ms=target.exchange_ms - 2000, newest_first=True, limit=1)
    assert isinstance(start, BookFull) and start.last_update_id < target.last_update_id  # type: ignore[operator]
    deltas = read_events(backend, database, TABLES["orderbook_deltas"], "binance", "BTC-USDT",
                         since_ms=start.exchange_ms, until_ms=target.exchange_ms)
    book = {"bids": {p: q for p, q in start.bids}, "asks": {p: q for p, q in start.asks}}
    applied = 0
    for delta in deltas:
        assert isinstance(delta, BookDelta)
        if delta.update_id <= start.last_update_id or delta.update_id > target.last_update_id:  # type: ignore[operator]
            continue
        applied += 1
        for side, changes in (("bids", delta.bid_updates), ("asks", delta.ask_updates)):
            for price, quantity in changes:
                if Decimal(quantity) == 0:
                    book[side].pop(price, None)
                else:
                    book[side][price] = quantity
    assert applied > 10
    depth = 1000  # deeper levels may lie past the snapshot's horizon
    bids = sorted(book["bids"].items(), key=lambda level: -Decimal(level[0]))[:depth]
    asks = sorted(book["asks"].items(), key=lambda level: Decimal(level[0]))[:depth]
    assert bids == [tuple(level) for level in target.bids[:depth]]
    assert asks == [tuple(level) for level in target.asks[:depth]]


def test_batches_are_columns_in_table_order_with_a_token_that_names_their_rows(events: list[object]) -> None:
    batches: dict[str, dict[str, list[object]]] = {}
    trades = [e for e in events if isinstance(e, Trade)][:50]
    for trade in trades:
        assert add_event(batches, trade) == "trades"
    batch = batches["trades"]
    assert tuple(batch) == TABLES["trades"].column_names
    assert batch["price"] == [t.price for t in trades] and batch["collected_at"] == [t.recv_ns for t in trades]
    assert batch_token("trades", batch) == batch_token("trades", to_batches(trades)["trades"])
    assert batch_token("trades", batch) != batch_token("trades", to_batches(trades[1:])["trades"])
    assert add_event(batches, object()) is None and table_of(QualityEvent("okx", None, "gap", "", None, 1)) is not None


def test_settings_keep_credentials_out_of_urls_and_know_the_tables() -> None:
    assert str(parse_url("clickhouse://db.internal")) == "clickhouse://db.internal:9000"
    assert parse_url("clickhouses://db.internal").port == 9440
    with pytest.raises(ValidationError, match="credentials"):
        ClickHouseSettings(url="clickhouse://user:secret@db.internal:9000")
    with pytest.raises(ValidationError, match="unknown tables"):
        ClickHouseSettings(retention_days={"orderbooks": 3})
    settings = ClickHouseSettings(password="hunter2")  # type: ignore[arg-type]
    assert "hunter2" not in repr(settings) and settings.address() is None, "no URL: embedded chDB"
