"""Bytewax sink that publishes to NATS JetStream, and never loses a message when NATS is away.

NatsJetStreamSink — unit of parallelism: one partition ("nats"), i.e. one NATS connection
publishing every subject in the order the flow produced it. A FixedPartitionedSink
rather than a DynamicSink for two reasons: its `snapshot()` hook runs at the end of every
epoch, where the partition makes everything written so far durable (acked by JetStream or
fsync'd to the spill directory), which is what at-least-once under Bytewax recovery
needs; and a fixed partition has one stable spill directory, whatever the number of
workers, so files spilled by one run are found by the next. Items are `(key, Publication)`;
the key only routes, so any key will do (the subject, say).

Recovery snapshot: nothing (None): the spill directory is the state.

Delivery: at-least-once to JetStream, made exactly-once by the `Nats-Msg-Id` header: a
retried, re-sent or replayed publication is stored once if it comes back within the
streams' duplicate window (`StreamSettings.duplicate_window_s`, default 10 min). After a
longer outage, messages whose acks were lost may be stored twice. Order: per partition,
messages are stored in the order written; after a failure every unacknowledged message is
sent again in order (the copies already stored are reported as duplicates, not stored again).

How it works: nats-py is asyncio, so the partition runs one event loop in a thread, which
owns the connection. `write_batch` appends to a FIFO backlog and the loop publishes it
pipelined: a message is sent as soon as it is in the backlog, while at most max_in_flight
earlier ones await their acks; acks are taken in order and the acked head of the backlog is
removed. On any failure (the connection lost, a publish failing, the oldest unacked message
not acked within ack_timeout_s of being sent) the connection is dropped, and after the
reconnect everything unacked is sent again from the backlog's head. While NATS is up,
`write_batch` blocks once memory holds 2 x max_in_flight messages (or buffer_bytes):
backpressure. While NATS is down, memory fills up to buffer_messages / buffer_bytes and then
spills to append-only files under spill_dir (fsync'd once per batch), so the flow keeps
collecting; the disk part drains first when NATS returns, and whatever a run leaves on disk
is published by the next one. Reconnects back off exponentially (capped, jittered). A
message the server refuses for good (larger than its max_payload, say) is logged and kept
in spill_dir/rejected.records instead of blocking everything behind it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from nats.aio.client import Client

from connectors.jetstream import CONNECT_TIMEOUT_S, connect, ensure_streams, redact
from connectors.loop_end import close_loop
from connectors.pub_acks import AckInbox, PendingAck
from connectors.spill_log import Backlog, SpillLog, encode_record
from schemas.publication import Publication
from schemas.streams import NatsAuth, StreamSettings

log = logging.getLogger(__name__)

PARTITION = "nats"
REJECTED_FILE = "rejected.records"
# What the Nats-Msg-Id header adds to a message, besides the id itself.
HEADER_OVERHEAD = len(b"NATS/1.0\r\nNats-Msg-Id: \r\n\r\n")
LOG_BACKLOG_EVERY_S = 10.0

# Called with every batch the flow hands the sink, before it is queued (benches time it).
WriteObserver = Callable[[list[Publication]], None]


@dataclass(slots=True)
class PublisherStats:
    """Counters of one sink partition (gauges: buffered, on_disk, on_disk_bytes)."""

    published: int = 0  # messages sent, retries included
    acked: int = 0  # acks received, duplicates included
    duplicates: int = 0  # acks saying "already stored" (a retry or a replay)
    rejected: int = 0  # refused for good by the server (too large...), kept in rejected.records
    failures: int = 0  # failed connects and dropped connections
    spilled: int = 0  # messages written to spill files
    buffered: int = 0  # messages waiting in memory
    on_disk: int = 0  # messages waiting in spill files
    on_disk_bytes: int = 0


class _PublishFailed(Exception):
    """An ack failed or did not come in time: the connection is dropped, everything unacked sent again."""


# A message handed to nats-py: its ack to come (or the reason it was not sent) and when the ack is due.
_Sent = tuple[Publication, PendingAck | str, float]


@dataclass(slots=True)
class _Limits:
    max_in_flight: int
    buffer_messages: int
    buffer_bytes: int
    ack_timeout_s: float
    close_timeout_s: float
    retry_cap_s: float


class _NatsPartition(StatefulSinkPartition[Publication, None]):
    def __init__(
        self,
        *,
        url: str,
        streams: StreamSettings,
        auth: NatsAuth,
        spill_dir: Path,
        limits: _Limits,
        stats: PublisherStats,
        on_write: WriteObserver | None,
    ) -> None:
        self._url = url
        self._on_write = on_write
        self._where = redact(url)
        self._streams = streams
        self._auth = auth
        self._limits = limits
        self.stats = stats
        self._known_subjects: set[str] = set()
        self._rejected_path = spill_dir / REJECTED_FILE
        self._cond = threading.Condition()
        self._backlog = Backlog(SpillLog(spill_dir))  # guarded by _cond
        self._down = False  # guarded by _cond; optimistic until the first connect fails
        self._close_by: float | None = None  # guarded by _cond; set by close()
        self._drained_from_disk = 0
        self._next_backlog_log = 0.0
        self._update_gauges()
        if self._backlog.disk.count:
            log.info("NATS sink: %d messages (%d bytes) left in %s by an earlier run; publishing them first",
                     self._backlog.disk.count, self._backlog.disk.bytes, spill_dir)
        self._loop = asyncio.new_event_loop()
        self._wakeup = asyncio.Event()  # more to send, an ack, the connection lost, or closing
        self._wake_pending = False  # a wake-up is scheduled on the loop and has not run yet
        self._thread = threading.Thread(target=self._run_loop, name="nats-sink", daemon=True)
        self._thread.start()

    # ---- the Bytewax worker's side ----

    def write_batch(self, values: list[Publication]) -> None:
        if self._on_write is not None:
            self._on_write(values)
        for pub in values:
            self._check_subject(pub.subject)
        with self._cond:
            for pub in values:
                while self._must_wait():
                    self._wake_sender()
                    self._cond.wait(1.0)
                    self._check_sender_alive()
                if self._backlog.push(pub):
                    self.stats.spilled += 1
                elif self._down and self._memory_full(self._limits.buffer_messages):
                    self._spill_memory()
            self._backlog.disk.sync()
            self._update_gauges()
            self._log_backlog()
        self._wake_sender()

    def snapshot(self) -> None:
        """Make every message written so far durable: acked, or else fsync'd to disk."""
        deadline = time.monotonic() + self._limits.ack_timeout_s
        with self._cond:
            while self._backlog.memory and not self._down and time.monotonic() < deadline:
                self._wake_sender()
                self._cond.wait(deadline - time.monotonic())
            if self._backlog.memory:
                self._spill_memory()
                self._update_gauges()
        return None

    def close(self) -> None:
        """Keep publishing (and reconnecting) until all is acked or close_timeout_s passes; the rest stays on disk."""
        with self._cond:
            self._close_by = time.monotonic() + self._limits.close_timeout_s
        self._wake_sender()
        self._thread.join(self._limits.close_timeout_s + self._limits.ack_timeout_s + 2 * CONNECT_TIMEOUT_S)
        if self._thread.is_alive():
            log.error("NATS sink: publisher thread still busy after close timeout; saving the backlog anyway")
        with self._cond:
            if self._backlog.memory:
                self._spill_memory()
            self._backlog.disk.close()
            self._update_gauges()
            left = self._backlog.disk.count
        if left:
            log.warning("NATS sink closed with %d messages (%d bytes) on disk; the next start publishes them",
                        left, self._backlog.disk.bytes)
        log.info("NATS sink closed: %s", self.stats)

    def _check_subject(self, subject: str) -> None:
        if subject not in self._known_subjects:
            if self._streams.stream_for(subject) is None:
                raise ValueError(f"no JetStream stream stores subject {subject!r}: a publish to it would never be acked")
            self._known_subjects.add(subject)

    def _must_wait(self) -> bool:
        """Backpressure: while NATS is up, the flow waits for acks rather than filling memory."""
        return not self._down and not self._backlog.disk.count and self._memory_full(2 * self._limits.max_in_flight)

    def _memory_full(self, max_messages: int) -> bool:
        return len(self._backlog.memory) >= max_messages or self._backlog.memory_bytes >= self._limits.buffer_bytes

    def _spill_memory(self) -> None:
        was_empty = not self._backlog.disk.count
        self.stats.spilled += self._backlog.spill_memory()
        if was_empty:
            self._next_backlog_log = 0.0

    def _check_sender_alive(self) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("NATS sink: the publisher thread died; see the log above")

    def _wake_sender(self) -> None:
        """Wake the loop once: while a wake-up is on its way, another would only hand the
        loop the GIL again (each costs the worker a thread switch)."""
        if self._wake_pending or self._loop.is_closed():
            return
        self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._on_wake)
        except RuntimeError:  # closed between the check and the call
            self._wake_pending = False

    def _on_wake(self) -> None:
        # Cleared before the event is set: whatever a writer queued before seeing the flag
        # set is peeked by the sender after this wake-up.
        self._wake_pending = False
        self._wakeup.set()

    def _update_gauges(self) -> None:
        self.stats.buffered = len(self._backlog.memory)
        self.stats.on_disk = self._backlog.disk.count
        self.stats.on_disk_bytes = self._backlog.disk.bytes

    def _log_backlog(self) -> None:
        now = time.monotonic()
        if self._backlog.disk.count and now >= self._next_backlog_log:
            log.warning("NATS sink: %s; buffering %d messages / %d bytes on disk",
                        "NATS unavailable" if self._down else "connected, draining",
                        self._backlog.disk.count, self._backlog.disk.bytes)
            self._next_backlog_log = now + LOG_BACKLOG_EVERY_S

    # ---- the event loop's side ----

    def _run_loop(self) -> None:
        try:
            self._loop.run_until_complete(self._run())
        except Exception:
            log.exception("NATS sink: publisher stopped by an unexpected error")
        finally:
            close_loop(self._loop)

    def _done(self) -> bool:
        """Closing, and either everything is acked or the close deadline has passed."""
        with self._cond:
            return self._close_by is not None and (not self._backlog or time.monotonic() >= self._close_by)

    def _set_down(self, down: bool) -> None:
        with self._cond:
            self._down = down
            self._cond.notify_all()  # writers blocked on backpressure now buffer instead

    async def _run(self) -> None:
        """Connect, publish until closed; on any failure back off (capped, jittered) and start over."""
        attempt = 0
        while not self._done():
            try:
                nc, lost = await self._connect()
            except Exception as exc:
                self._set_down(True)
                self.stats.failures += 1
                attempt += 1
                delay = self._backoff(attempt)
                log.warning("NATS sink: cannot connect to %s (%s: %s); retry %d in %.2f s",
                            self._where, type(exc).__name__, exc, attempt, delay)
                await self._pause(delay)
                continue
            try:
                await ensure_streams(nc.jetstream(), self._streams)
                inbox = AckInbox(nc, on_settled=self._wakeup.set)
                await inbox.start()
                log.info("NATS sink: connected to %s, streams ready, %d messages waiting", self._where, len(self._backlog))
                attempt = 0
                self._set_down(False)
                await self._drain(nc, inbox, lost)
            except Exception as exc:
                self._set_down(True)
                self.stats.failures += 1
                attempt += 1
                log.warning("NATS sink: lost %s (%s: %s); buffering, reconnecting", self._where, type(exc).__name__, exc)
                await self._pause(self._backoff(attempt))
            finally:
                await nc.close()

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._limits.retry_cap_s, 0.1 * 2 ** min(attempt, 30))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _pause(self, seconds: float) -> None:
        """Wait before a retry, but not past the close deadline."""
        end = time.monotonic() + seconds
        while True:
            with self._cond:
                if self._close_by is not None:
                    end = min(end, self._close_by)
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            await self._wait(remaining)

    async def _wait(self, timeout: float | None) -> None:
        """Until the wake-up event is set, or the timeout passes."""
        try:
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    async def _connect(self) -> tuple[Client, asyncio.Event]:
        lost = asyncio.Event()

        async def on_lost() -> None:
            lost.set()
            self._wakeup.set()

        async def on_error(exc: Exception) -> None:
            log.debug("NATS client error: %s: %s", type(exc).__name__, exc)

        nc = await connect(
            self._url,
            auth=self._auth,
            name="marketprism-sink",
            allow_reconnect=False,  # we reconnect ourselves, to resend in order
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            disconnected_cb=on_lost,
            closed_cb=on_lost,
            error_cb=on_error,
        )
        return nc, lost

    async def _drain(self, nc: Client, inbox: AckInbox, lost: asyncio.Event) -> None:
        """Publish the backlog pipelined, until closed (or a failure raises).

        `in_flight` holds the backlog's head that was sent and is not acked yet, in order;
        the backlog from position len(in_flight) on is not sent yet. Acks that come after
        this connection is given up settle nothing: the next connection has its own inbox.
        """
        in_flight: deque[_Sent] = deque()
        while True:
            self._wakeup.clear()  # before looking: whatever sets it from now on is seen next round
            self._take_acks(in_flight)
            if self._done():
                return
            if lost.is_set():
                raise ConnectionError(f"connection closed with {len(in_flight)} acks pending")
            if in_flight and in_flight[0][2] <= time.monotonic():
                raise _PublishFailed(f"no ack within {self._limits.ack_timeout_s} s ({len(in_flight)} pending)")
            await self._send_more(nc, inbox, in_flight)
            await self._wait(in_flight[0][2] - time.monotonic() if in_flight else None)

    async def _send_more(self, nc: Client, inbox: AckInbox, in_flight: deque[_Sent]) -> None:
        """Send what is in the backlog behind what is in flight, up to max_in_flight unacked."""
        room = self._limits.max_in_flight - len(in_flight)
        if room <= 0:
            return
        with self._cond:
            new = self._backlog.peek(room, start=len(in_flight))
        due = time.monotonic() + self._limits.ack_timeout_s
        for pub in new:
            if len(pub.data) + len(pub.msg_id) + HEADER_OVERHEAD > nc.max_payload:
                in_flight.append((pub, f"{len(pub.data)} bytes exceed the server's max_payload {nc.max_payload}", due))
                continue
            in_flight.append((pub, await inbox.publish(pub.subject, pub.data, pub.msg_id), due))
            self.stats.published += 1

    def _take_acks(self, in_flight: deque[_Sent]) -> None:
        """Commit the settled head of in_flight (acked, or refused for good); raise at a failed publish."""
        settled = 0
        rejected: list[tuple[Publication, str]] = []
        failure: str | None = None
        for pub, ack, _ in in_flight:
            if isinstance(ack, str):
                rejected.append((pub, ack))
            elif not ack.done:
                break
            elif ack.error_code is None:
                self.stats.acked += 1
                self.stats.duplicates += ack.duplicate
            elif ack.error_code == 400:  # the request itself is refused: sending it again cannot help
                rejected.append((pub, f"code 400: {ack.error}"))
            else:
                failure = f"code {ack.error_code}: {ack.error}"
                break
            settled += 1
        if settled:
            for _ in range(settled):
                in_flight.popleft()
            self._commit(settled, rejected)
        if failure is not None:
            raise _PublishFailed(f"a publish failed: {failure}")

    def _commit(self, count: int, rejected: list[tuple[Publication, str]]) -> None:
        """Remove the backlog's first `count` messages: acked, or kept in rejected.records."""
        if rejected:
            self._keep_rejected(rejected)
        with self._cond:
            from_disk = self._backlog.disk.count > 0
            self._backlog.commit(count)
            if from_disk:
                self._drained_from_disk += count
                if not self._backlog.disk.count:
                    log.info("NATS sink: drained %d messages from disk", self._drained_from_disk)
                    self._drained_from_disk = 0
            self._update_gauges()
            self._cond.notify_all()

    def _keep_rejected(self, rejected: list[tuple[Publication, str]]) -> None:
        """Messages the server will never take are kept on disk, not retried forever nor dropped."""
        with open(self._rejected_path, "ab") as out:
            for pub, _ in rejected:
                out.write(encode_record(pub))
            out.flush()
            os.fsync(out.fileno())
        for pub, reason in rejected:
            log.error("NATS sink: %s (msg id %s) refused by the server: %s; kept in %s",
                      pub.subject, pub.msg_id, reason, self._rejected_path)
        self.stats.rejected += len(rejected)


