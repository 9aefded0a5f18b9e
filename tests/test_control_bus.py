"""Resync requests reach the source of their book, in one process and across processes (NATS)."""

from __future__ import annotations

import time

from pathlib import Path

import pytest

from connectors.control import InProcessControlBus, NatsControlBus
from connectors.nats_server import EmbeddedNatsServer
from connectors.live_source import most_thorough
from schemas.events import ResyncRequest, SourceAction


def test_in_process_bus_hands_requests_to_their_book_only() -> None:
    bus = InProcessControlBus()
    bus.send(ResyncRequest("binance", "BTC-USDT", "gap: expected U=5, got U=9", 1))
    bus.send(ResyncRequest("okx", "ETH-USDT", "checksum_failure", 2))
    assert [r.reason for r in bus.take("binance:BTC-USDT")] == ["gap: expected U=5, got U=9"]
    assert bus.take("binance:BTC-USDT") == []
    assert [r.recv_ns for r in bus.take("okx:ETH-USDT")] == [2]


def test_nats_bus_carries_requests_between_processes(tmp_path: Path) -> None:
    with EmbeddedNatsServer(tmp_path / "nats") as server:
        book_sync_side, source_side = NatsControlBus(server.url), NatsControlBus(server.url)
        try:
            request = ResyncRequest("binance", "BTC-USDT", "crossed: book crossed after u=7", 123)
            book_sync_side.send(request)
            deadline = time.monotonic() + 10
            taken: list[ResyncRequest] = []
            while not taken and time.monotonic() < deadline:
                taken = source_side.take("binance:BTC-USDT")
                time.sleep(0.01)
            assert taken == [request]
            assert source_side.take("okx:BTC-USDT") == []
        finally:
            book_sync_side.close()
            source_side.close()


def test_requests_waiting_together_are_answered_by_the_most_thorough() -> None:
    def asked(action: SourceAction, at: int) -> ResyncRequest:
        return ResyncRequest("okx", "BTC-USDT", f"{action} at {at}", at, action)

    assert most_thorough([asked("snapshot", 1), asked("reconnect", 2), asked("resubscribe", 3)]).recv_ns == 2
    assert most_thorough([asked("snapshot", 1), asked("snapshot", 2)]).recv_ns == 2  # the latest of equals


def test_nats_bus_logs_in_as_the_sink_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = "pw-Control#never-in-logs"
    with EmbeddedNatsServer(tmp_path / "nats", user="collector", password=password) as server:
        monkeypatch.setenv("MARKETPRISM_NATS_USER", "collector")
        monkeypatch.setenv("MARKETPRISM_NATS_PASSWORD", password)
        bus = NatsControlBus(server.url)  # credentials from the environment, as the sink takes them
        try:
            request = ResyncRequest("okx", "BTC-USDT", "checksum_failure", 7)
            bus.send(request)
            deadline = time.monotonic() + 10
            taken: list[ResyncRequest] = []
            while not taken and time.monotonic() < deadline:
                taken = bus.take("okx:BTC-USDT")
                time.sleep(0.01)
            assert taken == [request]
        finally:
            bus.close()


def test_the_flows_own_bus_closes_with_its_last_partition(tmp_path: Path) -> None:
    """A bus the sink owns is closed once every worker's partition has closed, not before."""
    import threading

    from connectors.control import ControlBusSink

    with EmbeddedNatsServer(tmp_path / "nats") as server:
        bus = NatsControlBus(server.url)
        sink = ControlBusSink(bus, close_bus=True)
        first, second = sink.build("control_bus", 0, 2), sink.build("control_bus", 1, 2)
        first.close()
        assert "control bus" in [thread.name for thread in threading.enumerate()]  # the other worker still sends
        second.close()
        assert "control bus" not in [thread.name for thread in threading.enumerate()]
