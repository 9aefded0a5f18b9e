"""The per-book feature engine: normalized events in, a FeatureRow every N updates and/or
every interval of receive time out. The one code path for live and offline features.

Time is the events' receive time (ns), the clock the recording keeps in order; the
`timestamp` of a row is the exchange time of the update it follows.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from operators.features import fi2010
from operators.features.arrays import BookArrays
from operators.features.images import price_heatmap
from operators.features.liquidity import cost_to_trade, depth_within
from operators.features.microstructure import MicropriceTable, microstructure
from operators.features.order_flow import delta_flow, event_ofi, multi_level_ofi, trade_flow
from operators.features.replica import FloatBook
from operators.features.static import Features, price_distribution, volume_profile
from schemas.events import BookDelta, BookFull, QualityEvent, Trade
from schemas.features import FeatureRow

# Quality kinds after which the book is not trusted until the next full book.
_BREAKS = frozenset({"gap", "checksum_failure", "crossed", "resync", "buffer_overflow", "audit_mismatch",
                     "out_of_sync", "silent", "sync_timeout", "stale_snapshot"})


@dataclass(frozen=True, slots=True)
class FeatureSettings:
    """What to compute and when; `every_updates=1` is the event-driven sampling of FI-2010."""

    every_updates: int | None = 1
    interval_ms: int | None = None
    depth: int = 5000
    bands_bps: tuple[float, ...] = (5, 10, 25, 50, 100)
    notionals: tuple[float, ...] = (10_000, 100_000, 1_000_000)
    slope_levels: int = 10
    ofi_levels: int = 10
    intensity_short_ms: int = 1_000
    intensity_long_ms: int = 10_000
    heatmap: bool = False
    heatmap_bins: int = 200
    heatmap_levels: int = 100
    heatmap_half_range_bps: float = 10.0
    heatmap_interval_ms: int | None = None  # a heatmap only this far apart (None: every row)
    microprice: MicropriceTable | None = None


class _Window:
    """Events of one kind within the long window, for intensities over both windows: a
    (time, count) pair per update rather than a time per event, so a rate counts a few
    dozen updates instead of thousands of level changes."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: deque[tuple[int, int]] = deque()
        self.total = 0

    def add(self, now_ns: int, count: int) -> None:
        if count:
            self.counts.append((now_ns, count))
            self.total += count

    def rates(self, now_ns: int, short_ns: int, long_ns: int) -> tuple[float, float]:
        counts = self.counts
        while counts and counts[0][0] <= now_ns - long_ns:
            self.total -= counts.popleft()[1]
        short, edge = 0, now_ns - short_ns
        for t, count in reversed(counts):
            if t <= edge:
                break
            short += count
        return short / (short_ns / 1e9), self.total / (long_ns / 1e9)


