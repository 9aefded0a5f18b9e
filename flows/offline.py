"""The sync engine over recordings without a dataflow, for benchmarks and tests that want
the normalized events in a plain loop (the replay flow is the product path)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from connectors.recording import merge_recordings
from operators.book_sync import BookSync
from operators.decode import decode
from operators.sync_base import SyncSettings
from operators.wire import Ignored
from schemas.raw import RawEvent


def sync_messages(paths: Iterable[Path], settings: SyncSettings | None = None) -> Iterator[tuple[RawEvent, list[object]]]:
    """Every received message of the recordings, with the events book_sync made of it."""
    settings = settings or SyncSettings()
    books: dict[str, BookSync] = {}
    for raw in merge_recordings(paths):
        if not isinstance(raw, RawEvent):
            continue
        produced: list[object] = []
        decoded = decode(raw)
        if not isinstance(decoded, Ignored):
            for key, msg in decoded:
                if key is not None:
                    book = books.get(key) or books.setdefault(key, BookSync(key, settings))
                    produced.extend(book.handle(msg))
        yield raw, produced


def recording_events(paths: Iterable[Path], settings: SyncSettings | None = None) -> Iterator[object]:
    """Just the normalized events, in the order book_sync emitted them."""
    for _, produced in sync_messages(paths, settings):
        yield from produced
