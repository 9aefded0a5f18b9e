"""The sync engine against books recorded from the live exchanges by other people."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson

from flows.replay import run_replay
from tests.book_replica import ReplicaBook


def _replay(recording: Path, tmp_path: Path) -> tuple[dict, list[dict]]:
    out = tmp_path / "events.jsonl"
    report = run_replay([recording], out=out, full_interval_ms=1000)
    return report, [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_okx_every_checksum_verifies(real_recordings: dict[str, Path], tmp_path: Path) -> None:
    report, events = _replay(real_recordings["okx"], tmp_path)
    books = report["books"]
    assert sorted(books) == ["okx:BTC-USD-220527", "okx:BTC-USDT", "okx:UNI-USD-SWAP"]
    assert sum(b["checksums_verified"] for b in books.values()) == 290
    assert sum(b["checksum_failures"] for b in books.values()) == 0
    assert sum(b["checksums_unverified"] for b in books.values()) == 0
    assert [b["updates_applied"] for b in books.values()] == [98, 97, 92]
    assert all(b["snapshots"] == 1 and b["resyncs"] == 0 and b["gaps"] == 0 for b in books.values())
    assert report["errors"] == []
    assert report["trades"] == {"okx:BTC-USD-220527": 4, "okx:BTC-USDT": 69, "okx:UNI-USD-SWAP": 1}
    states = [(e["symbol_name"], e["kind"]) for e in events if e["event_type"] == "quality"]
    assert sorted(states) == [(symbol, "in_sync") for symbol in ("BTC-USD-220527", "BTC-USDT", "UNI-USD-SWAP")]


def _check_binance_capture(report: dict, events: list[dict], venue: str, symbols: list[str]) -> int:
    """0 gaps, never crossed, best bid/ask == bookTicker whenever the ticker's u is the book's id."""
    books = report["books"]
    assert sorted(books) == sorted(f"{venue}:{s}" for s in symbols)
    for key, book in books.items():
        assert (book["gaps"], book["resyncs"], book["crossed"], book["rejected"]) == (0, 0, 0, 0), key
        assert book["snapshots"] == 1 and book["updates_applied"] > 0, key
        assert Decimal(book["best_bid"]) < Decimal(book["best_ask"]), key
    assert report["errors"] == []

    replicas: dict[str, ReplicaBook] = {}
    tops_at: dict[tuple[str, int], tuple[Decimal | None, Decimal | None]] = {}
    tickers: list[dict] = []
    for event in events:
        key = f"{event['exchange_name']}:{event['symbol_name']}"
        kind = event["event_type"]
        if kind == "quality":
            assert event["kind"] == "in_sync" and key not in replicas, event  # once, as the snapshot lands
            continue
        if kind == "orderbook":
            assert event["is_valid"]
            replicas.setdefault(key, ReplicaBook()).load(event)
            update_id = event["last_update_id"]
        elif kind == "pure_delta":
            replicas[key].apply(event)
            update_id = event["update_id"]
        else:
            if kind == "ticker":
                tickers.append(event)
            continue
        replica = replicas[key]
        bid, ask = replica.best_bid(), replica.best_ask()
        assert bid is None or ask is None or bid < ask, f"{key} crossed at {update_id}"
        tops_at[(key, update_id)] = (bid, ask)

    compared = 0
    for ticker in tickers:
        key = f"{ticker['exchange_name']}:{ticker['symbol_name']}"
        top = tops_at.get((key, ticker["update_id"]))
        if top is None:
            continue
        assert top == (Decimal(ticker["best_bid_price"]), Decimal(ticker["best_ask_price"])), (key, ticker)
        compared += 1
    # The final book of the replica equals the report's.
    for key, replica in replicas.items():
        assert str(replica.best_bid()) == str(Decimal(books[key]["best_bid"]))
    return compared


def test_binance_capture_syncs_and_matches_book_ticker(real_recordings: dict[str, Path], tmp_path: Path) -> None:
    report, events = _replay(real_recordings["binance"], tmp_path)
    compared = _check_binance_capture(report, events, "binance", ["NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"])
    assert compared >= 10


def test_binance_us_capture_syncs_and_matches_book_ticker(real_recordings: dict[str, Path], tmp_path: Path) -> None:
    report, events = _replay(real_recordings["binance_us"], tmp_path)
    compared = _check_binance_capture(report, events, "binance_us", ["COMP-USDT", "OMG-BUSD", "CRV-USDT", "ZRX-USDT"])
    assert compared >= 10
