"""The live local exchange: Binance and OKX on loopback, one market clock, the truth and the faults of the run.

`SimExchange` runs in an asyncio loop: one port per venue serves both its REST and its
websockets (websockets' `process_request` answers plain HTTP). A clock ticks every 100 ms:
each market publishes the window that just ended (Binance depth diffs, OKX books and
tickers), draws the next one, and schedules that window's trades and top-of-book changes
at their own times. `SimulatorThread` runs the same in a background thread for
synchronous callers: tests and the collector's `--sim` mode.

The truth is the markets themselves: `truth(venue, symbol)` is the `Market` the wire is
written from (`book_at(update_id, depth)`), and `update_id_at(venue, symbol, ts_ns)` maps
a wall-clock instant (an OKX REST `ts`, say) to the update id of the book then.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any

from websockets.asyncio.server import Server, serve

from sim.binance_server import BinanceVenue
from sim.live_faults import CONNECTION_KINDS, FaultBoard, InjectedFault, check
from sim.live_market import LiveMarket
from sim.market import WINDOW_NS, Market
from sim.okx_server import BUSINESS_PATH, WS_PATH, OkxVenue
from sim.settings import SimSettings
from sim.specs import SPECS

log = logging.getLogger(__name__)

VENUES = ("binance", "okx")
_WINDOW_S = WINDOW_NS / 1e9
_TRIM_EVERY = 600  # ticks (a minute) between two trims of old history


class SimExchange:
    """Both venues on loopback, driven in real time by the seeded market model."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.settings = settings or SimSettings()
        for symbol in self.settings.symbols:
            if not any((venue, symbol) in SPECS for venue in VENUES):
                raise ValueError(f"no simulated instrument {symbol}; known: {sorted({s for _, s in SPECS})}")
        for fault in self.settings.faults.schedule:
            if fault.symbol not in self.settings.symbols or (fault.venue, fault.symbol) not in SPECS:
                raise ValueError(f"a {fault.kind} fault for {fault.venue}:{fault.symbol}, which is not served")
        self._markets: dict[tuple[str, str], LiveMarket] = {}
        self._servers: list[Server] = []
        self._ports: dict[str, int] = {}
        self._clock: asyncio.Task[None] | None = None
        self._t0 = self._mono0 = 0.0  # loop time and monotonic seconds at start ...
        self._s0 = 0  # ... and wall-clock ns then

    # ----- running -----

    async def start(self) -> None:
        """Draw the markets and listen; returns once both ports accept connections."""
        loop = asyncio.get_running_loop()
        self._t0, self._mono0, self._s0 = loop.time(), time.monotonic(), time.time_ns()
        settings = self.settings
        self._board = FaultBoard(settings.faults, self.now_ns)
        for venue in VENUES:
            for symbol in settings.symbols:
                if (venue, symbol) in SPECS:
                    self._markets[(venue, symbol)] = LiveMarket(
                        venue, symbol, settings.seed, self._s0,
                        rate_scale=settings.rate_scale, trend_levels_per_s=settings.trend_levels_per_s,
                    )
        self._binance = BinanceVenue(settings.binance, self._venue_markets("binance"), self._board, self.now_ns)
        self._okx = OkxVenue(settings.okx, self._venue_markets("okx"), self._board, self.now_ns, settings.seed)
        open_timeout = 10 + settings.faults.slow_snapshot_s  # a slow snapshot is answered inside the handshake
        for name, venue, port in (
            ("binance", self._binance, settings.binance_port),
            ("okx", self._okx, settings.okx_port),
        ):
            server = await serve(
                venue.handler,
                settings.host,
                port,
                process_request=venue.process_request,
                compression=None,
                ping_interval=None,  # Binance pings by its own rules; OKX leaves pinging to the client
                open_timeout=open_timeout,
                max_size=2**20,
                server_header=None,  # the exchanges do not announce a websockets server
            )
            self._servers.append(server)
            self._ports[name] = server.sockets[0].getsockname()[1]
        for live in self._markets.values():
            self._schedule(live)
        self._clock = asyncio.create_task(self._tick(), name="sim-clock")
        self._clock.add_done_callback(_report_crash)

    async def stop(self) -> None:
        """Close every connection (1001) and stop the clock."""
        if self._clock is not None:
            self._clock.cancel()
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    # ----- endpoints -----

    @property
    def binance_url(self) -> str:
        """REST base, as https://api.binance.com."""
        return f"http://{self.settings.host}:{self._ports['binance']}"

    @property
    def binance_ws_url(self) -> str:
        """Websocket base, as wss://stream.binance.com:9443: add /ws/<stream> or /stream?streams=..."""
        return f"ws://{self.settings.host}:{self._ports['binance']}"

    @property
    def okx_url(self) -> str:
        """REST base, as https://www.okx.com."""
        return f"http://{self.settings.host}:{self._ports['okx']}"

    @property
    def okx_ws_url(self) -> str:
        """The public websocket, as wss://ws.okx.com:8443/ws/v5/public."""
        return f"ws://{self.settings.host}:{self._ports['okx']}{WS_PATH}"

    @property
    def okx_business_ws_url(self) -> str:
        """The business websocket (candles), as wss://ws.okx.com:8443/ws/v5/business."""
        return f"ws://{self.settings.host}:{self._ports['okx']}{BUSINESS_PATH}"

    # ----- truth and faults (safe to call from any thread) -----

    def truth(self, venue: str, symbol: str) -> Market:
        """The market written on the wire: `book_at(update_id, depth)` is the true book."""
        return self._live(venue, symbol).market

    def update_id_at(self, venue: str, symbol: str, ts_ns: int) -> int:
        """The update id of the true book at wall-clock `ts_ns`."""
        return self._live(venue, symbol).update_id_at(ts_ns)

    @property
    def started_ns(self) -> int:
        """Wall-clock ns at start: scheduled faults count their time from here."""
        return self._s0

    def now_ns(self) -> int:
        """Wall-clock ns on the exchange's clock (monotonic since start)."""
        return self._s0 + int((time.monotonic() - self._mono0) * 1e9)

    def inject(self, kind: str, venue: str, symbol: str) -> None:
        """Arm a fault now (on the loop's thread); it takes effect where it first can, see `live_faults`."""
        self._live(venue, symbol)
        self._board.arm(kind, venue, symbol)

    @property
    def faults(self) -> list[InjectedFault]:
        """Faults that took effect so far, in order."""
        return list(self._board.injected)

    def status(self) -> str:
        """One line on the state of the run, for people watching it."""
        books = " ".join(f"{v}:{s}@{live.market.update_id}" for (v, s), live in self._markets.items())
        return (
            f"up {(self.now_ns() - self._s0) / 1e9:.0f}s, connections binance={self._binance.connections} "
            f"okx={self._okx.connections}, faults {len(self._board.injected)}, books {books}"
        )

    # ----- the clock -----

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        tick = 0
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, self._t0 + tick * _WINDOW_S - loop.time()))
            self._board.arm_due(tick * _WINDOW_S)
            for live in self._markets.values():
                venue = self._venue(live.venue)
                window = live.pending
                for step in live.due(window.end_ns):
                    venue.on_step(live, step)
                venue.on_window(live, window)
                live.draw_next()
                self._schedule(live)
                self._connection_faults(live)
            if tick % _TRIM_EVERY == 0:
                horizon = self.now_ns() - int(self.settings.history_s * 1e9)
                for live in self._markets.values():
                    live.forget_before(horizon)

    def _schedule(self, live: LiveMarket) -> None:
        """Tell the pending window's trades and top changes at their own times."""
        loop = asyncio.get_running_loop()
        for ts_ns in sorted({step.ts_ns for step in live.pending.steps if step.trades or step.top is not None}):
            loop.call_at(self._t0 + (ts_ns - self._s0) / 1e9, self._tell, live, ts_ns)

    def _tell(self, live: LiveMarket, ts_ns: int) -> None:
        if self._clock is None or self._clock.done():
            return
        venue = self._venue(live.venue)
        for step in live.due(ts_ns):
            venue.on_step(live, step)

    def _connection_faults(self, live: LiveMarket) -> None:
        peers = self._venue(live.venue).peers_of(live.symbol)
        if not peers:
            return
        kind = self._board.take(live.venue, live.symbol, CONNECTION_KINDS)
        if kind is None:
            return
        for peer in peers:
            if kind == "disconnect":
                peer.drop()
            elif kind == "stall":
                peer.stall(self.settings.faults.stall_s)
            elif kind == "silent_socket":
                peer.silence()
            else:
                peer.cut_next_frame()
        self._board.record(live.venue, live.symbol, kind, f"{len(peers)} connection(s)")

    def _venue(self, venue: str) -> BinanceVenue | OkxVenue:
        return self._binance if venue == "binance" else self._okx

    def _venue_markets(self, venue: str) -> dict[str, LiveMarket]:
        return {symbol: live for (v, symbol), live in self._markets.items() if v == venue}

    def _live(self, venue: str, symbol: str) -> LiveMarket:
        try:
            return self._markets[(venue, symbol)]
        except KeyError:
            raise KeyError(f"{venue}:{symbol} is not served; served: {sorted(self._markets)}") from None


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the simulator's market clock stopped", exc_info=task.exception())


