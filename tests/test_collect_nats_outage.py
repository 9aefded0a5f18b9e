"""NATS goes away in the middle of a collector run and comes back: nothing is lost or doubled."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from connectors.nats_server import EmbeddedNatsServer
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import collect_from, read_streams

SECONDS = 18


def _wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.05)


def test_outage_of_nats_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with SimulatorThread(SimSettings(seed=8, symbols=("BTC-USDT",))) as simulator:
        server = EmbeddedNatsServer(tmp_path / "nats")
        server.start()
        result: dict = {}
        run = threading.Thread(
            target=lambda: result.update(collect_from(simulator, server.url, tmp_path, SECONDS, symbols=["BTC-USDT"])), daemon=True
        )
        run.start()
        market = simulator.truth("binance", "BTC-USDT")
        _wait_for(lambda: len(read_streams(server.url).get("orderbook.pure_delta.binance.btc-usdt", [])) >= 20)
        server.stop()
        stopped_at = market.update_id
        _wait_for(lambda: market.update_id - stopped_at >= 1000)  # a few seconds of market moves while NATS is down
        server.start()
        run.join(timeout=SECONDS + 60)
        assert not run.is_alive()
        stored = read_streams(server.url, ("ORDERBOOK_FULL", "ORDERBOOK_DELTA", "MARKET_TRADES"))
        server.stop()

    books = result["books"]
    assert all(book["gaps"] == 0 and book["resyncs"] == 0 for book in books.values()), books
    for venue in ("binance", "okx"):
        deltas = [delta for _, delta, _ in stored[f"orderbook.pure_delta.{venue}.btc-usdt"]]
        ids = [(_, msg_id) for _, _, msg_id in stored[f"orderbook.pure_delta.{venue}.btc-usdt"]]
        assert len({msg_id for _, msg_id in ids}) == len(ids), "a delta was stored twice"
        # One unbroken chain from the first delta to the last: nothing lost across the outage.
        assert all(later["prev_update_id"] == earlier["update_id"] for earlier, later in zip(deltas, deltas[1:])), venue
        assert len(deltas) == books[f"{venue}:BTC-USDT"]["updates_applied"]
        assert deltas[0]["collected_at"] < deltas[-1]["collected_at"]
        trades = [trade for _, trade, _ in stored[f"market.{venue}.btc-usdt.trade"]]
        assert len(trades) == len({trade["trade_id"] for trade in trades}) > 0
        counts = Counter(msg_id for subject in stored for _, _, msg_id in stored[subject])
        assert max(counts.values()) == 1
    binance_trade_ids = [int(t["trade_id"]) for _, t, _ in stored["market.binance.btc-usdt.trade"]]
    assert binance_trade_ids == list(range(binance_trade_ids[0], binance_trade_ids[0] + len(binance_trade_ids)))
