"""Dataflow steps shared by the replay and collect flows: decoding and the keyed book_sync."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import compress, repeat
from operator import eq
from datetime import datetime, timedelta, timezone

from bytewax.operators import StatefulLogic

from flows.live_features import LiveFeatures
from operators.book_sync import BookSync
from operators.features.engine import FeatureSettings
from operators.report import ReportBuilder
from operators.decode import Keyed, decode, decode_typed_chunk_keyed
from operators.sync_base import SyncSettings
from operators.wire import Ignored, Rejected
from schemas.events import BookStats, QualityEvent
from schemas.raw import ParsedRawEvent, RawEvent, RecordingDefect
from schemas.sliced_json import loads_yielding

# The key under which items that name no book (defects, unkeyed rejects) travel.
UNKEYED = ""

# What a book's recovery snapshot holds: the last update id it published, None before any.
BookResume = int | None

# (key, counters, whether the key carried a book): what book_sync hands the report or status board.
FinalStats = tuple[str, BookStats, bool]


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A book's counters every few seconds, for the live status board."""

    key: str
    stats: BookStats
    synced: bool
    at_ns: int  # when the counters were read, so lag is measured then and not when printed


class DecodedRawEvent(RawEvent, frozen=True, gc=True):
    """A RawEvent already decoded where it arrived: `decoded` is exactly what `decode` gives
    for it. The live source decodes REST answers (5000-level snapshots, OKX books-full:
    milliseconds each) on its own thread, so the flow's worker never stalls the messages
    behind them; it records and replays as the plain RawEvent it is."""

    decoded: list[Keyed] | Ignored


def decode_off_worker(raw: RawEvent) -> RawEvent:
    """The live source's `prepare` hook: the REST answer with its decoding done, from the
    document the REST client parsed already (`ParsedRawEvent`), or else parsed in slices
    that leave the GIL to the flow's worker now and then (`schemas.sliced_json`)."""
    if type(raw) is ParsedRawEvent:
        document = raw.document
        decoded = decode(raw, okx_loads=lambda _text: document)
    else:
        decoded = decode(raw, okx_loads=loads_yielding)
    return DecodedRawEvent(raw.recv_ns, raw.venue, raw.conn, raw.kind, raw.symbol, raw.url, raw.data, decoded)


def decode_step(item: RawEvent | RecordingDefect) -> list[tuple[str, tuple[str, object]]]:
    """Key each decoded message by its book; what names no book travels under UNKEYED."""
    if isinstance(item, RecordingDefect):
        return [(UNKEYED, (UNKEYED, f"recording {item.where}: {item.reason}"))]
    decoded = item.decoded if type(item) is DecodedRawEvent else decode(item)
    if isinstance(decoded, Ignored):
        return []
    out: list[tuple[str, tuple[str, object]]] = []
    for key, msg in decoded:
        if key is None:
            assert isinstance(msg, Rejected)
            event = QualityEvent(msg.venue, None, "rejected", msg.reason, None, msg.recv_ns)
            out.append((UNKEYED, (UNKEYED, event)))
        else:
            out.append((key, (key, msg)))
    return out


def decode_chunk_step(chunk: list[RawEvent | RecordingDefect]) -> list[tuple[str, tuple[str, object]]]:
    """`decode_step` over a replay chunk, with each book's messages gathered into one list:
    one Bytewax item per book and chunk instead of one per message. Only a replay reads
    chunks; a live flow keeps `decode_step`, so no message waits for others."""
    keys, messages = decode_typed_chunk_keyed(chunk)  # type: ignore[arg-type]
    if None not in keys:  # all typed: each book's messages picked out by C loops, in order
        return [(key, (key, list(compress(messages, map(eq, keys, repeat(key)))))) for key in dict.fromkeys(keys)]  # type: ignore[misc]
    out: list[tuple[str, tuple[str, object]]] = []
    books: dict[str, list[object]] = {}
    for item, key, msg in zip(chunk, keys, messages):
        if key is not None:
            if key in books:
                books[key].append(msg)
            else:
                books[key] = [msg]
            continue
        for key, keyed in decode_step(item):
            if key == UNKEYED:
                out.append((key, keyed))
            elif key in books:
                books[key].append(keyed[1])
            else:
                books[key] = [keyed[1]]
    out.extend((key, (key, msgs)) for key, msgs in books.items())
    return out


