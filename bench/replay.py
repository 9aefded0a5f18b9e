"""Replay throughput and memory, against the plainest correct sync loop, in one run.

    python bench/replay.py                 # generates a 10-minute Binance BTC-USDT recording
    python bench/replay.py --input REC     # any recording

Prints level updates per second of the replay dataflow with null output (the report
only), the same with normalized events written, the reference loop's rate on the same
file, and peak RSS of the dataflow holding four 5000-level books. Each measurement runs
in its own process so one cannot inflate another's memory; the flow and the reference are
each run `--repeat` times (default 3), alternating, and the fastest run of each counts, so
a neighbour's burst on a shared machine does not decide the ratio. The last line is one JSON
object: {"level_updates", "seconds", "level_updates_per_s", "reference_per_s", "ratio",
"cpu_ratio", "peak_rss_mb"} (`cpu_ratio`: the same ratio by CPU time, steadier on a busy
machine). Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The shape of a real 2024 Binance BTCUSDT capture, which the simulator is calibrated on.
LARGE_SECONDS = 600
MEMORY_SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "BNB-USDT")
MEMORY_SECONDS = 60


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(mode: str, path: Path) -> dict[str, Any]:
    """Run one measurement in this process (the child side); imports happen before the clock."""
    from bench.reference_sync import run_reference
    from flows.replay import run_replay

    started, cpu_started = time.perf_counter(), time.process_time()
    books: list[int] = []
    if mode == "reference":
        level_updates = run_reference(path)
    else:
        out = Path(os.devnull) if mode == "flow-events" else None
        report = run_replay([path], out=out)
        level_updates = sum(book["levels_applied"] for book in report["books"].values())
        books = [min(book["bid_levels"] or 0, book["ask_levels"] or 0) for book in report["books"].values()]
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "level_updates": level_updates, "seconds": seconds, "cpu_seconds": cpu_seconds,
        "peak_rss_mb": _peak_rss_mb(), "book_depths": books,
    }


def _in_child(mode: str, path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--input", str(path)],
        check=True, capture_output=True, text=True, cwd=REPO,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _cpu_seconds(measurement: dict[str, Any]) -> float:
    return float(measurement["cpu_seconds"])


def _generate(path: Path, symbols: tuple[str, ...], seconds: float) -> None:
    from sim.recording import generate_recording

    started = time.perf_counter()
    generate_recording(path, venues=("binance",), symbols=symbols, seconds=seconds, seed=2024)
    print(f"generated {path.name}: {seconds:g} s of {', '.join(symbols)} "
          f"({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, help="a recording to measure (default: generate one)")
    parser.add_argument("--seconds", type=float, default=LARGE_SECONDS, help="length of the generated recording")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the flow and of the reference; the fastest counts")
    parser.add_argument("--child", choices=("flow", "flow-events", "reference", "memory"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(_measure("flow" if args.child == "memory" else args.child, args.input)))
        return

    with tempfile.TemporaryDirectory(prefix="marketprism-bench-") as tmp:
        large = args.input
        if large is None:
            large = Path(tmp) / "binance-btcusdt.jsonl.zst"
            _generate(large, ("BTC-USDT",), args.seconds)
        flows, references = [], []
        for _ in range(max(args.repeat, 1)):  # alternating, so both see the same neighbours
            flows.append(_in_child("flow", large))
            references.append(_in_child("reference", large))
        flow = min(flows, key=_cpu_seconds)
        reference = min(references, key=_cpu_seconds)
        events = _in_child("flow-events", large)
        memory_recording = Path(tmp) / "binance-four-books.jsonl.zst"
        _generate(memory_recording, MEMORY_SYMBOLS, MEMORY_SECONDS)
        memory = _in_child("memory", memory_recording)

    rate = flow["level_updates"] / flow["seconds"]
    reference_rate = reference["level_updates"] / reference["seconds"]
    events_rate = events["level_updates"] / events["seconds"]
    print(f"input: {large.name if args.input else 'generated'}; {flow['level_updates']:,} level updates")
    print(f"replay flow, null output:      {rate:12,.0f} level updates/s ({flow['seconds']:.2f} s)")
    print(f"replay flow, events written:   {events_rate:12,.0f} level updates/s ({events['seconds']:.2f} s)")
    print(f"reference loop:                {reference_rate:12,.0f} level updates/s ({reference['seconds']:.2f} s)")
    print(f"ratio flow / reference:        {rate / reference_rate:12.2f} (goal 2.0)")
    # CPU time, not wall time: on a shared machine the latter measures the neighbours too.
    cpu_ratio = reference["cpu_seconds"] / flow["cpu_seconds"] * flow["level_updates"] / reference["level_updates"]
    print(f"ratio by CPU time:             {cpu_ratio:12.2f} ({flow['cpu_seconds']:.2f} s flow, "
          f"{reference['cpu_seconds']:.2f} s reference)")
    depths = ", ".join(str(depth) for depth in memory["book_depths"])
    print(f"peak RSS, four books of {depths} levels per side: {memory['peak_rss_mb']:.1f} MB (goal < 300)")
    if flow["level_updates"] != reference["level_updates"]:
        print(f"note: the reference applied {reference['level_updates']:,} level updates", file=sys.stderr)
    print(json.dumps({
        "level_updates": flow["level_updates"],
        "seconds": round(flow["seconds"], 3),
        "level_updates_per_s": round(rate),
        "reference_per_s": round(reference_rate),
        "ratio": round(rate / reference_rate, 3),
        "cpu_ratio": round(cpu_ratio, 3),
        "peak_rss_mb": round(memory["peak_rss_mb"], 1),
    }))


if __name__ == "__main__":
    main()
