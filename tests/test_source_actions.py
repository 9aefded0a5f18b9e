"""The exchange feeds against the simulator: each action of a resync request does what it says,
silent sockets are replaced, refused or broken answers are retried, and bans hold every book.

Each test runs the collector's own feeds (from `flows.collect.feed_factory`) on loopback and
judges what they emitted against the simulator: its true books, its record of faults, and
the connection ids on the wire. The end-to-end recovery tests (book_sync's watchdog
escalating the actions) build on the same `FeedRun` and `LossyControlBus`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import orjson
import pytest

from connectors.control import InProcessControlBus
from schemas.raw import RawEvent
from sim.live_faults import FaultSettings, InjectedFault
from sim.server import SimulatorThread
from sim.settings import OkxSettings, SimSettings
from tests.sim_server_support import wait_for
from tests.source_support import FeedRun, LossyControlBus, counted, payload, request, rest, sim_feeds, ws_on

SILENCE_S = 1.5
BAN_S = 3
DEPTH = 100


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    settings = SimSettings(seed=41, okx=OkxSettings(connects_per_s=1000), faults=FaultSettings(ban_snapshot_s=BAN_S))
    with SimulatorThread(settings) as thread:
        yield thread


def feed_run(sim: SimulatorThread, key: str, bus: InProcessControlBus | None = None, **overrides: object) -> FeedRun:
    settings = {"depth": DEPTH, "silence_s": SILENCE_S, "okx_deep_interval_s": 0, **overrides}
    return FeedRun(sim_feeds(sim, bus or InProcessControlBus(), **settings)(key))


def injected(sim: SimulatorThread, kind: str, venue: str, symbol: str) -> InjectedFault:
    count = len(sim.faults)
    sim.inject(kind, venue, symbol)
    return wait_for(
        lambda: next((f for f in sim.faults[count:] if (f.kind, f.venue, f.symbol) == (kind, venue, symbol)), None),
        5, f"{kind} on {venue}:{symbol}",
    )  # fmt: skip


def assert_true_binance_snapshot(sim: SimulatorThread, symbol: str, text: str) -> None:
    snapshot = orjson.loads(text)
    true_bids, true_asks = sim.truth("binance", symbol).book_at(snapshot["lastUpdateId"], depth=DEPTH)
    assert [tuple(level) for level in snapshot["bids"]] == list(true_bids)
    assert [tuple(level) for level in snapshot["asks"]] == list(true_asks)


def assert_true_okx_snapshot(sim: SimulatorThread, symbol: str, message: dict) -> None:
    assert message["action"] == "snapshot"
    entry = message["data"][0]
    true_bids, true_asks = sim.truth("okx", symbol).book_at(entry["seqId"], depth=25)
    assert [(price, size) for price, size, *_ in entry["bids"][:25]] == list(true_bids)
    assert [(price, size) for price, size, *_ in entry["asks"][:25]] == list(true_asks)


def is_okx_snapshot(event: RawEvent) -> bool:
    return event.kind == "ws" and '"action":"snapshot"' in event.data


# ----- Binance -----


def test_binance_snapshot_action_fetches_a_true_snapshot(sim: SimulatorThread) -> None:
    bus = InProcessControlBus()
    with feed_run(sim, "binance:BTC-USDT", bus) as run:
        first = run.wait(rest, "the snapshot at start")
        run.wait(ws_on("binance:BTC-USDT#1"), "the diff stream")
        asked = time.time_ns()
        bus.send(request("binance:BTC-USDT", "snapshot", "audit"))
        fetched = run.wait(rest, "the requested snapshot", after_ns=asked)
    for snapshot in (first, fetched):
        assert_true_binance_snapshot(sim, "BTC-USDT", snapshot.data)
    assert payload(fetched)["lastUpdateId"] >= payload(first)["lastUpdateId"]  # a quiet market keeps the id


def test_binance_resubscribe_action_resubscribes_every_stream_then_fetches(
    sim: SimulatorThread, caplog: pytest.LogCaptureFixture
) -> None:
    bus = InProcessControlBus()
    conn = "binance:ETH-USDT#1"
    with caplog.at_level(logging.INFO, logger="connectors"), feed_run(sim, "binance:ETH-USDT", bus) as run:
        run.wait(ws_on(conn), "the diff stream")
        asked = time.time_ns()
        bus.send(request("binance:ETH-USDT", "resubscribe", "out of sync for 30 s"))
        replies = [
            run.wait(lambda e, n=n: ws_on(conn)(e) and f'"id":{n}' in e.data, f"reply {n}", asked) for n in (1, 2)
        ]
        fetched = run.wait(rest, "the snapshot after re-subscribing", after_ns=asked)
        diff = run.wait(lambda e: ws_on(conn)(e) and "depthUpdate" in e.data, "diffs again", replies[1].recv_ns)
    # The simulator answers only streams it serves, and refuses any other with an error: every
    # stream of the book, its 1 m klines included, was taken back.
    assert [payload(reply) for reply in replies] == [{"result": None, "id": 1}, {"result": None, "id": 2}]
    assert "ethusdt@kline_1m" in run.feed.streams  # type: ignore[attr-defined]
    assert payload(diff)["data"]["s"] == "ETHUSDT"
    assert_true_binance_snapshot(sim, "ETH-USDT", fetched.data)
    assert "binance:ETH-USDT: resubscribe requested: out of sync for 30 s" in caplog.text


def test_binance_reconnect_action_opens_a_new_connection_then_fetches(sim: SimulatorThread) -> None:
    bus = InProcessControlBus()
    opened = counted("connections", book="binance:BTC-USDT", endpoint="public")
    with feed_run(sim, "binance:BTC-USDT", bus) as run:
        run.wait(rest, "the snapshot at start")
        run.wait(ws_on("binance:BTC-USDT#1"), "the first connection")
        asked = time.time_ns()
        bus.send(request("binance:BTC-USDT", "reconnect", "still out of sync"))
        new = run.wait(ws_on("binance:BTC-USDT#2"), "the new connection", after_ns=asked)
        fetched = run.wait(rest, "the snapshot on the new connection", after_ns=asked)
        time_after = run.wait(ws_on("binance:BTC-USDT#2"), "more on the new connection", after_ns=fetched.recv_ns)
    assert run.since(new.recv_ns, ws_on("binance:BTC-USDT#1")) == [], "the old connection was closed"
    assert counted("connections", book="binance:BTC-USDT", endpoint="public") == opened + 2
    assert time_after.recv_ns > fetched.recv_ns
    assert_true_binance_snapshot(sim, "BTC-USDT", fetched.data)


def test_binance_silent_socket_is_replaced(sim: SimulatorThread) -> None:
    silent = counted("silent_sockets", book="binance:ETH-USDT", endpoint="public")
    with feed_run(sim, "binance:ETH-USDT") as run:
        run.wait(ws_on("binance:ETH-USDT#1"), "the first connection")
        fault = injected(sim, "silent_socket", "binance", "ETH-USDT")
        new = run.wait(ws_on("binance:ETH-USDT#2"), "a new connection", after_ns=fault.at_ns, timeout=SILENCE_S + 8)
    last_old = max(e.recv_ns for e in run.events if e.conn == "binance:ETH-USDT#1")
    assert (new.recv_ns - last_old) / 1e9 >= SILENCE_S * 0.9, "replaced for its silence, not before"
    assert counted("silent_sockets", book="binance:ETH-USDT", endpoint="public") == silent + 1


def test_a_snapshot_body_that_is_not_json_is_retried_never_emitted(sim: SimulatorThread) -> None:
    bad = counted("rest_failures", book="binance:BTC-USDT", outcome="bad_body")
    sim.inject("bad_snapshot_body", "binance", "BTC-USDT")
    with feed_run(sim, "binance:BTC-USDT") as run:
        snapshot = run.wait(rest, "a snapshot after the broken one")
    (fault,) = [f for f in sim.faults if f.kind == "bad_snapshot_body" and f.venue == "binance"]
    assert fault.at_ns < snapshot.recv_ns
    assert [e for e in run.events if e.kind == "rest"] == [snapshot]
    assert counted("rest_failures", book="binance:BTC-USDT", outcome="bad_body") == bad + 1
    assert_true_binance_snapshot(sim, "BTC-USDT", snapshot.data)


def test_a_lost_resync_request_changes_nothing_and_the_next_is_answered(sim: SimulatorThread) -> None:
    bus = LossyControlBus(lose=1)
    with feed_run(sim, "binance:ETH-USDT", bus) as run:
        run.wait(rest, "the snapshot at start")
        lost = request("binance:ETH-USDT", "snapshot", "gap")
        bus.send(lost)
        resent = request("binance:ETH-USDT", "snapshot", "gap, asked again")
        bus.send(resent)
        fetched = run.wait(rest, "the snapshot the second request asked for", after_ns=resent.recv_ns)
    assert bus.lost == [lost]
    assert_true_binance_snapshot(sim, "ETH-USDT", fetched.data)


# ----- OKX -----


def first_snapshot(run: FeedRun) -> RawEvent:
    """The first books snapshot: its connection is the book's public socket (its number depends on
    which of the book's two sockets got through the connection budget first)."""
    return run.wait(is_okx_snapshot, f"the first snapshot of {run.feed.key}")


