"""Binance closes every connection after 24 h; the collector hands over without losing an update.

The simulator's connection lifetime is shortened to seconds; the collector opens the
successor before the old connection ends and keeps both until the new one delivers.
"""

from __future__ import annotations

from pathlib import Path

from connectors.nats_server import EmbeddedNatsServer
from sim.server import SimulatorThread
from sim.settings import BinanceSettings, SimSettings
from tests.live_support import collect_from, read_streams
from tests.source_support import counted

LIFETIME_S = 4.0
SECONDS = 10  # a successor every 2.5 s: four connections


def test_connections_rotate_without_a_gap(tmp_path: Path) -> None:
    settings = SimSettings(seed=5, symbols=("BTC-USDT",), binance=BinanceSettings(lifetime_s=LIFETIME_S))
    opened_before = counted("connections", book="binance:BTC-USDT", endpoint="public")
    with SimulatorThread(settings) as simulator, EmbeddedNatsServer(tmp_path / "nats") as server:
        summary = collect_from(
            simulator, server.url, tmp_path, SECONDS, venues=["binance"], symbols=["BTC-USDT"],
            binance_rotate_after_s=LIFETIME_S - 1.5,
        )
        deltas = [d for _, d, _ in read_streams(server.url)["orderbook.pure_delta.binance.btc-usdt"]]
    book = summary["books"]["binance:BTC-USDT"]
    assert (book["gaps"], book["resyncs"], book["snapshots"]) == (0, 0, 1), book
    # One unbroken chain across at least three connections.
    assert counted("connections", book="binance:BTC-USDT", endpoint="public") - opened_before >= 3
    assert all(later["prev_update_id"] == earlier["update_id"] for earlier, later in zip(deltas, deltas[1:]))
    assert len(deltas) == book["updates_applied"] >= 8 * (SECONDS - 3)
