"""The collect flow as two Bytewax processes (`-i 0|1 -a ...`) on loopback, with the
control bus over a NATS server that requires a password.

Books are partitioned by `venue:symbol` across the two processes, so a book's source and
its book_sync may sit in different processes: a resync request then has to travel over
NATS. Every book is knocked out once (a lost increment); every one must be published,
go out of sync and come back, as read from NATS.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import nats.js.errors

from connectors.nats_server import EmbeddedNatsServer, free_loopback_port
from sim.live_faults import FaultSettings, ScheduledFault
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import read_streams, subject_counts, subject_messages
from tests.store_support import wait_for

REPO = Path(__file__).resolve().parents[1]
BOOKS = (("binance", "BTC-USDT"), ("binance", "ETH-USDT"), ("okx", "BTC-USDT"), ("okx", "ETH-USDT"))
USER, PASSWORD = "collector", "two-procs-pw"


def _every_book_resynced(url: str) -> bool:
    """What the test requires of every book is in NATS: more than 50 deltas, and out of
    sync once and back in sync at last."""
    try:
        deltas = subject_counts(url, "ORDERBOOK_DELTA")
        said = {book: subject_messages(url, "MARKET_DATA", f"market.{book}.quality") for book in _subject_books()}
    except nats.js.errors.NotFoundError:  # a stream not created yet
        return False
    for book, events in said.items():
        states = [event["kind"] for event in events]
        if deltas.get(f"orderbook.pure_delta.{book}", 0) <= 50 or "out_of_sync" not in states or states[-1] != "in_sync":
            return False
    return True


def _subject_books() -> list[str]:
    return [f"{venue}.{symbol.lower()}" for venue, symbol in BOOKS]


def test_two_processes_sync_publish_and_resync_every_book(tmp_path: Path) -> None:
    faults = FaultSettings(schedule=tuple(ScheduledFault(8, "drop", venue, symbol) for venue, symbol in BOOKS))
    addresses = ";".join(f"127.0.0.1:{free_loopback_port()}" for _ in range(2))
    with SimulatorThread(SimSettings(seed=6, faults=faults)) as simulator, \
            EmbeddedNatsServer(tmp_path / "nats", user=USER, password=PASSWORD) as server:
        env = dict(os.environ)
        env.update(
            MARKETPRISM_NATS_URL=server.url, MARKETPRISM_NATS_USER=USER, MARKETPRISM_NATS_PASSWORD=PASSWORD,
            MARKETPRISM_CONTROL_BUS="nats", MARKETPRISM_SINKS="nats", MARKETPRISM_RUN_SECONDS="60",
            MARKETPRISM_END_ON_SIGTERM="true",
            MARKETPRISM_DEPTH="1000", MARKETPRISM_METRICS_PORT="0",
            MARKETPRISM_BINANCE_REST_URL=simulator.binance_url, MARKETPRISM_BINANCE_WS_URL=simulator.binance_ws_url,
            MARKETPRISM_OKX_REST_URL=simulator.okx_url, MARKETPRISM_OKX_WS_URL=simulator.okx_ws_url,
        )
        log_paths = [tmp_path / f"collect{index}.log" for index in range(2)]
        processes = []
        for index, log_path in enumerate(log_paths):
            with open(log_path, "wb") as log_file:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "bytewax.run", "flows.collect", "-i", str(index), "-a", addresses],
                    cwd=REPO, env={**env, "MARKETPRISM_DATA_DIR": str(tmp_path / f"data{index}")},
                    stdout=subprocess.DEVNULL, stderr=log_file,
                ))
        authenticated = server.url.replace("nats://", f"nats://{USER}:{PASSWORD}@")
        try:
            # 60 s at most: once every book has done what the test requires, SIGTERM ends
            # both processes' runs (sinks flushed, exit status 0).
            wait_for(lambda: _every_book_resynced(authenticated), "every book to resync", timeout_s=60)
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process, log_path in zip(processes, log_paths):
                process.wait(timeout=120)
                assert process.returncode == 0, log_path.read_text()[-3000:]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        logs = [log_path.read_text() for log_path in log_paths]
        assert all(PASSWORD not in log for log in logs), "the password must never be logged"
        stored = read_streams(authenticated, ("ORDERBOOK_FULL", "ORDERBOOK_DELTA", "MARKET_DATA"))
    for venue, symbol in BOOKS:
        subject_book = f"{venue}.{symbol.lower()}"
        assert stored[f"orderbook.full.{subject_book}"], subject_book
        assert len(stored[f"orderbook.pure_delta.{subject_book}"]) > 50, subject_book
        states = [event["kind"] for _, event, _ in stored[f"market.{subject_book}.quality"]]
        assert states[0] == "in_sync" and "out_of_sync" in states, (subject_book, states)
        assert states[-1] == "in_sync", (subject_book, states)
