"""Books past the snapshot's horizon, and audits, on generated recordings against the truth.

A trending market walks the price past the deepest level of the only snapshot: the book
must keep both sides, stay the truth over the window it calls exact, and agree with
every bookTicker at the same update id. A later snapshot while in sync is an audit: it
passes on a true book, and on a corrupted one it names the first differing level and
repairs the book without dropping it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson

from connectors.recording import merge_recordings
from flows.replay import run_replay
from operators.book_sync import BookSync
from operators.decode import decode
from operators.sync_base import SyncSettings
from operators.wire import Ignored
from schemas.encoding import encode_event
from schemas.events import BookDelta, BookFull, QualityEvent
from schemas.raw import RawEvent
from sim.faults import FaultPlan
from sim.recording import generate_recording
from tests.book_replica import ReplicaBook
from tests.truth_checks import check_binance_full

KEY = "binance:BTC-USDT"


def _events(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_trend_past_the_only_snapshot_never_empties_a_side(tmp_path: Path) -> None:
    recording = tmp_path / "trend.jsonl.zst"
    truths = generate_recording(
        recording, venues=("binance",), symbols=("BTC-USDT",), seconds=30, seed=3,
        binance_depth_limit=100, trend_levels_per_s=-40,
    )
    truth = truths[KEY].market
    out = tmp_path / "events.jsonl"
    report = run_replay([recording], out=out, depth=100)
    events = _events(out)
    fulls = [e for e in events if e["event_type"] == "orderbook"]
    first = fulls[0]
    assert first["update_type"] == "snapshot" and len(first["bids"]) == 100
    deepest_snapshot_bid = Decimal(first["bids"][-1]["price"])
    assert Decimal(fulls[-1]["bids"][0]["price"]) < deepest_snapshot_bid, "the price must walk past the snapshot"
    assert report["books"][KEY]["exact_bid_levels"] == 0, "nothing of the old snapshot is left on the bid side"
    for full in fulls:
        assert full["bids"] and full["asks"], f"an empty side at {full['last_update_id']}"
        check_binance_full(full, truth)

    # A consumer's book (the snapshot plus every delta) has the exchange's bookTicker on top
    # at every update id the two share while the ticker's level lies inside the snapshot's
    # horizon. Past it the book knows only levels some diff set: a resting level nobody
    # touched since before the snapshot is unknown (the book says so with an exact depth of
    # 0), so its best level may only be worse than the ticker's, never better (a phantom).
    replica, tops = ReplicaBook(), {}
    for event in events:
        if event["event_type"] == "orderbook":
            replica.load(event)
        elif event["event_type"] == "pure_delta":
            replica.apply(event)
            tops[event["update_id"]] = (replica.best_bid(), replica.best_ask())
    tickers = [e for e in events if e["event_type"] == "ticker" and e["update_id"] in tops]
    inside = past = 0
    for ticker in tickers:
        bid, ask = tops[ticker["update_id"]]
        true_bid, true_ask = Decimal(ticker["best_bid_price"]), Decimal(ticker["best_ask_price"])
        assert ask == true_ask, ticker  # asks follow the price down: always inside what diffs set
        if true_bid >= deepest_snapshot_bid:
            assert bid == true_bid, ticker
            inside += 1
        else:
            assert bid is not None and bid <= true_bid, ticker
            past += 1
    assert inside > 20 and past > 100, (inside, past)


def _sync_until(recording: Path, settings: SyncSettings, corrupt_before_snapshot: int | None) -> list[object]:
    """Feed the recording through one BookSync; just before the n-th REST snapshot, corrupt one bid."""
    book = BookSync(KEY, settings)
    events: list[object] = []
    snapshots = 0
    for raw in merge_recordings([recording]):
        assert isinstance(raw, RawEvent)
        if raw.kind == "rest":
            snapshots += 1
            if snapshots == corrupt_before_snapshot:
                price = book.machine.book.bids.wires[-4][0]  # the fourth best bid
                book.machine.book.bids.wires[-4] = [price, "123.45678000"]
        decoded = decode(raw)
        if not isinstance(decoded, Ignored):
            for key, msg in decoded:
                if key == KEY:
                    events.extend(book.handle(msg))
    return events


def _recording_with_a_second_snapshot(tmp_path: Path) -> tuple[Path, object]:
    recording = tmp_path / "audit.jsonl.zst"
    truths = generate_recording(
        recording, venues=("binance",), symbols=("BTC-USDT",), seconds=12, seed=4, binance_depth_limit=1000,
        faults=FaultPlan(seed=1, resnapshot=1),
    )
    return recording, truths[KEY]


def test_a_snapshot_while_in_sync_audits_the_book_and_passes(tmp_path: Path) -> None:
    recording, truth = _recording_with_a_second_snapshot(tmp_path)
    events = _sync_until(recording, SyncSettings(depth=1000), corrupt_before_snapshot=None)
    quality = [(e.kind, e.detail) for e in events if isinstance(e, QualityEvent)]
    assert [kind for kind, _ in quality] == ["in_sync"], quality
    fulls = [e for e in events if isinstance(e, BookFull)]
    audited = [f for f in fulls if f.update_type == "snapshot"][1:]
    assert len(audited) == 1, "the second snapshot brings one audited full book"
    assert (audited[0].exact_bid_levels, audited[0].exact_ask_levels) == (1000, 1000)
    for full in fulls:
        check_binance_full(orjson.loads(encode_event(full)), truth.market)


def test_an_audit_of_a_corrupted_book_names_the_level_and_repairs_it_without_a_gap(tmp_path: Path) -> None:
    recording, truth = _recording_with_a_second_snapshot(tmp_path)
    events = _sync_until(recording, SyncSettings(depth=1000), corrupt_before_snapshot=2)
    mismatches = [e for e in events if isinstance(e, QualityEvent) and e.kind == "audit_mismatch"]
    assert len(mismatches) == 1
    assert "bid level 4" in mismatches[0].detail and "123.45678000" in mismatches[0].detail
    assert not [e for e in events if isinstance(e, QualityEvent) and e.kind not in ("in_sync", "audit_mismatch")]
    at = events.index(mismatches[0])
    repaired = events[at + 1]
    assert isinstance(repaired, BookFull) and repaired.update_type == "snapshot"
    # Every full book from the repair on is the truth again; the deltas never stopped.
    for event in events[at + 1:]:
        if isinstance(event, BookFull):
            check_binance_full(orjson.loads(encode_event(event)), truth.market)
    delta_ids = [e.update_id for e in events if isinstance(e, BookDelta)]
    chained = [e for e in events if isinstance(e, BookDelta)]
    assert all(later.prev_update_id == earlier.update_id for earlier, later in zip(chained, chained[1:]))
    assert delta_ids[-1] == truth.market.update_id, "deltas published to the end of the recording"
