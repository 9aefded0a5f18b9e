"""How far the store is behind the streams, read from its durable consumers on NATS.

Read from NATS rather than from the store, so it is true even when the store is down: per
stream, the messages not yet acknowledged by the store (waiting or in flight), and how old
the oldest of them is. The store serves it as metrics; the collector's summary reads it once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from connectors.jetstream import CONNECT_TIMEOUT_S, connect, redact
from schemas.streams import NatsAuth, StreamSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamLag:
    """One stream: messages not delivered to the store yet (`pending`), delivered and not
    acknowledged (`unacked`), and the age in seconds of the oldest of them (0 when none)."""

    pending: int
    unacked: int
    seconds: float

    @property
    def messages(self) -> int:
        return self.pending + self.unacked


@dataclass(frozen=True, slots=True)
class StoreLag:
    """The store's lag per stream; `messages` and `seconds` are the totals a person reads first."""

    streams: dict[str, StreamLag]

    @property
    def messages(self) -> int:
        return sum(lag.messages for lag in self.streams.values())

    @property
    def seconds(self) -> float:
        return max((lag.seconds for lag in self.streams.values()), default=0.0)

    @property
    def per_stream(self) -> dict[str, int]:
        return {name: lag.messages for name, lag in self.streams.items()}


def _age_s(stamp: object, now: float) -> float:
    if isinstance(stamp, datetime):
        return max(0.0, now - stamp.timestamp())
    if isinstance(stamp, str):
        return max(0.0, now - datetime.fromisoformat(stamp.replace("Z", "+00:00")[:26] + "+00:00").timestamp())
    return 0.0


async def read_lag(js: JetStreamContext, streams: StreamSettings, durable_prefix: str) -> StoreLag:
    """The store's lag now; a stream whose consumer does not exist yet counts all its messages as pending."""
    lags: dict[str, StreamLag] = {}
    now = time.time()
    for name in streams.streams():
        state = (await js.stream_info(name)).state
        try:
            info = await js.consumer_info(name, f"{durable_prefix}-{name}")
        except NotFoundError:
            pending, unacked = state.messages, 0
            first_unacked = state.first_seq if state.messages else None
        else:
            pending, unacked = info.num_pending or 0, info.num_ack_pending or 0
            floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
            first_unacked = max(floor + 1, state.first_seq) if pending + unacked else None
        age = 0.0
        if first_unacked is not None and first_unacked <= state.last_seq:
            try:
                age = _age_s((await js.get_msg(name, first_unacked)).time, now)
            except NotFoundError:  # discarded meanwhile
                pass
        lags[name] = StreamLag(pending, unacked, age)
    return StoreLag(lags)


def read_store_lag(url: str, *, auth: NatsAuth | None = None, durable_prefix: str = "marketprism-store") -> StoreLag:
    """The lag now, read on a connection of its own (the collector's final summary reads it so)."""
    return asyncio.run(_read_store_lag(url, auth if auth is not None else NatsAuth(), durable_prefix))


async def _read_store_lag(url: str, auth: NatsAuth, durable_prefix: str) -> StoreLag:
    nc = await connect(url, auth=auth, name="marketprism-store-lag")
    try:
        return await read_lag(nc.jetstream(), StreamSettings(), durable_prefix)
    finally:
        await nc.close()


class StoreLagMonitor:
    """Reads the store's lag every `interval_s` in a daemon thread and hands it to `on_lag`;
    `stop` returns at once (the wait between readings is the stop signal's)."""

    def __init__(
        self,
        url: str,
        *,
        on_lag: Callable[[StoreLag], None],
        interval_s: float = 2.0,
        auth: NatsAuth | None = None,
        durable_prefix: str = "marketprism-store",
    ) -> None:
        self._url, self._on_lag, self._interval_s = url, on_lag, interval_s
        self._auth = auth if auth is not None else NatsAuth()
        self._durable_prefix = durable_prefix
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-lag", daemon=True)

    def start(self) -> StoreLagMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(CONNECT_TIMEOUT_S + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._on_lag(read_store_lag(self._url, auth=self._auth, durable_prefix=self._durable_prefix))
            except Exception as exc:
                log.debug("store lag from %s unavailable: %s: %s", redact(self._url), type(exc).__name__, exc)
            self._stop.wait(self._interval_s)
