"""Every published book is the simulator's true book at that update id.

The simulator writes a recording as live clients would receive it (Binance diffs with a
5000-level REST snapshot, OKX `books` with seqId and checksums) and keeps the true book
at every id. The replay's output is rebuilt the way a consumer would (full books plus
deltas) and compared with that truth.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from flows.replay import run_replay
from sim.recording import SymbolTruth, generate_recording
from tests.book_replica import ReplicaBook
from tests.truth_checks import check_binance_full

OKX_WINDOW = 400
DELTA_CHECK_DEPTH = 50


def _text(levels: list[tuple[str, str]] | list[list[str]]) -> list[tuple[str, str]]:
    return [(level[0], level[1]) for level in levels]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, SymbolTruth], dict, list[dict]]:
    tmp = tmp_path_factory.mktemp("sim")
    recording = tmp / "sim.jsonl.zst"
    truths = generate_recording(recording, seconds=20, seed=11)
    out = tmp / "events.jsonl"
    report = run_replay([recording], out=out, full_interval_ms=2000)
    return truths, report, [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_every_book_synced_without_faults(replayed) -> None:
    truths, report, _ = replayed
    assert sorted(report["books"]) == sorted(truths)
    for key, book in report["books"].items():
        assert (book["gaps"], book["resyncs"], book["checksum_failures"], book["crossed"], book["rejected"]) == (
            0, 0, 0, 0, 0), key
        assert book["updates_applied"] >= 150, key
        if key.startswith("okx"):
            assert book["checksums_verified"] == book["messages"]
    assert report["errors"] == []


def test_full_books_equal_the_truth_at_their_update_id(replayed) -> None:
    truths, _, events = replayed
    checked: dict[str, int] = {}
    for event in events:
        if event["event_type"] != "orderbook":
            continue
        key = f"{event['exchange_name']}:{event['symbol_name']}"
        truth = truths[key].market
        bids = _text([(l["price"], l["quantity"]) for l in event["bids"]])
        asks = _text([(l["price"], l["quantity"]) for l in event["asks"]])
        if key.startswith("binance"):
            # 5000 levels from the snapshot; past its deepest level only those a diff set.
            assert len(bids) >= 4900 and len(asks) >= 4900, (key, len(bids), len(asks))
            check_binance_full(event, truth)
            checked[key] = checked.get(key, 0) + 1
            continue
        else:
            assert len(bids) <= OKX_WINDOW and len(asks) <= OKX_WINDOW
        true_bids, true_asks = truth.book_at(event["last_update_id"], depth=max(len(bids), len(asks)))
        assert bids == _text(true_bids)[: len(bids)], key
        assert asks == _text(true_asks)[: len(asks)], key
        if key.startswith("okx"):
            window_bids, window_asks = truth.book_at(event["last_update_id"], depth=OKX_WINDOW)
            assert (bids, asks) == (_text(window_bids), _text(window_asks)), key
        checked[key] = checked.get(key, 0) + 1
    assert sorted(checked) == sorted(truths)
    assert all(count >= 5 for count in checked.values()), checked


def test_deltas_rebuild_the_truth_at_every_update_id(replayed) -> None:
    truths, _, events = replayed
    replicas: dict[str, ReplicaBook] = {}
    compared: dict[str, int] = {}
    for event in events:
        key = f"{event['exchange_name']}:{event['symbol_name']}"
        if event["event_type"] == "orderbook":
            replicas.setdefault(key, ReplicaBook()).load(event)
            update_id = event["last_update_id"]
        elif event["event_type"] == "pure_delta":
            replicas[key].apply(event)
            update_id = event["update_id"]
        else:
            continue
        true_bids, true_asks = truths[key].market.book_at(update_id, depth=DELTA_CHECK_DEPTH)
        bids, asks = replicas[key].top(DELTA_CHECK_DEPTH)
        assert [(float(p), q) for p, q in bids] == [(float(p), q) for p, q in _text(true_bids)], (key, update_id)
        assert [(float(p), q) for p, q in asks] == [(float(p), q) for p, q in _text(true_asks)], (key, update_id)
        compared[key] = compared.get(key, 0) + 1
    assert all(count >= 150 for count in compared.values()), compared
