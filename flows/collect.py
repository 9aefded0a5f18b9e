"""The collect dataflow: live exchanges -> book_sync (keyed venue:symbol) -> NATS JetStream,
and every received message to the raw recorder.

`python -m bytewax.run flows.collect` runs it with settings from the environment (or the
YAML file named by MARKETPRISM_CONFIG; with MARKETPRISM_END_ON_SIGTERM=true, SIGTERM ends
such a run as its duration running out would); `marketprism collect [--sim] [--duration S]`
runs it in this process with a live status table and a summary at the end. Without a
NATS URL an embedded nats-server (JetStream, under `<data_dir>/nats`) is started. With
`clickhouse` among the sinks, storage is the store dataflow (`flows.store`) in a process
of its own on the same NATS, started and stopped with the collector: this process never
waits on a database, nor loads one.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from connectors.binance import BinanceEndpoints, BinanceFeed
from connectors.binance import connect_budget as binance_connect_budget
from connectors.binance import weight_budget as binance_weight_budget
from connectors.control import ControlBus, ControlBusSink, InProcessControlBus, NatsControlBus
from connectors.files import JsonDocumentSink
from connectors.metrics_server import MetricsEndpoint
from connectors.live_source import Feed, LiveSource
from connectors.nats import NatsJetStreamSink, WriteObserver
from connectors.nats_server import EmbeddedNatsServer
from connectors.off_worker_sink import OffWorkerSink
from connectors.publisher_metrics import PUBLISHER_METRICS
from connectors.okx import OkxEndpoints, OkxFeed, books_full_budget
from connectors.okx import connect_budget as okx_connect_budget
from connectors.recorder import RecorderSink
from flows.metrics import MetricsSink, observe_latency
from flows.publishing import MARKET_EVENTS, routed_publications
from flows.runtime import set_on_sigterm, tune_garbage_collector
from flows.status import StatusBoard, StatusBoardSink, store_metrics_url
from flows.store_process import StoreProcess
from flows.steps import UNKEYED, BookSyncLogic, StatusUpdate, decode_off_worker, decode_step, report_fold
from operators.report import ReportBuilder
from operators.routing import publications
from operators.features.engine import FeatureSettings
from operators.sync_base import SyncSettings
from schemas.events import BookFull, QualityEvent, ResyncRequest
from schemas.raw import VENUES
from schemas.settings import CollectSettings
from schemas.stream_sizing import stream_fits
from schemas.streams import StreamSettings

log = logging.getLogger("marketprism")


def feed_factory(settings: CollectSettings, bus: ControlBus) -> Callable[[str], Feed]:
    """Builds each book's feed; budgets are shared by every book of a venue in this process."""
    binance_weights, binance_connects = binance_weight_budget(), binance_connect_budget()
    okx_connects, okx_deep = okx_connect_budget(), books_full_budget()
    binance = BinanceEndpoints(settings.binance_rest_url, settings.binance_ws_url)

    def make_feed(key: str) -> Feed:
        venue, _, symbol = key.partition(":")
        if venue == "okx":
            assert settings.okx_business_ws_url is not None  # derived by the settings when okx is collected
            okx = OkxEndpoints(settings.okx_rest_url, settings.okx_ws_url, settings.okx_business_ws_url)
            return OkxFeed(
                symbol, okx, connects=okx_connects, deep_requests=okx_deep, control=bus,
                deep_interval_s=settings.okx_deep_interval_s or None, silence_s=settings.silence_s,
            )
        if venue in ("binance", "binance_us"):
            return BinanceFeed(
                venue, symbol, binance, weights=binance_weights, connects=binance_connects, control=bus,
                depth_limit=settings.depth, rotate_after_s=settings.binance_rotate_after_s, silence_s=settings.silence_s,
            )
        raise ValueError(f"no feed for {key!r}: unknown venue {venue!r}; known: {', '.join(VENUES)}")

    return make_feed


