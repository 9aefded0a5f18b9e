"""A soak run: the collector (default sinks) against the simulator at 10x real rates, with
faults, for a set time; prints what it verified and how its memory went.

    python bench/soak.py --minutes 30          # the issue's run
    python bench/soak.py --minutes 2 --rate 1  # a quick look

Setup: the simulator (with its ground truth) and an embedded nats-server run in this
process; the collector runs as `marketprism collect` in a child process with the default
sinks, so its RSS (and that of any process it starts, such as the store) is its own.
Every `--fault-every` seconds one fault from the live fault list hits a random book.

Every `--check-every` seconds each book's latest full book in NATS is held against the
truth at its update id (Binance over its exact window, real past it; OKX over its live
window): "books verified". At the end every delta chain in NATS is walked: an update id
missing from a chain that the book did not mark (an `out_of_sync`, `gap` or `resync`
quality event between the two deltas) is a lost message (goal 0). RSS is sampled every check (goal:
flat after the first minutes), the collector's and the store's apart. A fault the simulator
was too busy to arm within 10 s is skipped and counted. Figures only: nothing here passes or
fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import nats  # noqa: E402
import orjson  # noqa: E402
from nats.js.api import AckPolicy, ConsumerConfig  # noqa: E402

from connectors.nats_server import EmbeddedNatsServer  # noqa: E402
from sim.server import SimulatorThread  # noqa: E402
from sim.settings import SimSettings  # noqa: E402
from tests.truth_checks import check_binance_full  # noqa: E402

BOOKS = (("binance", "BTC-USDT"), ("binance", "ETH-USDT"), ("okx", "BTC-USDT"), ("okx", "ETH-USDT"))
# seq_reset is left out: it shifts OKX ids away from the truth's (the live fault matrix
# in tests/test_collect_faults.py covers it and maps the ids back).
FAULTS = {
    "binance": ("drop", "duplicate", "reorder", "not_json", "bad_price", "disconnect", "stall", "fail_snapshot"),
    "okx": ("drop", "duplicate", "reorder", "bad_checksum", "not_json", "disconnect", "cut_frame", "silent_socket"),
}
OKX_WINDOW = 400
FETCH_BATCH = 2000
FETCH_TIMEOUT_S = 10.0
CHAIN_MARKS = ("out_of_sync", "gap", "resync")  # quality kinds that explain a break in a delta chain

# A book's pure deltas, (update_id, prev_update_id, collected_at) in stream order, and its
# quality marks, (kind, collected_at).
Chain = list[tuple[int | None, int | None, str]]
Marks = list[tuple[str, str]]


def _own_rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    except (FileNotFoundError, StopIteration, ProcessLookupError):
        return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _rss_mb(pid: int) -> tuple[float, float]:
    """RSS of the collector itself, and of what it started (the store), from /proc."""
    started = 0
    pids = _children(pid)
    while pids:
        current = pids.pop()
        started += _own_rss_kb(current)
        pids.extend(_children(current))
    return _own_rss_kb(pid) / 1024, started / 1024


async def _latest_fulls(url: str) -> dict[tuple[str, str], dict]:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        latest = {}
        for venue, symbol in BOOKS:
            try:
                msg = await js.get_last_msg("ORDERBOOK_FULL", f"orderbook.full.{venue}.{symbol.lower()}")
            except nats.js.errors.NotFoundError:
                continue
            latest[(venue, symbol)] = json.loads(msg.data)
        return latest
    finally:
        await client.close()


def _verify(simulator: SimulatorThread, url: str) -> tuple[int, int]:
    """Each book's latest full book against the truth: (verified, wrong)."""
    verified = wrong = 0
    for (venue, symbol), full in asyncio.run(_latest_fulls(url)).items():
        truth = simulator.truth(venue, symbol)
        try:
            if venue == "binance":
                check_binance_full(full, truth)
            else:
                bids, asks = truth.book_at(full["last_update_id"], depth=OKX_WINDOW)
                live = [(l["price"], l["quantity"]) for l in full["bids"] if "age_ms" not in l]
                live_asks = [(l["price"], l["quantity"]) for l in full["asks"] if "age_ms" not in l]
                assert (live, live_asks) == (list(bids), list(asks))
            verified += 1
        except (AssertionError, ValueError) as exc:  # ValueError: the id left the truth's history
            wrong += 1
            print(f"  {venue}:{symbol} full book at {full['last_update_id']} is not the truth: {str(exc)[:200]}", flush=True)
    return verified, wrong