@pytest.mark.parametrize("action", ["snapshot", "resubscribe"])
def test_okx_snapshot_and_resubscribe_actions_bring_a_new_books_snapshot(sim: SimulatorThread, action: str) -> None:
    bus = InProcessControlBus()
    with feed_run(sim, "okx:BTC-USDT", bus) as run:
        first = first_snapshot(run)
        on_it = ws_on(first.conn)
        asked = time.time_ns()
        bus.send(request("okx:BTC-USDT", action, "checksum failure"))  # type: ignore[arg-type]
        gone = run.wait(lambda e: on_it(e) and '"event":"unsubscribe"' in e.data, "unsubscribed", asked)
        again = run.wait(lambda e: on_it(e) and '"event":"subscribe"' in e.data, "subscribed", gone.recv_ns)
        fresh = run.wait(lambda e: on_it(e) and is_okx_snapshot(e), "the new snapshot", again.recv_ns)
    assert payload(gone)["arg"] == payload(again)["arg"] == {"channel": "books", "instId": "BTC-USDT"}
    assert_true_okx_snapshot(sim, "BTC-USDT", payload(first))
    assert_true_okx_snapshot(sim, "BTC-USDT", payload(fresh))
    assert payload(fresh)["data"][0]["seqId"] >= payload(first)["data"][0]["seqId"]  # a quiet tick keeps the id


