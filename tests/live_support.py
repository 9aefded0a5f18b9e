"""Running the collector against the simulator and reading back what reached NATS."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import orjson
from bytewax.testing import run_main

from connectors.control import ControlBus
from flows.collect import build_flow
from flows.status import StatusBoard
from schemas.settings import CollectSettings
from sim.server import SimulatorThread


def collect_from(
    simulator: SimulatorThread,
    nats_url: str,
    data_dir: Path,
    seconds: float,
    *,
    bus: ControlBus | None = None,
    board: StatusBoard | None = None,
    end: threading.Event | None = None,
    **overrides: Any,
) -> dict:
    """Run the collect flow against the simulator for `seconds` (or until `end` is set, if
    sooner); returns the final summary. `bus` replaces the in-process control bus (say, one
    that loses requests); `board` the status board (say, one writing to a buffer)."""
    settings = CollectSettings(
        binance_rest_url=simulator.binance_url, binance_ws_url=simulator.binance_ws_url,
        okx_rest_url=simulator.okx_url, okx_ws_url=simulator.okx_ws_url,
        nats_url=nats_url, data_dir=data_dir, run_seconds=seconds, **{"sinks": ["nats", "recorder"], **overrides},
    )
    summary: list[dict] = []
    run_main(build_flow(settings, nats_url, bus=bus, board=board, summary=summary, end=end))
    return summary[0]


@contextmanager
def end_when(condition: Callable[[], bool], poll_s: float = 0.25) -> Iterator[threading.Event]:
    """An end event for `collect_from`, set once `condition()` holds (polled on a thread of
    its own): a run given as many seconds as a slow machine may need ends as soon as what
    the test waits for has happened. A condition that raises counts as not yet."""
    end = threading.Event()

    def watch() -> None:
        while not end.wait(poll_s):
            try:
                if condition():
                    end.set()
            except Exception:  # noqa: BLE001 - say, a stream not created yet
                pass

    watcher = threading.Thread(target=watch, name="end_when", daemon=True)
    watcher.start()
    try:
        yield end
    finally:
        end.set()
        watcher.join(timeout=30)


async def _subject_messages(url: str, stream: str, subject: str) -> list[dict]:
    client = await nats.connect(url)
    js = client.jetstream()
    found: list[dict] = []
    seq = 1
    try:
        while True:
            try:
                msg = await js.get_msg(stream, seq, subject=subject, next=True)
            except nats.js.errors.NotFoundError:
                return found
            found.append(orjson.loads(msg.data))
            seq = msg.seq + 1
    finally:
        await client.close()


def subject_messages(url: str, stream: str, subject: str) -> list[dict]:
    """The payloads `stream` holds on `subject`, in stream order (read one by one, so cheap
    for a sparse subject)."""
    return asyncio.run(_subject_messages(url, stream, subject))


async def _subject_counts(url: str, stream: str) -> dict[str, int]:
    client = await nats.connect(url)
    try:
        info = await client.jetstream().stream_info(stream, subjects_filter=">")
        return dict(info.state.subjects or {})
    finally:
        await client.close()


def subject_counts(url: str, stream: str) -> dict[str, int]:
    """How many messages `stream` holds on each of its subjects."""
    return asyncio.run(_subject_counts(url, stream))


async def _last_message(url: str, stream: str, subject: str) -> dict:
    client = await nats.connect(url)
    try:
        return orjson.loads((await client.jetstream().get_last_msg(stream, subject)).data)
    finally:
        await client.close()


def last_message(url: str, stream: str, subject: str) -> dict:
    """The payload of the newest message `stream` holds on `subject`."""
    return asyncio.run(_last_message(url, stream, subject))


async def _read_streams(url: str, streams: tuple[str, ...]) -> dict[str, list[tuple[str, dict, str]]]:
    client = await nats.connect(url)
    js = client.jetstream()
    found: dict[str, list[tuple[str, dict, str]]] = defaultdict(list)
    try:
        for stream in streams:
            try:
                info = await js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                continue  # not created yet
            if info.state.messages == 0:
                continue
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(stream, seq)
                msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
                found[msg.subject].append((msg.subject, orjson.loads(msg.data), msg_id))
    finally:
        await client.close()
    return found


def read_streams(url: str, streams: tuple[str, ...] = ("ORDERBOOK_FULL", "ORDERBOOK_DELTA")) -> dict[str, list]:
    """Every stored message of the streams, by subject, in stream order: (subject, payload, msg id)."""
    return asyncio.run(_read_streams(url, streams))


def store_from(nats_url: str, data_dir: Path) -> None:
    """Run the store dataflow until it has stored everything the streams hold (ClickHouse
    from the environment: chDB under MARKETPRISM_CLICKHOUSE_EMBEDDED_PATH, say)."""
    from flows.store import build_flow as build_store
    from schemas.settings import StoreSettings

    drained = threading.Event()
    drained.set()
    run_main(build_store(StoreSettings(nats_url=nats_url, data_dir=data_dir), drained))