async def _fetch_all(js: Any, stream: str, subject: str) -> list[bytes]:
    """Every payload `stream` holds on `subject` (wildcards allowed), in stream order, read
    by an ephemeral pull consumer in batches: one request per message (`get_msg`) takes a
    quarter of an hour for a 20-minute run at 10x."""
    info = await js.stream_info(stream, subjects_filter=subject)
    expected = sum((info.state.subjects or {}).values())
    payloads: list[bytes] = []
    if not expected:
        return payloads
    sub = await js.pull_subscribe(subject, stream=stream, config=ConsumerConfig(ack_policy=AckPolicy.NONE))
    try:
        while len(payloads) < expected:
            payloads += [msg.data for msg in await sub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT_S)]
    finally:
        await sub.unsubscribe()
    return payloads


async def _read_chains(url: str) -> tuple[dict[str, Chain], dict[str, Marks]]:
    """Per book (`venue:symbol`): its delta chain and its quality marks, from the streams."""
    client = await nats.connect(url)
    js = client.jetstream()
    chains: dict[str, Chain] = {}
    marks: dict[str, Marks] = {}
    try:
        for venue, symbol in BOOKS:
            book = f"{venue}.{symbol.lower()}"
            deltas = map(orjson.loads, await _fetch_all(js, "ORDERBOOK_DELTA", f"orderbook.pure_delta.{book}"))
            chains[f"{venue}:{symbol}"] = [(d["update_id"], d["prev_update_id"], d["collected_at"]) for d in deltas]
            events = map(orjson.loads, await _fetch_all(js, "MARKET_DATA", f"market.{book}.quality"))
            marks[f"{venue}:{symbol}"] = [(e["kind"], e["collected_at"]) for e in events]
    finally:
        await client.close()
    return chains, marks


