"""The per-`venue:symbol` operator state: the venue's sync machine plus trades and tickers.

This is what the Bytewax stateful step holds for each key; it stays engine-free so the
same object runs in tests, benchmarks and any other driver.
"""

from __future__ import annotations

from operators.binance_sync import BinanceBookSync
from operators.okx_sync import OkxBookSync
from operators.sync_base import SyncMachine, SyncSettings
from operators.wire import DepthDiff, DepthSnapshot, OkxBookMessage, Rejected
from schemas.events import BookStats, Ticker, Trade


def _machine(venue: str, symbol: str, settings: SyncSettings) -> SyncMachine:
    if venue == "okx":
        return OkxBookSync(venue, symbol, settings)
    return BinanceBookSync(venue, symbol, settings)


class BookSync:
    """Routes one key's decoded messages to its machine; trades and tickers pass through."""

    def __init__(self, key: str, settings: SyncSettings) -> None:
        venue, _, symbol = key.partition(":")
        self.machine = _machine(venue, symbol, settings)
        self.book_seen = False

    def handle(self, msg: object) -> list[object]:
        machine = self.machine
        if isinstance(msg, DepthDiff):
            self.book_seen = True
            return machine.on_diff(msg)  # type: ignore[attr-defined]
        if isinstance(msg, OkxBookMessage):
            self.book_seen = True
            return machine.on_book(msg)  # type: ignore[attr-defined]
        if isinstance(msg, DepthSnapshot):
            self.book_seen = True
            return machine.on_snapshot(msg)  # type: ignore[attr-defined]
        if isinstance(msg, Trade):
            machine.stats.trades += 1
            return [msg]
        if isinstance(msg, Ticker):
            return [msg]
        if isinstance(msg, Rejected):
            self.book_seen = True
            return machine.reject(msg.reason, msg.recv_ns)
        raise TypeError(f"book_sync got an unexpected {type(msg).__name__}")

    def stats(self) -> BookStats:
        return self.machine.snapshot_stats()
