"""The production DDL, migrations, batches and reads, on the real ClickHouse engine (chDB).

Events come from a generated recording replayed through the sync engine, faults included,
and the feature engine's rows of them, so every table gets real rows: what goes in must
come out exactly, each event once.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest
from pydantic import ValidationError

from connectors.clickhouse_backend import ChdbBackend, ensure_schema, read_events
from flows.book_reader import read_full_books
from schemas.clickhouse import (
    DELTA_LEVELS_TEXT, FEATURES, LEVEL_COUNT, LEVEL_UNITS, LEVELS_TEXT, MIGRATIONS, ORDERBOOK_DELTAS, ORDERBOOK_FULL_DEPTH, TABLES,
    TOP_LEVELS, UNITS_FORM, ClickHouseSettings, Column, Table, migration_sql, parse_url,
)
from schemas.clickhouse_rows import (
    CHANGES, DELTAS, WHOLE, FeatureSampling, FullBookFrames, StoredFullBook, add_event, batch_len, batch_token, table_of, to_batches,
)
from schemas.decimal_units import SHORTEST
from schemas.events import BookDelta, BookFull, Kline, QualityEvent, Trade
from schemas.features import FeatureRow
from tests.clickhouse_support import as_read_back, as_stored, chdb_dir, feature_rows, read_stored, recording, replay

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
    events = replay(recording())
    return [*events, *feature_rows(events)]


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
    back = read_stored(backend, database, books)
    assert Counter(map(repr, back)) == Counter(map(repr, as_read_back(stored)))
    assert any(isinstance(e, Kline) for e in back), "the recording's klines are stored too"
    features = [e for e in back if isinstance(e, FeatureRow)]
    assert len(features) == rows["features"] > 10 and any(None in f.values.values() for f in features)
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
    fulls = read_full_books(backend, database, "binance", "BTC-USDT")
    assert len(fulls) >= 3
    target = fulls[-1]
    assert isinstance(target, BookFull) and target.exchange_ms is not None
    start = read_full_books(backend, database, "binance", "BTC-USDT", until_ms=target.exchange_ms - 2000)[-1]
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


def test_full_books_are_written_whole_only_where_nothing_before_them_can_give_them(
    backend: ChdbBackend, database: str, events: list[object]
) -> None:
    """The first full book of each book is whole, snapshots are their level changes, the
    rest the deltas plus a tail; each written against the one before it, and far smaller."""
    insert_all(backend, database, events)
    fulls = [e for e in events if isinstance(e, BookFull)]
    for venue, symbol in {(f.venue, f.symbol) for f in fulls}:
        rows = [r for r in read_events(backend, database, ORDERBOOK_FULL_DEPTH, venue, symbol)
                if isinstance(r, StoredFullBook)]
        published = [f for f in fulls if (f.venue, f.symbol) == (venue, symbol)]
        assert [r.book.last_update_id for r in rows] == [f.last_update_id for f in published]
        assert rows[0].encoding == WHOLE and rows[0].base_update_id is None
        for before, row, full in zip(rows, rows[1:], published[1:]):
            assert row.base_update_id == before.book.last_update_id
            assert row.encoding == (CHANGES if full.update_type == "snapshot" else DELTAS)
            assert (row.bid_levels, row.kept_bid_levels) == (len(full.bids), len(full.kept_bids))
        written = sum(len(r.book.bids) + len(r.book.asks) + len(r.book.deep_bids) for r in rows[1:])
        whole = sum(len(f.bids) + len(f.asks) + len(f.deep_bids) for f in published[1:])
        assert written * 5 < whole, f"{venue}:{symbol}: {written} levels written for {whole}"
        assert [repr(f) for f in read_full_books(backend, database, venue, symbol)] == [
            repr(as_stored(f)) for f in published]


def test_a_new_slot_starts_whole_and_a_writer_that_restarts_starts_whole(events: list[object]) -> None:
    fulls = [e for e in events if isinstance(e, BookFull) and e.venue == "okx" and e.symbol == "BTC-USDT"]
    encoding = ORDERBOOK_FULL_DEPTH.column_names.index("levels_encoding")
    frames = FullBookFrames()
    assert [frames.row(f)[encoding] for f in fulls[:3]] == [WHOLE, DELTAS, DELTAS]
    assert FullBookFrames().row(fulls[2])[encoding] == WHOLE, "a new writer knows no previous book"
    every_ms = FullBookFrames(keyframe_interval_ms=1)
    assert {every_ms.row(f)[encoding] for f in fulls} == {WHOLE}


def test_feature_rows_are_kept_first_of_each_slot_per_book_and_a_new_writer_keeps_its_first() -> None:
    def row(venue: str, exchange_ms: int | None, recv_ms: int) -> FeatureRow:
        return FeatureRow(venue, "BTC-USDT", 1, exchange_ms, recv_ms * 1_000_000, {"spread": 0.1})

    # Slots of 10 s of exchange time (receive time where the venue gave none): 0-9999 is slot 0.
    rows = [row("binance", 0, 5), row("okx", 9_999, 5), row("binance", 9_999, 5), row("binance", 10_000, 5),
            row("binance", None, 10_001), row("okx", 10_500, 5), row("binance", 25_000, 5), row("binance", 29_999, 5)]
    sampling = FeatureSampling(10_000)
    assert [sampling.keep(r) for r in rows] == [True, True, False, True, False, True, True, False]
    assert FeatureSampling(10_000).keep(rows[-1]), "a writer that starts keeps the first row it sees"
    every = FeatureSampling(0)
    assert all(every.keep(r) for r in rows)
    with pytest.raises(ValueError):
        FeatureSampling(-1)


def test_levels_are_stored_as_integers_and_texts_with_no_integer_form_as_text(
    backend: ChdbBackend, database: str
) -> None:
    """Each kind of a row (prices, quantities) is integers of one scale and text form, or text
    when its texts have none ("1.0" beside "1.00"); either way the texts come back exactly."""
    at_ms, at_ns = 1_764_590_400_000, 1_764_590_400_000_123_000
    odd = [
        # prices with no common form (text); OKX-like shortest quantities (integers)
        BookDelta("okx", "ODD-USDT", 11, 10, None, [["1.0", "0.5"], ["1.00", "0"]], [["2", "0.25"]], at_ms, at_ns),
        # Binance-like fixed widths: a price of many zeros, a tiny and a zero quantity
        BookDelta("okx", "ODD-USDT", 12, 11, None, [["50000.00", "0.00000100"]], [["50000.01", "0.00000000"]],
                  at_ms + 100, at_ns + 100_000_000),
    ]
    book = BookFull(
        venue="okx", symbol="ODD-USDT", update_type="snapshot", last_update_id=12, first_update_id=None,
        prev_update_id=-1, sequence_id=12, bids=[["50000.00", "1.0"], ["49999.90", "0.00000100"]],
        asks=[["50000.01", "7"]], checksum=None, is_valid=True, validation_errors=[], exchange_ms=at_ms + 100,
        recv_ns=at_ns + 100_000_001, deep_bids=[["40000.00", "3.5"]], deep_age_ms=900,
        kept_asks=[["60000.00", "0.00000100"]],
    )
    insert_all(backend, database, [*odd, book])
    stored = backend.query(
        f"SELECT update_id, bid_prices, bid_price_steps, bid_quantities, bid_quantity_units, price_scale, price_decimals,"
        f" quantity_scale, quantity_decimals FROM {database}.orderbook_deltas ORDER BY update_id")
    assert stored == [
        (11, ["1.0", "1.00"], [], [], [50, 0], 0, 0, 2, SHORTEST),
        (12, [], [5000000], [], [1], 2, 2, 6, 8),
    ]
    full = backend.query(f"SELECT top_bid_price_units, bid_price_steps, deep_bid_price_steps, kept_ask_price_steps, "
                         f"price_scale, price_decimals, bid_quantities FROM {database}.orderbook_full_depth")
    assert full == [([5000000, 4999990], [5000000, 10], [4000000], [6000000], 2, 2, ["1.0", "0.00000100"])]
    assert [repr(e) for e in read_events(backend, database, ORDERBOOK_DELTAS, "okx", "ODD-USDT")] == [
        repr(as_stored(e)) for e in odd]
    assert [repr(b) for b in read_full_books(backend, database, "okx", "ODD-USDT")] == [repr(as_stored(book))]


def _text_rows(events: Sequence[object]) -> dict[str, dict[str, list[object]]]:
    """Batches as versions 5 and 6 wrote them: levels as text, every full book whole here."""
    batches = to_batches(events, FullBookFrames(keyframe_interval_ms=1))
    books: list[tuple[str, list[dict[str, list[list[str]]]]]] = [
        ("orderbook_deltas", [{"bid": d.bid_updates, "ask": d.ask_updates} for d in events if isinstance(d, BookDelta)]),
        ("orderbook_full_depth", [
            {"top_bid": b.bids[:TOP_LEVELS], "top_ask": b.asks[:TOP_LEVELS], "bid": b.bids, "ask": b.asks,
             "deep_bid": b.deep_bids, "deep_ask": b.deep_asks, "kept_bid": b.kept_bids, "kept_ask": b.kept_asks}
            for b in events if isinstance(b, BookFull)
        ]),
    ]
    for name, sides in books:
        for prefix in sides[0]:
            batches[name][f"{prefix}_prices"] = [[level[0] for level in row[prefix]] for row in sides]
            batches[name][f"{prefix}_quantities"] = [[level[1] for level in row[prefix]] for row in sides]
    return batches


def _tables_at(version: int) -> dict[str, Table]:
    """The tables as a database left at `version` (4 or 5) has them (no features table yet)."""
    added = {c.name for table in TABLES.values() for c in table.columns if c.type in (LEVEL_UNITS, UNITS_FORM)}
    if version < 5:
        added |= {"levels_encoding", "base_update_id"} | {c.name for c in ORDERBOOK_FULL_DEPTH.columns if c.type == LEVEL_COUNT}
    level_text = DELTA_LEVELS_TEXT if version >= 5 else LEVELS_TEXT
    tables = {}
    for name, table in TABLES.items():
        if name == FEATURES.name:
            continue  # migration 6 creates it
        columns = tuple(
            Column(c.name, level_text) if name == ORDERBOOK_DELTAS.name and c.type == DELTA_LEVELS_TEXT else c
            for c in table.columns if c.name not in added
        )
        tables[name] = Table(name, columns, table.order_by, table.time_column, table.version_column)
    return tables


@pytest.mark.parametrize("version", [4, 5])
def test_a_database_left_at_an_older_version_migrates_and_its_rows_read_back(
    backend: ChdbBackend, events: list[object], version: int
) -> None:
    """An older version's tables with its rows (levels as text, every full book whole): after
    the migrations they read back as they were, and so do the new rows (levels as integers)."""
    database = f"version_{version}"
    old_tables = _tables_at(version)
    backend.execute(f"CREATE DATABASE {database}")
    ensure_schema(backend, database, {})  # the bookkeeping table, then the tables as that version made them:
    for name in TABLES:
        backend.execute(f"DROP TABLE {database}.{name}")
    for table in old_tables.values():
        backend.execute(table.create_sql(database))
    backend.execute(f"TRUNCATE TABLE {database}.schema_migrations")
    for migration in MIGRATIONS[:version]:
        backend.execute(migration_sql(migration, database)[-1])
    half = len(events) // 2
    assert not any(isinstance(e, FeatureRow) for e in events[:half])
    for name, batch in _text_rows(events[:half]).items():
        old = {column: batch[column] for column in old_tables[name].column_names}
        backend.insert(database, old_tables[name], old, batch_token(name, old))

    ran = ensure_schema(backend, database, {})
    assert any("ADD COLUMN IF NOT EXISTS bid_price_steps Array(Int64) CODEC(T64, ZSTD(15))" in sql for sql in ran)
    assert any("ADD COLUMN IF NOT EXISTS levels_encoding" in sql for sql in ran) == (version < 5)
    assert any(sql.startswith(f"CREATE TABLE IF NOT EXISTS {database}.features") for sql in ran)
    codecs = dict(backend.query(f"SELECT name, compression_codec FROM system.columns WHERE database = '{database}' "
                                "AND table = 'orderbook_deltas'"))
    assert codecs["bid_quantities"] == "CODEC(ZSTD(15))" and codecs["ask_quantity_units"] == "CODEC(T64, ZSTD(15))"
    assert codecs["collected_at"] == "CODEC(Delta(8), ZSTD(19))"
    trades = dict(backend.query(f"SELECT name, compression_codec FROM system.columns WHERE database = '{database}' "
                                "AND table = 'trades'"))
    assert (trades["trade_id"], trades["side"], trades["price"]) == ("CODEC(ZSTD(19))",) * 3
    insert_all(backend, database, events[half:])  # a new writer: each book starts whole again
    new_deltas = backend.query(f"SELECT count() FROM {database}.orderbook_deltas WHERE length(bid_price_steps) > 0")
    assert new_deltas[0][0] > 0, "the new rows hold their levels as integers"
    stored = [e for e in events if table_of(e) is not None]
    books = {(e.venue, e.symbol or "") for e in stored}  # type: ignore[attr-defined]
    assert Counter(map(repr, read_stored(backend, database, books))) == Counter(map(repr, as_read_back(stored)))


def test_batches_are_columns_in_table_order_with_a_token_that_names_their_rows(events: list[object]) -> None:
    batches: dict[str, dict[str, list[object]]] = {}
    trades = [e for e in events if isinstance(e, Trade)][:50]
    for trade in trades:
        assert add_event(batches, trade, FullBookFrames()) == "trades"
    batch = batches["trades"]
    assert tuple(batch) == TABLES["trades"].column_names
    assert batch["price"] == [t.price for t in trades] and batch["collected_at"] == [t.recv_ns for t in trades]
    assert batch_token("trades", batch) == batch_token("trades", to_batches(trades)["trades"])
    assert batch_token("trades", batch) != batch_token("trades", to_batches(trades[1:])["trades"])
    assert add_event(batches, object(), FullBookFrames()) is None and table_of(QualityEvent("okx", None, "gap", "", None, 1)) is not None


def test_settings_keep_credentials_out_of_urls_and_know_the_tables() -> None:
    assert str(parse_url("clickhouse://db.internal")) == "clickhouse://db.internal:9000"
    assert parse_url("clickhouses://db.internal").port == 9440
    with pytest.raises(ValidationError, match="credentials"):
        ClickHouseSettings(url="clickhouse://user:secret@db.internal:9000")
    with pytest.raises(ValidationError, match="unknown tables"):
        ClickHouseSettings(retention_days={"orderbooks": 3})
    settings = ClickHouseSettings(password="hunter2")  # type: ignore[arg-type]
    assert "hunter2" not in repr(settings) and settings.address() is None, "no URL: embedded chDB"
