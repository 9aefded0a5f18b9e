"""The ClickHouse schema as code: seven tables, their migrations, and retention from settings.

Why these shapes (figures from `bench/storage_codecs.py`, see its docstring):

- Prices and quantities are the exchange's exact decimal text, never Decimal or floats:
  OKX checksums are computed over the text as received ("0.1" and "0.10" differ) and
  Binance pads to a fixed scale. Scalars (trades, tickers, klines) are stored as that text
  (`String`): ZSTD over text that repeats from row to row beats integers there (ticker
  quantities 67 KB against 102 KB as Delta integers, bench/storage.py's 300 s). Level arrays,
  since migration 7, are integers that give the text back exactly (`schemas.decimal_units`):
  a row's prices share one scale (value = m x 10^-scale) and one text form (a fixed number
  of decimals, or the shortest form), and so do its quantities (`price_scale`,
  `price_decimals`, `quantity_scale`, `quantity_decimals`); prices as steps from the level
  before (`bid_price_steps`, small and positive on a sorted side), quantities as they are
  (`bid_quantity_units`), in T64 + ZSTD(15): deltas' quantities 23% and prices 31% smaller
  than ZSTD(15) over their text. Texts of a row with no such form ("1.0" beside "1.00", a
  leading zero) stay in the text columns (`bid_prices`...), as in every row written
  before migration 7; a reader takes those columns whenever they hold anything.
- Levels are parallel arrays (`bid_price_steps[i]`, `bid_quantity_units[i]`): the columnar form
  both drivers insert natively, and what `Array(Tuple(...))` would store anyway.
- `orderbook_full_depth` (the plan's table) keeps the top 20 per side of every full book in
  small columns for fast queries (`top_bid_price_units`..., plain integers:
  `top_bid_price_units[1] / exp10(price_scale)` is the best bid). The whole depth is stored only in keyframes: the first
  full book of a book in each KEYFRAME_INTERVAL_MS slot of exchange time, the first one a
  writer sees, and one whose update id does not follow the one before. Every other full book is written against the previous one of its
  book (`base_update_id`): a snapshot (a new sync, a Binance audit) as the levels that
  changed, any other as that book moved forward by the stored deltas in between, so its
  arrays hold only what the deltas cannot give: the levels past the base's deepest level
  (the tail that came up from below); OKX books-full levels (`deep_*`) as their changes
  (changed or new levels, "0" for one gone); the counts (`bid_levels`, `kept_bid_levels`...)
  say where the sides end. A second of a 5000-level book then costs a few hundred bytes
  instead of kilobytes (figures: `bench/storage.py`, README).
  `operators.stored_books` reads them back, exactly the books that were published.
- Every table is a `ReplacingMergeTree` whose sorting key is the event's identity
  (exchange, symbol, time, update id or trade id; for klines the candle, see `KLINES`),
  `PARTITION BY toYYYYMM(time)`. A batch retried with the same
  `insert_deduplication_token` is dropped at insert (the
  tables keep the last DEDUP_WINDOW_BLOCKS block hashes); rows replayed in differently cut
  batches (a crash, a re-run replay) collapse on merge, and `FINAL` reads see them once.
  (Two full books at one update id and exchange time are one book: the newest receipt,
  whose OKX deep levels may be fresher, is the one kept.)
- `timestamp` is the exchange's time, or the receive time where the exchange sent none
  (Binance REST snapshots), as in the JSON encoding; `collected_at` is the receive time
  in ns. Ids the venue did not send are stored as NULL, or 0 where the id is part of the
  sorting key (keys cannot be NULL). Only price and quantity of a level are kept (OKX's
  order count is not used by anything, its checksum included).

The DDL needs ClickHouse 23 or newer (chDB included); tests run it on chDB.

Migrations: version 1 creates the first five tables from the definitions below (their
latest shape); each later change adds a migration of idempotent statements (`CREATE TABLE
IF NOT EXISTS` for a new table, `ADD COLUMN IF NOT EXISTS`, `MODIFY COLUMN ... CODEC`) and
updates the definition, so a new database and an old one end up alike. Applied versions
are recorded in `schema_migrations`. Retention is not a migration: it is a setting,
compared with each table's TTL on every start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEDUP_WINDOW_BLOCKS = 1000  # inserts remembered per table for insert_deduplication_token
TOP_LEVELS = 20  # levels per side in orderbook_full_depth's quick columns
# A full book of a new slot of exchange time is stored whole: a reader needs at most this
# much of one book's rows and deltas to rebuild any stored full book.
KEYFRAME_INTERVAL_MS = 600_000

# Codecs chosen by bench/storage_codecs.py (figures in its docstring). Book updates come
# on a 100 ms cadence, where DoubleDelta wins; trades and tickers are irregular: Delta.
NAME = "LowCardinality(String)"
BOOK_TIME = "DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))"
BOOK_ID = "UInt64 CODEC(DoubleDelta, ZSTD(1))"
BOOK_NULLABLE_ID = "Nullable(Int64) CODEC(DoubleDelta, ZSTD(1))"
MARKET_TIME = "DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))"
# Receive times are irregular to the µs: ZSTD(19) keeps their steps 8% smaller than ZSTD(1).
RECEIVED = "DateTime64(9, 'UTC') CODEC(Delta, ZSTD(19))"
# Trades and tickers come by the thousand a minute: ZSTD(19) stores their quantities 10-20%
# smaller than ZSTD(9) (bench/storage.py), at a write speed they never notice; trade ids
# (sequential text) and sides 25% and 70% smaller than ZSTD(3) and LZ4.
DECIMAL_TEXT = "String CODEC(ZSTD(19))"
TRADE_ID = "String CODEC(ZSTD(19))"
TRADE_SIDE = "LowCardinality(String) CODEC(ZSTD(19))"
LEVELS_TEXT = "Array(String) CODEC(ZSTD(9))"
# Deltas are most of what is stored: ZSTD(15) keeps their level text 10-15% smaller than ZSTD(9).
DELTA_LEVELS_TEXT = "Array(String) CODEC(ZSTD(15))"
LEVEL_COUNT = "UInt32 CODEC(T64, ZSTD(1))"
# Since migration 7, level arrays as integers (schemas.decimal_units): T64 + ZSTD(15) keeps
# them a quarter (quantities) to a third (prices, as steps) smaller than their text in ZSTD(15).
# (ZSTD(19) would save 2% more at a third of the speed, 2 MB/s: too slow for a replay's inserts.)
LEVEL_UNITS = "Array(Int64) CODEC(T64, ZSTD(15))"
UNITS_FORM = "Int8 CODEC(ZSTD(1))"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # the ClickHouse type, with its codec


@dataclass(frozen=True, slots=True)
class Table:
    """One table: columns in insert order, identity (sorting key) and time column."""

    name: str
    columns: tuple[Column, ...]
    order_by: tuple[str, ...]
    time_column: str  # partitions and retention
    version_column: str  # ReplacingMergeTree keeps the row with the largest value

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def create_sql(self, database: str) -> str:
        columns = ",\n    ".join(f"{c.name} {c.type}" for c in self.columns)
        return (
            f"CREATE TABLE IF NOT EXISTS {database}.{self.name} (\n    {columns}\n)\n"
            f"ENGINE = ReplacingMergeTree({self.version_column})\n"
            f"PARTITION BY toYYYYMM({self.time_column})\n"
            f"ORDER BY ({', '.join(self.order_by)})\n"
            f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW_BLOCKS}"
        )

    def ttl_expression(self, days: int) -> str:
        # Written as ClickHouse prints it in system.tables, so the running TTL can be compared.
        return f"toDateTime({self.time_column}) + toIntervalDay({days})"


def _book_side_columns(prefix: str, side: str, type_: str) -> tuple[Column, ...]:
    return (Column(f"{prefix}{side}_prices", type_), Column(f"{prefix}{side}_quantities", type_))


def _units_side_columns(prefix: str, side: str, prices: str = "steps") -> tuple[Column, ...]:
    """A side's levels as integers: prices as `steps` (or plain `units`), quantities as units."""
    return (Column(f"{prefix}{side}_price_{prices}", LEVEL_UNITS), Column(f"{prefix}{side}_quantity_units", LEVEL_UNITS))