class FeatureEngine:
    """One book's features; feed it that book's events in order with `on_event`."""

    def __init__(self, venue: str, symbol: str, settings: FeatureSettings) -> None:
        self.venue, self.symbol, self.settings = venue, symbol, settings
        self.book = FloatBook()
        self.live = False
        self._update_id: int | None = None
        self._top: tuple[list[float], list[float], list[float], list[float]] | None = None
        self._windows = {kind: _Window() for kind in fi2010.EVENT_TYPES}
        self._previous_raw: np.ndarray | None = None
        self._previous_short: dict[str, float] | None = None
        self._previous_ns: int | None = None
        self._heatmap_ns: int | None = None
        self._reset_accumulators()

    def _reset_accumulators(self) -> None:
        self._ofi = 0.0
        self._mlofi = [0.0] * self.settings.ofi_levels
        self._bid_flow = self._ask_flow = 0.0
        self._bid_updates = self._ask_updates = 0
        self._buy_volume = self._sell_volume = 0.0
        self._trades = 0
        self._updates = 0

    def on_event(self, event: object) -> FeatureRow | None:
        if isinstance(event, BookDelta):
            return self._on_delta(event)
        if isinstance(event, Trade):
            self._on_trade(event)
        elif isinstance(event, BookFull):
            if event.is_valid and not self._tracks(event):
                self.book.load(event.bids, event.asks)
                self.live = not self.book.is_empty()
                self._top = self._current_top()
                self._update_id = event.last_update_id
        elif isinstance(event, QualityEvent) and event.kind in _BREAKS:
            self.book.clear()
            self.live = False
            self._top = None
        return None

    def _tracks(self, full: BookFull) -> bool:
        """A periodic full book of the book the deltas already built (same update id): loading
        it again would change nothing in the best `depth` levels, and costs 2 ms at 5000."""
        return self.live and full.update_type == "full_refresh" and full.last_update_id == self._update_id

    def _current_top(self) -> tuple[list[float], list[float], list[float], list[float]]:
        levels = self.settings.ofi_levels
        bid_prices, bid_sizes = self.book.bids.top(levels)
        ask_prices, ask_sizes = self.book.asks.top(levels)
        return bid_prices, bid_sizes, ask_prices, ask_sizes

    def _on_trade(self, trade: Trade) -> None:
        quantity = float(trade.quantity)
        if trade.side == "buy":
            self._buy_volume += quantity
            self._windows["market_buy"].add(trade.recv_ns, 1)
        else:
            self._sell_volume += quantity
            self._windows["market_sell"].add(trade.recv_ns, 1)
        self._trades += 1

    def _on_delta(self, delta: BookDelta) -> FeatureRow | None:
        if not self.live:
            return None
        self._update_id = delta.update_id
        bids = self.book.bids.apply(delta.bid_updates)
        asks = self.book.asks.apply(delta.ask_updates)
        now = delta.recv_ns
        windows = self._windows
        windows["limit_bid"].add(now, bids.grew)
        windows["cancel_bid"].add(now, bids.shrank)
        windows["limit_ask"].add(now, asks.grew)
        windows["cancel_ask"].add(now, asks.shrank)
        self._bid_flow += bids.added_size
        self._ask_flow += asks.added_size
        self._bid_updates += len(delta.bid_updates)
        self._ask_updates += len(delta.ask_updates)
        self._updates += 1
        if self.book.is_empty():
            self.live = False
            self._top = None
            return None
        top = self._current_top()
        before = self._top
        if before is not None and before[0] and before[2]:
            self._ofi += event_ofi((before[0][0], before[1][0]), (top[0][0], top[1][0]),
                                   (before[2][0], before[3][0]), (top[2][0], top[3][0]))
            for m, flow in enumerate(multi_level_ofi(before, top, self.settings.ofi_levels)):
                self._mlofi[m] += flow
        self._top = top
        if not self._due(now):
            return None
        return self._sample(delta)

    def _due(self, now_ns: int) -> bool:
        every, interval = self.settings.every_updates, self.settings.interval_ms
        if every is not None and self._updates >= every:
            return True
        if interval is not None:
            return self._previous_ns is None or now_ns - self._previous_ns >= interval * 1_000_000
        return False

    def arrays(self) -> BookArrays:
        depth = self.settings.depth
        bids, asks = self.book.bids, self.book.asks
        return BookArrays(bids.prices(depth), bids.quantities(depth), asks.prices(depth), asks.quantities(depth))

    def _sample(self, delta: BookDelta) -> FeatureRow:
        settings, now = self.settings, delta.recv_ns
        book = self.arrays()
        values: Features = {}
        values.update(price_distribution(book))
        values.update(volume_profile(book))
        values.update(microstructure(book, table=settings.microprice, slope_levels=settings.slope_levels,
                                     bands_bps=settings.bands_bps))
        values.update(depth_within(book, settings.bands_bps))
        values.update(cost_to_trade(book, settings.notionals))
        values["ofi"] = self._ofi
        for m, flow in enumerate(self._mlofi):
            values[f"ofi_{m + 1}"] = flow
        values.update(delta_flow(self._bid_flow, self._ask_flow, self._bid_updates, self._ask_updates))
        values.update(trade_flow(self._buy_volume, self._sell_volume, self._trades))
        raw = fi2010.raw_levels(book)
        values.update({name: (None if x != x else x) for name, x in zip(fi2010.RAW_COLUMNS, raw.tolist())})
        values.update(fi2010.derived(book))
        seconds = (now - self._previous_ns) / 1e9 if self._previous_ns is not None else 0.0
        values.update(fi2010.derivatives(raw, self._previous_raw, seconds))
        short_ns, long_ns = settings.intensity_short_ms * 1_000_000, settings.intensity_long_ms * 1_000_000
        short, long = {}, {}
        for kind, window in self._windows.items():
            short[kind], long[kind] = window.rates(now, short_ns, long_ns)
        values.update(fi2010.intensities(short, long, self._previous_short, seconds))
        heatmap = None
        interval = settings.heatmap_interval_ms
        if settings.heatmap and (interval is None or self._heatmap_ns is None
                                 or now - self._heatmap_ns >= interval * 1_000_000):
            self._heatmap_ns = now
            heatmap = price_heatmap(book, bins=settings.heatmap_bins, levels=settings.heatmap_levels,
                                    half_range_bps=settings.heatmap_half_range_bps)
        self._previous_raw, self._previous_short, self._previous_ns = raw, short, now
        self._reset_accumulators()
        return FeatureRow(self.venue, self.symbol, delta.update_id, delta.exchange_ms, now, values, heatmap)
