"""Klines end to end, and `removed_bids`/`removed_asks` on order-book deltas.

The truth is never our own output: the real capture's own kline messages, the trades a
simulated recording holds (parsed here from the file, with Decimal), and hand-worked
numbers. What reaches NATS is read back from a real nats-server, what is stored from chDB.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from connectors.clickhouse_backend import ChdbBackend, ensure_schema, read_events
from connectors.nats_server import EmbeddedNatsServer
from flows.offline import recording_events
from flows.replay import run_replay
from operators.decode import decode
from operators.routing import kline_msg_id
from operators.wire import Rejected
from schemas.clickhouse import FEATURES, KLINES, MIGRATIONS, TABLES, bootstrap_sql, migration_sql
from schemas.clickhouse_rows import batch_token, to_batches
from schemas.encoding import book_update_dict
from schemas.events import BookDelta, Kline
from schemas.models import json_schemas
from schemas.raw import RawEvent
from sim.recording import EPOCH_NS, generate_recording
from tests.clickhouse_support import chdb_dir
from tests.conftest import REAL_DATA
from tests.live_support import read_streams

RECV_NS = 1_633_998_523_957_297_800
_databases = itertools.count()


def binance_raw(data: dict[str, Any], recv_ns: int = RECV_NS) -> RawEvent:
    return RawEvent(recv_ns, "binance", "binance-ws", "ws", None, None, orjson.dumps(data).decode())


def okx_raw(data: dict[str, Any], recv_ns: int = RECV_NS) -> RawEvent:
    return RawEvent(recv_ns, "okx", "okx-business", "ws", None, None, orjson.dumps(data).decode())


REAL_KLINE = {  # from BINANCE.ws.1.0, as received
    "stream": "nknusdt@kline_1m",
    "data": {"e": "kline", "E": 1633998523963, "s": "NKNUSDT", "k": {
        "t": 1633998480000, "T": 1633998539999, "s": "NKNUSDT", "i": "1m", "f": 19862761, "L": 19862790,
        "o": "0.35270000", "c": "0.35280000", "h": "0.35280000", "l": "0.35220000", "v": "25877.00000000",
        "n": 30, "x": False, "q": "9116.04600000", "V": "58.00000000", "Q": "20.46240000", "B": "0"}},
}
OKX_CANDLE = {
    "arg": {"channel": "candle1m", "instId": "BTC-USDT"},
    "data": [["1633998480000", "8533.02", "8553.74", "8527.17", "8548.26", "45247", "529.5858061", "5.3", "1"]],
}


def decoded_one(raw: RawEvent) -> object:
    result = decode(raw)
    assert isinstance(result, list) and len(result) == 1, result
    return result[0][1]


# ---- decoding --------------------------------------------------------------------------


def test_a_binance_kline_decodes_to_its_own_values() -> None:
    kline = decoded_one(binance_raw(REAL_KLINE))
    assert kline == Kline(
        venue="binance", symbol="NKN-USDT", interval="1m", open_time=1633998480000, close_time=1633998539999,
        open="0.35270000", high="0.35280000", low="0.35220000", close="0.35280000", volume="25877.00000000",
        quote_volume="9116.04600000", trade_count=30, is_closed=False, exchange_ms=1633998523963, recv_ns=RECV_NS,
    )


def test_an_okx_candle_decodes_with_its_minute_and_no_trade_count() -> None:
    kline = decoded_one(okx_raw(OKX_CANDLE))
    assert kline == Kline(
        venue="okx", symbol="BTC-USDT", interval="1m", open_time=1633998480000, close_time=1633998539999,
        open="8533.02", high="8553.74", low="8527.17", close="8548.26", volume="45247", quote_volume="5.3",
        trade_count=None, is_closed=True, exchange_ms=None, recv_ns=RECV_NS,
    )
    ack = {"event": "subscribe", "arg": {"channel": "candle1m", "instId": "BTC-USDT"}, "connId": "a4d3ae55"}
    assert not isinstance(decode(okx_raw(ack)), list), "the business connection's acks are ignored"


def _binance_with(**changes: Any) -> dict[str, Any]:
    message = orjson.loads(orjson.dumps(REAL_KLINE))
    message["data"]["k"].update(changes)
    return message


def _okx_with(index: int, value: Any) -> dict[str, Any]:
    message = orjson.loads(orjson.dumps(OKX_CANDLE))
    message["data"][0][index] = value
    return message


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (binance_raw(_binance_with(o="-1")), "kline open price '-1' is not a positive decimal string"),
        (binance_raw(_binance_with(h="0.35000000")), "kline prices out of order"),
        (binance_raw(_binance_with(v="1e5")), "kline volume '1e5' is not a non-negative decimal string"),
        (binance_raw(_binance_with(T=1633998470000)), "kline close time T=1633998470000 is not after its open time"),
        (binance_raw(_binance_with(x="false")), "kline field 'x' must be a boolean"),
        (binance_raw(_binance_with(n=-3)), "field 'n' must be a non-negative integer"),
        (binance_raw(_binance_with(i="1.m")), "kline interval '1.m' is not one of Binance's"),
        (binance_raw(_binance_with(s="BTCUSDT")), "kline names symbol 'BTCUSDT' inside an event for 'NKNUSDT'"),
        (okx_raw(_okx_with(8, "2")), "candle1m: candle confirm must be '0' or '1', got '2'"),
        (okx_raw(_okx_with(0, "yesterday")), "candle1m: candle open time 'yesterday' is not a string of digits"),
        (okx_raw(_okx_with(3, "9000")), "candle1m: kline prices out of order"),
        (okx_raw({**OKX_CANDLE, "data": [["1633998480000", "1", "1"]]}), "candle1m: a candle must be 9 strings"),
        (okx_raw({**OKX_CANDLE, "arg": {"channel": "candle1M", "instId": "BTC-USDT"}}), "unsupported candle bar '1M'"),
    ],
)
def test_a_bad_kline_is_rejected_with_a_sentence(raw: RawEvent, reason: str) -> None:
    rejected = decoded_one(raw)
    assert isinstance(rejected, Rejected) and reason in rejected.reason, rejected


def _kline_messages(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(receive ns, data) of every @kline message in a cryptofeed capture, read without our code."""
    found = []
    for line in path.read_text().splitlines():
        if "@kline_" in line and ": {" in line:
            stamp, text = line.split(": ", 1)
            found.append((round(float(stamp) * 1e9), orjson.loads(text)["data"]))
    return found


