"""Running one exchange feed against the simulator, without the dataflow, and watching what it emits.

- `FeedRun`: a feed on its own thread and event loop, as `LiveSource` runs it; every
  RawEvent it emits is kept, in order, with helpers to wait for one (deadlines, no sleeps).
- `LossyControlBus`: a real in-process control bus that loses its first N requests, for
  the tests of what happens when a resync request never arrives.
- `counted`: a Prometheus counter's value now, to compare before and after.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import orjson
from prometheus_client import REGISTRY

from connectors.control import ControlBus, InProcessControlBus
from connectors.live_source import Feed
from flows.collect import feed_factory
from schemas.events import ResyncRequest, SourceAction
from schemas.raw import RawEvent
from schemas.settings import CollectSettings
from sim.server import SimulatorThread
from tests.sim_server_support import wait_for


class LossyControlBus(InProcessControlBus):
    """Loses the first `lose` requests sent through it (kept in `lost`), delivers the rest."""

    def __init__(self, lose: int) -> None:
        super().__init__()
        self.to_lose = lose
        self.lost: list[ResyncRequest] = []

    def send(self, request: ResyncRequest) -> None:
        if self.to_lose > 0:
            self.to_lose -= 1
            self.lost.append(request)
            return
        super().send(request)


def sim_feeds(simulator: SimulatorThread, bus: ControlBus, **overrides: object) -> Callable[[str], Feed]:
    """The collector's own feed factory, pointed at the simulator."""
    settings = CollectSettings(
        binance_rest_url=simulator.binance_url, binance_ws_url=simulator.binance_ws_url,
        okx_rest_url=simulator.okx_url, okx_ws_url=simulator.okx_ws_url, **overrides,  # type: ignore[arg-type]
    )
    return feed_factory(settings, bus)


def request(key: str, action: SourceAction, reason: str = "test") -> ResyncRequest:
    venue, _, symbol = key.partition(":")
    return ResyncRequest(venue, symbol, reason, time.time_ns(), action)


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"marketprism_{name}_total", labels) or 0.0


class FeedRun:
    """One feed running on a thread of its own; `events` is everything it emitted so far."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.events: list[RawEvent] = []
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name=f"test feed {feed.key}", daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self.feed.run(self.events.append, self._stop))
        self._loop.close()

    def __enter__(self) -> FeedRun:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the feed did not stop"

    def since(self, ns: int, match: Callable[[RawEvent], bool] = lambda _: True) -> list[RawEvent]:
        """Events received after `ns` (wall clock) that `match`."""
        return [event for event in list(self.events) if event.recv_ns > ns and match(event)]

    def wait(self, match: Callable[[RawEvent], bool], what: str, after_ns: int = 0, timeout: float = 10.0) -> RawEvent:
        """The first event after `after_ns` that `match`es, waiting for it."""
        return wait_for(lambda: next(iter(self.since(after_ns, match)), None), timeout, what)


def ws_on(conn: str) -> Callable[[RawEvent], bool]:
    return lambda event: event.kind == "ws" and event.conn == conn


def rest(event: RawEvent) -> bool:
    return event.kind == "rest"


def payload(event: RawEvent) -> dict:
    return orjson.loads(event.data)
