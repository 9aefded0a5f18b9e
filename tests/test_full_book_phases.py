"""Periodic full books of different books are spread over the interval, not published at once.

Why: every book publishes a full book when it enters a snapshot slot (the same exchange time
for all), and its periodic ones followed one interval after: the four books of a collector
then encoded and sent four 510 KB messages in the same millisecond, each waiting for the
others (full books' latency P50 18-24 ms). Now a book's first periodic full book after a
slot boundary's comes one interval plus the book's own phase later (crc32 of `venue:symbol`, within
the interval), and the next ones one interval apart, as before. Truth: the phases
(pinned, and checked against crc32), and the recording's own diff receive times.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from pathlib import Path

import orjson

from connectors.recording import read_recording
from flows.replay import run_replay
from schemas.raw import RawEvent
from sim.recording import generate_recording

INTERVAL_MS = 1000
SLOT_MS = 10_000
# crc32 of each book's key, modulo the interval, in ms.
PHASES_MS = {"BTC-USDT": 271.862222, "ETH-USDT": 882.632212}


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def _diff_times(recording: Path) -> dict[str, list[float]]:
    """Each book's diffs' receive times (ms, to the µs a full book's `collected_at` shows)."""
    times: dict[str, list[float]] = {symbol: [] for symbol in PHASES_MS}
    for raw in read_recording(recording):
        if isinstance(raw, RawEvent) and raw.kind == "ws" and "depthUpdate" in raw.data:
            symbol = orjson.loads(raw.data)["data"]["s"].replace("USDT", "-USDT")
            times[symbol].append(raw.recv_ns // 1000 / 1000)
    return times


def test_phases_are_crc32_of_the_book_within_the_interval() -> None:
    for symbol, phase_ms in PHASES_MS.items():
        assert zlib.crc32(f"binance:{symbol}".encode()) % (INTERVAL_MS * 1_000_000) / 1e6 == phase_ms


def test_a_books_periodic_full_books_follow_its_phase_after_each_slot(tmp_path: Path) -> None:
    recording, out = tmp_path / "rec.jsonl.zst", tmp_path / "events.jsonl"
    generate_recording(recording, venues=("binance",), symbols=tuple(PHASES_MS), seconds=35, seed=4,
                       binance_depth_limit=200)
    run_replay([recording], out=out, full_interval_ms=INTERVAL_MS, depth=200, snapshot_interval_ms=SLOT_MS)
    books: dict[str, list[tuple[float, bool]]] = {symbol: [] for symbol in PHASES_MS}
    slots: dict[str, float] = {}
    for line in out.read_bytes().splitlines():
        event = orjson.loads(line)
        if event.get("event_type") == "orderbook":
            # A slot boundary's full book: its exchange time in the next 10 s slot (the sync's
            # own snapshot opens the first slot: no boundary shared with the other books).
            slot, last = _ms(event["timestamp"]) // SLOT_MS, slots.get(event["symbol_name"])
            slots[event["symbol_name"]] = slot
            books[event["symbol_name"]].append((_ms(event["collected_at"]), last is not None and slot != last))
    diffs = _diff_times(recording)
    for symbol, fulls in books.items():
        assert len(fulls) >= 30
        after_slot = 0
        for (before, slot_before), (at, slot_start) in zip(fulls, fulls[1:]):
            if slot_start:
                continue  # a slot's full book comes with the slot's first diff, however soon
            # Due one interval after the last full book, plus the phase after a slot
            # boundary's: it comes with the first diff received then.
            due = before + INTERVAL_MS + (PHASES_MS[symbol] if slot_before else 0)
            assert abs(at - min(t for t in diffs[symbol] if t >= due - 0.001)) < 0.002, (symbol, before, at)
            after_slot += slot_before
        assert after_slot >= 3
