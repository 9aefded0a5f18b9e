"""No dark books: each way a book can fail to come back is recovered, and said on NATS.

One collector run against the simulator, with the watchdog at 3 s:
- binance:ETH-USDT loses a diff and its resync request is lost on the control bus: only
  the watchdog can bring it back;
- okx:BTC-USDT loses an update and its re-subscription is refused with an error reply;
- binance:BTC-USDT loses a diff and the snapshot it then asks for is a 200 that is not JSON;
- okx:ETH-USDT's socket goes silent for good (open, but nothing sent).
Each book must go `out_of_sync` and come back `in_sync` within the watchdog's time, as
read from `market.{exchange}.{symbol}.quality`, and never publish a book that is not the
truth.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from connectors.nats_server import EmbeddedNatsServer
from sim.live_faults import FaultSettings, ScheduledFault
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import collect_from, end_when, read_streams, subject_messages
from tests.source_support import LossyControlBus
from tests.truth_checks import check_binance_full

SECONDS = 40  # at most: the run ends once every book has come back from its trouble
WATCHDOG_S = 3.0
SCHEDULE = (
    ScheduledFault(4, "drop", "binance", "ETH-USDT"),  # the first resync request of the run: lost
    ScheduledFault(8, "subscribe_error", "okx", "BTC-USDT"),
    ScheduledFault(8, "drop", "okx", "BTC-USDT"),
    ScheduledFault(11, "silent_socket", "okx", "ETH-USDT"),
    ScheduledFault(14, "bad_snapshot_body", "binance", "BTC-USDT"),
    ScheduledFault(14, "drop", "binance", "BTC-USDT"),
)
# What each book must say of its trouble before it is back in sync.
TROUBLE = {
    "binance:eth-usdt": ["gap", "out_of_sync", "sync_timeout", "in_sync"],
    "okx:btc-usdt": ["gap", "out_of_sync", "sync_timeout", "in_sync"],
    "okx:eth-usdt": ["silent", "out_of_sync", "in_sync"],
    "binance:btc-usdt": ["gap", "out_of_sync", "in_sync"],
}


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _back_in_sync(url: str, book: str) -> bool:
    """`book` has said all of its trouble, and is back in sync (as the test reads it)."""
    venue, symbol = book.split(":")
    kinds = [event["kind"] for event in subject_messages(url, "MARKET_DATA", f"market.{venue}.{symbol}.quality")]
    return kinds[-1:] == ["in_sync"] and [kind for kind in kinds[1:] if kind in TROUBLE[book]] == TROUBLE[book]


@pytest.fixture(scope="module")
def recovered(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("recovery")
    bus = LossyControlBus(lose=1)
    settings = SimSettings(seed=11, faults=FaultSettings(schedule=SCHEDULE))
    with SimulatorThread(settings) as simulator, EmbeddedNatsServer(tmp / "nats") as server, \
            end_when(lambda: all(_back_in_sync(server.url, book) for book in TROUBLE)) as end:
        summary = collect_from(
            simulator, server.url, tmp, SECONDS, bus=bus, end=end, depth=1000, watchdog_s=WATCHDOG_S, silence_s=10.0
        )
        stored = read_streams(server.url, ("ORDERBOOK_FULL", "MARKET_DATA"))
        yield simulator, bus, summary, stored


def test_the_faults_took_effect(recovered) -> None:
    simulator, bus, _, _ = recovered
    injected = {(fault.venue, fault.symbol, fault.kind) for fault in simulator.faults}
    assert {(f.venue, f.symbol, f.kind) for f in SCHEDULE} <= injected
    assert [(request.venue, request.symbol) for request in bus.lost] == [("binance", "ETH-USDT")]


@pytest.mark.parametrize("book", sorted(TROUBLE))
def test_every_book_goes_out_of_sync_and_comes_back_within_the_watchdogs_time(recovered, book: str) -> None:
    _, _, summary, stored = recovered
    venue, symbol = book.split(":")
    said = [event for _, event, _ in stored[f"market.{venue}.{symbol}.quality"]]
    kinds = [event["kind"] for event in said]
    assert kinds[0] == "in_sync", kinds
    trouble = kinds[1:]
    assert [kind for kind in trouble if kind in TROUBLE[book]] == TROUBLE[book], said
    out_at = _seconds(next(e["collected_at"] for e in said if e["kind"] == "out_of_sync"))
    back_at = _seconds(said[len(said) - 1 - kinds[::-1].index("in_sync")]["collected_at"])
    # The watchdog looks once a second; then a snapshot or a new subscription takes a moment.
    assert 0 < back_at - out_at <= WATCHDOG_S + 4, (book, back_at - out_at)
    assert summary["books"][f"{venue}:{symbol.upper()}"]["best_bid"] is not None, "in sync at the end"


def test_nothing_untrue_was_published_meanwhile(recovered) -> None:
    simulator, _, _, stored = recovered
    for symbol in ("btc-usdt", "eth-usdt"):
        truth = simulator.truth("binance", symbol.upper())
        for _, full, _ in stored[f"orderbook.full.binance.{symbol}"]:
            check_binance_full(full, truth)
