"""`dataset build --from clickhouse`: a recording's events stored in chDB, then the dataset
built from storage and from the recording: the same files, byte for byte.

The recording has faults (dropped messages, a bad OKX checksum, an extra Binance
snapshot), so the stored order is rebuilt across gaps, resyncs, buffered deltas and an
audit. Compared: features.parquet, labels.parquet, lob.npy and heatmap.npy byte for byte,
and meta.json but for its `inputs` (file digests against the database's name).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from connectors.clickhouse_backend import ChdbBackend, ensure_schema
from flows.cli import main
from flows.dataset import DatasetSettings, build_dataset, build_dataset_from_storage
from flows.offline import recording_events
from operators.emission_order import emission_order
from operators.sync_base import SyncSettings
from schemas.clickhouse import TABLES
from schemas.clickhouse_rows import batch_token, to_batches
from schemas.events import BookDelta, BookFull, QualityEvent, Trade
from sim.faults import FaultPlan
from sim.recording import generate_recording
from tests.clickhouse_support import chdb_dir

DATABASE = "dataset_from_storage"
FILES = ("features.parquet", "labels.parquet", "lob.npy", "heatmap.npy")
SETTINGS = DatasetSettings(window=20, event_horizons=(10, 50), stack_size=3)
BOOKS = (("binance", "BTC-USDT"), ("okx", "BTC-USDT"))


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stored") / "faults.jsonl.zst"
    generate_recording(path, venues=("binance", "okx"), symbols=("BTC-USDT",), seconds=40, seed=9,
                       faults=FaultPlan(seed=4, drop=2, bad_checksum=1, resnapshot=1))
    return path


@pytest.fixture(scope="module")
def backend(recording: Path) -> Iterator[ChdbBackend]:
    """The recording's events in chDB, as the collector's sink stores them."""
    events = list(recording_events([recording], SyncSettings(depth=SETTINGS.features.depth)))
    kinds = Counter(e.kind for e in events if isinstance(e, QualityEvent))
    assert kinds["gap"] >= 2 and kinds["checksum_failure"] == 1 and kinds["out_of_sync"] >= 3, kinds
    assert sum(isinstance(e, BookFull) and e.update_type == "snapshot" for e in events) >= 3
    chdb = ChdbBackend(chdb_dir())
    ensure_schema(chdb, DATABASE, {})
    for name, batch in to_batches(events).items():
        chdb.insert(DATABASE, TABLES[name], batch, batch_token(name, batch))
    yield chdb
    chdb.close()


def _full(update_type: str, update_id: int, recv_ns: int) -> BookFull:
    return BookFull("binance", "X", update_type, update_id, None, None, None,  # type: ignore[arg-type]
                    [["1", "1"]], [["2", "1"]], None, True, [], None, recv_ns)


def _delta(update_id: int, recv_ns: int) -> BookDelta:
    return BookDelta("binance", "X", update_id, update_id - 1, update_id, [["1", "2"]], [], None, recv_ns)


def test_the_emitted_order_is_rebuilt_from_ids_and_receive_times() -> None:
    """A hand-made stretch: a live delta, a gap, a snapshot with deltas buffered before it,
    a periodic full book, an audit that fails, trades in between."""
    events = {
        "d90": _delta(90, 5), "gap": QualityEvent("binance", "X", "gap", "", 95, 8),
        "t1": Trade("binance", "X", "1", "1", "1", "buy", None, 9),
        "d101": _delta(101, 10), "d102": _delta(102, 20),  # buffered, applied after the snapshot
        "t2": Trade("binance", "X", "2", "1", "1", "sell", None, 30),
        "in_sync": QualityEvent("binance", "X", "in_sync", "", 100, 50), "s100": _full("snapshot", 100, 50),
        "f102": _full("full_refresh", 102, 50),
        "d103": _delta(103, 70), "t3": Trade("binance", "X", "3", "1", "1", "buy", None, 70),
        "mismatch": QualityEvent("binance", "X", "audit_mismatch", "", 103, 70), "a103": _full("snapshot", 103, 70),
    }
    fulls = [events[k] for k in ("s100", "f102", "a103")]
    deltas = [events[k] for k in ("d103", "d90", "d102", "d101")]  # as read: by exchange time, here none
    market = [events[k] for k in ("mismatch", "t3", "in_sync", "t2", "gap", "t1")]
    order = [next(k for k, v in events.items() if v is e) for e in emission_order(iter(fulls), deltas, market)]
    assert order == ["d90", "gap", "t1", "t2", "in_sync", "s100", "d101", "d102", "f102",
                     "t3", "d103", "mismatch", "a103"]
    with pytest.raises(ValueError, match="update ids go back"):
        list(emission_order(iter([events["a103"], events["s100"]]), [], []))


def _same_dataset(a: Path, b: Path) -> int:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    meta_a, meta_b = (json.loads((d / "meta.json").read_text()) for d in (a, b))
    assert meta_a.pop("inputs") != meta_b.pop("inputs")
    assert meta_a == meta_b
    return meta_a["samples"]


@pytest.mark.parametrize("venue, symbol", BOOKS)
def test_a_dataset_from_storage_equals_the_one_from_the_recording(
    backend: ChdbBackend, recording: Path, tmp_path: Path, venue: str, symbol: str
) -> None:
    build_dataset([recording], venue=venue, symbol=symbol, out=tmp_path / "rec", settings=SETTINGS, progress=False)
    build_dataset_from_storage(backend, DATABASE, venue=venue, symbol=symbol, out=tmp_path / "db", settings=SETTINGS,
                               progress=False)
    assert _same_dataset(tmp_path / "rec", tmp_path / "db") > 200


def test_a_time_range_from_storage_equals_the_range_from_the_recording(
    backend: ChdbBackend, recording: Path, tmp_path: Path
) -> None:
    """The stored stretch starts at the keyframe before the range (here: the recording's start)."""
    build_dataset([recording], venue="binance", symbol="BTC-USDT", out=tmp_path / "all", settings=SETTINGS,
                  progress=False)
    times = pl.read_parquet(tmp_path / "all" / "features.parquet")["timestamp"]
    start, end = int(times[len(times) // 4]), int(times[3 * len(times) // 4])
    build_dataset([recording], venue="binance", symbol="BTC-USDT", out=tmp_path / "rec", settings=SETTINGS,
                  start_ms=start, end_ms=end, progress=False)
    build_dataset_from_storage(backend, DATABASE, venue="binance", symbol="BTC-USDT", out=tmp_path / "db",
                               settings=SETTINGS, start_ms=start, end_ms=end, progress=False)
    samples = _same_dataset(tmp_path / "rec", tmp_path / "db")
    assert 0.4 * len(times) < samples < 0.6 * len(times)


def test_the_command_line_builds_from_the_configured_storage(
    backend: ChdbBackend, recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH", str(chdb_dir()))
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_DATABASE", DATABASE)
    for source, out in (([str(recording)], "rec"), (["clickhouse"], "db")):
        assert main(["dataset", "build", "--from", *source, "--venue", "okx", "--symbol", "BTC-USDT",
                     "--out", str(tmp_path / out), "--every-updates", "5"]) == 0
    _same_dataset(tmp_path / "rec", tmp_path / "db")
    meta = json.loads((tmp_path / "db" / "meta.json").read_text())
    assert meta["inputs"] == [{"clickhouse": f"chdb:{chdb_dir()}", "database": DATABASE}]