def build_flow(
    settings: CollectSettings,
    nats_url: str | None,
    bus: ControlBus | None = None,
    board: StatusBoard | None = None,
    summary: list[dict[str, Any]] | None = None,
    on_publish: WriteObserver | None = None,
    end: threading.Event | None = None,
) -> Dataflow:
    """Wire the collector; `summary` receives the final per-book report when the flow ends;
    `on_publish` sees every batch handed to the NATS sink (the latency bench times it);
    `end`, once set, ends the run as `run_seconds` running out would."""
    own_bus = bus is None  # closed with the flow; a bus given is the caller's to close
    if bus is None:
        bus = NatsControlBus(nats_url) if settings.control_bus == "nats" and nats_url else InProcessControlBus()
    board = board or StatusBoard(settings.status_interval_s)
    keys = [f"{venue}:{symbol}" for venue in settings.venues for symbol in settings.symbols]
    sync_settings = SyncSettings(**settings.sync_settings())
    status_every = timedelta(seconds=min(1.0, settings.status_interval_s))

    flow = Dataflow("collect")
    source = LiveSource(keys, feed_factory(settings, bus), settings.run_seconds, prepare=decode_off_worker,
                        end=end)
    raw = op.input("exchanges", flow, source)
    if "recorder" in settings.sinks:
        op.output("recorder", raw, RecorderSink(settings.data_dir / "recordings"))
    decoded = op.flat_map("decode", raw, decode_step)
    routed = op.branch("has_book", decoded, lambda kv: kv[0] != UNKEYED)
    features = "nats" in settings.sinks and (
        settings.features_every_updates is not None or settings.features_interval_ms is not None)
    feature_settings = FeatureSettings(every_updates=settings.features_every_updates,
                                       interval_ms=settings.features_interval_ms,
                                       depth=settings.depth) if features else None
    synced = op.stateful(
        "book_sync", routed.trues,
        lambda resume: BookSyncLogic(sync_settings, resume, status_every, features=feature_settings),
    )
    # Every event passes one Python call per step it meets, on the worker that must keep up
    # with the exchange: market data takes the fewest steps (a branch here, one for full
    # books, the routing), and only the rare rest meets the filters of the other sinks.
    split = op.branch("market_data", synced, lambda kv: type(kv[1]) in MARKET_EVENTS)
    others = op.map("others", split.falses, lambda kv: kv[1])

    resyncs = op.filter("resyncs", others, lambda e: isinstance(e, ResyncRequest))
    op.output("control_bus", resyncs, ControlBusSink(bus, close_bus=own_bus))

    statuses = op.filter("status_updates", others, lambda e: isinstance(e, StatusUpdate))
    op.output("metrics", statuses, MetricsSink(settings.depth))

    unkeyed = op.map("unkeyed", routed.falses, lambda kv: kv[1][1])
    watched = op.merge("watched", op.filter("status", others, lambda e: isinstance(e, QualityEvent)), unkeyed)
    op.output("status_board", watched, StatusBoardSink(board))

    finals = op.filter("finals", others, lambda e: type(e) is tuple)
    unkeyed_rejects = op.filter("unkeyed_rejects", unkeyed, lambda e: isinstance(e, QualityEvent))
    summary_items = op.key_on("one", op.merge("summary_items", finals, unkeyed_rejects), lambda _: "summary")
    report = op.fold_final("summary", summary_items, ReportBuilder, report_fold)
    op.output("summary_out", op.map_value("render", report, ReportBuilder.render), JsonDocumentSink(None, summary))

    if "clickhouse" in settings.sinks and "nats" not in settings.sinks:
        raise ValueError("the clickhouse sink stores what the collector publishes: it needs the nats sink too")
    if "nats" in settings.sinks:
        if nats_url is None:
            raise ValueError("the nats sink needs a NATS URL (or an embedded server)")
        quality = op.filter("quality", split.falses, lambda kv: isinstance(kv[1], QualityEvent))
        published = op.branch("full_books", op.merge("published", split.trues, quality),
                              lambda kv: type(kv[1]) is BookFull)
        streams = StreamSettings()
        warn_of_small_streams(settings, streams)
        spill = settings.data_dir / "spill"
        sink = NatsJetStreamSink(nats_url, streams, spill / "nats", on_write=on_publish)
        op.output("nats", op.flat_map("route", published.falses, routed_publications), sink)
        # Full books (5000 levels a side) are encoded on a thread of their own and published
        # on a connection of their own: the deltas behind them never wait for the encoding.
        full_nats = NatsJetStreamSink(nats_url, streams, spill / "nats-full", on_write=on_publish)
        full_sink = OffWorkerSink(full_nats, publications)
        PUBLISHER_METRICS.watch(sink.stats, full_nats.stats)
        full_books = op.inspect("full_latency", published.trues, lambda _step, kv: observe_latency(kv[1]))
        op.output("nats_full", full_books, full_sink)
    return flow


