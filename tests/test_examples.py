"""The plan's consumer examples, run unchanged (but for the URL) against our subjects and payloads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.nats_server import EmbeddedNatsServer
from flows.replay import run_replay
from sim.recording import generate_recording


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)


async def _run_until(consumers: list, done: Callable[[], bool], seconds: float = 20.0) -> None:
    for consumer in consumers:
        await consumer.start()
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for consumer in consumers:
        await consumer.nc.close()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("examples")
    recording = tmp / "sim.jsonl.zst"
    generate_recording(recording, seconds=12, seed=4)
    with EmbeddedNatsServer(tmp / "nats") as server:
        run_replay([recording], nats_url=server.url, full_interval_ms=1000)
        yield server.url


def test_strategy_example(published: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from examples import strategy

    monkeypatch.setattr(strategy, "NATS_URL", published)
    consumer = strategy.RunnableQuantStrategy()
    asyncio.run(_run_until([consumer], lambda: consumer.books_seen >= 12 and consumer.snapshots_seen >= 2))
    assert consumer.books_seen >= 12  # binance:BTC-USDT full books, one per second of the recording
    assert consumer.snapshots_seen >= 2  # the snapshot after sync and the periodic ones, both venues
    assert consumer.local_orderbook["symbol_name"] == "BTC-USDT"
    assert len(consumer.local_orderbook["bids"]) >= 400


def test_high_frequency_example(published: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from examples import high_freq

    monkeypatch.setattr(high_freq, "NATS_URL", published)
    consumer = high_freq.RunnableHighFreqStrategy()
    asyncio.run(_run_until([consumer], lambda: consumer.updates_seen >= 200 and consumer.pure_deltas_seen >= 200))
    assert consumer.updates_seen >= 200 and consumer.pure_deltas_seen >= 200
    assert set(consumer.local_orderbook) == {"binance", "okx"}
    assert sum(consumer.signals.values()) > 0


def test_feature_extractor_examples(published: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from examples import features

    monkeypatch.setattr(features, "NATS_URL", published)
    full, incremental = features.RunnableOrderBookFeatureExtractor(), features.RunnableIncrementalFeatureExtractor()
    def made() -> list[dict]:
        return full.feature_buffer + [f for batch in full.batches for f in batch]

    # Wait for everything asserted below, not only the images: the books arrive in a burst.
    asyncio.run(_run_until([full, incremental],
                           lambda: len(made()) >= 12 and len(full.images) >= 2 and len(incremental.predictions) >= 10))
    features_made = made()
    assert len(features_made) >= 12
    first = features_made[0]
    assert first["symbol"] == "BTC-USDT" and first["price_features"]["spread"] > 0
    assert len(full.images) >= 2 and full.images[0][1].shape == (50, 2)
    assert len(incremental.predictions) >= 10
    assert {p["prediction"] for p in incremental.predictions} <= {"UP", "DOWN", "SIDEWAYS"}