class BookSyncLogic(StatefulLogic[tuple[str, object], object, BookResume]):
    """Holds one key's BookSync; hands over its counters at end of input. Live (with
    `status_every`), it also wakes every `status_every` to run the book's watchdog on the
    wall clock and hand its counters to the status board; a replay never looks at a clock.

    With `features`, the book's live feature engine runs here too (`LiveFeatures`): its rows
    follow the events that made them, and full books carry `ml_features`.

    Recovery snapshot: a plain value, the book's last update id (`BookResume`), never the
    book: a live feed cannot rewind, so after a restart the book resyncs from a fresh
    snapshot, and what it missed meanwhile is said as a `gap` quality event.
    """

    def __init__(
        self,
        settings: SyncSettings,
        resume: BookResume,
        status_every: timedelta | None = None,
        *,
        features: FeatureSettings | None = None,
    ) -> None:
        self.settings = settings
        self.sync: BookSync | None = None
        self.resume = resume
        self.status_every = status_every
        self.feature_settings = features
        self.features: LiveFeatures | None = None
        self._next_status: datetime | None = None

    def _start(self, key: str) -> BookSync:
        self.sync = BookSync(key, self.settings)
        self.sync.machine.resumed_after = self.resume
        if self.feature_settings is not None:
            self.features = LiveFeatures(key, self.feature_settings)
        return self.sync

    def on_item(self, value: tuple[str, object]) -> tuple[Iterable[object], bool]:
        key, msg = value
        sync = self.sync or self._start(key)
        if self.status_every is not None and self._next_status is None:
            self._next_status = datetime.now(timezone.utc) + self.status_every
        events = sync.handle(msg)
        return (events if self.features is None else self.features.add_to(events)), StatefulLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[object], bool]:
        assert self.sync is not None and self.status_every is not None
        self._next_status = datetime.now(timezone.utc) + self.status_every
        machine = self.sync.machine
        now_ns = time.time_ns()
        out = machine.watch(now_ns)
        if self.features is not None:
            out = self.features.add_to(out)
        stats = replace(self.sync.stats(), errors=[])
        out.append(StatusUpdate(f"{machine.venue}:{machine.symbol}", stats, machine.synced, now_ns))
        return out, StatefulLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[object], bool]:
        if self.sync is None:
            return [], StatefulLogic.DISCARD
        machine = self.sync.machine
        final: FinalStats = (f"{machine.venue}:{machine.symbol}", self.sync.stats(), self.sync.book_seen)
        return [final], StatefulLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return self._next_status

    def snapshot(self) -> BookResume:
        if self.sync is None:
            return self.resume
        machine = self.sync.machine
        return machine.stats.last_update_id if machine.synced else machine.resumed_after


class BookSyncChunkLogic(BookSyncLogic):
    """BookSyncLogic fed `decode_chunk_step`'s lists: emits one list of events per chunk
    (the events the messages would have given one by one, in order), or nothing."""

    def on_item(self, value: tuple[str, object]) -> tuple[Iterable[object], bool]:
        key, msgs = value
        events = (self.sync or self._start(key)).handle_many(msgs)  # type: ignore[arg-type]
        if self.features is not None:
            events = self.features.add_to(events)
        return ([events] if events else []), StatefulLogic.RETAIN


def report_fold(builder: ReportBuilder, item: object) -> ReportBuilder:
    """Fold one item into the report: a recording defect, an unkeyed reject, or a book's final counters."""
    if isinstance(item, str):
        builder.add_error(item)
    elif isinstance(item, QualityEvent):
        builder.add_error(f"{item.venue}: rejected message: {item.detail}")
    else:
        key, stats, has_book = item  # type: ignore[misc]
        builder.add_book(key, stats, has_book)
    return builder
