"""NATS goes away in the middle of a collector run and comes back: nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import nats
import orjson

from connectors.nats_server import EmbeddedNatsServer
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import collect_from, read_streams

SECONDS = 60  # at most: the run ends once both books' deltas up to NATS's return are in the stream
VENUES = ("binance", "okx")


def _wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.05)


def _last_update_id(url: str, subject: str) -> int:
    """The update id of the newest delta `subject` holds in its stream."""
    async def last() -> int:
        client = await nats.connect(url)
        try:
            return orjson.loads((await client.jetstream().get_last_msg("ORDERBOOK_DELTA", subject)).data)["update_id"]
        finally:
            await client.close()

    return asyncio.run(last())


def test_outage_of_nats_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with SimulatorThread(SimSettings(seed=8, symbols=("BTC-USDT",))) as simulator:
        server = EmbeddedNatsServer(tmp_path / "nats")
        server.start()
        result: dict = {}
        end = threading.Event()
        run = threading.Thread(
            target=lambda: result.update(collect_from(simulator, server.url, tmp_path, SECONDS, end=end, symbols=["BTC-USDT"])),
            daemon=True,
        )
        run.start()
        market = simulator.truth("binance", "BTC-USDT")
        markets = {venue: simulator.truth(venue, "BTC-USDT") for venue in VENUES}
        _wait_for(lambda: len(read_streams(server.url).get("orderbook.pure_delta.binance.btc-usdt", [])) >= 20)
        server.stop()
        stopped_at = market.update_id
        _wait_for(lambda: market.update_id - stopped_at >= 1000)  # a few seconds of market moves while NATS is down
        server.start()
        # Every update up to NATS's return, for both books, published (the market's own ids):
        # what the sink held through the outage is in; then the run ends.
        back_at = {venue: market.update_id for venue, market in markets.items()}
        _wait_for(lambda: all(_last_update_id(server.url, f"orderbook.pure_delta.{venue}.btc-usdt") >= back_at[venue]
                              for venue in VENUES))
        end.set()
        run.join(timeout=SECONDS + 60)
        assert not run.is_alive()
        stored = read_streams(server.url, ("ORDERBOOK_FULL", "ORDERBOOK_DELTA", "MARKET_TRADES"))
        server.stop()

    books = result["books"]
    assert all(book["gaps"] == 0 and book["resyncs"] == 0 for book in books.values()), books
    for venue in VENUES:
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
