"""What the store's JetStream source and its ClickHouse sink tell each other: which stream
messages are committed (and may be acked), when JetStream confirmed those acks (only then
may the sink forget the batch), and which an earlier run already put in a durable batch
(so their redelivery must not be batched a second time).

Items travel source -> sink as `Stored`: the event, the stream message it came from
(`stream`, `seq`, for the ack) and `ident`, the name the dedup token is made of.
Thread-safe: the sink's writer thread commits, the source's worker thread takes acks.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# Stream sequences per stream name: what a batch acknowledges once committed.
Acks = dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class Stored:
    """One event to store, and where it came from. `seq` is None for a gap marker, which
    acknowledges nothing; `ident` names it in its batch's dedup token either way."""

    stream: str
    seq: int | None
    ident: str
    event: object


class AckTicket:
    """The acks of one committed batch: set once JetStream confirmed every one of them."""

    def __init__(self, acks: Acks) -> None:
        self._waiting = {stream: len(seqs) for stream, seqs in acks.items() if seqs}
        self._lock = threading.Lock()
        self.done = threading.Event()
        if not self._waiting:
            self.done.set()

    def acked(self, stream: str, count: int) -> None:
        with self._lock:
            self._waiting[stream] -= count
            if all(left <= 0 for left in self._waiting.values()):
                self.done.set()


class AckLedger:
    """Committed sequences waiting for their ack, and sequences held by an earlier run's batches."""

    def __init__(self, journaled: Acks | None = None) -> None:
        self._lock = threading.Lock()
        self._ready: dict[str, list[tuple[AckTicket, list[int]]]] = defaultdict(list)
        self._journaled: dict[str, set[int]] = {s: set(q) for s, q in (journaled or {}).items()}
        self._journaled_done: dict[str, set[int]] = defaultdict(set)

    def committed(self, acks: Acks) -> AckTicket:
        """A batch holding `acks` is inserted: the source may ack them; the ticket says when it has."""
        ticket = AckTicket(acks)
        with self._lock:
            for stream, seqs in acks.items():
                self._ready[stream].append((ticket, seqs))
                held = self._journaled.get(stream)
                if held:
                    done = held.intersection(seqs)
                    held.difference_update(done)
                    self._journaled_done[stream].update(done)
        return ticket

    def take_ready(self, stream: str) -> list[tuple[AckTicket, list[int]]]:
        with self._lock:
            return self._ready.pop(stream, [])

    def journaled(self, stream: str, seq: int) -> bool | None:
        """True: in an earlier run's batch, not committed yet; False: in one, committed
        already; None: in none, so it is new to this run."""
        with self._lock:
            if seq in self._journaled.get(stream, ()):
                return True
            if seq in self._journaled_done.get(stream, ()):
                return False
            return None

    def streams(self) -> Iterable[str]:
        with self._lock:
            return list(self._journaled)
