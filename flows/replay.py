"""The replay dataflow: recordings -> decode -> book_sync (keyed venue:symbol) -> outputs.

Run it as `marketprism replay REC...` or `python -m bytewax.run flows.replay` with
MARKETPRISM_REPLAY_INPUTS (and _OUT, _REPORT, _FULL_INTERVAL_MS) in the environment.
With one worker the output is a pure function of the input: same bytes every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main

from connectors.files import JsonDocumentSink, JsonLinesSink
from connectors.replay_source import RecordingChunkSource
from flows.runtime import tune_garbage_collector
from flows.steps import UNKEYED, BookSyncChunkLogic, decode_chunk_step, report_fold
from connectors.nats import NatsJetStreamSink
from operators.report import ReportBuilder
from operators.routing import publications
from operators.sync_base import SyncSettings
from schemas.encoding import encode_event
from schemas.events import QualityEvent
from schemas.publication import Publication
from schemas.settings import ReplaySettings
from schemas.streams import StreamSettings

def _chunk_events(value: object) -> list[object]:
    """The events of one book_sync output: a chunk's list (a final-counters tuple has none)."""
    return value if type(value) is list else []  # type: ignore[return-value]


def _chunk_publications(keyed: tuple[str, object]) -> list[Publication]:
    return [publication for event in _chunk_events(keyed[1]) for publication in publications(event)]


def _encode_chunk(value: object) -> bytes | None:
    """A chunk's events as JSON lines joined by newlines (the sink ends the last), or None."""
    lines = [line for line in map(encode_event, _chunk_events(value)) if line is not None]
    return b"\n".join(lines) if lines else None


def build_flow(
    settings: ReplaySettings,
    report_capture: list[dict[str, Any]] | None = None,
) -> Dataflow:
    """Wire the replay; `report_capture` receives the report in-process as well."""
    sync_settings = SyncSettings(
        depth=settings.depth, full_interval_ms=settings.full_interval_ms, snapshot_interval_ms=settings.snapshot_interval_ms
    )
    flow = Dataflow("replay")
    chunks = op.input("recording", flow, RecordingChunkSource(settings.inputs))
    decoded = op.flat_map("decode", chunks, decode_chunk_step)
    routed = op.branch("has_book", decoded, lambda kv: kv[0] != UNKEYED)
    # Per key and chunk: a list of events, or at the end the book's final counters (a tuple).
    synced = op.stateful("book_sync", routed.trues, lambda resume: BookSyncChunkLogic(sync_settings, resume))
    finals = op.filter_map("final_stats", synced, lambda kv: kv[1] if type(kv[1]) is tuple else None)
    unkeyed = op.map("unkeyed_errors", routed.falses, lambda kv: kv[1][1])
    report_items = op.key_on("to_report", op.merge("report_items", finals, unkeyed), lambda _: "report")
    report = op.fold_final("report", report_items, ReportBuilder, report_fold)
    rendered = op.map_value("render", report, ReportBuilder.render)
    op.output("report_out", rendered, JsonDocumentSink(settings.report, report_capture))
    if settings.nats_url is not None:
        messages = op.flat_map("route", synced, _chunk_publications)
        sink = NatsJetStreamSink(settings.nats_url, StreamSettings(), settings.spill_dir)
        op.output("nats", op.key_on("by_subject", messages, lambda p: p.subject), sink)
    if settings.out is not None:
        unkeyed_quality = op.filter(
            "unkeyed_quality", routed.falses, lambda kv: isinstance(kv[1][1], QualityEvent)
        )
        published = op.merge("published", synced, op.map_value("unwrap", unkeyed_quality, lambda v: [v[1]]))
        lines = op.filter_map_value("encode", published, _encode_chunk)
        op.output("events_out", lines, JsonLinesSink(settings.out))
    return flow


def run_replay(
    inputs: list[Path],
    out: Path | None = None,
    report: Path | None = None,
    full_interval_ms: int = 1000,
    depth: int = 5000,
    nats_url: str | None = None,
    snapshot_interval_ms: int = 10_000,
) -> dict[str, Any]:
    """Replay in this thread (one worker) and return the report."""
    settings = ReplaySettings(
        inputs=inputs, out=out, report=report, full_interval_ms=full_interval_ms, depth=depth, nats_url=nats_url,
        snapshot_interval_ms=snapshot_interval_ms,
    )
    capture: list[dict[str, Any]] = []
    tune_garbage_collector()
    run_main(build_flow(settings, capture))
    return capture[0] if capture else ReportBuilder().render()


def __getattr__(name: str) -> Dataflow:
    # `python -m bytewax.run flows.replay` looks up `flow`; build it from the environment then.
    if name == "flow":
        tune_garbage_collector()
        return build_flow(ReplaySettings())  # type: ignore[call-arg]
    raise AttributeError(name)
