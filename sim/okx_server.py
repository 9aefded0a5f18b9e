"""OKX v5 public market data on one port: REST books and books-full, and the public websocket.

REST (answered in websockets' `process_request`, see `rest`), in OKX's
`{"code":"0","msg":"","data":[...]}` envelope:
- `GET /api/v5/market/books?instId=BTC-USDT&sz=N`: sz 1..400 (default 1), the book now,
  levels `[px, sz, "0", numOrders]`; 40 requests per 2 s per IP.
- `GET /api/v5/market/books-full?instId=..&sz=N`: sz 1..5000, a copy of the book at most
  `books_full_refresh_s` old, levels `[px, sz, numOrders]`, no seqId, no checksum; 10
  requests per 2 s per IP.
Past a limit: HTTP 429 with code 50011. An unknown instrument: code 51001 (HTTP 200).
`ts` is the instant the book was read; `SimExchange.update_id_at(ts)` gives its update id.

Websocket `/ws/v5/public`: `subscribe` / `unsubscribe` with `args` of channel and instId,
acknowledged one event per arg with the connection's `connId`; 60018 for an unknown
channel or instrument (a channel of the other endpoint included), 60012 for anything
else unreadable. Channels: `books` (each subscription its own
`okx_format.BooksFeed`: a 400-level snapshot at the next 100 ms tick,
then one message per tick, updates or keep-alives, seqId = update id, less the shift of
any `seq_reset` fault), `trades` (at each trade's time), `tickers` (after a window that
traded or moved the top). Websocket `/ws/v5/business` on the same port serves `candle1m`
(the candle of the market's own trades once a second and once more, `confirm` "1", at the
minute's end: `candles`); each path refuses the other's channels with 60018, as OKX does.
Text `ping` gets `pong`. A connection with nothing sent either
way for `idle_timeout_s` is closed with 4004; more than `connects_per_s` handshakes per
second from one IP get HTTP 429.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from sim import okx_format
from sim.candles import CandleFeed
from sim.limits import SlidingWindow
from sim.live_faults import (
    SNAPSHOT_KINDS, SUBSCRIBE_KINDS, Cut, FaultBoard, Frame, IncrementFaults, half_body, showable,
)  # fmt: skip
from sim.live_market import LiveMarket
from sim.market import Step, Unit, Window
from sim.okx_format import BooksFeed, Message, TickerFeed
from sim.peer import Peer
from sim.rest import parse_target, respond, respond_json
from sim.settings import OkxSettings

WS_PATH = "/ws/v5/public"
CHANNELS = ("books", "trades", "tickers")
BUSINESS_PATH = "/ws/v5/business"
BUSINESS_CHANNELS = (okx_format.CANDLE_CHANNEL,)
BOOKS_MAX = 400
BOOKS_FULL_MAX = 5000
MS = 1_000_000


@dataclass(eq=False)
class _Books:
    """One `books` subscription: its own feed (own snapshot and sequence), message faults, last seqId sent."""

    feed: BooksFeed
    faults: IncrementFaults = field(default_factory=lambda: IncrementFaults("okx"))
    last_seq: int = -1


@dataclass(eq=False)
class _Client:
    peer: Peer
    conn_id: str
    heard: float  # loop time of the last message from the client
    subs: dict[tuple[str, str], _Books | None] = field(default_factory=dict)
    channels: tuple[str, ...] = CHANNELS  # what its URL serves: public or business


@dataclass
class _BookRead:
    read_at: float  # loop time
    ts_ms: int
    bids: list[Unit]
    asks: list[Unit]


class OkxVenue:
    """The OKX side of the exchange: answers requests and fans the market out to its clients."""

    def __init__(
        self,
        settings: OkxSettings,
        markets: dict[str, LiveMarket],
        faults: FaultBoard,
        now_ns: Callable[[], int],
        seed: int,
    ) -> None:
        self._settings, self._markets, self._faults, self._now_ns = settings, markets, faults, now_ns
        self._subs: dict[tuple[str, str], dict[_Client, _Books | None]] = {}  # (channel, instId) -> clients
        self._tickers = {symbol: TickerFeed(live.market.spec) for symbol, live in markets.items()}
        self._candles = {symbol: _candle_feed(live) for symbol, live in markets.items()}
        self._shift = dict.fromkeys(markets, 0)  # seqId = update id - shift
        self._full: dict[str, _BookRead] = {}
        self._books_limit = SlidingWindow(settings.books_per_2s, 2.0)
        self._full_limit = SlidingWindow(settings.books_full_per_2s, 2.0)
        self._connects = SlidingWindow(settings.connects_per_s, 1.0)
        self._conn_ids = random.Random(f"okx-conn:{seed}")
        self.connections = 0

    # ----- the market -----

    def on_step(self, live: LiveMarket, step: Step) -> None:
        """Trades of one step, told at the step's time; the ticker keeps count."""
        spec = live.market.spec
        for fill in step.trades:
            self._tickers[live.symbol].on_trade(fill)
            if self._subs.get(("trades", live.symbol)):
                self._send(("trades", live.symbol), okx_format.trade(spec, fill))

    def on_window(self, live: LiveMarket, window: Window) -> None:
        """Each books subscription's message for the window, then the ticker if the window traded or moved the top."""
        self._publish_candles(live, window)
        ts_ms = window.end_ns // MS
        books = self._subs.get(("books", live.symbol))
        if books:
            self._publish_books(live, window, books, ts_ms)
        if self._subs.get(("tickers", live.symbol)) and any(s.trades or s.top is not None for s in window.steps):
            self._send(("tickers", live.symbol), self._tickers[live.symbol].message(live.market.top(), ts_ms))

    def _publish_candles(self, live: LiveMarket, window: Window) -> None:
        """Follow every window's trades (subscribed or not), push what is due to `candle1m` subscribers."""
        pushes = self._candles[live.symbol].on_window(window)
        key = (okx_format.CANDLE_CHANNEL, live.symbol)
        if pushes and self._subs.get(key):
            for push in pushes:
                self._send(key, okx_format.candle(live.market.spec, push))

    def peers_of(self, symbol: str) -> set[Peer]:
        """Every connection subscribed to a channel of `symbol`."""
        channels = (*CHANNELS, *BUSINESS_CHANNELS)
        return {client.peer for channel in channels for client in self._subs.get((channel, symbol), ())}

    def _publish_books(
        self, live: LiveMarket, window: Window, books: dict[_Client, _Books | None], ts_ms: int
    ) -> None:
        symbol = live.symbol
        out: list[tuple[_Client, _Books, Message, bool]] = []
        for client, sub in books.items():
            assert sub is not None
            if sub.feed.seq_id < 0:
                out.append((client, sub, sub.feed.snapshot(ts_ms), False))
            else:
                message = sub.feed.update(window, ts_ms)
                entry = message["data"][0]
                out.append((client, sub, message, entry["prevSeqId"] != entry["seqId"]))
        increments = [message for _, _, message, increment in out if increment]
        kind = None
        if increments and not any(sub.faults.holding for _, sub, _, _ in out):
            kinds = set.intersection(*(set(showable("okx", message)) for message in increments))
            kind = self._faults.take("okx", symbol, kinds)
            if kind == "seq_reset":
                self._reset_sequence(live)
                kind = None
            elif kind is not None:
                self._faults.record("okx", symbol, kind, f"seqId={live.market.update_id - self._shift[symbol]}")
        for client, sub, message, increment in out:
            self._stamp(symbol, sub, message)
            for frame in sub.faults.frames(message, kind if increment else None):
                client.peer.push(_render(frame))

    def _reset_sequence(self, live: LiveMarket) -> None:
        """Make this window's seqIds half of what they were: seqId < prevSeqId, a legal reset."""
        symbol, update_id = live.symbol, live.market.update_id
        old = update_id - self._shift[symbol]
        self._shift[symbol] = update_id - old // 2
        detail = f"seqId {old // 2} after about {old}; from now on seqId = update id - {self._shift[symbol]}"
        self._faults.record("okx", symbol, "seq_reset", detail)

    def _stamp(self, symbol: str, sub: _Books, message: Message) -> None:
        """Put the subscription's wire sequence on a feed message: seqId shifted, prevSeqId the last one sent."""
        entry = message["data"][0]
        entry["seqId"] -= self._shift[symbol]
        if entry["prevSeqId"] != -1:
            entry["prevSeqId"] = sub.last_seq
        sub.last_seq = entry["seqId"]

    def _send(self, key: tuple[str, str], message: Message) -> None:
        text = okx_format.encode(message)
        for client in self._subs.get(key, ()):
            client.peer.push(text)

    # ----- HTTP -----

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """REST answers; for the websocket path, None (go on with the handshake) or 429 past the attempt limit."""
        path, params = parse_target(request.path)
        ip = connection.remote_address[0]
        now = asyncio.get_running_loop().time()
        if path in (WS_PATH, BUSINESS_PATH):
            if not self._connects.allow(ip, now):
                return respond_json(429, okx_format.rest_error("50011", "Too Many Requests"))
            return None
        if path == "/api/v5/market/books":
            return await self._books(ip, params, now, full=False)
        if path == "/api/v5/market/books-full":
            return await self._books(ip, params, now, full=True)
        return respond(404, "Not Found", content_type="text/plain")

    async def _books(self, ip: str, params: dict[str, str], now: float, *, full: bool) -> Response:
        limit = self._full_limit if full else self._books_limit
        if not limit.allow(ip, now):
            return respond_json(429, okx_format.rest_error("50011", "Too Many Requests"))
        symbol = params.get("instId", "")
        if symbol not in self._markets:
            return respond_json(200, okx_format.rest_error("51001", "Instrument ID does not exist."))
        try:
            size = min(int(params.get("sz", "1")), BOOKS_FULL_MAX if full else BOOKS_MAX)
            if size < 1:
                raise ValueError
        except ValueError:
            return respond_json(200, okx_format.rest_error("51000", "Parameter sz error"))
        kind = self._faults.take("okx", symbol, SNAPSHOT_KINDS)
        if kind is not None:
            self._faults.record("okx", symbol, kind, "books-full" if full else "books")
        if kind == "fail_snapshot":
            return respond_json(500, okx_format.rest_error("50026", "System error. Try again later."))
        if kind == "limit_snapshot":
            return respond_json(429, okx_format.rest_error("50011", "Too Many Requests"))
        if kind == "ban_snapshot":
            retry_after = [("Retry-After", str(self._faults.settings.ban_snapshot_s))]
            return respond_json(418, okx_format.rest_error("50011", "Too Many Requests"), retry_after)
        book = self._full_book(symbol, now) if full else self._read(symbol, now, BOOKS_MAX)
        spec = self._markets[symbol].market.spec
        body = okx_format.encode(okx_format.rest_books(spec, book.bids[:size], book.asks[:size], book.ts_ms, full=full))
        if kind == "bad_snapshot_body":
            body = half_body(body)
        if kind == "slow_snapshot":
            await asyncio.sleep(self._faults.settings.slow_snapshot_s)
        return respond(200, body)

    def _full_book(self, symbol: str, now: float) -> _BookRead:
        book = self._full.get(symbol)
        if book is None or now - book.read_at >= self._settings.books_full_refresh_s:
            book = self._full[symbol] = self._read(symbol, now, BOOKS_FULL_MAX)
        return book

    def _read(self, symbol: str, now: float, depth: int) -> _BookRead:
        """The true book at this whole millisecond, so that `ts` maps back to its update id."""
        ts_ms = self._now_ns() // MS
        live = self._markets[symbol]
        bids, asks = live.market.book_units_at(live.update_id_at(ts_ms * MS), depth)
        return _BookRead(now, ts_ms, bids, asks)

    # ----- websocket -----

    async def handler(self, connection: ServerConnection) -> None:
        """One websocket connection, from the handshake to its close."""
        loop = asyncio.get_running_loop()
        conn_id = f"{self._conn_ids.getrandbits(32):08x}"
        client = _Client(Peer(connection), conn_id, loop.time(), channels=_served_channels(connection))
        self.connections += 1
        tasks = [asyncio.create_task(client.peer.run()), asyncio.create_task(self._watch_idle(client))]
        try:
            async for message in connection:
                client.heard = loop.time()
                text = message if isinstance(message, str) else message.decode(errors="replace")
                if text == "ping":
                    client.peer.push("pong")
                else:
                    self._answer(client, text)
        except ConnectionClosed:
            pass
        finally:
            self.connections -= 1
            for key in client.subs:
                self._subs[key].pop(client, None)
            for task in tasks:
                task.cancel()

    def _answer(self, client: _Client, text: str) -> None:
        """Subscribe and unsubscribe, one acknowledgement or error per argument."""
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            request = None
        if (
            not isinstance(request, dict)
            or request.get("op") not in ("subscribe", "unsubscribe")
            or not isinstance(request.get("args"), list)
        ):
            error = okx_format.ws_error("60012", f"Invalid request: {text}", client.conn_id)
            client.peer.push(okx_format.encode(error))
            return
        op = request["op"]
        for arg in request["args"]:
            channel, symbol = (arg.get("channel"), arg.get("instId")) if isinstance(arg, dict) else (None, None)
            if channel not in client.channels or symbol not in self._markets:
                msg = (
                    f"Wrong URL or channel:{channel},instId:{symbol} doesn't exist. "
                    "Please use the correct URL, channel and parameters referring to API document."
                )
                reply = okx_format.ws_error("60018", msg, client.conn_id)
            elif op == "subscribe" and channel == "books" and self._refuse_books(symbol, client):
                reply = okx_format.ws_error("60012", f"Invalid request: {text}", client.conn_id)
            else:
                key = (channel, symbol)
                if op == "unsubscribe":
                    client.subs.pop(key, None)
                    self._subs.get(key, {}).pop(client, None)
                elif key not in client.subs:
                    sub = _Books(BooksFeed(self._markets[symbol].market)) if channel == "books" else None
                    client.subs[key] = sub
                    self._subs.setdefault(key, {})[client] = sub
                reply = okx_format.subscribed(channel, symbol, client.conn_id, event=op)
            if "id" in request:
                reply["id"] = request["id"]
            client.peer.push(okx_format.encode(reply))

    def _refuse_books(self, symbol: str, client: _Client) -> bool:
        """A new `books` subscription meets an armed subscribe_error: it is refused (and recorded)."""
        if ("books", symbol) in client.subs or not self._faults.take("okx", symbol, SUBSCRIBE_KINDS):
            return False
        self._faults.record("okx", symbol, "subscribe_error", f"connId={client.conn_id}")
        return True

    async def _watch_idle(self, client: _Client) -> None:
        """Close the connection once nothing has gone either way for `idle_timeout_s`."""
        loop = asyncio.get_running_loop()
        idle = self._settings.idle_timeout_s
        while True:
            wait = max(client.peer.last_push, client.heard) + idle - loop.time()
            if wait <= 0:
                await client.peer.connection.close(4004, f"No data received in {idle:g}s")
                return
            await asyncio.sleep(wait)


def _served_channels(connection: ServerConnection) -> tuple[str, ...]:
    """The channels of the connection's URL: `/ws/v5/business` serves candles, `/ws/v5/public` the rest."""
    path, _ = parse_target(connection.request.path)  # type: ignore[union-attr]
    return BUSINESS_CHANNELS if path == BUSINESS_PATH else CHANNELS


def _candle_feed(live: LiveMarket) -> CandleFeed:
    """Candles from the first drawn window on, the best bid standing in for a last price until a trade."""
    return CandleFeed(live.pending.start_ns // MS, live.market.top()[0], okx_format.CANDLE_PUSH_MS)


def _render(frame: Frame) -> str:
    if isinstance(frame, Cut):
        text = okx_format.encode(frame.message)
        return text[: len(text) // 2]
    return okx_format.encode(frame)
