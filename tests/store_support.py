"""Reading what the streams hold and what the store stored, for the store's tests."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nats

REPO = Path(__file__).resolve().parents[1]

# Stored subjects -> (table, columns naming one stored message). Counted without FINAL.
STORED = {
    "pure_delta": ("orderbook_deltas", "exchange_name, symbol_name, update_id"),
    "full": ("orderbook_full_depth", "exchange_name, symbol_name, last_update_id, collected_at"),
    "trade": ("trades", "exchange_name, symbol_name, trade_id"),
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


def subject_kind(subject: str) -> str:
    tokens = subject.split(".")
    return tokens[1] if tokens[0] == "orderbook" else tokens[3]


async def _stream_counts(url: str) -> Counter[str]:
    client = await nats.connect(url)
    counts: Counter[str] = Counter()
    try:
        js = client.jetstream()
        for stream in ("ORDERBOOK_FULL", "ORDERBOOK_DELTA", "MARKET_TRADES", "MARKET_DATA"):
            info = await js.stream_info(stream, subjects_filter=">")
            for subject, n in (info.state.subjects or {}).items():
                counts[subject_kind(subject)] += n
    finally:
        await client.close()
    return counts


def stream_counts(url: str) -> Counter[str]:
    """Messages per subject kind (`pure_delta`, `full`, `trade`, ...) in the four streams."""
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


def stored_counts(chdb_path: Path, database: str = "marketprism") -> dict:
    """Per stored subject kind: [rows, distinct messages] in ClickHouse, and the gap details;
    read in a child process (chDB opens one data directory per process)."""
    done = subprocess.run(
        [sys.executable, "-c", COUNT_SQL, str(chdb_path), database, json.dumps(STORED)],
        cwd=REPO, check=True, capture_output=True, text=True, timeout=120,
    )
    return json.loads(done.stdout)
