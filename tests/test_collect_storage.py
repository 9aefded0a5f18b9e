"""Collector -> NATS -> store -> ClickHouse (embedded chDB): a book rebuilt from storage at any stored update id
is the simulator's true book at that id, on both venues."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from flows.book_reader import book_at_time, read_full_books
from connectors.clickhouse_backend import ChdbBackend, read_events
from connectors.nats_server import EmbeddedNatsServer
from operators.rebuild import rebuild
from schemas.clickhouse import ORDERBOOK_DELTAS, ORDERBOOK_FULL_DEPTH, ClickHouseSettings
from schemas.clickhouse_rows import DELTAS, StoredFullBook
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.clickhouse_support import chdb_dir
from tests.live_support import collect_from, store_from

DATABASE = "collect_storage"
SECONDS = 12


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch):
    tmp = tmp_path_factory.mktemp("store")
    monkeypatch_module.setenv("MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH", str(chdb_dir()))
    monkeypatch_module.setenv("MARKETPRISM_CLICKHOUSE_DATABASE", DATABASE)
    with SimulatorThread(SimSettings(seed=13, symbols=("BTC-USDT",))) as simulator, \
            EmbeddedNatsServer(tmp / "nats") as server:
        summary = collect_from(simulator, server.url, tmp, SECONDS, symbols=["BTC-USDT"],
                               sinks=["nats", "clickhouse"])
        store_from(server.url, tmp)  # the store process's dataflow, here run to the end of the streams
        yield simulator, summary, ChdbBackend(ClickHouseSettings().embedded_path)


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_book_rebuilt_from_storage_equals_the_truth_at_stored_ids(stored, venue: str) -> None:
    simulator, summary, backend = stored
    fulls = read_full_books(backend, DATABASE, venue, "BTC-USDT")
    deltas = read_events(backend, DATABASE, ORDERBOOK_DELTAS, venue, "BTC-USDT")
    assert len(fulls) >= SECONDS - 4
    rows = read_events(backend, DATABASE, ORDERBOOK_FULL_DEPTH, venue, "BTC-USDT")
    assert len(rows) == len(fulls) and sum(isinstance(r, StoredFullBook) and r.encoding == DELTAS for r in rows) >= len(rows) - 3, \
        "after the first, full books are stored as the deltas since the one before"
    assert len(deltas) == summary["books"][f"{venue}:BTC-USDT"]["updates_applied"]  # each stored once
    truth = simulator.truth(venue, "BTC-USDT")
    first = fulls[0]
    ids = [d.update_id for d in deltas if d.update_id > first.last_update_id]
    for update_id in random.Random(1).sample(ids, 25) + [ids[-1]]:
        full = max((f for f in fulls if f.last_update_id <= update_id), key=lambda f: f.last_update_id)
        book, at = rebuild(full, deltas, until_id=update_id)
        assert at == update_id
        depth = 400 if venue == "okx" else 1000  # OKX: the whole live window
        true_bids, true_asks = truth.book_at(update_id, depth=depth)
        assert [tuple(level[:2]) for level in book.bids.top(depth)] == list(true_bids)
        assert [tuple(level[:2]) for level in book.asks.top(depth)] == list(true_asks)


def test_book_at_a_time(stored) -> None:
    simulator, _, backend = stored
    deltas = read_events(backend, DATABASE, ORDERBOOK_DELTAS, "binance", "BTC-USDT")
    middle = deltas[len(deltas) // 2]
    book, at = book_at_time(backend, DATABASE, "binance", "BTC-USDT", middle.exchange_ms)
    assert at is not None and at >= middle.update_id
    true_bids, _ = simulator.truth("binance", "BTC-USDT").book_at(at, depth=20)
    assert [tuple(level[:2]) for level in book.bids.top(20)] == list(true_bids)
