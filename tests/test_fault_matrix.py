"""Every injected fault is detected, nothing invalid is published, and books recover.

The simulator damages a recording (dropped, duplicated, swapped increments, corrupted OKX
checksums, malformed frames) and says where. The replay must flag exactly those, never
publish a book or delta that differs from the truth, and after a later snapshot publish
the true book again.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from flows.replay import run_replay
from sim.faults import FaultPlan
from sim.recording import EPOCH_NS, generate_recording
from tests.book_replica import ReplicaBook

SECONDS = 12
DETECTED_AS = {"drop": "gap", "swap": "gap", "bad_checksum": "checksum_failure"}
REJECTED = {"not_json", "bad_price", "negative_qty"}


def _seed_with_recovery(venue: str, kind: str) -> int:
    """A fault seed whose Binance re-snapshot comes after the fault, so recovery is seen."""
    for seed in range(100):
        plan = FaultPlan(seed=seed, **{kind: 1}, resnapshot=1 if venue == "binance" else 0)
        schedule = plan.schedule([(venue, "BTC-USDT")], EPOCH_NS, SECONDS)[(venue, "BTC-USDT")]
        times = {k: at for at, k in schedule}
        if venue == "okx" or times["resnapshot"] > times[kind] + 500_000_000:
            return seed
    raise AssertionError("no seed puts the re-snapshot after the fault")


def _run(tmp_path: Path, venue: str, kind: str) -> tuple[dict, dict, list[dict]]:
    plan = FaultPlan(seed=_seed_with_recovery(venue, kind), **{kind: 1}, resnapshot=1 if venue == "binance" else 0)
    recording = tmp_path / "faulty.jsonl.zst"
    truths = generate_recording(recording, venues=(venue,), symbols=("BTC-USDT",), seconds=SECONDS, seed=5, faults=plan)
    out = tmp_path / "events.jsonl"
    report = run_replay([recording], out=out, full_interval_ms=1000)
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    return truths, report, events


CASES = [
    ("binance", "drop"), ("binance", "duplicate"), ("binance", "swap"), ("binance", "not_json"),
    ("binance", "bad_price"), ("binance", "negative_qty"),
    ("okx", "drop"), ("okx", "duplicate"), ("okx", "swap"), ("okx", "bad_checksum"), ("okx", "not_json"),
    ("okx", "bad_price"), ("okx", "negative_qty"),
]


@pytest.mark.parametrize(("venue", "kind"), CASES)
def test_fault_is_detected_and_nothing_invalid_is_published(tmp_path: Path, venue: str, kind: str) -> None:
    truths, report, events = _run(tmp_path, venue, kind)
    key = f"{venue}:BTC-USDT"
    truth = truths[key]
    assert [f.kind for f in truth.faults if f.kind != "resnapshot"] == [kind]
    fault_ns = next(f.recv_ns for f in truth.faults if f.kind == kind)
    book = report["books"][key]
    quality = [e for e in events if e["event_type"] == "quality" and e["kind"] not in ("in_sync", "out_of_sync")]
    states = [e["kind"] for e in events if e["event_type"] == "quality" and e["kind"] in ("in_sync", "out_of_sync")]
    # Only the Binance recordings carry a later snapshot to come back in sync with.
    expected_states = ["in_sync", "out_of_sync", "in_sync"] if venue == "binance" else ["in_sync", "out_of_sync"]
    assert states == (expected_states if kind in DETECTED_AS else ["in_sync"]), states

    if kind in DETECTED_AS:
        detected = [e for e in quality if e["kind"] == DETECTED_AS[kind]]
        assert len(detected) == 1, quality
        assert book["resyncs"] == 1
        assert book["gaps" if DETECTED_AS[kind] == "gap" else "checksum_failures"] == 1
    elif kind in REJECTED:
        assert [e["kind"] for e in quality] == ["rejected"]
        # Half a frame names no book: it is reported, but counted against no book.
        assert book["rejected"] == (0 if kind == "not_json" else 1)
        assert quality[0]["symbol_name"] == (None if kind == "not_json" else "BTC-USDT")
        assert len(report["errors"]) == 1
        assert book["resyncs"] == 0 and book["gaps"] == 0
    else:  # duplicate: dropped silently as already applied, never applied twice
        assert quality == [] and book["resyncs"] == 0

    # Every published book and delta is the truth at its id; after a fault, the next
    # thing published for the book is a fresh snapshot.
    replica, awaiting_snapshot, published_after_fault = ReplicaBook(), False, 0
    for event in events:
        if event["event_type"] == "quality" and event["kind"] not in ("rejected", "in_sync"):
            awaiting_snapshot = True
            continue
        if event["event_type"] == "orderbook":
            assert not awaiting_snapshot or event["update_type"] == "snapshot"
            awaiting_snapshot = False
            replica.load(event)
            update_id = event["last_update_id"]
        elif event["event_type"] == "pure_delta":
            assert not awaiting_snapshot, "a delta was published for a book awaiting resync"
            replica.apply(event)
            update_id = event["update_id"]
        else:
            continue
        if _collected_ns(event) > fault_ns:
            published_after_fault += 1
        true_bids, true_asks = truth.market.book_at(update_id, depth=50)
        bids, asks = replica.top(50)
        assert [(float(p), q) for p, q in bids] == [(float(p), q) for p, q in true_bids]
        assert [(float(p), q) for p, q in asks] == [(float(p), q) for p, q in true_asks]

    recovers = venue == "binance" or kind not in DETECTED_AS
    assert (book["best_bid"] is not None) == recovers
    if recovers:
        assert published_after_fault > 10  # the book went on (or came back) after the fault


def _collected_ns(event: dict) -> int:
    from datetime import datetime

    moment = datetime.fromisoformat(event["collected_at"])
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def test_replay_of_a_damaged_recording_is_byte_identical(tmp_path: Path) -> None:
    plan = FaultPlan(seed=3, drop=1, duplicate=1, swap=1, bad_checksum=1, not_json=2, bad_price=1, negative_qty=1,
                     resnapshot=1)
    recording = tmp_path / "damaged.jsonl.gz"
    truths = generate_recording(recording, seconds=SECONDS, seed=9, faults=plan)
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / f"{run}.jsonl"
        report = run_replay([recording], out=out, report=tmp_path / f"{run}.json")
        outputs.append((out.read_bytes(), (tmp_path / f"{run}.json").read_bytes()))
    assert outputs[0] == outputs[1]
    injected = [f.kind for truth in truths.values() for f in truth.faults if f.kind != "resnapshot"]
    assert sorted(injected) == sorted(["drop", "duplicate", "swap", "bad_checksum", "not_json", "not_json",
                                       "bad_price", "negative_qty"])
    rejected_in_books = sum(book["rejected"] for book in report["books"].values())
    assert rejected_in_books == 2  # bad price, negative size; the half frames name no book
    assert sum("malformed JSON" in error for error in report["errors"]) == 2
