"""Latency the collector adds, from receiving an exchange message to NATS JetStream holding what it produced.

    python bench/latency.py                # 10 s warm-up + 30 s measured, at real and at 10x rates (about 1.5 min)
    python bench/latency.py --seconds 5    # a quick look (about 35 s)
    python bench/latency.py --breakdown    # also where the time goes inside the collector (instrumented)
    python bench/latency.py --floor        # also the floor: a minimal forwarder in the same setup (bench/latency_floor.py)

Setup per scenario: the simulator (`sim/`, Binance and OKX, BTC-USDT and ETH-USDT) and an
embedded nats-server run here; the collect flow (`flows.collect` with its default
settings: NATS, recorder and ClickHouse sinks, 5000-level full books every second, OKX
books-full every second, live features) runs in a child process so that its peak RSS is
its own, and starts the store (`flows.store`, into chDB) as a process of its own, as
`marketprism collect` does; the store's peak RSS is reported beside the collector's. A
probe in a third child subscribes to every subject the collector publishes.
"Real" is the simulator's calibrated pace (Binance BTCUSDT in 2024); "x10" multiplies
every instrument's activity by 10 (`SimSettings.rate_scale`: ten times the level changes,
trades and top-of-book changes per 100 ms window; diffs stay 100 ms apart, as on the
exchanges).

How latency is measured, without touching production code: every published payload
carries `collected_at`, the local receive time (µs) of the exchange message that produced
it, taken by the source right after the websocket read. The probe notes its own receive
time (same machine, same clock) for each message delivered by a JetStream push consumer,
which the server only delivers once the message is stored: so each figure is
receive -> decode -> book_sync -> publish -> stored -> delivered to a second client, an
upper bound of receive -> stored (the sink's ack arrives about when the delivery does).
A core NATS subscription on the same subjects gives the lower bound (the message reached
the server, not yet stored). The first `--warmup` seconds after the first message
(connects, 5000-level snapshots) are left out. Every published message counts once per
subject: deltas, pure deltas, trades, tickers, full books and snapshots.

The last line is one JSON object: {"real": {"p50_ms", "p99_ms", "max_ms", "messages",
"peak_rss_mb", "store_peak_rss_mb", ...}, "x10": {...}, "peak_rss_mb"}. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GOAL_P99_MS = {"real": 5.0, "x10": 10.0}  # issue 8: under 5 ms at real rates, under 10 ms at 10x
GOAL_RSS_MB = 300.0
SCENARIOS = (("real", 1.0), ("x10", 10.0))
SEED = 7
COLLECTED_AT = b'"collected_at":"'
PROBE_SETTLE_S = 1.0  # the probe keeps listening this long after the collector exits


# ----- the probe (child) -----


def _subject_kind(subject: str) -> str:
    """`orderbook.pure_delta.okx.btc-usdt` -> pure_delta; `market.okx.btc-usdt.trade` -> trade."""
    parts = subject.split(".")
    return parts[1] if parts[0] == "orderbook" else parts[-1]


async def _probe(url: str, out: Path) -> None:
    from nats.js.api import DeliverPolicy

    from connectors.jetstream import connect, ensure_streams
    from schemas.streams import NatsAuth, StreamSettings

    records: dict[str, list[tuple[int, str, bytes]]] = {"stored": [], "reached": []}

    def recorder(bucket: list[tuple[int, str, bytes]]) -> Callable[[Any], Awaitable[None]]:
        async def on_message(msg: Any) -> None:
            now = time.time_ns()
            at = msg.data.find(COLLECTED_AT)
            if at >= 0:
                start = at + len(COLLECTED_AT)
                bucket.append((now, msg.subject, msg.data[start : start + 26]))
        return on_message

    nc = await connect(url, auth=NatsAuth(), name="latency-probe")
    js = nc.jetstream()
    streams = StreamSettings()
    await ensure_streams(js, streams)  # the same configuration the sink applies, so its add_stream is a no-op
    for name, limits in streams.streams().items():
        for pattern in limits.subjects:
            await js.subscribe(pattern, stream=name, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW,
                               cb=recorder(records["stored"]))
    for pattern in ("orderbook.>", "market.>"):
        await nc.subscribe(pattern, cb=recorder(records["reached"]))
    await nc.flush()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await nc.drain()
    out.write_text(json.dumps({key: [(t, s, c.decode()) for t, s, c in rows] for key, rows in records.items()}))


# ----- the collector (child) -----


class PeakRss:
    """Samples a process's peak RSS (VmHWM) until it exits: the store is the collector's
    child, so `getrusage` of the collector does not see it."""

    def __init__(self, pid: int | None, every_s: float = 0.5) -> None:
        self.pid, self.every_s, self.peak_mb = pid, every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def start(self) -> PeakRss:
        if self.pid is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return  # exited
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
            if self._stop.wait(self.every_s):
                return


def _collected_ns(data: bytes) -> int | None:
    """The receive time a payload carries, or None (feature rows carry none)."""
    at = data.find(COLLECTED_AT)
    if at < 0:
        return None
    at += len(COLLECTED_AT)
    return _iso_ns(data[at : at + 26].decode(), _ISO_CACHE)


_ISO_CACHE: dict[str, int] = {}


class Marks:
    """(time, nanoseconds) pairs of one stage or step, kept in two int64 arrays: a tuple per
    message and stage would fill the collector's young GC generation and make the breakdown
    report pauses the plain collector does not have."""

    def __init__(self) -> None:
        self.at = array("q")
        self.ns = array("q")

    def add(self, at: int, ns: int) -> None:
        self.at.append(at)
        self.ns.append(ns)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.at, self.ns)


def _stage_group(subject: str) -> str:
    """Full books and snapshots (hundreds of KB each) apart from everything else."""
    return "full books" if _subject_kind(subject) in ("full", "snapshot") else "the rest"


def _instrument() -> dict[str, Any]:
    """`--breakdown`: wrap the flow's steps (in this child only) to see where a message's time goes.

    Stages, each the time since the exchange message was received: `polled` (Bytewax took
    it from the source's queue), `at_sink` (its publications reached the NATS sink's
    write_batch), `sent` (handed to nats-py), `acked` (JetStream's ack arrived), also apart for full books and snapshots. Steps: the
    worker's time per call in decode, book_sync and routing, by event type.
    """
    import flows.collect as collect
    import flows.publishing as publishing
    from connectors import live_source
    from connectors.pub_acks import AckInbox, PendingAck
    from flows.steps import BookSyncLogic

    stages: dict[str, Marks] = defaultdict(Marks)  # (received at, ns since)
    steps: dict[str, Marks] = defaultdict(Marks)  # (started at, ns taken)
    gc_started: list[tuple[int, int]] = []

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[:] = [(time.time_ns(), time.perf_counter_ns())]
        elif gc_started:
            at, started = gc_started[0]
            steps[f"gc generation {info['generation']}"].add(at, time.perf_counter_ns() - started)

    next_batch = live_source._FeedPartition.next_batch

    def polled(self: Any) -> list[Any]:
        batch = next_batch(self)
        now = time.time_ns()
        polled = stages["polled"]
        for event in batch:
            polled.add(event.recv_ns, now - event.recv_ns)
        return batch

    def mark(stage: str, subject: str, collected: int, now: int) -> None:
        stages[stage].add(collected, now - collected)
        stages[f"{stage} {_stage_group(subject)}"].add(collected, now - collected)

    def at_sink(values: list[Any]) -> None:
        now = time.time_ns()
        for pub in values:
            collected = _collected_ns(pub.data)
            if collected is not None:
                mark("at_sink", pub.subject, collected, now)

    publish = AckInbox.publish
    settle = PendingAck.settle
    sent_at: dict[int, tuple[str, int]] = {}  # id(PendingAck) -> (subject, collected)

    async def sent(self: Any, subject: str, payload: bytes, msg_id: str) -> Any:
        collected = _collected_ns(payload)
        if collected is not None:
            mark("sent", subject, collected, time.time_ns())
        pending = await publish(self, subject, payload, msg_id)
        if collected is not None:
            sent_at[id(pending)] = (subject, collected)
        return pending

    def acked(self: Any, *args: Any) -> None:
        settle(self, *args)
        if (sent := sent_at.pop(id(self), None)) is not None:
            mark("acked", sent[0], sent[1], time.time_ns())

    def timed(name: str, fn: Any, kind: Any) -> Any:
        def run(*args: Any) -> Any:
            at, started = time.time_ns(), time.perf_counter_ns()
            out = fn(*args)
            steps[f"{name} {kind(args)}"].add(at, time.perf_counter_ns() - started)
            return out
        return run

    gc.callbacks.append(gc_timer)
    live_source._FeedPartition.next_batch = polled  # type: ignore[method-assign]
    AckInbox.publish = sent  # type: ignore[method-assign]
    PendingAck.settle = acked  # type: ignore[method-assign]
    collect.decode_step = timed("decode", collect.decode_step, lambda a: getattr(a[0], "kind", "?"))
    BookSyncLogic.on_item = timed("book_sync", BookSyncLogic.on_item, lambda a: type(a[1][1]).__name__)  # type: ignore[method-assign]
    collect.publications = timed("route", collect.publications, lambda a: type(a[0]).__name__)  # full books
    publishing.publications = timed("route", publishing.publications, lambda a: type(a[0]).__name__)
    return {"stages": stages, "steps": steps, "on_publish": at_sink}


def _collect(args: argparse.Namespace) -> dict[str, Any]:
    from bytewax.testing import run_main

    from flows.collect import build_flow, start_store
    from flows.runtime import tune_garbage_collector
    from flows.status import StatusBoard
    from schemas.settings import CollectSettings

    tune_garbage_collector()  # as `marketprism collect` and `bytewax.run flows.collect` do

    urls = json.loads(args.urls)
    settings = CollectSettings(
        binance_rest_url=urls["binance"], binance_ws_url=urls["binance_ws"],
        okx_rest_url=urls["okx"], okx_ws_url=urls["okx_ws"],
        nats_url=args.nats, data_dir=args.data_dir, run_seconds=args.run_seconds,
    )
    marks = _instrument() if args.breakdown else None
    summary: list[dict[str, Any]] = []
    board = StatusBoard(settings.status_interval_s, out=sys.stderr)  # the live table, as in production
    on_publish = marks["on_publish"] if marks is not None else None
    store = start_store(settings, args.nats)  # the defaults store through a process of its own, as `collect` does
    store_peak = PeakRss(store.process.pid if store is not None and store.process is not None else None).start()
    try:
        run_main(build_flow(settings, args.nats, board=board, summary=summary, on_publish=on_publish))
    finally:
        if store is not None:
            store.stop()
        store_peak.stop()
    books = summary[0]["books"] if summary else {}
    keep = ("messages", "updates_applied", "snapshots", "resyncs", "gaps", "checksum_failures", "rejected")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result: dict[str, Any] = {
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "store_peak_rss_mb": store_peak.peak_mb if store is not None else None,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "books": {key: {k: book.get(k) for k in keep} for key, book in books.items()},
        "trades": summary[0]["trades"] if summary else {},
    }
    if marks is not None:  # after the warm-up, as the probe counts
        cutoff = min(at for at, _ in marks["stages"]["polled"]) + int(args.warmup * 1e9)

        def summarize(rows: Marks) -> dict[str, float]:
            values = sorted(ns for at, ns in rows if at >= cutoff)
            return {"n": len(values), "p50_ms": percentile(values, 50) / 1e6, "p99_ms": percentile(values, 99) / 1e6,
                    "max_ms": values[-1] / 1e6 if values else 0.0, "total_ms": sum(values) / 1e6}
        result["span_s"] = (max(at for at, _ in marks["stages"]["polled"]) - cutoff) / 1e9
        result["stages"] = {name: summarize(rows) for name, rows in marks["stages"].items()}
        result["steps"] = {name: summarize(rows) for name, rows in marks["steps"].items()}
    return result


# ----- the parent -----


def _iso_ns(text: str, cache: dict[str, int]) -> int:
    """`2026-11-24T02:53:34.123456` (UTC) -> ns since the epoch."""
    second = text[:19]
    base = cache.get(second)
    if base is None:
        base = cache[second] = calendar.timegm(time.strptime(second, "%Y-%m-%dT%H:%M:%S")) * 1_000_000_000
    return base + int(text[20:26]) * 1000


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def latencies(rows: list[list[Any]], warmup_s: float) -> tuple[list[float], dict[str, list[float]], float]:
    """Latencies in ms after the warm-up, all and per kind, and the measured span in s."""
    cache: dict[str, int] = {}
    stamped = [(seen, subject, _iso_ns(collected, cache)) for seen, subject, collected in rows]
    if not stamped:
        return [], {}, 0.0
    first = min(collected for _, _, collected in stamped)
    cutoff = first + int(warmup_s * 1e9)
    every: list[float] = []
    by_kind: dict[str, list[float]] = defaultdict(list)
    last = cutoff
    for seen, subject, collected in stamped:
        if collected < cutoff:
            continue
        ms = (seen - collected) / 1e6
        every.append(ms)
        by_kind[_subject_kind(subject)].append(ms)
        last = max(last, collected)
    every.sort()
    for values in by_kind.values():
        values.sort()
    return every, dict(by_kind), (last - cutoff) / 1e9


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *args], cwd=REPO, text=True, **kwargs)


def _scenario(name: str, scale: float, seconds: float, warmup_s: float, tmp: Path, breakdown: bool) -> dict[str, Any]:
    from connectors.nats_server import EmbeddedNatsServer
    from sim.server import SimulatorThread
    from sim.settings import SimSettings

    work = tmp / name
    work.mkdir()
    probe_out = work / "probe.json"
    with EmbeddedNatsServer(work / "nats") as server, SimulatorThread(SimSettings(seed=SEED, rate_scale=scale)) as sim:
        probe = _child(["--child", "probe", "--nats", server.url, "--out", str(probe_out)],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert probe.stdout is not None and probe.stdin is not None
        try:
            if probe.stdout.readline().strip() != "ready":
                raise RuntimeError("the probe did not start")
            urls = {"binance": sim.binance_url, "binance_ws": sim.binance_ws_url, "okx": sim.okx_url, "okx_ws": sim.okx_ws_url}
            log_path = work / "collector.log"
            started, sim_cpu = time.perf_counter(), _cpu_s()
            with open(log_path, "w") as log_file:
                collector = _child(
                    ["--child", "collect", "--nats", server.url, "--urls", json.dumps(urls), "--data-dir", str(work),
                     "--run-seconds", str(warmup_s + seconds), "--warmup", str(warmup_s),
                     *(["--breakdown"] if breakdown else [])],
                    stdout=subprocess.PIPE, stderr=log_file,
                )
                out, _ = collector.communicate()
            wall, sim_cpu = time.perf_counter() - started, _cpu_s() - sim_cpu
            time.sleep(PROBE_SETTLE_S)
        finally:
            probe.stdin.close()  # the probe writes what it saw and exits
            try:
                probe.wait(30)
            except subprocess.TimeoutExpired:
                probe.kill()
                raise
        if collector.returncode != 0:
            raise RuntimeError(f"the collector failed ({collector.returncode}); see its log:\n{log_path.read_text()[-3000:]}")
        collected = json.loads(out.strip().splitlines()[-1])
    rows = json.loads(probe_out.read_text())
    stored, stored_kinds, span = latencies(rows["stored"], warmup_s)
    reached, _, _ = latencies(rows["reached"], warmup_s)
    return {"scale": scale, "stored": stored, "kinds": stored_kinds, "reached": reached, "span_s": span,
            "wall_s": wall, "sim_cpu_s": sim_cpu, **collected}


def _report(name: str, result: dict[str, Any]) -> dict[str, Any]:
    stored, reached = result["stored"], result["reached"]
    p50, p99, worst = percentile(stored, 50), percentile(stored, 99), (stored[-1] if stored else float("nan"))
    inputs = sum(book["messages"] or 0 for book in result["books"].values())
    issues = sum((book["resyncs"] or 0) + (book["gaps"] or 0) + (book["checksum_failures"] or 0)
                 for book in result["books"].values())
    trades = sum(result["trades"].values())
    rate = len(stored) / result["span_s"] if result["span_s"] else 0.0
    print(f"\n{name} (rate x{result['scale']:g}): {len(stored):,} messages measured over {result['span_s']:.1f} s "
          f"({rate:,.0f}/s published); whole run: {inputs:,} book messages, {trades:,} trades, "
          f"{issues} resyncs/gaps/checksum failures")
    print(f"  receive -> stored, delivered  P50 {p50:7.2f} ms   P99 {p99:7.2f} ms   max {worst:8.2f} ms   "
          f"(goal P99 < {GOAL_P99_MS[name]:g} ms: {'met' if p99 < GOAL_P99_MS[name] else 'missed'})")
    print(f"  receive -> reached NATS       P50 {percentile(reached, 50):7.2f} ms   P99 {percentile(reached, 99):7.2f} ms   "
          f"max {reached[-1] if reached else float('nan'):8.2f} ms   (lower bound: not yet stored)")
    for kind, values in sorted(result["kinds"].items(), key=lambda kv: -len(kv[1])):
        print(f"    {kind:<11} {len(values):7,}   P50 {percentile(values, 50):7.2f}   P99 {percentile(values, 99):7.2f}   "
              f"max {values[-1]:8.2f} ms")
    store_rss = result.get("store_peak_rss_mb")
    print(f"  store process peak RSS {store_rss:.1f} MB" if store_rss is not None else "  no store process (no clickhouse sink)")
    print(f"  collector peak RSS {result['peak_rss_mb']:.1f} MB (goal < {GOAL_RSS_MB:g} MB: "
          f"{'met' if result['peak_rss_mb'] < GOAL_RSS_MB else 'missed'}); CPU {result['cpu_s']:.1f} s in "
          f"{result['wall_s']:.1f} s ({100 * result['cpu_s'] / result['wall_s']:.0f} % of one core, start-up included); "
          f"simulator {100 * result['sim_cpu_s'] / result['wall_s']:.0f} %", flush=True)
    return {
        "p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "max_ms": round(worst, 3), "messages": len(stored),
        "reached_p50_ms": round(percentile(reached, 50), 3), "reached_p99_ms": round(percentile(reached, 99), 3),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "store_peak_rss_mb": round(store_rss, 1) if store_rss is not None else None,
    }


def _report_breakdown(result: dict[str, Any]) -> None:
    span = result["span_s"] or 1.0
    print("  breakdown (instrumented run; time since the exchange message was received):")
    for stage in ("polled", "at_sink", "sent", "acked"):
        for name in (stage, f"{stage} the rest", f"{stage} full books"):
            row = result["stages"].get(name)
            if row:
                print(f"    {name:<19} {row['n']:7,}   P50 {row['p50_ms']:7.2f}   P99 {row['p99_ms']:7.2f}   "
                      f"max {row['max_ms']:8.2f} ms")
    print("  worker time per step and event type (busiest first):")
    for name, row in sorted(result["steps"].items(), key=lambda kv: -kv[1]["total_ms"])[:10]:
        print(f"    {name:<28} {row['n']:7,} calls   P50 {row['p50_ms']:6.3f}   P99 {row['p99_ms']:6.3f}   "
              f"max {row['max_ms']:7.2f} ms   {row['total_ms'] / span:6.1f} ms/s")


def _report_floor(scale: float, p99_ms: float, args: argparse.Namespace, tmp: Path) -> float:
    """`--floor`: the minimal forwarder's P99 in the same setup, and the collector's over it."""
    from bench import latency_floor
    from schemas.settings import CollectSettings

    full_interval_s = CollectSettings().full_interval_ms / 1000
    floor = latency_floor.measure(scale, full_interval_s, args.seconds, args.warmup, tmp)
    floor_p99 = percentile(floor["stored"], 99)
    print(f"  floor (bench/latency_floor.py: a minimal forwarder, full books every {full_interval_s:g} s): "
          f"P50 {percentile(floor['stored'], 50):.2f} ms   P99 {floor_p99:.2f} ms; the collector's P99 is "
          f"{p99_ms / floor_p99:.1f}x it", flush=True)
    return round(floor_p99, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per scenario (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds left out at the start (default %(default)s)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time each stage and step inside the collector (wrapped: adds overhead)")
    parser.add_argument("--floor", action="store_true",
                        help="after each scenario, the same with bench/latency_floor.py's minimal forwarder in the "
                             "collector's place (full books as often as the collector's settings say), and the ratio")
    parser.add_argument("--child", choices=("probe", "collect"), help=argparse.SUPPRESS)
    parser.add_argument("--nats", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run-seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "probe":
        asyncio.run(_probe(args.nats, args.out))
        return
    if args.child == "collect":
        print(json.dumps(_collect(args)))
        return

    print(f"collector latency: Binance + OKX x BTC-USDT + ETH-USDT, {args.warmup:g} s warm-up left out, "
          f"{args.seconds:g} s measured per scenario; {os.cpu_count()} CPUs shared by simulator, collector, "
          f"nats-server and probe", flush=True)
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="marketprism-latency-") as tmp:
        for name, scale in SCENARIOS:
            result = _scenario(name, scale, args.seconds, args.warmup, Path(tmp), args.breakdown)
            summary[name] = _report(name, result)
            if args.breakdown:
                _report_breakdown(result)
            if args.floor:
                summary[name]["floor_p99_ms"] = _report_floor(scale, summary[name]["p99_ms"], args, Path(tmp))
    summary["peak_rss_mb"] = max(summary[name]["peak_rss_mb"] for name, _ in SCENARIOS)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
