"""What a JetStream publish's ack says, read from a real nats-server's replies: stored,
stored already (a duplicate id), refused for good (400), or no stream at all (503)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from connectors.jetstream import connect, ensure_streams
from connectors.nats_server import EmbeddedNatsServer
from connectors.pub_acks import AckInbox, PendingAck
from schemas.streams import NatsAuth, StreamSettings


def _settled_acks(tmp_path: Path) -> tuple[list[PendingAck], PendingAck, int]:
    """Three publishes through an AckInbox (the second reusing the first's id, the third to a
    subject no stream takes), each waited for with a deadline; and the number of wake-ups."""
    async def run() -> tuple[list[PendingAck], PendingAck, int]:
        with EmbeddedNatsServer(tmp_path / "nats") as server:
            nc = await connect(server.url, auth=NatsAuth(), name="acks")
            await ensure_streams(nc.jetstream(), StreamSettings())
            woken = asyncio.Event()
            wake_ups = 0

            def on_settled() -> None:
                nonlocal wake_ups
                wake_ups += 1
                woken.set()

            inbox = AckInbox(nc, on_settled=on_settled)
            await inbox.start()
            acks = [await inbox.publish("market.okx.btc-usdt.trade", b'{"n":1}', "id-1"),
                    await inbox.publish("market.okx.btc-usdt.trade", b'{"n":1}', "id-1"),
                    await inbox.publish("nowhere.okx.btc-usdt.trade", b'{"n":2}', "id-2")]
            async with asyncio.timeout(10):
                while not all(ack.done for ack in acks):
                    woken.clear()
                    await woken.wait()
            # JetStream's own reply to a publish it refuses: a stream name it does not expect
            reply = await nc.request("market.okx.btc-usdt.trade", b"{}", timeout=10,
                                     headers={"Nats-Msg-Id": "id-3", "Nats-Expected-Stream": "NOT_THIS_ONE"})
            refused = PendingAck()
            refused.settle(reply.data, reply.headers)
            await nc.close()
            return acks, refused, wake_ups

    return asyncio.run(run())


def test_acks_say_stored_duplicate_or_no_stream_and_wake_the_sender(tmp_path: Path) -> None:
    (stored, again, nowhere), refused, wake_ups = _settled_acks(tmp_path)
    assert (stored.error_code, stored.duplicate) == (None, False)
    assert (again.error_code, again.duplicate) == (None, True)
    assert nowhere.error_code == 503  # no responders: no stream takes the subject
    assert refused.error_code == 400 and "expected stream" in refused.error
    assert wake_ups == 3


@pytest.mark.parametrize(
    ("data", "headers", "code"),
    [
        (b'{"stream":"MARKET_TRADES","seq":7}', None, None),
        (b'{"stream":"MARKET_TRADES","seq":7,"duplicate":true}', None, None),
        (b'{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}', None, 503),
        (b"", {"Status": "503"}, 503),
        (b"not json", None, 0),
        (b'{"stream":"MARKET_TRADES"}', None, 0),  # no sequence: not an ack
        (b"[1]", None, 0),
    ],
)
def test_a_reply_that_is_not_a_clean_ack_is_never_taken_for_one(
        data: bytes, headers: dict[str, str] | None, code: int | None) -> None:
    ack = PendingAck()
    ack.settle(data, headers)
    assert ack.done and ack.error_code == code
    assert (ack.error == "") == (code is None)
