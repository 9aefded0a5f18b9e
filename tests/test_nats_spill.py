"""The sink's backlog on its own: FIFO across memory and spill files, segment rotation, recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

import connectors.spill_log as spill_log
from connectors.spill_log import Backlog, SpillLog
from schemas.publication import Publication


def pubs(n: int, start: int = 0) -> list[Publication]:
    return [Publication("orderbook.delta.okx.btc-usdt", b"payload-%d" % i, f"id-{i}") for i in range(start, start + n)]


def drain(backlog: Backlog | SpillLog, batch: int) -> list[Publication]:
    out: list[Publication] = []
    while head := backlog.peek(batch):
        out += head
        backlog.commit(len(head))
    return out


def test_spill_log_is_a_fifo_across_segments_and_deletes_what_was_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill_log, "SEGMENT_BYTES", 500)  # a handful of records per segment
    log = SpillLog(tmp_path)
    log.append(pubs(40))
    log.sync()
    assert log.count == 40 and len(list(tmp_path.glob("*.spill"))) > 3
    first = log.peek(7)
    log.commit(7)
    log.append(pubs(10, start=40))  # appends while draining land behind
    assert first + drain(log, 7) == pubs(50)
    assert log.count == 0 and log.bytes == 0 and not list(tmp_path.glob("*.spill"))


def test_a_batch_spilled_while_in_flight_is_still_committed_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill_log, "SEGMENT_BYTES", 300)
    backlog = Backlog(SpillLog(tmp_path))
    for pub in pubs(30):
        backlog.push(pub)
    in_flight = backlog.peek(20)  # taken from memory...
    assert backlog.spill_memory() == 30  # ...then NATS goes away and memory moves to disk (several segments)
    backlog.commit(len(in_flight))  # the acks arrive after all
    assert backlog.push(pubs(1, start=30)[0]) is True, "while the disk holds anything, new messages go behind it"
    assert drain(backlog, 4) == pubs(31)[20:]
    assert backlog.push(pubs(1, start=31)[0]) is False, "drained: memory again"


def test_peeks_past_what_is_in_flight_keep_their_places_when_memory_spills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill_log, "SEGMENT_BYTES", 800)  # two segments
    backlog = Backlog(SpillLog(tmp_path))
    for pub in pubs(30):
        backlog.push(pub)
    first = backlog.peek(8)
    second = backlog.peek(8, start=8)  # sent while the first 8 are unacked
    assert first + second == pubs(16)
    backlog.spill_memory()  # NATS away: the 30 move to disk, in flight or not
    backlog.commit(5)  # some acks came after all
    head_segment = backlog.peek(100)  # the disk part is read one segment at a time
    h = len(head_segment)
    assert head_segment == pubs(30)[5 : 5 + h] and 3 < h < 25
    assert backlog.peek(100, start=h) == [], "the next segment comes once the head is committed"
    assert backlog.peek(2, start=h - 2) == pubs(30)[5 + h - 2 : 5 + h]
    backlog.commit(h)
    assert drain(backlog, 4) == pubs(30)[5 + h :]
    assert len(backlog) == 0 and not list(tmp_path.glob("*.spill"))


def test_a_new_log_resumes_the_files_of_the_last_one(tmp_path: Path) -> None:
    log = SpillLog(tmp_path)
    log.append(pubs(5))
    log.close()
    log = SpillLog(tmp_path)
    log.append(pubs(5, start=5))  # into a new segment, after the old ones
    assert drain(log, 3) == pubs(10)
