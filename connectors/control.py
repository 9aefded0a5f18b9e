"""The control bus: resync requests from book_sync back to the source of that book.

Bytewax dataflows are acyclic, so a `ResyncRequest` leaves the flow through
`ControlBusSink` and reaches the source partition of its `venue:symbol` here. In one
process this is a set of thread-safe queues (`InProcessControlBus`); when the flow runs
as several processes, the source of a book may live in another process than its
book_sync, so `NatsControlBus` carries requests over the NATS subject
`marketprism.control.resync.{venue}.{symbol}` to every process, where they wait in the
same queues for whichever process owns that source.

ControlBusSink — unit of parallelism: one stateless partition per worker; nothing to
snapshot (a lost request is re-issued by the next detected fault); delivery: at-most-once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
from typing import Protocol

import nats
import orjson
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.jetstream import connect
from schemas.events import ResyncRequest
from schemas.streams import NatsAuth

log = logging.getLogger(__name__)

CONTROL_SUBJECT = "marketprism.control.resync"
CLOSE_TIMEOUT_S = 10.0


class ControlBus(Protocol):
    def send(self, request: ResyncRequest) -> None: ...

    def take(self, key: str) -> list[ResyncRequest]: ...

    def close(self) -> None: ...


class InProcessControlBus:
    """Resync requests per `venue:symbol`, handed from the sink thread to the source threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, queue.SimpleQueue[ResyncRequest]] = {}

    def _queue(self, key: str) -> queue.SimpleQueue[ResyncRequest]:
        with self._lock:
            return self._queues.setdefault(key, queue.SimpleQueue())

    def send(self, request: ResyncRequest) -> None:
        self._queue(f"{request.venue}:{request.symbol}").put(request)

    def close(self) -> None:
        """Nothing to release: queues in memory."""

    def take(self, key: str) -> list[ResyncRequest]:
        """Every request waiting for `key` (non-blocking)."""
        waiting = self._queue(key)
        taken = []
        while True:
            try:
                taken.append(waiting.get_nowait())
            except queue.Empty:
                return taken


class NatsControlBus:
    """Resync requests through NATS core subjects, for flows spread over several processes.

    A request is published once and every process receives it; the process that owns the
    book's source takes it, the others never ask for that key. At-most-once, like the
    in-process bus: a request lost while NATS is down is re-issued by the next fault.
    It logs in as the NATS sink does (`auth`, the environment by default).
    """

    def __init__(self, url: str, *, auth: NatsAuth | None = None, connect_timeout_s: float = 10.0) -> None:
        self._auth = auth if auth is not None else NatsAuth()
        self._local = InProcessControlBus()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="control bus", daemon=True)
        self._thread.start()
        self._client = asyncio.run_coroutine_threadsafe(self._connect(url), self._loop).result(connect_timeout_s)

    async def _connect(self, url: str) -> nats.NATS:
        client = await connect(url, auth=self._auth, name="marketprism-control", max_reconnect_attempts=-1)
        await client.subscribe(f"{CONTROL_SUBJECT}.>", cb=self._received)
        await client.flush()
        return client

    async def _received(self, msg: nats.aio.msg.Msg) -> None:
        try:
            self._local.send(ResyncRequest(**orjson.loads(msg.data)))
        except (orjson.JSONDecodeError, TypeError) as exc:
            log.warning("control bus: ignored an unreadable message on %s: %s", msg.subject, exc)

    def send(self, request: ResyncRequest) -> None:
        subject = f"{CONTROL_SUBJECT}.{request.venue}.{request.symbol.lower()}"
        payload = orjson.dumps(dataclasses.asdict(request))
        asyncio.run_coroutine_threadsafe(self._client.publish(subject, payload), self._loop)

    def take(self, key: str) -> list[ResyncRequest]:
        return self._local.take(key)

    def close(self) -> None:
        """Flush what was sent and disconnect; with NATS away, give up after `CLOSE_TIMEOUT_S`."""
        try:
            asyncio.run_coroutine_threadsafe(self._client.drain(), self._loop).result(CLOSE_TIMEOUT_S)
        except Exception as exc:  # NATS away: what was not sent is re-issued by the next fault
            log.warning("control bus: closed without draining (%s: %s)", type(exc).__name__, exc)
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(CLOSE_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CLOSE_TIMEOUT_S)


class _ControlPartition(StatelessSinkPartition[ResyncRequest]):
    def __init__(self, sink: ControlBusSink) -> None:
        self._sink = sink

    def write_batch(self, items: list[ResyncRequest]) -> None:
        for request in items:
            self._sink.bus.send(request)

    def close(self) -> None:
        self._sink.partition_closed()


class ControlBusSink(DynamicSink[ResyncRequest]):
    """Delivers the flow's resync requests to the sources listening on `bus`. With
    `close_bus`, the bus is the flow's own: closed once the last partition closes (a NATS
    bus left open would keep reconnecting after the run)."""

    def __init__(self, bus: ControlBus, *, close_bus: bool = False) -> None:
        self.bus = bus
        self.close_bus = close_bus
        self._lock = threading.Lock()
        self._open_partitions = 0

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ControlPartition:
        with self._lock:
            self._open_partitions += 1
        return _ControlPartition(self)

    def partition_closed(self) -> None:
        with self._lock:
            self._open_partitions -= 1
            last = self._open_partitions == 0
        if last and self.close_bus:
            self.bus.close()
