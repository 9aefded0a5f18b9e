"""Will each JetStream stream hold its `max_age` of data? Worked out before the first byte.

Per book, what each stream receives, from the collector's own measurement against the
simulator at real rates (`deploy/SCALING.md`, 2026-12-01, the busiest book: Binance
BTC-USDT): a 5000-level full book is about 0.53 MB, the snapshots a tenth of that again.
Full books scale with the depth and the full-book interval; the rest with the books.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.streams import StreamSettings

FULL_BOOK_BYTES_PER_LEVEL = 0.53e6 / (2 * 5000)  # one 5000-level full book, both sides
BYTES_PER_S_PER_BOOK = {"ORDERBOOK_DELTA": 65e3, "MARKET_TRADES": 9.7e3, "MARKET_DATA": 39e3}
_FULL_BOOK_HINT = "or publish full books less often with MARKETPRISM_FULL_INTERVAL_MS / _SNAPSHOT_INTERVAL_MS"


@dataclass(frozen=True, slots=True)
class StreamFit:
    stream: str
    bytes_per_s: float
    max_bytes: int
    max_age_s: int

    @property
    def holds_s(self) -> float:
        return self.max_bytes / self.bytes_per_s if self.bytes_per_s else float("inf")

    @property
    def fits(self) -> bool:
        return self.holds_s >= self.max_age_s

    def sentence(self) -> str:
        need = self.bytes_per_s * self.max_age_s
        return (
            f"stream {self.stream}: about {self.bytes_per_s / 1e3:,.0f} kB/s expected, so its {self.max_bytes / 2**30:.2f} GiB "
            f"hold {self.holds_s / 3600:.2f} h of the {self.max_age_s / 3600:g} h it is meant to keep "
            f"(needs {need / 2**30:,.1f} GiB: raise MARKETPRISM_NATS_{self.stream}__MAX_BYTES"
            + (f", {_FULL_BOOK_HINT})" if self.stream == "ORDERBOOK_FULL" else ", or lower its MAX_AGE_S)")
        )


def stream_fits(
    streams: StreamSettings, *, books: int, depth: int, full_interval_ms: int, snapshot_interval_ms: int
) -> list[StreamFit]:
    """Expected bytes per second into each stream for `books` books, against its limits
    (full books go to orderbook.full every full interval and to orderbook.snapshot every
    snapshot interval)."""
    book_bytes = books * 2 * depth * FULL_BOOK_BYTES_PER_LEVEL
    rates = {"ORDERBOOK_FULL": book_bytes * (1000 / full_interval_ms + 1000 / snapshot_interval_ms)}
    rates.update({name: books * rate for name, rate in BYTES_PER_S_PER_BOOK.items()})
    return [
        StreamFit(name, rates.get(name, 0.0), limits.max_bytes, limits.max_age_s)
        for name, limits in streams.streams().items()
        if name in rates
    ]
