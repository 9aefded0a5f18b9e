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
messages are stored in the order written; after a failure the unacknowledged batch is sent
again in order (the copies already stored are reported as duplicates, not stored again).

How it works: nats-py is asyncio, so the partition runs one event loop in a thread, which
owns the connection. `write_batch` appends to a FIFO backlog and the loop publishes its head
in batches of at most max_in_flight, waits for every ack, then removes the batch. While NATS
is up, `write_batch` blocks once memory holds 2 x max_in_flight messages (or buffer_bytes):
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
import re
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import nats
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, PubAck, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError

from schemas.publication import Publication
from schemas.streams import NatsAuth, StreamSettings

log = logging.getLogger(__name__)

PARTITION = "nats"
SEGMENT_BYTES = 16 * 1024 * 1024
SEGMENT_SUFFIX = ".spill"
REJECTED_FILE = "rejected.records"
# What the Nats-Msg-Id header adds to a message, besides the id itself.
HEADER_OVERHEAD = len(b"NATS/1.0\r\nNats-Msg-Id: \r\n\r\n")
LOG_BACKLOG_EVERY_S = 10.0
CONNECT_TIMEOUT_S = 2

# A spill record: crc32 of the body, subject length, msg_id length, data length; then the body.
_RECORD = struct.Struct(">IHHI")


@dataclass(slots=True)
class PublisherStats:
    """Counters of one sink partition (gauges: buffered, on_disk, on_disk_bytes)."""

    published: int = 0  # messages sent, retries included
    acked: int = 0  # acks received, duplicates included
    duplicates: int = 0  # acks saying "already stored" (a retry or a replay)
    rejected: int = 0  # refused for good by the server (too large...), kept in rejected.records
    failures: int = 0  # failed connects and failed batches
    spilled: int = 0  # messages written to spill files
    buffered: int = 0  # messages waiting in memory
    on_disk: int = 0  # messages waiting in spill files
    on_disk_bytes: int = 0


def _encode(pub: Publication) -> bytes:
    subject = pub.subject.encode()
    msg_id = pub.msg_id.encode()
    body = b"".join((subject, msg_id, pub.data))
    return _RECORD.pack(zlib.crc32(body), len(subject), len(msg_id), len(pub.data)) + body


def _decode(buf: bytes) -> tuple[list[Publication], int]:
    """The whole records at the start of `buf`, and how many bytes they span."""
    records: list[Publication] = []
    pos = 0
    while pos + _RECORD.size <= len(buf):
        crc, subject_len, id_len, data_len = _RECORD.unpack_from(buf, pos)
        start = pos + _RECORD.size
        end = start + subject_len + id_len + data_len
        if end > len(buf) or zlib.crc32(buf[start:end]) != crc:
            break
        subject = buf[start : start + subject_len].decode()
        msg_id = buf[start + subject_len : start + subject_len + id_len].decode()
        records.append(Publication(subject, buf[start + subject_len + id_len : end], msg_id))
        pos = end
    return records, pos


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Segment:
    path: Path
    count: int = 0
    size: int = 0


