"""Simulator -> collect flow -> NATS JetStream, checked against the simulator's ground truth.

Every full book stored in ORDERBOOK_FULL is the true book at its update id (5000 levels per
side on Binance; on OKX the live 400 plus deeper, aged levels from books-full), and the
deltas in ORDERBOOK_DELTA rebuild the true book at every update id.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connectors.nats_server import EmbeddedNatsServer
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.book_replica import ReplicaBook
from tests.truth_checks import check_binance_full
from tests.live_support import collect_from, read_streams

BOOKS = ("binance:btc-usdt", "binance:eth-usdt", "okx:btc-usdt", "okx:eth-usdt")
SECONDS = 14


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("e2e")
    with SimulatorThread(SimSettings(seed=21)) as simulator, EmbeddedNatsServer(tmp / "nats") as server:
        summary = collect_from(simulator, server.url, tmp, SECONDS)
        stored = read_streams(server.url)
        yield simulator, summary, stored


def _pairs(levels: list[dict]) -> list[tuple[str, str]]:
    return [(level["price"], level["quantity"]) for level in levels]


def test_every_book_synced_and_published(collected) -> None:
    _, summary, stored = collected
    assert sorted(summary["books"]) == ["binance:BTC-USDT", "binance:ETH-USDT", "okx:BTC-USDT", "okx:ETH-USDT"]
    for key, book in summary["books"].items():
        assert (book["gaps"], book["resyncs"], book["checksum_failures"], book["rejected"]) == (0, 0, 0, 0), key
        assert book["updates_applied"] >= 8 * (SECONDS - 4), key
    for book in BOOKS:
        venue, symbol = book.split(":")
        for kind in ("full", "snapshot", "delta", "pure_delta"):
            assert stored[f"orderbook.{kind}.{venue}.{symbol}"], (kind, book)


def test_full_books_equal_the_truth(collected) -> None:
    simulator, _, stored = collected
    for book in BOOKS:
        venue, symbol = book.split(":")
        truth = simulator.truth(venue, symbol.upper())
        fulls = stored[f"orderbook.full.{venue}.{symbol}"]
        assert len(fulls) >= SECONDS - 4
        for _, full, msg_id in fulls:
            assert full["is_valid"] and msg_id.startswith(f"f.{venue}.{symbol}.{full['last_update_id']}.")
            bids, asks = full["bids"], full["asks"]
            if venue == "binance":
                assert min(len(bids), len(asks)) >= 4800
                check_binance_full(full, truth)
                continue
            live_bids = [level for level in bids if "age_ms" not in level]
            live_asks = [level for level in asks if "age_ms" not in level]
            true_bids, true_asks = truth.book_at(full["last_update_id"], depth=400)
            assert (_pairs(live_bids), _pairs(live_asks)) == (list(true_bids), list(true_asks))
            deep_bids, deep_asks = bids[len(live_bids):], asks[len(live_asks):]
            if deep_bids:  # a books-full refresh had arrived: 5000 levels, the deep ones aged
                assert 4900 <= min(len(bids), len(asks)) and max(len(bids), len(asks)) <= 5000
                assert all(0 <= level["age_ms"] <= 5000 for level in deep_bids + deep_asks)
                assert Decimal(deep_bids[0]["price"]) < Decimal(live_bids[-1]["price"])
                assert Decimal(deep_asks[0]["price"]) > Decimal(live_asks[-1]["price"])
        if venue == "okx":
            assert any(len(full["bids"]) >= 4900 for _, full, _ in fulls)


def test_deltas_rebuild_the_truth_at_every_update_id(collected) -> None:
    simulator, _, stored = collected
    for book in BOOKS:
        venue, symbol = book.split(":")
        truth = simulator.truth(venue, symbol.upper())
        first = next(full for _, full, _ in stored[f"orderbook.full.{venue}.{symbol}"] if full["update_type"] == "snapshot")
        replica = ReplicaBook()
        replica.load(first)
        checked = 0
        for _, delta, msg_id in stored[f"orderbook.pure_delta.{venue}.{symbol}"]:
            if delta["update_id"] <= first["last_update_id"]:
                continue
            assert msg_id.startswith(f"p.{venue}.{symbol}.{delta['update_id']}.")
            replica.apply(delta)
            true_bids, true_asks = truth.book_at(delta["update_id"], depth=50)
            bids, asks = replica.top(50)
            assert [(Decimal(p), q) for p, q in bids] == [(Decimal(p), q) for p, q in true_bids], (book, delta["update_id"])
            assert [(Decimal(p), q) for p, q in asks] == [(Decimal(p), q) for p, q in true_asks], (book, delta["update_id"])
            checked += 1
        assert checked >= 8 * (SECONDS - 4), (book, checked)
        updates = stored[f"orderbook.delta.{venue}.{symbol}"]
        assert len(updates) == len(stored[f"orderbook.pure_delta.{venue}.{symbol}"])
        assert all(update["update_type"] == "update" and len(update["bids"]) == 20 for _, update, _ in updates)
