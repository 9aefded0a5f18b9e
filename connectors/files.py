"""Bytewax sinks that write files: normalized events as JSON Lines, and single JSON documents.

JsonLinesSink — unit of parallelism: one partition (one file, in stream order, which is
what makes two replays of one input byte-identical). Recovery snapshot: bytes written so
far (plain files are truncated back to it on resume). Delivery: exactly-once for plain
files, at-least-once for compressed ones (a compressed stream cannot be cut back).

JsonDocumentSink — one partition; writes the last document it receives when the flow
ends (used for the replay report). Snapshot: nothing. Delivery: written once, at close.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import orjson
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from connectors.recording import open_binary


class _JsonLinesPartition(StatefulSinkPartition[bytes, int]):
    def __init__(self, path: Path, resume_bytes: int | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_bytes is not None and path.suffix not in (".gz", ".zst"):
            self._out: IO[bytes] = open(path, "r+b")
            self._out.truncate(resume_bytes)
            self._out.seek(resume_bytes)
            self._written = resume_bytes
        else:
            self._out = open_binary(path, "wb")
            self._written = 0

    def write_batch(self, values: list[bytes]) -> None:
        data = b"".join(line + b"\n" for line in values)
        self._out.write(data)
        self._written += len(data)

    def snapshot(self) -> int:
        self._out.flush()
        return self._written

    def close(self) -> None:
        self._out.close()


class JsonLinesSink(FixedPartitionedSink[bytes, int]):
    """Writes already-encoded JSON lines to one file (compressed by suffix). Each item is
    one line without its newline, or several joined by newlines (a replay writes a chunk
    of events as one item); the sink ends every item with a newline."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def list_parts(self) -> list[str]:
        return ["lines"]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _JsonLinesPartition:
        return _JsonLinesPartition(self.path, resume_state)


class _DocumentPartition(StatefulSinkPartition[dict[str, Any], None]):
    def __init__(self, path: Path | None, capture: list[dict[str, Any]] | None) -> None:
        self._path = path
        self._capture = capture
        self._document: dict[str, Any] | None = None

    def write_batch(self, values: list[dict[str, Any]]) -> None:
        self._document = values[-1]

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        if self._document is None:
            return
        if self._capture is not None:
            self._capture.append(self._document)
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._path.write_bytes(orjson.dumps(self._document, option=orjson.OPT_INDENT_2) + b"\n")


class JsonDocumentSink(FixedPartitionedSink[dict[str, Any], None]):
    """Writes one JSON document at the end of the flow, to a file and/or an in-process list."""

    def __init__(self, path: Path | None, capture: list[dict[str, Any]] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.capture = capture

    def list_parts(self) -> list[str]:
        return ["document"]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _DocumentPartition:
        return _DocumentPartition(self.path, self.capture)
