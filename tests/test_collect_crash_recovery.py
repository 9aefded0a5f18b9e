"""SIGKILL the collector mid-run, restart it with Bytewax recovery: nothing is published
or stored twice, and the stretch the books missed while it was down is a marked gap, not hidden.

The collector runs as `python -m bytewax.run flows.collect -r DIR -s 1` against the
simulator; what it publishes is read back from NATS. Each book's recovery state is its
last update id (a plain value), so after the restart the book resyncs from a fresh
snapshot and a `gap` quality event names the update ids that may be missing: from the
last one it had snapshotted to the new snapshot's. The test holds that against what NATS
really holds: the marked range covers every id between the last delta before the kill
and the first one after, and no delta is stored twice. A store process (`flows.store`,
chDB) reads the same NATS throughout; once it has drained the streams, ClickHouse holds
each book's deltas exactly as NATS does (every update id once) and the same gap events.
"""

from __future__ import annotations

import asyncio
import os
import re
import pickle
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from connectors.nats_server import EmbeddedNatsServer
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import read_streams, subject_counts, subject_messages
from tests.sim_server_support import wait_for
from tests.store_support import chdb_rows, flow_env, kill_flows, run_flow

REPO = Path(__file__).resolve().parents[1]
BOOKS = ("binance:eth-usdt", "okx:eth-usdt")
GAP = re.compile(r"restarted: update ids (\d+)\.\.(\d+) came while the collector was down")
# Read without FINAL: a delta stored twice shows as two rows.
STORED_DELTAS = "SELECT exchange_name, symbol_name, update_id FROM marketprism.orderbook_deltas ORDER BY 1, 2, 3"
STORED_GAPS = "SELECT exchange_name, symbol_name, detail FROM marketprism.quality_events WHERE kind = 'gap' ORDER BY 1, 2, 3"


def _env(simulator: SimulatorThread, nats_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MARKETPRISM_VENUES="binance,okx", MARKETPRISM_SYMBOLS="ETH-USDT", MARKETPRISM_SINKS="nats",
        MARKETPRISM_NATS_URL=nats_url, MARKETPRISM_DATA_DIR=str(data_dir), MARKETPRISM_METRICS_PORT="0",
        MARKETPRISM_DEPTH="1000",
        MARKETPRISM_BINANCE_REST_URL=simulator.binance_url, MARKETPRISM_BINANCE_WS_URL=simulator.binance_ws_url,
        MARKETPRISM_OKX_REST_URL=simulator.okx_url, MARKETPRISM_OKX_WS_URL=simulator.okx_ws_url,
        **extra,
    )
    return env


def _deltas_stored(url: str) -> int:
    async def count() -> int:
        client = await nats.connect(url)
        try:
            return (await client.jetstream().stream_info("ORDERBOOK_DELTA")).state.messages
        except nats.js.errors.NotFoundError:
            return 0
        finally:
            await client.close()

    return asyncio.run(count())


def _books_committed(recovery: Path) -> int:
    """Books whose update id (not None) is in a recovery snapshot the run has committed."""
    with sqlite3.connect(recovery / "part-0.sqlite3") as db:
        (count,) = db.execute(
            "SELECT count(DISTINCT state_key) FROM snaps WHERE step_id LIKE '%book_sync%' AND ser_change != ? "
            "AND snap_epoch <= (SELECT coalesce(max(commit_epoch), -1) FROM commits)",
            (pickle.dumps(None),),
        ).fetchone()
    return count


def _deltas_per_book(url: str) -> dict[str, int]:
    counts = subject_counts(url, "ORDERBOOK_DELTA")
    return {book: counts.get(f"orderbook.pure_delta.{book.replace(':', '.')}", 0) for book in BOOKS}


