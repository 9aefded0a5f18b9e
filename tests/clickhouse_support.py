"""What the ClickHouse tests share: events from the sync engine, one chDB directory for the
whole test process (chDB opens one directory per process), and a real `clickhouse-server`
on 127.0.0.1 with a throw-away configuration."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client

from connectors.clickhouse_backend import Backend, read_events
from connectors.nats_server import free_loopback_port
from flows.book_reader import read_full_books
from flows.offline import recording_events
from operators.features.engine import FeatureEngine, FeatureSettings
from operators.stored_books import full_books
from schemas.clickhouse import ORDERBOOK_FULL_DEPTH, TABLES, Table
from schemas.clickhouse_rows import StoredFullBook
from schemas.events import BookDelta, BookFull, Kline, Ticker, Trade
from schemas.features import FeatureRow
from sim.faults import FaultPlan
from sim.recording import generate_recording
from tests.tls_support import Certificates

SERVER_BINARY = "clickhouse-server"
START_TIMEOUT_S = 30.0
PROVISION = "apt-get update && apt-get install -y clickhouse-server (Debian, as root)"


def _temporary_dir(prefix: str) -> Path:
    """A directory removed when the test process exits (shared across modules, unlike tmp_path)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@cache
def chdb_dir() -> Path:
    """The chDB data directory of this test process: every test uses it, each with its own database."""
    return _temporary_dir("marketprism-chdb-")


