"""The NATS sink's durable FIFO of publications: memory first, append-only spill files on disk.

Why a segment log rather than `connectors.spill`'s one file per item: a publication is one
small message, so thousands go to a file and one fsync covers a whole batch; a torn last
record (never fsync'd, so never reported durable) is cut off on recovery by its crc32.
`Backlog` keeps the order across memory and disk; `SpillLog` is the disk part alone.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from connectors.spill import fsync_dir
from schemas.publication import Publication

log = logging.getLogger(__name__)

SEGMENT_BYTES = 16 * 1024 * 1024
SEGMENT_SUFFIX = ".spill"

# A spill record: crc32 of the body, subject length, msg_id length, data length; then the body.
_RECORD = struct.Struct(">IHHI")


def encode_record(pub: Publication) -> bytes:
    subject = pub.subject.encode()
    msg_id = pub.msg_id.encode()
    body = b"".join((subject, msg_id, pub.data))
    return _RECORD.pack(zlib.crc32(body), len(subject), len(msg_id), len(pub.data)) + body


def decode_records(buf: bytes) -> tuple[list[Publication], int]:
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


@dataclass(slots=True)
class _Segment:
    path: Path
    count: int = 0
    size: int = 0


class SpillLog:
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
        records, used = decode_records(data)
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
            record = encode_record(pub)
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
            fsync_dir(self._dir)
        self._unsynced = self._new_file = False

    def peek(self, n: int, start: int = 0) -> list[Publication]:
        """Up to n records from the `start`-th uncommitted one, read from the head segment only
        (fewer, or none, where it ends: they come once it is committed)."""
        if not self._segments:
            return []
        head = self._load_head()
        return head[self._head_pos + start : self._head_pos + start + n]

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
            self._head, _ = decode_records(segment.path.read_bytes())
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


class Backlog:
    """Publications not yet acked, oldest first: in memory, or on disk once spilled.

    Anything on disk is older than anything in memory, because spilling moves all of
    memory and, while the disk holds anything, new publications go there too. So a
    position counts from the oldest publication whether it lies in memory or on disk:
    `peek(n, start)` reads on from a position (a pipelined sender peeks past what it has
    in flight), and `commit(k)` removes the k oldest, even if memory was spilled in
    between. Not thread-safe: the partition's lock guards it.
    """

    def __init__(self, disk: SpillLog) -> None:
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

    def peek(self, n: int, start: int = 0) -> list[Publication]:
        """Up to n publications from position `start`; on disk, no further than its head segment."""
        if start < self.disk.count:
            return self.disk.peek(n, start)
        start -= self.disk.count
        return [self.memory[i] for i in range(start, min(start + n, len(self.memory)))]

    def commit(self, k: int) -> None:
        on_disk = min(k, self.disk.count)
        if on_disk:
            self.disk.commit(on_disk)
        for _ in range(k - on_disk):
            self.memory_bytes -= len(self.memory.popleft().data)
