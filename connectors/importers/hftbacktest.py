"""Import hftbacktest's raw Binance captures (its collector's `<symbol>_<date>.gz` files).

Each line is `<local_receive_ns> <message text>`. The message is either a
combined-stream websocket message `{"stream": "btcusdt@depth@100ms", "data": {...}}`
or a REST depth snapshot the collector wrote inline, bare and without a symbol:
`{"lastUpdateId": ..., "bids": ..., "asks": ...}`. One file per symbol and day;
consecutive files continue each other.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from connectors.importers.stats import ImportStats
from connectors.recording import RecordingWriter
from schemas.raw import RawEvent
from schemas.symbols import normalize_binance_symbol

_GZIP_MAGIC = b"\x1f\x8b"
# 1973-03-03 in ns. A smaller receive time is in µs or ms (older collectors), not ns.
_MIN_NS = 10**17


def import_hftbacktest(paths: list[Path], symbol: str, out: Path) -> ImportStats:
    """Write the messages of `paths`, files of one `symbol`, to the recording `out`.

    The snapshots name no symbol, so `symbol` ("btcusdt", "BTCUSDT" or "BTC-USDT")
    supplies it; a name that cannot be split raises ValueError before anything is
    written. Files are taken in the order of their first receive time, each as one
    connection named after the file.
    """
    snapshot_symbol = normalize_binance_symbol(symbol)
    stats = ImportStats()
    ordered = sorted((Path(p) for p in paths), key=_first_recv_ns)
    with RecordingWriter(out) as writer:
        for path in ordered:
            for event in _read_file(path, snapshot_symbol, stats):
                writer.write(event)
                stats.count(event)
    return stats


def _open_text(path: Path) -> IO[bytes]:
    """The file's lines as bytes, gunzipped when the content is gzip, whatever the name says."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def _first_recv_ns(path: Path) -> int:
    """The receive time of the file's first readable line; -1 (sorts first) if it has none."""
    try:
        with _open_text(path) as lines:
            for raw in lines:
                head = raw.split(b" ", 1)[0]
                if head.isdigit():
                    return int(head)
    except (OSError, EOFError, zlib.error):
        pass  # _read_file reports the damage when it reaches this file
    return -1


def _read_file(path: Path, snapshot_symbol: str, stats: ImportStats) -> Iterator[RawEvent]:
    """The messages of one file in file order; bad lines and a cut-off end go to `stats`."""
    number = 0
    try:
        with _open_text(path) as lines:
            for number, raw in enumerate(lines, start=1):
                event = _parse_line(raw, path.name, snapshot_symbol, f"{path.name}:{number}", stats)
                if event is not None:
                    yield event
    except (OSError, EOFError, zlib.error) as exc:
        stats.error(f"{path.name}:{number + 1}", f"file unreadable from here on ({exc}); earlier lines were imported")


def _parse_line(raw: bytes, conn: str, snapshot_symbol: str, where: str, stats: ImportStats) -> RawEvent | None:
    try:
        line = raw.removesuffix(b"\n").decode("utf-8")
    except UnicodeDecodeError as exc:
        stats.error(where, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None
    if not line:
        return None
    head, _, text = line.partition(" ")
    if not (head.isascii() and head.isdigit()):
        stats.error(where, f"line does not start with a receive time in ns: {line[:60]!r}")
        return None
    recv_ns = int(head)
    if recv_ns < _MIN_NS:
        stats.error(where, f"receive time {recv_ns} is too small to be in ns")
        return None
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        stats.error(where, f"message is not JSON: {exc}")
        return None
    if isinstance(message, dict) and "stream" in message:
        return RawEvent(recv_ns, "binance", conn, "ws", None, None, text)
    if isinstance(message, dict) and "lastUpdateId" in message:
        return RawEvent(recv_ns, "binance", conn, "rest", snapshot_symbol, None, text)
    stats.error(where, f"neither a combined-stream message nor a depth snapshot: {text[:60]!r}")
    return None
