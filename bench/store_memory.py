"""The store's memory over a run: the collector (sinks nats + recorder, no store of its own)
against the simulator at --rate x real, and the store started apart under
`bench/store_probe.py`, which prints where its memory is every --every seconds.

    python bench/store_memory.py --minutes 6 --rate 10 [--trace]

Figures only. Output: the probe's PROBE lines (JSON), then store RSS first/last/max.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from connectors.nats_server import EmbeddedNatsServer  # noqa: E402
from sim.server import SimulatorThread  # noqa: E402
from sim.settings import SimSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=15.0)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="marketprism-storemem-"))
    settings = SimSettings(seed=args.seed, rate_scale=args.rate, history_s=900.0)
    with SimulatorThread(settings) as simulator, EmbeddedNatsServer(work / "nats") as server:
        env = dict(os.environ)
        env.update(
            MARKETPRISM_NATS_URL=server.url, MARKETPRISM_DATA_DIR=str(work / "data"),
            MARKETPRISM_RUN_SECONDS=str(args.minutes * 60 + 30), MARKETPRISM_METRICS_PORT="0",
            MARKETPRISM_SINKS="nats,recorder",
            MARKETPRISM_BINANCE_REST_URL=simulator.binance_url, MARKETPRISM_BINANCE_WS_URL=simulator.binance_ws_url,
            MARKETPRISM_OKX_REST_URL=simulator.okx_url, MARKETPRISM_OKX_WS_URL=simulator.okx_ws_url,
        )
        collector = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "collect"], cwd=REPO, env=env,
            stdout=subprocess.DEVNULL, stderr=open(work / "collector.log", "wb"),
        )
        store_env = {**env, "MARKETPRISM_DATA_DIR": str(work / "store")}
        store = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "store_probe.py"), "--every", str(args.every)]
            + (["--trace"] if args.trace else []),
            cwd=REPO, env=store_env, stdout=subprocess.PIPE, stderr=open(work / "store.log", "wb"), text=True,
        )
        print(f"store memory: {args.minutes:g} min at x{args.rate:g}; work dir {work}", flush=True)
        deadline = time.monotonic() + args.minutes * 60
        rss: list[float] = []
        assert store.stdout is not None

        def read() -> None:
            for line in store.stdout:
                if line.startswith("PROBE "):
                    print(line[6:], end="", flush=True)
                    rss.append(json.loads(line[6:])["rss_mb"])

        threading.Thread(target=read, daemon=True).start()
        while time.monotonic() < deadline and store.poll() is None:
            time.sleep(1.0)
        store.terminate()
        collector.terminate()
        for proc in (store, collector):
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    if rss:
        print(f"store RSS {rss[0]:.0f} -> {rss[-1]:.0f} MB (max {max(rss):.0f}) over {len(rss)} samples")


if __name__ == "__main__":
    main()