def _lost(chains: dict[str, Chain], marks: dict[str, Marks]) -> dict[str, int]:
    """Per book: breaks in the delta chain with no fault marked between them (each one at
    least one lost message)."""
    lost: dict[str, int] = {}
    for book, chain in chains.items():
        times = sorted(at for kind, at in marks.get(book, []) if kind in CHAIN_MARKS)
        missing = 0
        for before, after in zip(chain, chain[1:]):
            if after[1] == before[0]:
                continue
            if not any(before[2] <= mark <= after[2] for mark in times):
                missing += 1
        lost[book] = missing
    return lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=10.0, help="simulator activity, x real (default %(default)s)")
    parser.add_argument("--fault-every", type=float, default=20.0, help="seconds between faults")
    parser.add_argument("--check-every", type=float, default=30.0, help="seconds between checks and RSS samples")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="marketprism-soak-"))
    settings = SimSettings(seed=args.seed, rate_scale=args.rate, history_s=max(900.0, args.check_every * 4))
    with SimulatorThread(settings) as simulator, EmbeddedNatsServer(work / "nats") as server:
        env = dict(os.environ)
        env.update(
            MARKETPRISM_NATS_URL=server.url, MARKETPRISM_DATA_DIR=str(work / "data"),
            MARKETPRISM_RUN_SECONDS=str(args.minutes * 60), MARKETPRISM_METRICS_PORT="0",
            # Streams big enough to keep the whole run: at x10 the defaults evict the first
            # quality events (they share MARKET_DATA with the tickers) long before the end.
            # (Their sum must stay inside what the server may reserve for JetStream.)
            **{f"MARKETPRISM_NATS_{stream}__{limit}": value for stream, size in (("ORDERBOOK_DELTA", 6), ("MARKET_DATA", 4))
               for limit, value in (("MAX_BYTES", str(size * 2**30)), ("MAX_MSGS", "200000000"),
                                    ("MAX_AGE_S", str(int(args.minutes * 60 + 3600))))},
            MARKETPRISM_BINANCE_REST_URL=simulator.binance_url, MARKETPRISM_BINANCE_WS_URL=simulator.binance_ws_url,
            MARKETPRISM_OKX_REST_URL=simulator.okx_url, MARKETPRISM_OKX_WS_URL=simulator.okx_ws_url,
        )
        collector = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "collect"], cwd=REPO, env=env,
            stdout=subprocess.DEVNULL, stderr=open(work / "collector.log", "wb"),
        )
        started = time.monotonic()
        next_fault = started + args.fault_every
        next_check = started + args.check_every
        verified = wrong = faults = skipped = 0
        rss: list[tuple[float, float]] = []  # (minute, collector MB)
        store_rss: list[float] = []
        print(f"soak: {args.minutes:g} min at x{args.rate:g}, a fault every {args.fault_every:g} s; work dir {work}", flush=True)
        while collector.poll() is None:
            now = time.monotonic()
            if now >= next_fault:
                venue, symbol = rng.choice(BOOKS)
                try:
                    simulator.inject(rng.choice(FAULTS[venue]), venue, symbol)
                    faults += 1
                except TimeoutError:  # the simulator's loop was too busy to arm it in 10 s
                    skipped += 1
                next_fault += args.fault_every
            if now >= next_check:
                ok, bad = _verify(simulator, server.url)
                verified, wrong = verified + ok, wrong + bad
                own, store = _rss_mb(collector.pid)
                rss.append(((now - started) / 60, own))
                if store:  # 0 once the store has stopped, at the end
                    store_rss.append(store)
                print(f"  {rss[-1][0]:5.1f} min  RSS collector {own:7.1f} MB, store {store:7.1f} MB  books verified "
                      f"{verified}, wrong {wrong}, faults {faults}" + (f" ({skipped} skipped)" if skipped else ""),
                      flush=True)
                next_check += args.check_every
            time.sleep(0.5)  # pacing the loop, not waiting for anything
        chains, marks = asyncio.run(_read_chains(server.url))
    resyncs = sum(1 for book in marks.values() for kind, _ in book if kind == "out_of_sync")
    lost = _lost(chains, marks)
    settled = [mb for minute, mb in rss if minute >= min(5.0, args.minutes / 3)]
    result: dict[str, Any] = {
        "minutes": args.minutes, "rate": args.rate, "faults": faults, "books_verified": verified, "books_wrong": wrong,
        "resyncs": resyncs, "messages_lost": sum(lost.values()), "lost_by_book": lost,
        "deltas_walked": sum(map(len, chains.values())), "quality_marks": sum(map(len, marks.values())),
        "rss_mb_first": rss[0][1] if rss else None, "rss_mb_last": rss[-1][1] if rss else None,
        "rss_mb_max": max((mb for _, mb in rss), default=None),
        "rss_growth_after_warmup_mb": (settled[-1] - settled[0]) if len(settled) > 1 else None,
        "store_rss_mb_first": store_rss[0] if store_rss else None, "store_rss_mb_last": store_rss[-1] if store_rss else None,
        "store_rss_mb_max": max(store_rss, default=None), "faults_skipped": skipped,
        "collector_exit": collector.returncode,
    }
    print(f"books verified {verified} (wrong {wrong}), resyncs {resyncs}, messages lost {result['messages_lost']} (goal 0) "
          f"in {result['deltas_walked']:,} deltas walked, "
          f"RSS collector {result['rss_mb_first']:.0f} -> {result['rss_mb_last']:.0f} MB (max {result['rss_mb_max']:.0f}), "
          f"store {result['store_rss_mb_first']:.0f} -> {result['store_rss_mb_last']:.0f} MB "
          f"(max {result['store_rss_mb_max']:.0f})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
