"""The JetStream sink against a real nats-server on 127.0.0.1: streams, exactly-once, outages, spill, auth.

Every check reads the streams back from the server; the only waiting is on conditions
with deadlines (the sink's own close, which returns once everything is acked).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bytewax.operators as op
import nats
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

from connectors.nats import REJECTED_FILE, NatsJetStreamSink, _NatsPartition
from connectors.spill_log import decode_records
from connectors.nats_server import EmbeddedNatsServer, free_loopback_port, nats_server_binary
from schemas.publication import Publication
from schemas.streams import NatsAuth, StreamSettings, subject

STREAMS = ("ORDERBOOK_FULL", "ORDERBOOK_DELTA", "MARKET_TRADES", "MARKET_DATA")
SUBJECTS = [
    subject("full", "binance", "BTC-USDT"),
    subject("delta", "okx", "ETH-USDT"),
    subject("trade", "binance", "ETH-USDT"),
    subject("ticker", "okx", "BTC-USDT"),
]


@pytest.fixture(autouse=True)
def _no_nats_settings_from_the_developer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USER", "PASSWORD", "TOKEN", "CREDS_FILE", "DUPLICATE_WINDOW_S"):
        monkeypatch.delenv(f"MARKETPRISM_NATS_{name}", raising=False)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    with EmbeddedNatsServer(tmp_path / "nats") as running:
        yield running


def publications(n: int, prefix: str = "m") -> list[Publication]:
    """n messages spread over the four streams, ids unique and in order."""
    return [Publication(SUBJECTS[i % len(SUBJECTS)], b'{"i":%d}' % i, f"{prefix}-{i}") for i in range(n)]


def make_sink(url: str, spill_dir: Path, **kwargs: Any) -> NatsJetStreamSink:
    return NatsJetStreamSink(url, StreamSettings(), spill_dir, **kwargs)


def open_partition(sink: NatsJetStreamSink) -> _NatsPartition:
    return sink.build_part("nats_out", "nats", None)


def run_flow(items: Any, sink: NatsJetStreamSink) -> None:
    flow = Dataflow("nats_sink_test")
    pubs = op.input("in", flow, TestingSource(items, batch_size=25))
    op.output("out", op.key_on("by_subject", pubs, lambda p: p.subject), sink)
    run_main(flow)


def read_streams(url: str, **connect: Any) -> dict[str, list[tuple[str, str]]]:
    """Every stored message as (subject, Nats-Msg-Id), per stream, in stream order."""

    async def read() -> dict[str, list[tuple[str, str]]]:
        nc = await nats.connect(url, allow_reconnect=False, **connect)
        try:
            js = nc.jetstream()
            stored: dict[str, list[tuple[str, str]]] = {}
            for name in STREAMS:
                state = (await js.stream_info(name)).state
                messages = []
                for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
                    msg = await js.get_msg(name, seq)
                    messages.append((msg.subject, msg.headers["Nats-Msg-Id"]))
                stored[name] = messages
            return stored
        finally:
            await nc.close()

    return asyncio.run(read())


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.01)


def thread_state(task: Path) -> str:
    """The state letter in /proc/<pid>/task/<tid>/stat (after the command name in parentheses)."""
    return (task / "stat").read_text().rpartition(")")[2].split()[0]


@contextmanager
def frozen(server: EmbeddedNatsServer) -> Iterator[None]:
    """The server stopped by SIGSTOP: its connections stay open and the kernel takes the
    client's bytes, but nothing is stored or acked until it continues."""
    assert server._process is not None
    pid = server._process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        # kill() returns before every thread has stopped: wait until /proc shows them all stopped ("T").
        wait_for(lambda: all(thread_state(task) == "T" for task in Path(f"/proc/{pid}/task").iterdir()),
                 "nats-server stopped")
        yield
    finally:
        os.kill(server._process.pid, signal.SIGCONT)