class _SpillLog:
    """A FIFO of publications on disk: append-only segment files, read and deleted oldest first.

    Appends are buffered and made durable by `sync()` (one fsync per batch). The head
    segment is read whole; it is deleted once every record in it has been committed.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._segments: deque[_Segment] = deque()
        for path in sorted(directory.glob(f"*{SEGMENT_SUFFIX}")):
            segment = self._recover(path)
            if segment.count:
                self._segments.append(segment)
            else:
                path.unlink()
        self._next_index = int(self._segments[-1].path.stem) + 1 if self._segments else 0
        self._writer: IO[bytes] | None = None
        self._unsynced = False
        self._new_file = False
        self._head: list[Publication] | None = None
        self._head_pos = 0
        self.count = sum(s.count for s in self._segments)
        self.bytes = sum(s.size for s in self._segments)

    @staticmethod
    def _recover(path: Path) -> _Segment:
        """Count a segment left by an earlier run, cutting off a torn last record (never fsync'd)."""
        data = path.read_bytes()
        records, used = _decode(data)
        if used < len(data):
            log.warning("spill file %s: %d unreadable bytes after %d records cut off", path, len(data) - used, len(records))
            with open(path, "r+b") as out:
                out.truncate(used)
        return _Segment(path, len(records), used)

    def append(self, pubs: Iterable[Publication]) -> int:
        written = 0
        for pub in pubs:
            if self._writer is None or self._segments[-1].size >= SEGMENT_BYTES:
                self._open_segment()
            assert self._writer is not None
            record = _encode(pub)
            self._writer.write(record)
            segment = self._segments[-1]
            segment.count += 1
            segment.size += len(record)
            self.bytes += len(record)
            written += 1
        self.count += written
        self._unsynced = self._unsynced or written > 0
        return written

    def sync(self) -> None:
        if self._writer is not None and self._unsynced:
            self._writer.flush()
            os.fsync(self._writer.fileno())
        if self._new_file:
            _fsync_dir(self._dir)
        self._unsynced = self._new_file = False

    def peek(self, n: int) -> list[Publication]:
        if not self._segments:
            return []
        head = self._load_head()
        return head[self._head_pos : self._head_pos + n]

    def commit(self, k: int) -> None:
        """Forget the first k records (a spilled batch may span two segments)."""
        self.count -= k
        while k:
            head = self._load_head()
            step = min(k, len(head) - self._head_pos)
            self._head_pos += step
            k -= step
            if self._head_pos >= len(head):
                segment = self._segments.popleft()
                segment.path.unlink()
                self.bytes -= segment.size
                self._head = None

    def close(self) -> None:
        self._seal()

    def _load_head(self) -> list[Publication]:
        if self._head is None:
            segment = self._segments[0]
            if self._writer is not None and segment is self._segments[-1]:
                self._seal()  # we read what we wrote: later appends go to a new segment
            self._head, _ = _decode(segment.path.read_bytes())
            self._head_pos = 0
        return self._head

    def _open_segment(self) -> None:
        self._seal()
        path = self._dir / f"{self._next_index:012d}{SEGMENT_SUFFIX}"
        self._next_index += 1
        self._writer = open(path, "ab")
        self._segments.append(_Segment(path))
        self._new_file = True

    def _seal(self) -> None:
        if self._writer is not None:
            self.sync()
            self._writer.close()
            self._writer = None


class _Backlog:
    """Publications not yet acked, oldest first: in memory, or on disk once spilled.

    Anything on disk is older than anything in memory, because spilling moves all of
    memory and, while the disk holds anything, new publications go there too. So the
    head is on disk if the disk is not empty, and `commit` removes what `peek` returned
    even if memory was spilled in between. Not thread-safe: the partition's lock guards it.
    """

    def __init__(self, disk: _SpillLog) -> None:
        self.disk = disk
        self.memory: deque[Publication] = deque()
        self.memory_bytes = 0

    def __len__(self) -> int:
        return len(self.memory) + self.disk.count

    def push(self, pub: Publication) -> bool:
        """Append one publication; True if it went to disk."""
        if self.disk.count:
            self.disk.append((pub,))
            return True
        self.memory.append(pub)
        self.memory_bytes += len(pub.data)
        return False

    def spill_memory(self) -> int:
        moved = self.disk.append(self.memory)
        self.memory.clear()
        self.memory_bytes = 0
        self.disk.sync()
        return moved

    def peek(self, n: int) -> list[Publication]:
        if self.disk.count:
            return self.disk.peek(n)
        return [self.memory[i] for i in range(min(n, len(self.memory)))]

    def commit(self, k: int) -> None:
        if self.disk.count:
            self.disk.commit(k)
            return
        for _ in range(k):
            self.memory_bytes -= len(self.memory.popleft().data)


class _BatchFailed(Exception):
    """A batch was not acked in full: the connection is dropped and the batch sent again."""


@dataclass(slots=True)
class _Limits:
    max_in_flight: int
    buffer_messages: int
    buffer_bytes: int
    ack_timeout_s: float
    close_timeout_s: float
    retry_cap_s: float


def _redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//", url)


def _connect_options(auth: NatsAuth) -> dict[str, Any]:
    if auth.user is not None and auth.password is not None:
        return {"user": auth.user, "password": auth.password.get_secret_value()}
    if auth.token is not None:
        return {"token": auth.token.get_secret_value()}
    if auth.creds_file is not None:
        return {"user_credentials": str(auth.creds_file)}
    return {}


def _stream_config(name: str, streams: StreamSettings) -> StreamConfig:
    limits = streams.streams()[name]
    return StreamConfig(
        name=name,
        subjects=limits.subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_msgs=limits.max_msgs,
        max_bytes=limits.max_bytes,
        max_age=float(limits.max_age_s),
        max_consumers=limits.max_consumers,
        num_replicas=limits.replicas,
        duplicate_window=float(streams.duplicate_window_s),
    )


async def _ensure_streams(js: JetStreamContext, streams: StreamSettings) -> None:
    """Create the streams, or bring an existing one to our settings (add_stream is idempotent)."""
    for name in streams.streams():
        config = _stream_config(name, streams)
        try:
            await js.add_stream(config)
        except BadRequestError:  # exists with another configuration
            try:
                await js.update_stream(config)
            except BadRequestError as exc:
                log.error("stream %s: kept its existing configuration, the server refused ours: %s", name, exc.description)
            else:
                log.info("stream %s: configuration updated", name)


class _NatsPartition(StatefulSinkPartition[Publication, None]):
    def __init__(
        self, url: str, streams: StreamSettings, auth: NatsAuth, spill_dir: Path, limits: _Limits, stats: PublisherStats
    ) -> None:
        self._url = url
        self._where = _redact(url)
        self._streams = streams
        self._auth = auth
        self._limits = limits
        self.stats = stats
        self._known_subjects: set[str] = set()
        self._rejected_path = spill_dir / REJECTED_FILE
        self._cond = threading.Condition()
        self._backlog = _Backlog(_SpillLog(spill_dir))  # guarded by _cond
        self._down = False  # guarded by _cond; optimistic until the first connect fails
        self._close_by: float | None = None  # guarded by _cond; set by close()
        self._drained_from_disk = 0
        self._next_backlog_log = 0.0
        self._update_gauges()
        if self._backlog.disk.count:
            log.info("NATS sink: %d messages (%d bytes) left in %s by an earlier run; publishing them first",
                     self._backlog.disk.count, self._backlog.disk.bytes, spill_dir)
        self._loop = asyncio.new_event_loop()
        self._wakeup = asyncio.Event()  # more to send, or closing
        self._thread = threading.Thread(target=self._run_loop, name="nats-sink", daemon=True)
        self._thread.start()

    # ---- the Bytewax worker's side ----

    def write_batch(self, values: list[Publication]) -> None:
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
        if not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._wakeup.set)
            except RuntimeError:  # closed between the check and the call
                pass

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
            self._loop.close()

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
                js = nc.jetstream(publish_async_max_pending=self._limits.max_in_flight)
                await _ensure_streams(js, self._streams)
                log.info("NATS sink: connected to %s, streams ready, %d messages waiting", self._where, len(self._backlog))
                attempt = 0
                self._set_down(False)
                await self._drain(nc, js, lost)
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
            await self._wait_any(self._wakeup, timeout=remaining)

    async def _connect(self) -> tuple[Client, asyncio.Event]:
        lost = asyncio.Event()

        async def on_lost() -> None:
            lost.set()

        async def on_error(exc: Exception) -> None:
            log.debug("NATS client error: %s: %s", type(exc).__name__, exc)

        nc = await nats.connect(
            self._url,
            name="marketprism-sink",
            allow_reconnect=False,  # we reconnect ourselves, to resend in order
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            connect_timeout=CONNECT_TIMEOUT_S,
            disconnected_cb=on_lost,
            closed_cb=on_lost,
            error_cb=on_error,
            **_connect_options(self._auth),
        )
        return nc, lost

    async def _drain(self, nc: Client, js: JetStreamContext, lost: asyncio.Event) -> None:
        """Publish the backlog's head batch after batch, until closed (or a failure raises)."""
        while True:
            self._wakeup.clear()
            with self._cond:
                batch = self._backlog.peek(self._limits.max_in_flight)
            if self._done():
                return
            if not batch:
                await self._wait_any(self._wakeup, lost)
                if lost.is_set():
                    raise ConnectionError("connection closed")
                continue
            rejected = await self._publish(nc, js, lost, batch)
            self._commit(batch, rejected)

    @staticmethod
    async def _wait_any(*awaited: asyncio.Event | asyncio.Future[Any], timeout: float | None = None) -> None:
        """Until one event is set or one future is done (or the timeout passes)."""
        waiters = [asyncio.ensure_future(a.wait()) if isinstance(a, asyncio.Event) else a for a in awaited]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter, a in zip(waiters, awaited):
                if waiter is not a:
                    waiter.cancel()

    async def _publish(
        self, nc: Client, js: JetStreamContext, lost: asyncio.Event, batch: list[Publication]
    ) -> list[tuple[Publication, str]]:
        """Send a batch pipelined and wait for every ack; return what the server refused for good."""
        futures: list[asyncio.Future[PubAck] | None] = []
        rejected: list[tuple[Publication, str]] = []
        for pub in batch:
            if len(pub.data) + len(pub.msg_id) + HEADER_OVERHEAD > nc.max_payload:
                rejected.append((pub, f"{len(pub.data)} bytes exceed the server's max_payload {nc.max_payload}"))
                futures.append(None)
                continue
            futures.append(await js.publish_async(pub.subject, pub.data, headers={"Nats-Msg-Id": pub.msg_id}))
        sent = [f for f in futures if f is not None]
        self.stats.published += len(sent)
        if sent:
            all_acked = asyncio.ensure_future(asyncio.wait(sent))  # never raises; the futures hold the outcomes
            await self._wait_any(all_acked, lost, timeout=self._limits.ack_timeout_s)
            if not all_acked.done():
                all_acked.cancel()
                for future in sent:
                    future.cancel()
                raise _BatchFailed("connection lost with acks pending" if lost.is_set()
                                   else f"not every ack came within {self._limits.ack_timeout_s} s")
        failed: list[BaseException] = []
        for pub, future in zip(batch, futures):
            if future is None:
                continue
            exc = asyncio.CancelledError() if future.cancelled() else future.exception()
            if isinstance(exc, APIError) and exc.code == 400:
                rejected.append((pub, str(exc)))
            elif exc is not None:
                failed.append(exc)
            else:
                self.stats.acked += 1
                self.stats.duplicates += bool(future.result().duplicate)
        if failed:
            raise _BatchFailed(f"{len(failed)} of {len(sent)} publishes failed, first: {type(failed[0]).__name__}: {failed[0]}")
        return rejected

    def _commit(self, batch: list[Publication], rejected: list[tuple[Publication, str]]) -> None:
        if rejected:
            self._keep_rejected(rejected)
        with self._cond:
            from_disk = self._backlog.disk.count > 0
            self._backlog.commit(len(batch))
            if from_disk:
                self._drained_from_disk += len(batch)
                if not self._backlog.disk.count:
                    log.info("NATS sink: drained %d messages from disk", self._drained_from_disk)
                    self._drained_from_disk = 0
            self._update_gauges()
            self._cond.notify_all()

    def _keep_rejected(self, rejected: list[tuple[Publication, str]]) -> None:
        """Messages the server will never take are kept on disk, not retried forever nor dropped."""
        with open(self._rejected_path, "ab") as out:
            for pub, _ in rejected:
                out.write(_encode(pub))
            out.flush()
            os.fsync(out.fileno())
        for pub, reason in rejected:
            log.error("NATS sink: %s (msg id %s) refused by the server: %s; kept in %s",
                      pub.subject, pub.msg_id, reason, self._rejected_path)
        self.stats.rejected += len(rejected)


class NatsJetStreamSink(FixedPartitionedSink[Publication, None]):
    """Publishes `Publication`s to JetStream, creating or updating the streams on connect.

    `auth` defaults to the environment (MARKETPRISM_NATS_USER/PASSWORD, _TOKEN or
    _CREDS_FILE); credentials are never logged, and the URL is logged without user info.
    `stats` holds the partition's counters.
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
    ) -> None:
        if max_in_flight < 1 or buffer_messages < 1 or buffer_bytes < 1:
            raise ValueError("max_in_flight, buffer_messages and buffer_bytes must be positive")
        self.url = url
        self.streams = streams
        self.spill_dir = Path(spill_dir)
        self.auth = auth if auth is not None else NatsAuth()
        self.limits = _Limits(max_in_flight, buffer_messages, buffer_bytes, ack_timeout_s, close_timeout_s, retry_cap_s)
        self.stats = PublisherStats()

    def list_parts(self) -> list[str]:
        return [PARTITION]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _NatsPartition:
        return _NatsPartition(self.url, self.streams, self.auth, self.spill_dir, self.limits, self.stats)
