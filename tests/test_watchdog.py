"""The watchdog's decisions on a hand-driven clock: escalation while out of sync, silence while in sync."""

from __future__ import annotations

from operators.book_sync import BookSync
from operators.levels import parse_side
from operators.sync_base import SyncSettings
from operators.wire import DepthSnapshot
from schemas.events import QualityEvent, ResyncRequest, Trade

S = 1_000_000_000
T0 = 1_700_000_000 * S
SETTINGS = SyncSettings(depth=10, watchdog_ms=30_000)


def _said(events: list[object]) -> list[tuple[str, str]]:
    out = []
    for event in events:
        if isinstance(event, QualityEvent):
            out.append(("quality", event.kind))
        elif isinstance(event, ResyncRequest):
            out.append(("resync", event.action))
    return out


def test_a_book_that_never_syncs_is_asked_ever_more_firmly_every_watchdog_period() -> None:
    book = BookSync("binance:BTC-USDT", SETTINGS)
    machine = book.machine
    assert machine.watch(T0) == []  # the first look starts the clock
    assert machine.watch(T0 + 29 * S) == []
    said = [_said(machine.watch(T0 + n * 30 * S)) for n in range(1, 5)]
    assert said == [
        [("quality", "sync_timeout"), ("resync", "snapshot")],
        [("quality", "sync_timeout"), ("resync", "resubscribe")],
        [("quality", "sync_timeout"), ("resync", "reconnect")],
        [("quality", "sync_timeout"), ("resync", "reconnect")],
    ]
    assert machine.stats.watchdog_actions == 4


def _snapshot(recv_ns: int) -> DepthSnapshot:
    bids = parse_side([["99.5", "1"]], "bids", bids=True)
    asks = parse_side([["100.5", "1"]], "asks", bids=False)
    return DepthSnapshot(last_id=7, bids=bids, asks=asks, limit=10, recv_ns=recv_ns)


def test_a_synced_book_that_hears_nothing_goes_out_of_sync_and_asks_for_a_new_connection() -> None:
    book = BookSync("binance:BTC-USDT", SETTINGS)
    synced = book.handle(_snapshot(T0))
    assert _said(synced) == [("quality", "in_sync")]
    book.handle(Trade("binance", "BTC-USDT", "1", "100", "1", "buy", None, T0))  # the stream's last word
    book.handle(_snapshot(T0 + 20 * S))  # a REST answer says nothing of the stream
    assert book.machine.watch(T0 + 29 * S) == []
    said = book.machine.watch(T0 + 30 * S)
    assert _said(said) == [("quality", "silent"), ("quality", "out_of_sync"), ("resync", "reconnect")]
    assert not book.machine.synced
    # Out of sync from then on: the escalation clock starts at the silence.
    assert book.machine.watch(T0 + 59 * S) == []
    assert _said(book.machine.watch(T0 + 60 * S)) == [("quality", "sync_timeout"), ("resync", "snapshot")]
    # A fresh snapshot brings it back, and the escalation starts over.
    assert _said(book.handle(_snapshot(T0 + 61 * S))) == [("quality", "in_sync")]
