"""The store dataflow: JetStream (the collector's five streams) -> ClickHouse, exactly once.

Its own process, so the collector never waits on a database: `python -m bytewax.run
flows.store` (settings from the environment), `marketprism store`, or started by
`marketprism collect` when ClickHouse is among its sinks. Messages are acknowledged only
after the batch holding them is inserted; batches are durable before they are inserted,
and their dedup tokens come from the stream sequences (see `connectors.jetstream_source`).
SIGTERM asks it to store everything the streams hold, then stop. Its metrics (lag per
stream, stored, failures, spill) are on their own endpoint, see `flows.store_metrics`.
"""

from __future__ import annotations

import atexit
import logging
import threading

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from connectors.acks import AckLedger
from connectors.clickhouse import ClickHouseSink, journaled_acks
from connectors.jetstream_source import ConsumerLimits, JetStreamSource
from connectors.store_metrics import STORE_METRICS
from flows.runtime import set_on_sigterm
from flows.store_metrics import start_store_metrics
from schemas.clickhouse import ClickHouseSettings
from schemas.settings import StoreSettings

log = logging.getLogger("marketprism.store")


def clickhouse_settings(settings: StoreSettings) -> ClickHouseSettings:
    """ClickHouse from the environment; chDB under the store's data directory unless set."""
    storage = ClickHouseSettings()
    update: dict[str, object] = {"batch_age_s": settings.store_batch_age_s}
    if "embedded_path" not in storage.model_fields_set:
        update["embedded_path"] = settings.data_dir / "clickhouse"
    return storage.model_copy(update=update)


def build_flow(settings: StoreSettings, drain_and_stop: threading.Event | None = None) -> Dataflow:
    """Wire the store; setting `drain_and_stop` ends it once the streams are stored."""
    spill_dir = settings.data_dir / "spill" / "store"
    ledger = AckLedger(journaled_acks(spill_dir))
    source = JetStreamSource(
        settings.nats_url, ledger=ledger, durable_prefix=settings.store_durable, drain_and_stop=drain_and_stop,
        limits=ConsumerLimits(ack_wait_s=settings.store_ack_wait_s),
    )
    sink = ClickHouseSink(clickhouse_settings(settings), spill_dir, ledger=ledger,
                          manage_schema=settings.store_manage_schema)
    STORE_METRICS.watch(source=source.stats, sink=sink.stats)
    flow = Dataflow("store")
    messages = op.input("jetstream", flow, source)
    op.output("clickhouse", op.key_on("one_writer", messages, lambda _: "clickhouse"), sink)
    return flow


def stop_on_sigterm() -> threading.Event:
    """An event set by SIGTERM: the store then drains the streams and ends."""
    return set_on_sigterm("store: storing what the streams hold, then stopping")


def __getattr__(name: str) -> Dataflow:
    # `python -m bytewax.run flows.store` looks up `flow`; build it from the environment then.
    if name != "flow":
        raise AttributeError(name)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = StoreSettings()
    metrics = start_store_metrics(settings)
    if metrics is not None:
        atexit.register(metrics.stop)
    return build_flow(settings, stop_on_sigterm())