# How a row's integers read back as text (schemas.decimal_units): one scale and one text
# form for all of its prices, one for all of its quantities.
UNITS_FORM_COLUMNS = tuple(
    Column(name, UNITS_FORM) for name in ("price_scale", "price_decimals", "quantity_scale", "quantity_decimals")
)


ORDERBOOK_DELTAS = Table(
    "orderbook_deltas",
    (
        Column("exchange_name", NAME),
        Column("symbol_name", NAME),
        Column("timestamp", BOOK_TIME),
        Column("update_id", BOOK_ID),
        Column("first_update_id", BOOK_NULLABLE_ID),
        Column("prev_update_id", BOOK_NULLABLE_ID),
        *_book_side_columns("", "bid", DELTA_LEVELS_TEXT),
        *_book_side_columns("", "ask", DELTA_LEVELS_TEXT),
        Column("collected_at", RECEIVED),
        # Since migration 7 the levels are here, as integers, and the text columns above
        # are empty, unless a row's texts have no integer form (schemas.decimal_units).
        *_units_side_columns("", "bid"),
        *_units_side_columns("", "ask"),
        *UNITS_FORM_COLUMNS,
    ),
    order_by=("exchange_name", "symbol_name", "timestamp", "update_id"),
    time_column="timestamp",
    version_column="collected_at",
)

