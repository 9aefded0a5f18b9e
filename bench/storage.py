"""How much storage a live run costs: JSON received vs ClickHouse on disk vs the recorder.

    python bench/storage.py                 # 60 s of the default collector (about 1.5 min)
    python bench/storage.py --seconds 300 --keep /tmp/run

Runs the simulator (`python -m sim`, Binance and OKX, BTC-USDT and ETH-USDT) and the
collector (`python -m bytewax.run flows.collect`) with its default settings (5000-level
full books every second, OKX books-full every second, Binance audits) and the sinks
nats, recorder and clickhouse (embedded chDB), each in its own process. When the
collector has stopped, it reads what was received from the recorder's own files (every
websocket message and REST answer, as text), then opens the ClickHouse directory, merges
every table (`OPTIMIZE ... FINAL`) and reads `bytes_on_disk` of the active parts from
`system.parts`; so it measures whoever wrote the tables, the collector's in-process sink
or a separate store process. It prints bytes received (websocket, REST), bytes in
ClickHouse per table, bytes of the recorder files, the ratios (goal: both 10x smaller
than what they store: ClickHouse against the websocket JSON, the recorder against all
JSON), bytes per book per day, and the recorder's flush times (its own log line). The
last line is one JSON object. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from connectors.clickhouse_backend import ChdbBackend  # noqa: E402
from connectors.nats_server import free_loopback_port  # noqa: E402
from connectors.recording import read_recording  # noqa: E402
from schemas.clickhouse import ClickHouseSettings  # noqa: E402
from schemas.raw import RawEvent  # noqa: E402

SYMBOLS = ("BTC-USDT", "ETH-USDT")
VENUES = ("binance", "okx")
SIM_START_TIMEOUT_S = 30.0
DAY_S = 86_400
GOAL = 10.0
FLUSH_LINE = re.compile(r"recorder closed: (.*)$", re.MULTILINE)


def start_simulator(log_path: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    """`python -m sim` on two free ports; returns once both venues answer."""
    binance_port, okx_port = free_loopback_port(), free_loopback_port()
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "sim", "--binance-port", str(binance_port), "--okx-port", str(okx_port),
             "--symbols", ",".join(SYMBOLS), "--seed", "17"],
            cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + SIM_START_TIMEOUT_S
    while "Ctrl-C stops" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the simulator did not start; see {log_path}")
        time.sleep(0.1)
    return process, binance_port, okx_port


def run_collector(data: Path, seconds: float, binance_port: int, okx_port: int, log_path: Path) -> None:
    """The collector with its defaults for `seconds`, in its own process, until it exits."""
    env = dict(os.environ)
    env.update(
        MARKETPRISM_SYMBOLS=",".join(SYMBOLS), MARKETPRISM_DATA_DIR=str(data), MARKETPRISM_RUN_SECONDS=str(seconds),
        MARKETPRISM_SINKS="nats,recorder,clickhouse",
        MARKETPRISM_BINANCE_REST_URL=f"http://127.0.0.1:{binance_port}",
        MARKETPRISM_BINANCE_WS_URL=f"ws://127.0.0.1:{binance_port}",
        MARKETPRISM_OKX_REST_URL=f"http://127.0.0.1:{okx_port}",
        MARKETPRISM_OKX_WS_URL=f"ws://127.0.0.1:{okx_port}/ws/v5/public",
    )
    env.pop("MARKETPRISM_CLICKHOUSE_URL", None)
    env.pop("MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH", None)
    with open(log_path, "wb") as log_file:
        collector = subprocess.run(
            [sys.executable, "-m", "bytewax.run", "flows.collect"], cwd=REPO, env=env,
            stdout=log_file, stderr=subprocess.STDOUT, timeout=seconds + 180,
        )
    if collector.returncode != 0:
        raise RuntimeError(f"the collector exited with {collector.returncode}; see {log_path}")


def received_bytes(recordings: Path) -> Counter[str]:
    """Bytes of JSON text received, by kind (ws, rest), as the recorder kept them."""
    sizes: Counter[str] = Counter()
    for path in sorted(recordings.glob("*/*.jsonl.zst")):
        for item in read_recording(path):
            if isinstance(item, RawEvent):
                sizes[item.kind] += len(item.data.encode())
    return sizes


def clickhouse_bytes(path: Path, database: str) -> dict[str, int]:
    """`bytes_on_disk` per table after every table is merged into its final parts."""
    backend = ChdbBackend(path)
    try:
        tables = [row[0] for row in backend.query(f"SELECT name FROM system.tables WHERE database = '{database}'")]
        for table in tables:
            backend.execute(f"OPTIMIZE TABLE {database}.{table} FINAL")
        return dict(backend.query(
            f"SELECT table, sum(bytes_on_disk) FROM system.parts WHERE database = '{database}' AND active GROUP BY table"
        ))
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="collector run time (default %(default)s)")
    parser.add_argument("--keep", type=Path, default=None, help="run in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="marketprism-storage-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    simulator, binance_port, okx_port = start_simulator(work / "sim.log")
    try:
        run_collector(data, args.seconds, binance_port, okx_port, work / "collector.log")
    finally:
        simulator.terminate()
        simulator.wait(10)
    try:
        received = received_bytes(data / "recordings")
        tables = clickhouse_bytes(data / "clickhouse", ClickHouseSettings().database)
        recorder = sum(p.stat().st_size for p in (data / "recordings").glob("*/*"))
        flushes = FLUSH_LINE.findall((work / "collector.log").read_text(errors="replace"))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    ws, rest = received["ws"], received["rest"]
    everything = ws + rest
    stored = sum(size for table, size in tables.items() if table != "schema_migrations")
    # The feature rows are computed here, not received: the market data alone, apart.
    market_data = stored - tables.get("features", 0)
    books = len(VENUES) * len(SYMBOLS)

    def per_book_day(size: int) -> str:
        return f"{size / books / args.seconds * DAY_S / 1e6:9.0f} MB/book/day"

    print(f"{args.seconds:g} s of the default collector on the simulator, {books} books ({', '.join(VENUES)} x "
          f"{', '.join(SYMBOLS)})")
    print(f"JSON received, websockets: {ws / 1e6:9.2f} MB   {per_book_day(ws)}")
    print(f"JSON received, REST:       {rest / 1e6:9.2f} MB   {per_book_day(rest)}")
    print(f"ClickHouse on disk:        {stored / 1e6:9.2f} MB   {per_book_day(stored)}   "
          f"{ws / stored:5.1f}x smaller than the websocket JSON (goal {GOAL:g}x)")
    print(f"  of which market data:     {market_data / 1e6:9.2f} MB   {per_book_day(market_data)}   "
          f"{ws / market_data:5.1f}x smaller (all but the feature rows)")
    for table, size in sorted(tables.items()):
        if table != "schema_migrations":
            print(f"    {table:<22} {size / 1e6:9.3f} MB   {per_book_day(size)}")
    print(f"recorder files:            {recorder / 1e6:9.2f} MB   {per_book_day(recorder)}   "
          f"{everything / recorder:5.1f}x smaller than all JSON received (goal {GOAL:g}x)")
    for line in flushes:
        print(f"    {line}")
    print(json.dumps({
        "seconds": args.seconds, "books": books, "ws_json_bytes": ws, "rest_json_bytes": rest,
        "clickhouse_bytes": stored, "clickhouse_by_table": tables, "recorder_bytes": recorder,
        "clickhouse_ratio": round(ws / stored, 2), "clickhouse_market_data_ratio": round(ws / market_data, 2),
        "recorder_ratio": round(everything / recorder, 2),
        "bytes_per_book_day": {
            "ws_json": round(ws / books / args.seconds * DAY_S), "rest_json": round(rest / books / args.seconds * DAY_S),
            "clickhouse": round(stored / books / args.seconds * DAY_S),
            "recorder": round(recorder / books / args.seconds * DAY_S),
        },
        "recorder_flushes": flushes,
    }))


if __name__ == "__main__":
    main()