class SimulatorThread:
    """A `SimExchange` on its own thread and loop, for synchronous callers."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.exchange = SimExchange(settings)
        self._thread = threading.Thread(target=self._run, name="sim-exchange", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> SimulatorThread:
        """Start the exchange; returns once it listens."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the simulator did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError("the simulator failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection and end the thread."""
        if self._loop is not None and self._stopped is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def binance_url(self) -> str:
        return self.exchange.binance_url

    @property
    def binance_ws_url(self) -> str:
        return self.exchange.binance_ws_url

    @property
    def okx_url(self) -> str:
        return self.exchange.okx_url

    @property
    def okx_ws_url(self) -> str:
        return self.exchange.okx_ws_url

    @property
    def okx_business_ws_url(self) -> str:
        return self.exchange.okx_business_ws_url

    def truth(self, venue: str, symbol: str) -> Market:
        return self.exchange.truth(venue, symbol)

    def update_id_at(self, venue: str, symbol: str, ts_ns: int) -> int:
        return self.exchange.update_id_at(venue, symbol, ts_ns)

    @property
    def started_ns(self) -> int:
        return self.exchange.started_ns

    def now_ns(self) -> int:
        return self.exchange.now_ns()

    def inject(self, kind: str, venue: str, symbol: str) -> None:
        """Arm a fault on the exchange's thread; errors (unknown kind, venue, symbol) raise here."""
        check(kind, venue)
        self._call(self._arm(kind, venue, symbol))

    @property
    def faults(self) -> list[InjectedFault]:
        return self.exchange.faults

    async def _arm(self, kind: str, venue: str, symbol: str) -> None:
        self.exchange.inject(kind, venue, symbol)

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None, "the simulator is not running"
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            await self.exchange.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        await self.exchange.stop()
