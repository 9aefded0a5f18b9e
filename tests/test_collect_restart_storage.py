"""Kill -9 the collector mid-run, start it again: every delta is stored once in ClickHouse.

What the first run had flushed (batches go out by size, or every `batch_age_s`) survives
the kill, as one unbroken chain; what it still held in memory (at most `batch_age_s`)
goes with the process, and the second run resyncs from a fresh snapshot. The test counts
every stored delta per book.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sim.server import SimulatorThread
from sim.settings import SimSettings

REPO = Path(__file__).resolve().parents[1]

COUNT_SQL = """
import json, sys
from chdb import session
s = session.Session(sys.argv[1])
rows = s.query(
    "SELECT exchange_name, count(), uniqExact(update_id), min(update_id), max(update_id) "
    "FROM marketprism.orderbook_deltas GROUP BY exchange_name ORDER BY exchange_name", "JSONCompact")
chains = s.query(
    "SELECT exchange_name, update_id, prev_update_id FROM marketprism.orderbook_deltas FINAL "
    "ORDER BY exchange_name, update_id", "JSONCompact")
print(json.dumps([json.loads(str(rows))["data"], json.loads(str(chains))["data"]]))
"""


def _collector(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bytewax.run", "flows.collect"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_restart_after_kill_stores_every_flushed_delta_once(tmp_path: Path) -> None:
    with SimulatorThread(SimSettings(seed=9, symbols=("BTC-USDT",))) as simulator:
        env = dict(os.environ)
        env.update(
            MARKETPRISM_SYMBOLS="BTC-USDT", MARKETPRISM_SINKS="clickhouse", MARKETPRISM_DATA_DIR=str(tmp_path),
            MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH=str(tmp_path / "clickhouse"), MARKETPRISM_CLICKHOUSE_BATCH_AGE_S="1",
            MARKETPRISM_BINANCE_REST_URL=simulator.binance_url, MARKETPRISM_BINANCE_WS_URL=simulator.binance_ws_url,
            MARKETPRISM_OKX_REST_URL=simulator.okx_url, MARKETPRISM_OKX_WS_URL=simulator.okx_ws_url,
        )
        market = simulator.truth("binance", "BTC-USDT")
        first = _collector(env)
        started_at = market.update_id
        deadline = time.monotonic() + 60
        while market.update_id - started_at < 3000:  # about 8 s of market moves
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed_at = market.update_id
        second = _collector({**env, "MARKETPRISM_RUN_SECONDS": "8"})
        _, errors = second.communicate(timeout=120)
        assert second.returncode == 0, errors.decode()[-2000:]

    counted = subprocess.run([sys.executable, "-c", COUNT_SQL, str(tmp_path / "clickhouse")], cwd=REPO,
                             check=True, capture_output=True, text=True, timeout=120)
    totals, chains = json.loads(counted.stdout)
    per_venue = {row[0]: row[1:] for row in totals}
    assert sorted(per_venue) == ["binance", "okx"]
    for venue, (rows, distinct, lowest, highest) in per_venue.items():
        assert rows == distinct, f"{venue}: {rows - distinct} deltas stored twice"
        assert rows >= 100, (venue, rows)
    binance_low, binance_high = per_venue["binance"][2], per_venue["binance"][3]
    assert binance_low < killed_at < binance_high  # both runs' deltas are there
    # Each run's deltas form one unbroken chain: what the first run flushed before the kill
    # is all there, then the second run starts again from its own snapshot.
    for venue in ("binance", "okx"):
        ids = [(int(u), None if p is None else int(p)) for v, u, p in chains if v == venue]
        breaks = sum(prev != earlier for (earlier, _), (_, prev) in zip(ids, ids[1:]))
        assert breaks == 1, (venue, breaks)