class NatsJetStreamSink(FixedPartitionedSink[Publication, None]):
    """Publishes `Publication`s to JetStream, creating or updating the streams on connect.

    `auth` defaults to the environment (MARKETPRISM_NATS_USER/PASSWORD, _TOKEN or
    _CREDS_FILE, _TLS_CA_FILE); credentials are never logged, and the URL is logged
    without user info. `stats` holds the partition's counters; `on_write`, if given, sees
    every batch the flow writes (the latency bench times it).
    """

    def __init__(
        self,
        url: str,
        streams: StreamSettings,
        spill_dir: Path,
        max_in_flight: int = 1000,
        *,
        auth: NatsAuth | None = None,
        buffer_messages: int = 10_000,
        buffer_bytes: int = 64 * 1024 * 1024,
        ack_timeout_s: float = 5.0,
        close_timeout_s: float = 10.0,
        retry_cap_s: float = 10.0,
        on_write: WriteObserver | None = None,
    ) -> None:
        if max_in_flight < 1 or buffer_messages < 1 or buffer_bytes < 1:
            raise ValueError("max_in_flight, buffer_messages and buffer_bytes must be positive")
        self.url = url
        self.streams = streams
        self.spill_dir = Path(spill_dir)
        self.auth = auth if auth is not None else NatsAuth()
        self.limits = _Limits(max_in_flight, buffer_messages, buffer_bytes, ack_timeout_s, close_timeout_s, retry_cap_s)
        self.stats = PublisherStats()
        self.on_write = on_write

    def list_parts(self) -> list[str]:
        return [PARTITION]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _NatsPartition:
        return _NatsPartition(
            url=self.url, streams=self.streams, auth=self.auth, spill_dir=self.spill_dir, limits=self.limits,
            stats=self.stats, on_write=self.on_write,
        )
