"""Two ways to reach ClickHouse behind one small interface: a server over the native
protocol (clickhouse-driver), or chDB, ClickHouse in this process, storing under a directory.

Both take the same DDL and the same columnar batches; `ensure_schema` creates or migrates
the tables on either, and `read_events` reads events back. chDB holds one data directory
per process at a time: open another only after closing every session on the first.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
from chdb import session as chdb_session
from clickhouse_driver import Client

from schemas.clickhouse import (
    MIGRATIONS_TABLE,
    TABLES,
    ClickHouseSettings,
    ServerAddress,
    Table,
    bootstrap_sql,
    migration_sql,
    pending_migrations,
    retention_sql,
)
from schemas.clickhouse_rows import Batch, events_from_rows, select_sql

log = logging.getLogger(__name__)
# The driver logs every failed connect with a traceback; the sink reports each attempt in one line.
logging.getLogger("clickhouse_driver.connection").setLevel(logging.ERROR)

Row = tuple[Any, ...]


class Backend(Protocol):
    """What the sink, the migrations and the readers need of a ClickHouse."""

    where: str  # for logs: never holds a credential

    def execute(self, sql: str) -> None: ...

    def query(self, sql: str) -> list[Row]: ...

    def insert(self, database: str, table: Table, batch: Batch, token: str) -> None:
        """Insert one batch; a batch sent again with the same token is stored once."""
        ...

    def close(self) -> None: ...


class NativeBackend:
    """A ClickHouse server over the native protocol (TCP 9000, or 9440 with TLS).

    Over TLS the server's certificate and host name are checked, against `ca_file` when
    given (else the driver's bundle, certifi's), unless `verify` is false. The password goes
    to the driver only: `where` and every message name the address alone.

    The dedup token needs a server that knows `insert_deduplication_token` (22.x and newer,
    checked on connect, not guessed from the version); an older one gets the rows without
    it, and duplicates from a retry then collapse only when parts merge (ReplacingMergeTree).
    """

    def __init__(
        self,
        address: ServerAddress,
        user: str,
        password: str,
        *,
        ca_file: Path | None = None,
        verify: bool = True,
        connect_timeout_s: float = 3.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.where = str(address)
        tls = {"verify": verify, "ca_certs": str(ca_file) if ca_file else None} if address.secure else {}
        self._client = Client(
            address.host, port=address.port, user=user, password=password, secure=address.secure,
            connect_timeout=connect_timeout_s, send_receive_timeout=timeout_s, sync_request_timeout=timeout_s,
            client_name="marketprism", **tls,
        )
        rows = self._client.execute("SELECT count() FROM system.settings WHERE name = 'insert_deduplication_token'")
        self.has_tokens = bool(rows[0][0])
        self.version = self._client.connection.server_info.version_tuple()
        if not self.has_tokens:
            log.warning("ClickHouse %s (version %s) has no insert_deduplication_token: a retried batch may be stored "
                        "twice until its parts merge (read with FINAL)", self.where, ".".join(map(str, self.version)))

    def execute(self, sql: str) -> None:
        self._client.execute(sql)

    def query(self, sql: str) -> list[Row]:
        return [tuple(row) for row in self._client.execute(sql)]

    def insert(self, database: str, table: Table, batch: Batch, token: str) -> None:
        settings = {"insert_deduplication_token": token} if self.has_tokens else {}
        # The driver rewrites values in place (NULLs, times): give it copies, so a retry sends the original.
        columns = [list(values) for values in batch.values()]
        self._client.execute(
            f"INSERT INTO {database}.{table.name} ({', '.join(batch)}) VALUES", columns, columnar=True, settings=settings
        )

    def close(self) -> None:
        self._client.disconnect()


_ARROW_TYPES: dict[str, pa.DataType] = {
    "String": pa.string(),
    "Int8": pa.int8(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Int64": pa.int64(),
    "Float64": pa.float64(),
    "Bool": pa.bool_(),
    "DateTime64(3, 'UTC')": pa.timestamp("ms", tz="UTC"),
    "DateTime64(9, 'UTC')": pa.timestamp("ns", tz="UTC"),
}


def arrow_type(column_type: str) -> pa.DataType:
    """The Arrow type chDB reads into a column of this ClickHouse type (codec ignored)."""
    base = re.sub(r"\s+CODEC\(.*\)$", "", column_type)
    wrapper = re.fullmatch(r"(Nullable|LowCardinality|Array)\((.*)\)", base)
    if wrapper:
        inner = arrow_type(wrapper.group(2))
        return pa.list_(inner) if wrapper.group(1) == "Array" else inner
    if base not in _ARROW_TYPES:
        raise ValueError(f"no Arrow type for ClickHouse {base!r}: add it to _ARROW_TYPES")
    return _ARROW_TYPES[base]


class ChdbBackend:
    """chDB: the ClickHouse engine in this process, its data under `path`. Batches go in as
    Arrow IPC streams (typed, so integer times land as DateTime64 ticks)."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.where = f"chdb:{path}"
        self._session = chdb_session.Session(str(path))
        self.has_tokens = True
        self._schemas: dict[Table, pa.Schema] = {}  # by definition: one table name may change shape

    def execute(self, sql: str) -> None:
        self._session.query(sql)

    def query(self, sql: str) -> list[Row]:
        result = self._session.query(sql, "ArrowTable")
        return list(zip(*(column.to_pylist() for column in result.columns)))

    def insert(self, database: str, table: Table, batch: Batch, token: str) -> None:
        schema = self._schema(table)
        arrays = [pa.array(batch[field.name], type=field.type) for field in schema]
        data = pa.Table.from_arrays(arrays, schema=schema)
        buffer = io.BytesIO()
        with pa.ipc.new_stream(buffer, schema) as writer:
            writer.write_table(data)
        columns = ", ".join(schema.names)
        quoted = token.replace("\\", "\\\\").replace("'", "\\'")
        sql = f"INSERT INTO {database}.{table.name} ({columns}) SETTINGS insert_deduplication_token = '{quoted}'"
        with self._session.send_insert(sql, "ArrowStream") as inserter:
            inserter.append(buffer.getvalue())
            inserter.finish()

    def close(self) -> None:
        self._session.close()

    def _schema(self, table: Table) -> pa.Schema:
        schema = self._schemas.get(table)
        if schema is None:
            schema = self._schemas[table] = pa.schema([(c.name, arrow_type(c.type)) for c in table.columns])
        return schema


