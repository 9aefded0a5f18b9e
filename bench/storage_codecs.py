"""Which ClickHouse column codecs store our events smallest: measured, not guessed.

    python bench/storage_codecs.py                 # 60 s of Binance + OKX, BTC-USDT + ETH-USDT
    python bench/storage_codecs.py --seconds 300

Generates a recording with the simulator, replays it through the sync engine (decode +
BookSync, the same code as the flows), stores the events in chDB with the production DDL,
then copies every column into a measuring table once per candidate codec (and, for
prices, per candidate number type), merges it into one part and prints each candidate's
compressed bytes from `system.columns`. Rows keep the production sorting key, so
Delta-style codecs see the order they will see in production. Figures only: nothing here
passes or fails; `schemas/clickhouse.py` records the choice.

Figures (`--seconds 300`, seed 0, chDB 26.9), compressed bytes per row, as chosen (before
migration 5: every full book whole; since then most are written against the previous one,
and delta levels and trade and ticker decimals are ZSTD(15), see `bench/storage.py`):

  production DDL   orderbook_full_depth 205 536 -> 3 032 (x68, 5000 levels a side)
                   orderbook_deltas 941 -> 116 (x8.1), tickers 114 -> 7.5, trades 73 -> 10.2
  full depth       bid_prices ZSTD(9) 1286, ZSTD(15) 1230, ZSTD(3) 1481, ZSTD(1) 2247,
                   LZ4 8758; as Decimal128 ZSTD(3) 3353, as Float64 Gorilla+ZSTD 5575
                   insert + merge of that text: ZSTD(9) ~150 MB/s, ZSTD(15) ~30 MB/s
  top 20           top_bid_prices ZSTD(9) 20.5, ZSTD(3) 27.1, LZ4 60.2
  delta levels     bid_prices ZSTD(9) 20.7, ZSTD(3) 24.2, Decimal128 30.2, Float64 35.6
  trade price      ZSTD(9) 0.91, LowCardinality 1.09, ZSTD(3) 1.11, Decimal128 1.34
  book time (ms)   DoubleDelta+ZSTD(1) 0.10, Delta+ZSTD(1) 0.22, ZSTD(1) 1.78, LZ4 4.37
  trade time (ms)  Delta+ZSTD(1) 1.15, DoubleDelta 1.25, ZSTD(1) 1.39
  update ids       DoubleDelta+ZSTD(1) 1.14, Delta+ZSTD(1) 1.18, ZSTD(1) 1.24, LZ4 4.11
  receive ns       Delta+ZSTD(1) 3.5-3.9, T64+ZSTD(1) 3.5-4.1, DoubleDelta+ZSTD(1) 4.1-4.5
  OKX checksum     T64+ZSTD(1) 2.14, ZSTD(1) 2.67, LZ4 3.30
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from connectors.clickhouse_backend import ChdbBackend, ensure_schema  # noqa: E402
from flows.offline import recording_events  # noqa: E402
from schemas.clickhouse import TABLES, Column, Table  # noqa: E402
from schemas.clickhouse_rows import batch_token, to_batches  # noqa: E402
from sim.recording import generate_recording  # noqa: E402

DB = "bench"
NUMBER_CODECS = ("LZ4", "ZSTD(1)", "Delta, ZSTD(1)", "DoubleDelta, ZSTD(1)", "DoubleDelta", "Gorilla, ZSTD(1)", "T64, ZSTD(1)")
TEXT_CODECS = ("LZ4", "ZSTD(1)", "ZSTD(3)", "ZSTD(9)", "ZSTD(15)")
PRICE_COLUMNS = ("price", "quantity", "bid_prices", "bid_quantities")  # also measured as numbers


def base_type(column: Column) -> str:
    return column.type.split(" CODEC(")[0]


def candidates(column: Column) -> list[tuple[str, str, str]]:
    """(label, type with codec, SELECT expression) for one column."""
    base, name = base_type(column), column.name
    if base.startswith("LowCardinality") or base in ("Bool", "UInt32"):
        return []
    if base.startswith(("DateTime64", "UInt64", "Nullable(Int64)")):
        return [(codec, f"{base} CODEC({codec})", name) for codec in NUMBER_CODECS]
    out = [(codec, f"{base} CODEC({codec})", name) for codec in TEXT_CODECS]
    if base == "String" and name in PRICE_COLUMNS:
        out.append(("LowCardinality ZSTD(1)", "LowCardinality(String) CODEC(ZSTD(1))", name))
        out.append(("Decimal128(18) ZSTD(1)", "Decimal128(18) CODEC(ZSTD(1))", f"toDecimal128({name}, 18)"))
        out.append(("Float64 Gorilla,ZSTD(1)", "Float64 CODEC(Gorilla, ZSTD(1))", f"toFloat64({name})"))
    if base == "Array(String)" and name in PRICE_COLUMNS:
        as_decimal = f"arrayMap(x -> toDecimal128(x, 18), {name})"
        out.append(("Decimal128(18) ZSTD(3)", "Array(Decimal128(18)) CODEC(ZSTD(3))", as_decimal))
        out.append(("Float64 Gorilla,ZSTD(3)", "Array(Float64) CODEC(Gorilla, ZSTD(3))", f"arrayMap(x -> toFloat64(x), {name})"))
    return out


def measure(backend: ChdbBackend, table: Table) -> list[tuple[str, str, int, int, int]]:
    """(column, candidate, compressed bytes, uncompressed bytes, rows) for every candidate."""
    keys = [c for c in table.columns if c.name in table.order_by]
    measured = [(c, candidates(c)) for c in table.columns]
    parts = [f"k_{c.name} {c.type}" for c in keys]
    selects = [c.name for c in keys]
    labels: dict[str, tuple[str, str]] = {}
    for column, options in measured:
        for label, type_, expression in options:
            parts.append(f"m{len(labels)} {type_}")
            selects.append(expression)
            labels[f"m{len(labels)}"] = (column.name, label)
    name = f"{DB}.measure_{table.name}"
    order = ", ".join(f"k_{c}" for c in table.order_by)
    backend.execute("SET allow_suspicious_codecs = 1")  # Gorilla on integers, for the figures
    backend.execute(  # wide parts: compact ones report no per-column sizes
        f"CREATE TABLE {name} ({', '.join(parts)}) ENGINE = MergeTree ORDER BY ({order}) "
        "SETTINGS min_bytes_for_wide_part = 0, min_rows_for_wide_part = 0"
    )
    backend.execute(f"INSERT INTO {name} SELECT {', '.join(selects)} FROM {DB}.{table.name} FINAL")
    backend.execute(f"OPTIMIZE TABLE {name} FINAL")
    rows = backend.query(f"SELECT count() FROM {name}")[0][0]
    sizes = backend.query(
        f"SELECT name, data_compressed_bytes, data_uncompressed_bytes FROM system.columns "
        f"WHERE database = '{DB}' AND table = 'measure_{table.name}' AND name LIKE 'm%'"
    )
    return [(*labels[col], compressed, raw, rows) for col, compressed, raw in sizes]


def production_sizes(backend: ChdbBackend) -> list[tuple[str, int, int, int]]:
    """(table, rows, uncompressed bytes, compressed bytes) with the production DDL, merged."""
    for table in TABLES:
        backend.execute(f"OPTIMIZE TABLE {DB}.{table} FINAL")
    return backend.query(
        f"SELECT table, sum(rows), sum(data_uncompressed_bytes), sum(data_compressed_bytes) FROM system.parts "
        f"WHERE database = '{DB}' AND active AND table != 'schema_migrations' GROUP BY table ORDER BY table"
    )


def write_speed(backend: ChdbBackend, table: Table, column: str) -> list[tuple[str, float]]:
    """(codec, MB/s of raw column data) to insert and merge one column with each text codec, best of 3."""
    base = base_type(next(c for c in table.columns if c.name == column))
    raw = backend.query(f"SELECT sum(length(arrayStringConcat({column}))) FROM {DB}.{table.name}")[0][0]
    out = []
    for i, codec in enumerate(TEXT_CODECS):
        best = float("inf")
        for attempt in range(3):
            name = f"{DB}.speed_{table.name}_{i}_{attempt}"
            backend.execute(f"CREATE TABLE {name} (v {base} CODEC({codec})) ENGINE = MergeTree ORDER BY tuple()")
            started = time.perf_counter()
            backend.execute(f"INSERT INTO {name} SELECT {column} FROM {DB}.{table.name}")
            backend.execute(f"OPTIMIZE TABLE {name} FINAL")
            best = min(best, time.perf_counter() - started)
        out.append((codec, raw / 1e6 / best))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="storage-codecs-"))
    try:
        recording = work / "recording.jsonl.zst"
        started = time.perf_counter()
        generate_recording(recording, seconds=args.seconds, seed=args.seed)
        batches = to_batches(recording_events([recording]))
        backend = ChdbBackend(work / "chdb")
        ensure_schema(backend, DB, {})
        for name, batch in batches.items():
            backend.insert(DB, TABLES[name], batch, batch_token(name, batch))
        print(f"{args.seconds:.0f} s of binance+okx BTC-USDT+ETH-USDT, seed {args.seed}: "
              + ", ".join(f"{name} {len(b['exchange_name'])} rows" for name, b in batches.items()))
        print("\nproduction DDL, one merged part per table:")
        for name, count, raw, compressed in production_sizes(backend):
            ratio = raw / compressed
            print(f"  {name:<22} {count:>7} rows  {raw / count:>9.1f} -> {compressed / count:>8.1f} B/row  x{ratio:.1f}")
        for table in TABLES.values():
            if table.name not in batches:
                continue
            current = {c.name: c.type for c in table.columns}
            results = measure(backend, table)
            print(f"\n{table.name}")
            for column in dict.fromkeys(r[0] for r in results):
                ranked = sorted((r for r in results if r[0] == column), key=lambda r: r[2])
                raw = ranked[0][3]
                print(f"  {column:<22} raw {raw / ranked[0][4]:>9.1f} B/row   now: {current[column]}")
                for _, label, compressed, _, count in ranked:
                    print(f"      {label:<26} {compressed / count:>9.2f} B/row  x{raw / max(compressed, 1):>7.1f}")
        speeds = write_speed(backend, TABLES["orderbook_full_depth"], "bid_prices")
        print("\ninsert + merge, MB/s of full-depth price text: " + ", ".join(f"{c} {mb:.0f}" for c, mb in speeds))
        backend.close()
        print(f"\n{time.perf_counter() - started:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
