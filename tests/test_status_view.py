"""`marketprism status` in a real terminal (tmux): it redraws in place, a book knocked out of
sync shows as OUT while the collector it watches resyncs it, and the store beside it shows
its lag per stream."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.metrics_server import MetricsEndpoint
from connectors.nats_server import EmbeddedNatsServer
from sim.live_faults import FaultSettings
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import collect_from
from tests.store_support import free_port, kill_flows, run_flow

SESSION = "marketprism-status-test"
SECONDS = 60  # at most: the fixture ends the collector's run as soon as the test is done


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10, check=True).stdout


def _screen() -> str:
    return _tmux("capture-pane", "-p", "-t", SESSION)


def _wait(condition: Callable[[str], bool], timeout_s: float, what: str) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        screen = _screen()
        if condition(screen):
            return screen
        time.sleep(0.1)  # polling the terminal: the condition is what we wait on
    raise AssertionError(f"{what} not seen within {timeout_s} s; the screen:\n{_screen()}")


def _row(screen: str, book: str) -> str:
    return next((line for line in screen.splitlines() if line.startswith(book)), "")


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[SimulatorThread]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    endpoint = MetricsEndpoint("127.0.0.1", free_port()).start()
    faults = FaultSettings(slow_snapshot_s=5.0)
    with SimulatorThread(SimSettings(seed=9, faults=faults)) as simulator, EmbeddedNatsServer(tmp_path / "nats") as nats:
        end = threading.Event()
        collector = threading.Thread(
            target=collect_from, args=(simulator, nats.url, tmp_path, SECONDS),
            kwargs={"venues": ["binance", "okx"], "end": end}, daemon=True,
        )
        collector.start()
        store_port = free_port()
        run_flow("flows.store", {
            **os.environ, "MARKETPRISM_NATS_URL": nats.url, "MARKETPRISM_DATA_DIR": str(tmp_path / "store"),
            "MARKETPRISM_STORE_METRICS_PORT": str(store_port),
        }, tmp_path / "store.log")
        command = (f"{sys.executable} -m flows.cli status --url {endpoint.url} "
                   f"--url http://127.0.0.1:{store_port}/metrics --interval 0.3")
        _tmux("new-session", "-d", "-s", SESSION, "-x", "170", "-y", "20", command)
        try:
            yield simulator
        finally:
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True, timeout=10)
            kill_flows()
            end.set()
            collector.join(timeout=SECONDS + 30)
            endpoint.stop()


def test_the_view_redraws_in_place_and_shows_a_book_out_of_sync(watched: SimulatorThread) -> None:
    books = ("binance:BTC-USDT", "binance:ETH-USDT", "okx:BTC-USDT", "okx:ETH-USDT")
    screen = _wait(lambda s: all(" synced " in _row(s, book) for book in books), 20, "four books in sync")
    assert screen.count("MarketPrism status") == 1
    # Knock one book out: a lost diff makes it resync, and its new snapshot comes 5 s late.
    watched.inject("slow_snapshot", "binance", "BTC-USDT")
    watched.inject("drop", "binance", "BTC-USDT")
    _wait(lambda s: " OUT " in _row(s, "binance:BTC-USDT"), 10, "binance:BTC-USDT out of sync")
    _wait(lambda s: " synced " in _row(s, "binance:BTC-USDT"), 15, "binance:BTC-USDT back in sync")
    # The store beside it: a row per stream with messages waiting, unacked, the lag and the rate stored.
    screen = _wait(lambda s: re.match(r"ORDERBOOK_DELTA +\d+ +\d+ +\d+\.\d +\d+\.\d", _row(s, "ORDERBOOK_DELTA")) is not None,
                   20, "the store's lag line")
    assert "store stream" in screen and "store spill" in screen and "unreachable" not in screen
    # Many frames later, still one screen: nothing scrolled into the history.
    assert _tmux("display-message", "-p", "-t", SESSION, "#{history_size}").strip() == "0"
    assert _screen().count("MarketPrism status") == 1
