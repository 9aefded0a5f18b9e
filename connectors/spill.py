"""A FIFO of large items (whole insert batches) in memory, spilled to one file per item.

Why one file per item rather than the NATS sink's segment log: a batch is thousands of
rows, so files stay few, and writing each to a temporary name, fsync'ing and renaming it
means a file either exists whole or not at all: no torn record to cut off on recovery.

Anything on disk is older than anything in memory, because spilling moves all of memory
and, while the disk holds anything, new items go there too. So the head is the oldest
file if there is one, and `commit` removes the head even if memory was spilled between
`peek` and `commit`. A file that cannot be decoded is renamed `*.corrupt`, logged and
skipped. Not thread-safe: the owner's lock guards it.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
SUFFIX = ".batch"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all (temporary name, fsync, rename); the caller fsyncs the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class SpillQueue(Generic[T]):
    def __init__(self, directory: Path, encode: Callable[[T], bytes], decode: Callable[[bytes], T]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for tmp in directory.glob(".*.tmp"):  # a write cut short: the item was never reported durable
            tmp.unlink()
        self._dir = directory
        self._encode, self._decode = encode, decode
        self._files: deque[tuple[Path, int]] = deque((p, p.stat().st_size) for p in sorted(directory.glob(f"*{SUFFIX}")))
        self._next = int(self._files[-1][0].stem) + 1 if self._files else 0
        self._head: T | None = None  # the decoded oldest file
        self.memory: deque[T] = deque()
        self.disk_bytes = sum(size for _, size in self._files)

    def __len__(self) -> int:
        return len(self.memory) + len(self._files)

    @property
    def disk_count(self) -> int:
        return len(self._files)

    def push(self, item: T) -> bool:
        """Append one item; True if it went to disk (made durable before returning)."""
        if self._files:
            self._write(item)
            fsync_dir(self._dir)
            return True
        self.memory.append(item)
        return False

    def spill_memory(self) -> int:
        """Move every item in memory to disk, oldest first; how many moved."""
        moved = len(self.memory)
        for item in self.memory:
            self._write(item)
        self.memory.clear()
        if moved:
            fsync_dir(self._dir)
        return moved

    def peek(self) -> T | None:
        while self._files:
            if self._head is not None:
                return self._head
            path, _ = self._files[0]
            try:
                self._head = self._decode(path.read_bytes())
            except Exception as exc:
                log.error("spill file %s cannot be read (%s: %s); kept as %s.corrupt and skipped",
                          path, type(exc).__name__, exc, path.name)
                path.rename(path.with_name(path.name + ".corrupt"))
                self._drop_head_file()
        return self.memory[0] if self.memory else None

    def commit(self) -> None:
        """Forget the head: the oldest file, or else the oldest item in memory."""
        if self._files:
            self._files[0][0].unlink()
            self._drop_head_file()
        else:
            self.memory.popleft()

    def _drop_head_file(self) -> None:
        _, size = self._files.popleft()
        self.disk_bytes -= size
        self._head = None

    def _write(self, item: T) -> None:
        path = self._dir / f"{self._next:016d}{SUFFIX}"
        self._next += 1
        data = self._encode(item)
        write_durably(path, data)
        self._files.append((path, len(data)))
        self.disk_bytes += len(data)
