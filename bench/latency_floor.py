"""What this machine allows: the latency of a minimal forwarder, the floor under `bench/latency.py`.

    python bench/latency_floor.py                      # real and x10, full books never / every 10 s / every 1 s
    python bench/latency_floor.py --seconds 5          # a quick look
    python bench/latency_floor.py --full-intervals 1   # only full books every second

The forwarder is about the least a collector can do: one asyncio loop with the four books'
websockets (the collector's streams: Binance depth@100ms, trade, bookTicker, kline_1m; OKX
books, trades, tickers), and for every message received: stamp the receive time, parse it
(orjson), wrap it with `collected_at` and publish it to JetStream on the collector's
subjects, acks taken on one inbox. No book, no Bytewax, no recorder, no store. With a full
book interval it also publishes, on a connection of its own as the collector does, a full
book of the collector's size (the levels of the simulator's 5000-level snapshot of the
symbol, written as `orderbook.full` writes them) every interval per book. The simulator,
the embedded nats-server and the probe are `bench/latency.py`'s, with its settings: the
figures are the same measurement of receive -> stored -> delivered, so a collector figure
divided by the floor of the same setup says how much of it is the collector's own.
Figures only: nothing here passes or fails. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.latency import PROBE_SETTLE_S, SCENARIOS, SEED, latencies, percentile  # noqa: E402

SYMBOLS = ("BTC-USDT", "ETH-USDT")
BINANCE_KINDS = {"depth": "delta", "trade": "trade", "bookTicker": "ticker"}
OKX_KINDS = {"books": "delta", "trades": "trade", "tickers": "ticker"}
RECV_TIMEOUT_S = 10.0

Publish = Callable[[str, bytes], Awaitable[None]]


def _iso_us(ns: int) -> str:
    """The collector's `collected_at` form (UTC, µs)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns // 1000 % 1_000_000:06d}"


def _full_book_tail(rest_url: str, symbol: str) -> bytes:
    """What follows `collected_at` in a full book of `symbol`: its 5000-level snapshot's
    levels, written as the collector writes them."""
    import orjson
    import requests

    from schemas.encoding import levels_json

    answer = requests.get(f"{rest_url}/api/v3/depth", params={"symbol": symbol.replace("-", ""), "limit": 5000},
                          timeout=30).json()
    levels = {"bids": levels_json(answer["bids"]), "asks": levels_json(answer["asks"])}
    return b"," + orjson.dumps(levels)[1:]


class _Forwarder:
    """The four books' websockets on one loop; every message published as it comes."""

    def __init__(self, *, urls: dict[str, str], seconds: float, full_interval_s: float | None) -> None:
        self.urls, self.full_interval_s = urls, full_interval_s
        self.end = time.monotonic() + seconds
        self.published = 0
        self.full_tails = {symbol: _full_book_tail(urls["binance"], symbol) for symbol in SYMBOLS} \
            if full_interval_s is not None else {}
        self._last_full: dict[str, int] = {}

    async def run(self, nats_url: str) -> int:
        from connectors.jetstream import connect
        from schemas.streams import NatsAuth

        acks = 0
        connections: list[Any] = []  # nats-py clients

        async def on_ack(_msg: Any) -> None:
            nonlocal acks
            acks += 1

        async def publisher(name: str) -> Publish:
            nc = await connect(nats_url, auth=NatsAuth(), name=name)
            prefix = nc.new_inbox() + "."
            await nc.subscribe(prefix + "*", cb=on_ack)
            connections.append(nc)

            async def publish(subject: str, payload: bytes) -> None:
                self.published += 1
                await nc.publish(subject, payload, reply=f"{prefix}{self.published}",
                                 headers={"Nats-Msg-Id": f"floor.{self.published}"})
            return publish

        small, large = await publisher("floor"), await publisher("floor-full")
        await asyncio.gather(*(self._binance(symbol, small, large) for symbol in SYMBOLS),
                             *(self._okx(symbol, small, large) for symbol in SYMBOLS))
        for nc in connections:
            await nc.flush()
        deadline = time.monotonic() + 10
        while acks < self.published and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for nc in connections:
            await nc.close()
        return acks

    async def _full_book(self, venue: str, symbol: str, ns: int, publish: Publish) -> None:
        from schemas.streams import subject

        if self.full_interval_s is None:
            return
        key = f"{venue}:{symbol}"
        if ns - self._last_full.get(key, 0) >= self.full_interval_s * 1e9:
            self._last_full[key] = ns
            payload = b'{"collected_at":"' + _iso_us(ns).encode() + b'"' + self.full_tails[symbol]
            await publish(subject("full", venue, symbol), payload)

    async def _binance(self, symbol: str, publish: Publish, publish_full: Publish) -> None:
        import orjson
        import websockets

        from schemas.streams import subject

        wire = symbol.replace("-", "").lower()
        streams = "/".join(f"{wire}@{name}" for name in ("depth@100ms", "trade", "bookTicker", "kline_1m"))
        async with websockets.connect(f"{self.urls['binance_ws']}/stream?streams={streams}", max_size=None) as ws:
            while time.monotonic() < self.end:
                text = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
                ns = time.time_ns()
                message = orjson.loads(text)
                name = message["stream"].split("@")[1]
                body = orjson.dumps({"collected_at": _iso_us(ns), "data": message["data"]})
                kind = BINANCE_KINDS.get(name)
                await publish(subject(kind, "binance", symbol) if kind else subject("kline", "binance", symbol, "1m"),
                              body)
                if kind == "delta":
                    await self._full_book("binance", symbol, ns, publish_full)

    async def _okx(self, symbol: str, publish: Publish, publish_full: Publish) -> None:
        import orjson
        import websockets

        from schemas.streams import subject

        async with websockets.connect(self.urls["okx_ws"], max_size=None) as ws:
            args = [{"channel": channel, "instId": symbol} for channel in OKX_KINDS]
            await ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
            while time.monotonic() < self.end:
                text = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
                ns = time.time_ns()
                message = orjson.loads(text)
                if "data" not in message:
                    continue  # a subscription's answer
                kind = OKX_KINDS[message["arg"]["channel"]]
                await publish(subject(kind, "okx", symbol), orjson.dumps({"collected_at": _iso_us(ns),
                                                                          "data": message["data"]}))
                if kind == "delta":
                    await self._full_book("okx", symbol, ns, publish_full)


