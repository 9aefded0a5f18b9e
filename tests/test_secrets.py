"""Credentials: everything talks to a NATS that requires a password and TLS, and no secret
ever shows in a log line, a metric or an error message."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import urllib.request
from pathlib import Path

import nats.errors
import pytest
from pydantic import ValidationError

from connectors.jetstream import connect
from connectors.metrics_server import MetricsEndpoint
from connectors.nats_server import EmbeddedNatsServer
from schemas.clickhouse import ClickHouseSettings
from schemas.settings import CollectSettings
from schemas.streams import NatsAuth
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import collect_from
from tests.tls_support import certificates

USER, PASSWORD = "marketprism", "pw-Zq8!never-logged"
CLICKHOUSE_PASSWORD = "ch-Kx3!never-logged"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _stored_subjects(url: str, auth: NatsAuth) -> dict[str, int]:
    client = await connect(url, auth=auth, name="test reader")
    try:
        js = client.jetstream()
        counts: dict[str, int] = {}
        for stream in ("ORDERBOOK_FULL", "ORDERBOOK_DELTA", "MARKET_DATA"):
            state = (await js.stream_info(stream, subjects_filter=">")).state
            counts.update(state.subjects or {})
        return counts
    finally:
        await client.close()


@pytest.fixture
def tls_nats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ca, cert, key = certificates(tmp_path)
    for name in ("TOKEN", "CREDS_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE"):
        monkeypatch.delenv(f"MARKETPRISM_NATS_{name}", raising=False)
    monkeypatch.setenv("MARKETPRISM_NATS_USER", USER)
    monkeypatch.setenv("MARKETPRISM_NATS_PASSWORD", PASSWORD)
    monkeypatch.setenv("MARKETPRISM_NATS_TLS_CA_FILE", str(ca))
    monkeypatch.setenv("MARKETPRISM_CLICKHOUSE_PASSWORD", CLICKHOUSE_PASSWORD)
    with EmbeddedNatsServer(tmp_path / "nats", user=USER, password=PASSWORD, tls_cert=cert, tls_key=key) as server:
        yield server


def test_everything_runs_on_a_nats_with_password_and_tls_and_no_secret_shows(
    tls_nats: EmbeddedNatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = MetricsEndpoint("127.0.0.1", _free_port()).start()
    try:
        with SimulatorThread(SimSettings(seed=12, symbols=("ETH-USDT",))) as simulator:
            summary = collect_from(
                simulator, tls_nats.url, tmp_path, 8, symbols=["ETH-USDT"], control_bus="nats", depth=1000
            )
        with urllib.request.urlopen(endpoint.url, timeout=10) as response:
            metrics = response.read().decode()
    finally:
        endpoint.stop()
    assert all(book["best_bid"] is not None for book in summary["books"].values())
    # The flow's own NATS control bus is closed with it (not left reconnecting after the run).
    assert "control bus" not in [thread.name for thread in threading.enumerate()]
    stored = asyncio.run(_stored_subjects(tls_nats.url, NatsAuth()))
    for book in ("binance.eth-usdt", "okx.eth-usdt"):
        assert stored.get(f"orderbook.full.{book}", 0) >= 3 and stored.get(f"orderbook.pure_delta.{book}", 0) > 20
    shown = caplog.text + metrics + str(summary)
    for secret in (PASSWORD, CLICKHOUSE_PASSWORD):
        assert secret not in shown
    assert PASSWORD not in repr(NatsAuth()) and PASSWORD not in str(NatsAuth())
    assert CLICKHOUSE_PASSWORD not in repr(ClickHouseSettings()) and CLICKHOUSE_PASSWORD not in str(ClickHouseSettings())


def test_a_refused_login_says_so_without_the_password(tls_nats: EmbeddedNatsServer, caplog: pytest.LogCaptureFixture) -> None:
    wrong = NatsAuth(user=USER, password="wrong-" + PASSWORD, tls_ca_file=NatsAuth().tls_ca_file)
    with pytest.raises((nats.errors.Error, OSError, asyncio.TimeoutError)) as refused:
        asyncio.run(connect(tls_nats.url, auth=wrong, name="test", allow_reconnect=False, max_reconnect_attempts=0))
    assert PASSWORD not in str(refused.value) and PASSWORD not in repr(refused.value)
    assert PASSWORD not in caplog.text
    plain = NatsAuth(user=USER, password=PASSWORD, tls_ca_file=None)  # no CA: the certificate is not trusted
    with pytest.raises(Exception) as untrusted:
        asyncio.run(connect(tls_nats.url, auth=plain, name="test", allow_reconnect=False, max_reconnect_attempts=0))
    assert PASSWORD not in str(untrusted.value)


@pytest.mark.parametrize(("model", "env", "says"), [
    (NatsAuth, {"MARKETPRISM_NATS_PASSWORD": PASSWORD}, "go together"),
    (ClickHouseSettings, {"MARKETPRISM_CLICKHOUSE_PASSWORD": CLICKHOUSE_PASSWORD,
                          "MARKETPRISM_CLICKHOUSE_PASSWORD_FILE": "/run/secrets/clickhouse"}, "not both"),
    (CollectSettings, {"MARKETPRISM_NATS_URL": f"nats://{USER}:{PASSWORD}@127.0.0.1:4222",
                       "MARKETPRISM_OKX_WS_URL": "wss://127.0.0.1/not-public"}, "does not end in /public"),
])
def test_a_settings_error_says_what_is_wrong_without_quoting_a_secret(
    model: type, env: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pydantic quotes a model's whole input in the errors of its model validators by default.
    for name in [k for k in os.environ if k.startswith("MARKETPRISM_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=says) as refused:
        model()
    for secret in (PASSWORD, CLICKHOUSE_PASSWORD):
        assert secret not in str(refused.value) and secret not in repr(refused.value)


def test_the_password_may_come_from_a_file_read_at_each_connect(
    tls_nats: EmbeddedNatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A mounted secret: the password file is read when a client connects, so a rotated
    secret is used by the next connection; a wrong or missing one is refused without
    showing what the file holds."""
    secret = tmp_path / "nats-password"
    secret.write_text("wrong-" + PASSWORD + "\n")
    monkeypatch.delenv("MARKETPRISM_NATS_PASSWORD")
    monkeypatch.setenv("MARKETPRISM_NATS_PASSWORD_FILE", str(secret))
    auth = NatsAuth()
    with pytest.raises((nats.errors.Error, OSError, asyncio.TimeoutError)) as refused:
        asyncio.run(connect(tls_nats.url, auth=auth, name="test", allow_reconnect=False, max_reconnect_attempts=0))
    assert PASSWORD not in str(refused.value) and PASSWORD not in caplog.text
    secret.write_text(PASSWORD + "\n")  # rotated: the same settings now log in

    async def logged_in() -> bool:
        client = await connect(tls_nats.url, auth=auth, name="test", allow_reconnect=False)
        await client.flush()
        connected = client.is_connected
        await client.close()
        return connected

    assert asyncio.run(logged_in())
    secret.unlink()
    with pytest.raises(OSError, match="cannot read the NATS password file") as missing:
        asyncio.run(connect(tls_nats.url, auth=auth, name="test", allow_reconnect=False, max_reconnect_attempts=0))
    assert str(secret) in str(missing.value) and PASSWORD not in str(missing.value)
