"""OKX v5 public source: `books`, `trades` and `tickers` live, plus `books-full` deep refreshes.

Per book: one websocket subscribed to the three channels. A resync request from book_sync
re-subscribes `books`, which brings a fresh snapshot. The text `ping` is sent whenever the
connection has been quiet for `ping_after_s` (the server drops silent connections after
30 s). Connection attempts share a budget of 3 per second per IP.

Deep levels: `GET /api/v5/market/books-full?sz=5000` every `deep_interval_s` per book,
through a shared budget of 10 requests per 2 s, so all books together stay inside it.

Unit of parallelism, snapshot and delivery: see `connectors.live_source`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import orjson
import requests
import websockets

from connectors.control import ControlBus
from connectors.limits import WindowBudget
from connectors.live_source import Emit, reconnect_forever
from connectors.metrics import CONNECTIONS, REST_FAILURES, RESYNC_REQUESTS
from schemas.raw import RawEvent

log = logging.getLogger(__name__)

CONTROL_POLL_S = 0.05


def connect_budget() -> WindowBudget:
    """At most 3 connection attempts per second per IP."""
    return WindowBudget(budget=3, window_s=1.0, spread_s=0.2)


def books_full_budget() -> WindowBudget:
    """books-full: 10 requests per 2 s per IP, shared by every OKX book of this process."""
    return WindowBudget(budget=10, window_s=2.0, spread_s=0.1)


@dataclass(frozen=True, slots=True)
class OkxEndpoints:
    rest: str = "https://www.okx.com"
    ws: str = "wss://ws.okx.com:8443/ws/v5/public"


class OkxFeed:
    """Everything one OKX book needs from the exchange."""

    def __init__(
        self,
        symbol: str,
        endpoints: OkxEndpoints,
        connects: WindowBudget,
        deep_requests: WindowBudget,
        control: ControlBus,
        deep_interval_s: float | None = 1.0,
        ping_after_s: float = 20.0,
    ) -> None:
        self.venue, self.symbol = "okx", symbol
        self.key = f"okx:{symbol}"
        self.ws_url = endpoints.ws
        self.deep_url = f"{endpoints.rest}/api/v5/market/books-full?instId={symbol}&sz=5000"
        self.connects, self.deep_requests, self.control = connects, deep_requests, control
        self.deep_interval_s = deep_interval_s
        self.ping_after_s = ping_after_s
        self._connections = 0
        self._last_heard = time.monotonic()
        self._session = requests.Session()

    def _op(self, op: str, channels: tuple[str, ...]) -> str:
        args = [{"channel": channel, "instId": self.symbol} for channel in channels]
        return orjson.dumps({"op": op, "args": args}).decode()

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._connect_forever(emit, stop))]
        if self.deep_interval_s:
            tasks.append(asyncio.create_task(self._deep_refreshes(emit)))
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._session.close()

    async def _connect_forever(self, emit: Emit, stop: asyncio.Event) -> None:
        await reconnect_forever(self.key, lambda: self._serve(emit), stop, lambda: self.connects.acquire(1))

    async def _serve(self, emit: Emit) -> None:
        self._connections += 1
        conn = f"{self.key}#{self._connections}"
        async with websockets.connect(self.ws_url, max_size=2**24, ping_interval=None, open_timeout=10) as ws:
            log.info("%s: connected (%s)", self.key, conn)
            CONNECTIONS.labels(self.key).inc()
            await ws.send(self._op("subscribe", ("books", "trades", "tickers")))
            self._last_heard = last_check = time.monotonic()
            while True:
                try:
                    text = await asyncio.wait_for(ws.recv(), timeout=CONTROL_POLL_S)
                    emit(RawEvent(time.time_ns(), self.venue, conn, "ws", None, self.ws_url, str(text)))
                    self._last_heard = time.monotonic()
                except asyncio.TimeoutError:
                    pass
                if time.monotonic() - last_check >= CONTROL_POLL_S:
                    last_check = time.monotonic()
                    await self._between_messages(ws)

    async def _between_messages(self, ws: websockets.ClientConnection) -> None:
        """Quiet moments: answer resync requests and keep the connection alive."""
        if self.control.take(self.key):
            log.info("%s: resync requested; re-subscribing books for a fresh snapshot", self.key)
            RESYNC_REQUESTS.labels(self.key).inc()
            await ws.send(self._op("unsubscribe", ("books",)))
            await ws.send(self._op("subscribe", ("books",)))
        if time.monotonic() - self._last_heard > self.ping_after_s:
            await ws.send("ping")
            self._last_heard = time.monotonic()

    async def _deep_refreshes(self, emit: Emit) -> None:
        assert self.deep_interval_s is not None
        while True:
            started = time.monotonic()
            await self.deep_requests.acquire(1)
            try:
                response = await asyncio.to_thread(self._session.get, self.deep_url, timeout=10)
                if response.status_code == 200:
                    emit(RawEvent(time.time_ns(), self.venue, f"{self.key}#rest", "rest", self.symbol, self.deep_url,
                                  response.text))
                else:
                    log.warning("%s: books-full answered HTTP %d", self.key, response.status_code)
                    REST_FAILURES.labels(self.key, str(response.status_code)).inc()
                    if response.status_code == 429:
                        self.deep_requests.block_for(2.0)
            except requests.RequestException as exc:
                log.warning("%s: books-full request failed: %s", self.key, exc)
                REST_FAILURES.labels(self.key, "error").inc()
            await asyncio.sleep(max(0.0, self.deep_interval_s - (time.monotonic() - started)))
