"""Stream sizing at start-up: the defaults cannot keep 24 h of 5000-level full books, and
the collector says so with the figures; enough bytes (or rarer full books) make it quiet."""

from __future__ import annotations

import pytest

from flows.collect import warn_of_small_streams
from schemas.settings import CollectSettings
from schemas.stream_sizing import stream_fits
from schemas.streams import StreamSettings

GiB = 2**30


def test_default_full_book_stream_holds_minutes_not_a_day() -> None:
    fits = {
        fit.stream: fit
        for fit in stream_fits(StreamSettings(), books=4, depth=5000, full_interval_ms=1000, snapshot_interval_ms=10_000)
    }
    full = fits["ORDERBOOK_FULL"]
    # 4 books x 0.53 MB a second, plus a snapshot every 10 s: 2.33 MB/s into 1 GiB.
    assert full.bytes_per_s == pytest.approx(4 * 0.53e6 * 1.1, rel=1e-6)
    assert full.holds_s == pytest.approx(GiB / (4 * 0.53e6 * 1.1), rel=1e-6)
    assert 7 * 60 < full.holds_s < 8 * 60 and not full.fits
    assert fits["ORDERBOOK_DELTA"].fits  # 260 kB/s for the 1 h it keeps: 0.87 GiB of 2


def test_the_collector_warns_with_the_figures_and_is_quiet_when_they_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = CollectSettings(venues=["binance", "okx"], symbols=["BTC-USDT", "ETH-USDT"])
    said = warn_of_small_streams(settings, StreamSettings())
    full = next(sentence for sentence in said if "ORDERBOOK_FULL" in sentence)
    assert "hold 0.13 h of the 24 h" in full and "MARKETPRISM_NATS_ORDERBOOK_FULL__MAX_BYTES" in full
    monkeypatch.setenv("MARKETPRISM_NATS_ORDERBOOK_FULL__MAX_BYTES", str(200 * GiB))
    monkeypatch.setenv("MARKETPRISM_NATS_MARKET_TRADES__MAX_BYTES", str(4 * GiB))
    monkeypatch.setenv("MARKETPRISM_NATS_MARKET_DATA__MAX_BYTES", str(16 * GiB))
    monkeypatch.setenv("MARKETPRISM_NATS_MARKET_DATA__MAX_MSGS", str(100_000_000))
    assert warn_of_small_streams(settings, StreamSettings()) == []
    # One book, full books every 10 min and snapshots every 5 min: 2.65 kB/s, 0.21 GiB a day, in 1 GiB.
    rare = CollectSettings(venues=["binance"], symbols=["BTC-USDT"], full_interval_ms=600_000, snapshot_interval_ms=300_000)
    monkeypatch.delenv("MARKETPRISM_NATS_ORDERBOOK_FULL__MAX_BYTES")
    assert not any("ORDERBOOK_FULL" in sentence for sentence in warn_of_small_streams(rare, StreamSettings()))