def test_okx_reconnect_action_replaces_the_public_socket_only(sim: SimulatorThread) -> None:
    bus = InProcessControlBus()
    with feed_run(sim, "okx:ETH-USDT", bus) as run:
        first = first_snapshot(run)
        business = run.wait(lambda e: "#b" in e.conn, "the business socket")
        asked = time.time_ns()
        bus.send(request("okx:ETH-USDT", "reconnect", "out of sync for 60 s"))
        fresh = run.wait(lambda e: is_okx_snapshot(e) and e.conn not in (first.conn, business.conn),
                         "a snapshot on a new socket", after_ns=asked)
    assert fresh.url == sim.okx_ws_url
    assert run.since(fresh.recv_ns, ws_on(first.conn)) == [], "the old socket was closed"
    assert {e.conn for e in run.events if "#b" in e.conn} == {business.conn}, "candles stay on their socket"
    assert_true_okx_snapshot(sim, "ETH-USDT", payload(fresh))


def test_okx_subscribes_candles_on_the_business_endpoint(sim: SimulatorThread) -> None:
    with feed_run(sim, "okx:BTC-USDT") as run:
        ack = run.wait(lambda e: "#b" in e.conn and '"event":"subscribe"' in e.data, "the candle1m ack")
        first = first_snapshot(run)
    assert ack.url == sim.okx_business_ws_url and first.url == sim.okx_ws_url
    assert payload(ack)["arg"] == {"channel": "candle1m", "instId": "BTC-USDT"}
    assert {e.url for e in run.events if e.conn == ack.conn} == {sim.okx_business_ws_url}