def _resumed(url: str, before: dict[str, int]) -> bool:
    """Every book has marked the restart's gap and published 50 deltas since."""
    now = _deltas_per_book(url)
    return all(
        now[book] >= before[book] + 50
        and any(e["kind"] == "gap" for e in subject_messages(url, "MARKET_DATA", f"market.{book.replace(':', '.')}.quality"))
        for book in BOOKS
    )


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("crash")
    recovery = tmp / "recovery"
    recovery.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(recovery), "1"], check=True, timeout=60)
    command = [sys.executable, "-m", "bytewax.run", "flows.collect", "-r", str(recovery), "-s", "1", "-b", "0"]
    with SimulatorThread(SimSettings(seed=4, symbols=("ETH-USDT",))) as simulator, \
            EmbeddedNatsServer(tmp / "nats") as server:
        try:
            store_env = flow_env(simulator, server.url, tmp / "store", MARKETPRISM_STORE_BATCH_AGE_S="0.2")
            store = run_flow("flows.store", store_env, tmp / "store.log")
            first = subprocess.Popen(command, cwd=REPO, env=_env(simulator, server.url, tmp / "data"),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for(lambda: _deltas_stored(server.url) >= 150, 40, "deltas before the crash")
                wait_for(lambda: _books_committed(recovery) == len(BOOKS), 20,
                         "a committed recovery snapshot of both books")
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=30)
            before_restart = _deltas_stored(server.url)
            before_per_book = _deltas_per_book(server.url)
            with open(tmp / "second.log", "wb") as log:
                second = subprocess.Popen(
                    command, cwd=REPO, env=_env(simulator, server.url, tmp / "data", MARKETPRISM_RUN_SECONDS="60",
                                                      MARKETPRISM_END_ON_SIGTERM="true"),
                    stdout=subprocess.DEVNULL, stderr=log,
                )
            try:
                # 60 s at most: it ends (SIGTERM) once both books have resumed after the restart.
                wait_for(lambda: _resumed(server.url, before_per_book), 60, "both books resumed after the restart")
                second.send_signal(signal.SIGTERM)
                second.wait(timeout=120)
            finally:
                if second.poll() is None:
                    second.kill()
                    second.wait()
            assert second.returncode == 0, (tmp / "second.log").read_text()[-2000:]
            store.send_signal(signal.SIGTERM)  # store what the streams hold, then stop
            assert store.wait(120) == 0, (tmp / "store.log").read_text()[-3000:]
        finally:
            kill_flows()
        stored = read_streams(server.url, ("ORDERBOOK_DELTA", "MARKET_DATA"))
    deltas, gaps = chdb_rows(tmp / "store" / "clickhouse", STORED_DELTAS, STORED_GAPS)
    yield before_restart, stored, {"deltas": deltas, "gaps": gaps}


@pytest.mark.parametrize("book", BOOKS)
def test_no_delta_twice_and_the_missed_stretch_is_marked(restarted, book: str) -> None:
    before_restart, stored, _ = restarted
    venue, symbol = book.split(":")
    deltas = [delta for _, delta, _ in stored[f"orderbook.pure_delta.{venue}.{symbol}"]]
    ids = [delta["update_id"] for delta in deltas]
    assert len(ids) == len(set(ids)), "a delta was published twice"
    breaks = [(a, b) for a, b in zip(deltas, deltas[1:]) if b["prev_update_id"] != a["update_id"]]
    assert len(breaks) == 1, f"one break in the chain, at the restart: {breaks[:3]}"
    last_before, first_after = breaks[0][0]["update_id"], breaks[0][1]["prev_update_id"]
    assert first_after > last_before
    gaps = [
        GAP.fullmatch(event["detail"])
        for _, event, _ in stored[f"market.{venue}.{symbol}.quality"]
        if event["kind"] == "gap"
    ]
    assert len(gaps) == 1 and gaps[0] is not None, "the restart's gap is marked once"
    marked_from, marked_to = int(gaps[0].group(1)), int(gaps[0].group(2))
    # What is really missing (after the last delta stored, up to the new snapshot) lies inside the mark.
    assert marked_from <= last_before + 1 and marked_to >= first_after
    assert len(deltas) > before_restart // 4  # both runs published this book's deltas


def test_storage_holds_every_delta_of_nats_once_and_the_gaps(restarted) -> None:
    _, stored, in_storage = restarted
    for book in BOOKS:
        venue, symbol = book.split(":")
        in_nats = sorted(delta["update_id"] for _, delta, _ in stored[f"orderbook.pure_delta.{venue}.{symbol}"])
        rows = [update_id for v, s, update_id in in_storage["deltas"] if (v, s.lower()) == (venue, symbol)]
        assert len(rows) == len(set(rows)), f"{book}: {len(rows) - len(set(rows))} deltas stored twice"
        missing, extra = sorted(set(in_nats) - set(rows)), sorted(set(rows) - set(in_nats))
        assert not missing and not extra, f"{book}: not stored {missing[:5]}, stored but not in NATS {extra[:5]}"
        gaps_in_nats = sorted(
            event["detail"] for _, event, _ in stored[f"market.{venue}.{symbol}.quality"] if event["kind"] == "gap"
        )
        gaps_stored = [detail for v, s, detail in in_storage["gaps"] if (v, s.lower()) == (venue, symbol)]
        assert gaps_stored == gaps_in_nats and len(gaps_stored) == 1, (book, gaps_stored, gaps_in_nats)
    assert [row for row in in_storage["gaps"] if row[0] == "nats"] == [], "the store lost nothing of the streams"
