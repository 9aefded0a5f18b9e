"""Import cryptofeed raw-data captures (`<EXCHANGE>.ws.*` / `<EXCHANGE>.http.*` files).

cryptofeed's `raw_data_collection` writes every received message with its local
receive time, which is all a recording needs. The line forms are:

    <url> <-> <ts>            a websocket connection opened
    <url> <- <ts>: <json>     a message the recorder sent (not imported, counted)
    <ts>: <text>              a websocket message received on the latest connection
    <url> -> <ts>: <json>     a REST response

`<ts>` is decimal seconds. Received text is kept byte for byte: the sync engine
verifies OKX checksums on the exact strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from connectors.importers.stats import ImportStats
from connectors.recording import RecordingWriter
from schemas.raw import RawEvent
from schemas.symbols import normalize_binance_symbol

_OPENED = re.compile(r"(?P<url>\S+) <-> [0-9]+(?:\.[0-9]+)?")
_MESSAGE = re.compile(r"(?:(?P<url>\S+) (?P<arrow><-|->) )?(?P<ts>[0-9]+(?:\.[0-9]+)?): (?P<text>.*)")

# Host suffix -> venue. okex.com is OKX's former host, serving the same v5 protocol.
_VENUE_HOSTS: tuple[tuple[str, str], ...] = (
    ("binance.com", "binance"),
    ("binance.us", "binance_us"),
    ("okx.com", "okx"),
    ("okex.com", "okx"),
)


@dataclass(slots=True, frozen=True)
class _Connection:
    """The websocket connection that received lines belong to."""

    url: str
    venue: str | None
    conn: str
    line: int


def import_cryptofeed(paths: list[Path], out: Path) -> ImportStats:
    """Write the messages of all `paths` to the recording `out`, in receive-time order.

    The `.ws.` and `.http.` files of one capture interleave by time (the REST snapshot
    arrives between websocket diffs), so all events are sorted together; the sort is
    stable, so equal times keep file order. Holds one capture in memory while sorting.
    """
    stats = ImportStats()
    events = [event for path in paths for event in _read_capture(Path(path), stats)]
    events.sort(key=attrgetter("recv_ns"))
    with RecordingWriter(out) as writer:
        for event in events:
            writer.write(event)
            stats.count(event)
    return stats


def seconds_to_ns(text: str) -> int:
    """Decimal seconds text -> integer ns, rounded half to even, without float error.

    "1633998512.0633569" -> 1633998512063356900, where float arithmetic would be off by ns.
    """
    whole, _, fraction = text.partition(".")
    if len(fraction) <= 9:
        return int(whole) * 1_000_000_000 + int(fraction.ljust(9, "0"))
    scale = 10 ** (len(fraction) - 9)
    ns, remainder = divmod(int(whole + fraction), scale)
    if 2 * remainder > scale or (2 * remainder == scale and ns % 2):
        ns += 1
    return ns


def venue_of(url: str) -> str | None:
    """The venue serving `url`, from its host name; None for a host we do not know."""
    host = urlsplit(url).hostname or ""
    for suffix, venue in _VENUE_HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return venue
    return None


def _read_capture(path: Path, stats: ImportStats) -> Iterator[RawEvent]:
    """The received messages of one capture file, in file order; bad lines go to `stats`."""
    connection: _Connection | None = None
    opened = 0
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, start=1):
            where = f"{path.name}:{number}"
            try:
                line = raw.removesuffix(b"\n").decode("utf-8")
            except UnicodeDecodeError as exc:
                stats.error(where, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
                continue
            if not line:
                continue
            if opening := _OPENED.fullmatch(line):
                opened += 1
                connection = _open(opening["url"], f"{path.name}#{opened}", number, where, stats)
            elif (match := _MESSAGE.fullmatch(line)) is None:
                stats.error(where, f"not a cryptofeed capture line: {line[:60]!r}")
            elif match["arrow"] == "<-":
                stats.skipped += 1
            elif match["arrow"] == "->":
                yield from _rest_event(match, path.name, where, stats)
            else:
                yield from _ws_event(match, connection, where, stats)


def _open(url: str, conn: str, number: int, where: str, stats: ImportStats) -> _Connection:
    venue = venue_of(url)
    if venue is None:
        stats.error(where, f"connection to {url} is on no venue we import")
    return _Connection(url, venue, conn, number)


def _ws_event(
    match: re.Match[str], connection: _Connection | None, where: str, stats: ImportStats
) -> Iterator[RawEvent]:
    if connection is None:
        stats.error(where, "message received before any connection was opened ('<->' line)")
    elif connection.venue is None:
        stats.error(where, f"message on the connection of line {connection.line}, which has no known venue")
    else:
        yield RawEvent(
            seconds_to_ns(match["ts"]), connection.venue, connection.conn, "ws", None, connection.url, match["text"]
        )


def _rest_event(match: re.Match[str], file_name: str, where: str, stats: ImportStats) -> Iterator[RawEvent]:
    url = match["url"]
    venue = venue_of(url)
    if venue is None:
        stats.error(where, f"REST response from {url}, which is on no venue we import")
        return
    try:
        symbol = _rest_symbol(venue, url)
    except ValueError as exc:
        stats.error(where, str(exc))
        return
    yield RawEvent(seconds_to_ns(match["ts"]), venue, file_name, "rest", symbol, url, match["text"])


def _rest_symbol(venue: str, url: str) -> str | None:
    """The instrument a REST request asked for; None for requests about no single one."""
    query = parse_qs(urlsplit(url).query)
    if venue == "okx":
        inst_ids = query.get("instId")
        return inst_ids[0].upper() if inst_ids else None
    symbols = query.get("symbol")
    return normalize_binance_symbol(symbols[0]) if symbols else None