def as_stored(event: object) -> object:
    """What reading an event back gives: levels as [price, quantity], no top of book on deltas,
    the receive time where the exchange sent none, and no publishing hint (snapshot slots)."""

    def pq(levels: list[Any]) -> list[Any]:
        return [[level[0], level[1]] for level in levels]

    if isinstance(event, BookDelta):
        return replace(event, bid_updates=pq(event.bid_updates), ask_updates=pq(event.ask_updates),
                       top_bids=[], top_asks=[], exchange_ms=event.exchange_ms or event.recv_ns // 1_000_000)
    if isinstance(event, BookFull):
        return replace(event, bids=pq(event.bids), asks=pq(event.asks), deep_bids=pq(event.deep_bids),
                       deep_asks=pq(event.deep_asks), kept_bids=pq(event.kept_bids), kept_asks=pq(event.kept_asks),
                       snapshot_slot_start=False, exchange_ms=event.exchange_ms or event.recv_ns // 1_000_000)
    if isinstance(event, (Trade, Ticker, Kline, FeatureRow)):
        return replace(event, exchange_ms=event.exchange_ms or event.recv_ns // 1_000_000)
    return event


def as_read_back(events: list[object]) -> list[object]:
    """What `FINAL` reads give for stored events: each as stored, and of a candle's updates
    only the latest receipt (the klines table keeps one row per candle)."""
    latest: dict[tuple[str, str, str, int], Kline] = {}
    others = []
    for event in events:
        if isinstance(event, Kline):
            key = (event.venue, event.symbol, event.interval, event.open_time)
            if key not in latest or event.recv_ns >= latest[key].recv_ns:
                latest[key] = event
        else:
            others.append(as_stored(event))
    return others + [as_stored(k) for k in latest.values()]


def read_stored(backend: Backend, database: str, books: set[tuple[str, str]]) -> list[object]:
    """Every stored event of these books (venue, symbol; symbol "" for symbol-less quality
    events), full books rebuilt as they were published."""
    return [
        event
        for venue, symbol in books
        for table in TABLES.values()
        for event in (
            read_full_books(backend, database, venue, symbol) if table is ORDERBOOK_FULL_DEPTH
            else read_events(backend, database, table, venue, symbol)
        )
    ]


def decode_full_books(rows: list[StoredFullBook], deltas: list[object]) -> list[BookFull]:
    """Full books from rows and deltas of many books, read in key order (as `FINAL` reads give them)."""
    books = {(row.book.venue, row.book.symbol) for row in rows}
    return [
        full
        for venue, symbol in books
        for full in full_books(
            [row for row in rows if (row.book.venue, row.book.symbol) == (venue, symbol)],
            [d for d in deltas if isinstance(d, BookDelta) and (d.venue, d.symbol) == (venue, symbol)],
        )
    ]


def replay(path: Path) -> list[object]:
    """The normalized events of a recording, as book_sync emits them."""
    return list(recording_events([path]))


def feature_rows(events: list[object], every_updates: int = 10) -> list[FeatureRow]:
    """The rows the feature engine makes of each book's events, as the collector publishes them."""
    engines: dict[tuple[str, str], FeatureEngine] = {}
    rows = []
    for event in events:
        venue, symbol = getattr(event, "venue", None), getattr(event, "symbol", None)
        if venue is None or symbol is None:
            continue
        engine = engines.get((venue, symbol))
        if engine is None:
            engine = engines[(venue, symbol)] = FeatureEngine(venue, symbol, FeatureSettings(every_updates=every_updates))
        row = engine.on_event(event)
        if row is not None:
            rows.append(row)
    return rows


@cache
def recording(seconds: float = 6, faults: bool = True) -> Path:
    """A generated recording of all four books, with a dropped message and a bad checksum
    (so there are gaps, checksum failures and resyncs to store)."""
    path = _temporary_dir("marketprism-rec-") / "recording.jsonl.zst"
    plan = FaultPlan(seed=3, drop=1, bad_checksum=1) if faults else FaultPlan()
    generate_recording(path, seconds=seconds, faults=plan)
    return path


def compat_type(column_type: str) -> str:
    """The nearest type ClickHouse 18.16 has: no codecs, no LowCardinality, no Bool; times as integer ticks."""
    base = re.sub(r"\s+CODEC\(.*\)$", "", column_type)
    base = re.sub(r"LowCardinality\((\w+)\)", r"\1", base)
    base = re.sub(r"DateTime64\(\d, 'UTC'\)", "UInt64", base)
    return base.replace("Bool", "UInt8")


def compat_create_sql(table: Table, database: str) -> str:
    """The production table's columns, key and engine, in 18.16's dialect (as the issue allows)."""
    columns = ", ".join(f"{c.name} {compat_type(c.type)}" for c in table.columns)
    time_type = next(c.type for c in table.columns if c.name == table.time_column)
    ticks = 1000 if time_type.startswith("DateTime64(3") else 10**9
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{table.name} ({columns}) "
        f"ENGINE = ReplacingMergeTree({table.version_column}) "
        f"PARTITION BY toYYYYMM(toDateTime(intDiv({table.time_column}, {ticks}))) "
        f"ORDER BY ({', '.join(table.order_by)})"
    )


def server_binary_or_skip() -> str:
    """The clickhouse-server executable; without one, skip (fail under CI=true, where it must run)."""
    found = shutil.which(SERVER_BINARY) or shutil.which(SERVER_BINARY, path="/usr/sbin:/usr/bin")
    if found:
        return found
    reason = f"{SERVER_BINARY} is not installed; `make test` provisions it where it can: {PROVISION}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: the native-protocol tests must run, but {reason}")
    pytest.skip(reason)


class ClickHouseServer:
    """`clickhouse-server` on 127.0.0.1 with its own configuration and data under `root`.

    One user, `marketprism`, with a password (in a config file readable only by us). With
    `tls`, the native protocol also listens over TLS on `secure_port` (`tcp_port_secure`,
    the server's certificate from `tls`; clients are not asked for one). Stop and start
    again with the same root and ports to bring the same data back.
    """

    USER = "marketprism"

    def __init__(self, binary: str, root: Path, password: str, tls: Certificates | None = None) -> None:
        self.binary = binary
        self.root = root
        self.password = password
        self.tls = tls
        self.port = free_loopback_port()
        self.secure_port = free_loopback_port() if tls else None
        self.log_path = root / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def url(self) -> str:
        return f"clickhouse://127.0.0.1:{self.port}"

    @property
    def secure_url(self) -> str:
        assert self.secure_port is not None, "started without tls"
        return f"clickhouses://127.0.0.1:{self.secure_port}"

    def client(self) -> Client:
        return Client("127.0.0.1", port=self.port, user=self.USER, password=self.password, connect_timeout=2)

    def start(self) -> ClickHouseServer:
        with open(self.log_path, "ab") as log_file:
            self._process = subprocess.Popen(
                [self.binary, f"--config-file={self.root / 'config.xml'}"],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=self.root,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"clickhouse-server exited with {self._process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"clickhouse-server not ready within {START_TIMEOUT_S:.0f} s; see {self.log_path}")
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """An outage: SIGKILL, no shutdown courtesy."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
            self.client().execute("SELECT 1")
            return True
        except Exception:
            return False

    def _write_config(self) -> None:
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        config = self.root / "config.xml"
        config.touch(mode=0o600)
        config.chmod(0o600)
        secure = "" if self.tls is None else f"""
  <tcp_port_secure>{self.secure_port}</tcp_port_secure>
  <openSSL><server>
    <certificateFile>{self.tls.cert}</certificateFile>
    <privateKeyFile>{self.tls.key}</privateKeyFile>
    <verificationMode>none</verificationMode>
    <loadDefaultCAFile>false</loadDefaultCAFile>
    <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
  </server></openSSL>"""
        config.write_text(f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{self.port}</tcp_port>{secure}
  <path>{self.root}/data/</path>
  <tmp_path>{self.root}/tmp/</tmp_path>
  <user_files_path>{self.root}/user_files/</user_files_path>
  <format_schema_path>{self.root}/format_schemas/</format_schema_path>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <timezone>UTC</timezone>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <users>
    <{self.USER}>
      <password>{self.password}</password>
      <networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </{self.USER}>
  </users>
  <profiles><default></default></profiles>
  <quotas><default></default></quotas>
</yandex>
""")
