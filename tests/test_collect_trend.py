"""A trending market, live: the price walks well past the first snapshot's deepest bid.

The collector must keep every Binance book at the configured depth (5000 per side) for
the whole run, every full book must be the truth over the window it calls exact (and
real past it), and the audits against fresh snapshots must pass and widen the exact
window back to the whole depth. Between two audits a side may be a few levels short:
a level cancelled inside the window takes one away, and the exchange's next level below
the snapshot is known only once a diff touches it; each audit makes it whole again.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connectors.nats_server import EmbeddedNatsServer
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import collect_from, read_streams
from tests.truth_checks import check_binance_full

SECONDS = 16
TREND = -400  # levels a second: 6400 in the run, past a 5000-level snapshot
DEPTH = 5000
AUDIT_S = 3.0  # the window shrinks by TREND * AUDIT_S = 1200 levels between two audits at most


@pytest.fixture(scope="module")
def trended(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("trend")
    settings = SimSettings(seed=5, symbols=("BTC-USDT",), trend_levels_per_s=TREND)
    with SimulatorThread(settings) as simulator, EmbeddedNatsServer(tmp / "nats") as server:
        summary = collect_from(
            simulator, server.url, tmp, SECONDS, venues=["binance"], symbols=["BTC-USDT"], audit_interval_s=AUDIT_S
        )
        fulls = [full for _, full, _ in read_streams(server.url, ("ORDERBOOK_FULL",))["orderbook.full.binance.btc-usdt"]]
        yield simulator, summary, fulls


def test_the_price_walks_past_the_first_snapshot(trended) -> None:
    _, _, fulls = trended
    first = fulls[0]
    assert first["update_type"] == "snapshot" and len(first["bids"]) == DEPTH
    assert Decimal(fulls[-1]["bids"][0]["price"]) < Decimal(first["bids"][-1]["price"])


def test_every_full_book_is_whole_and_true_over_its_exact_window(trended) -> None:
    simulator, _, fulls = trended
    truth = simulator.truth("binance", "BTC-USDT")
    assert len(fulls) >= SECONDS - 5
    for full in fulls:
        assert min(len(full["bids"]), len(full["asks"])) >= 0.99 * DEPTH, full["last_update_id"]
        check_binance_full(full, truth)
    # Without audits the exact bid window would have shrunk to nothing; each audit widens it again.
    audited = [full for full in fulls[1:] if full["update_type"] == "snapshot"]
    assert len(audited) >= 3
    for full in audited:
        # The snapshot is brought up to the book's id with the diffs since: those move the window a little.
        assert min(full["exact_bid_levels"], full["exact_ask_levels"]) >= 0.99 * DEPTH
    assert min(full["exact_bid_levels"] for full in fulls) >= DEPTH // 2


def test_audits_pass_and_the_book_never_leaves_sync(trended) -> None:
    _, summary, _ = trended
    book = summary["books"]["binance:BTC-USDT"]
    assert book["audits_passed"] >= 3 and book["audit_failures"] == 0
    assert (book["gaps"], book["resyncs"], book["rejected"]) == (0, 0, 0)
