"""Bytewax plumbing shared by the live exchange sources: one feed per book, in its own thread.

Each partition is one `venue:symbol`, so workers (and Kubernetes pods) scale per symbol.
The feed runs an asyncio event loop in a background thread (websockets and REST calls)
and hands RawEvents over a thread-safe queue; `next_batch` drains it without blocking.

Unit of parallelism: one partition per `venue:symbol`.
Recovery snapshot: nothing (None): a live feed cannot rewind; after a restart the book
resyncs from a fresh snapshot, and gaps while down are reported as gaps.
Delivery: at-most-once per received message into the dataflow.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Protocol

import websockets
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from connectors.limits import BackoffDelays
from connectors.metrics import CONNECTION_FAILURES

from schemas.raw import RawEvent

log = logging.getLogger(__name__)

Emit = Callable[[RawEvent], None]
# How long an idle partition lets Bytewax wait before polling the queue again.
IDLE_POLL = timedelta(milliseconds=1)
MAX_BATCH = 2000


class Feed(Protocol):
    """Everything one book needs from its exchange: sockets, snapshots, pings, reconnects."""

    key: str

    async def run(self, emit: Emit, stop: asyncio.Event) -> None: ...


async def reconnect_forever(
    key: str,
    serve: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    before_attempt: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run one connection after another until `stop`: a failure is logged with its book,
    counted, and followed by a capped, jittered back-off."""
    backoff = BackoffDelays()
    while not stop.is_set():
        if before_attempt is not None:
            await before_attempt()
        try:
            await serve()
            backoff.reset()
        except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as exc:
            delay = backoff.next()
            log.warning("%s: websocket failed (%s); reconnecting in %.1f s", key, exc, delay)
            CONNECTION_FAILURES.labels(key).inc()
            await asyncio.sleep(delay)


class _FeedPartition(StatefulSourcePartition[RawEvent, None]):
    def __init__(self, feed: Feed, deadline: float | None) -> None:
        self._queue: queue.SimpleQueue[RawEvent] = queue.SimpleQueue()
        self._deadline = deadline
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, args=(feed,), name=f"feed {feed.key}", daemon=True)
        self._thread.start()

    def _run(self, feed: Feed) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(feed.run(self._queue.put, self._stop))
        except Exception:
            log.exception("feed %s stopped with an error", feed.key)
        finally:
            self._loop.close()

    def next_batch(self) -> list[RawEvent]:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise StopIteration()
        batch: list[RawEvent] = []
        try:
            while len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return batch

    def next_awake(self) -> datetime | None:
        return datetime.now(timezone.utc) + IDLE_POLL if self._queue.empty() else None

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


class LiveSource(FixedPartitionedSource[RawEvent, None]):
    """Live RawEvents for the given books; `make_feed(key)` builds each book's feed."""

    def __init__(self, keys: list[str], make_feed: Callable[[str], Feed], run_seconds: float | None = None) -> None:
        self.keys = keys
        self.make_feed = make_feed
        self.run_seconds = run_seconds

    def list_parts(self) -> list[str]:
        return list(self.keys)

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _FeedPartition:
        deadline = None if self.run_seconds is None else time.monotonic() + self.run_seconds
        return _FeedPartition(self.make_feed(for_part), deadline)
