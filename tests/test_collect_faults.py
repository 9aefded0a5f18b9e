"""The live fault matrix: every fault the simulator can inject, during one collector run.

Each fault must be detected where it is detectable (a gap, a checksum failure, a rejected
message), the book must resync and come back, nothing invalid may be published, and the
snapshots plus deltas stored in NATS must rebuild the true book at every update id.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.nats_server import EmbeddedNatsServer
from sim.live_faults import FaultSettings, ScheduledFault
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.book_replica import ReplicaBook
from tests.live_support import collect_from, end_when, last_message, read_streams, subject_messages
from tests.truth_checks import check_binance_full

SECONDS = 34  # at most: the run ends once every book flows again after its last fault
STALL_S, SLOW_SNAPSHOT_S = 2.0, 1.5
SCHEDULE = {
    ("binance", "BTC-USDT"): [(5, "fail_snapshot"), (5, "drop"), (12, "duplicate"), (17, "not_json"), (22, "disconnect")],
    ("binance", "ETH-USDT"): [(6, "limit_snapshot"), (6, "reorder"), (13, "bad_price"), (18, "stall"),
                              (24, "slow_snapshot"), (24, "cut_frame")],
    ("okx", "BTC-USDT"): [(5, "drop"), (11, "bad_checksum"), (16, "seq_reset"), (21, "duplicate"), (26, "negative_qty")],
    ("okx", "ETH-USDT"): [(7, "reorder"), (9, "fail_snapshot"), (12, "not_json"), (17, "disconnect"), (22, "cut_frame"),
                          (25, "stall")],
}
# Faults after which the book must have been dropped and resynced. A lost Binance
# connection shows as a gap once the diffs resume; a new OKX connection starts with a
# fresh snapshot instead, so it needs no resync but does start a new chain.
BREAKS_THE_CHAIN = {"binance": {"drop", "reorder", "disconnect", "cut_frame"}, "okx": {"drop", "reorder", "bad_checksum"}}
NEW_CHAIN = {"binance": BREAKS_THE_CHAIN["binance"], "okx": BREAKS_THE_CHAIN["okx"] | {"disconnect", "cut_frame"}}


def _truth_id(simulator: SimulatorThread, venue: str, symbol: str, wire_id: int) -> int:
    """The market's update id for a wire id: an OKX `seq_reset` shifts seqIds below the old range."""
    if wire_id >= simulator.truth(venue, symbol).spec.first_update_id:
        return wire_id
    reset = next(f for f in simulator.faults if (f.venue, f.symbol, f.kind) == (venue, symbol, "seq_reset"))
    return wire_id + int(re.search(r"update id - (\d+)", reset.detail).group(1))


def _count(venue: str, symbol: str, kinds: set[str]) -> int:
    return sum(kind in kinds for _, kind in SCHEDULE[(venue, symbol)])


def _ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1e9)


def _flowing_after_every_fault(simulator: SimulatorThread, url: str) -> bool:
    """Every scheduled fault took effect, and every book is in sync and publishing deltas
    received a second after its last fault was over (a stall, a slow snapshot: their time)."""
    faults = list(simulator.faults)
    injected = {(f.venue, f.symbol, f.kind) for f in faults}
    if not all((venue, symbol, kind) in injected for (venue, symbol), kinds in SCHEDULE.items() for _, kind in kinds):
        return False
    lasting = {"stall": STALL_S, "slow_snapshot": SLOW_SNAPSHOT_S}
    for venue, symbol in SCHEDULE:
        over_ns = max(f.at_ns + int(lasting.get(f.kind, 0.0) * 1e9) for f in faults if (f.venue, f.symbol) == (venue, symbol))
        book = f"{venue}.{symbol.lower()}"
        said = [event["kind"] for event in subject_messages(url, "MARKET_DATA", f"market.{book}.quality")]
        if [kind for kind in said if kind in ("in_sync", "out_of_sync")][-1] != "in_sync":
            return False
        last = last_message(url, "ORDERBOOK_DELTA", f"orderbook.pure_delta.{book}")
        if _ns(last["collected_at"]) < over_ns + 1_000_000_000:
            return False
    return True


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("faults")
    schedule = tuple(
        ScheduledFault(at, kind, venue, symbol) for (venue, symbol), faults in SCHEDULE.items() for at, kind in faults
    )
    settings = SimSettings(seed=33, faults=FaultSettings(schedule=schedule, stall_s=STALL_S, slow_snapshot_s=SLOW_SNAPSHOT_S))
    with SimulatorThread(settings) as simulator, EmbeddedNatsServer(tmp / "nats") as server, \
            end_when(lambda: _flowing_after_every_fault(simulator, server.url)) as end:
        summary = collect_from(simulator, server.url, tmp, SECONDS, end=end)
        stored = read_streams(server.url)
        yield simulator, summary, stored


