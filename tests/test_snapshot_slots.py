"""`orderbook.snapshot` at every `snapshot_interval_ms` boundary of exchange time, read from NATS.

The truth is the recording itself: for every 10 s slot of exchange time, the first diff
in it. The snapshot subject must hold, besides the books of each (re)sync, exactly one
book per slot, at that diff's update id, with no slot skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from connectors.nats_server import EmbeddedNatsServer
from connectors.recording import merge_recordings
from flows.replay import run_replay
from schemas.raw import RawEvent
from sim.recording import generate_recording
from tests.live_support import read_streams

SLOT_MS = 10_000


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedNatsServer]:
    monkeypatch.setenv("MARKETPRISM_REPLAY_SPILL_DIR", str(tmp_path / "spill"))
    with EmbeddedNatsServer(tmp_path / "nats") as running:
        yield running


def _first_diff_per_slot(recording: Path, after_id: int) -> dict[int, int]:
    """slot -> u of the first Binance diff with exchange time in it, past the syncing snapshot."""
    firsts: dict[int, int] = {}
    for raw in merge_recordings([recording]):
        assert isinstance(raw, RawEvent)
        if raw.kind != "ws" or "depthUpdate" not in raw.data:
            continue
        diff = orjson.loads(raw.data)["data"]
        if diff["u"] > after_id:
            firsts.setdefault(diff["E"] // SLOT_MS, diff["u"])
    return firsts


def _ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_one_snapshot_per_slot_of_exchange_time_none_skipped(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    recording = tmp_path / "slots.jsonl.zst"
    generate_recording(recording, venues=("binance",), symbols=("BTC-USDT",), seconds=45, seed=8, binance_depth_limit=200)
    # Full books only every 3 s: slots must not depend on a full book falling into them.
    run_replay([recording], nats_url=server.url, full_interval_ms=3000, depth=200, snapshot_interval_ms=SLOT_MS)
    snapshots = [book for _, book, _ in read_streams(server.url, ("ORDERBOOK_FULL",))["orderbook.snapshot.binance.btc-usdt"]]
    syncs = [book for book in snapshots if book["update_type"] == "snapshot"]
    assert len(syncs) == 1
    periodic = [book for book in snapshots if book["update_type"] != "snapshot"]
    firsts = _first_diff_per_slot(recording, syncs[0]["last_update_id"])
    sync_slot = _ms(syncs[0]["timestamp"]) // SLOT_MS if syncs[0]["timestamp"] else None
    expected = {slot: u for slot, u in firsts.items() if slot != sync_slot}
    got = {_ms(book["timestamp"]) // SLOT_MS: book["last_update_id"] for book in periodic}
    assert len(periodic) == len(got), "one periodic snapshot per slot"
    assert got == expected
    assert len(expected) >= 4 and sorted(expected) == list(range(min(expected), max(expected) + 1))
