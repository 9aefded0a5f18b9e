"""Stream definitions and subjects, without a server: the plan's numbers, four-token filters
(five for klines)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.streams import GiB, MiB, NatsAuth, StreamSettings, subject, subject_matches

PLAN = {  # name: (max_msgs, max_bytes, max_age_s, max_consumers, replicas)
    "ORDERBOOK_FULL": (1_000_000, 1 * GiB, 86_400, 10, 1),
    "ORDERBOOK_DELTA": (10_000_000, 2 * GiB, 3_600, 20, 1),
    "MARKET_TRADES": (5_000_000, 1 * GiB, 86_400, 15, 1),
    "MARKET_DATA": (2_000_000, 512 * MiB, 86_400, 10, 1),
}


def test_defaults_are_the_plans_limits() -> None:
    streams = StreamSettings().streams()
    assert set(streams) == set(PLAN) | {"FEATURES"}  # FEATURES (issue 9) is ours, not the plan's
    assert {
        name: (s.max_msgs, s.max_bytes, s.max_age_s, s.max_consumers, s.replicas) for name, s in streams.items()
        if name in PLAN
    } == PLAN
    assert StreamSettings().duplicate_window_s == 600


@pytest.mark.parametrize(
    ("kind", "exchange", "symbol", "expected", "stream"),
    [
        ("full", "binance", "BTC-USDT", "orderbook.full.binance.btc-usdt", "ORDERBOOK_FULL"),
        ("snapshot", "okx", "ETH-USDT", "orderbook.snapshot.okx.eth-usdt", "ORDERBOOK_FULL"),
        ("delta", "Binance", "ETH-USDT", "orderbook.delta.binance.eth-usdt", "ORDERBOOK_DELTA"),
        ("update", "okx", "BTC-USDT", "orderbook.update.okx.btc-usdt", "ORDERBOOK_DELTA"),
        ("pure_delta", "okx", "BTC-USDT", "orderbook.pure_delta.okx.btc-usdt", "ORDERBOOK_DELTA"),
        ("trade", "binance", "BTC-USDT", "market.binance.btc-usdt.trade", "MARKET_TRADES"),
        ("ticker", "okx", "ETH-USDT", "market.okx.eth-usdt.ticker", "MARKET_DATA"),
        ("funding_rate", "okx", "BTC-USDT", "market.okx.btc-usdt.funding_rate", "MARKET_DATA"),
        ("open_interest", "okx", "BTC-USDT", "market.okx.btc-usdt.open_interest", "MARKET_DATA"),
    ],
)
def test_every_subject_has_four_tokens_and_one_stream(kind: str, exchange: str, symbol: str, expected: str, stream: str) -> None:
    made = subject(kind, exchange, symbol)  # type: ignore[arg-type]
    assert made == expected
    assert len(made.split(".")) == 4
    assert StreamSettings().stream_for(made) == stream


def test_kline_subjects_name_their_interval_in_a_fifth_token() -> None:
    made = subject("kline", "OKX", "BTC-USDT", "1m")
    assert made == "market.okx.btc-usdt.kline.1m" and StreamSettings().stream_for(made) == "MARKET_DATA"
    with pytest.raises(ValueError, match="needs interval"):
        subject("kline", "okx", "BTC-USDT")
    with pytest.raises(ValueError, match="takes no interval"):
        subject("trade", "okx", "BTC-USDT", "1m")
    with pytest.raises(ValueError):
        subject("kline", "okx", "BTC-USDT", "1.m")


def test_the_plans_two_token_filters_would_match_nothing() -> None:
    assert not subject_matches("orderbook.full.*", "orderbook.full.binance.btc-usdt")
    assert subject_matches("orderbook.full.*.*", "orderbook.full.binance.btc-usdt")
    assert StreamSettings().stream_for("market.okx.eth-usdt.kline.1m") == "MARKET_DATA"
    assert StreamSettings().stream_for("orderbook.full.binance") is None


def test_subject_tokens_cannot_smuggle_wildcards() -> None:
    for bad in ("btc.usdt", "*", ">", "", "btc usdt"):
        with pytest.raises(ValueError):
            subject("full", "binance", bad)


def test_one_environment_variable_overrides_one_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPRISM_NATS_ORDERBOOK_DELTA__MAX_AGE_S", "7200")
    monkeypatch.setenv("MARKETPRISM_NATS_DUPLICATE_WINDOW_S", "120")
    settings = StreamSettings()
    assert settings.orderbook_delta.max_age_s == 7200
    assert settings.orderbook_delta.max_msgs == 10_000_000  # the rest of the stream kept its defaults
    assert settings.duplicate_window_s == 120


def test_duplicate_window_must_fit_every_stream() -> None:
    with pytest.raises(ValidationError):
        StreamSettings(duplicate_window_s=2 * 3600)  # ORDERBOOK_DELTA keeps messages 1 h


def test_auth_takes_one_method_and_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPRISM_NATS_USER", "collector")
    monkeypatch.setenv("MARKETPRISM_NATS_PASSWORD", "s3cret-value")
    auth = NatsAuth()
    assert auth.password is not None and auth.password.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(auth) and "s3cret-value" not in str(auth)
    monkeypatch.setenv("MARKETPRISM_NATS_TOKEN", "tok")
    with pytest.raises(ValidationError):
        NatsAuth()
    monkeypatch.delenv("MARKETPRISM_NATS_TOKEN")
    monkeypatch.delenv("MARKETPRISM_NATS_USER")
    with pytest.raises(ValidationError):
        NatsAuth()  # a password without a user
    monkeypatch.setenv("MARKETPRISM_NATS_USER", "collector")
    monkeypatch.setenv("MARKETPRISM_NATS_PASSWORD_FILE", "/run/secrets/nats")
    with pytest.raises(ValidationError, match="not both"):
        NatsAuth()  # a password and a password file
    monkeypatch.delenv("MARKETPRISM_NATS_PASSWORD")
    assert NatsAuth().password_file == Path("/run/secrets/nats")
    monkeypatch.setenv("MARKETPRISM_NATS_TOKEN_FILE", "/run/secrets/token")
    with pytest.raises(ValidationError, match="one of"):
        NatsAuth()  # a user and a token file