def test_every_fault_took_effect_and_was_detected(run) -> None:
    simulator, summary, _ = run
    injected = Counter((f.venue, f.symbol, f.kind) for f in simulator.faults)
    for (venue, symbol), faults in SCHEDULE.items():
        for _, kind in faults:
            assert injected[(venue, symbol, kind)] >= 1, (venue, symbol, kind)
        book = summary["books"][f"{venue}:{symbol}"]
        must_break = _count(venue, symbol, BREAKS_THE_CHAIN[venue])
        assert book["resyncs"] >= must_break, (venue, symbol, book)
        assert book["gaps"] + book["checksum_failures"] >= must_break, (venue, symbol, book)
        assert book["rejected"] == sum(kind in ("bad_price", "negative_qty") for _, kind in faults), (venue, symbol)
        assert book["best_bid"] is not None and book["bid_levels"] >= 400, "the book came back"
    assert summary["books"]["okx:BTC-USDT"]["checksum_failures"] >= 1
    assert sum("malformed JSON" in error for error in summary["errors"]) >= 2  # the cut and the half frames


def test_nothing_invalid_was_published(run) -> None:
    simulator, _, stored = run
    for (venue, symbol) in SCHEDULE:
        truth = simulator.truth(venue, symbol)
        fulls = stored[f"orderbook.full.{venue}.{symbol.lower()}"]
        snapshots = [full for _, full, _ in fulls if full["update_type"] == "snapshot"]
        assert len(snapshots) >= 1 + _count(venue, symbol, NEW_CHAIN[venue])
        for _, full, _ in fulls:
            assert full["is_valid"]
            if venue == "binance":
                check_binance_full(full, truth)
                continue
            live = [(l["price"], l["quantity"]) for l in full["bids"] if "age_ms" not in l]
            true_bids, _ = truth.book_at(_truth_id(simulator, venue, symbol, full["last_update_id"]), depth=len(live))
            assert live == list(true_bids)[: len(live)], (venue, symbol, full["last_update_id"])


def test_snapshots_and_deltas_rebuild_the_truth(run) -> None:
    simulator, _, stored = run
    for (venue, symbol) in SCHEDULE:
        truth = simulator.truth(venue, symbol)
        snapshots = {
            full["last_update_id"]: full
            for _, full, _ in stored[f"orderbook.full.{venue}.{symbol.lower()}"]
            if full["update_type"] == "snapshot"
        }
        replica, last_id, reloads, checked = ReplicaBook(), None, 0, 0
        for _, delta, _ in stored[f"orderbook.pure_delta.{venue}.{symbol.lower()}"]:
            if last_id is None or delta["prev_update_id"] != last_id:
                # A new chain may only start from a published snapshot.
                assert delta["prev_update_id"] in snapshots, (venue, symbol, delta["update_id"])
                replica.load(snapshots[delta["prev_update_id"]])
                reloads += 1
            replica.apply(delta)
            last_id = delta["update_id"]
            true_bids, true_asks = truth.book_at(_truth_id(simulator, venue, symbol, last_id), depth=25)
            bids, asks = replica.top(25)
            assert [(Decimal(p), q) for p, q in bids] == [(Decimal(p), q) for p, q in true_bids], (venue, symbol, last_id)
            assert [(Decimal(p), q) for p, q in asks] == [(Decimal(p), q) for p, q in true_asks], (venue, symbol, last_id)
            checked += 1
        assert reloads >= 1 + _count(venue, symbol, NEW_CHAIN[venue])
        assert checked >= 8 * (SECONDS - 10)


def test_source_failures_are_counted_per_book(run) -> None:
    """Refused snapshots and dropped connections are counted (Prometheus), book by book."""
    from prometheus_client import REGISTRY

    def counted(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(f"marketprism_{name}_total", labels) or 0.0

    assert counted("rest_failures", book="binance:BTC-USDT", outcome="500") >= 1  # fail_snapshot
    assert counted("rest_failures", book="binance:ETH-USDT", outcome="429") >= 1  # limit_snapshot
    assert counted("rest_failures", book="okx:ETH-USDT", outcome="500") >= 1  # books-full failed
    for book in ("binance:BTC-USDT", "binance:ETH-USDT", "okx:ETH-USDT"):  # disconnect / cut_frame
        assert counted("connection_failures", book=book, endpoint="public") >= 1, book
        assert counted("connections", book=book, endpoint="public") >= 2, book
    assert counted("resync_requests_received", book="okx:BTC-USDT") >= 2  # drop, bad_checksum
