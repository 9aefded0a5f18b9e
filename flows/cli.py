"""The `marketprism` command line: replay, import, generate, schema and demo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from connectors.importers.cryptofeed import import_cryptofeed
from connectors.importers.hftbacktest import import_hftbacktest
from flows.replay import run_replay
from schemas.models import json_schemas

_COLUMNS = (
    ("book", 22), ("msgs", 7), ("applied", 8), ("snaps", 5), ("resyncs", 7), ("gaps", 4),
    ("cks ok", 6), ("cks bad", 7), ("rej", 4), ("best bid", 14), ("best ask", 14), ("levels", 11),
)


def format_report(report: dict[str, Any]) -> str:
    """A table a person can read at a glance: one line per book, then trades and errors."""
    header = " ".join(name.ljust(width) for name, width in _COLUMNS)
    lines = [header, "-" * len(header)]
    for key, book in report["books"].items():
        levels = f"{book['bid_levels']}/{book['ask_levels']}" if book["bid_levels"] is not None else "unsynced"
        cells = (
            key, book["messages"], book["updates_applied"], book["snapshots"], book["resyncs"], book["gaps"],
            book["checksums_verified"], book["checksum_failures"], book["rejected"], book["best_bid"] or "-",
            book["best_ask"] or "-", levels,
        )
        lines.append(" ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, _COLUMNS)))
    trades = ", ".join(f"{key} {count}" for key, count in report["trades"].items()) or "none"
    lines.append(f"trades: {trades}")
    lines.append(f"errors: {len(report['errors'])}")
    lines.extend(f"  {error}" for error in report["errors"][:20])
    if len(report["errors"]) > 20:
        lines.append(f"  ... {len(report['errors']) - 20} more in the report file")
    return "\n".join(lines)


def _replay(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    report = run_replay(
        [Path(p) for p in args.recordings],
        out=args.out,
        report=args.report,
        full_interval_ms=args.full_interval_ms,
        depth=args.depth,
    )
    print(format_report(report))
    print(f"replayed {len(args.recordings)} recording(s) in {time.perf_counter() - started:.2f} s")
    return 0


def _import(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.files]
    if args.format == "cryptofeed":
        stats = import_cryptofeed(paths, args.output)
    else:
        stats = import_hftbacktest(paths, args.symbol, args.output)
    print(f"{args.output}: {stats.summary()}")
    for error in stats.errors[:20]:
        print(f"  {error}", file=sys.stderr)
    return 0


def _generate(args: argparse.Namespace) -> int:
    from sim.recording import generate_recording

    truth = generate_recording(
        args.output, venues=tuple(args.venues), symbols=tuple(args.symbols), seconds=args.seconds, seed=args.seed
    )
    print(f"{args.output}: {args.seconds:g} s of {', '.join(sorted(truth))}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        path = args.out / f"{name}.schema.json"
        path.write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        print(path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from sim.recording import generate_recording

    out_dir: Path = args.out_dir
    recording = out_dir / "demo.jsonl.zst"
    print(f"generating {args.seconds:g} s of Binance and OKX BTC-USDT / ETH-USDT into {recording} ...")
    generate_recording(recording, seconds=args.seconds, seed=args.seed)
    print("replaying it through the sync dataflow ...")
    args.recordings = [recording]
    args.out = out_dir / "events.jsonl"
    args.report = out_dir / "report.json"
    args.full_interval_ms, args.depth = 1000, 5000
    _replay(args)
    print(f"normalized events: {args.out}\nreport: {args.report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marketprism", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="replay recordings through the sync dataflow")
    replay.add_argument("recordings", nargs="+", help="recording files (.jsonl, .jsonl.gz, .jsonl.zst)")
    replay.add_argument("--out", type=Path, help="write normalized events here (JSON Lines)")
    replay.add_argument("--report", type=Path, help="write the replay report here (JSON)")
    replay.add_argument("--full-interval-ms", type=int, default=1000, help="full book every N ms (default 1000)")
    replay.add_argument("--depth", type=int, default=5000, help="levels per side in full books (default 5000)")
    replay.set_defaults(run=_replay)

    importer = commands.add_parser("import", help="convert third-party captures into recordings")
    formats = importer.add_subparsers(dest="format", required=True)
    cryptofeed = formats.add_parser("cryptofeed", help="cryptofeed raw-data files (.ws. and .http.)")
    cryptofeed.add_argument("files", nargs="+")
    cryptofeed.add_argument("-o", "--output", type=Path, required=True)
    hft = formats.add_parser("hftbacktest", help="hftbacktest raw Binance files (gzip text)")
    hft.add_argument("files", nargs="+")
    hft.add_argument("--symbol", required=True, help="the symbol of the files, e.g. BTC-USDT")
    hft.add_argument("-o", "--output", type=Path, required=True)
    importer.set_defaults(run=_import)

    generate = commands.add_parser("generate", help="write a realistic simulated recording")
    generate.add_argument("-o", "--output", type=Path, required=True)
    generate.add_argument("--seconds", type=float, default=60)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--venues", nargs="+", default=["binance", "okx"])
    generate.add_argument("--symbols", nargs="+", default=["BTC-USDT", "ETH-USDT"])
    generate.set_defaults(run=_generate)

    schema = commands.add_parser("schema", help="export the JSON Schema of every published event")
    schema.add_argument("--out", type=Path, default=Path("schemas/json"))
    schema.set_defaults(run=_schema)

    demo = commands.add_parser("demo", help="generate a small recording and replay it")
    demo.add_argument("--out-dir", type=Path, default=Path("data/demo"))
    demo.add_argument("--seconds", type=float, default=20)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