def open_backend(settings: ClickHouseSettings) -> Backend:
    """The configured server, or chDB under `embedded_path` when no URL is set."""
    address = settings.address()
    if address is None:
        return ChdbBackend(settings.embedded_path)
    return NativeBackend(address, settings.user, settings.secret_password(), ca_file=settings.tls_ca_file,
                         verify=settings.tls_verify)


def ensure_schema(backend: Backend, database: str, retention_days: dict[str, int]) -> list[str]:
    """Create or migrate the tables and set each table's TTL; the statements that ran.

    Safe to run on every start and from several processes: every statement is idempotent,
    and a migration is recorded only after all of its statements succeeded.
    """
    ran: list[str] = []

    def run(sql: str) -> None:
        backend.execute(sql)
        ran.append(sql)

    for sql in bootstrap_sql(database):
        backend.execute(sql)
    applied = {row[0] for row in backend.query(f"SELECT version FROM {database}.{MIGRATIONS_TABLE}")}
    for migration in pending_migrations(applied):
        log.info("ClickHouse %s: applying schema migration %d (%s)", backend.where, migration.version, migration.description)
        for sql in migration_sql(migration, database):
            run(sql)
    engines: dict[str, str] = dict(backend.query(f"SELECT name, engine_full FROM system.tables WHERE database = '{database}'"))
    for name, table in TABLES.items():
        days = retention_days.get(name, 0)
        alter = retention_sql(table, database, days, engines.get(name, ""))
        if alter:
            log.info("ClickHouse %s: %s keeps rows %s", backend.where, name, f"{days} days" if days else "forever")
            run(alter)
    return ran


def read_events(
    backend: Backend, database: str, table: Table, exchange: str, symbol: str, **select: Any
) -> list[object]:
    """One book's events from `table`, each once, in key order (`select`: see `select_sql`)."""
    return events_from_rows(table, backend.query(select_sql(table, database, exchange, symbol, **select)))
