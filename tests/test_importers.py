"""Importers against the real cryptofeed captures and hand-written hftbacktest files."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from connectors.importers.cryptofeed import import_cryptofeed, seconds_to_ns, venue_of
from connectors.importers.hftbacktest import import_hftbacktest
from connectors.recording import read_recording
from schemas.raw import RawEvent
from schemas.symbols import normalize_binance_symbol, to_binance_symbol

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "real-data" / "cryptofeed-ce58c2a0"


def _events(path: Path) -> list[RawEvent]:
    """Read a recording back through the project's own reader; any defect fails the test."""
    events = list(read_recording(path))
    assert all(isinstance(e, RawEvent) for e in events)
    return events  # type: ignore[return-value]


def _source_line(name: str, number: int) -> str:
    return (CAPTURES / name).read_bytes().split(b"\n")[number - 1].decode()


# --- symbols ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BTCUSDT", "BTC-USDT"),
        ("btcusdt", "BTC-USDT"),
        ("ETHBTC", "ETH-BTC"),
        ("BNBFDUSD", "BNB-FDUSD"),
        ("ETHBUSD", "ETH-BUSD"),
        ("BTCTUSD", "BTC-TUSD"),
        ("USDCUSDT", "USDC-USDT"),
        ("NKNUSDT", "NKN-USDT"),
        ("BLZETH", "BLZ-ETH"),
        ("LRCBTC", "LRC-BTC"),
        ("runeeur", "RUNE-EUR"),
        ("OMGBUSD", "OMG-BUSD"),
        ("BTCUSD", "BTC-USD"),
        ("USDTTRY", "USDT-TRY"),
        ("btc-usdt", "BTC-USDT"),
    ],
)
def test_normalize_binance_symbol(raw: str, expected: str) -> None:
    assert normalize_binance_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["BTCXYZ", "USDT", "", "BTC/USDT", "BTC-USDT-SWAP"])
def test_normalize_binance_symbol_refuses_to_guess(raw: str) -> None:
    with pytest.raises(ValueError, match="symbol"):
        normalize_binance_symbol(raw)


def test_to_binance_symbol() -> None:
    assert to_binance_symbol("BTC-USDT") == "BTCUSDT"
    assert to_binance_symbol("eth-btc") == "ETHBTC"
    with pytest.raises(ValueError):
        to_binance_symbol("BTCUSDT")


# --- cryptofeed ------------------------------------------------------------------------


def test_seconds_to_ns_is_exact() -> None:
    assert seconds_to_ns("1633998512.0633569") == 1633998512063356900
    assert seconds_to_ns("1652459236") == 1652459236000000000
    assert seconds_to_ns("1.123456789") == 1123456789
    assert seconds_to_ns("1.0000000015") == 1000000002  # half to even, like round()
    assert seconds_to_ns("1.0000000025") == 1000000002
    assert seconds_to_ns("1.00000000251") == 1000000003


def test_venue_of() -> None:
    assert venue_of("wss://stream.binance.com:9443/stream?streams=a") == "binance"
    assert venue_of("https://api.binance.us/api/v3/depth?symbol=X") == "binance_us"
    assert venue_of("wss://ws.okx.com:8443/ws/v5/public") == "okx"
    assert venue_of("wss://ws.okex.com:8443/ws/v5/public") == "okx"
    assert venue_of("wss://ws.notokx.com/") is None
    assert venue_of("wss://stream.bybit.com/v5/public/spot") is None


