"""Bytewax source that replays recordings: RawEvents in receive-time order.

`RecordingChunkSource` emits the same records a batch at a time, as lists.

Unit of parallelism: one partition for all files, because books must see their
messages in receive order across files (the `.ws` and `.http` halves of a capture).
Recovery snapshot: the number of records already emitted (a plain int).
Delivery: exactly-once into the dataflow when resumed from that count.
"""

from __future__ import annotations

from itertools import chain, islice
from pathlib import Path

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from connectors.recording import merged_chunks
from schemas.raw import RawEvent, RecordingDefect

BATCH_SIZE = 1000


class _RecordingPartition(StatefulSourcePartition[RawEvent | RecordingDefect, int]):
    def __init__(self, paths: list[Path], resume_count: int) -> None:
        self._chunks = merged_chunks(paths, BATCH_SIZE)
        if resume_count:  # the next chunks start where the snapshot was taken, as they did then
            records = chain.from_iterable(self._chunks)
            for _ in islice(records, resume_count):
                pass
            self._chunks = iter(lambda: list(islice(records, BATCH_SIZE)), [])
        self._emitted = resume_count

    def next_batch(self) -> list[RawEvent | RecordingDefect]:
        batch = next(self._chunks, None)
        if batch is None:
            raise StopIteration()
        self._emitted += len(batch)
        return batch

    def snapshot(self) -> int:
        return self._emitted


class _RecordingChunkPartition(_RecordingPartition):
    def next_batch(self) -> list[list[RawEvent | RecordingDefect]]:  # type: ignore[override]
        return [super().next_batch()]


class RecordingSource(FixedPartitionedSource[RawEvent | RecordingDefect, int]):
    """Replays one or more recording files (plain, .gz, .zst) merged by receive time."""

    def __init__(self, paths: list[Path]) -> None:
        missing = [str(p) for p in paths if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"recording not found: {', '.join(missing)}")
        self.paths = [Path(p) for p in paths]

    def list_parts(self) -> list[str]:
        return ["recording"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _RecordingPartition:
        return _RecordingPartition(self.paths, resume_state or 0)


class RecordingChunkSource(RecordingSource):
    """The same records, each batch of BATCH_SIZE as one item (a list): for a replay, whose
    steps then pay Bytewax's per-item cost once per chunk. Same snapshot and guarantee."""

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _RecordingChunkPartition:  # type: ignore[override]
        return _RecordingChunkPartition(self.paths, resume_state or 0)
