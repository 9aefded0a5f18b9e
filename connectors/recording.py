"""Reading and writing recordings: JSON Lines of RawEvents, plain, `.gz` or `.zst`.

One object per received message:
`{"recv_ns", "venue", "conn", "kind", "symbol", "url", "data"}`; extra keys are ignored.
A damaged line never stops a replay: it comes out as a `RecordingDefect`.
"""

from __future__ import annotations

import gzip
import heapq
import io
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import IO, Any

import msgspec
import orjson
import zstandard

from schemas.compiled import compiled
from schemas.raw import KINDS, VENUES, RawEvent, RecordingDefect

# A recording line longer than this is treated as damaged rather than parsed.
MAX_LINE_BYTES = 64 * 1024 * 1024


# Lines of the usual shape are read by msgspec straight into RawEvents, in one C call; the
# checks below send anything unusual to the general path (orjson reads ints past 2**64 as floats).
_decode_line = msgspec.json.Decoder(RawEvent).decode
_MAX_RECV_NS = 2**63
# Decompressed text is handed to the line reader this much at a time: fewer Python-level
# `readinto` calls than the default 8 KiB.
_READ_BUFFER_BYTES = 1 << 20
# Lines of the usual shape are read into RawEvents by C a block at a time, when it is built.
_LINES = compiled("connectors._recording_lines")
_KNOWN_VENUES, _KNOWN_KINDS = frozenset(VENUES), frozenset(KINDS)
# Without the compiled reader, items are handed out this many at a time.
_PYTHON_BLOCK_ITEMS = 1000
# A damaged compressed block or a file that ends mid-block.
_TORN = (zstandard.ZstdError, EOFError, OSError)


def open_binary(path: str | Path, mode: str) -> IO[bytes]:
    """Open `path` for binary reading ('rb') or writing ('wb'), compressed by its suffix."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, mode)  # type: ignore[return-value]
    if path.suffix == ".zst":
        if mode == "rb":
            return io.BufferedReader(_ZstdFrames(open(path, "rb")), buffer_size=_READ_BUFFER_BYTES)
        return zstandard.ZstdCompressor(level=9).stream_writer(open(path, "wb"), closefd=True)  # type: ignore[return-value]
    return open(path, mode)


class _ZstdFrames(io.RawIOBase):
    """The text of every zstd frame of a file, one after the other, including the flushed
    blocks of a last frame that was never finished (a recorder killed with -9: its file is
    one such frame; older recorder files hold one frame a second). `stream_reader` loses
    the blocks it still buffers when such a file ends, a decompressobj does not."""

    CHUNK = 1 << 16

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out:
            data = self._raw.read(self.CHUNK)
            if not data:
                return 0
            out = []
            while data:
                out.append(self._frame.decompress(data))
                data = b""
                if self._frame.eof:  # the next frame starts in what is left
                    data = self._frame.unused_data
                    self._frame = zstandard.ZstdDecompressor().decompressobj()
            self._out = memoryview(b"".join(out))
        size = min(len(buffer), len(self._out))
        buffer[:size] = self._out[:size]
        self._out = self._out[size:]
        return size

    def close(self) -> None:
        self._raw.close()
        super().close()


def event_to_json(event: RawEvent) -> bytes:
    """One recording line (without the newline)."""
    return orjson.dumps(
        {
            "recv_ns": event.recv_ns,
            "venue": event.venue,
            "conn": event.conn,
            "kind": event.kind,
            "symbol": event.symbol,
            "url": event.url,
            "data": event.data,
        }
    )


def event_from_json(line: bytes, where: str) -> RawEvent | RecordingDefect:
    """Parse one recording line, checking every field the format promises."""
    event = _usual_event(line)
    return event if event is not None else _checked_event(line, where)


def _usual_event(line: bytes) -> RawEvent | None:
    """A line of the usual shape as its RawEvent in one C call, or None: then the general
    path decides (and names the defect)."""
    try:
        event = _decode_line(line)
    except (msgspec.DecodeError, UnicodeError):
        return None
    if 0 <= event.recv_ns < _MAX_RECV_NS and event.venue in VENUES and event.kind in KINDS:
        return event
    return None


def _checked_event(line: bytes, where: str) -> RawEvent | RecordingDefect:
    """The general path: any JSON object, and a defect naming what is wrong with it."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return RecordingDefect(where, f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return RecordingDefect(where, "not a JSON object")
    recv_ns = obj.get("recv_ns")
    venue = obj.get("venue")
    kind = obj.get("kind")
    data = obj.get("data")
    symbol = obj.get("symbol")
    url = obj.get("url")
    conn = obj.get("conn", "")
    if not isinstance(recv_ns, int) or isinstance(recv_ns, bool) or recv_ns < 0:
        return RecordingDefect(where, f"recv_ns must be a non-negative integer, got {recv_ns!r}")
    if venue not in VENUES:
        return RecordingDefect(where, f"unknown venue {venue!r}")
    if kind not in KINDS:
        return RecordingDefect(where, f"unknown kind {kind!r}")
    if not isinstance(data, str):
        return RecordingDefect(where, "data must be the received text as a string")
    if symbol is not None and not isinstance(symbol, str):
        return RecordingDefect(where, "symbol must be a string or null")
    if url is not None and not isinstance(url, str):
        return RecordingDefect(where, "url must be a string or null")
    return RawEvent(recv_ns, venue, str(conn), kind, symbol, url, data)


def read_recording(path: str | Path) -> Iterator[RawEvent | RecordingDefect]:
    """Yield every line of one recording file in file order.

    A file cut short (a recorder killed mid-write, a copy in progress) yields what it holds
    and then one defect for the torn end.
    """
    return chain.from_iterable(recording_blocks(path))


