"""The per-`venue:symbol` operator state: the venue's sync machine plus trades, tickers and klines.

This is what the Bytewax stateful step holds for each key; it stays engine-free so the
same object runs in tests, benchmarks and any other driver.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress
from operator import not_

from operators.binance_sync import BinanceBookSync
from operators.okx_sync import OkxBookSync
from operators.sync_base import SyncSettings
from operators.wire import DepthDiff, DepthSnapshot, OkxBookMessage, OkxDeepBook, Rejected
from schemas.events import BookStats, Kline, Ticker, Trade


# Answers to our own REST requests: they say nothing about whether the stream still flows.
_REST_ANSWERS = frozenset({DepthSnapshot, OkxDeepBook})
# Market data that needs no book state: it passes through as it came.
_PASS_THROUGH = frozenset({Ticker, Trade, Kline})


class BookSync:
    """Routes one key's decoded messages to its machine; trades, tickers and klines pass through."""

    def __init__(self, key: str, settings: SyncSettings) -> None:
        venue, _, symbol = key.partition(":")
        self.machine: BinanceBookSync | OkxBookSync
        routes: dict[type, Callable[[object], list[object]]]
        if venue == "okx":
            self.machine = okx = OkxBookSync(venue, symbol, settings)
            routes = {
                OkxBookMessage: self._book(okx.on_book),  # type: ignore[arg-type]
                OkxDeepBook: okx.on_deep,  # type: ignore[dict-item]
            }
        else:
            self.machine = binance = BinanceBookSync(venue, symbol, settings)
            routes = {
                DepthDiff: self._book(binance.on_diff),  # type: ignore[arg-type]
                DepthSnapshot: self._book(binance.on_snapshot),  # type: ignore[arg-type]
            }
        routes[Trade] = self._trade
        routes[Ticker] = self._pass_through
        routes[Kline] = self._pass_through
        routes[Rejected] = self._book(self._reject)  # type: ignore[arg-type]
        self._routes = routes
        self.book_seen = False

    def handle(self, msg: object) -> list[object]:
        route = self._routes.get(type(msg))
        if route is None:
            raise TypeError(f"{self.machine.venue}:{self.machine.symbol} got an unexpected {type(msg).__name__}")
        if type(msg) not in _REST_ANSWERS:
            self.machine.heard_ns = msg.recv_ns  # type: ignore[attr-defined]  # every routed message carries it
        return route(msg)

    def handle_many(self, msgs: list[object]) -> list[object]:
        """`handle` over a list, the events in order. Tickers, trades and klines, the most
        numerous messages, need no book: each run of them between book messages passes
        through as one slice, leaving the counters and the heard time as `handle` would."""
        machine = self.machine
        kinds = list(map(type, msgs))
        events: list[object] = []
        start = 0
        book_messages = compress(range(len(kinds)), map(not_, map(_PASS_THROUGH.__contains__, kinds)))
        for at in [*book_messages, len(msgs)]:
            if at > start:
                run = msgs[start:at]
                events += run
                machine.stats.trades += kinds[start:at].count(Trade)
                machine.heard_ns = run[-1].recv_ns  # type: ignore[attr-defined]
            if at < len(msgs):
                events += self.handle(msgs[at])
            start = at + 1
        return events

    def stats(self) -> BookStats:
        return self.machine.snapshot_stats()

    def _book(self, handler: Callable[[object], list[object]]) -> Callable[[object], list[object]]:
        def handle_book_message(msg: object) -> list[object]:
            self.book_seen = True
            return handler(msg)

        return handle_book_message

    def _trade(self, msg: object) -> list[object]:
        self.machine.stats.trades += 1
        return [msg]

    @staticmethod
    def _pass_through(msg: object) -> list[object]:
        """Tickers and klines: market data that needs no book state."""
        return [msg]

    def _reject(self, msg: Rejected) -> list[object]:
        return self.machine.reject(msg.reason, msg.recv_ns)