def test_okx_capture(tmp_path: Path) -> None:
    out = tmp_path / "okx.jsonl"
    stats = import_cryptofeed([CAPTURES / "OKX.ws.1.0"], out)
    events = _events(out)

    assert stats.errors == []
    assert stats.written == len(events) == 410  # 414 lines: 1 connection, 3 sent subscribes
    assert stats.skipped == 3
    assert stats.by_venue_kind == {("okx", "ws"): 410}
    assert {(e.venue, e.kind, e.symbol, e.url, e.conn) for e in events} == {
        ("okx", "ws", None, "wss://ws.okx.com:8443/ws/v5/public", "OKX.ws.1.0#1")
    }
    messages = [orjson.loads(e.data) for e in events]
    books = [m for m in messages if m["arg"]["channel"] == "books"]
    # 3 subscribe acknowledgements + 3 snapshots + 97/98/92 updates.
    assert len(books) == 293
    snapshots = [m["arg"]["instId"] for m in books if m.get("action") == "snapshot"]
    assert sorted(snapshots) == ["BTC-USD-220527", "BTC-USDT", "UNI-USD-SWAP"]
    assert sum(1 for m in books if m.get("action") == "update") == 287
    assert sum(1 for m in books if "checksum" in m.get("data", [{}])[0]) == 290

    # Line 5 is the first received message; the last line ends the file.
    assert events[0].recv_ns == 1652459225503749100
    assert events[0].data == '{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USD-220527"}}'
    last = _source_line("OKX.ws.1.0", 414)
    assert events[-1].data == last.split(": ", 1)[1]
    assert events[-1].recv_ns == seconds_to_ns(last.split(": ", 1)[0])
    assert [e.recv_ns for e in events] == sorted(e.recv_ns for e in events)


def test_binance_ws_and_http_merge_in_time_order(tmp_path: Path) -> None:
    out = tmp_path / "binance.jsonl.zst"
    stats = import_cryptofeed([CAPTURES / "BINANCE.ws.1.0", CAPTURES / "BINANCE.http.0.0"], out)
    events = _events(out)

    assert stats.errors == [] and stats.skipped == 0
    assert stats.written == len(events) == 269
    assert stats.by_venue_kind == {("binance", "ws"): 265, ("binance", "rest"): 4}
    assert [e.recv_ns for e in events] == sorted(e.recv_ns for e in events)

    rest = [(i, e) for i, e in enumerate(events) if e.kind == "rest"]
    assert [i for i, _ in rest] == [1, 15, 29, 77]
    assert [e.symbol for _, e in rest] == ["NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"]
    for number, (_, event) in enumerate(rest, start=1):
        url, rest_of_line = _source_line("BINANCE.http.0.0", number).split(" -> ", 1)
        ts, data = rest_of_line.split(": ", 1)
        expected = (url, seconds_to_ns(ts), data, "BINANCE.http.0.0")
        assert (event.url, event.recv_ns, event.data, event.conn) == expected
    nkn = rest[0][1]
    assert nkn.url == "https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000"
    assert nkn.recv_ns == 1633998512320639000
    assert nkn.data.startswith('{"lastUpdateId":499869752,"bids":[["0.35210000","672.00000000"],')
    assert orjson.loads(nkn.data)["lastUpdateId"] == 499869752

    first = events[0]
    assert first.recv_ns == 1633998512063356900
    assert first.kind == "ws" and first.symbol is None and first.conn == "BINANCE.ws.1.0#1"
    assert first.url is not None and first.url.startswith("wss://stream.binance.com:9443/stream?streams=nknusdt@depth@100ms/")
    assert first.data == (
        '{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT",'
        '"U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"],["0.34750000","5548.00000000"],'
        '["0.34640000","6222.00000000"]],"a":[]}}'
    )
    # Every websocket message is byte-equal to its source line, in source order.
    source = [line.split(": ", 1)[1] for line in (CAPTURES / "BINANCE.ws.1.0").read_text().splitlines()[1:] if line]
    assert [e.data for e in events if e.kind == "ws"] == source


def test_binance_us_capture(tmp_path: Path) -> None:
    out = tmp_path / "binance_us.jsonl.gz"
    stats = import_cryptofeed([CAPTURES / "BINANCE_US.ws.1.0", CAPTURES / "BINANCE_US.http.0.0"], out)
    events = _events(out)

    assert stats.errors == []
    assert stats.by_venue_kind == {("binance_us", "ws"): 480, ("binance_us", "rest"): 4}
    assert {e.venue for e in events} == {"binance_us"}
    assert [e.symbol for e in events if e.kind == "rest"] == ["COMP-USDT", "OMG-BUSD", "CRV-USDT", "ZRX-USDT"]
    streams = [orjson.loads(e.data)["stream"].split("@", 1)[1] for e in events if e.kind == "ws"]
    assert (streams.count("depth@100ms"), streams.count("bookTicker"), streams.count("aggTrade")) == (336, 128, 11)
    assert "binance_us/rest 4" in stats.summary() and "0 errors" in stats.summary()


