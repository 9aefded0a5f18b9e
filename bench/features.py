"""Feature and dataset throughput for one Binance book at 5000 levels.

    .venv/bin/python bench/features.py [--seconds 3600]

Prints, for a simulated recording of one book (5000 levels, ~10 updates a second):
- offline path: rows per second of `flows.dataset.book_rows` (sync engine + feature engine,
  a row per update), and the feature engine's own rate (that time less the sync loop alone);
- live path: the Bytewax replay flow with live features in book_sync, against the same flow
  without it (every update sampled, as the dataset does);
- `dataset build`: rows per second, and its time over replaying the same recording
  (`flows.replay.run_replay` writing the normalized events, the product replay), by wall
  time and by CPU time (the steadier ratio when other work shares the machine).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from connectors.replay_source import RecordingSource
from flows.dataset import DatasetSettings, book_rows, build_dataset
from flows.offline import sync_messages
from flows.replay import run_replay
from flows.steps import UNKEYED, BookSyncLogic, decode_step
from operators.features.engine import FeatureSettings
from operators.sync_base import SyncSettings
from sim.recording import generate_recording

SETTINGS = FeatureSettings()


CPU_S: dict[str, float] = {}  # CPU time of this process (all its threads) per label


def timed(label: str, work) -> tuple[float, object]:
    """Wall time of `work`; its CPU time goes to CPU_S (the steadier figure on a shared machine)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    result = work()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    CPU_S[label] = cpu
    print(f"  {label:<52} {seconds:8.2f} s wall {cpu:8.2f} s CPU")
    return seconds, result


def live_flow(recording: Path, with_features: bool) -> int:
    flow = Dataflow("bench_features")
    raw = op.input("recording", flow, RecordingSource([recording]))
    decoded = op.flat_map("decode", raw, decode_step)
    routed = op.branch("has_book", decoded, lambda kv: kv[0] != UNKEYED)
    features = SETTINGS if with_features else None
    synced = op.stateful("book_sync", routed.trues,
                         lambda resume: BookSyncLogic(SyncSettings(), resume, features=features))
    out: list[object] = []
    if with_features:
        op.output("out", op.filter("rows", synced, lambda kv: type(kv[1]).__name__ == "FeatureRow"), TestingSink(out))
    else:
        op.output("out", op.filter("none", synced, lambda kv: False), TestingSink(out))
    run_main(flow)
    return len(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        recording = Path(tmp) / "one_book.jsonl.zst"
        print(f"generating {args.seconds:g} s of binance:BTC-USDT (5000 levels) ...")
        generate_recording(recording, venues=("binance",), symbols=("BTC-USDT",), seconds=args.seconds, seed=11)
        print("timings:")
        sync_s, _ = timed("sync engine alone (offline loop)", lambda: sum(1 for _ in sync_messages([recording])))
        offline_s, rows = timed("offline path: sync + features per update",
                                lambda: sum(1 for _ in book_rows([recording], "binance", "BTC-USDT", SETTINGS)))
        plain_s, _ = timed("live path: replay flow without features", lambda: live_flow(recording, False))
        live_s, live_rows = timed("live path: replay flow with live features", lambda: live_flow(recording, True))
        replay = "reference: marketprism replay (events written)"
        replay_s, _ = timed(replay,
                            lambda: run_replay([recording], out=Path(tmp) / "events.jsonl"))
        build = "dataset build (all files)"
        build_s, meta = timed(build, lambda: build_dataset(
            [recording], venue="binance", symbol="BTC-USDT", out=Path(tmp) / "dataset",
            settings=DatasetSettings(), progress=False))
        samples = meta["samples"]  # type: ignore[index]
        print("figures:")
        print(f"  feature rows per book: {rows} offline, {live_rows} live")
        print(f"  offline path: {rows / offline_s:,.0f} rows/s end to end; feature engine alone "
              f"{rows / max(offline_s - sync_s, 1e-9):,.0f} rows/s ({(offline_s - sync_s) / rows * 1e6:,.0f} us a row)")
        print(f"  live path: {live_rows / live_s:,.0f} rows/s end to end; features step alone "
              f"{live_rows / max(live_s - plain_s, 1e-9):,.0f} rows/s")
        print(f"  dataset build: {samples / build_s:,.0f} rows/s; {build_s / replay_s:.2f}x the replay of the same "
              f"{args.seconds:g} s ({build_s / sync_s:.2f}x the bare sync loop); target <= 1.5x")
        print(f"  dataset build over replay by CPU time: {CPU_S[build] / CPU_S[replay]:.2f}x "
              f"({CPU_S[build]:.2f} s against {CPU_S[replay]:.2f} s)")


if __name__ == "__main__":
    main()
