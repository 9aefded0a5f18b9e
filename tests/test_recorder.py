"""The raw recorder: a kill -9 loses at most the last second, every file stays readable (one
zstd frame per file, never finished by a killed process), and `marketprism replay` reads
the files directly, with the same result as from a plain JSON Lines copy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from connectors.nats_server import EmbeddedNatsServer
import zstandard

from connectors.recorder import RecorderSink
from connectors.recording import RecordingWriter, read_recording
from flows.replay import run_replay
from schemas.raw import RawEvent, RecordingDefect
from sim.server import SimulatorThread
from sim.settings import SimSettings

REPO = Path(__file__).resolve().parents[1]


def _recorded(directory: Path) -> list[Path]:
    return sorted(directory.glob("*/*.jsonl.zst"))


def _events_in(files: list[Path]) -> int:
    return sum(isinstance(item, RawEvent) for path in files for item in read_recording(path))


def test_kill_9_leaves_readable_recordings_that_replay(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with SimulatorThread(SimSettings(seed=6, symbols=("BTC-USDT",))) as simulator, \
            EmbeddedNatsServer(tmp_path / "nats") as server:
        env = dict(os.environ)
        env.update(
            MARKETPRISM_SYMBOLS="BTC-USDT", MARKETPRISM_NATS_URL=server.url, MARKETPRISM_DATA_DIR=str(data),
            MARKETPRISM_BINANCE_REST_URL=simulator.binance_url, MARKETPRISM_BINANCE_WS_URL=simulator.binance_ws_url,
            MARKETPRISM_OKX_REST_URL=simulator.okx_url, MARKETPRISM_OKX_WS_URL=simulator.okx_ws_url,
        )
        collector = subprocess.Popen([sys.executable, "-m", "bytewax.run", "flows.collect"], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while _events_in(_recorded(data / "recordings")) < 300:  # some seconds of both venues on disk
                assert time.monotonic() < deadline and collector.poll() is None
                time.sleep(0.2)
            on_disk_before = _events_in(_recorded(data / "recordings"))
            while _events_in(_recorded(data / "recordings")) <= on_disk_before:  # one more flush, then kill
                assert time.monotonic() < deadline and collector.poll() is None
                time.sleep(0.1)
        finally:
            collector.send_signal(signal.SIGKILL)
            collector.wait(timeout=30)
        killed_at = time.time_ns()

    files = _recorded(data / "recordings")
    assert {path.parent.name for path in files} == {"binance", "okx"}
    items = [item for path in files for item in read_recording(path)]
    events = [item for item in items if isinstance(item, RawEvent)]
    defects = [item for item in items if isinstance(item, RecordingDefect)]
    assert len(defects) <= len(files)  # at most one torn frame per file
    assert len(events) > on_disk_before  # the frames written after the check are there too
    # Nothing older than about a second before the kill is missing: the newest event is recent.
    assert killed_at - max(event.recv_ns for event in events) < 2_500_000_000

    for path in files:  # one frame per file, which the kill left unfinished; every flushed block reads
        frame = zstandard.ZstdDecompressor().decompressobj()
        text = frame.decompress(path.read_bytes())
        assert not frame.eof and text.endswith(b"\n") and text.count(b"\n") == sum(
            isinstance(item, RawEvent) for item in read_recording(path))
    plain = []
    for path in files:
        copy = tmp_path / "plain" / path.parent.name / path.name.replace(".jsonl.zst", ".jsonl")
        with RecordingWriter(copy) as writer:
            for item in read_recording(path):
                if isinstance(item, RawEvent):
                    writer.write(item)
        plain.append(copy)
    run_replay(plain, out=tmp_path / "from_plain.jsonl")
    report = run_replay(files, out=tmp_path / "from_recorder.jsonl")
    replayed = (tmp_path / "from_recorder.jsonl").read_bytes()
    assert len(replayed.splitlines()) > 100 and replayed == (tmp_path / "from_plain.jsonl").read_bytes()
    for key in ("binance:BTC-USDT", "okx:BTC-USDT"):
        book = report["books"][key]
        assert book["snapshots"] >= 1 and book["gaps"] == 0 and book["best_bid"] is not None, (key, book)
    assert report["books"]["okx:BTC-USDT"]["checksum_failures"] == 0


def test_events_are_filed_by_the_utc_hour_they_were_received_in(tmp_path: Path) -> None:
    """An hour's file is named for its UTC hour and holds that hour's events only, also when
    the clock steps back (events arrive per book, not strictly in receive order)."""
    at = {"20:59:59.9": 1_796_158_799_900_000_000, "21:00:00.0": 1_796_158_800_000_000_000,
          "21:59:59.999": 1_796_162_399_999_000_000}  # 2026-12-01, UTC
    order = ["20:59:59.9", "21:00:00.0", "20:59:59.9", "21:59:59.999"]
    partition = RecorderSink(tmp_path).build("recorder", 0, 1)
    partition.write_batch([RawEvent(recv_ns=at[t], venue="okx", conn="okx:BTC-USDT", kind="ws", symbol="BTC-USDT",
                                    url=None, data=f'{{"n":{n}}}') for n, t in enumerate(order)])
    partition.close()
    files = {path.name[:11]: [e.data for e in read_recording(path) if isinstance(e, RawEvent)]
             for path in _recorded(tmp_path)}
    assert files == {"20261201-20": ['{"n":0}', '{"n":2}'], "20261201-21": ['{"n":1}', '{"n":3}']}
