"""`python -m bytewax.run flows.collect` works, configured from a YAML file and the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from connectors.nats_server import EmbeddedNatsServer
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import read_streams

REPO = Path(__file__).resolve().parents[1]


def test_bytewax_run_collects_into_nats(tmp_path: Path) -> None:
    config = tmp_path / "collect.yaml"
    config.write_text("venues: [binance, okx]\nsymbols: [ETH-USDT]\nfull_interval_ms: 500\n")
    with SimulatorThread(SimSettings(seed=2, symbols=("ETH-USDT",))) as simulator, \
            EmbeddedNatsServer(tmp_path / "nats") as server:
        env = dict(os.environ)
        env.update(
            MARKETPRISM_CONFIG=str(config),
            MARKETPRISM_RUN_SECONDS="6",
            MARKETPRISM_SINKS="nats,recorder",  # storage (its own process) is tested on its own
            MARKETPRISM_NATS_URL=server.url,
            MARKETPRISM_DATA_DIR=str(tmp_path / "data"),
            MARKETPRISM_BINANCE_REST_URL=simulator.binance_url,
            MARKETPRISM_BINANCE_WS_URL=simulator.binance_ws_url,
            MARKETPRISM_OKX_REST_URL=simulator.okx_url,
            MARKETPRISM_OKX_WS_URL=simulator.okx_ws_url,
        )
        subprocess.run([sys.executable, "-m", "bytewax.run", "flows.collect"], cwd=REPO, env=env, check=True,
                       timeout=120, capture_output=True)
        stored = read_streams(server.url)
    for venue in ("binance", "okx"):
        fulls = stored[f"orderbook.full.{venue}.eth-usdt"]
        assert len(fulls) >= 6  # every 500 ms (from the YAML file) once synced
        assert stored[f"orderbook.pure_delta.{venue}.eth-usdt"]
    assert not any("btc-usdt" in subject for subject in stored)
