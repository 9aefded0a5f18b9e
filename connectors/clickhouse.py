"""Bytewax sink that stores normalized events in ClickHouse (or chDB), exactly once, and
never loses a batch when the server is away.

ClickHouseSink — unit of parallelism: one partition ("clickhouse"), i.e. one connection
inserting every table's batches. ClickHouse wants few large inserts rather than many small
ones, and one fixed partition has one stable spill directory whatever the number of
workers, so batches spilled by one run are found by the next. (chDB, the embedded default,
can only be opened by one process anyway.) Items are `(key, event)`: BookFull, BookDelta,
Trade, Ticker, QualityEvent, Kline, FeatureRow, or `connectors.acks.Stored` wrapping one (the store's
stream messages); anything else (resync requests, status) is ignored. The key only routes,
so any key will do (`venue:symbol`, say).

Recovery snapshot: nothing (None): the spill directory is the state. (The previous full
book of each book, which the next one is written against, is not: a new partition starts
every book with a keyframe, see `schemas.clickhouse_rows.FullBookFrames`.) `snapshot()`, at the
end of every epoch, seals the open batches and makes them durable: inserted, or else
fsync'd to the spill directory.

Delivery: exactly-once. Each batch carries a deterministic `insert_deduplication_token`
derived from its rows' identities and versions, so a batch retried after a lost reply, or drained from
disk after a crash, is stored once (within the tables' DEDUP_WINDOW_BLOCKS most recent
inserts). Rows replayed in differently cut batches (Bytewax recovery re-running an epoch)
share the tables' ReplacingMergeTree keys and collapse on merge; `FINAL` reads see each
once before that. Per table, batches are inserted in the order they were sealed.

How it works: `write_batch` converts events into columns of an open batch per table
(`schemas.clickhouse_rows`). A batch is sealed when it reaches batch_rows or batch_bytes,
or when its first row is batch_age_s old, and joins a FIFO that a writer thread inserts
from. The writer connects (creating or migrating the schema on every connect), inserts the
head, and removes it once the server confirmed it. When an insert fails the connection is
dropped, every sealed batch in memory is spilled to disk (one zstd-compressed file per
batch) and so is every batch sealed until the disk is drained again; reconnects back off
exponentially (capped, jittered). While the server is up, `write_batch` blocks once sealed
batches in memory exceed buffer_bytes: backpressure. A batch the server refuses
max_refusals times in a row (a type error, say), while answering other queries, is moved
to spill_dir/rejected and logged, rather than blocking everything behind it.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import zstandard
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from clickhouse_driver import errors as driver_errors

from connectors.acks import Acks, AckLedger, Stored
from connectors.clickhouse_backend import Backend, ensure_schema, open_backend
from connectors.spill import SUFFIX, SpillQueue, fsync_dir, write_durably
from schemas.clickhouse import TABLES, ClickHouseSettings
from schemas.clickhouse_rows import Batch, FeatureSampling, FullBookFrames, add_event, batch_len, batch_token
from schemas.events import BookDelta, BookFull
from schemas.features import FeatureRow

log = logging.getLogger(__name__)

PARTITION = "clickhouse"
REJECTED_DIR = "rejected"
LOG_BACKLOG_EVERY_S = 10.0
LEVEL_BYTES = 24  # rough size of one price level in a batch, for batch_bytes and buffer_bytes
ROW_BYTES = 100
FEATURE_BYTES = 16  # one feature's value and its (shared) name

# Server answers that say "not now" rather than "never": they are retried without limit.
TRANSIENT_CODES = frozenset({159, 202, 203, 209, 210, 241, 242, 243, 252, 425})
CONNECTION_ERRORS = (OSError, EOFError, driver_errors.NetworkError, driver_errors.SocketTimeoutError,
                     driver_errors.UnexpectedPacketFromServerError)


@dataclass(slots=True)
class SinkStats:
    """Counters of the sink partition (gauges: open_rows, buffered, on_disk, on_disk_bytes)."""

    inserted_rows: int = 0
    inserted_batches: int = 0  # confirmed by the server, retries included once
    failures: int = 0  # failed connects and failed inserts
    spilled: int = 0  # batches written to the spill directory
    rejected: int = 0  # batches refused for good, kept in spill_dir/rejected
    open_rows: int = 0  # rows in batches not sealed yet
    buffered: int = 0  # sealed batches waiting in memory
    on_disk: int = 0  # sealed batches waiting in the spill directory
    on_disk_bytes: int = 0
    features_not_kept: int = 0  # feature rows between the stored samples (ClickHouseSettings.features_interval_ms)
    no_table: int = 0  # stream messages of a kind no table stores (acked, logged)
    inserted_by_table: dict[str, int] = field(default_factory=dict)
    batches_by_table: dict[str, int] = field(default_factory=dict)
    # The store's stream messages in committed batches, per (stream, table).
    stored_messages: dict[tuple[str, str], int] = field(default_factory=dict)
    connected: bool | None = None  # the last connect or insert worked; None before the first


@dataclass(slots=True)
class _Sealed:
    """A batch ready to insert, with the token that makes its inserts idempotent, and the
    stream messages it acknowledges once inserted (the store's; none in a direct run)."""

    table: str
    token: str
    batch: Batch
    size: int  # estimated bytes
    acks: Acks = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return batch_len(self.batch)


def _encode(sealed: _Sealed) -> bytes:
    record = {"table": sealed.table, "token": sealed.token, "size": sealed.size, "batch": sealed.batch, "acks": sealed.acks}
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(orjson.dumps(record))


def _decode(data: bytes) -> _Sealed:
    record = orjson.loads(zstandard.ZstdDecompressor().decompress(data))
    if record["table"] not in TABLES:
        raise ValueError(f"unknown table {record['table']!r}")
    return _Sealed(record["table"], record["token"], record["batch"], record["size"], record.get("acks", {}))


def journaled_acks(spill_dir: Path) -> Acks:
    """The stream messages held by the batches an earlier run left in `spill_dir`."""
    acks: dict[str, list[int]] = {}
    for path in sorted(Path(spill_dir).glob(f"*{SUFFIX}")):
        try:
            for stream, seqs in _decode(path.read_bytes()).acks.items():
                acks.setdefault(stream, []).extend(seqs)
        except Exception as exc:  # SpillQueue sets it aside as corrupt when it gets there
            log.error("spill file %s cannot be read (%s); its messages will be stored again", path, exc)
    return acks


def stream_token(table: str, idents: list[str]) -> str:
    """The dedup token of a batch of stream messages: the table and the messages' names
    (`STREAM:sequence`), so a batch inserted again after a crash is recognised."""
    digest = hashlib.blake2b("\n".join(idents).encode(), digest_size=16).hexdigest()
    return f"{table}:{len(idents)}:{digest}"


def _size(event: object) -> int:
    if isinstance(event, BookFull):
        return ROW_BYTES + LEVEL_BYTES * (len(event.bids) + len(event.asks) + len(event.deep_bids) + len(event.deep_asks))
    if isinstance(event, BookDelta):
        return ROW_BYTES + LEVEL_BYTES * (len(event.bid_updates) + len(event.ask_updates))
    if isinstance(event, FeatureRow):
        return ROW_BYTES + FEATURE_BYTES * len(event.values)
    return ROW_BYTES


@dataclass(slots=True)
class _Limits:
    batch_rows: int
    batch_bytes: int
    batch_age_s: float
    buffer_bytes: int
    flush_timeout_s: float
    close_timeout_s: float
    retry_cap_s: float
    max_refusals: int


def _reason(exc: BaseException) -> str:
    """An error in one line. The driver puts the code on the first line of a server error and
    the server's words ("Wrong password for user ...") on the next, then a stack trace."""
    return " ".join(str(exc).split("\n")[:2]).split(" Stack trace:")[0].strip()


def _is_refusal(exc: BaseException) -> bool:
    """The server answered and said no for a reason retrying will not fix."""
    if isinstance(exc, CONNECTION_ERRORS):
        return False
    if isinstance(exc, driver_errors.ServerException):
        return exc.code not in TRANSIENT_CODES
    return True  # chDB errors, and a batch the driver cannot encode


class _ClickHousePartition(StatefulSinkPartition[object, None]):
    def __init__(
        self,
        *,
        settings: ClickHouseSettings,
        spill_dir: Path,
        limits: _Limits,
        stats: SinkStats,
        manage_schema: bool,
        ledger: AckLedger | None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger  # the store's: every batch goes to disk before its insert, acks after it
        self._manage_schema = manage_schema
        self._database = settings.database
        self._limits = limits
        self.stats = stats
        self._rejected_dir = spill_dir / REJECTED_DIR
        self._cond = threading.Condition()
        # guarded by _cond:
        self._open: dict[str, Batch] = {}
        self._open_sizes: dict[str, int] = {}
        self._open_since: dict[str, float] = {}
        self._frames = FullBookFrames()  # full books after the first of each book: against the previous one
        self._sampling = FeatureSampling(settings.features_interval_ms)
        self._open_idents: dict[str, list[str]] = {}
        self._open_acks: dict[str, Acks] = {}
        self._queue: SpillQueue[_Sealed] = SpillQueue(spill_dir, _encode, _decode)
        self._memory_bytes = 0
        self._down = False
        self._close_by: float | None = None
        self._next_backlog_log = 0.0
        self._update_gauges()
        if self._queue.disk_count:
            log.info("ClickHouse sink: %d batches (%d bytes) left in %s by an earlier run; inserting them first",
                     self._queue.disk_count, self._queue.disk_bytes, spill_dir)
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clickhouse-sink", daemon=True)
        self._thread.start()

    # ---- the Bytewax worker's side ----

    def write_batch(self, values: list[object]) -> None:
        with self._cond:
            for value in values:
                event = value.event if isinstance(value, Stored) else value
                if isinstance(event, FeatureRow) and not self._sampling.keep(event):
                    self.stats.features_not_kept += 1
                    self._acknowledge_unstored(value)
                    continue
                table = add_event(self._open, event, self._frames)
                if table is None:
                    if isinstance(value, Stored):  # nothing on the streams lacks a table; say so if it ever does
                        self.stats.no_table += 1
                        log.warning("ClickHouse sink: %s:%s holds a %s, which no table stores; acked without a row",
                                    value.stream, value.seq, type(event).__name__)
                    self._acknowledge_unstored(value)
                    continue
                if isinstance(value, Stored):
                    self._open_idents.setdefault(table, []).append(value.ident)
                    if value.seq is not None:
                        self._open_acks.setdefault(table, {}).setdefault(value.stream, []).append(value.seq)
                if table not in self._open_since:
                    self._open_since[table] = time.monotonic()
                    self._open_sizes[table] = 0
                    self._wake.set()  # the writer times this batch's age
                self._open_sizes[table] += _size(event)
                if batch_len(self._open[table]) >= self._limits.batch_rows or self._open_sizes[table] >= self._limits.batch_bytes:
                    self._seal(table)
            while self._must_wait():
                self._wake.set()
                self._cond.wait(1.0)
                self._check_writer_alive()
            self._update_gauges()
            self._log_backlog()

    def _acknowledge_unstored(self, value: object) -> None:
        """A stream message with no row to store is done: acked now, not redelivered forever."""
        if self._ledger is not None and isinstance(value, Stored) and value.seq is not None:
            self._ledger.committed({value.stream: [value.seq]})

    def snapshot(self) -> None:
        """Seal every open batch and make it durable: inserted, or else fsync'd to disk."""
        deadline = time.monotonic() + self._limits.flush_timeout_s
        with self._cond:
            for table in list(self._open):
                self._seal(table)
            while self._queue.memory and not self._down and time.monotonic() < deadline:
                self._wake.set()
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            self._spill_memory()
            self._update_gauges()
        return None

    def close(self) -> None:
        """Keep inserting (and reconnecting) until all is stored or close_timeout_s passes; the rest stays on disk."""
        with self._cond:
            for table in list(self._open):
                self._seal(table)
            self._close_by = time.monotonic() + self._limits.close_timeout_s
        self._wake.set()
        self._thread.join(self._limits.close_timeout_s + self._limits.flush_timeout_s + 5)
        if self._thread.is_alive():
            log.error("ClickHouse sink: writer still busy after the close timeout; saving the backlog anyway")
        with self._cond:
            self._spill_memory()
            self._update_gauges()
            left, left_bytes = self._queue.disk_count, self._queue.disk_bytes
        if left:
            log.warning("ClickHouse sink closed with %d batches (%d bytes) on disk; the next start inserts them",
                        left, left_bytes)
        log.info("ClickHouse sink closed: %s", self.stats)

    def _seal(self, table: str) -> None:
        batch = self._open.pop(table)
        size = self._open_sizes.pop(table)
        del self._open_since[table]
        idents = self._open_idents.pop(table, None)
        token = stream_token(table, idents) if idents else batch_token(table, batch)
        sealed = _Sealed(table, token, batch, size, self._open_acks.pop(table, {}))
        if self._queue.push(sealed):
            self.stats.spilled += 1
        else:
            self._memory_bytes += size
            if self._ledger is not None:  # durable before inserted, so a crash re-inserts it with its token
                self._spill_memory()
        self._wake.set()

    def _must_wait(self) -> bool:
        """Backpressure: while the server is up, the flow waits for inserts rather than filling memory."""
        return not self._down and not self._queue.disk_count and self._memory_bytes >= self._limits.buffer_bytes

    def _spill_memory(self) -> None:
        moved = self._queue.spill_memory()
        if moved:
            self.stats.spilled += moved
            self._memory_bytes = 0
            self._next_backlog_log = 0.0

    def _check_writer_alive(self) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("ClickHouse sink: the writer thread died; see the log above")

    def _update_gauges(self) -> None:
        self.stats.open_rows = sum(batch_len(b) for b in self._open.values())
        self.stats.buffered = len(self._queue.memory)
        self.stats.on_disk = self._queue.disk_count
        self.stats.on_disk_bytes = self._queue.disk_bytes

    def _log_backlog(self) -> None:
        now = time.monotonic()
        if self._ledger is None and self._queue.disk_count and now >= self._next_backlog_log:  # the store's disk is its journal
            log.warning("ClickHouse sink: %s; %d batches / %d bytes waiting on disk",
                        "server unavailable" if self._down else "connected, draining",
                        self._queue.disk_count, self._queue.disk_bytes)
            self._next_backlog_log = now + LOG_BACKLOG_EVERY_S

    # ---- the writer thread's side ----

    def _run(self) -> None:
        backend: Backend | None = None
        attempt = refusals = 0
        try:
            while True:
                with self._cond:
                    self._seal_aged()
                    head = self._queue.peek()
                    if self._close_by is not None and (head is None or time.monotonic() >= self._close_by):
                        return
                if head is None:
                    self._wait(self._until_next_age())
                    continue
                try:
                    if backend is None:
                        backend = self._connect()
                    backend.insert(self._database, TABLES[head.table], head.batch, head.token)
                except Exception as exc:
                    self.stats.failures += 1
                    attempt += 1
                    refusing = backend is not None and _is_refusal(exc)
                    refusals = refusals + 1 if refusing else 0
                    if refusing and refusals >= self._limits.max_refusals:
                        self._reject(head, exc)
                        refusals = 0
                        continue
                    if backend is not None:
                        backend.close()
                        backend = None
                    self._set_down(exc, attempt)
                    self._wait(self._backoff(attempt))
                    continue
                attempt = refusals = 0
                if not self._acknowledged(head):
                    return  # closing before JetStream confirmed: the batch stays on disk for the next run
                self._committed(head)
        except Exception:
            log.exception("ClickHouse sink: writer stopped by an unexpected error")
        finally:
            if backend is not None:
                backend.close()

    def _acknowledged(self, head: _Sealed) -> bool:
        """The store's order: inserted, then acked (and confirmed), then forgotten. Until the
        acks are confirmed the batch stays on disk, so a crash inserts it again with its
        token instead of letting the redelivered messages form a new batch."""
        if self._ledger is None or not head.acks:
            return True
        ticket = self._ledger.committed(head.acks)
        while not ticket.done.wait(0.1):
            with self._cond:
                if self._close_by is not None and time.monotonic() >= self._close_by:
                    return False
        return True

    def _connect(self) -> Backend:
        backend = open_backend(self._settings)
        if self._manage_schema:
            try:
                ensure_schema(backend, self._database, self._settings.retention_days)
            except Exception:
                backend.close()
                raise
        with self._cond:
            waiting = len(self._queue)
            self._down = False
            self.stats.connected = True
            self._cond.notify_all()
        log.info("ClickHouse sink: connected to %s, %d batches waiting", backend.where, waiting)
        return backend

    def _set_down(self, exc: BaseException, attempt: int) -> None:
        with self._cond:
            self._down = True
            self.stats.connected = False
            self._spill_memory()
            self._update_gauges()
            on_disk = self._queue.disk_count
            self._cond.notify_all()  # writers blocked on backpressure now spill instead
        log.warning("ClickHouse sink: %s: %s (attempt %d); %d batches safe on disk, retrying",
                    type(exc).__name__, _reason(exc), attempt, on_disk)

    def _committed(self, head: _Sealed) -> None:
        with self._cond:
            from_disk = self._queue.disk_count > 0
            self._queue.commit()
            if not from_disk:
                self._memory_bytes = max(0, self._memory_bytes - head.size)
            elif not self._queue.disk_count:
                log.info("ClickHouse sink: spill directory drained")
            self.stats.inserted_batches += 1
            self.stats.inserted_rows += head.rows
            self.stats.inserted_by_table[head.table] = self.stats.inserted_by_table.get(head.table, 0) + head.rows
            self.stats.batches_by_table[head.table] = self.stats.batches_by_table.get(head.table, 0) + 1
            for stream, seqs in head.acks.items():
                key = (stream, head.table)
                self.stats.stored_messages[key] = self.stats.stored_messages.get(key, 0) + len(seqs)
            self._update_gauges()
            self._cond.notify_all()

    def _reject(self, head: _Sealed, exc: BaseException) -> None:
        """A batch the server will never take is kept on disk, not retried forever nor dropped."""
        self._rejected_dir.mkdir(parents=True, exist_ok=True)
        path = self._rejected_dir / f"{head.table}-{head.token.rsplit(':', 1)[-1]}.batch"
        write_durably(path, _encode(head))
        fsync_dir(self._rejected_dir)
        log.error("ClickHouse sink: %s refused a %d-row %s batch %d times (%s: %s); kept in %s",
                  self._settings.url or "chDB", head.rows, head.table, self._limits.max_refusals,
                  type(exc).__name__, _reason(exc), path)
        self.stats.rejected += 1
        with self._cond:
            from_disk = self._queue.disk_count > 0
            self._queue.commit()
            if not from_disk:
                self._memory_bytes = max(0, self._memory_bytes - head.size)
            self._update_gauges()
        if self._ledger is not None and head.acks:  # kept on disk, so not lost: the stream may let it go
            self._ledger.committed(head.acks)

    def _seal_aged(self) -> None:
        now = time.monotonic()
        for table, since in list(self._open_since.items()):
            if now - since >= self._limits.batch_age_s:
                self._seal(table)
        self._update_gauges()

    def _until_next_age(self) -> float:
        with self._cond:
            if self._close_by is not None:
                return 0.05
            oldest: float | None = min(self._open_since.values(), default=None)
        if oldest is None:
            return self._limits.batch_age_s
        return max(0.01, oldest + self._limits.batch_age_s - time.monotonic())

    def _wait(self, seconds: float) -> None:
        """Sleep until woken (new batch, closing) or `seconds` pass, but not past the close deadline."""
        with self._cond:
            if self._close_by is not None:
                seconds = min(seconds, max(0.0, self._close_by - time.monotonic()))
        self._wake.wait(seconds)
        self._wake.clear()

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._limits.retry_cap_s, 0.1 * 2.0 ** min(attempt, 30))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class ClickHouseSink(FixedPartitionedSink[object, None]):
    """Stores normalized events in ClickHouse (settings.url) or, without a URL, in chDB
    under settings.embedded_path, creating or migrating the tables on every connect.

    Credentials come from the settings (MARKETPRISM_CLICKHOUSE_USER/_PASSWORD) and are
    never logged. `manage_schema=False` leaves the tables to someone else (a server older
    than the DDL needs, with compatible tables made by hand). `stats` holds the counters.

    With a `ledger` (the store, `flows.store`), items are `Stored` stream messages: every
    sealed batch is written to the spill directory before it is inserted, its dedup token
    is built from its messages' stream sequences, and the ledger learns each inserted
    batch's sequences so that the source acknowledges them; see `connectors.jetstream_source`.
    """

    def __init__(
        self,
        settings: ClickHouseSettings,
        spill_dir: Path,
        *,
        batch_bytes: int = 16 * 1024 * 1024,
        buffer_bytes: int = 256 * 1024 * 1024,
        flush_timeout_s: float = 10.0,
        close_timeout_s: float = 10.0,
        retry_cap_s: float = 10.0,
        max_refusals: int = 5,
        manage_schema: bool = True,
        ledger: AckLedger | None = None,
    ) -> None:
        if batch_bytes < 1 or buffer_bytes < 1 or max_refusals < 1:
            raise ValueError("batch_bytes, buffer_bytes and max_refusals must be positive")
        self.settings = settings
        self.spill_dir = Path(spill_dir)
        self.limits = _Limits(
            settings.batch_rows, batch_bytes, settings.batch_age_s, buffer_bytes,
            flush_timeout_s, close_timeout_s, retry_cap_s, max_refusals,
        )
        self.manage_schema = manage_schema
        self.ledger = ledger
        self.stats = SinkStats()

    def list_parts(self) -> list[str]:
        return [PARTITION]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _ClickHousePartition:
        return _ClickHousePartition(
            settings=self.settings, spill_dir=self.spill_dir, limits=self.limits, stats=self.stats,
            manage_schema=self.manage_schema, ledger=self.ledger,
        )