@pytest.mark.parametrize(("venue", "capture", "count"), [("binance", "BINANCE.ws.1.0", 2), ("binance_us", "BINANCE_US.ws.1.0", 5)])
def test_every_real_kline_replays_to_its_own_values(
    real_recordings: dict[str, Path], tmp_path: Path, venue: str, capture: str, count: int
) -> None:
    expected = _kline_messages(REAL_DATA / capture)
    assert len(expected) == count
    out = tmp_path / "events.jsonl"
    run_replay([real_recordings[venue]], out=out)
    events = [e for e in map(orjson.loads, out.read_bytes().splitlines()) if e["event_type"] == "kline"]
    klines = sorted(events, key=lambda e: (e["symbol_name"], e["timestamp"]))
    expected.sort(key=lambda message: (message[1]["s"], message[1]["E"]))
    assert len(klines) == len(expected)
    for event, (_, data) in zip(klines, expected, strict=True):
        k = data["k"]
        assert event["exchange_name"] == venue and event["symbol_name"].replace("-", "") == data["s"] == k["s"]
        assert (event["interval"], event["trade_count"], event["is_closed"]) == (k["i"], k["n"], k["x"])
        assert [event[f"{name}_price"] for name in ("open", "high", "low", "close")] == [k["o"], k["h"], k["l"], k["c"]]
        assert (event["volume"], event["quote_volume"]) == (k["v"], k["q"])
        assert event["open_time"] == _iso(k["t"]) and event["close_time"] == _iso(k["T"])
        assert event["timestamp"] == _iso(data["E"])


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# ---- a simulated recording: NATS and ClickHouse against its trades ----------------------


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """70 s of Binance and OKX BTC-USDT from 00:00:00: one candle closes, the next is pushed ten times."""
    path = tmp_path_factory.mktemp("klines") / "recording.jsonl"
    generate_recording(path, venues=("binance", "okx"), symbols=("BTC-USDT",), seconds=70)
    return path