def test_cryptofeed_garbage_is_reported_and_skipped(tmp_path: Path) -> None:
    capture = tmp_path / "OKX.ws.7.0"
    capture.write_bytes(
        b"1652459225.1: received before any connection\n"
        b"wss://ws.okex.com:8443/ws/v5/public <-> 1652459224.5\n"
        b'wss://ws.okex.com:8443/ws/v5/public <- 1652459225.2: {"op":"subscribe"}\n'
        b"1652459225.3: pong\n"
        b"this is not a capture line\n"
        b"\xff\xfe broken bytes\n"
        b"1652459225.4 missing the colon\n"
        b"\n"
        b'1652459225.5: {"a": 1}  \r\n'
        b"wss://ws.okx.com:8443/ws/v5/public <-> 1652459226.0\n"
        b"1652459226.5: ping-pong: the text keeps its own ': '\n"
        b"wss://stream.bybit.com/v5/public/spot <-> 1652459227.0\n"
        b"1652459227.1: on an unknown venue\n"
        b'https://www.okx.com/api/v5/market/books?instId=btc-usdt&sz=400 -> 1652459226.25: {"code":"0"}\n'
        b'https://api.binance.com/api/v3/depth?symbol=BTCXYZ&limit=10 -> 1652459226.3: {"lastUpdateId":1}'
    )
    out = tmp_path / "out.jsonl"
    stats = import_cryptofeed([capture], out)
    events = _events(out)

    assert [(e.recv_ns, e.kind, e.conn, e.symbol, e.data) for e in events] == [
        (1652459225300000000, "ws", "OKX.ws.7.0#1", None, "pong"),
        (1652459225500000000, "ws", "OKX.ws.7.0#1", None, '{"a": 1}  \r'),
        (1652459226250000000, "rest", "OKX.ws.7.0", "BTC-USDT", '{"code":"0"}'),
        (1652459226500000000, "ws", "OKX.ws.7.0#2", None, "ping-pong: the text keeps its own ': '"),
    ]
    assert {e.venue for e in events} == {"okx"}
    assert stats.written == 4 and stats.skipped == 1
    assert [error.split(": ", 1)[0] for error in stats.errors] == [
        "OKX.ws.7.0:1",
        "OKX.ws.7.0:5",
        "OKX.ws.7.0:6",
        "OKX.ws.7.0:7",
        "OKX.ws.7.0:12",
        "OKX.ws.7.0:13",
        "OKX.ws.7.0:15",
    ]
    assert "before any connection" in stats.errors[0]
    assert "not UTF-8" in stats.errors[2]
    assert "no venue" in stats.errors[4] and "line 12" in stats.errors[5]
    assert "BTCXYZ" in stats.errors[6]
    assert "7 errors (first: OKX.ws.7.0:1:" in stats.summary()


# --- hftbacktest -----------------------------------------------------------------------

DEPTH = (
    '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000100,"s":"BTCUSDT",'
    '"U":101,"u":103,"b":[["37000.01000000","0.50000000"]],"a":[["37000.02000000","0.00000000"]]}}'
)
TRADE = (
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000150,"s":"BTCUSDT","t":7,'
    '"p":"37000.02000000","q":"0.00100000","T":1700000000149,"m":false,"M":true}}'
)
TICKER = (
    '{"stream":"btcusdt@bookTicker","data":{"u":104,"s":"BTCUSDT","b":"37000.01000000",'
    '"B":"0.50000000","a":"37000.03000000","A":"1.20000000"}}'
)
SNAPSHOT = '{"lastUpdateId":102,"bids":[["37000.01000000","0.40000000"]],"asks":[["37000.02000000","2.00000000"]]}'
DEPTH_2 = DEPTH.replace('"U":101,"u":103', '"U":104,"u":104').replace("1700000000100", "1700086400100")


