"""The live simulator speaks Binance and OKX as their documents say, over real loopback sockets.

Each test is a small client of its own (`sim_server_support`), checked against the truth
the simulator writes from: `truth(venue, symbol).book_at(update_id, depth)`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal

import orjson
import pytest
import requests
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from sim.limits import binance_depth_weight
from sim.live_market import LiveMarket
from sim.server import SimulatorThread
from sim.settings import BinanceSettings, OkxSettings, SimSettings
from tests.sim_server_support import (
    BinanceBook,
    OkxBook,
    RawWebSocket,
    recv_json,
    recv_until,
    within,
)

PING_S, PONG_TIMEOUT_S, IDLE_S = 0.3, 1.0, 1.0
SUBSCRIBE_BOOKS = orjson.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]}).decode()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    """Real limits, short timers; connection attempts unthrottled so tests can open sockets freely."""
    settings = SimSettings(
        seed=11,
        binance=BinanceSettings(ping_interval_s=PING_S, pong_timeout_s=PONG_TIMEOUT_S),
        okx=OkxSettings(idle_timeout_s=IDLE_S, connects_per_s=1000),
    )
    with SimulatorThread(settings) as thread:
        yield thread


@pytest.fixture(scope="module")
def limited() -> Iterator[SimulatorThread]:
    """An exchange with every limit as the venues set it, for the rate-limit tests alone."""
    with SimulatorThread(SimSettings(seed=12)) as thread:
        yield thread


# ----- Binance -----


def test_binance_snapshot_and_diff_stream_sync_to_the_truth(sim: SimulatorThread) -> None:
    truth = sim.truth("binance", "BTC-USDT")
    with connect(f"{sim.binance_ws_url}/ws/btcusdt@depth@100ms") as ws:
        buffered = [recv_json(ws)]
        response = requests.get(f"{sim.binance_url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000})
        snapshot = response.json()
        assert len(snapshot["bids"]) == len(snapshot["asks"]) == 5000
        assert buffered[0]["U"] <= snapshot["lastUpdateId"] + 1, "the snapshot is older than the first diff"
        book = BinanceBook(snapshot)
        applied = 0
        while applied < 20:
            diff = buffered.pop(0) if buffered else recv_json(ws)
            assert diff["e"] == "depthUpdate" and diff["s"] == "BTCUSDT"
            if diff["u"] <= book.last_update_id:
                continue
            if applied == 0:
                assert diff["U"] <= book.last_update_id + 1 <= diff["u"]
            else:
                assert diff["U"] == book.last_update_id + 1
            book.apply(diff)
            applied += 1
    bids, asks = book.known()
    true_bids, true_asks = truth.book_at(book.last_update_id)
    assert bids == within(true_bids, book.edges[0], bids=True)
    assert asks == within(true_asks, book.edges[1], bids=False)
    assert Decimal(bids[0][0]) > 80_000 and len(true_bids) >= 5000 and len(true_asks) >= 5000


def test_binance_combined_and_raw_streams(sim: SimulatorThread) -> None:
    names = ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker", "ethusdt@depth@100ms"]
    seen: dict[str, dict] = {}
    with connect(f"{sim.binance_ws_url}/stream?streams={'/'.join(names)}") as ws:
        deadline = time.monotonic() + 5
        while len(seen) < len(names) and time.monotonic() < deadline:
            message = recv_json(ws)
            assert set(message) == {"stream", "data"}
            seen[message["stream"]] = message["data"]
    assert set(seen) == set(names)
    assert seen["btcusdt@trade"]["e"] == "trade" and seen["btcusdt@aggTrade"]["e"] == "aggTrade"
    assert seen["btcusdt@aggTrade"]["f"] <= seen["btcusdt@aggTrade"]["l"]
    assert seen["ethusdt@depth@100ms"]["s"] == "ETHUSDT"

    truth = sim.truth("binance", "ETH-USDT")
    with connect(f"{sim.binance_ws_url}/ws/ethusdt@bookTicker") as ws:
        ticker = recv_json(ws)
    assert set(ticker) == {"u", "s", "b", "B", "a", "A"}
    (bid,), (ask,) = truth.book_at(ticker["u"], depth=1)
    assert (ticker["b"], ticker["B"], ticker["a"], ticker["A"]) == (*bid, *ask)
    assert 2_000 < Decimal(bid[0]) < 4_000


def test_binance_subscribe_methods_and_unknown_streams(sim: SimulatorThread) -> None:
    with connect(f"{sim.binance_ws_url}/ws") as ws:
        ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}).decode())
        assert recv_json(ws) == {"result": None, "id": 1}
        ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}).decode())
        assert recv_until(ws, lambda m: m.get("id") == 2, 3, "the subscription list") == {
            "result": ["btcusdt@trade"],
            "id": 2,
        }
        assert recv_until(ws, lambda m: m.get("e") == "trade", 5, "a trade")["s"] == "BTCUSDT"
        ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@kline_5m"], "id": 3}).decode())
        assert recv_until(ws, lambda m: m.get("id") == 3, 3, "the refusal")["error"]["code"] == 2
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{sim.binance_ws_url}/ws/dogeusdt@trade")
    assert refused.value.response.status_code == 400


def test_binance_kline_stream_follows_its_own_trades(sim: SimulatorThread) -> None:
    """Each @kline_1m push, against the last one of its candle: the trades in between (by id)
    account for its new count, volumes, close, high and low; pushes come every 2 s."""
    trades: dict[int, dict] = {}
    pushes: list[dict] = []
    with connect(f"{sim.binance_ws_url}/stream?streams=btcusdt@trade/btcusdt@kline_1m") as ws:
        deadline = time.monotonic() + 12
        while len(pushes) < 4 and time.monotonic() < deadline:
            message = recv_json(ws)
            if message["stream"] == "btcusdt@trade":
                trades[message["data"]["t"]] = message["data"]
            else:
                pushes.append(message["data"])
    assert len(pushes) == 4, "four pushes in 12 s"
    compared = 0
    for before, after in zip(pushes, pushes[1:]):
        old, new = before["k"], after["k"]
        assert new["i"] == "1m" and new["T"] == new["t"] + 59_999 and new["t"] % 60_000 == 0
        if new["t"] != old["t"] or old["x"]:
            continue  # a new minute began in between
        # Every 2 s, or, closed, at the minute's end (which may fall just after a regular push).
        assert after["E"] - before["E"] == 2000 or (new["x"] and new["T"] < after["E"])
        fills = [trades[i] for i in range(old["L"] + 1, new["L"] + 1)]  # every one was received
        prices = [Decimal(old["h"]), Decimal(old["l"]), *(Decimal(f["p"]) for f in fills)]
        assert new["n"] - old["n"] == len(fills) and new["f"] == old["f"]
        assert Decimal(new["v"]) - Decimal(old["v"]) == sum(Decimal(f["q"]) for f in fills)
        assert Decimal(new["q"]) - Decimal(old["q"]) == sum(Decimal(f["p"]) * Decimal(f["q"]) for f in fills)
        assert (Decimal(new["h"]), Decimal(new["l"])) == (max(prices), min(prices))
        assert new["c"] == (fills[-1]["p"] if fills else old["c"]) and new["o"] == old["o"]
        assert all(new["t"] <= f["T"] <= after["E"] for f in fills)
        compared += 1
    assert compared >= 2


def test_binance_exchange_info_lists_the_served_symbols(sim: SimulatorThread) -> None:
    info = requests.get(f"{sim.binance_url}/api/v3/exchangeInfo").json()
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000} in info[
        "rateLimits"
    ]
    one = requests.get(f"{sim.binance_url}/api/v3/exchangeInfo", params={"symbol": "ETHUSDT"}).json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    unknown = requests.get(f"{sim.binance_url}/api/v3/exchangeInfo", params={"symbol": "DOGEUSDT"})
    assert unknown.status_code == 400 and unknown.json()["code"] == -1121


def test_binance_weights_headers_429_then_418(limited: SimulatorThread) -> None:
    url = f"{limited.binance_url}/api/v3/depth"
    limits = (1, 100, 101, 500, 501, 1000, 1001, 5000)
    assert [binance_depth_weight(n) for n in limits] == [5, 5, 25, 25, 50, 50, 250, 250]
    used = 0
    for limit, weight in ((100, 5), (500, 25), (1000, 50), (5000, 250)):
        response = requests.get(url, params={"symbol": "BTCUSDT", "limit": limit})
        assert response.status_code == 200 and len(response.json()["bids"]) == limit
        now = int(response.headers["x-mbx-used-weight-1m"])
        assert response.headers["x-mbx-used-weight"] == str(now)
        assert now in (used + weight, weight)  # `weight` alone when a new minute began in between
        used = now
    last = None
    for _ in range(30):  # 6000 / 250 = 24 requests at most, plus one over
        response = requests.get(url, params={"symbol": "BTCUSDT", "limit": 5000})
        if response.status_code != 200:
            break
        last = response
    assert response.status_code == 429, response.status_code
    assert int(response.headers["x-mbx-used-weight-1m"]) > 6000 >= int(last.headers["x-mbx-used-weight-1m"])
    assert 1 <= int(response.headers["Retry-After"]) <= 60 and response.json()["code"] == -1003
    banned = requests.get(url, params={"symbol": "BTCUSDT", "limit": 5})
    assert banned.status_code == 418 and int(banned.headers["Retry-After"]) >= 119
    still = requests.get(f"{limited.binance_url}/api/v3/exchangeInfo")
    assert still.status_code == 418, "a ban covers the IP, not one endpoint"


def test_binance_pings_and_closes_a_client_that_never_answers(sim: SimulatorThread) -> None:
    raw = RawWebSocket(f"{sim.binance_ws_url}/ws/btcusdt@trade")
    assert raw.status == 101
    opcodes: list[int] = []
    started = time.monotonic()
    try:
        while True:
            opcode, payload = raw.read_frame(timeout=PONG_TIMEOUT_S + 3 * PING_S)
            opcodes.append(opcode)
            if opcode == 0x8:
                break
    except EOFError:
        pass
    finally:
        raw.close()
    lasted = time.monotonic() - started
    assert 0x9 in opcodes, "no ping arrived"
    assert opcodes[-1] == 0x8 and int.from_bytes(payload[:2], "big") == 1008
    assert PONG_TIMEOUT_S <= lasted < PONG_TIMEOUT_S + 3 * PING_S

    with connect(f"{sim.binance_ws_url}/ws/btcusdt@depth@100ms") as ws:  # answers pings by itself
        deadline = time.monotonic() + PONG_TIMEOUT_S + 3 * PING_S
        while time.monotonic() < deadline:
            assert recv_json(ws)["e"] == "depthUpdate"


def test_binance_connection_lifetime_ends_with_server_shutdown() -> None:
    with SimulatorThread(SimSettings(binance=BinanceSettings(lifetime_s=1.0))) as short:
        started = time.monotonic()  # before the handshake: the lifetime starts during it
        with connect(f"{short.binance_ws_url}/ws/btcusdt@depth@100ms") as ws:
            messages = []
            with pytest.raises(ConnectionClosedOK) as closed:
                while True:
                    messages.append(recv_json(ws, timeout=3))
        assert 1.0 <= time.monotonic() - started < 2.5
        assert messages[-1]["e"] == "serverShutdown"
        assert abs(messages[-1]["E"] - time.time() * 1000) < 2000
        assert all(m["e"] == "depthUpdate" for m in messages[:-1])
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


def test_binance_closes_a_connection_that_sends_too_many_messages(sim: SimulatorThread) -> None:
    with connect(f"{sim.binance_ws_url}/ws") as ws:
        for request_id in range(6):
            ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}).decode())
        replies = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                replies.append(recv_json(ws))
    assert [reply["id"] for reply in replies] == list(range(5))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


# ----- OKX -----


def test_okx_subscribe_ack_errors_and_unsubscribe(sim: SimulatorThread) -> None:
    with connect(sim.okx_ws_url) as ws:
        args = [{"channel": "trades", "instId": "ETH-USDT"}, {"channel": "candle1m", "instId": "ETH-USDT"}]
        ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
        ack, error = recv_json(ws), recv_json(ws)
        assert ack["event"] == "subscribe" and ack["arg"] == args[0] and len(ack["connId"]) == 8
        assert error["event"] == "error" and error["code"] == "60018" and error["connId"] == ack["connId"]
        ws.send(orjson.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": "DOGE-USDT"}]}).decode())
        assert recv_until(ws, lambda m: m.get("event") == "error", 3, "an error")["code"] == "60018"
        ws.send("hello")
        assert recv_until(ws, lambda m: m.get("event") == "error", 3, "an error")["code"] == "60012"
        trade = recv_until(ws, lambda m: "data" in m, 5, "a trade")
        assert trade["arg"] == args[0] and trade["data"][0]["side"] in ("buy", "sell")
        ws.send(orjson.dumps({"op": "unsubscribe", "args": [args[0]]}).decode())
        assert recv_until(ws, lambda m: "event" in m, 3, "the unsubscribe ack")["event"] == "unsubscribe"
        ws.send("ping")
        assert ws.recv(timeout=3) == "pong", "a trade arrived after the unsubscribe ack"


def test_okx_candles_come_from_the_business_url_only(sim: SimulatorThread) -> None:
    candles = {"channel": "candle1m", "instId": "BTC-USDT"}
    with connect(sim.okx_ws_url) as public:
        public.send(orjson.dumps({"op": "subscribe", "args": [candles]}).decode())
        refused = recv_json(public)
    assert refused == {
        "event": "error",
        "code": "60018",
        "msg": "Wrong URL or channel:candle1m,instId:BTC-USDT doesn't exist. "
        "Please use the correct URL, channel and parameters referring to API document.",
        "connId": refused["connId"],
    }
    assert sim.okx_business_ws_url.endswith("/ws/v5/business")
    with connect(sim.okx_business_ws_url) as business:
        books = {"channel": "books", "instId": "BTC-USDT"}
        business.send(orjson.dumps({"op": "subscribe", "args": [candles, books]}).decode())
        ack, error = recv_json(business), recv_json(business)
        assert ack == {"event": "subscribe", "arg": candles, "connId": ack["connId"]}
        assert error["code"] == "60018" and "channel:books" in error["msg"], "books live on /ws/v5/public"
        pushes = []
        while len(pushes) < 3:
            business.send("ping")  # candles come once a second, as often as the idle limit here: keep it alive
            text = business.recv(timeout=3)
            if text != "pong" and "data" in (message := orjson.loads(text)):
                pushes.append((time.monotonic(), message))
    for (at, earlier), (later_at, later) in zip(pushes, pushes[1:]):
        assert 0.3 < later_at - at < 2.0, "about one push a second (as received: a loaded machine jitters)"
        assert later["arg"] == candles
        (row,) = later["data"]
        assert len(row) == 9 and all(isinstance(v, str) for v in row) and row[8] in ("0", "1")
        assert int(row[0]) % 60_000 == 0 and row[6] == row[7], "spot: volCcy and volCcyQuote are both quote volume"
        o, h, low, c = map(Decimal, row[1:5])
        assert low <= min(o, c) <= max(o, c) <= h and Decimal(row[5]) >= 0
        if earlier["data"][0][0] == row[0]:
            assert Decimal(row[5]) >= Decimal(earlier["data"][0][5]), "an open candle's volume only grows"


def test_okx_books_snapshot_then_updates_chain_with_valid_checksums(sim: SimulatorThread) -> None:
    truth = sim.truth("okx", "BTC-USDT")
    book = OkxBook()
    with connect(sim.okx_ws_url) as ws:
        ws.send(SUBSCRIBE_BOOKS)
        assert recv_json(ws)["event"] == "subscribe"
        snapshot = recv_json(ws)
        assert snapshot["action"] == "snapshot"
        entry = snapshot["data"][0]
        assert entry["prevSeqId"] == -1 and len(entry["bids"]) == len(entry["asks"]) == 400
        assert all(len(level) == 4 and level[2] == "0" for level in entry["bids"])
        book.apply(entry, snapshot=True)
        assert book.checksum() == entry["checksum"]
        last, updates, keepalives = entry["seqId"], 0, 0
        while updates < 15:
            message = recv_json(ws)
            entry = message["data"][0]
            assert message["action"] == "update" and entry["prevSeqId"] == last
            keepalives += entry["seqId"] == last
            updates += entry["seqId"] != last
            book.apply(entry, snapshot=False)
            assert book.checksum() == entry["checksum"]
            last = entry["seqId"]
    assert book.top(400) == truth.book_at(last, depth=400)


def test_okx_ping_pong_and_idle_close(sim: SimulatorThread) -> None:
    with connect(sim.okx_ws_url) as ws:
        deadline = time.monotonic() + 2.5 * IDLE_S
        while time.monotonic() < deadline:  # a client that pings stays connected
            ws.send("ping")
            assert ws.recv(timeout=1) == "pong"
            time.sleep(IDLE_S / 3)  # the client's own ping timer
    with connect(sim.okx_ws_url) as silent:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            silent.recv(timeout=IDLE_S + 2)
        assert IDLE_S * 0.9 <= time.monotonic() - started < IDLE_S + 1.5
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4004


def test_okx_rest_books_and_books_full_match_the_truth(sim: SimulatorThread) -> None:
    truth = sim.truth("okx", "BTC-USDT")
    asked_ms = time.time() * 1000
    full = requests.get(f"{sim.okx_url}/api/v5/market/books-full", params={"instId": "BTC-USDT", "sz": 5000}).json()
    assert full["code"] == "0" and full["msg"] == ""
    (entry,) = full["data"]
    assert set(entry) == {"asks", "bids", "ts"}
    assert len(entry["bids"]) == len(entry["asks"]) == 5000 and all(len(level) == 3 for level in entry["bids"])
    assert abs(int(entry["ts"]) - asked_ms) < 1500
    update_id = sim.update_id_at("okx", "BTC-USDT", int(entry["ts"]) * 1_000_000)
    true_bids, true_asks = truth.book_at(update_id, depth=5000)
    assert [(p, q) for p, q, _ in entry["bids"]] == true_bids
    assert [(p, q) for p, q, _ in entry["asks"]] == true_asks

    books = requests.get(f"{sim.okx_url}/api/v5/market/books", params={"instId": "BTC-USDT", "sz": 400}).json()
    (entry,) = books["data"]
    assert len(entry["bids"]) == 400 and all(len(level) == 4 for level in entry["asks"])
    true_bids, true_asks = truth.book_at(sim.update_id_at("okx", "BTC-USDT", int(entry["ts"]) * 1_000_000), 400)
    assert [(p, q) for p, q, *_ in entry["bids"]] == true_bids
    assert [(p, q) for p, q, *_ in entry["asks"]] == true_asks
    unknown = requests.get(f"{sim.okx_url}/api/v5/market/books", params={"instId": "DOGE-USDT"}).json()
    assert unknown["code"] == "51001"


def test_okx_rate_limits_answer_50011(limited: SimulatorThread) -> None:
    for path, allowed in (("books", 40), ("books-full", 10)):
        started = time.monotonic()
        answers = [
            requests.get(f"{limited.okx_url}/api/v5/market/{path}", params={"instId": "ETH-USDT"})
            for _ in range(allowed + 1)
        ]
        assert time.monotonic() - started < 2.0, "too slow to test a 2 s window"
        assert [a.status_code for a in answers] == [200] * allowed + [429], path
        assert answers[-1].json()["code"] == "50011"

    started = time.monotonic()
    with ExitStack() as opened:
        for _ in range(3):
            opened.enter_context(connect(limited.okx_ws_url))
        with pytest.raises(InvalidStatus) as refused:
            connect(limited.okx_ws_url)
        assert time.monotonic() - started < 1.0, "too slow to test a 1 s window"
    assert refused.value.response.status_code == 429


def test_the_exchange_refuses_to_listen_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimSettings(host="0.0.0.0")


def test_binance_keeps_a_client_that_answers_each_ping_with_its_payload(sim: SimulatorThread) -> None:
    raw = RawWebSocket(f"{sim.binance_ws_url}/ws/btcusdt@depth@100ms")
    deadline = time.monotonic() + PONG_TIMEOUT_S + 3 * PING_S
    pings = 0
    try:
        while time.monotonic() < deadline:
            opcode, payload = raw.read_frame(timeout=2)
            assert opcode != 0x8, "closed although every ping was answered"
            if opcode == 0x9:
                pings += 1
                raw.send_pong(payload)
    finally:
        raw.close()
    assert pings >= 2


def test_a_long_run_forgets_old_history_but_keeps_the_recent_truth() -> None:
    live = LiveMarket("binance", "BTC-USDT", seed=5, start_ns=0)
    for _ in range(3000):  # five minutes of market
        live.draw_next()
    market = live.market
    recent = {u: market.book_at(u, depth=50) for u in range(market.update_id - 2000, market.update_id + 1, 97)}
    horizon_ns = 240 * 10**9
    live.forget_before(horizon_ns)
    assert live.update_id_at(horizon_ns) == live.update_id_at(horizon_ns - 10**9), "the floor of the timeline"
    with pytest.raises(ValueError, match="outside"):
        market.book_at(market.spec.first_update_id + 1)
    assert {u: market.book_at(u, depth=50) for u in recent} == recent
    assert market.book_at(market.update_id) == market.current_book()