ORDERBOOK_FULL_DEPTH = Table(
    "orderbook_full_depth",
    (
        Column("exchange_name", NAME),
        Column("symbol_name", NAME),
        Column("timestamp", BOOK_TIME),
        Column("last_update_id", BOOK_ID),
        Column("update_type", NAME),
        Column("first_update_id", BOOK_NULLABLE_ID),
        Column("prev_update_id", BOOK_NULLABLE_ID),
        Column("sequence_id", BOOK_NULLABLE_ID),
        *_book_side_columns("top_", "bid", LEVELS_TEXT),
        *_book_side_columns("top_", "ask", LEVELS_TEXT),
        *_book_side_columns("", "bid", LEVELS_TEXT),
        *_book_side_columns("", "ask", LEVELS_TEXT),
        # OKX: levels below the checksummed window, from the latest REST books-full, and their age.
        *_book_side_columns("deep_", "bid", LEVELS_TEXT),
        *_book_side_columns("deep_", "ask", LEVELS_TEXT),
        Column("deep_age_ms", "Nullable(Int64) CODEC(ZSTD(1))"),
        Column("depth_levels", "UInt32"),
        Column("checksum", "Nullable(Int64) CODEC(T64, ZSTD(1))"),
        Column("is_valid", "Bool"),
        Column("validation_errors", "Array(String)"),
        Column("collected_at", RECEIVED),
        # OKX: levels the engine keeps past the 400-level window (not published), so a
        # book rebuilt from storage matches the live one to the window's edge.
        *_book_side_columns("kept_", "bid", LEVELS_TEXT),
        *_book_side_columns("kept_", "ask", LEVELS_TEXT),
        # How many levels per side, from the top, are provably the exchange's.
        Column("exact_bid_levels", "Nullable(UInt32) CODEC(T64, ZSTD(1))"),
        Column("exact_ask_levels", "Nullable(UInt32) CODEC(T64, ZSTD(1))"),
        # How the levels are written (schemas.clickhouse_rows.FullBookFrames): "whole" (or ''
        # in rows older than migration 5), "deltas" or "changes"; and, unless whole, the
        # last_update_id of the previous full book of this book, which this one is written against.
        Column("levels_encoding", NAME),
        Column("base_update_id", BOOK_NULLABLE_ID),
        Column("bid_levels", LEVEL_COUNT),
        Column("ask_levels", LEVEL_COUNT),
        Column("kept_bid_levels", LEVEL_COUNT),
        Column("kept_ask_levels", LEVEL_COUNT),
        # Since migration 7 every level array is here, as integers (the top 20 as plain
        # units, for queries; the others as price steps), and the text columns are empty,
        # unless a row's texts have no integer form (schemas.decimal_units).
        *_units_side_columns("top_", "bid", "units"),
        *_units_side_columns("top_", "ask", "units"),
        *(column for prefix in ("", "deep_", "kept_") for side in ("bid", "ask")
          for column in _units_side_columns(prefix, side)),
        *UNITS_FORM_COLUMNS,
    ),
    order_by=("exchange_name", "symbol_name", "timestamp", "last_update_id"),
    time_column="timestamp",
    version_column="collected_at",
)

TRADES = Table(
    "trades",
    (
        Column("exchange_name", NAME),
        Column("symbol_name", NAME),
        Column("timestamp", MARKET_TIME),
        Column("trade_id", TRADE_ID),
        Column("price", DECIMAL_TEXT),
        Column("quantity", DECIMAL_TEXT),
        Column("side", TRADE_SIDE),
        Column("collected_at", RECEIVED),
    ),
    order_by=("exchange_name", "symbol_name", "timestamp", "trade_id"),
    time_column="timestamp",
    version_column="collected_at",
)

