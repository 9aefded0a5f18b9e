"""1-minute candles from the market's own trades, pushed the way both venues push them.

A `CandleFeed` follows one symbol window by window and says what to push after each:
the open candle every `push_every_ms` (Binance every 2 s, OKX at most once a second) and
each candle once more, closed, in the first window past its minute. A candle is exact
integers: OHLC from trade prices (ticks), volume the sum of lots, quote volume the sum
of price x lots, its trade count and first and last trade ids. A minute without trades
repeats the last close with volume 0, as the exchanges do. `binance_format.kline` and
`okx_format.candle` write a push as each venue does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sim.market import Trade, Window

INTERVAL_MS = 60_000
MS = 1_000_000


@dataclass(slots=True)
class Candle:
    """One minute's trades so far (prices in ticks, sizes in lots); ids -1 while it has none."""

    open_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    quote_volume: int = 0  # ticks x lots
    taker_buy_volume: int = 0
    taker_buy_quote_volume: int = 0
    trades: int = 0
    first_trade_id: int = -1
    last_trade_id: int = -1

    @property
    def close_ms(self) -> int:
        return self.open_ms + INTERVAL_MS - 1

    def add(self, fill: Trade) -> None:
        if not self.trades:
            self.open = self.high = self.low = fill.price
            self.first_trade_id = fill.trade_id
        self.high, self.low, self.close = max(self.high, fill.price), min(self.low, fill.price), fill.price
        self.volume += fill.qty
        self.quote_volume += fill.price * fill.qty
        if fill.taker_buys:
            self.taker_buy_volume += fill.qty
            self.taker_buy_quote_volume += fill.price * fill.qty
        self.trades += 1
        self.last_trade_id = fill.trade_id

    def next(self) -> Candle:
        """The following minute, before any trade: the last close, nothing traded."""
        return Candle(self.open_ms + INTERVAL_MS, self.close, self.close, self.close, self.close)


@dataclass(frozen=True, slots=True)
class CandlePush:
    """One message: the candle as it stands at `at_ms` (a copy), closed or still open."""

    candle: Candle
    closed: bool
    at_ms: int


class CandleFeed:
    """One symbol's candles; `on_window` after every window, in order, trades or not."""

    def __init__(self, start_ms: int, last_price: int, push_every_ms: int) -> None:
        open_ms = start_ms - start_ms % INTERVAL_MS
        self._candle = Candle(open_ms, last_price, last_price, last_price, last_price)
        self._push_every = push_every_ms
        self._next_push_ms = start_ms + push_every_ms

    def on_window(self, window: Window) -> list[CandlePush]:
        """The pushes due at the end of `window`: closed candles first, then the open one when its turn has come."""
        end_ms = window.end_ns // MS
        pushes: list[CandlePush] = []
        for step in window.steps:
            for fill in step.trades:
                pushes += self._close_until(fill.ts_ns // MS, end_ms)
                self._candle.add(fill)
        pushes += self._close_until(end_ms, end_ms)
        if end_ms >= self._next_push_ms:
            pushes.append(CandlePush(replace(self._candle), False, end_ms))
            while self._next_push_ms <= end_ms:
                self._next_push_ms += self._push_every
        return pushes

    def _close_until(self, ms: int, at_ms: int) -> list[CandlePush]:
        closed = []
        while ms > self._candle.close_ms:
            closed.append(CandlePush(self._candle, True, at_ms))
            self._candle = self._candle.next()
        return closed
