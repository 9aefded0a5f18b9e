"""Measure what each JetStream subject costs per book: bytes a second, bytes a day.

Runs the collector (default settings: 5000 levels, full books every second, snapshots
every 10 s) against the simulator in this process for SECONDS, publishing to an
embedded nats-server, then reads every stored message back and prints, per subject,
messages, bytes a second and bytes a day, and per stream the days its `max_bytes` holds
against its `max_age_s` (the defaults of `schemas/streams.py`).

    .venv/bin/python deploy/k8s/tools/stream_bytes.py [SECONDS]

Bytes counted per message: subject + headers + payload, which is what JetStream's file
store keeps of it (plus a fixed record overhead of a few tens of bytes) before S2
compression. Rates use the span from a subject's first to its last message, so the
start-up (sockets, snapshots) does not dilute them.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import nats

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from connectors.nats_server import EmbeddedNatsServer  # noqa: E402
from schemas.streams import StreamSettings  # noqa: E402
from sim.server import SimulatorThread  # noqa: E402
from tests.live_support import collect_from  # noqa: E402

DAY_S = 86_400


async def measure(url: str) -> tuple[dict[str, dict], dict[str, int]]:
    client = await nats.connect(url)
    js = client.jetstream()
    per_subject: dict[str, dict] = defaultdict(lambda: {"n": 0, "bytes": 0, "first": None, "last": None, "first_bytes": 0})
    stream_bytes: dict[str, int] = {}
    try:
        for stream in StreamSettings().streams():
            try:
                info = await js.stream_info(stream)
            except Exception:  # noqa: BLE001 - a stream nobody published to
                continue
            stream_bytes[stream] = info.state.bytes
            if info.state.messages == 0:
                continue
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(stream, seq)
                size = len(msg.subject or "") + len(msg.hdrs or b"") + len(msg.data or b"")
                row = per_subject[f"{stream} {msg.subject}"]
                row["n"] += 1
                row["bytes"] += size
                if row["first"] is None:
                    row["first"], row["first_bytes"] = msg.time, size
                row["last"] = msg.time
    finally:
        await client.close()
    return per_subject, stream_bytes


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNatsServer(Path(tmp) / "nats")
        server.start()
        try:
            with SimulatorThread() as simulator:
                collect_from(simulator, server.url, Path(tmp) / "data", seconds)
            per_subject, stream_bytes = asyncio.run(measure(server.url))
        finally:
            server.stop()
    limits = StreamSettings().streams()
    per_stream_day: dict[str, float] = defaultdict(float)
    print(f"collector against the simulator for {seconds:g} s")
    print(f"{'stream subject':62} {'msgs':>6} {'B/msg':>9} {'B/s':>11} {'GiB/day':>8}")
    for key in sorted(per_subject):
        row = per_subject[key]
        span = (row["last"] - row["first"]).total_seconds() if row["n"] > 1 else 0.0
        rate = (row["bytes"] - row["first_bytes"]) / span if span > 0 else 0.0
        per_stream_day[key.split()[0]] += rate * DAY_S
        print(f"{key:62} {row['n']:>6} {row['bytes'] / row['n']:>9.0f} {rate:>11.0f} {rate * DAY_S / 2**30:>8.2f}")
    print(f"\n{'stream':16} {'stored B':>12} {'GiB/day':>8} {'max_bytes':>10} {'max_age h':>9} {'holds h':>8}")
    for stream, day in per_stream_day.items():
        lim = limits[stream]
        holds_h = lim.max_bytes / day * 24 if day else float("inf")
        print(f"{stream:16} {stream_bytes.get(stream, 0):>12} {day / 2**30:>8.2f} {lim.max_bytes / 2**30:>8.2f}Gi "
              f"{lim.max_age_s / 3600:>9.0f} {holds_h:>8.2f}")


if __name__ == "__main__":
    main()