def recording_blocks(path: str | Path) -> Iterator[list[RawEvent | RecordingDefect]]:
    """`read_recording`'s items a list at a time (a block of the file's lines each, of no
    fixed length): a replay takes them by the thousand, and pays nothing per line here."""
    name = Path(path).name
    with open_binary(path, "rb") as raw:
        stream = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
        yield from (_blocks_in_c(stream, name) if _LINES is not None else _blocks_in_python(stream, name))


def _blocks_in_python(stream: io.BufferedReader, name: str) -> Iterator[list[RawEvent | RecordingDefect]]:
    number = 0
    block: list[RawEvent | RecordingDefect] = []
    try:
        for number, line in enumerate(stream, start=1):
            item = _line_item(line, name, number)
            if item is not None:
                block.append(item)
                if len(block) == _PYTHON_BLOCK_ITEMS:
                    yield block
                    block = []
    except _TORN as exc:
        block.append(_torn_end(name, number, exc))
    if block:
        yield block


def _blocks_in_c(stream: io.BufferedReader, name: str) -> Iterator[list[RawEvent | RecordingDefect]]:
    """The lines of the usual shape read a block at a time by the compiled reader; it hands
    back every other line, and `_line_item` reads those as the Python loop does. The text
    is read into one buffer, where the start of a line read in part waits for the rest."""
    number = 0  # lines read so far
    buffer = bytearray(_READ_BUFFER_BYTES)
    kept = 0  # bytes at the buffer's start: a line that goes on in what comes next
    try:
        while True:
            if kept == len(buffer):  # a line longer than the buffer
                buffer.extend(bytes(len(buffer)))
            with memoryview(buffer) as whole, whole[kept:] as free:
                got = stream.readinto1(free)
            if not got:
                break
            items, lines, consumed = _block_items(buffer, kept + got, False, name, number)
            buffer[: kept + got - consumed] = buffer[consumed : kept + got]
            kept, number = kept + got - consumed, number + lines
            yield items
        if kept:  # a last line without its newline
            items, lines, _ = _block_items(buffer, kept, True, name, number)
            number += lines
            yield items
    except _TORN as exc:
        yield [_torn_end(name, number, exc)]


def _block_items(
    buffer: bytearray, length: int, whole: bool, name: str, number: int
) -> tuple[list[RawEvent | RecordingDefect], int, int]:
    """The items of the whole lines in the buffer's first `length` bytes (with `whole`, the
    last one may lack its newline), the first of them line `number + 1`; how many lines
    they were and how many bytes."""
    assert _LINES is not None
    items, lines, unread, consumed = _LINES.read_lines(
        buffer, length, whole, RawEvent, _KNOWN_VENUES, _KNOWN_KINDS, MAX_LINE_BYTES)
    if not unread:
        return items, lines, consumed
    read: list[RawEvent | RecordingDefect] = []
    for item in items:
        if type(item) is tuple:
            index, line = item
            handed_back = _line_item(line, name, number + index + 1)
            if handed_back is not None:
                read.append(handed_back)
        else:
            read.append(item)
    return read, lines, consumed


def _line_item(line: bytes, name: str, number: int) -> RawEvent | RecordingDefect | None:
    """One line as read (None for a blank one); `name:number` names a defect."""
    if len(line) > MAX_LINE_BYTES:
        return RecordingDefect(f"{name}:{number}", f"line of {len(line)} bytes exceeds {MAX_LINE_BYTES}")
    line = line.strip()
    if not line:
        return None
    event = _usual_event(line)  # the line's name is built only for a defect
    return event if event is not None else _checked_event(line, f"{name}:{number}")


def _torn_end(name: str, number: int, exc: Exception) -> RecordingDefect:
    return RecordingDefect(f"{name}:{number + 1}", f"file ends in a torn or damaged block: {exc}")


def _receive_order(item: RawEvent | RecordingDefect) -> int:
    # Defects carry no time; they sort first so they are reported early.
    return item.recv_ns if isinstance(item, RawEvent) else -1


def merge_recordings(paths: Iterable[str | Path]) -> Iterator[RawEvent | RecordingDefect]:
    """All files' lines in receive-time order; ties keep the order of the files as given."""
    paths = list(paths)
    if len(paths) == 1:
        return read_recording(paths[0])  # nothing to merge: spare every line a heap step
    return heapq.merge(*(read_recording(p) for p in paths), key=_receive_order)


def merged_chunks(paths: Iterable[str | Path], size: int) -> Iterator[list[RawEvent | RecordingDefect]]:
    """`merge_recordings`' items in lists of `size` (the last one shorter)."""
    paths = list(paths)
    if len(paths) != 1:
        items = merge_recordings(paths)
        return iter(lambda: list(islice(items, size)), [])
    return _rechunked(recording_blocks(paths[0]), size)


def _rechunked(blocks: Iterator[list[RawEvent | RecordingDefect]], size: int) -> Iterator[list[RawEvent | RecordingDefect]]:
    waiting: list[RawEvent | RecordingDefect] = []
    for block in blocks:
        waiting += block
        start = 0
        while len(waiting) - start >= size:
            yield waiting[start:start + size]
            start += size
        del waiting[:start]
    if waiting:
        yield waiting


class RecordingWriter:
    """Appends RawEvents to one recording file; compression follows the suffix."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = open_binary(self.path, "wb")
        self.count = 0

    def write(self, event: RawEvent) -> None:
        self._out.write(event_to_json(event) + b"\n")
        self.count += 1

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
