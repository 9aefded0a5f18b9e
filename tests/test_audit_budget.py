"""The default audit pace: all Binance books of a process together use at most half of the
6000 request weight a minute (a 5000-level snapshot weighs 250), early audits included."""

from __future__ import annotations

import pytest

from schemas.settings import CollectSettings

WEIGHT_PER_SNAPSHOT = 250  # Binance /api/v3/depth, limit 1001-5000
WEIGHT_PER_MINUTE = 6000


@pytest.mark.parametrize("symbols", [1, 2, 4, 12, 40])
def test_audits_use_at_most_half_the_weight(symbols: int) -> None:
    settings = CollectSettings(venues=["binance", "okx"], symbols=[f"S{i}-USDT" for i in range(symbols)])
    knobs = settings.sync_settings()
    # The most a book can be audited: once per minimum gap (early audits), never more often.
    per_book_per_minute = 60_000 / knobs["audit_min_gap_ms"]
    assert symbols * per_book_per_minute * WEIGHT_PER_SNAPSHOT <= WEIGHT_PER_MINUTE / 2
    assert knobs["audit_interval_ms"] >= max(60_000, knobs["audit_min_gap_ms"])


def test_two_books_are_audited_every_minute_and_at_most_every_ten_seconds() -> None:
    knobs = CollectSettings(venues=["binance"], symbols=["BTC-USDT", "ETH-USDT"]).sync_settings()
    assert (knobs["audit_interval_ms"], knobs["audit_min_gap_ms"]) == (60_000, 10_000)


def test_a_set_interval_is_kept() -> None:
    knobs = CollectSettings(venues=["binance"], symbols=["BTC-USDT"], audit_interval_s=8).sync_settings()
    assert (knobs["audit_interval_ms"], knobs["audit_min_gap_ms"]) == (8_000, 5_000)