# OKX tickers carry no update id, so the receive time completes their identity.
TICKERS = Table(
    "tickers",
    (
        Column("exchange_name", NAME),
        Column("symbol_name", NAME),
        Column("timestamp", MARKET_TIME),
        Column("collected_at", RECEIVED),
        Column("update_id", "Nullable(Int64) CODEC(Delta, ZSTD(1))"),
        Column("best_bid_price", DECIMAL_TEXT),
        Column("best_bid_quantity", DECIMAL_TEXT),
        Column("best_ask_price", DECIMAL_TEXT),
        Column("best_ask_quantity", DECIMAL_TEXT),
        Column("last_price", "Nullable(String) CODEC(ZSTD(9))"),
    ),
    order_by=("exchange_name", "symbol_name", "timestamp", "collected_at"),
    time_column="timestamp",
    version_column="collected_at",
)

# Quality events have only a receive time; symbol '' is an input that named no book.
QUALITY_EVENTS = Table(
    "quality_events",
    (
        Column("exchange_name", NAME),
        Column("symbol_name", NAME),
        Column("collected_at", RECEIVED),
        Column("kind", NAME),
        Column("detail", "String CODEC(ZSTD(3))"),
        Column("update_id", "Nullable(Int64)"),
    ),
    order_by=("exchange_name", "symbol_name", "collected_at", "kind", "detail"),
    time_column="collected_at",
    version_column="collected_at",
)

# One row per candle: a candle's updates share its key (venue, symbol, interval, open time),
# so the latest receipt replaces the earlier ones and `FINAL` reads the candle as it stands,
# its last closed state once `is_closed`. Every update stays on NATS and in the recordings,
# and the trades table holds what a finer history would need. Candles lie on a regular
# grid of open times: DoubleDelta, as for book times. The JSON's `interval` is
# `kline_interval` here: INTERVAL is a word of ClickHouse's SQL, which older servers
# (18.16) cannot read as a column name in ORDER BY.
KLINES = Table(
    "klines",
    (
        Column("exchange_name", NAME),
        Column("symbol_name", NAME),
        Column("kline_interval", NAME),
        Column("open_time", BOOK_TIME),
        Column("close_time", BOOK_TIME),
        Column("open_price", DECIMAL_TEXT),
        Column("high_price", DECIMAL_TEXT),
        Column("low_price", DECIMAL_TEXT),
        Column("close_price", DECIMAL_TEXT),
        Column("volume", DECIMAL_TEXT),
        Column("quote_volume", DECIMAL_TEXT),
        Column("trade_count", "Nullable(UInt64) CODEC(T64, ZSTD(1))"),
        Column("is_closed", "Bool"),
        Column("timestamp", MARKET_TIME),
        Column("collected_at", RECEIVED),
    ),
    order_by=("exchange_name", "symbol_name", "kline_interval", "open_time"),
    time_column="open_time",
    version_column="collected_at",
)

# One row per feature sample (`operators.features`, as published on features.{ex}.{sym}),
# keyed as the delta it follows: by default the first sample of each book in every 10 s
# (`ClickHouseSettings.features_interval_ms`, `schemas.clickhouse_rows.FeatureSampling`),
# since a row costs more than the book's market data of that second and every sample can
# be computed again from the stored books. Names and values are parallel arrays, as levels are: which
# features a row has depends on the engine's settings (bands, notionals, OFI levels), so a
# column per feature would need a migration for every setting; one value is
# `feature_values[indexOf(feature_names, 'spread')]`. The names repeat in every row and
# cost next to nothing once compressed; values are float64, NULL where undefined.
FEATURES = Table(
    "features",
    (
        Column("exchange_name", NAME),
        Column("symbol_name", NAME),
        Column("timestamp", BOOK_TIME),
        Column("update_id", BOOK_ID),
        Column("collected_at", RECEIVED),
        Column("feature_names", "Array(LowCardinality(String)) CODEC(ZSTD(3))"),
        Column("feature_values", "Array(Nullable(Float64)) CODEC(ZSTD(3))"),
    ),
    order_by=("exchange_name", "symbol_name", "timestamp", "update_id"),
    time_column="timestamp",
    version_column="collected_at",
)

FIRST_TABLES = (ORDERBOOK_DELTAS, ORDERBOOK_FULL_DEPTH, TRADES, TICKERS, QUALITY_EVENTS)
TABLES: dict[str, Table] = {t.name: t for t in (*FIRST_TABLES, KLINES, FEATURES)}

