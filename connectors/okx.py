"""OKX v5 source: `books`, `trades` and `tickers` live, `candle1m`, and `books-full` deep refreshes.

Per book: one websocket to the public endpoint subscribed to `books`, `trades` and
`tickers`, and one to the business endpoint subscribed to `candle1m` (OKX serves candles
only there since June 2023). Each sends the text `ping` whenever it has been quiet for
`ping_after_s` (the server drops silent connections after 30 s), is replaced when it sends
nothing for `silence_s`, and is reopened whenever it ends. Connection attempts share a
budget of 3 per second per IP; subscribe/unsubscribe requests 480 an hour per connection.
An error reply (a refused subscription) is logged and counted; book_sync's watchdog asks
again.

Actions (`ResyncRequest.action`) act on the public socket: `snapshot` and `resubscribe`
unsubscribe and subscribe `books`, which brings a fresh snapshot; `reconnect` closes the
connection, and the new one subscribes afresh.

Deep levels: `GET /api/v5/market/books-full?sz=5000` every `deep_interval_s` per book,
through a shared budget of 10 requests per 2 s, so all books together stay inside it.

Unit of parallelism, snapshot and delivery: see `connectors.live_source`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from connectors.control import ControlBus
from connectors.limits import WindowBudget
from connectors.live_source import (
    BUSINESS, PUBLIC, SILENCE_S, Emit, LiveFeed, RestClient, SilenceWatch, connect_websocket, reconnect_forever,
)  # fmt: skip
from connectors.metrics import CONNECTIONS, SUBSCRIBE_ERRORS
from schemas.events import ResyncRequest
from schemas.raw import RawEvent

log = logging.getLogger(__name__)

PUBLIC_CHANNELS = ("books", "trades", "tickers")
BUSINESS_CHANNELS = ("candle1m",)
PING_AFTER_S = 20.0


def connect_budget() -> WindowBudget:
    """At most 3 connection attempts per second per IP."""
    return WindowBudget(budget=3, window_s=1.0, spread_s=0.2)


def books_full_budget() -> WindowBudget:
    """books-full: 10 requests per 2 s per IP, shared by every OKX book of this process."""
    return WindowBudget(budget=10, window_s=2.0, spread_s=0.1)


def op_budget() -> WindowBudget:
    """subscribe / unsubscribe / login: 480 requests an hour per connection."""
    return WindowBudget(budget=480, window_s=3600.0, spread_s=0.0)


@dataclass(frozen=True, slots=True)
class OkxEndpoints:
    rest: str = "https://www.okx.com"
    ws: str = "wss://ws.okx.com:8443/ws/v5/public"
    business_ws: str = "wss://ws.okx.com:8443/ws/v5/business"


class _OkxSocket:
    """One websocket of a book, reopened whenever it ends: subscribe, emit, ping when quiet."""

    def __init__(
        self,
        *,
        key: str,
        endpoint: str,
        url: str,
        channels: tuple[str, ...],
        conn_numbers: Iterator[int],
        connects: WindowBudget,
        ping_after_s: float,
        silence_s: float,
    ) -> None:
        self.key, self.endpoint, self.url, self.channels = key, endpoint, url, channels
        self.symbol = key.partition(":")[2]
        self._tag = "#" if endpoint == PUBLIC else "#b"
        self._conn_numbers, self._connects = conn_numbers, connects
        self.ping_after_s, self.silence_s = ping_after_s, silence_s
        self._ws: ClientConnection | None = None
        self._ops = op_budget()
        self._quiet_since = time.monotonic()

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        await reconnect_forever(
            self.key, self.endpoint, lambda: self._serve(emit), stop, before_attempt=lambda: self._connects.acquire(1)
        )

    async def resubscribe(self, channels: tuple[str, ...]) -> None:
        """Unsubscribe and subscribe `channels` again; without a connection the next one subscribes anyway."""
        ws = self._ws
        if ws is not None:
            await self._send(ws, "unsubscribe", channels)
            await self._send(ws, "subscribe", channels)
            log.info("%s: %s re-subscribed", self.key, "/".join(channels))

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close(1000, "reconnect requested")

    async def _serve(self, emit: Emit) -> None:
        conn = f"{self.key}{self._tag}{next(self._conn_numbers)}"
        async with connect_websocket(self.url) as ws, SilenceWatch(ws, self.silence_s) as watch:
            log.info("%s: connected (%s, %s)", self.key, conn, self.endpoint)
            CONNECTIONS.labels(self.key, self.endpoint).inc()
            self._ws, self._ops = ws, op_budget()
            self._quiet_since = time.monotonic()
            keepalive = asyncio.create_task(self._keep_alive(ws))
            try:
                await self._send(ws, "subscribe", self.channels)
                async for text in ws:
                    watch.heard()
                    self._quiet_since = time.monotonic()
                    emit(RawEvent(time.time_ns(), "okx", conn, "ws", None, self.url, str(text)))
                    if str(text).startswith('{"event":"error"'):
                        log.warning("%s: %s answered an error: %.300s", self.key, conn, text)
                        SUBSCRIBE_ERRORS.labels(self.key).inc()
            finally:
                keepalive.cancel()
                self._ws = None

    async def _send(self, ws: ClientConnection, op: str, channels: tuple[str, ...]) -> None:
        await self._ops.acquire(1)
        args = [{"channel": channel, "instId": self.symbol} for channel in channels]
        await ws.send(orjson.dumps({"op": op, "args": args}).decode())
        self._quiet_since = time.monotonic()

    async def _keep_alive(self, ws: ClientConnection) -> None:
        """The text `ping` whenever nothing has gone either way for `ping_after_s`, until the connection ends."""
        try:
            while True:
                wait = self._quiet_since + self.ping_after_s - time.monotonic()
                if wait <= 0:
                    await ws.send("ping")
                    self._quiet_since = time.monotonic()
                else:
                    await asyncio.sleep(wait)
        except ConnectionClosed:
            return


class OkxFeed(LiveFeed):
    """Everything one OKX book needs from the exchange."""

    def __init__(
        self,
        symbol: str,
        endpoints: OkxEndpoints,
        *,
        connects: WindowBudget,
        deep_requests: WindowBudget,
        control: ControlBus,
        deep_interval_s: float | None = 1.0,
        ping_after_s: float = PING_AFTER_S,
        silence_s: float = SILENCE_S,
    ) -> None:
        key = f"okx:{symbol}"
        super().__init__(venue="okx", symbol=symbol, control=control, rest=RestClient(key, deep_requests))
        self.deep_url = f"{endpoints.rest}/api/v5/market/books-full?instId={symbol}&sz=5000"
        self.deep_interval_s = deep_interval_s
        # A quiet socket (candles in a calm minute) must ping well before it counts as silent.
        ping_after_s = min(ping_after_s, silence_s / 2)
        numbers = itertools.count(1)  # one count for both sockets: #1, #b2, #3, ...
        self.public, self.business = (
            _OkxSocket(
                key=key, endpoint=endpoint, url=url, channels=channels, conn_numbers=numbers, connects=connects,
                ping_after_s=ping_after_s, silence_s=silence_s,
            )
            for endpoint, url, channels in (
                (PUBLIC, endpoints.ws, PUBLIC_CHANNELS), (BUSINESS, endpoints.business_ws, BUSINESS_CHANNELS)
            )
        )

    def tasks(self, emit: Emit, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        work = [self.public.run(emit, stop), self.business.run(emit, stop)]
        if self.deep_interval_s:
            work.append(self._deep_refreshes(emit))
        return work

    async def act(self, request: ResyncRequest) -> None:
        if request.action == "reconnect":
            await self.public.close()
        else:
            await self.public.resubscribe(("books",))

    async def _deep_refreshes(self, emit: Emit) -> None:
        assert self.deep_interval_s is not None
        while True:
            started = time.monotonic()
            await self.fetch(self.deep_url, cost=1, emit=emit)
            await asyncio.sleep(max(0.0, self.deep_interval_s - (time.monotonic() - started)))
