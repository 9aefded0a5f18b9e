"""The raw recorder: every RawEvent as received, in rotating `.jsonl.zst` files.

One file per venue and hour (`<dir>/<venue>/<YYYYMMDD-HH>-<worker>-<start>.jsonl.zst`), in
the recording format `marketprism replay` reads. Each file is one zstd frame whose window
spans the whole file: consecutive OKX books-full answers differ in a few levels, so a
compressor that still sees the last seconds stores the next answer in a few kilobytes
(25x smaller than the JSON received, against 4x when every second was a frame of its
own). At least once a second the lines received are compressed and the block is flushed
(`FLUSH_BLOCK`: the frame stays open), written and fsync'd, so a `kill -9` loses at most
the last second and every file stays readable: a reader gets every flushed block of a
frame that was never finished (`connectors.recording` drops only a torn last block).
Writing the lines and compressing them run on a thread of its own (python-zstandard
releases the GIL), so the flow only hands each second's events over. A restart never
appends to an old file: it starts new ones.

Unit of parallelism: one partition per worker (each writes its own files).
Recovery snapshot: nothing; delivery: at-most-once (the recording is an archive of what
this process received, not a replayable log of the flow).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import zstandard
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.recording import event_to_json
from schemas.raw import RawEvent, as_received

log = logging.getLogger(__name__)

HOUR_NS = 3600 * 1_000_000_000
FLUSH_EVERY_S = 1.0
# Level 5 with an 8 MB window: 25x on a default run (level 9 with its 4 MB window: 24x,
# a block flushed in 1.1 ms against 0.5 ms), 12 MB of compressor per file.
LEVEL = 5
WINDOW_LOG = 23
BACKLOG = 64  # seconds of events waiting for the writer thread before the flow waits


class _HourFile:
    """One open recording file: events wait in memory until the writer thread turns them
    into lines and compresses them."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._out: IO[bytes] = open(path, "ab")
        self._pending: list[RawEvent] = []
        params = zstandard.ZstdCompressionParameters.from_level(LEVEL, window_log=WINDOW_LOG)
        self._compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()

    def add(self, event: RawEvent) -> None:
        self._pending.append(event)

    def take(self) -> list[RawEvent]:
        """The events added since the last call (the flow's side)."""
        events, self._pending = self._pending, []
        return events

    def write(self, events: list[RawEvent]) -> None:
        """`events` as lines, compressed into the open frame and made durable (the writer
        thread's side: a 330 KB OKX books-full answer takes the worker no time to record)."""
        chunk = b"".join([event_to_json(event) + b"\n" for event in events])
        data = self._compressor.compress(chunk) + self._compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        self._durable(data)

    def finish(self) -> None:
        """End the frame and close the file (the writer thread's side)."""
        self._durable(self._compressor.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
        self._out.close()

    def _durable(self, data: bytes) -> None:
        self._out.write(data)
        self._out.flush()
        os.fsync(self._out.fileno())


class _Writer(threading.Thread):
    """Compresses and writes what the flow hands over, in order; times every flush."""

    def __init__(self) -> None:
        super().__init__(name="recorder", daemon=True)
        self.jobs: queue.Queue[tuple[_HourFile, list[RawEvent] | None] | None] = queue.Queue(BACKLOG)
        self.flush_ms: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:
                hour_file, events = job
                started = time.perf_counter()
                if events is None:
                    hour_file.finish()
                    continue
                hour_file.write(events)
                self.flush_ms.append((time.perf_counter() - started) * 1000)
        except BaseException as exc:  # the flow raises it on its next write
            self.error = exc
            log.exception("recorder: writing stopped")


class _RecorderPartition(StatelessSinkPartition[RawEvent]):
    def __init__(self, directory: Path, worker: int) -> None:
        self._directory = directory
        self._tag = f"{worker}-{time.time_ns() // 1_000_000}"
        self._files: dict[tuple[str, str], _HourFile] = {}
        self._hour = ("", 0, 0)  # the last hour's name and [start, end) in ns: one datetime per hour, not per event
        self._last_flush = time.monotonic()
        self._handoff_ms: list[float] = []
        self._writer = _Writer()
        self._writer.start()

    def _hour_of(self, recv_ns: int) -> str:
        hour, start, end = self._hour
        if not start <= recv_ns < end:
            start = recv_ns - recv_ns % HOUR_NS
            hour = datetime.fromtimestamp(start // 1_000_000_000, UTC).strftime("%Y%m%d-%H")
            self._hour = (hour, start, start + HOUR_NS)
        return hour

    def _file(self, event: RawEvent) -> _HourFile:
        hour = self._hour_of(event.recv_ns)
        key = (event.venue, hour)
        found = self._files.get(key)
        if found is None:
            for (venue, old_hour), old in list(self._files.items()):
                if venue == event.venue and old_hour < hour:
                    self._hand_over(old, old.take())  # the hour is over: rotate
                    self._hand_over(old, None)
                    del self._files[(venue, old_hour)]
            path = self._directory / event.venue / f"{hour}-{self._tag}.jsonl.zst"
            found = self._files[key] = _HourFile(path)
        return found

    def _hand_over(self, hour_file: _HourFile, events: list[RawEvent] | None) -> None:
        if self._writer.error is not None:
            raise RuntimeError(f"recorder: writing {hour_file.path} failed") from self._writer.error
        if events is None or events:
            self._writer.jobs.put((hour_file, events))

    def write_batch(self, items: list[RawEvent]) -> None:
        for event in items:
            self._file(event).add(as_received(event))  # held up to a backlog: the text only
        if time.monotonic() - self._last_flush >= FLUSH_EVERY_S:
            started = time.perf_counter()
            self._last_flush = time.monotonic()
            for hour_file in self._files.values():
                self._hand_over(hour_file, hour_file.take())
            self._handoff_ms.append((time.perf_counter() - started) * 1000)

    def close(self) -> None:
        for hour_file in self._files.values():
            self._hand_over(hour_file, hour_file.take())
            self._hand_over(hour_file, None)
        self._writer.jobs.put(None)
        self._writer.join()
        log.info("recorder closed: %s", _timing(self._writer.flush_ms, self._handoff_ms))


def _timing(flush_ms: list[float], handoff_ms: list[float]) -> str:
    """One line on how long flushes took on the writer thread and on the flow."""
    if not flush_ms:
        return "nothing written"
    flush, handoff = sorted(flush_ms), sorted(handoff_ms) or [0.0]
    return (f"{len(flush)} flushes, compress+write+fsync p50 {flush[len(flush) // 2]:.2f} ms, "
            f"p99 {flush[int(len(flush) * 0.99)]:.2f} ms, max {flush[-1]:.2f} ms (writer thread); "
            f"hand-over on the flow p50 {handoff[len(handoff) // 2]:.3f} ms, max {handoff[-1]:.3f} ms")


class RecorderSink(DynamicSink[RawEvent]):
    """Records every RawEvent under `directory` (default `./data/recordings`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RecorderPartition:
        return _RecorderPartition(self.directory, worker_index)
