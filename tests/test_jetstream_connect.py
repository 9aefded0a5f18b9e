"""A client that loses NATS says so in one warning line per failure, not a traceback.

Why: the control bus and the store reconnect for as long as NATS is away; nats-py's own
error callback logs a traceback for every failed attempt, which buries the one line that
matters (and printed one at the end of every test run).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from connectors.jetstream import connect
from connectors.nats_server import EmbeddedNatsServer
from schemas.streams import NatsAuth


def test_a_lost_server_is_one_warning_line_per_failed_reconnect(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        server = EmbeddedNatsServer(tmp_path / "nats")
        server.start()
        client = await connect(server.url, auth=NatsAuth(), name="probe", max_reconnect_attempts=-1,
                               reconnect_time_wait=0.05)
        server.stop()
        deadline = time.monotonic() + 10
        while not any("NATS client probe: ConnectionRefusedError" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "no warning while the server is away"
            await asyncio.sleep(0.02)
        await client.close()

    with caplog.at_level(logging.WARNING):
        asyncio.run(run())
    ours = [r for r in caplog.records if "NATS client probe" in r.getMessage()]
    assert ours and all(r.levelno == logging.WARNING and r.exc_info is None for r in ours)
    assert not [r for r in caplog.records if r.name.startswith("nats") and r.exc_info is not None]
