"""Every fault the live simulator injects is visible to a plain client, and recorded where and when it happened.

Faults are armed on demand (`inject`) and take effect at the next message, tick or
request that can show them, so each test arms one and reads until it sees it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
import requests
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

from sim.live_faults import FaultSettings, InjectedFault, ScheduledFault
from sim.server import SimulatorThread
from sim.settings import OkxSettings, SimSettings
from tests.sim_server_support import OkxBook, RawWebSocket, TruncatedFrame, recv_json, wait_for

STALL_S = SLOW_S = 0.6
BAN_S = 7
QUIET_S = 1.5  # how long a silenced connection is watched to stay silent


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    settings = SimSettings(
        seed=21,
        okx=OkxSettings(connects_per_s=1000),
        faults=FaultSettings(stall_s=STALL_S, slow_snapshot_s=SLOW_S, ban_snapshot_s=BAN_S),
    )
    with SimulatorThread(settings) as thread:
        yield thread


def injected(sim: SimulatorThread, kind: str, venue: str, symbol: str) -> InjectedFault:
    """Arm a fault and wait until it took effect; its record must say when."""
    before = time.time_ns()
    count = len(sim.faults)
    sim.inject(kind, venue, symbol)
    fault = wait_for(
        lambda: next((f for f in sim.faults[count:] if (f.kind, f.venue, f.symbol) == (kind, venue, symbol)), None),
        5,
        f"{kind} on {venue}:{symbol}",
    )
    assert before <= fault.at_ns <= time.time_ns()
    return fault


def read_diffs(ws: ClientConnection, count: int) -> list[dict]:
    return [recv_json(ws) for _ in range(count)]


# ----- increments -----


@pytest.mark.parametrize("kind", ["drop", "duplicate", "reorder"])
def test_binance_sequence_faults_show_in_update_ids(sim: SimulatorThread, kind: str) -> None:
    with connect(f"{sim.binance_ws_url}/ws/btcusdt@depth@100ms") as ws:
        diffs = read_diffs(ws, 2)
        fault = injected(sim, kind, "binance", "BTC-USDT")
        diffs += read_diffs(ws, 8)
    hit = dict(part.split("=") for part in fault.detail.split())
    hit_u, hit_last = int(hit["U"]), int(hit["u"])
    pairs = list(zip(diffs, diffs[1:]))
    broken = [(a, b) for a, b in pairs if b["U"] != a["u"] + 1]
    if kind == "drop":
        ((a, b),) = broken
        assert (a["u"] + 1, b["U"] - 1) == (hit_u, hit_last)
    elif kind == "duplicate":
        assert [(a["U"], a["u"]) for a, b in pairs if a == b] == [(hit_u, hit_last)]
    else:
        late = next(i for i, d in enumerate(diffs) if d["U"] == hit_u)
        assert diffs[late - 1]["U"] == hit_last + 1, "the held diff came right after its successor"
        chain = sorted(diffs, key=lambda d: d["U"])
        assert all(b["U"] == a["u"] + 1 for a, b in zip(chain, chain[1:]))


def okx_books(ws: ClientConnection) -> tuple[OkxBook, int]:
    """Subscribe to BTC-USDT books and take the snapshot: the book and its seqId."""
    ws.send(orjson.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]}).decode())
    assert recv_json(ws)["event"] == "subscribe"
    entry = recv_json(ws)["data"][0]
    book = OkxBook()
    book.apply(entry, snapshot=True)
    return book, entry["seqId"]


def test_okx_bad_checksum_with_an_intact_sequence(sim: SimulatorThread) -> None:
    with connect(sim.okx_ws_url) as ws:
        book, last = okx_books(ws)
        fault = injected(sim, "bad_checksum", "okx", "BTC-USDT")
        results = []
        for _ in range(12):
            entry = recv_json(ws)["data"][0]
            assert entry["prevSeqId"] == last
            book.apply(entry, snapshot=False)
            results.append((entry["seqId"], book.checksum() == entry["checksum"]))
            last = entry["seqId"]
    assert [seq for seq, ok in results if not ok] == [int(fault.detail.removeprefix("seqId="))]


def test_okx_sequence_reset_is_legal_and_the_book_stays_right(sim: SimulatorThread) -> None:
    with connect(sim.okx_ws_url) as ws:
        book, last = okx_books(ws)
        injected(sim, "seq_reset", "okx", "BTC-USDT")
        resets = 0
        for _ in range(12):
            entry = recv_json(ws)["data"][0]
            assert entry["prevSeqId"] == last
            resets += entry["seqId"] < entry["prevSeqId"]
            book.apply(entry, snapshot=False)
            assert book.checksum() == entry["checksum"]
            last = entry["seqId"]
    assert resets == 1


@pytest.mark.parametrize("venue", ["binance", "okx"])
@pytest.mark.parametrize("kind", ["not_json", "bad_price", "negative_qty"])
def test_malformed_frames_come_before_the_intact_message(sim: SimulatorThread, venue: str, kind: str) -> None:
    url = f"{sim.binance_ws_url}/ws/ethusdt@depth@100ms" if venue == "binance" else sim.okx_ws_url
    with connect(url) as ws:
        if venue == "okx":
            ws.send(orjson.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": "ETH-USDT"}]}).decode())
        ws.recv(timeout=3)
        injected(sim, kind, venue, "ETH-USDT")
        frames = [ws.recv(timeout=3) for _ in range(12)]
    bad = [i for i, text in enumerate(frames) if not _well_formed(venue, text)]
    assert len(bad) == 1, frames
    damaged, intact = frames[bad[0]], frames[bad[0] + 1]
    if kind == "not_json":
        assert intact.startswith(damaged) and len(damaged) == len(intact) // 2
    else:
        first = _first_level(venue, orjson.loads(damaged))
        assert first[0] == "abc" if kind == "bad_price" else first[1].startswith("-")


def _sides(venue: str, message: dict) -> tuple[list[list[str]], list[list[str]]]:
    if venue == "binance":
        return message["b"], message["a"]
    return message["data"][0]["bids"], message["data"][0]["asks"]


def _first_level(venue: str, message: dict) -> list[str]:
    return next(side[0] for side in _sides(venue, message) if side)


def _well_formed(venue: str, text: str) -> bool:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    bids, asks = _sides(venue, message)
    try:
        return all(float(price) > 0 and float(size) >= 0 for price, size, *_ in bids + asks)
    except ValueError:
        return False


# ----- connections -----


def test_disconnect_drops_the_socket_without_a_close_frame(sim: SimulatorThread) -> None:
    with connect(sim.okx_ws_url) as ws:
        okx_books(ws)
        injected(sim, "disconnect", "okx", "BTC-USDT")
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                ws.recv(timeout=3)
    assert closed.value.rcvd is None


def test_stall_holds_everything_then_delivers_it_in_order(sim: SimulatorThread) -> None:
    with connect(f"{sim.binance_ws_url}/ws/btcusdt@depth@100ms") as ws:
        recv_json(ws)
        injected(sim, "stall", "binance", "BTC-USDT")
        stalled_at = time.monotonic()
        arrivals = [(time.monotonic(), recv_json(ws)) for _ in range(15)]
    times = [stalled_at] + [at for at, _ in arrivals]
    gaps = [b - a for a, b in zip(times, times[1:])]
    longest = max(range(len(gaps)), key=gaps.__getitem__)
    assert gaps[longest] >= STALL_S * 0.8, gaps
    assert sum(gap < 0.05 for gap in gaps[longest + 1 :]) >= 3, "what the stall held comes at once"
    diffs = [diff for _, diff in arrivals]
    assert all(b["U"] == a["u"] + 1 for a, b in zip(diffs, diffs[1:])), "a stall loses nothing"


def test_cut_frame_ends_the_connection_inside_a_frame(sim: SimulatorThread) -> None:
    raw = RawWebSocket(f"{sim.binance_ws_url}/ws/btcusdt@depth@100ms")
    try:
        raw.read_frame(timeout=3)
        injected(sim, "cut_frame", "binance", "BTC-USDT")
        with pytest.raises(TruncatedFrame) as cut:
            while True:
                raw.read_frame(timeout=3)
    finally:
        raw.close()
    assert 0 < cut.value.got == cut.value.expected // 2


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_silent_socket_sends_nothing_ever_again_but_stays_open(sim: SimulatorThread, venue: str) -> None:
    url = f"{sim.binance_ws_url}/ws/btcusdt@depth@100ms" if venue == "binance" else sim.okx_ws_url
    with connect(url) as silent:
        if venue == "okx":
            okx_books(silent)
        else:
            recv_json(silent)
        injected(sim, "silent_socket", venue, "BTC-USDT")
        with pytest.raises(TimeoutError):  # what was already on its way may still come; then nothing
            while True:
                silent.recv(timeout=QUIET_S)
        if venue == "okx":
            silent.send("ping")  # OKX's own keep-alive goes unanswered too
            with pytest.raises(TimeoutError):
                silent.recv(timeout=QUIET_S)
        silent.ping().wait(timeout=3)  # open: websocket pings are still answered
        with connect(url) as fresh:  # and a new connection works
            if venue == "okx":
                okx_books(fresh)
            else:
                assert recv_json(fresh)["e"] == "depthUpdate"


def test_okx_subscribe_error_refuses_books_once(sim: SimulatorThread) -> None:
    sim.inject("subscribe_error", "okx", "ETH-USDT")
    request = orjson.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": "ETH-USDT"}]}).decode()
    with connect(sim.okx_ws_url) as ws:
        ws.send(request)
        error = recv_json(ws)
        assert set(error) == {"event", "code", "msg", "connId"}
        assert (error["event"], error["code"]) == ("error", "60012")
        with pytest.raises(TimeoutError):  # no data for the refused subscription
            ws.recv(timeout=QUIET_S)
        ws.send(request)  # the next subscribe is served
        assert recv_json(ws) == {"event": "subscribe", "arg": {"channel": "books", "instId": "ETH-USDT"},
                                 "connId": error["connId"]}
        assert recv_json(ws)["action"] == "snapshot"
    (fault,) = [f for f in sim.faults if f.kind == "subscribe_error"]
    assert (fault.venue, fault.symbol, fault.detail) == ("okx", "ETH-USDT", f"connId={error['connId']}")


def test_okx_business_endpoint_acknowledges_candles_and_refuses_books(sim: SimulatorThread) -> None:
    with connect(sim.okx_business_ws_url) as ws:
        ws.send(orjson.dumps({"op": "subscribe", "args": [{"channel": "candle1m", "instId": "BTC-USDT"}]}).decode())
        ack = recv_json(ws)
        assert (ack["event"], ack["arg"]) == ("subscribe", {"channel": "candle1m", "instId": "BTC-USDT"})
        ws.send(orjson.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]}).decode())
        assert recv_json(ws)["code"] == "60018"


# ----- snapshots -----


def snapshot_request(sim: SimulatorThread, venue: str) -> requests.Response:
    if venue == "binance":
        return requests.get(f"{sim.binance_url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 100})
    return requests.get(f"{sim.okx_url}/api/v5/market/books", params={"instId": "BTC-USDT", "sz": 100})


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_snapshot_faults(sim: SimulatorThread, venue: str) -> None:
    sim.inject("slow_snapshot", venue, "BTC-USDT")
    started = time.monotonic()
    assert snapshot_request(sim, venue).status_code == 200
    assert time.monotonic() - started >= SLOW_S

    sim.inject("fail_snapshot", venue, "BTC-USDT")
    assert snapshot_request(sim, venue).status_code == 500

    sim.inject("limit_snapshot", venue, "BTC-USDT")
    limited = snapshot_request(sim, venue)
    assert limited.status_code == 429
    if venue == "binance":
        assert int(limited.headers["Retry-After"]) >= 1 and limited.json()["code"] == -1003
    else:
        assert limited.json()["code"] == "50011"
    assert snapshot_request(sim, venue).status_code == 200
    kinds = [f.kind for f in sim.faults if f.venue == venue and f.kind.endswith("_snapshot")]
    assert kinds[-3:] == ["slow_snapshot", "fail_snapshot", "limit_snapshot"]


def deep_request(sim: SimulatorThread, venue: str) -> requests.Response:
    """The 5000-level book request a collector makes: Binance depth, OKX books-full."""
    if venue == "binance":
        return requests.get(f"{sim.binance_url}/api/v3/depth", params={"symbol": "ETHUSDT", "limit": 5000})
    return requests.get(f"{sim.okx_url}/api/v5/market/books-full", params={"instId": "ETH-USDT", "sz": 5000})


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_bad_snapshot_body_is_a_200_that_is_not_json(sim: SimulatorThread, venue: str) -> None:
    sim.inject("bad_snapshot_body", venue, "ETH-USDT")
    bad = deep_request(sim, venue)
    good = deep_request(sim, venue)
    assert bad.status_code == good.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(bad.content)
    opening = '{"lastUpdateId":' if venue == "binance" else '{"code":"0"'
    assert bad.text.startswith(opening) and good.text.startswith(opening)
    assert len(bad.content) > 1000  # half a book, not an empty answer
    orjson.loads(good.content)


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_ban_snapshot_is_a_418_with_retry_after(sim: SimulatorThread, venue: str) -> None:
    sim.inject("ban_snapshot", venue, "ETH-USDT")
    banned = deep_request(sim, venue)
    assert banned.status_code == 418
    assert banned.headers["Retry-After"] == str(BAN_S)
    assert banned.json()["code"] == (-1003 if venue == "binance" else "50011")
    assert deep_request(sim, venue).status_code == 200  # a fault, not the venue's ban: the next one is served


# ----- arming -----


def test_a_scheduled_fault_takes_effect_at_its_time() -> None:
    schedule = (ScheduledFault(at_s=0.5, kind="drop", venue="binance", symbol="ETH-USDT"),)
    with SimulatorThread(SimSettings(faults=FaultSettings(schedule=schedule))) as sim:
        with connect(f"{sim.binance_ws_url}/ws/ethusdt@depth@100ms") as ws:
            diffs = read_diffs(ws, 12)
        (fault,) = sim.faults
    assert fault.kind == "drop" and fault.at_ns >= sim.started_ns + 0.5e9
    assert sum(b["U"] != a["u"] + 1 for a, b in zip(diffs, diffs[1:])) == 1


def test_impossible_faults_are_refused(sim: SimulatorThread) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("meteor", "binance", "BTC-USDT")
    with pytest.raises(ValueError, match="OKX fault"):
        sim.inject("bad_checksum", "binance", "BTC-USDT")
    with pytest.raises(KeyError, match="not served"):
        sim.inject("drop", "okx", "SOL-USDT")