def test_okx_silent_sockets_are_replaced_both(sim: SimulatorThread) -> None:
    def silent(endpoint: str) -> float:
        return counted("silent_sockets", book="okx:ETH-USDT", endpoint=endpoint)

    before = {endpoint: silent(endpoint) for endpoint in ("public", "business")}
    with feed_run(sim, "okx:ETH-USDT") as run:
        first = first_snapshot(run)
        run.wait(lambda e: "#b" in e.conn, "the business socket")
        fault = injected(sim, "silent_socket", "okx", "ETH-USDT")
        run.wait(lambda e: is_okx_snapshot(e) and e.conn != first.conn, "a snapshot on a new socket",
                 after_ns=fault.at_ns, timeout=SILENCE_S + 8)
        wait_for(lambda: silent("business") > before["business"], SILENCE_S + 8, "the business socket replaced")
    assert silent("public") == before["public"] + 1
    assert silent("business") == before["business"] + 1


def test_okx_refused_books_subscription_is_counted_and_a_resubscribe_recovers(sim: SimulatorThread) -> None:
    errors = counted("subscribe_errors", book="okx:BTC-USDT")
    sim.inject("subscribe_error", "okx", "BTC-USDT")
    bus = InProcessControlBus()
    with feed_run(sim, "okx:BTC-USDT", bus) as run:
        refusal = run.wait(lambda e: '"event":"error"' in e.data, "the refusal")
        run.wait(lambda e: e.conn == refusal.conn and '"channel":"trades"' in e.data, "the other channels")
        assert not run.since(0, is_okx_snapshot), "a refused subscription sends no book"
        asked = time.time_ns()
        bus.send(request("okx:BTC-USDT", "resubscribe", "no snapshot for 30 s"))
        fresh = run.wait(is_okx_snapshot, "a snapshot after re-subscribing", after_ns=asked)
    assert refusal.url == sim.okx_ws_url and fresh.conn == refusal.conn
    assert payload(refusal)["code"] == "60012"
    assert counted("subscribe_errors", book="okx:BTC-USDT") == errors + 1
    assert_true_okx_snapshot(sim, "BTC-USDT", payload(fresh))


def test_a_418_on_books_full_holds_every_okx_book_for_retry_after(sim: SimulatorThread) -> None:
    make = sim_feeds(sim, InProcessControlBus(), okx_deep_interval_s=0.2, silence_s=SILENCE_S)
    banned = counted("rest_failures", book="okx:BTC-USDT", outcome="418")
    with FeedRun(make("okx:BTC-USDT")) as btc, FeedRun(make("okx:ETH-USDT")) as eth:
        for run in (btc, eth):
            run.wait(rest, f"books-full of {run.feed.key}")
        fault = injected(sim, "ban_snapshot", "okx", "BTC-USDT")
        ban_ends = fault.at_ns + BAN_S * 10**9
        resumed = [run.wait(rest, f"books-full of {run.feed.key} after the ban", ban_ends, BAN_S + 5)
                   for run in (btc, eth)]  # fmt: skip
    in_flight = fault.at_ns + 300_000_000  # a request of the other book already on its way may still land
    during = [e for run in (btc, eth) for e in run.since(in_flight, rest) if e.recv_ns < ban_ends]
    assert during == [], "no book asked while the IP was banned"
    assert counted("rest_failures", book="okx:BTC-USDT", outcome="418") == banned + 1
    assert all(payload(answer)["code"] == "0" for answer in resumed)
