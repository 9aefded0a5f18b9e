"""The compiled recording-line reader reads each line as JSON says it is, or hands it back.

Why: `connectors/_recording_lines.c` reads nearly every line of a replay straight into a
RawEvent. What it reads must be what the line says (judged by Python's json), and a file
must give the very same items, defects and line numbers included, whether the compiled
reader ran or not, however the file falls into blocks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connectors.recording as recording
from connectors.recording import read_recording
from schemas.raw import KINDS, VENUES, RawEvent
from sim.recording import generate_recording

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any]]:
    """The file's items by the compiled reader and by the Python loop."""
    assert recording._LINES is not None, "connectors/_recording_lines.c was not built; run `pip install -e .`"
    compiled = list(read_recording(path))
    with monkeypatch.context() as patch:
        patch.setattr(recording, "_LINES", None)
        python = list(read_recording(path))
    return compiled, python


def truth(line: bytes) -> RawEvent | None:
    """The line by Python's json when it is a recording line of the usual fields, else None."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    fields = ("recv_ns", "venue", "conn", "kind", "symbol", "url", "data")
    if type(obj) is not dict or set(obj) != set(fields):
        return None
    return RawEvent(*(obj[name] for name in fields))


def test_real_and_simulated_recordings_read_alike(tmp_path: Path, real_recordings: dict[str, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    generated = tmp_path / "sim.jsonl.zst"
    generate_recording(generated, venues=("binance", "okx"), symbols=("BTC-USDT",), seconds=10, seed=3)
    for path in [generated, *real_recordings.values()]:
        compiled, python = both_ways(path, monkeypatch)
        assert len(compiled) > 100 and compiled == python, path.name


def test_every_line_the_reader_takes_is_what_json_says(real_recordings: dict[str, Path]) -> None:
    assert recording._LINES is not None
    for path in real_recordings.values():
        with recording.open_binary(path, "rb") as raw:
            block = raw.read()
        lines = block.splitlines(keepends=True)
        items, count, unread, consumed = recording._LINES.read_lines(
            block, len(block), True, RawEvent, frozenset(VENUES), frozenset(KINDS), recording.MAX_LINE_BYTES)
        assert consumed == len(block)
        written = [line for line in lines if line.strip()]  # a blank line gives no item
        assert count == len(lines) and len(items) == len(written) and unread <= 0.01 * count, path.name
        for item, line in zip(items, written):
            assert item == truth(line) if type(item) is RawEvent else item[1] == line


TEXTS = st.text(max_size=12) | st.text(st.characters(codec="ascii"), max_size=40) | st.sampled_from(
    ['{"stream":"btcusdt@trade","data":{"p":"1.5"}}', 'a\\b"c/', "\t\n\r\b\f\x7f", "é", "\u2028"])
USUAL = st.fixed_dictionaries({
    "recv_ns": st.integers(0, 2**63 - 1),
    "venue": st.sampled_from(VENUES),
    "conn": TEXTS,
    "kind": st.sampled_from(KINDS),
    "symbol": st.none() | TEXTS,
    "url": st.none() | TEXTS,
    "data": TEXTS,
})
ANY = st.fixed_dictionaries({
    "recv_ns": st.integers(-1, 2**64) | st.sampled_from([0, 2**63 - 1, 2**63]) | st.floats(0, 10) | st.text(max_size=2),
    "venue": st.sampled_from([*VENUES, "kraken", ""]),
    "conn": TEXTS,
    "kind": st.sampled_from([*KINDS, "fix"]),
    "symbol": st.none() | TEXTS,
    "url": st.none() | TEXTS,
    "data": TEXTS | st.integers(),
}, optional={"extra": st.integers()})


def render(line: dict[str, Any], ascii_only: bool, spacing: str) -> bytes:
    text = json.dumps(line, separators=(",", ":"), ensure_ascii=ascii_only)
    return (spacing + text.replace(",", "," + spacing) + spacing).encode()


def read_by_c(lines: list[bytes]) -> list[RawEvent | tuple[int, bytes]]:
    assert recording._LINES is not None
    block = b"\n".join(lines)
    items, _, _, _ = recording._LINES.read_lines(
        block, len(block), True, RawEvent, frozenset(VENUES), frozenset(KINDS), recording.MAX_LINE_BYTES)
    return items  # type: ignore[no-any-return]


def short_escaped(text: str) -> bool:
    """ASCII that JSON writes with no escape but the two-character ones: what the reader takes."""
    return text.isascii() and all(ch >= " " or ch in "\b\f\n\r\t" for ch in text)


@PROPERTY
@given(lines=st.lists(USUAL, min_size=1, max_size=8))
def test_the_recorders_lines_read_as_json_says(lines: list[dict[str, Any]]) -> None:
    rendered = [recording.event_to_json(RawEvent(**line)) for line in lines]
    items = read_by_c(rendered)
    assert len(items) == len(rendered)
    for index, (item, line, fields) in enumerate(zip(items, rendered, lines)):
        if all(short_escaped(value) for value in fields.values() if type(value) is str):
            assert type(item) is RawEvent and item == truth(line)
        else:  # handed back as it was, for Python to read
            assert type(item) is tuple and item[0] == index and item[1].rstrip(b"\n") == line


@PROPERTY
@given(lines=st.lists(st.tuples(USUAL | ANY, st.booleans(), st.sampled_from(["", "", "", " ", "\t"])), max_size=8),
       blank=st.sampled_from([b"", b"\n", b"  \n", b"x\n", b"{}\n"]), block=st.sampled_from([1, 7, 64, 1 << 20]))
def test_any_lines_read_alike_however_they_fall_into_blocks(
    lines: list[tuple[dict[str, Any], bool, str]], blank: bytes, block: int, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "lines.jsonl"
    rendered = [render(line, ascii_only, spacing) for line, ascii_only, spacing in lines]
    path.write_bytes(blank + b"\n".join(rendered))
    monkeypatch.setattr(recording, "_READ_BUFFER_BYTES", block)
    compiled, python = both_ways(path, monkeypatch)
    assert compiled == python
    for item, line in zip(read_by_c(rendered), rendered):
        if type(item) is RawEvent:
            assert item == truth(line)


def test_a_line_past_the_limit_is_a_defect_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    event = RawEvent(5, "okx", "c", "ws", "BTC-USDT", None, "x" * 50)
    path = tmp_path / "long.jsonl"
    path.write_bytes(recording.event_to_json(event) + b"\n" + recording.event_to_json(event)[:60] + b"\n")
    monkeypatch.setattr(recording, "MAX_LINE_BYTES", 100)
    compiled, python = both_ways(path, monkeypatch)
    assert compiled == python
    assert [type(item).__name__ for item in compiled] == ["RecordingDefect", "RecordingDefect"]
    assert "exceeds 100" in str(compiled[0]) and "long.jsonl:1" in str(compiled[0]) and "long.jsonl:2" in str(compiled[1])


def test_a_torn_file_gives_the_same_lines_and_defect_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [RawEvent(n, "binance", "c", "ws", None, None, f'{{"n":{n}}}') for n in range(20_000)]
    whole = b"".join(recording.event_to_json(event) + b"\n" for event in events)
    compressed = zstandard.ZstdCompressor(level=1).compress(whole)
    path = tmp_path / "torn.jsonl.zst"
    path.write_bytes(compressed[: len(compressed) // 2] + b"\x00" * 64 + compressed[len(compressed) // 2 + 64:])
    compiled, python = both_ways(path, monkeypatch)
    assert compiled == python
    assert type(compiled[-1]).__name__ == "RecordingDefect" and compiled[:-1] == events[: len(compiled) - 1]
