"""Reading what the streams hold and what the store stored, for the store's tests."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from collections import Counter
from pathlib import Path

import nats

from connectors.jetstream import connect, ensure_streams
from operators.features.publish import feature_publication
from operators.routing import publications
from schemas.events import Trade
from schemas.features import FeatureRow
from schemas.streams import NatsAuth, StreamSettings
from sim.server import SimulatorThread

REPO = Path(__file__).resolve().parents[1]

# Stored subjects -> (table, columns naming one stored message). Counted without FINAL.
STORED = {
    "pure_delta": ("orderbook_deltas", "exchange_name, symbol_name, update_id"),
    "full": ("orderbook_full_depth", "exchange_name, symbol_name, last_update_id, collected_at"),
    "trade": ("trades", "exchange_name, symbol_name, trade_id"),
    "features": ("features", "exchange_name, symbol_name, update_id, collected_at"),
}

COUNT_SQL = """
import json, sys
from chdb import session
s = session.Session(sys.argv[1])
out = {}
for kind, (table, key) in json.loads(sys.argv[3]).items():
    rows = s.query(f"SELECT count(), uniqExact({key}) FROM {sys.argv[2]}.{table}", "JSONCompact")
    out[kind] = json.loads(str(rows))["data"][0]
gaps = s.query(f"SELECT detail FROM {sys.argv[2]}.quality_events WHERE kind = 'gap' AND exchange_name = 'nats'", "JSONCompact")
out["gaps"] = [row[0] for row in json.loads(str(gaps))["data"]]
print(json.dumps(out))
"""


ROWS_SQL = """
import json, sys
from chdb import session
s = session.Session(sys.argv[1])
print(json.dumps([json.loads(str(s.query(sql, "JSONCompact")))["data"] for sql in json.loads(sys.argv[2])]))
"""


def trades(first: int, n: int) -> list[Trade]:
    """Trades numbered `first`.. on binance:BTC-USDT, one a millisecond."""
    return [Trade("binance", "BTC-USDT", str(i), "100.5", "0.1", "buy", 1_764_583_200_000 + i,
                  1_764_583_200_000_000_000 + i * 1000) for i in range(first, first + n)]


async def _publish(url: str, events: list[object]) -> None:
    client = await connect(url, auth=NatsAuth(), name="test")
    js = client.jetstream()
    await ensure_streams(js, StreamSettings())
    for event in events:
        for pub in [feature_publication(event)] if isinstance(event, FeatureRow) else publications(event):
            await js.publish(pub.subject, pub.data, headers={"Nats-Msg-Id": pub.msg_id})
    await client.close()


def publish(url: str, events: list[object]) -> None:
    """Publish events (feature rows too) as the collector would (streams from the environment's settings)."""
    asyncio.run(_publish(url, events))


def subject_kind(subject: str) -> str:
    tokens = subject.split(".")
    return tokens[0] if tokens[0] == "features" else tokens[1] if tokens[0] == "orderbook" else tokens[3]


async def _stream_counts(url: str) -> Counter[str]:
    client = await nats.connect(url)
    counts: Counter[str] = Counter()
    try:
        js = client.jetstream()
        for stream in ("ORDERBOOK_FULL", "ORDERBOOK_DELTA", "MARKET_TRADES", "MARKET_DATA", "FEATURES"):
            info = await js.stream_info(stream, subjects_filter=">")
            for subject, n in (info.state.subjects or {}).items():
                counts[subject_kind(subject)] += n
    finally:
        await client.close()
    return counts


def stream_counts(url: str) -> Counter[str]:
    """Messages per subject kind (`pure_delta`, `full`, `trade`, `features`, ...) in the five streams."""
    return asyncio.run(_stream_counts(url))


async def _acked(url: str, stream: str) -> int:
    client = await nats.connect(url)
    try:
        info = await client.jetstream().consumer_info(stream, f"marketprism-store-{stream}")
        return info.ack_floor.stream_seq
    except nats.js.errors.NotFoundError:
        return 0
    finally:
        await client.close()


def acked(url: str, stream: str) -> int:
    """The store's ack floor on `stream` (0 before its consumer exists)."""
    return asyncio.run(_acked(url, stream))


async def _last_seq(url: str, stream: str) -> int:
    client = await nats.connect(url)
    try:
        return (await client.jetstream().stream_info(stream)).state.last_seq
    finally:
        await client.close()


def last_seq(url: str, stream: str) -> int:
    """The sequence of the newest message `stream` holds."""
    return asyncio.run(_last_seq(url, stream))


def stored_counts(chdb_path: Path, database: str = "marketprism") -> dict:
    """Per stored subject kind: [rows, distinct messages] in ClickHouse, and the gap details;
    read in a child process (chDB opens one data directory per process)."""
    done = subprocess.run(
        [sys.executable, "-c", COUNT_SQL, str(chdb_path), database, json.dumps(STORED)],
        cwd=REPO, check=True, capture_output=True, text=True, timeout=120,
    )
    return json.loads(done.stdout)


def chdb_rows(chdb_path: Path, *queries: str) -> list[list[list]]:
    """The rows of each query on a chDB directory, read in a child process (chDB opens one
    data directory per process, and a test process may hold another)."""
    done = subprocess.run(
        [sys.executable, "-c", ROWS_SQL, str(chdb_path), json.dumps(queries)],
        cwd=REPO, check=True, capture_output=True, text=True, timeout=120,
    )
    return json.loads(done.stdout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def flow_env(simulator: SimulatorThread, nats_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A flow's environment: the simulator, NATS, its own data directory, and metrics ports
    of its own (so that no other test or process on the machine holds them)."""
    env = dict(os.environ)
    env.update(
        MARKETPRISM_METRICS_PORT=str(free_port()), MARKETPRISM_STORE_METRICS_PORT=str(free_port()),
        MARKETPRISM_SYMBOLS="BTC-USDT", MARKETPRISM_NATS_URL=nats_url, MARKETPRISM_DATA_DIR=str(tmp_path),
        MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH=str(tmp_path / "clickhouse"),
        MARKETPRISM_CLICKHOUSE_FEATURES_INTERVAL_MS="0",  # every feature row stored, so each can be counted once
        MARKETPRISM_BINANCE_REST_URL=simulator.binance_url, MARKETPRISM_BINANCE_WS_URL=simulator.binance_ws_url,
        MARKETPRISM_OKX_REST_URL=simulator.okx_url, MARKETPRISM_OKX_WS_URL=simulator.okx_ws_url, **extra,
    )
    return env


_STARTED: list[subprocess.Popen[bytes]] = []


def run_flow(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m bytewax.run module` in a child process; `kill_flows` ends what a failed test left."""
    with open(log, "ab") as out:
        child = subprocess.Popen([sys.executable, "-m", "bytewax.run", module], cwd=REPO, env=env,
                                 stdout=out, stderr=subprocess.STDOUT)
    _STARTED.append(child)
    return child


def kill_flows() -> None:
    while _STARTED:
        child = _STARTED.pop()
        if child.poll() is None:
            child.kill()
            child.wait()


def scrape_text(url: str) -> str:
    """What a metrics endpoint serves now, or "" while it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except (urllib.error.URLError, OSError):
        return ""


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def assert_stored_exactly_once(nats_url: str, chdb_path: Path) -> dict:
    in_nats = stream_counts(nats_url)
    stored = stored_counts(chdb_path)
    for kind in STORED:
        rows, distinct = stored[kind]
        assert rows == distinct, f"{kind}: {rows - distinct} rows stored twice"
        assert rows == in_nats[kind], f"{kind}: {in_nats[kind]} messages in NATS, {rows} rows stored"
        assert rows > 0, kind
    assert stored["gaps"] == []
    return stored
