"""The collector's board reads its own registry directly; `marketprism status` reads pages.
Both must see the same figures: the values set here by hand."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from flows.status_view import figures, parse


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    updates = Counter("marketprism_book_updates", "updates", ["venue", "symbol"], registry=registry)
    updates.labels("okx", "BTC-USDT").inc(7)
    depth = Gauge("marketprism_book_depth", "levels", ["venue", "symbol", "side"], registry=registry)
    depth.labels("binance", "ETH-USDT", "bid").set(5000)
    lag = Gauge("marketprism_store_lag_seconds", "lag", ["stream", "table"], registry=registry)
    lag.labels("MARKET_TRADES", "trades").set(1.5)
    lag.labels("MARKET_TRADES", "klines").set(0.25)
    Gauge("marketprism_nats_spilled_messages", "spilled", registry=registry).set(3)
    latency = Histogram("marketprism_publish_latency_seconds", "latency", ["venue"], buckets=(0.001, 0.01),
                        registry=registry)
    latency.labels("okx").observe(0.0005)
    latency.labels("okx").observe(0.005)
    return registry


def test_the_registry_and_its_page_give_the_same_hand_set_figures() -> None:
    registry = _registry()
    direct, from_page = figures(registry.collect()), parse(generate_latest(registry).decode())
    assert direct == from_page
    assert direct.samples[("marketprism_book_updates_total", "okx:BTC-USDT")] == 7
    assert direct.samples[("marketprism_book_depth:bid", "binance:ETH-USDT")] == 5000
    assert direct.streams[("marketprism_store_lag_seconds", "MARKET_TRADES")] == 1.75
    assert direct.scalars["marketprism_nats_spilled_messages"] == 3
    assert direct.buckets["okx"] == [(0.001, 1.0), (0.01, 2.0), (float("inf"), 2.0)]
