"""The collector's settings refuse what would run silently wrong, and derive what they can."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.binance import BinanceFeed
from connectors.control import InProcessControlBus
from connectors.okx import OkxFeed
from flows.collect import feed_factory
from schemas.settings import CollectSettings


def test_a_misspelt_venue_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="unknown venue 'binanse'; known: binance, binance_us, okx"):
        CollectSettings(venues=["okx", "binanse"])
    monkeypatch.setenv("MARKETPRISM_VENUES", "okx,OKX")
    with pytest.raises(ValidationError, match="unknown venue 'OKX'"):
        CollectSettings()


def test_the_feed_factory_builds_each_venue_and_refuses_others() -> None:
    make = feed_factory(CollectSettings(venues=["binance", "binance_us", "okx"]), InProcessControlBus())
    assert type(make("binance:BTC-USDT")) is BinanceFeed and make("binance_us:BTC-USDT").key == "binance_us:BTC-USDT"
    assert type(make("okx:BTC-USDT")) is OkxFeed
    with pytest.raises(ValueError, match="unknown venue 'kraken'"):
        make("kraken:BTC-USDT")


def test_the_okx_business_url_is_derived_from_the_public_one() -> None:
    assert CollectSettings().okx_business_ws_url == "wss://ws.okx.com:8443/ws/v5/business"
    local = CollectSettings(okx_ws_url="ws://127.0.0.1:9000/ws/v5/public")
    assert local.okx_business_ws_url == "ws://127.0.0.1:9000/ws/v5/business"
    given = CollectSettings(okx_ws_url="ws://127.0.0.1:9000/pub", okx_business_ws_url="ws://127.0.0.1:9000/biz")
    assert given.okx_business_ws_url == "ws://127.0.0.1:9000/biz"
    with pytest.raises(ValidationError, match="okx_business_ws_url is needed"):
        CollectSettings(okx_ws_url="ws://127.0.0.1:9000/pub")
    assert CollectSettings(venues=["binance"], okx_ws_url="ws://127.0.0.1:9000/pub").okx_business_ws_url is None
