"""How much storage a run costs: raw JSON received vs ClickHouse on disk vs the recorder.

    python bench/storage.py [--seconds 120]

Generates a recording of Binance and OKX BTC-USDT + ETH-USDT from the simulator (the
recorder's own format, zstd), replays it through the sync engine, inserts every event into
embedded ClickHouse (chDB) in batches of 10,000 rows, and prints: bytes of raw JSON
received, bytes of the recorder files, bytes on disk in ClickHouse (after merges), the
ratios (the plan's target: over 70% saved, 3.3x; our goal 10x), and insert rows per
second. The last line is one JSON object. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from connectors.clickhouse_backend import ChdbBackend, ensure_schema  # noqa: E402
from flows.offline import sync_messages  # noqa: E402
from schemas.clickhouse import TABLES  # noqa: E402
from schemas.clickhouse_rows import batch_token, to_batches  # noqa: E402
from sim.recording import generate_recording  # noqa: E402

DATABASE = "storage_bench"
BATCH_EVENTS = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="marketprism-storage-") as tmp:
        recording = Path(tmp) / "recording.jsonl.zst"
        generate_recording(recording, seconds=args.seconds, seed=17)
        backend = ChdbBackend(Path(tmp) / "clickhouse")
        ensure_schema(backend, DATABASE, {})
        raw_bytes, pending, rows, insert_s = 0, [], 0, 0.0
        for raw, produced in sync_messages([recording]):
            raw_bytes += len(raw.data.encode())
            pending.extend(produced)
            if len(pending) >= BATCH_EVENTS:
                rows_now, seconds = _insert(backend, pending)
                rows, insert_s, pending = rows + rows_now, insert_s + seconds, []
        rows_now, seconds = _insert(backend, pending)
        rows, insert_s = rows + rows_now, insert_s + seconds
        for table in TABLES:
            backend.execute(f"OPTIMIZE TABLE {DATABASE}.{table} FINAL")
        by_table = dict(backend.query(
            f"SELECT table, sum(bytes_on_disk) FROM system.parts WHERE database = '{DATABASE}' AND active GROUP BY table"
        ))
        clickhouse_bytes = sum(by_table.values())
        recorder_bytes = recording.stat().st_size
        backend.close()

    print(f"{args.seconds:g} s of Binance + OKX, BTC-USDT + ETH-USDT (simulated, shaped like 2024 captures)")
    print(f"raw JSON received:        {raw_bytes / 1e6:10.2f} MB")
    print(f"recorder (.jsonl.zst):    {recorder_bytes / 1e6:10.2f} MB   {raw_bytes / recorder_bytes:6.1f}x smaller")
    print(f"ClickHouse on disk:       {clickhouse_bytes / 1e6:10.2f} MB   {raw_bytes / clickhouse_bytes:6.1f}x smaller "
          "(plan: 3.3x, goal: 10x)")
    for table, size in sorted(by_table.items()):
        print(f"    {table:<22} {size / 1e6:10.2f} MB")
    print(f"inserted {rows:,} rows in {insert_s:.2f} s: {rows / insert_s:,.0f} rows/s (chDB, in-process)")
    print(json.dumps({
        "raw_json_bytes": raw_bytes, "recorder_bytes": recorder_bytes, "clickhouse_bytes": clickhouse_bytes,
        "clickhouse_ratio": round(raw_bytes / clickhouse_bytes, 2), "recorder_ratio": round(raw_bytes / recorder_bytes, 2),
        "insert_rows_per_s": round(rows / insert_s),
    }))


def _insert(backend: ChdbBackend, events: list[object]) -> tuple[int, float]:
    started = time.perf_counter()
    rows = 0
    for table, batch in to_batches(events).items():
        count = len(next(iter(batch.values())))
        backend.insert(DATABASE, TABLES[table], batch, batch_token(table, batch))
        rows += count
    return rows, time.perf_counter() - started


if __name__ == "__main__":
    main()