def recorded_frames(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def recorded_trades(frames: list[dict[str, Any]]) -> dict[str, list[tuple[int, int, Decimal, Decimal]]]:
    """Per venue: (trade id, ms, price, quantity) of every trade the recording holds, in id order."""
    trades: dict[str, list[tuple[int, int, Decimal, Decimal]]] = defaultdict(list)
    for frame in frames:
        message = orjson.loads(frame["data"])
        if frame["venue"] == "binance" and message.get("stream", "").endswith("@trade"):
            t = message["data"]
            trades["binance"].append((t["t"], t["T"], Decimal(t["p"]), Decimal(t["q"])))
        elif frame["venue"] == "okx" and message.get("arg", {}).get("channel") == "trades" and "data" in message:
            for t in message["data"]:
                trades["okx"].append((int(t["tradeId"]), int(t["ts"]), Decimal(t["px"]), Decimal(t["sz"])))
    return {venue: sorted(found) for venue, found in trades.items()}


def assert_candle_is_its_trades(candle: dict[str, Any], trades: list[tuple[int, int, Decimal, Decimal]]) -> None:
    assert trades, candle
    prices = [price for _, _, price, _ in trades]
    assert Decimal(candle["open_price"]) == prices[0] and Decimal(candle["close_price"]) == prices[-1]
    assert Decimal(candle["high_price"]) == max(prices) and Decimal(candle["low_price"]) == min(prices)
    assert Decimal(candle["volume"]) == sum(qty for *_, qty in trades)
    assert Decimal(candle["quote_volume"]) == sum(price * qty for *_, price, qty in trades)


def check_against_trades(
    klines: list[dict[str, Any]], raw_by_id: dict[str, dict[str, Any]], frames: list[dict[str, Any]]
) -> dict[str, int]:
    """Every kline whose minute began after the recording's first trade equals its trades:
    Binance by the trade ids it names (f..L), OKX by the run of the minute's trades whose
    volume it reports. Returns how many were checked per venue."""
    trades = recorded_trades(frames)
    checked: dict[str, int] = defaultdict(int)
    for kline in klines:
        venue = kline["exchange_name"]
        raw = raw_by_id[kline["msg_id"]]
        first_ms = trades[venue][0][1]
        open_ms = raw["open_ms"]
        if open_ms <= first_ms:
            continue  # its first trades were made before the recording began
        in_minute = [t for t in trades[venue] if open_ms <= t[1] < open_ms + 60_000]
        if venue == "binance":
            first, last = raw["f"], raw["L"]
            mine = [t for t in in_minute if first <= t[0] <= last]
            assert [t[0] for t in mine] == list(range(first, last + 1)) and kline["trade_count"] == len(mine)
            assert all(t[0] <= last for t in in_minute if t[1] < raw["E"]), "a trade made before the push is missing"
        else:
            volume, mine = Decimal(0), []
            for t in in_minute:
                if volume == Decimal(kline["volume"]):
                    break
                volume += t[3]
                mine.append(t)
            assert kline["trade_count"] is None
        assert_candle_is_its_trades(kline, mine)
        checked[venue] += 1
    return checked


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    with EmbeddedNatsServer(tmp_path / "nats") as server:
        yield server


def test_klines_reach_nats_once_each_and_equal_the_recorded_trades(nats: EmbeddedNatsServer, recording: Path) -> None:
    frames = recorded_frames(recording)
    pushes = []
    for frame in frames:
        message = orjson.loads(frame["data"])
        if message.get("stream", "").endswith("@kline_1m"):
            k = message["data"]["k"]
            pushes.append(("binance", {"open_ms": k["t"], "f": k["f"], "L": k["L"], "E": message["data"]["E"]}, k["x"]))
        elif message.get("arg", {}).get("channel") == "candle1m" and "data" in message:
            row = message["data"][0]
            pushes.append(("okx", {"open_ms": int(row[0]), "volume": row[5]}, row[8] == "1"))
    assert {venue for venue, _, _ in pushes} == {"binance", "okx"} and any(closed for *_, closed in pushes)

    run_replay([recording], nats_url=nats.url)
    found = read_streams(nats.url, ("MARKET_DATA", "ORDERBOOK_DELTA"))
    subjects = {"market.binance.btc-usdt.kline.1m", "market.okx.btc-usdt.kline.1m"}
    klines = [{**payload, "msg_id": msg_id} for s in sorted(subjects) for _, payload, msg_id in found[s]]
    assert len(klines) == len(pushes), "every push is one message: no id shared by two updates"

    by_id = {}
    for kline in klines:
        venue = kline["exchange_name"]
        same = [p for v, p, closed in pushes if v == venue and closed == kline["is_closed"]
                and _iso(p["open_ms"]) == kline["open_time"]
                and (p.get("volume") == kline["volume"] if venue == "okx" else _iso(p["E"]) == kline["timestamp"])]
        assert len(same) == 1, kline
        by_id[kline["msg_id"]] = same[0]
    checked = check_against_trades(klines, by_id, frames)
    assert checked["binance"] >= 4 and checked["okx"] >= 8, checked

    deltas = found["orderbook.delta.binance.btc-usdt"] + found["orderbook.delta.okx.btc-usdt"]
    check_removed_levels(frames, [payload for _, payload, _ in deltas])


def check_removed_levels(frames: list[dict[str, Any]], deltas: list[dict[str, Any]]) -> None:
    """removed_bids/asks of each published delta are the prices its raw update set to zero."""
    raw_sides: dict[tuple[str, int], tuple[list[str], list[str]]] = {}
    for frame in frames:
        message = orjson.loads(frame["data"]) if frame["data"].startswith("{") else {}
        if message.get("stream", "").endswith("@depth@100ms"):
            d = message["data"]
            raw_sides[("binance", d["u"])] = _zeros(d["b"]), _zeros(d["a"])
        elif message.get("arg", {}).get("channel") == "books" and message.get("action") == "update":
            entry = message["data"][0]
            if entry["prevSeqId"] != entry["seqId"]:  # not a keep-alive, which repeats the last seqId
                raw_sides[("okx", entry["seqId"])] = _zeros(entry["bids"]), _zeros(entry["asks"])
    removed = 0
    for delta in deltas:
        bids, asks = raw_sides[(delta["exchange_name"], delta["last_update_id"])]
        assert (delta["removed_bids"], delta["removed_asks"]) == (bids, asks)
        removed += len(bids) + len(asks)
    assert len(deltas) > 500 and removed > 1000


def _zeros(levels: list[list[str]]) -> list[str]:
    return [level[0] for level in levels if Decimal(level[1]) == 0]


@pytest.fixture(scope="module")
def backend() -> Iterator[ChdbBackend]:
    chdb = ChdbBackend(chdb_dir())
    yield chdb
    chdb.close()


def test_klines_are_stored_one_row_per_candle_the_latest_update(backend: ChdbBackend, recording: Path) -> None:
    """Inserted a few updates at a time (batches with the same candles, different updates),
    every candle reads back as its last push in the recording."""
    database = f"klines_test_{next(_databases)}"
    ensure_schema(backend, database, {})
    backend.execute(f"SYSTEM STOP MERGES {database}.klines")  # so the raw row count below shows every insert
    klines = [e for e in recording_events([recording]) if isinstance(e, Kline)]
    for start in range(0, len(klines), 2):
        for name, batch in to_batches(klines[start : start + 2]).items():
            backend.insert(database, TABLES[name], batch, batch_token(name, batch))
    last_push: dict[tuple[str, int], dict[str, Any]] = {}
    for frame in recorded_frames(recording):
        message = orjson.loads(frame["data"])
        if message.get("stream", "").endswith("@kline_1m"):
            k = message["data"]["k"]
            last_push[("binance", k["t"])] = {"o": k["o"], "h": k["h"], "l": k["l"], "c": k["c"], "v": k["v"],
                                              "q": k["q"], "n": k["n"], "x": k["x"], "recv_ns": frame["recv_ns"]}
        elif message.get("arg", {}).get("channel") == "candle1m" and "data" in message:
            ts, o, h, low, c, v, _, q, confirm = message["data"][0]
            last_push[("okx", int(ts))] = {"o": o, "h": h, "l": low, "c": c, "v": v, "q": q, "n": None,
                                           "x": confirm == "1", "recv_ns": frame["recv_ns"]}
    stored = {}
    for venue in ("binance", "okx"):
        for row in read_events(backend, database, KLINES, venue, "BTC-USDT"):
            assert isinstance(row, Kline)
            stored[(venue, row.open_time)] = {"o": row.open, "h": row.high, "l": row.low, "c": row.close,
                                              "v": row.volume, "q": row.quote_volume, "n": row.trade_count,
                                              "x": row.is_closed, "recv_ns": row.recv_ns}
    assert stored == last_push and len(stored) >= 6
    raw_rows = backend.query(f"SELECT count() FROM {database}.klines")[0][0]
    assert raw_rows > len(stored), "the updates were inserted, not dropped as repeats of one batch"


def test_a_database_of_the_previous_version_gets_the_klines_table_from_migration_3(backend: ChdbBackend) -> None:
    database = f"klines_test_{next(_databases)}"
    for sql in bootstrap_sql(database):
        backend.execute(sql)
    for migration in MIGRATIONS[:2]:
        for sql in migration_sql(migration, database):
            backend.execute(sql)
    assert "klines" not in {name for (name,) in backend.query(f"SHOW TABLES FROM {database}")}
    ran = ensure_schema(backend, database, {})
    created = [sql for sql in ran if sql.startswith("CREATE TABLE")]
    assert created == [KLINES.create_sql(database), FEATURES.create_sql(database)]  # the latter: migration 6
    codecs = dict(backend.query(
        f"SELECT name, compression_codec FROM system.columns WHERE database = '{database}' AND table = 'klines'"
    ))
    assert codecs["open_time"] == "CODEC(DoubleDelta, ZSTD(1))" and codecs["close_price"] == "CODEC(ZSTD(19))"
    engine = backend.query(f"SELECT engine_full FROM system.tables WHERE database = '{database}' AND name = 'klines'")
    assert "ReplacingMergeTree(collected_at)" in engine[0][0]
    assert "ORDER BY (exchange_name, symbol_name, kline_interval, open_time)" in engine[0][0]


# ---- hand-worked --------------------------------------------------------------------------


def test_removed_prices_are_the_zero_quantities_of_the_update_as_text() -> None:
    delta = BookDelta(
        venue="binance", symbol="BTC-USDT", update_id=11, prev_update_id=10, first_update_id=11,
        bid_updates=[["90000.10000000", "0.00000000"], ["89999.00000000", "0.50000000"], ["89998.5", "0"]],
        ask_updates=[["90001.00000000", "0.00100000"]], exchange_ms=1717200000100, recv_ns=EPOCH_NS,
    )
    payload = book_update_dict(delta)
    assert payload["removed_bids"] == ["90000.10000000", "89998.5"] and payload["removed_asks"] == []
    jsonschema.Draft202012Validator(json_schemas()["orderbook"]).validate(orjson.loads(orjson.dumps(payload)))
    okx = BookDelta("okx", "BTC-USDT", 7, 6, None, [], [["90001.2", "0", "0", "0"], ["90003", "0.2", "0", "1"]],
                    None, EPOCH_NS)
    assert book_update_dict(okx)["removed_asks"] == ["90001.2"]


def test_message_ids_tell_every_update_of_a_candle_apart() -> None:
    def kline(**changes: Any) -> Kline:
        base = dict(venue="okx", symbol="BTC-USDT", interval="1m", open_time=1717200000000,
                    close_time=1717200059999, open="1", high="2", low="1", close="2", volume="3", quote_volume="5",
                    trade_count=None, is_closed=False, exchange_ms=None, recv_ns=EPOCH_NS)
        return Kline(**{**base, **changes})  # type: ignore[arg-type]

    ids = [
        kline_msg_id(kline()),
        kline_msg_id(kline(volume="3.5")),  # a later push of the same open candle
        kline_msg_id(kline(volume="3.5", is_closed=True)),  # its close
        kline_msg_id(kline(open_time=1717200060000, close_time=1717200119999)),
        kline_msg_id(kline(venue="binance", exchange_ms=1717200002000, trade_count=4)),
        kline_msg_id(kline(venue="binance", exchange_ms=1717200004000, trade_count=4)),
    ]
    assert len(set(ids)) == len(ids)
    assert kline_msg_id(kline(recv_ns=EPOCH_NS + 5)) == ids[0], "the same update received again keeps its id"
