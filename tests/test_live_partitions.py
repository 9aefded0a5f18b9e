"""Which books a worker's partition of the live source runs, and that it polls them as one."""

from __future__ import annotations

import asyncio

from connectors.live_source import LiveSource
from schemas.raw import RawEvent
from tests.sim_server_support import wait_for

KEYS = ["binance:BTC-USDT", "binance:ETH-USDT", "okx:BTC-USDT", "okx:ETH-USDT"]


class _OneMessageFeed:
    """Emits one websocket message naming its book, then waits to be stopped."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def run(self, emit: object, stop: asyncio.Event) -> None:
        venue, _, symbol = self.key.partition(":")
        emit(RawEvent(1, venue, f"{self.key}#ws", "ws", symbol, None, "{}"))  # type: ignore[operator]
        await stop.wait()


def _books_of(worker: int, workers: int) -> list[str]:
    built: list[str] = []

    def make_feed(key: str) -> _OneMessageFeed:
        built.append(key)
        return _OneMessageFeed(key)

    part = LiveSource(KEYS, make_feed).build("exchanges", worker, workers)
    try:
        seen: list[RawEvent] = []

        def every_book_spoke() -> bool:
            seen.extend(part.next_batch())
            return len(seen) >= len(built)

        if built:
            wait_for(every_book_spoke, 10.0, "a message from every feed of the partition")
        assert sorted(f"{e.venue}:{e.symbol}" for e in seen) == sorted(built), "one queue holds every book's messages"
    finally:
        part.close()
    return built


def test_each_worker_takes_every_nth_book_and_every_book_is_taken_once() -> None:
    assert _books_of(0, 1) == KEYS
    assert _books_of(0, 2) == ["binance:BTC-USDT", "okx:BTC-USDT"]
    assert _books_of(1, 2) == ["binance:ETH-USDT", "okx:ETH-USDT"]
    assert sorted(sum((_books_of(i, 3) for i in range(3)), [])) == sorted(KEYS)
    assert _books_of(4, 5) == [], "a worker beyond the books runs none"
