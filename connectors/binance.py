"""Binance spot source: the diff-depth, trade and bookTicker streams plus REST snapshots.

Per book: one combined-stream websocket (`<sym>@depth@100ms/<sym>@trade/<sym>@bookTicker`)
and REST `/api/v3/depth` snapshots, asked for once at start and again whenever book_sync
sends a resync request over the control bus. Snapshots go through the venue's shared
weight budget (250 of 6000 a minute at limit 5000), which reads `x-mbx-used-weight-1m`
and honours `Retry-After` on 429/418, so books reconnecting together are spread out.

A connection lives at most 24 h: well before that (or at `serverShutdown`) a second
connection is opened and both run until the new one delivers, so no update is missed;
the overlap's repeats are dropped by book_sync (u <= last applied u). The library
answers the server's pings.

Unit of parallelism, snapshot and delivery: see `connectors.live_source`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import requests
import websockets

from connectors.control import ControlBus
from connectors.limits import BackoffDelays, WindowBudget
from connectors.live_source import Emit, reconnect_forever
from connectors.metrics import CONNECTIONS, REST_FAILURES, RESYNC_REQUESTS
from schemas.raw import RawEvent

log = logging.getLogger(__name__)

DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
CONTROL_POLL_S = 0.05


def depth_weight(limit: int) -> int:
    """The request weight Binance charges for `/api/v3/depth` at this limit."""
    return next(weight for top, weight in DEPTH_WEIGHTS if limit <= top)


def weight_budget() -> WindowBudget:
    """The process-wide REST budget for Binance: 6000 weight per minute per IP."""
    return WindowBudget(budget=6000, window_s=60.0)


@dataclass(frozen=True, slots=True)
class BinanceEndpoints:
    rest: str = "https://api.binance.com"
    ws: str = "wss://stream.binance.com:9443"


class BinanceFeed:
    """Everything one Binance book needs from the exchange."""

    def __init__(
        self,
        venue: str,
        symbol: str,
        endpoints: BinanceEndpoints,
        weights: WindowBudget,
        control: ControlBus,
        depth_limit: int = 5000,
        rotate_after_s: float = 23.5 * 3600,
    ) -> None:
        self.venue, self.symbol = venue, symbol
        self.key = f"{venue}:{symbol}"
        self.endpoints, self.weights, self.control = endpoints, weights, control
        self.depth_limit = depth_limit
        self.rotate_after_s = rotate_after_s
        wire = symbol.replace("-", "")
        streams = "/".join(f"{wire.lower()}@{name}" for name in ("depth@100ms", "trade", "bookTicker"))
        self.ws_url = f"{endpoints.ws}/stream?streams={streams}"
        self.snapshot_url = f"{endpoints.rest}/api/v3/depth?symbol={wire}&limit={depth_limit}"
        self._connections = 0
        self._snapshot_wanted = asyncio.Event()
        self._session = requests.Session()

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        self._snapshot_wanted.set()
        tasks = [
            asyncio.create_task(self._connect_forever(emit, stop)),
            asyncio.create_task(self._snapshots(emit)),
            asyncio.create_task(self._listen_for_resyncs(stop)),
        ]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._session.close()

    async def _listen_for_resyncs(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            requests_waiting = self.control.take(self.key)
            if requests_waiting:
                log.info("%s: resync requested (%s); fetching a snapshot", self.key, requests_waiting[-1].reason)
                RESYNC_REQUESTS.labels(self.key).inc()
                self._snapshot_wanted.set()
            await asyncio.sleep(CONTROL_POLL_S)

    async def _connect_forever(self, emit: Emit, stop: asyncio.Event) -> None:
        await reconnect_forever(self.key, lambda: self._serve(emit, delivered=None), stop)

    async def _serve(self, emit: Emit, delivered: asyncio.Event | None) -> None:
        """Read one connection until it ends; hand over to a successor before it must end."""
        self._connections += 1
        conn = f"{self.key}#{self._connections}"
        successor: asyncio.Task[None] | None = None
        successor_delivered = asyncio.Event()
        async with websockets.connect(self.ws_url, max_size=2**24, ping_interval=None, open_timeout=10) as ws:
            log.info("%s: connected (%s)", self.key, conn)
            CONNECTIONS.labels(self.key).inc()
            opened = time.monotonic()
            async for text in ws:
                emit(RawEvent(time.time_ns(), self.venue, conn, "ws", None, self.ws_url, str(text)))
                if delivered is not None:
                    delivered.set()
                    delivered = None
                if successor is None and (
                    time.monotonic() - opened > self.rotate_after_s or '"serverShutdown"' in str(text)
                ):
                    log.info("%s: %s is due to close; opening its successor", self.key, conn)
                    successor = asyncio.create_task(self._serve(emit, successor_delivered))
                if successor is not None and successor_delivered.is_set():
                    log.info("%s: successor delivering; closing %s", self.key, conn)
                    break
        if successor is not None:
            await successor

    async def _snapshots(self, emit: Emit) -> None:
        backoff = BackoffDelays(first_s=1.0, cap_s=60.0)
        while True:
            await self._snapshot_wanted.wait()
            self._snapshot_wanted.clear()
            while not await self._fetch_snapshot(emit):
                await asyncio.sleep(backoff.next())
            backoff.reset()

    async def _fetch_snapshot(self, emit: Emit) -> bool:
        """One attempt; True when a snapshot was delivered."""
        await self.weights.acquire(depth_weight(self.depth_limit))
        try:
            response = await asyncio.to_thread(self._session.get, self.snapshot_url, timeout=10)
        except requests.RequestException as exc:
            log.warning("%s: snapshot request failed: %s", self.key, exc)
            REST_FAILURES.labels(self.key, "error").inc()
            return False
        used = response.headers.get("x-mbx-used-weight-1m")
        if used and used.isdigit():
            self.weights.observe_used(int(used))
        if response.status_code in (418, 429):
            retry_after = float(response.headers.get("Retry-After", "60"))
            log.warning("%s: snapshot refused with %d; all snapshots wait %.0f s", self.key, response.status_code, retry_after)
            REST_FAILURES.labels(self.key, str(response.status_code)).inc()
            self.weights.block_for(retry_after)
            return False
        if response.status_code != 200:
            log.warning("%s: snapshot answered HTTP %d", self.key, response.status_code)
            REST_FAILURES.labels(self.key, str(response.status_code)).inc()
            return False
        emit(RawEvent(time.time_ns(), self.venue, f"{self.key}#rest", "rest", self.symbol, self.snapshot_url, response.text))
        log.info("%s: snapshot received (%d bytes)", self.key, len(response.content))
        return True
