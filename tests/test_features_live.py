"""The live features (book_sync's LiveFeatures) against the offline builder's
loop: one recording replayed both ways gives the same rows; rows and full books reach
their subjects and streams."""

from __future__ import annotations

from pathlib import Path

import bytewax.operators as op
import orjson
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from connectors.replay_source import RecordingSource
from flows.dataset import book_rows
from flows.steps import UNKEYED, BookSyncLogic, decode_step
from operators.features.engine import FeatureSettings
from operators.features.publish import feature_publication
from operators.routing import publications
from operators.sync_base import SyncSettings
from schemas.events import BookFull
from schemas.features import FeatureRow
from schemas.streams import StreamSettings
from sim.recording import generate_recording

SETTINGS = FeatureSettings(every_updates=5, interval_ms=1000)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("live") / "two_books.jsonl.zst"
    generate_recording(path, venues=("binance", "okx"), symbols=("BTC-USDT",), seconds=40, seed=5)
    return path


def live_outputs(recording: Path) -> list[object]:
    flow = Dataflow("features_live")
    raw = op.input("recording", flow, RecordingSource([recording]))
    decoded = op.flat_map("decode", raw, decode_step)
    routed = op.branch("has_book", decoded, lambda kv: kv[0] != UNKEYED)
    synced = op.stateful("book_sync", routed.trues,
                         lambda resume: BookSyncLogic(SyncSettings(), resume, features=SETTINGS))
    out: list[object] = []
    op.output("out", op.map("events", synced, lambda kv: kv[1]), TestingSink(out))
    run_main(flow)
    return out


def test_live_rows_equal_offline_rows(recording: Path):
    out = live_outputs(recording)
    for venue in ("binance", "okx"):
        live = [r for r in out if isinstance(r, FeatureRow) and r.venue == venue]
        offline = list(book_rows([recording], venue, "BTC-USDT", SETTINGS))
        assert len(live) == len(offline) > 50
        for a, b in zip(live, offline):
            assert (a.update_id, a.recv_ns, a.values) == (b.update_id, b.recv_ns, b.values)
        assert {type(v) for row in live for v in row.values.values()} <= {float, type(None)}  # JSON-ready


def test_full_books_carry_the_latest_features(recording: Path):
    out = live_outputs(recording)
    latest: dict[str, dict] = {}
    carried = 0
    for item in out:
        if isinstance(item, FeatureRow):
            latest[item.venue] = item.values
        elif isinstance(item, BookFull):
            assert item.ml_features is latest.get(item.venue)
            if item.ml_features is not None:
                carried += 1
                payload = orjson.loads(publications(item)[0].data)
                assert payload["ml_features"]["mid_price"] == item.ml_features["mid_price"]
    assert carried > 30


def test_feature_rows_go_to_the_features_stream(recording: Path):
    row = next(r for r in live_outputs(recording) if isinstance(r, FeatureRow))
    publication = feature_publication(row)
    assert publication.subject == f"features.{row.venue}.btc-usdt"
    assert StreamSettings().stream_for(publication.subject) == "FEATURES"
    body = orjson.loads(publication.data)
    assert body["update_id"] == row.update_id and body["features"]["spread"] == row.values["spread"]
