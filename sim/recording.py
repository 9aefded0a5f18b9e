"""A deterministic recording of what a live client of Binance and OKX would have received.

The file is our recording format: JSON Lines, plain or compressed by suffix (`.gz`,
`.zst`), one object per received message
`{"recv_ns", "venue", "conn", "kind", "symbol", "url", "data"}` in receive order, from
2024-06-01T00:00:00Z. Same arguments, same bytes.

What a client sees, per symbol:
- Binance (one combined-stream socket, `binance-ws`): diffs from the first 100 ms on,
  `@trade` as trades happen, `@kline_1m` every 2 s and at each minute's close (`candles`),
  and after each diff the window's `@bookTicker` events, each
  stamped with the update id whose top it shows, the last with the diff's `u` (the real
  exchange sends them in real time, ahead of the diff; placing them after it lets a client
  check each one against a book it already holds). About 0.3 s in, the REST snapshot
  (`binance-rest`) arrives; its `lastUpdateId` lies inside the diffs already streaming.
- OKX (one socket, `okx-ws`): subscription acknowledgements, a `books` snapshot, then one
  `books` message per 100 ms, trades as they happen, and a ticker after any window that
  traded or moved the top. A second socket, `okx-business` (`/ws/v5/business`): its
  acknowledgement, then `candle1m` every second and at each minute's close.

Klines travel on links of their own (own latency draws), so adding them left every other
frame of a recording as it was.

`SymbolTruth.market.book_at(id)` is the true book at a Binance diff's `u` or snapshot's
`lastUpdateId`, or at an OKX `seqId` (compare OKX over the top 400, see `okx_format`).
"""

from __future__ import annotations

import gzip
import heapq
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO

import orjson
import zstandard

from sim import binance_format, okx_format
from sim.candles import CandleFeed
from sim.faults import Fault, FaultInjector, FaultPlan
from sim.market import WINDOW_NS, Market, Window
from sim.specs import spec_for

EPOCH_NS = 1_717_200_000 * 1_000_000_000  # 2024-06-01T00:00:00Z
MS = 1_000_000

# (recv_ns, stream index, sequence, venue, conn, kind, symbol, url, data): the first three sort frames
_Frame = tuple[int, int, int, str, str, str, str | None, str | None, str]


@dataclass
class SymbolTruth:
    """Ground truth for one venue:symbol of a generated recording."""

    venue: str
    symbol: str
    market: Market  # book_at(Binance u / lastUpdateId, or OKX seqId)
    counts: Counter[str] = field(default_factory=Counter)  # frames written, by message kind
    snapshot_ids: list[int] = field(default_factory=list)  # REST lastUpdateIds, or the books snapshot seqId
    faults: list[Fault] = field(default_factory=list)


def generate_recording(
    path: str | Path,
    *,
    venues: tuple[str, ...] = ("binance", "okx"),
    symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT"),
    seconds: float = 30,
    seed: int = 0,
    binance_depth_limit: int = 5000,
    faults: FaultPlan | None = None,
    trend_levels_per_s: float = 0.0,
) -> dict[str, SymbolTruth]:
    """Write `seconds` of market data for every venue x symbol to `path`; the truth per "venue:symbol"."""
    for venue in venues:
        if venue not in ("binance", "okx"):
            raise ValueError(f"cannot simulate venue {venue!r}; known: binance, okx")
    if not 1 <= binance_depth_limit <= 5000:
        raise ValueError(f"Binance serves 1..5000 levels per side, not {binance_depth_limit}")
    pairs = [(venue, symbol) for venue in venues for symbol in symbols]
    stop_ns = EPOCH_NS + int(seconds * 1e9)
    schedule = (faults or FaultPlan()).schedule(pairs, EPOCH_NS, seconds)
    okx_conn_id = f"{random.Random(f'conn:{seed}').getrandbits(32):08x}"
    truths: dict[str, SymbolTruth] = {}
    streams: list[Iterator[_Frame]] = []
    for index, (venue, symbol) in enumerate(pairs):
        net = random.Random(f"net:{seed}:{venue}:{symbol}")
        first_window_end = EPOCH_NS + net.randrange(30 * MS, 100 * MS)
        market = Market(
            spec_for(venue, symbol), seed=f"{seed}:{venue}:{symbol}", start_ns=first_window_end - WINDOW_NS,
            trend_levels_per_s=trend_levels_per_s,
        )
        truth = truths[f"{venue}:{symbol}"] = SymbolTruth(venue, symbol, market)
        encode = binance_format.encode if venue == "binance" else okx_format.encode
        injector = FaultInjector(venue, symbol, schedule[(venue, symbol)], encode)
        truth.faults = injector.injected
        outbox = _Outbox(index, venue, truth.counts)
        klines = _KlineLink(truth, outbox, random.Random(f"klines:{seed}:{venue}:{symbol}"))
        if venue == "binance":
            streams.append(_binance(truth, outbox, net, injector, stop_ns, binance_depth_limit, klines))
        else:
            streams.append(_okx(truth, outbox, net, injector, stop_ns, okx_conn_id, klines))
    _write(Path(path), heapq.merge(*streams))
    return truths