MIGRATIONS_TABLE = "schema_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]  # templates with {db}; each one idempotent


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "order book deltas, full-depth books, trades, tickers, quality events",
        tuple(t.create_sql("{db}") for t in FIRST_TABLES),
    ),
    Migration(
        2,
        "orderbook_full_depth: OKX levels kept past the live window",
        tuple(
            f"ALTER TABLE {{db}}.orderbook_full_depth ADD COLUMN IF NOT EXISTS {column.name} {column.type}"
            for column in ORDERBOOK_FULL_DEPTH.columns
            if column.name.startswith("kept_")
        ),
    ),
    Migration(3, "klines: one row per candle, the latest update of each", (KLINES.create_sql("{db}"),)),
    Migration(
        4,
        "orderbook_full_depth: the exact depth of each side",
        tuple(
            f"ALTER TABLE {{db}}.orderbook_full_depth ADD COLUMN IF NOT EXISTS {column.name} {column.type}"
            for column in ORDERBOOK_FULL_DEPTH.columns
            if column.name.startswith("exact_")
        ),
    ),
    Migration(
        5,
        "orderbook_full_depth: full books whole or written against the previous one; "
        "delta levels, trade, ticker and kline decimals in ZSTD(15)",
        tuple(
            f"ALTER TABLE {{db}}.orderbook_full_depth ADD COLUMN IF NOT EXISTS {column.name} {column.type}"
            for column in ORDERBOOK_FULL_DEPTH.columns
            if column.name in ("levels_encoding", "base_update_id") or column.type == LEVEL_COUNT
        )
        + tuple(
            f"ALTER TABLE {{db}}.{table.name} MODIFY COLUMN {column.name} {column.type}"
            for table in (ORDERBOOK_DELTAS, TRADES, TICKERS, KLINES)
            for column in table.columns
            if column.type in (DELTA_LEVELS_TEXT, DECIMAL_TEXT)
        ),
    ),
    Migration(6, "features: one row per feature sample of a book", (FEATURES.create_sql("{db}"),)),
    Migration(
        7,
        "orderbook_deltas, orderbook_full_depth: level arrays as integers (T64), their scale and text form; "
        "receive times, decimals, trade ids and sides in ZSTD(19)",
        tuple(
            f"ALTER TABLE {{db}}.{table.name} ADD COLUMN IF NOT EXISTS {column.name} {column.type}"
            for table in (ORDERBOOK_DELTAS, ORDERBOOK_FULL_DEPTH)
            for column in table.columns
            if column.type in (LEVEL_UNITS, UNITS_FORM)
        )
        + tuple(
            f"ALTER TABLE {{db}}.{table.name} MODIFY COLUMN {column.name} {column.type}"
            for table in TABLES.values()
            for column in table.columns
            if column.type in (RECEIVED, DECIMAL_TEXT, TRADE_ID, TRADE_SIDE)
        ),
    ),
)


def bootstrap_sql(database: str) -> list[str]:
    """The database and the table that records applied migrations."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        f"CREATE TABLE IF NOT EXISTS {database}.{MIGRATIONS_TABLE} "
        "(version UInt32, description String, applied_at DateTime) ENGINE = ReplacingMergeTree ORDER BY version",
    ]


def pending_migrations(applied: set[int]) -> list[Migration]:
    return [m for m in MIGRATIONS if m.version not in applied]


def migration_sql(migration: Migration, database: str) -> list[str]:
    """The migration's statements, then the row that records it."""
    description = migration.description.replace("\\", "\\\\").replace("'", "\\'")
    record = (
        f"INSERT INTO {database}.{MIGRATIONS_TABLE} (version, description, applied_at) "
        f"VALUES ({migration.version}, '{description}', now())"
    )
    return [s.replace("{db}", database) for s in migration.statements] + [record]


