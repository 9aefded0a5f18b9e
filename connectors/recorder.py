"""The raw recorder: every RawEvent as received, in rotating `.jsonl.zst` files.

One file per venue and hour (`<dir>/<venue>/<YYYYMMDD-HH>-<worker>-<start>.jsonl.zst`), in
the recording format `marketprism replay` reads. Lines are compressed as independent
zstd frames at least once a second, each written and fsync'd whole, so a `kill -9`
loses at most the last second and every file stays readable (a reader drops only a torn
last frame). A restart never appends to an old file: it starts new ones.

Unit of parallelism: one partition per worker (each writes its own files).
Recovery snapshot: nothing; delivery: at-most-once (the recording is an archive of what
this process received, not a replayable log of the flow).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import zstandard
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.recording import event_to_json
from schemas.raw import RawEvent

FLUSH_EVERY_S = 1.0


class _HourFile:
    """One open recording file; lines wait in memory until the next frame is written."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._out: IO[bytes] = open(path, "ab")
        self._pending: list[bytes] = []
        self._compressor = zstandard.ZstdCompressor(level=9)

    def add(self, line: bytes) -> None:
        self._pending.append(line)

    def flush(self) -> None:
        if not self._pending:
            return
        frame = self._compressor.compress(b"".join(self._pending))
        self._pending = []
        self._out.write(frame)
        self._out.flush()
        os.fsync(self._out.fileno())

    def close(self) -> None:
        self.flush()
        self._out.close()


class _RecorderPartition(StatelessSinkPartition[RawEvent]):
    def __init__(self, directory: Path, worker: int) -> None:
        self._directory = directory
        self._tag = f"{worker}-{time.time_ns() // 1_000_000}"
        self._files: dict[tuple[str, str], _HourFile] = {}
        self._last_flush = time.monotonic()

    def _file(self, event: RawEvent) -> _HourFile:
        hour = datetime.fromtimestamp(event.recv_ns // 1_000_000_000, UTC).strftime("%Y%m%d-%H")
        key = (event.venue, hour)
        found = self._files.get(key)
        if found is None:
            for (venue, old_hour), old in list(self._files.items()):
                if venue == event.venue and old_hour < hour:
                    old.close()  # the hour is over: rotate
                    del self._files[(venue, old_hour)]
            path = self._directory / event.venue / f"{hour}-{self._tag}.jsonl.zst"
            found = self._files[key] = _HourFile(path)
        return found

    def write_batch(self, items: list[RawEvent]) -> None:
        for event in items:
            self._file(event).add(event_to_json(event) + b"\n")
        if time.monotonic() - self._last_flush >= FLUSH_EVERY_S:
            self._last_flush = time.monotonic()
            for hour_file in self._files.values():
                hour_file.flush()

    def close(self) -> None:
        for hour_file in self._files.values():
            hour_file.close()


class RecorderSink(DynamicSink[RawEvent]):
    """Records every RawEvent under `directory` (default `./data/recordings`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RecorderPartition:
        return _RecorderPartition(self.directory, worker_index)