class _Outbox:
    """One stream's frames, let out in receive order once no later frame can come before them."""

    def __init__(self, index: int, venue: str, counts: Counter[str]) -> None:
        self._index, self._venue, self._counts = index, venue, counts
        self._heap: list[_Frame] = []
        self._seq = 0

    def push(
        self, recv_ns: int, conn: str, kind: str, symbol: str | None, url: str | None, data: str, label: str
    ) -> None:
        """Queue one frame; `label` is the message kind it is counted under."""
        heapq.heappush(self._heap, (recv_ns, self._index, self._seq, self._venue, conn, kind, symbol, url, data))
        self._seq += 1
        self._counts[label] += 1

    def release(self, before_ns: int | None = None) -> Iterator[_Frame]:
        while self._heap and (before_ns is None or self._heap[0][0] < before_ns):
            yield heapq.heappop(self._heap)


class _Link:
    """One direction of a TCP connection: a few ms of latency, never reordering."""

    def __init__(self, rng: random.Random, base_ns: int) -> None:
        self._rng, self._base = rng, base_ns
        self._last = 0

    def arrive(self, sent_ns: int) -> int:
        self._last = max(sent_ns + self._base + int(self._rng.expovariate(1 / 400_000)), self._last + 1_000)
        return self._last


class _KlineLink:
    """One symbol's candles on their own link: Binance's on the combined socket, OKX's on the
    business socket, which opens with its acknowledgement (its own connId)."""

    def __init__(self, truth: SymbolTruth, out: _Outbox, rng: random.Random) -> None:
        self._truth, self._out = truth, out
        self._feed: CandleFeed | None = None
        self._binance = truth.venue == "binance"
        self._conn = "binance-ws" if self._binance else "okx-business"
        self._link = _Link(rng, 3 * MS if self._binance else 4 * MS)
        if not self._binance:
            ack = okx_format.subscribed(okx_format.CANDLE_CHANNEL, truth.symbol, f"{rng.getrandbits(32):08x}")
            self._push(self._link.arrive(EPOCH_NS + 30 * MS), okx_format.encode(ack), "subscribe")

    def on_window(self, window: Window) -> None:
        spec = self._truth.market.spec
        if self._feed is None:  # from the first window on, its top standing in for a last price until a trade
            push_every = binance_format.KLINE_PUSH_MS if self._binance else okx_format.CANDLE_PUSH_MS
            self._feed = CandleFeed(window.start_ns // MS, self._truth.market.top()[0], push_every)
        for push in self._feed.on_window(window):
            at = self._link.arrive(window.end_ns)
            if self._binance:
                self._push(at, binance_format.encode(binance_format.kline(spec, push)), "kline")
            else:
                self._push(at, okx_format.encode(okx_format.candle(spec, push)), okx_format.CANDLE_CHANNEL)

    def _push(self, at_ns: int, text: str, label: str) -> None:
        self._out.push(at_ns, self._conn, "ws", None, None, text, label)


def _binance(
    truth: SymbolTruth,
    out: _Outbox,
    net: random.Random,
    injector: FaultInjector,
    stop_ns: int,
    limit: int,
    klines: _KlineLink,
) -> Iterator[_Frame]:
    market, symbol = truth.market, truth.symbol
    spec, encode = market.spec, binance_format.encode
    ws, rest = _Link(net, 3 * MS), _Link(net, 15 * MS)
    url = binance_format.depth_url(symbol, limit)
    subscribed_ns = EPOCH_NS + 20 * MS
    first_snapshot = EPOCH_NS + 300 * MS + net.randrange(50 * MS)
    snapshots = sorted([first_snapshot, *injector.resnapshot_times])
    while market.now_ns < stop_ns:
        window = market.next_window()
        for step in window.steps:
            for fill in step.trades:
                if fill.ts_ns >= subscribed_ns:
                    text = encode(binance_format.trade(spec, fill))
                    out.push(ws.arrive(fill.ts_ns), "binance-ws", "ws", None, None, text, "trade")
        diff = binance_format.depth_update(spec, window)
        if diff is not None:
            arrive = partial(ws.arrive, window.end_ns)
            for at, text, malformed in injector.book_message(diff, window.end_ns, arrive):
                out.push(at, "binance-ws", "ws", None, None, text, "malformed" if malformed else "depthUpdate")
            tops = [(step.update_id, step.top) for step in window.steps if step.top is not None]
            for i, (update_id, top) in enumerate(tops):
                update_id = diff["data"]["u"] if i == len(tops) - 1 else update_id
                text = encode(binance_format.book_ticker(spec, update_id, top))
                out.push(ws.arrive(window.end_ns), "binance-ws", "ws", None, None, text, "bookTicker")
        klines.on_window(window)
        while snapshots and snapshots[0] <= window.end_ns:
            served_ns = snapshots.pop(0)
            update_id = _update_id_at(window, served_ns)
            recv = rest.arrive(served_ns + net.randrange(40 * MS))  # 5000 levels take a while to transfer
            text = encode(binance_format.depth_snapshot(market, update_id, limit))
            out.push(recv, "binance-rest", "rest", symbol, url, text, "snapshot")
            truth.snapshot_ids.append(update_id)
            if served_ns != first_snapshot:
                injector.record(recv, "resnapshot")
        yield from out.release(window.end_ns)
    injector.finish()
    yield from out.release()


def _okx(
    truth: SymbolTruth,
    out: _Outbox,
    net: random.Random,
    injector: FaultInjector,
    stop_ns: int,
    conn_id: str,
    klines: _KlineLink,
) -> Iterator[_Frame]:
    market, symbol = truth.market, truth.symbol
    spec, encode = market.spec, okx_format.encode
    books, tickers = okx_format.BooksFeed(market), okx_format.TickerFeed(spec)
    ws = _Link(net, 4 * MS)
    subscribed_ns = EPOCH_NS + 25 * MS
    for channel in ("books", "trades", "tickers"):
        text = encode(okx_format.subscribed(channel, symbol, conn_id))
        out.push(ws.arrive(subscribed_ns), "okx-ws", "ws", None, None, text, "subscribe")
    while market.now_ns < stop_ns:
        window = market.next_window()
        moved = False
        for step in window.steps:
            moved = moved or step.top is not None
            for fill in step.trades:
                tickers.on_trade(fill)
                if fill.ts_ns >= subscribed_ns:
                    text = encode(okx_format.trade(spec, fill))
                    out.push(ws.arrive(fill.ts_ns), "okx-ws", "ws", None, None, text, "trades")
        ts_ms = window.end_ns // MS
        if books.seq_id < 0:
            text = encode(books.snapshot(ts_ms))
            out.push(ws.arrive(window.end_ns), "okx-ws", "ws", None, None, text, "books_snapshot")
            truth.snapshot_ids.append(books.seq_id)
        else:
            update = books.update(window, ts_ms)
            entry = update["data"][0]
            if entry["prevSeqId"] == entry["seqId"]:
                out.push(ws.arrive(window.end_ns), "okx-ws", "ws", None, None, encode(update), "keepalive")
            else:
                arrive = partial(ws.arrive, window.end_ns)
                for at, text, malformed in injector.book_message(update, window.end_ns, arrive):
                    out.push(at, "okx-ws", "ws", None, None, text, "malformed" if malformed else "books_update")
        if moved:
            text = encode(tickers.message(market.top(), ts_ms))
            out.push(ws.arrive(window.end_ns), "okx-ws", "ws", None, None, text, "tickers")
        klines.on_window(window)
        yield from out.release(window.end_ns)
    injector.finish()
    yield from out.release()


def _update_id_at(window: Window, at_ns: int) -> int:
    """The book's update id at `at_ns`, a time inside `window`."""
    passed = [step.update_id for step in window.steps if step.ts_ns <= at_ns]
    if passed:
        return passed[-1]
    return window.steps[0].update_id - 1 if window.steps else window.update_id


def _write(path: Path, frames: Iterator[_Frame]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open_out(path) as out:
        lines: list[bytes] = []
        for recv_ns, _, _, venue, conn, kind, symbol, url, data in frames:
            record = {
                "recv_ns": recv_ns,
                "venue": venue,
                "conn": conn,
                "kind": kind,
                "symbol": symbol,
                "url": url,
                "data": data,
            }
            lines.append(orjson.dumps(record))
            if len(lines) >= 4096:
                out.write(b"\n".join(lines) + b"\n")
                lines.clear()
        if lines:
            out.write(b"\n".join(lines) + b"\n")


@contextmanager
def _open_out(path: Path) -> Iterator[IO[bytes]]:
    """The file, compressed by suffix; no name or time in the gzip header, so bytes depend only on content."""
    with open(path, "wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
                yield out  # type: ignore[misc]
        elif path.suffix == ".zst":
            with zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False) as out:
                yield out  # type: ignore[misc]
        else:
            yield raw
