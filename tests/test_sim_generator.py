"""The simulated market and its recordings: the truth is consistent, and the wire says what real exchanges say.

Everything here reads the generated file the way a client would, with small naive
references written in this file (a dict per side, a plain CRC32), never with sim's code.
"""

from __future__ import annotations

import statistics
import zlib
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from sim.faults import FaultPlan
from sim.market import Market
from sim.recording import EPOCH_NS, generate_recording
from sim.specs import SPECS

SECONDS = 20


def read_lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict]:
    path = tmp_path_factory.mktemp("sim") / "all.jsonl"
    truths = generate_recording(path, seconds=SECONDS, seed=7)
    return read_lines(path), truths


def binance_messages(lines: list[dict], symbol: str) -> list[tuple[str, dict]]:
    """("depth" | "ticker" | "trade" | "snapshot", payload) in receive order for one Binance symbol."""
    wire = symbol.replace("-", "")
    out = []
    for line in lines:
        if line["venue"] != "binance":
            continue
        if line["kind"] == "rest":
            if line["symbol"] == symbol:
                out.append(("snapshot", orjson.loads(line["data"])))
            continue
        msg = orjson.loads(line["data"])
        stream = msg["stream"]
        if stream.startswith(wire.lower() + "@"):
            kinds = {"depth@100ms": "depth", "bookTicker": "ticker", "trade": "trade", "kline_1m": "kline"}
            kind = kinds[stream.split("@", 1)[1]]
            out.append((kind, msg["data"]))
    return out