def _hft_file(path: Path, lines: list[tuple[int, str]]) -> Path:
    with gzip.open(path, "wb") as f:
        f.write(b"".join(f"{ns} {text}\n".encode() for ns, text in lines))
    return path


def test_hftbacktest_import(tmp_path: Path) -> None:
    day1 = _hft_file(
        tmp_path / "btcusdt_20231114.gz",
        [
            (1700000000101000001, DEPTH),
            (1700000000120000002, SNAPSHOT),
            (1700000000151000003, TRADE),
            (1700000000160000004, TICKER),
        ],
    )
    day2 = tmp_path / "btcusdt_20231115.txt"  # plain text is accepted too
    day2.write_text(f"1700086400101000005 {DEPTH_2}\n1700086400200000006 {SNAPSHOT}")
    out = tmp_path / "hft.jsonl.zst"

    stats = import_hftbacktest([day2, day1], "btcusdt", out)  # out of order on purpose
    events = _events(out)

    assert stats.errors == [] and stats.skipped == 0
    assert stats.by_venue_kind == {("binance", "ws"): 4, ("binance", "rest"): 2}
    assert [(e.recv_ns, e.venue, e.conn, e.kind, e.symbol, e.url, e.data) for e in events] == [
        (1700000000101000001, "binance", "btcusdt_20231114.gz", "ws", None, None, DEPTH),
        (1700000000120000002, "binance", "btcusdt_20231114.gz", "rest", "BTC-USDT", None, SNAPSHOT),
        (1700000000151000003, "binance", "btcusdt_20231114.gz", "ws", None, None, TRADE),
        (1700000000160000004, "binance", "btcusdt_20231114.gz", "ws", None, None, TICKER),
        (1700086400101000005, "binance", "btcusdt_20231115.txt", "ws", None, None, DEPTH_2),
        (1700086400200000006, "binance", "btcusdt_20231115.txt", "rest", "BTC-USDT", None, SNAPSHOT),
    ]
    assert stats.summary() == "6 messages written (binance/rest 2, binance/ws 4), 0 lines skipped, 0 errors"


def test_hftbacktest_garbage_is_reported_and_skipped(tmp_path: Path) -> None:
    capture = _hft_file(
        tmp_path / "ethusdt_20231114.gz",
        [
            (1700000000101000001, DEPTH),
            (1700000000, TRADE),  # seconds, not ns
            (1700000000130000000, "{not json"),
            (1700000000140000000, '{"result":null,"id":1}'),
            (1700000000150000000, TICKER),
        ],
    )
    with gzip.open(capture, "ab") as f:
        f.write(b"garbage without a timestamp\n")
    # A collector killed mid-write leaves a gzip stream without its end (here: its 8-byte trailer).
    cut = tmp_path / "ethusdt_20231115.gz"
    whole = gzip.compress(f"1700086400101000005 {DEPTH_2}\n".encode() * 50)
    cut.write_bytes(whole[:-8])

    stats = import_hftbacktest([capture, cut], "ETH-USDT", tmp_path / "out.jsonl")
    events = _events(tmp_path / "out.jsonl")

    assert [e.data for e in events[:2]] == [DEPTH, TICKER]
    assert [(e.data, e.conn) for e in events[2:]] == [(DEPTH_2, "ethusdt_20231115.gz")] * 50
    assert stats.written == len(events) == 52
    assert [error.split(": ", 1)[0] for error in stats.errors[:4]] == [
        "ethusdt_20231114.gz:2",
        "ethusdt_20231114.gz:3",
        "ethusdt_20231114.gz:4",
        "ethusdt_20231114.gz:6",
    ]
    assert "too small to be in ns" in stats.errors[0]
    assert "not JSON" in stats.errors[1]
    assert "neither" in stats.errors[2]
    assert len(stats.errors) == 5
    assert stats.errors[4].startswith("ethusdt_20231115.gz:51: file unreadable from here on")


def test_hftbacktest_rejects_unsplittable_symbol(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="BTCXYZ"):
        import_hftbacktest([], "BTCXYZ", tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
