"""The `marketprism` command line: collect, store, replay, import, generate, schema, book and demo."""

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
from flows.status import format_report
from schemas.models import json_schemas

# The collector's and the store's default endpoints (MARKETPRISM_METRICS_PORT, _STORE_METRICS_PORT).
DEFAULT_STATUS_URLS = ("http://127.0.0.1:9108/metrics", "http://127.0.0.1:9109/metrics")


def _replay(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    report = run_replay(
        [Path(p) for p in args.recordings],
        out=args.out,
        report=args.report,
        full_interval_ms=args.full_interval_ms,
        depth=args.depth,
        nats_url=args.nats,
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
    args.full_interval_ms, args.depth, args.nats = 1000, 5000, None
    _replay(args)
    print(f"normalized events: {args.out}\nreport: {args.report}")
    return 0


def _collect(args: argparse.Namespace) -> int:
    import logging

    from bytewax.testing import run_main

    from flows.collect import build_flow, start_metrics, start_nats, start_store
    from flows.status import StatusBoard, store_metrics_url
    from schemas.settings import CollectSettings

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    overrides: dict[str, Any] = {}
    if args.duration:
        overrides["run_seconds"] = args.duration
    if args.venues:
        overrides["venues"] = args.venues
    if args.symbols:
        overrides["symbols"] = args.symbols
    simulator = None
    if args.sim:
        from sim.server import SimulatorThread
        from sim.settings import SimSettings

        simulator = SimulatorThread(SimSettings(seed=args.seed))
        simulator.start()
        overrides.update(
            binance_rest_url=simulator.binance_url, binance_ws_url=simulator.binance_ws_url,
            okx_rest_url=simulator.okx_url, okx_ws_url=simulator.okx_ws_url,
        )
        print(f"simulated exchanges: Binance {simulator.binance_url}, OKX {simulator.okx_url}")
    from flows.runtime import tune_garbage_collector

    tune_garbage_collector()
    settings = CollectSettings(**overrides)
    url, server = start_nats(settings) if "nats" in settings.sinks else (None, None)
    metrics = start_metrics(settings)
    store = start_store(settings, url)
    board = StatusBoard(settings.status_interval_s, store_url=store_metrics_url() if store is not None else None)
    summary: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        print(f"collecting {', '.join(settings.venues)} x {', '.join(settings.symbols)}; NATS {url}"
              + (f"; storing through process {store.process.pid if store and store.process else '-'}" if store else "")
              + (f"; stopping after {settings.run_seconds:g} s" if settings.run_seconds else "; Ctrl-C stops"))
        run_main(build_flow(settings, url, board=board, summary=summary))
    except KeyboardInterrupt:
        print("stopped")
    finally:
        if metrics is not None:
            metrics.stop()
        if store is not None:
            print("storing what the streams still hold ...")
            store.stop()
        if store is not None and url is not None and summary:
            summary[0]["store"] = _final_lag(url)
        if server is not None:
            server.stop()
        if simulator is not None:
            simulator.stop()
    if summary:
        print(f"\nsummary after {time.monotonic() - started:.0f} s:\n{format_report(summary[0])}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from flows.status_view import run

    try:
        return run(args.urls or DEFAULT_STATUS_URLS, args.interval, args.once)
    except KeyboardInterrupt:
        return 0


def _final_lag(nats_url: str) -> dict[str, Any]:
    from connectors.store_lag import read_store_lag

    try:
        lag = read_store_lag(nats_url)
    except Exception as exc:  # NATS gone: say so rather than claim a figure
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"messages_behind": lag.messages, "seconds_behind": lag.seconds, "per_stream": lag.per_stream}


def _store(args: argparse.Namespace) -> int:
    import logging

    from bytewax.testing import run_main

    from connectors.jetstream import redact
    from flows.store import build_flow, stop_on_sigterm
    from flows.store_metrics import start_store_metrics
    from schemas.settings import StoreSettings

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides: dict[str, Any] = {"nats_url": args.nats} if args.nats else {}
    settings = StoreSettings(**overrides)
    print(f"storing the streams of {redact(settings.nats_url)} until SIGTERM (drains first) or Ctrl-C")
    metrics = start_store_metrics(settings)
    try:
        run_main(build_flow(settings, stop_on_sigterm()))
    except KeyboardInterrupt:
        print("stopped; what was not acknowledged is stored by the next start")
    finally:
        if metrics is not None:
            metrics.stop()
    return 0


def _book(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from flows.book_reader import book_at_time
    from connectors.clickhouse_backend import open_backend
    from schemas.clickhouse import ClickHouseSettings

    moment = datetime.fromisoformat(args.at.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    settings = ClickHouseSettings()
    backend = open_backend(settings)
    try:
        book, update_id = book_at_time(backend, settings.database, args.venue, args.symbol, int(moment.timestamp() * 1000))
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        backend.close()
    print(f"{args.venue}:{args.symbol} at {moment.isoformat()}: update id {update_id}")
    print(f"{'bid qty':>18} {'bid':>16} | {'ask':<16} {'ask qty':<18}")
    for bid, ask in zip(book.bids.top(args.levels), book.asks.top(args.levels)):
        print(f"{bid[1]:>18} {bid[0]:>16} | {ask[0]:<16} {ask[1]:<18}")
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
    replay.add_argument("--nats", metavar="URL", help="also publish to NATS JetStream, on the collector's subjects")
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

    collect = commands.add_parser("collect", help="collect live books and publish them on NATS JetStream")
    collect.add_argument("--sim", action="store_true", help="start the local simulated exchanges and use them")
    collect.add_argument("--duration", type=float, help="stop after this many seconds")
    collect.add_argument("--venues", nargs="+")
    collect.add_argument("--symbols", nargs="+")
    collect.add_argument("--seed", type=int, default=0, help="simulator seed (with --sim)")
    collect.add_argument("-v", "--verbose", action="store_true", help="log connections, snapshots, resyncs")
    collect.set_defaults(run=_collect)

    store = commands.add_parser("store", help="store the NATS streams in ClickHouse (exactly once, own process)")
    store.add_argument("--nats", metavar="URL", help="the collector's NATS (default MARKETPRISM_NATS_URL)")
    store.add_argument("-v", "--verbose", action="store_true", help="log consumers, batches, acks")
    store.set_defaults(run=_store)

    book = commands.add_parser("book", help="rebuild a stored book at a moment (ClickHouse or embedded chDB)")
    book.add_argument("--venue", required=True)
    book.add_argument("--symbol", required=True)
    book.add_argument("--at", required=True, help="ISO-8601 time, e.g. 2026-11-24T03:00:00Z")
    book.add_argument("--levels", type=int, default=10)
    book.set_defaults(run=_book)

    status = commands.add_parser("status", help="a live view of running collectors and stores (their /metrics)")
    status.add_argument(
        "--url", action="append", dest="urls",
        help="a metrics endpoint (repeatable; default the collector's and the store's: " + " ".join(DEFAULT_STATUS_URLS) + ")",
    )
    status.add_argument("--interval", type=float, default=1.0, help="seconds between redraws")
    status.add_argument("--once", action="store_true", help="print one frame and exit (non-zero if an endpoint is down)")
    status.set_defaults(run=_status)

    demo = commands.add_parser("demo", help="generate a small recording and replay it")
    demo.add_argument("--out-dir", type=Path, default=Path("data/demo"))
    demo.add_argument("--seconds", type=float, default=20)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=_demo)

    from flows.dataset import add_dataset_command
    from flows.plots import add_plot_command

    add_dataset_command(commands)
    add_plot_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
