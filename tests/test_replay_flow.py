"""The replay dataflow as users run it: determinism, the report's shape, the CLI, bytewax.run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import orjson

from flows.cli import main
from flows.replay import run_replay
from operators.report import REPORT_BOOK_FIELDS
from schemas.models import json_schemas
from tests.conftest import REAL_DATA

REPO = Path(__file__).resolve().parents[1]


def _comp_usdt_diff_ids() -> list[int]:
    """The `u` of every COMPUSDT diff in the raw capture, read independently of our code."""
    ids = []
    for line in (REAL_DATA / "BINANCE_US.ws.1.0").read_text().splitlines():
        if '"compusdt@depth@100ms"' in line:
            ids.append(orjson.loads(line[line.index("{"):])["data"]["u"])
    return ids


def test_two_replays_are_byte_identical(real_recordings: dict[str, Path], tmp_path: Path) -> None:
    inputs = [real_recordings["okx"], real_recordings["binance"]]
    run_replay(inputs, out=tmp_path / "a.jsonl", report=tmp_path / "a.json")
    run_replay(inputs, out=tmp_path / "b.jsonl", report=tmp_path / "b.json")
    first = (tmp_path / "a.jsonl").read_bytes()
    assert len(first.splitlines()) > 500
    assert first == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_report_has_exactly_the_documented_keys(real_recordings: dict[str, Path], tmp_path: Path) -> None:
    report = run_replay([real_recordings["okx"], real_recordings["binance_us"]], report=tmp_path / "r.json")
    assert orjson.loads((tmp_path / "r.json").read_bytes()) == report
    assert list(report) == ["books", "trades", "errors"]
    assert len(report["books"]) == 7
    for book in report["books"].values():
        assert tuple(book) == REPORT_BOOK_FIELDS
        for name in ("best_bid", "best_ask"):
            assert isinstance(book[name], str)
        for name in REPORT_BOOK_FIELDS:
            if name not in ("best_bid", "best_ask", "last_update_id"):
                assert isinstance(book[name], int) and not isinstance(book[name], bool)
    last_diff = max(line for line in _comp_usdt_diff_ids())
    assert report["books"]["binance_us:COMP-USDT"]["last_update_id"] == last_diff
    assert report["books"]["okx:BTC-USDT"]["last_update_id"] is None  # 2022 OKX: no seqId on the wire
    assert all(isinstance(v, int) for v in report["trades"].values())


def test_every_published_event_matches_its_json_schema(real_recordings: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    run_replay(list(real_recordings.values()), out=out, full_interval_ms=1000)
    validators = {name: jsonschema.Draft202012Validator(schema) for name, schema in json_schemas().items()}
    seen: dict[str, int] = {}
    for line in out.read_bytes().splitlines():
        event = orjson.loads(line)
        validators[event["event_type"]].validate(event)
        seen[event["event_type"]] = seen.get(event["event_type"], 0) + 1
        if event["event_type"] == "orderbook":
            assert event["timestamp"].endswith("Z") and event["collected_at"].endswith("Z")
            assert event["depth_levels"] == len(event["bids"]) + len(event["asks"])
            prices = [float(level["price"]) for level in event["bids"]]
            assert prices == sorted(prices, reverse=True)
    assert set(seen) == {"orderbook", "pure_delta", "trade", "ticker", "kline", "quality"}  # quality: books going in sync
    assert seen["kline"] == 7, "the @kline_1m messages of the captures: 2 Binance, 5 Binance.US"
    assert seen["orderbook"] > 11  # one per (re)sync per book, plus periodic refreshes


def test_full_books_follow_the_interval_in_recording_time(real_recordings: dict[str, Path], tmp_path: Path) -> None:
    counts = {}
    for interval in (100_000, 500):
        out = tmp_path / f"{interval}.jsonl"
        # Snapshot slots (every 10 s of exchange time) bring full books too: keep them out of the count.
        run_replay([real_recordings["binance_us"]], out=out, full_interval_ms=interval, snapshot_interval_ms=10**9)
        events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        fulls = [e for e in events if e["event_type"] == "orderbook"]
        counts[interval] = len(fulls)
        first_per_book = {}
        for event in fulls:
            first_per_book.setdefault(event["symbol_name"], event["update_type"])
        assert first_per_book == dict.fromkeys(["COMP-USDT", "OMG-BUSD", "CRV-USDT", "ZRX-USDT"], "snapshot")
    assert counts[100_000] == 4
    assert counts[500] > 20


def test_cli_replay_writes_report_and_events(real_recordings: dict[str, Path], tmp_path: Path, capsys) -> None:
    code = main(["replay", str(real_recordings["okx"]), "--out", str(tmp_path / "o.jsonl"),
                 "--report", str(tmp_path / "r.json"), "--full-interval-ms", "250"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "okx:BTC-USDT" in printed and "errors: 0" in printed
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    assert report["books"]["okx:BTC-USDT"]["checksums_verified"] == 98


def test_bytewax_run_reads_settings_from_the_environment(real_recordings: dict[str, Path], tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        MARKETPRISM_REPLAY_INPUTS=str(real_recordings["binance"]),
        MARKETPRISM_REPLAY_OUT=str(tmp_path / "events.jsonl"),
        MARKETPRISM_REPLAY_REPORT=str(tmp_path / "report.json"),
        MARKETPRISM_REPLAY_FULL_INTERVAL_MS="300",
    )
    subprocess.run([sys.executable, "-m", "bytewax.run", "flows.replay"], cwd=REPO, env=env, check=True, timeout=120)
    report = orjson.loads((tmp_path / "report.json").read_bytes())
    assert report["books"]["binance:NKN-USDT"]["updates_applied"] == 149
    in_process = run_replay([real_recordings["binance"]], out=tmp_path / "again.jsonl", full_interval_ms=300)
    assert in_process == report
    assert (tmp_path / "events.jsonl").read_bytes() == (tmp_path / "again.jsonl").read_bytes()