class NaiveBook:
    """A reference book: one dict per side, sorted only when read."""

    def __init__(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        self.bids = {Decimal(p): q for p, q, *_ in bids}
        self.asks = {Decimal(p): q for p, q, *_ in asks}
        self.text = {Decimal(p): p for p, *_ in bids + asks}

    def apply(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q, *_ in levels:
                price = Decimal(p)
                self.text[price] = p
                if Decimal(q) == 0:
                    side.pop(price, None)
                else:
                    side[price] = q

    def levels(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = [(self.text[p], self.bids[p]) for p in sorted(self.bids, reverse=True)]
        asks = [(self.text[p], self.asks[p]) for p in sorted(self.asks)]
        return bids, asks


def within(levels: list[tuple[str, str]], edge: str, side: str) -> list[tuple[str, str]]:
    """Levels no deeper than `edge`: beyond a snapshot's last level a client only knows what changed."""
    e = Decimal(edge)
    return [lv for lv in levels if (Decimal(lv[0]) >= e if side == "bid" else Decimal(lv[0]) <= e)]


def naive_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    fields: list[str] = []
    for i in range(25):
        if i < len(bids):
            fields += [bids[i][0], bids[i][1]]
        if i < len(asks):
            fields += [asks[i][0], asks[i][1]]
    value = zlib.crc32(":".join(fields).encode())
    return value - 2**32 if value > 2**31 - 1 else value


def test_market_is_never_crossed_and_keeps_its_depth() -> None:
    for (venue, symbol), spec in SPECS.items():
        market = Market(spec, seed=f"crossed:{venue}", start_ns=0)
        for _ in range(600):
            window = market.next_window()
            for step in window.steps:
                assert step.top is None or step.top[0] < step.top[2], (venue, symbol, step.update_id)
            bid, _, ask, _ = market.top()
            assert bid < ask
        assert 5500 <= market.depth(0) <= 6500 and 5500 <= market.depth(1) <= 6500
        bids, asks = market.book_at(market.update_id - 500)
        assert Decimal(bids[0][0]) < Decimal(asks[0][0])
        assert [Decimal(p) for p, _ in bids] == sorted((Decimal(p) for p, _ in bids), reverse=True)
        assert [Decimal(p) for p, _ in asks] == sorted(Decimal(p) for p, _ in asks)
        assert market.book_at(market.update_id) == market.current_book()


def test_numbers_are_written_as_each_exchange_writes_them(recording: tuple[list[dict], dict]) -> None:
    _, truths = recording
    bids, asks = truths["binance:BTC-USDT"].market.current_book(depth=3)
    for price, qty in bids + asks:
        assert len(price.split(".")[1]) == 8 and len(qty.split(".")[1]) == 8
        assert 80_000 < float(price) < 100_000
    for text in (t for level in truths["okx:BTC-USDT"].market.current_book(depth=200)[0] for t in level):
        assert "." not in text or not text.endswith(("0", ".")), "OKX writes the shortest exact decimal"


@pytest.mark.parametrize("symbol", ["BTC-USDT", "ETH-USDT"])
def test_binance_diffs_chain_and_the_snapshot_bridges_them(recording: tuple[list[dict], dict], symbol: str) -> None:
    lines, _ = recording
    messages = binance_messages(lines, symbol)
    diffs = [data for kind, data in messages if kind == "depth"]
    assert all(d["U"] == prev["u"] + 1 for prev, d in zip(diffs, diffs[1:]))
    assert all(d["U"] <= d["u"] for d in diffs)
    first_snapshot = next(i for i, (kind, _) in enumerate(messages) if kind == "snapshot")
    last_id = messages[first_snapshot][1]["lastUpdateId"]
    before = [data for kind, data in messages[:first_snapshot] if kind == "depth"]
    assert before and before[0]["u"] <= last_id, "the snapshot must come after diffs the client has to drop"
    bridge = next(d for d in diffs if d["u"] > last_id)
    assert bridge["U"] <= last_id + 1 <= bridge["u"]


@pytest.mark.parametrize("symbol", ["BTC-USDT", "ETH-USDT"])
def test_binance_snapshot_plus_diffs_reproduce_the_truth(recording: tuple[list[dict], dict], symbol: str) -> None:
    lines, truths = recording
    market = truths[f"binance:{symbol}"].market
    messages = binance_messages(lines, symbol)
    start = next(i for i, (kind, _) in enumerate(messages) if kind == "snapshot")
    snapshot = messages[start][1]
    assert len(snapshot["bids"]) == len(snapshot["asks"]) == 5000
    snapshot_levels = ([tuple(lv) for lv in snapshot["bids"]], [tuple(lv) for lv in snapshot["asks"]])
    assert snapshot_levels == market.book_at(snapshot["lastUpdateId"], depth=5000)
    bid_edge, ask_edge = snapshot["bids"][-1][0], snapshot["asks"][-1][0]
    book = NaiveBook(snapshot["bids"], snapshot["asks"])
    last_id = snapshot["lastUpdateId"]
    diffs = [data for kind, data in messages if kind == "depth" and data["u"] > last_id]
    checked = tickers_checked = 0
    for i, diff in enumerate(diffs):
        book.apply(diff["b"], diff["a"])
        if i % 40 == 0 or i == len(diffs) - 1:
            bids, asks = book.levels()
            true_bids, true_asks = market.book_at(diff["u"])
            assert within(bids, bid_edge, "bid") == within(true_bids, bid_edge, "bid")
            assert within(asks, ask_edge, "ask") == within(true_asks, ask_edge, "ask")
            assert len(within(true_bids, bid_edge, "bid")) > 4500
            checked += 1
    assert checked >= 5
    # each bookTicker stamped with a diff's u shows that diff's top of book
    book = NaiveBook(snapshot["bids"], snapshot["asks"])
    current = last_id
    for kind, data in messages:  # diffs that came before the snapshot count as buffered
        if kind == "depth" and data["u"] > last_id:
            book.apply(data["b"], data["a"])
            current = data["u"]
        elif kind == "ticker" and data["u"] == current:
            bids, asks = book.levels()
            assert (data["b"], data["B"], data["a"], data["A"]) == (*bids[0], *asks[0])
            tickers_checked += 1
    assert tickers_checked > 100


@pytest.mark.parametrize("symbol", ["BTC-USDT", "ETH-USDT"])
def test_okx_books_verify_and_match_the_top_400(recording: tuple[list[dict], dict], symbol: str) -> None:
    lines, truths = recording
    market = truths[f"okx:{symbol}"].market
    books = []
    for line in lines:
        if line["venue"] == "okx":
            msg = orjson.loads(line["data"])
            if msg.get("arg") == {"channel": "books", "instId": symbol} and "action" in msg:
                books.append(msg)
    assert books[0]["action"] == "snapshot" and books[0]["data"][0]["prevSeqId"] == -1
    assert len(books[0]["data"][0]["bids"]) == len(books[0]["data"][0]["asks"]) == 400
    assert abs(len(books) - SECONDS * 10) <= 2, "one books message per 100 ms"
    book = NaiveBook(books[0]["data"][0]["bids"], books[0]["data"][0]["asks"])
    prev_seq = books[0]["data"][0]["seqId"]
    keepalives = 0
    for n, msg in enumerate(books):
        data = msg["data"][0]
        if n:
            assert msg["action"] == "update" and data["prevSeqId"] == prev_seq
            keepalives += data["prevSeqId"] == data["seqId"]
            book.apply(data["bids"], data["asks"])
        prev_seq = data["seqId"]
        bids, asks = book.levels()
        assert data["checksum"] == naive_checksum(bids, asks)
        if n % 20 == 0:
            true_bids, true_asks = market.book_at(data["seqId"], depth=400)
            assert (bids[:400], asks[:400]) == (true_bids, true_asks)
    assert keepalives >= 1


def test_binance_btc_statistics_match_2024(tmp_path: Path) -> None:
    seconds = 60
    path = tmp_path / "btc.jsonl"
    truths = generate_recording(path, venues=("binance",), symbols=("BTC-USDT",), seconds=seconds, seed=3)
    messages = binance_messages(read_lines(path), "BTC-USDT")
    texts = [line["data"] for line in read_lines(path) if "@depth@100ms" in line["data"][:40]]
    diffs = [data for kind, data in messages if kind == "depth"]
    sizes = [len(d["b"]) + len(d["a"]) for d in diffs]
    trades = sum(kind == "trade" for kind, _ in messages)
    tickers = sum(kind == "ticker" for kind, _ in messages)
    assert 9.6 - 1.5 <= len(diffs) / seconds <= 9.6 + 1.5
    assert 36 - 8 <= statistics.mean(sizes) <= 36 + 8
    assert 16 - 6 <= statistics.median(sizes) <= 16 + 6
    assert max(sizes) > 150, "a heavy tail of big batches"
    assert 900 <= statistics.mean(len(t) for t in texts) <= 1700
    assert 27 - 5 <= trades / seconds <= 27 + 5
    assert 78 - 10 <= tickers / seconds <= 78 + 10
    assert truths["binance:BTC-USDT"].counts["depthUpdate"] == len(diffs)


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    for suffix in (".jsonl.zst", ".jsonl.gz"):
        a, b, c = (tmp_path / f"{name}{suffix}" for name in "abc")
        generate_recording(a, seconds=3, seed=11)
        generate_recording(b, seconds=3, seed=11)
        generate_recording(c, seconds=3, seed=12)
        assert a.read_bytes() == b.read_bytes()
        assert a.read_bytes() != c.read_bytes()


def test_every_fault_kind_lands_where_it_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "faults.jsonl"
    kinds = ["drop", "duplicate", "swap", "bad_checksum", "not_json", "bad_price", "negative_qty", "resnapshot"]
    plan = FaultPlan(seed=5, **{kind: 1 for kind in kinds})
    truths = generate_recording(path, symbols=("BTC-USDT",), seconds=10, seed=1, faults=plan)
    faults = [f for truth in truths.values() for f in truth.faults]
    assert sorted(f.kind for f in faults) == sorted(kinds)
    lines = read_lines(path)
    at = {(line["venue"], line["recv_ns"]): line for line in lines}  # one symbol per venue: unique
    for fault in faults:
        assert EPOCH_NS + 3e9 <= fault.recv_ns <= EPOCH_NS + 9.1e9
        line = at.get((fault.venue, fault.recv_ns))
        assert (line is None) == (fault.kind == "drop")
        if fault.kind == "not_json":
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(line["data"])
        elif fault.kind == "bad_price":
            assert '"abc"' in line["data"]
        elif fault.kind == "negative_qty":
            assert '"-' in line["data"]
        elif fault.kind == "resnapshot":
            assert line["kind"] == "rest" and len(truths[f"{fault.venue}:{fault.symbol}"].snapshot_ids) == 2
        elif fault.kind == "duplicate":
            assert sum(x["data"] == line["data"] for x in lines) == 2


def test_sequence_faults_break_the_binance_chain_where_recorded(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    plan = FaultPlan(seed=2, drop=2, duplicate=2, swap=2)
    truths = generate_recording(path, venues=("binance",), symbols=("BTC-USDT",), seconds=10, seed=4, faults=plan)
    diffs, prev = [], None  # (recv_ns, whether U fails to follow the previous u)
    for line in read_lines(path):
        if line["kind"] == "ws" and "@depth@100ms" in line["data"][:40]:
            diff = orjson.loads(line["data"])["data"]
            diffs.append((line["recv_ns"], prev is not None and diff["U"] != prev + 1))
            prev = diff["u"]
    faults = truths["binance:BTC-USDT"].faults
    assert len(faults) == 6
    for fault in faults:  # a dropped diff shows at the next one; a duplicate or an overtaker at itself
        assert next(broken for recv, broken in diffs if recv >= fault.recv_ns), fault


def test_bad_checksums_are_exactly_where_recorded(tmp_path: Path) -> None:
    path = tmp_path / "crc.jsonl"
    plan = FaultPlan(bad_checksum=3)
    truths = generate_recording(path, venues=("okx",), symbols=("ETH-USDT",), seconds=8, faults=plan)
    book, wrong = None, []
    for line in read_lines(path):
        msg = orjson.loads(line["data"])
        if "action" not in msg or msg["arg"]["channel"] != "books":
            continue
        data = msg["data"][0]
        if book is None:
            book = NaiveBook(data["bids"], data["asks"])
        else:
            book.apply(data["bids"], data["asks"])
        if data["checksum"] != naive_checksum(*book.levels()):
            wrong.append(line["recv_ns"])
    assert wrong == sorted(f.recv_ns for f in truths["okx:ETH-USDT"].faults)
    assert len(wrong) == 3
