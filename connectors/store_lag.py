"""How far the store is behind the streams, read from its durable consumers on NATS.

The collector shows it without talking to the store process: per stream, the messages not
yet acknowledged by the store (waiting or in flight), and how old the oldest of them is.
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

from connectors.jetstream import connect, redact
from schemas.streams import NatsAuth, StreamSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoreLag:
    """Messages of the four streams the store has not acknowledged yet, and the age in
    seconds of the oldest one (0 when there is none); `per_stream` the message counts."""

    messages: int
    seconds: float
    per_stream: dict[str, int]

    def describe(self) -> str:
        if not self.messages:
            return "store: up to date (0 messages behind)"
        streams = ", ".join(f"{name} {n}" for name, n in self.per_stream.items() if n)
        return f"store: {self.messages} messages, {self.seconds:.1f} s behind ({streams})"


def _age_s(stamp: object, now: float) -> float:
    if isinstance(stamp, datetime):
        return max(0.0, now - stamp.timestamp())
    if isinstance(stamp, str):
        return max(0.0, now - datetime.fromisoformat(stamp.replace("Z", "+00:00")[:26] + "+00:00").timestamp())
    return 0.0


async def read_lag(js: JetStreamContext, streams: StreamSettings, durable_prefix: str) -> StoreLag:
    """The store's lag now; a stream whose consumer does not exist yet counts all its messages."""
    per_stream: dict[str, int] = {}
    oldest = 0.0
    now = time.time()
    for name in streams.streams():
        state = (await js.stream_info(name)).state
        try:
            info = await js.consumer_info(name, f"{durable_prefix}-{name}")
        except NotFoundError:
            per_stream[name] = state.messages
            first_unacked = state.first_seq if state.messages else None
        else:
            per_stream[name] = (info.num_pending or 0) + (info.num_ack_pending or 0)
            floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
            first_unacked = max(floor + 1, state.first_seq) if per_stream[name] else None
        if first_unacked is not None and first_unacked <= state.last_seq:
            try:
                oldest = max(oldest, _age_s((await js.get_msg(name, first_unacked)).time, now))
            except NotFoundError:  # discarded meanwhile
                pass
    return StoreLag(sum(per_stream.values()), oldest, per_stream)


class StoreLagMonitor:
    """Reads the store's lag every `interval_s` in a thread and hands it to `on_lag`."""

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
        self._streams = StreamSettings()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="store-lag", daemon=True)

    def start(self) -> StoreLagMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._interval_s + 5)

    def read_once(self) -> StoreLag:
        """The lag now, read on a connection of its own (for the final summary)."""
        return asyncio.run(self._read_once())

    async def _read_once(self) -> StoreLag:
        nc = await connect(self._url, auth=self._auth, name="marketprism-store-lag")
        try:
            return await read_lag(nc.jetstream(), self._streams, self._durable_prefix)
        finally:
            await nc.close()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._on_lag(await self._read_once())
            except Exception as exc:
                log.debug("store lag from %s unavailable: %s: %s", redact(self._url), type(exc).__name__, exc)
            await asyncio.sleep(self._interval_s)
