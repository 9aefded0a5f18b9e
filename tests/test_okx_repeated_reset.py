"""A sequence reset delivered twice is applied once, even when the new chain of seqIds has
climbed back to the reset's prevSeqId, so that its ids alone would make it a valid reset.

Found by the property test of repeats (`tests/test_properties.py`): snapshot 1000000, two
updates, a reset to 999999, a reset to 999997, an update back to 999999, then the second
reset again. A repeat is the same message, exchange time included; a genuine reset that
repeats the same ids (OKX may reuse ids after a reset) comes later and is applied.
"""

from __future__ import annotations

from operators.levels import parse_side
from operators.okx_sync import OkxBookSync
from operators.sync_base import SyncSettings
from operators.wire import OkxBookMessage

T0_MS = 1_700_000_000_000
SETTINGS = SyncSettings(depth=5, full_interval_ms=10**9, audit_interval_ms=None, snapshot_interval_ms=10**12)


def message(seq: int, prev: int, at_ms: int, bids: list[list[str]], snapshot: bool = False) -> OkxBookMessage:
    asks = [["101", "1", "0", "1"]] if snapshot else []
    return OkxBookMessage(
        snapshot, 400, parse_side(bids, "bids", True), parse_side(asks, "asks", False), bids, asks, 0, seq, prev,
        T0_MS + at_ms, (T0_MS + at_ms + 2) * 1_000_000,
    )


def bids_of(machine: OkxBookSync) -> list[list[str]]:
    return [list(level[:2]) for level in machine.book.bids.levels()]


def test_a_repeated_reset_is_dropped_once_the_chain_is_back_at_its_prev_seq_id() -> None:
    machine = OkxBookSync("okx", "BTC-USDT", SETTINGS)
    machine.on_book(message(1_000_000, -1, 0, [["100", "1", "0", "1"]], snapshot=True))
    machine.on_book(message(1_000_001, 1_000_000, 100, [["99", "2", "0", "1"]]))
    machine.on_book(message(1_000_002, 1_000_001, 200, [["98", "3", "0", "1"]]))
    machine.on_book(message(999_999, 1_000_002, 300, [["97", "4", "0", "1"]]))
    second_reset = message(999_997, 999_999, 400, [["100", "5", "0", "1"]])
    assert machine.on_book(second_reset)  # applied: a delta
    machine.on_book(message(999_999, 999_997, 500, [["100", "6", "0", "1"]]))
    assert machine.stats.updates_applied == 5
    assert bids_of(machine) == [["100", "6"], ["99", "2"], ["98", "3"], ["97", "4"]]

    repeat = message(999_997, 999_999, 400, [["100", "5", "0", "1"]])  # the same message, delivered again
    assert machine.on_book(repeat) == []
    assert machine.stats.updates_applied == 5 and machine.stats.gaps == 0
    assert bids_of(machine) == [["100", "6"], ["99", "2"], ["98", "3"], ["97", "4"]]

    genuine = message(999_997, 999_999, 600, [["100", "7", "0", "1"]])  # the same ids, a new reset
    assert machine.on_book(genuine)
    assert machine.stats.updates_applied == 6
    assert bids_of(machine)[0] == ["100", "7"]