def start_metrics(settings: CollectSettings) -> MetricsEndpoint | None:
    """The Prometheus endpoint, or None (with the reason logged) when it is off or its port is taken."""
    if settings.metrics_port == 0:
        return None
    try:
        return MetricsEndpoint(settings.metrics_host, settings.metrics_port).start()
    except OSError as exc:
        log.error("metrics endpoint %s:%d not started: %s", settings.metrics_host, settings.metrics_port, exc)
        return None


def warn_of_small_streams(settings: CollectSettings, streams: StreamSettings) -> list[str]:
    """Say at start-up, with the figures, which streams will not keep their max_age of data."""
    books = len(settings.venues) * len(settings.symbols)
    fits = stream_fits(
        streams, books=books, depth=settings.depth,
        full_interval_ms=settings.full_interval_ms, snapshot_interval_ms=settings.snapshot_interval_ms,
    )
    sentences = [fit.sentence() for fit in fits if not fit.fits]
    for sentence in sentences:
        log.warning(sentence)
    return sentences


def start_nats(settings: CollectSettings) -> tuple[str, EmbeddedNatsServer | None]:
    """The configured NATS URL, or an embedded server's (the caller stops it)."""
    if settings.nats_url:
        return settings.nats_url, None
    server = EmbeddedNatsServer(settings.data_dir / "nats")
    server.start()
    log.info("no NATS URL configured: started an embedded nats-server at %s", server.url)
    return server.url, server


def start_store(settings: CollectSettings, nats_url: str | None) -> StoreProcess | None:
    """The store process when ClickHouse is among the sinks (the caller stops it)."""
    if "clickhouse" not in settings.sinks or nats_url is None:
        return None
    return StoreProcess(nats_url=nats_url, data_dir=settings.data_dir).start()


def end_on_sigterm() -> threading.Event:
    """An event set by SIGTERM: the run then ends as at `run_seconds` (sinks flushed,
    summary written, exit status 0)."""
    return set_on_sigterm("collect: ending the run")


def __getattr__(name: str) -> Dataflow:
    # `python -m bytewax.run flows.collect` looks up `flow`; build it from the environment then.
    if name != "flow":
        raise AttributeError(name)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    tune_garbage_collector()
    settings = CollectSettings()
    url, server = start_nats(settings) if "nats" in settings.sinks else (None, None)
    store = start_store(settings, url)
    if server is not None:
        atexit.register(server.stop)  # atexit runs last-in first-out: the store drains first
    if store is not None:
        atexit.register(store.stop)
    metrics = start_metrics(settings)
    if metrics is not None:
        atexit.register(metrics.stop)
    board = StatusBoard(settings.status_interval_s, store_url=store_metrics_url() if store is not None else None)
    return build_flow(settings, url, board=board, end=end_on_sigterm() if settings.end_on_sigterm else None)
