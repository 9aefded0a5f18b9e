"""Kill -9 the collector mid-run (its store process dies with it), start it again: every
delta, trade and full book in NATS is stored once in ClickHouse.

What the first run had published survives the kill, as one unbroken chain; what its NATS
sink still held in memory goes with the process, and the second run resyncs from a fresh
snapshot. The second run's store stores what the first one left, then everything else.
The collector process itself never loads chDB nor pyarrow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from connectors.nats_server import EmbeddedNatsServer
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import subject_counts
from tests.store_support import REPO, assert_stored_exactly_once, free_port, stream_counts, wait_for

# The collect flow as `bytewax.run flows.collect` runs it, then what it loaded.
COLLECT_AND_LIST_MODULES = """
import sys
from bytewax.testing import run_main
import flows.collect
run_main(flows.collect.flow)
print(sorted({name.split(".")[0] for name in sys.modules} & {"chdb", "pyarrow", "polars"}))
"""

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


def _collector(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with open(log, "ab") as log_file:
        return subprocess.Popen([sys.executable, "-c", COLLECT_AND_LIST_MODULES], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=log_file, text=True)


def _published(url: str) -> dict[str, int]:
    """Deltas in NATS per venue (BTC-USDT)."""
    counts = subject_counts(url, "ORDERBOOK_DELTA")
    return {venue: counts.get(f"orderbook.pure_delta.{venue}.btc-usdt", 0) for venue in ("binance", "okx")}


def _priority_of_children(pid: int) -> list[tuple[int, int]]:
    """(scheduling policy, niceness) of each child process of `pid` (Linux /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [(os.sched_getscheduler(int(child)), os.getpriority(os.PRIO_PROCESS, int(child))) for child in children]


def test_restart_after_kill_stores_every_published_message_once(tmp_path: Path) -> None:
    with SimulatorThread(SimSettings(seed=9, symbols=("BTC-USDT",))) as simulator, \
            EmbeddedNatsServer(tmp_path / "nats") as server:
        env = dict(os.environ)
        env.update(
            MARKETPRISM_SYMBOLS="BTC-USDT", MARKETPRISM_SINKS="nats,clickhouse", MARKETPRISM_DATA_DIR=str(tmp_path),
            MARKETPRISM_NATS_URL=server.url, MARKETPRISM_STORE_ACK_WAIT_S="5",
            MARKETPRISM_METRICS_PORT="0", MARKETPRISM_STORE_METRICS_PORT=str(free_port()),  # the second store rebinds it
            MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH=str(tmp_path / "clickhouse"), MARKETPRISM_CLICKHOUSE_BATCH_AGE_S="1",
            MARKETPRISM_CLICKHOUSE_FEATURES_INTERVAL_MS="0",  # every feature row, each counted once
            MARKETPRISM_BINANCE_REST_URL=simulator.binance_url, MARKETPRISM_BINANCE_WS_URL=simulator.binance_ws_url,
            MARKETPRISM_OKX_REST_URL=simulator.okx_url, MARKETPRISM_OKX_WS_URL=simulator.okx_ws_url,
        )
        market = simulator.truth("binance", "BTC-USDT")
        first = _collector(env, tmp_path / "first.log")
        try:
            started_at = market.update_id
            deadline = time.monotonic() + 60
            while market.update_id - started_at < 3000:  # about 8 s of market moves
                assert time.monotonic() < deadline and first.poll() is None
                time.sleep(0.1)
            priority = _priority_of_children(first.pid), os.getpriority(os.PRIO_PROCESS, first.pid)
        finally:  # the kill -9 under test, or the clean-up of a failed run (its store dies with it)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        assert priority[0] == [(os.SCHED_IDLE, priority[1] + 10)], \
            "the store process does not run below its collector's CPU priority (SCHED_IDLE, niceness + 10)"
        killed_at = market.update_id
        left = _published(server.url)
        second = _collector({**env, "MARKETPRISM_RUN_SECONDS": "60", "MARKETPRISM_END_ON_SIGTERM": "true"},
                            tmp_path / "second.log")
        try:
            # 60 s at most: the second run ends (SIGTERM) once it has published 50 deltas a venue.
            wait_for(lambda: all(n >= left[venue] + 50 for venue, n in _published(server.url).items()),
                     "the second run to publish", timeout_s=60)
            second.send_signal(signal.SIGTERM)
            loaded, _ = second.communicate(timeout=180)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        assert second.returncode == 0, (tmp_path / "second.log").read_text()[-2000:]
        assert loaded.strip().splitlines()[-1] == "[]", "the collector process loaded a database library"
        assert stream_counts(server.url)["pure_delta"] > 0
        assert_stored_exactly_once(server.url, tmp_path / "clickhouse")

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
