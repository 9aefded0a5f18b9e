"""Binance spot public market data on one port: REST depth and exchangeInfo, and the websocket streams.

REST (answered in websockets' `process_request`, see `rest`):
- `GET /api/v3/depth?symbol=BTCUSDT&limit=N`: limit 1..5000 (more is cut to 5000), weight
  5/25/50/250 by limit, `x-mbx-used-weight` and `x-mbx-used-weight-1m` on every answer,
  429 and 418 with `Retry-After` as `limits.RequestWeights` decides (and as the snapshot
  faults say).
- `GET /api/v3/exchangeInfo[?symbol=..|?symbols=[..]]`: weight 20.

Websocket: `/ws/<stream>` (raw payloads), `/stream?streams=a/b/c` (the combined envelope),
and either without streams, subscribing later with `SUBSCRIBE` / `UNSUBSCRIBE` /
`LIST_SUBSCRIPTIONS`. Streams: `<sym>@depth@100ms`, `<sym>@trade`, `<sym>@aggTrade`,
`<sym>@bookTicker`, `<sym>@kline_1m` (the candle of the market's own trades every 2 s and
once more, closed, at the minute's end: `candles`); an unknown stream in the URL is
refused with HTTP 400. The server pings every `ping_interval_s` and closes (1008) a
connection that leaves a ping unanswered for `pong_timeout_s`; more than `messages_per_s` incoming messages in a second
close it too (pongs are answered inside websockets and are not counted). At the end of
`lifetime_s` it sends `{"e":"serverShutdown","E":ms}` (no envelope) and closes with 1001.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from sim import binance_format
from sim.binance_format import DEPTH_STREAM, KLINE_PUSH_MS, KLINE_STREAM, Message, stream_name, wire_symbol
from sim.candles import CandleFeed
from sim.limits import RequestWeights, SlidingWindow, Verdict, binance_depth_weight
from sim.live_faults import SNAPSHOT_KINDS, Cut, FaultBoard, Frame, IncrementFaults, half_body, showable
from sim.live_market import LiveMarket
from sim.market import Step, Window
from sim.peer import Peer
from sim.rest import parse_target, respond, respond_json
from sim.settings import BinanceSettings

CHANNELS = (DEPTH_STREAM, "trade", "aggTrade", "bookTicker", KLINE_STREAM)
MAX_DEPTH = 5000
EXCHANGE_INFO_WEIGHT = 20
METHODS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`"


class _Client:
    """One websocket connection: its peer, whether it gets the combined envelope, and its streams."""

    def __init__(self, peer: Peer, combined: bool) -> None:
        self.peer, self.combined = peer, combined
        self.streams: set[str] = set()

    def render(self, frame: Frame) -> str:
        if isinstance(frame, Cut):
            text = self.render(frame.message)
            return text[: len(text) // 2]
        return binance_format.encode(frame if self.combined else frame["data"])


class BinanceVenue:
    """The Binance side of the exchange: answers requests and fans the market out to its clients."""

    def __init__(
        self,
        settings: BinanceSettings,
        markets: dict[str, LiveMarket],
        faults: FaultBoard,
        now_ns: Callable[[], int],
    ) -> None:
        self._settings, self._markets, self._faults, self._now_ns = settings, markets, faults, now_ns
        self._by_wire = {wire_symbol(symbol): symbol for symbol in markets}
        self._known = {stream_name(symbol, channel): symbol for symbol in markets for channel in CHANNELS}
        self._clients: dict[str, set[_Client]] = {}  # stream -> subscribers
        self._increments = {symbol: IncrementFaults("binance") for symbol in markets}
        self._candles = {symbol: _candle_feed(live) for symbol, live in markets.items()}
        self._weights = RequestWeights(settings.weight_limit, ban_s=settings.ban_s)
        self._incoming = SlidingWindow(settings.messages_per_s, 1.0)
        self.connections = 0

    # ----- the market -----

    def on_step(self, live: LiveMarket, step: Step) -> None:
        """Trades and the new top of one step, told at the step's time."""
        spec = live.market.spec
        for fill in step.trades:
            if self._clients.get(stream_name(spec.symbol, "trade")):
                self._send(binance_format.trade(spec, fill))
            if self._clients.get(stream_name(spec.symbol, "aggTrade")):
                self._send(binance_format.agg_trade(spec, fill))
        if step.top is not None and self._clients.get(stream_name(spec.symbol, "bookTicker")):
            self._send(binance_format.book_ticker(spec, step.update_id, step.top))

    def on_window(self, live: LiveMarket, window: Window) -> None:
        """The window's depth diff, through any armed message fault; quiet windows send nothing."""
        self._publish_klines(live, window)
        diff = binance_format.depth_update(live.market.spec, window)
        if diff is None or not self._clients.get(diff["stream"]):
            return
        increments = self._increments[live.symbol]
        kind = None if increments.holding else self._faults.take("binance", live.symbol, showable("binance", diff))
        if kind is not None:
            self._faults.record("binance", live.symbol, kind, f"U={diff['data']['U']} u={diff['data']['u']}")
        for frame in increments.frames(diff, kind):
            self._send(frame, diff["stream"])

    def _publish_klines(self, live: LiveMarket, window: Window) -> None:
        """Follow every window's trades (subscribed or not), push what is due to `@kline_1m` subscribers."""
        spec = live.market.spec
        pushes = self._candles[live.symbol].on_window(window)
        if pushes and self._clients.get(stream_name(spec.symbol, KLINE_STREAM)):
            for push in pushes:
                self._send(binance_format.kline(spec, push))

    def peers_of(self, symbol: str) -> set[Peer]:
        """Every connection carrying a stream of `symbol`."""
        return {
            client.peer
            for channel in CHANNELS
            for client in self._clients.get(stream_name(symbol, channel), ())
        }

    def _send(self, frame: Frame, stream: str | None = None) -> None:
        name = stream or frame["stream"]  # type: ignore[index]
        texts: dict[bool, str] = {}
        for client in self._clients.get(name, ()):
            if client.combined not in texts:
                texts[client.combined] = client.render(frame)
            client.peer.push(texts[client.combined])

    # ----- HTTP -----

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """REST answers; for websocket paths, None (go on with the handshake) or 400 for unknown streams."""
        path, params = parse_target(request.path)
        ip = connection.remote_address[0]
        if path == "/api/v3/depth":
            return await self._depth(ip, params)
        if path == "/api/v3/exchangeInfo":
            return self._exchange_info(ip, params)
        if path.startswith(("/ws", "/stream")):
            try:
                self._url_streams(path, params)
            except ValueError as exc:
                return respond_json(400, binance_format.error(-1100, str(exc)))
            return None
        return respond_json(404, binance_format.error(-1000, f"Unknown path {path}."))

    async def _depth(self, ip: str, params: dict[str, str]) -> Response:
        try:
            limit = int(params.get("limit", "100"))
            if limit < 1:
                raise ValueError
        except ValueError:
            return _bad_request(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.")
        verdict = self._weights.charge(ip, binance_depth_weight(limit), time.time())
        if verdict.status != 200:
            return self._refused(verdict, ip)
        headers = _weight_headers(verdict.used)
        symbol = self._symbol(params.get("symbol"))
        if symbol is None:
            return _bad_request(-1121, "Invalid symbol.", headers)
        kind = self._faults.take("binance", symbol, SNAPSHOT_KINDS)
        if kind is not None:
            self._faults.record("binance", symbol, kind)
        if kind == "fail_snapshot":
            body = binance_format.error(-1001, "Internal error; unable to process your request. Please try again.")
            return respond_json(500, body, headers)
        if kind == "limit_snapshot":
            return self._refused(Verdict(429, verdict.used, 1), ip)
        if kind == "ban_snapshot":
            return self._refused(Verdict(418, verdict.used, self._faults.settings.ban_snapshot_s), ip)
        live = self._markets[symbol]
        update_id = live.update_id_at(self._now_ns())
        body = binance_format.encode(binance_format.depth_snapshot(live.market, update_id, min(limit, MAX_DEPTH)))
        if kind == "bad_snapshot_body":
            body = half_body(body)
        if kind == "slow_snapshot":
            await asyncio.sleep(self._faults.settings.slow_snapshot_s)
        return respond(200, body, headers)

    def _exchange_info(self, ip: str, params: dict[str, str]) -> Response:
        verdict = self._weights.charge(ip, EXCHANGE_INFO_WEIGHT, time.time())
        if verdict.status != 200:
            return self._refused(verdict, ip)
        headers = _weight_headers(verdict.used)
        try:
            wanted = [params["symbol"]] if "symbol" in params else orjson.loads(params.get("symbols", "null"))
        except orjson.JSONDecodeError:
            return _bad_request(-1100, "Illegal characters found in parameter 'symbols'.", headers)
        symbols = list(self._markets) if wanted is None else [self._symbol(name) for name in wanted]
        if None in symbols:
            return _bad_request(-1121, "Invalid symbol.", headers)
        specs = [self._markets[symbol].market.spec for symbol in symbols if symbol is not None]
        body = binance_format.exchange_info(specs, self._now_ns() // 1_000_000, self._settings.weight_limit)
        return respond_json(200, body, headers)

    def _refused(self, verdict: Verdict, ip: str) -> Response:
        headers = [*_weight_headers(verdict.used), ("Retry-After", str(verdict.retry_after))]
        if verdict.status == 429:
            msg = (
                f"Too many requests; current limit of IP({ip}) request weight is {self._settings.weight_limit} "
                "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
            )
        else:
            until = time.time_ns() // 1_000_000 + verdict.retry_after * 1000
            msg = (
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans."
            )
        return respond_json(verdict.status, binance_format.error(-1003, msg), headers)

    def _symbol(self, wire: str | None) -> str | None:
        return self._by_wire.get(wire or "")

    def _url_streams(self, path: str, params: dict[str, str]) -> tuple[bool, list[str]]:
        """(combined, streams) of a websocket URL; ValueError names what is wrong with it."""
        if path in ("/ws", "/ws/"):
            return False, []
        if path.startswith("/ws/"):
            names = [path[len("/ws/") :]]
            combined = False
        elif path in ("/stream", "/stream/"):
            names = [name for name in params.get("streams", "").split("/") if name]
            combined = True
        else:
            raise ValueError(f"Invalid request: unknown path {path}")
        unknown = [name for name in names if name not in self._known]
        if unknown:
            served = ", ".join(sorted(self._known))
            raise ValueError(f"Invalid request: unknown stream {unknown[0]}; served: {served}")
        return combined, names

    # ----- websocket -----

    async def handler(self, connection: ServerConnection) -> None:
        """One websocket connection, from the handshake to its close."""
        path, params = parse_target(connection.request.path)  # type: ignore[union-attr]
        combined, names = self._url_streams(path, params)
        client = _Client(Peer(connection), combined)
        self._subscribe(client, names)
        self.connections += 1
        sender = asyncio.create_task(client.peer.run())
        keepalive = asyncio.create_task(self._keepalive(connection))
        tasks = [sender, keepalive, asyncio.create_task(self._expire(client.peer))]
        loop = asyncio.get_running_loop()
        try:
            async for message in connection:
                if not self._incoming.allow(client, loop.time()):
                    client.peer.close_after_outbox(1008, "Too many messages")
                    await sender  # the replies already due go out first
                    break
                text = message if isinstance(message, str) else message.decode(errors="replace")
                client.peer.push(binance_format.encode(self._answer(client, text)))
        except ConnectionClosed:
            pass
        finally:
            self.connections -= 1
            self._unsubscribe(client, list(client.streams))
            self._incoming.forget(client)
            for task in tasks:
                task.cancel()

    def _answer(self, client: _Client, text: str) -> Message:
        """The reply to SUBSCRIBE, UNSUBSCRIBE or LIST_SUBSCRIPTIONS, or Binance's error reply to anything else."""
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return _method_error(None, 3, "Invalid JSON: expected value at line 1 column 1")
        if not isinstance(request, dict) or "method" not in request:
            return _method_error(None, 2, "Invalid request: missing field `method`")
        request_id, method, params = request.get("id"), request["method"], request.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(client.streams), "id": request_id}
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            unknown_method = f"Invalid request: unknown variant `{method}`, expected one of {METHODS}"
            return _method_error(request_id, 2, unknown_method)
        unknown = [name for name in params if name not in self._known] if isinstance(params, list) else [params]
        if unknown:
            return _method_error(request_id, 2, f"Invalid request: unknown stream {unknown[0]}")
        if method == "SUBSCRIBE":
            self._subscribe(client, params)
        else:
            self._unsubscribe(client, params)
        return {"result": None, "id": request_id}

    def _subscribe(self, client: _Client, names: list[str]) -> None:
        for name in names:
            client.streams.add(name)
            self._clients.setdefault(name, set()).add(client)

    def _unsubscribe(self, client: _Client, names: list[str]) -> None:
        for name in names:
            client.streams.discard(name)
            self._clients.get(name, set()).discard(client)

    async def _keepalive(self, connection: ServerConnection) -> None:
        """Ping every `ping_interval_s`; close a connection whose oldest unanswered ping is `pong_timeout_s` old."""
        loop = asyncio.get_running_loop()
        unanswered: deque[tuple[float, Awaitable[float]]] = deque()
        try:
            while True:
                await asyncio.sleep(self._settings.ping_interval_s)
                unanswered.append((loop.time(), await connection.ping()))
                while unanswered and unanswered[0][1].done():  # type: ignore[attr-defined]
                    unanswered.popleft()
                if unanswered and loop.time() - unanswered[0][0] >= self._settings.pong_timeout_s:
                    await connection.close(1008, "Pong timeout")
                    return
        except ConnectionClosed:
            return

    async def _expire(self, peer: Peer) -> None:
        """End the connection's life: `serverShutdown`, then a close once it has gone out."""
        await asyncio.sleep(self._settings.lifetime_s)
        peer.push(binance_format.encode(binance_format.server_shutdown(self._now_ns() // 1_000_000)))
        peer.close_after_outbox(1001, "Connection lifetime expired")


def _candle_feed(live: LiveMarket) -> CandleFeed:
    """Candles from the first drawn window on, the best bid standing in for a last price until a trade."""
    return CandleFeed(live.pending.start_ns // 1_000_000, live.market.top()[0], KLINE_PUSH_MS)


def _weight_headers(used: int) -> list[tuple[str, str]]:
    return [("x-mbx-used-weight", str(used)), ("x-mbx-used-weight-1m", str(used))]


def _bad_request(code: int, msg: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return respond_json(400, binance_format.error(code, msg), headers or [])


def _method_error(request_id: object, code: int, msg: str) -> Message:
    return {"error": {"code": code, "msg": msg}, "id": request_id}