def assert_stored_once_in_order(url: str, expected: list[Publication], **connect: Any) -> None:
    stored = read_streams(url, **connect)
    ids = Counter(msg_id for messages in stored.values() for _, msg_id in messages)
    assert not [msg_id for msg_id, n in ids.items() if n > 1], "stored more than once"
    assert set(ids) == {p.msg_id for p in expected}
    got: dict[str, list[str]] = defaultdict(list)
    for messages in stored.values():
        for subject_, msg_id in messages:
            got[subject_].append(msg_id)
    want: dict[str, list[str]] = defaultdict(list)
    for pub in expected:
        want[pub.subject].append(pub.msg_id)
    assert got == want, "order per subject differs"


def test_streams_have_the_plans_limits_and_catch_four_token_subjects(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    async def stale_delta_stream() -> None:  # created earlier with other limits: the sink must update it
        nc = await nats.connect(server.url)
        await nc.jetstream().add_stream(name="ORDERBOOK_DELTA", subjects=["orderbook.delta.*.*"], max_age=60.0)
        await nc.close()

    asyncio.run(stale_delta_stream())
    where = {
        "orderbook.full.binance.btc-usdt": "ORDERBOOK_FULL",
        "orderbook.snapshot.okx.btc-usdt": "ORDERBOOK_FULL",
        "orderbook.delta.okx.eth-usdt": "ORDERBOOK_DELTA",
        "orderbook.update.binance.eth-usdt": "ORDERBOOK_DELTA",
        "orderbook.pure_delta.binance.btc-usdt": "ORDERBOOK_DELTA",
        "market.binance.btc-usdt.trade": "MARKET_TRADES",
        "market.okx.eth-usdt.ticker": "MARKET_DATA",
        "market.okx.eth-usdt.kline.1m": "MARKET_DATA",
        "market.okx.btc-usdt.funding_rate": "MARKET_DATA",
        "market.okx.btc-usdt.open_interest": "MARKET_DATA",
    }
    sink = make_sink(server.url, tmp_path / "spill")
    part = open_partition(sink)
    part.write_batch([Publication(s, b"{}", f"id-{s}") for s in where])
    with pytest.raises(ValueError, match="no JetStream stream"):
        part.write_batch([Publication("orderbook.full.binance", b"{}", "three-tokens")])
    part.close()

    stored = read_streams(server.url)
    assert {s: name for name, messages in stored.items() for s, _ in messages} == where

    async def configs() -> dict[str, Any]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        found = {name: (await js.stream_info(name)).config for name in STREAMS}
        await nc.close()
        return found

    plan = {  # the original plan's numbers
        "ORDERBOOK_FULL": (1_000_000, 1 << 30, 86_400.0, 10, 1),
        "ORDERBOOK_DELTA": (10_000_000, 2 << 30, 3_600.0, 20, 1),
        "MARKET_TRADES": (5_000_000, 1 << 30, 86_400.0, 15, 1),
        "MARKET_DATA": (2_000_000, 512 << 20, 86_400.0, 10, 1),
    }
    found = asyncio.run(configs())
    for name, config in found.items():
        assert (config.max_msgs, config.max_bytes, config.max_age, config.max_consumers, config.num_replicas) == plan[name]
        assert config.duplicate_window == 600.0
        assert config.storage == "file"
    assert set(found["ORDERBOOK_DELTA"].subjects) == {
        "orderbook.delta.*.*", "orderbook.update.*.*", "orderbook.pure_delta.*.*"
    }


def test_a_flow_stores_each_message_once_in_order_and_a_replay_adds_nothing(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    pubs = publications(3000)
    repeated = pubs[10]  # the same event published again later: one copy in the stream
    in_memory: list[int] = []
    sink = make_sink(server.url, tmp_path / "spill", max_in_flight=100)

    def source() -> Iterator[Publication]:
        for pub in [*pubs[:2000], repeated, *pubs[2000:]]:
            in_memory.append(sink.stats.buffered)
            yield pub

    run_flow(source(), sink)
    assert_stored_once_in_order(server.url, pubs)
    assert sink.stats.acked == 3001 and sink.stats.duplicates == 1
    assert sink.stats.spilled == 0 and sink.stats.failures == 0
    assert max(in_memory) <= 2 * 100, "backpressure: memory holds at most 2 x max_in_flight"

    replay = make_sink(server.url, tmp_path / "spill")
    run_flow(pubs, replay)  # what recovery does: the same events again
    assert_stored_once_in_order(server.url, pubs)
    assert replay.stats.duplicates == 3000


def test_a_message_is_sent_while_the_ack_of_an_earlier_one_is_outstanding(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    pubs = publications(3)
    sink = make_sink(server.url, tmp_path / "spill", ack_timeout_s=60)
    part = open_partition(sink)
    part.write_batch(pubs[:1])
    wait_for(lambda: sink.stats.acked == 1, "connected, streams ready, first message acked")
    with frozen(server):  # no ack can come back now
        part.write_batch(pubs[1:2])
        wait_for(lambda: sink.stats.published == 2, "the second message sent")
        part.write_batch(pubs[2:])
        # Stop-and-wait would hold the third message back until the second one's ack.
        wait_for(lambda: sink.stats.published == 3, "the third message sent with the second one unacked")
        assert (sink.stats.acked, sink.stats.buffered) == (1, 2), "both still unacked, neither committed"
    part.close()
    assert (sink.stats.published, sink.stats.acked, sink.stats.failures) == (3, 3, 0)
    assert_stored_once_in_order(server.url, pubs)


def test_a_connection_dropped_with_the_pipeline_full_resends_every_unacked_message_in_order(
    server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    pubs = publications(1500)
    sink = make_sink(server.url, tmp_path / "spill", max_in_flight=1000, ack_timeout_s=3.0, retry_cap_s=0.5,
                     close_timeout_s=30)
    part = open_partition(sink)
    part.write_batch(pubs[:100])
    wait_for(lambda: sink.stats.acked == 100, "the first 100 acked")
    with frozen(server):
        for start in range(100, 600, 100):  # five waves in flight, none acked
            part.write_batch(pubs[start : start + 100])
            wait_for(lambda: sink.stats.published == start + 100, f"messages up to {start + 100} sent")
        assert sink.stats.acked == 100 and sink.stats.failures == 0
        # The oldest unacked message's ack times out: the sink drops the connection. The
        # server still holds the 500 messages in its socket buffer and may store them
        # once it continues: the copies sent again are then duplicates, stored once.
        wait_for(lambda: sink.stats.failures >= 1, "the ack timeout noticed")
    part.write_batch(pubs[600:])
    part.close()
    assert_stored_once_in_order(server.url, pubs)
    assert sink.stats.published >= 1500 + 500, "all 500 unacked messages were sent again"
    assert sink.stats.acked == 1500 and sink.stats.buffered == sink.stats.on_disk == 0


def test_nats_stopping_mid_run_loses_and_duplicates_nothing(
    server: EmbeddedNatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.nats")
    pubs = publications(3000)
    sink = make_sink(server.url, tmp_path / "spill", max_in_flight=100, buffer_messages=200, retry_cap_s=0.5, close_timeout_s=30)

    def source() -> Iterator[Publication]:
        for i, pub in enumerate(pubs):
            if i == 1000:
                server.stop()  # same store dir and port when it comes back
            if i == 2000:
                server.start()
            yield pub

    run_flow(source(), sink)
    assert_stored_once_in_order(server.url, pubs)
    assert sink.stats.failures >= 1
    assert sink.stats.spilled >= 800, "the outage overflowed memory onto disk"
    assert sink.stats.on_disk == 0 and not list((tmp_path / "spill").glob("*.spill"))
    assert "buffering" in caplog.text and "drained" in caplog.text


def test_a_crashed_runs_spill_is_published_by_the_next_sink(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="connectors.nats")
    server = EmbeddedNatsServer(tmp_path / "nats")  # not started yet: nothing listens on its port
    spill = tmp_path / "spill"
    pubs = publications(400)
    first = make_sink(server.url, spill, buffer_messages=100, close_timeout_s=0.3)
    part = open_partition(first)
    for i in range(0, 300, 50):
        part.write_batch(pubs[i : i + 50])
    part.snapshot()
    assert (first.stats.buffered, first.stats.on_disk) == (0, 300), "a snapshot leaves nothing only in memory"
    part.write_batch(pubs[300:])
    part.close()
    assert first.stats.on_disk == 400 and first.stats.acked == 0
    newest = sorted(spill.glob("*.spill"))[-1]
    with open(newest, "ab") as torn:  # a crash in the middle of a write leaves half a record
        torn.write(b"\x12\x34\x56")

    with server:
        second = make_sink(server.url, spill)
        part = open_partition(second)
        assert second.stats.on_disk == 400
        part.close()
        assert_stored_once_in_order(server.url, pubs)
    assert second.stats.on_disk == 0 and not list(spill.glob("*.spill"))
    assert "unreadable bytes" in caplog.text and "left in" in caplog.text


def test_credentials_come_from_the_environment_and_are_never_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    password = "pw-Zq8#never-in-logs"
    wrong = "wrong-Kx3#never-in-logs-either"
    caplog.set_level(logging.DEBUG)
    pubs = publications(20)
    with EmbeddedNatsServer(tmp_path / "nats", user="collector", password=password) as server:
        monkeypatch.setenv("MARKETPRISM_NATS_USER", "collector")
        monkeypatch.setenv("MARKETPRISM_NATS_PASSWORD", password)
        sink = make_sink(server.url, tmp_path / "spill")
        part = open_partition(sink)
        part.write_batch(pubs)
        part.close()
        assert_stored_once_in_order(server.url, pubs, user="collector", password=password)

        monkeypatch.setenv("MARKETPRISM_NATS_PASSWORD", wrong)
        refused = make_sink(server.url, tmp_path / "spill-refused", close_timeout_s=0.3)
        part = open_partition(refused)
        part.write_batch(publications(5, prefix="refused"))
        part.close()
        assert refused.stats.failures >= 1 and refused.stats.on_disk == 5
        assert refused.auth == NatsAuth(user="collector", password=wrong)
    assert "cannot connect" in caplog.text
    logged = caplog.text + server.log_path.read_text()
    assert password not in logged and wrong not in logged
    assert (server.store_dir / "server.conf").stat().st_mode & 0o077 == 0


def test_a_message_the_server_would_never_take_is_kept_aside(server: EmbeddedNatsServer, tmp_path: Path) -> None:
    small = publications(2)
    huge = Publication(SUBJECTS[0], b"x" * (2 << 20), "too-big")  # the server's max_payload is 1 MiB
    sink = make_sink(server.url, tmp_path / "spill")
    part = open_partition(sink)
    part.write_batch([small[0], huge, small[1]])
    part.close()
    assert_stored_once_in_order(server.url, small)
    assert sink.stats.rejected == 1 and sink.stats.on_disk == 0
    kept, _ = decode_records((tmp_path / "spill" / REJECTED_FILE).read_bytes())
    assert kept == [huge]


def test_the_sink_trusts_a_tls_server_through_its_ca_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, cert = tmp_path / "server.key", tmp_path / "server.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    port = free_loopback_port()
    server = subprocess.Popen([str(nats_server_binary()), "-a", "127.0.0.1", "-p", str(port), "-js",
                               "-sd", str(tmp_path / "js"), "--tls", "--tlscert", str(cert), "--tlskey", str(key)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nats-server with TLS did not start"
                time.sleep(0.05)
        url = f"tls://127.0.0.1:{port}"
        monkeypatch.setenv("MARKETPRISM_NATS_TLS_CA_FILE", str(cert))
        pubs = publications(10)
        sink = make_sink(url, tmp_path / "spill")
        part = open_partition(sink)
        part.write_batch(pubs)
        part.close()
        assert sink.stats.acked == 10 and sink.stats.on_disk == 0
        monkeypatch.delenv("MARKETPRISM_NATS_TLS_CA_FILE")  # without the CA the server is not trusted
        untrusted = make_sink(url, tmp_path / "spill-untrusted", close_timeout_s=0.3)
        part = open_partition(untrusted)
        part.write_batch(publications(3, prefix="untrusted"))
        part.close()
        assert untrusted.stats.acked == 0 and untrusted.stats.on_disk == 3
    finally:
        server.terminate()
        server.wait(10)