def measure(scale: float, full_interval_s: float | None, seconds: float, warmup_s: float,
              tmp: Path) -> dict[str, Any]:
    """One run: the simulator at `scale`, the forwarder (full books every `full_interval_s`,
    None: never) and the probe; the latencies after the warm-up, all and per kind."""
    from connectors.nats_server import EmbeddedNatsServer
    from sim.server import SimulatorThread
    from sim.settings import SimSettings

    work = Path(tempfile.mkdtemp(dir=tmp))
    probe_out = work / "probe.json"
    with EmbeddedNatsServer(work / "nats") as server, SimulatorThread(SimSettings(seed=SEED, rate_scale=scale)) as sim:
        probe = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "latency.py"), "--child", "probe", "--nats", server.url,
             "--out", str(probe_out)], cwd=REPO, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert probe.stdout is not None and probe.stdin is not None
        try:
            if probe.stdout.readline().strip() != "ready":
                raise RuntimeError("the probe did not start")
            urls = {"binance": sim.binance_url, "binance_ws": sim.binance_ws_url, "okx_ws": sim.okx_ws_url}
            forwarder = subprocess.run(
                [sys.executable, __file__, "--child", "--nats", server.url, "--urls", json.dumps(urls),
                 "--run-seconds", str(warmup_s + seconds),
                 *(["--full-intervals", str(full_interval_s)] if full_interval_s is not None else [])],
                cwd=REPO, capture_output=True, text=True, timeout=warmup_s + seconds + 120)
            if forwarder.returncode != 0:
                raise RuntimeError(f"the forwarder failed:\n{forwarder.stderr[-3000:]}")
            time.sleep(PROBE_SETTLE_S)
        finally:
            probe.stdin.close()
            probe.wait(30)
    counts = json.loads(forwarder.stdout.strip().splitlines()[-1])
    stored, kinds, span = latencies(json.loads(probe_out.read_text())["stored"], warmup_s)
    return {"stored": stored, "kinds": kinds, "span_s": span, **counts}


def _report(name: str, full_interval_s: float | None, result: dict[str, Any]) -> dict[str, Any]:
    stored = result["stored"]
    p50, p99 = percentile(stored, 50), percentile(stored, 99)
    fulls = "never" if full_interval_s is None else f"every {full_interval_s:g} s"
    print(f"\n{name}, full books {fulls}: {len(stored):,} messages over {result['span_s']:.1f} s "
          f"({result['acks']:,} of {result['published']:,} published acked)")
    print(f"  receive -> stored, delivered  P50 {p50:6.2f} ms   P99 {p99:6.2f} ms   max {stored[-1]:7.2f} ms")
    for kind, values in sorted(result["kinds"].items(), key=lambda kv: -len(kv[1])):
        print(f"    {kind:<10} {len(values):7,}   P50 {percentile(values, 50):6.2f}   P99 {percentile(values, 99):6.2f}"
              f"   max {values[-1]:7.2f} ms")
    return {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "messages": len(stored),
            "kinds_p99_ms": {kind: round(percentile(v, 99), 3) for kind, v in result["kinds"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per scenario (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out at the start (default %(default)s)")
    parser.add_argument("--full-intervals", default="none,10,1",
                        help="full book intervals in s to measure, 'none' for no full books (default %(default)s)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--nats", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    parser.add_argument("--run-seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    intervals = [None if part == "none" else float(part) for part in args.full_intervals.split(",")]

    if args.child:
        forwarder = _Forwarder(urls=json.loads(args.urls), seconds=args.run_seconds, full_interval_s=intervals[0])
        acks = asyncio.run(forwarder.run(args.nats))
        print(json.dumps({"published": forwarder.published, "acks": acks}))
        return

    print(f"latency floor: a minimal forwarder, Binance + OKX x {' + '.join(SYMBOLS)}, {args.warmup:g} s warm-up "
          f"left out, {args.seconds:g} s measured per scenario; {os.cpu_count()} CPUs shared by simulator, "
          f"forwarder, nats-server and probe", flush=True)
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="marketprism-floor-") as tmp:
        for name, scale in SCENARIOS:
            for interval in intervals:
                result = measure(scale, interval, args.seconds, args.warmup, Path(tmp))
                label = "none" if interval is None else f"{interval:g}s"
                summary[f"{name} full {label}"] = _report(name, interval, result)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
