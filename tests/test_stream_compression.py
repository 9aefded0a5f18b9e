"""Every JetStream stream is stored compressed (S2) on a server that can, and a test
message still comes back byte for byte."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nats.js.api import StoreCompression

from connectors.jetstream import connect, ensure_streams
from connectors.nats_server import EmbeddedNatsServer
from schemas.streams import NatsAuth, StreamSettings


def test_streams_are_s2_compressed_and_give_back_what_was_stored(tmp_path: Path) -> None:
    payload = b'{"price":"90000.01","quantity":"0.50000000"}' * 200

    async def check(url: str) -> tuple[dict[str, StoreCompression | None], bytes]:
        client = await connect(url, auth=NatsAuth(user=None, password=None), name="test")
        try:
            js = client.jetstream()
            await ensure_streams(js, StreamSettings())
            found = {name: (await js.stream_info(name)).config.compression for name in StreamSettings().streams()}
            ack = await js.publish("orderbook.full.binance.btc-usdt", payload)
            back = await js.get_msg("ORDERBOOK_FULL", ack.seq)
            return found, back.data
        finally:
            await client.close()

    with EmbeddedNatsServer(tmp_path / "nats") as server:
        compression, back = asyncio.run(check(server.url))
    assert compression == dict.fromkeys(StreamSettings().streams(), StoreCompression.S2)
    assert back == payload