def retention_sql(table: Table, database: str, days: int, engine_full: str) -> str | None:
    """The ALTER that brings a table's TTL to `days` (0: keep forever), or None if it is there.

    `engine_full` is the table's `system.tables.engine_full`. Shortening the retention
    drops older rows in a background mutation; lengthening it cannot bring them back.
    """
    has_ttl = " TTL " in f" {engine_full} "
    if days <= 0:
        return f"ALTER TABLE {database}.{table.name} REMOVE TTL" if has_ttl else None
    expression = table.ttl_expression(days)
    if f"TTL {expression}" in engine_full:
        return None
    return f"ALTER TABLE {database}.{table.name} MODIFY TTL {expression}"


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where a ClickHouse server listens (no credentials: those never travel in a URL here)."""

    host: str
    port: int
    secure: bool

    def __str__(self) -> str:
        return f"{'clickhouses' if self.secure else 'clickhouse'}://{self.host}:{self.port}"


def parse_url(url: str) -> ServerAddress:
    """`clickhouse://host[:9000]`, or `clickhouses://` for TLS (port 9440)."""
    parts = urlsplit(url)
    if parts.scheme not in ("clickhouse", "clickhouses"):
        raise ValueError(f"a ClickHouse URL starts with clickhouse:// or clickhouses://, not {parts.scheme or url!r}://")
    if parts.username or parts.password:
        raise ValueError("put ClickHouse credentials in MARKETPRISM_CLICKHOUSE_USER/_PASSWORD, not in the URL")
    if not parts.hostname:
        raise ValueError(f"no host in the ClickHouse URL {url!r}")
    if parts.path.strip("/"):
        raise ValueError("name the database in MARKETPRISM_CLICKHOUSE_DATABASE, not in the URL")
    secure = parts.scheme == "clickhouses"
    return ServerAddress(parts.hostname, parts.port or (9440 if secure else 9000), secure)


class ClickHouseSettings(BaseSettings):
    """MARKETPRISM_CLICKHOUSE_*: where to store, how to log in, how long to keep, how to batch.

    Without a URL, the same DDL and writer run on chDB (in-process ClickHouse) under
    `embedded_path`. The password is a SecretStr, or a file (a mounted secret) read at each
    connect: printing or logging settings never shows it. TLS is the `clickhouses://`
    scheme; the server's certificate is verified, against `tls_ca_file` when set.
    """

    # pydantic quotes the input in a validation error; the input holds the password.
    model_config = SettingsConfigDict(env_prefix="MARKETPRISM_CLICKHOUSE_", extra="ignore", hide_input_in_errors=True)

    url: str | None = Field(default=None, description="clickhouse://host:port, clickhouses:// for TLS; None: embedded chDB")
    user: str = "default"
    password: SecretStr = SecretStr("")
    password_file: Path | None = Field(default=None, description="a file holding the password, instead of password")
    tls_ca_file: Path | None = Field(default=None, description="CA bundle the server's certificate must chain to")
    tls_verify: bool = Field(default=True, description="false accepts any server certificate (a test server, say)")
    database: str = Field(default="marketprism", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    embedded_path: Path = Field(default=Path("data/clickhouse"), description="chDB's data directory")
    retention_days: dict[str, int] = Field(
        default_factory=dict, description='per table, e.g. {"orderbook_deltas": 30}; absent or 0 keeps rows forever'
    )
    batch_rows: int = Field(default=10_000, ge=1, description="a table's batch is inserted at this many rows...")
    batch_age_s: float = Field(default=5.0, gt=0, description="...or when its oldest row is this old")
    features_interval_ms: int = Field(
        default=10_000, ge=0, description="the features table keeps the first sample of each book in every slot "
        "this long (the FEATURES stream keeps them all); 0 stores every sample",
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value:
            parse_url(value)
        return value or None

    @field_validator("retention_days")
    @classmethod
    def _known_tables(cls, value: Mapping[str, int]) -> Mapping[str, int]:
        unknown = set(value) - set(TABLES)
        if unknown:
            raise ValueError(f"retention for unknown tables {sorted(unknown)}; tables: {sorted(TABLES)}")
        if any(days < 0 for days in value.values()):
            raise ValueError("retention_days must be 0 (forever) or positive")
        return value

    @model_validator(mode="after")
    def _one_password_and_tls_on_tls(self) -> ClickHouseSettings:
        if self.password_file is not None and self.password.get_secret_value():
            raise ValueError("give MARKETPRISM_CLICKHOUSE_PASSWORD or MARKETPRISM_CLICKHOUSE_PASSWORD_FILE, not both")
        address = self.address()
        if (self.tls_ca_file is not None or not self.tls_verify) and not (address and address.secure):
            raise ValueError("MARKETPRISM_CLICKHOUSE_TLS_* need a clickhouses:// URL (the server's secure port)")
        return self

    def address(self) -> ServerAddress | None:
        return parse_url(self.url) if self.url else None

    def secret_password(self) -> str:
        """The password itself, for the driver only: read from `password_file` at each call,
        so a rotated secret is picked up at the next connect. An error names the file, never its content."""
        if self.password_file is None:
            return self.password.get_secret_value()
        try:
            return self.password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise OSError(f"cannot read the ClickHouse password file {self.password_file}: {exc.strerror}") from None
