"""The control bus: resync requests from book_sync back to the source of that book.

Bytewax dataflows are acyclic, so a `ResyncRequest` leaves the flow through
`ControlBusSink` and reaches the source partition of its `venue:symbol` here. In one
process this is a set of thread-safe queues; a multi-process deployment puts a NATS
subject in between (same interface).

ControlBusSink — unit of parallelism: one stateless partition per worker; nothing to
snapshot (a lost request is re-issued by the next detected fault); delivery: at-most-once.
"""

from __future__ import annotations

import queue
import threading

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from schemas.events import ResyncRequest


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

    def take(self, key: str) -> list[ResyncRequest]:
        """Every request waiting for `key` (non-blocking)."""
        waiting = self._queue(key)
        taken = []
        while True:
            try:
                taken.append(waiting.get_nowait())
            except queue.Empty:
                return taken


class _ControlPartition(StatelessSinkPartition[ResyncRequest]):
    def __init__(self, bus: InProcessControlBus) -> None:
        self._bus = bus

    def write_batch(self, items: list[ResyncRequest]) -> None:
        for request in items:
            self._bus.send(request)


class ControlBusSink(DynamicSink[ResyncRequest]):
    """Delivers the flow's resync requests to the sources listening on `bus`."""

    def __init__(self, bus: InProcessControlBus) -> None:
        self.bus = bus

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ControlPartition:
        return _ControlPartition(self.bus)
