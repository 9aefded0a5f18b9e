"""A sink that turns items into publications on a thread of its own, off the flow's worker.

A 5000-level full book takes milliseconds to encode as JSON; on the worker, every message
behind it waits that long. `OffWorkerSink` hands the items to a thread that encodes them
and writes the publications to the wrapped sink's partition, so the worker only queues.

Unit of parallelism: the wrapped sink's partitions (one per partition, one thread each).
Recovery snapshot: the wrapped partition's; `snapshot()` first waits until every item
written so far has been encoded and written through, so an epoch's durability is the
wrapped sink's, as if there were no thread.
Delivery: the wrapped sink's; order per partition is kept (one thread, FIFO).
Backpressure: at most `max_pending` items wait; `write_batch` waits beyond that.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from schemas.publication import Publication

log = logging.getLogger(__name__)

Item = TypeVar("Item")
State = TypeVar("State")

Encode = Callable[[Item], list[Publication]]


class _OffWorkerPartition(StatefulSinkPartition[Item, State], Generic[Item, State]):
    def __init__(
        self,
        inner: StatefulSinkPartition[Publication, State],
        encode: Encode[Item],
        name: str,
        max_pending: int,
    ) -> None:
        self._inner, self._encode, self._max_pending = inner, encode, max_pending
        self._cond = threading.Condition()
        self._pending: deque[list[Item]] = deque()  # guarded by _cond
        self._pending_items = 0  # written, not yet through the wrapped sink; guarded by _cond
        self._closing = False  # guarded by _cond
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def write_batch(self, values: list[Item]) -> None:
        if not values:
            return
        with self._cond:
            while self._pending_items >= self._max_pending and self._error is None:
                self._cond.wait(1.0)
            self._raise_if_failed()
            self._pending.append(values)
            self._pending_items += len(values)
            self._cond.notify_all()

    def snapshot(self) -> State:
        self._wait_until_through()
        return self._inner.snapshot()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        self._inner.close()
        self._raise_if_failed()

    def _wait_until_through(self) -> None:
        with self._cond:
            while self._pending_items and self._error is None:
                self._cond.wait(1.0)
            self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError("off-worker sink: encoding or writing failed; see the log above") from self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                values = self._pending[0]
            try:
                self._inner.write_batch([pub for value in values for pub in self._encode(value)])
            except BaseException as exc:
                log.exception("off-worker sink: a batch of %d items failed", len(values))
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._pending.popleft()
                self._pending_items -= len(values)
                self._cond.notify_all()


class OffWorkerSink(FixedPartitionedSink[Item, State], Generic[Item, State]):
    """`inner` fed with `encode(item)` for every item, encoded on a thread per partition."""

    def __init__(
        self, inner: FixedPartitionedSink[Publication, State], encode: Encode[Item], *, max_pending: int = 64
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be positive")
        self.inner, self.encode, self.max_pending = inner, encode, max_pending

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def part_fn(self, item_key: str) -> int:
        return self.inner.part_fn(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state: State | None) -> _OffWorkerPartition[Item, State]:
        inner = self.inner.build_part(step_id, for_part, resume_state)
        return _OffWorkerPartition(inner, self.encode, f"encode {step_id}", self.max_pending)
