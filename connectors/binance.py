"""Binance spot source: the diff-depth, trade, bookTicker and 1 m kline streams plus REST snapshots.

Per book: one combined-stream websocket (`<sym>@depth@100ms/<sym>@trade/<sym>@bookTicker/
<sym>@kline_1m`) and REST `/api/v3/depth` snapshots, asked for once the first connection is
open (as Binance's local-book recipe says: open the stream, then fetch) and again whenever
book_sync asks over the control bus. Snapshots go through the venue's shared
weight budget (250 of 6000 a minute at limit 5000), which reads `x-mbx-used-weight-1m`;
`connectors.live_source.RestClient` honours Retry-After and bans. Connection attempts share
a budget of 300 per 5 minutes per IP, and messages to a connection 5 a second.

Actions (`ResyncRequest.action`): `snapshot` fetches a snapshot (book_sync also asks for
these while in sync, to audit the book); `resubscribe` sends `UNSUBSCRIBE` and `SUBSCRIBE`
of the book's streams on its connections, then fetches a snapshot; `reconnect` closes the
book's connections, and the snapshot follows once a new one is open.

A connection lives at most 24 h: well before that (or at `serverShutdown`) a second
connection is opened and both run until the new one delivers, so no update is missed;
the overlap's repeats are dropped by book_sync (u <= last applied u). The library
answers the server's pings; a connection that sends nothing for `silence_s` is replaced.

Unit of parallelism, snapshot and delivery: see `connectors.live_source`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from connectors.control import ControlBus
from connectors.limits import WindowBudget
from connectors.live_source import (
    PUBLIC, SILENCE_S, Emit, LiveFeed, RestClient, SilenceWatch, connect_websocket, reconnect_forever,
)  # fmt: skip
from connectors.metrics import CONNECTIONS
from schemas.events import ResyncRequest
from schemas.raw import RawEvent

log = logging.getLogger(__name__)

DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
STREAMS = ("depth@100ms", "trade", "bookTicker", "kline_1m")


def depth_weight(limit: int) -> int:
    """The request weight Binance charges for `/api/v3/depth` at this limit."""
    return next(weight for top, weight in DEPTH_WEIGHTS if limit <= top)


def weight_budget() -> WindowBudget:
    """The process-wide REST budget for Binance: 6000 weight per minute per IP."""
    return WindowBudget(budget=6000, window_s=60.0)


def connect_budget() -> WindowBudget:
    """At most 300 connection attempts per 5 minutes per IP, shared by every Binance book."""
    return WindowBudget(budget=300, window_s=300.0, spread_s=0.2)


def message_budget() -> WindowBudget:
    """At most 5 incoming messages per second per connection (more closes it)."""
    return WindowBudget(budget=5, window_s=1.0, spread_s=0.0)


@dataclass(frozen=True, slots=True)
class BinanceEndpoints:
    rest: str = "https://api.binance.com"
    ws: str = "wss://stream.binance.com:9443"


class BinanceFeed(LiveFeed):
    """Everything one Binance book needs from the exchange."""

    def __init__(
        self,
        venue: str,
        symbol: str,
        endpoints: BinanceEndpoints,
        *,
        weights: WindowBudget,
        connects: WindowBudget,
        control: ControlBus,
        depth_limit: int = 5000,
        rotate_after_s: float = 23.5 * 3600,
        silence_s: float = SILENCE_S,
    ) -> None:
        key = f"{venue}:{symbol}"
        super().__init__(venue=venue, symbol=symbol, control=control,
                         rest=RestClient(key, weights, on_headers=self._observe_weight))
        self.weights, self.connects = weights, connects
        self.depth_limit, self.rotate_after_s, self.silence_s = depth_limit, rotate_after_s, silence_s
        wire = symbol.replace("-", "")
        self.streams = [f"{wire.lower()}@{name}" for name in STREAMS]
        self.ws_url = f"{endpoints.ws}/stream?streams={'/'.join(self.streams)}"
        self.snapshot_url = f"{endpoints.rest}/api/v3/depth?symbol={wire}&limit={depth_limit}"
        self._connections = 0
        self._open: dict[ClientConnection, WindowBudget] = {}  # each open connection and its message budget
        self._request_ids = itertools.count(1)
        self._snapshot_wanted = asyncio.Event()
        self._snapshot_on_connect = False

    def tasks(self, emit: Emit, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        self._snapshot_on_connect = True  # open the stream first, then fetch the snapshot to bridge it
        serve = functools.partial(self._serve, emit, None)
        return [
            reconnect_forever(self.key, PUBLIC, serve, stop, before_attempt=lambda: self.connects.acquire(1)),
            self._snapshots(emit),
        ]

    async def act(self, request: ResyncRequest) -> None:
        if request.action == "reconnect":
            self._snapshot_on_connect = True
            for ws in list(self._open):
                await ws.close(1000, "reconnect requested")
            return
        if request.action == "resubscribe":
            for ws, messages in list(self._open.items()):
                with contextlib.suppress(ConnectionClosed):  # its successor subscribes by its URL
                    await self._resubscribe(ws, messages)
        self._snapshot_wanted.set()

    def _observe_weight(self, headers: Mapping[str, str]) -> None:
        used = headers.get("x-mbx-used-weight-1m")
        if used and used.isdigit():
            self.weights.observe_used(int(used))

    async def _resubscribe(self, ws: ClientConnection, messages: WindowBudget) -> None:
        for method in ("UNSUBSCRIBE", "SUBSCRIBE"):
            await messages.acquire(1)
            message = {"method": method, "params": self.streams, "id": next(self._request_ids)}
            await ws.send(orjson.dumps(message).decode())
        log.info("%s: streams re-subscribed", self.key)

    async def _serve(self, emit: Emit, delivered: asyncio.Event | None) -> None:
        """Read one connection until it ends; hand over to a successor before it must end."""
        self._connections += 1
        conn = f"{self.key}#{self._connections}"
        successor: asyncio.Task[None] | None = None
        successor_delivered = asyncio.Event()
        async with connect_websocket(self.ws_url) as ws, SilenceWatch(ws, self.silence_s) as watch:
            log.info("%s: connected (%s)", self.key, conn)
            CONNECTIONS.labels(self.key, PUBLIC).inc()
            self._open[ws] = message_budget()
            if self._snapshot_on_connect:
                self._snapshot_on_connect = False
                self._snapshot_wanted.set()
            opened = time.monotonic()
            try:
                async for text in ws:
                    watch.heard()
                    emit(RawEvent(time.time_ns(), self.venue, conn, "ws", None, self.ws_url, str(text)))
                    if delivered is not None:
                        delivered.set()
                        delivered = None
                    if successor is None and (
                        time.monotonic() - opened > self.rotate_after_s or '"serverShutdown"' in str(text)
                    ):
                        log.info("%s: %s is due to close; opening its successor", self.key, conn)
                        successor = asyncio.create_task(self._succeed(emit, successor_delivered))
                    if successor is not None and successor_delivered.is_set():
                        log.info("%s: successor delivering; closing %s", self.key, conn)
                        break
            finally:
                del self._open[ws]
        if successor is not None:
            await successor

    async def _succeed(self, emit: Emit, delivered: asyncio.Event) -> None:
        await self.connects.acquire(1)
        await self._serve(emit, delivered)

    async def _snapshots(self, emit: Emit) -> None:
        while True:
            await self._snapshot_wanted.wait()
            self._snapshot_wanted.clear()
            await self.fetch(self.snapshot_url, cost=depth_weight(self.depth_limit), emit=emit)
            log.info("%s: snapshot received", self.key)
