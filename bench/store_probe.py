"""The store (`flows.store`) with a probe thread: every --every seconds one line of where
its memory is (RSS, Python heap, the source's held messages, chDB's own memory tracker).

    MARKETPRISM_NATS_URL=... MARKETPRISM_DATA_DIR=... python bench/store_probe.py --every 15 [--trace]

Figures only (bench/store_memory.py starts it). --trace adds tracemalloc's top growth
between the first sample after warm-up and now (slow: Python allocations are traced).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bytewax.run import cli_main  # noqa: E402

import connectors.clickhouse_backend as backend_mod  # noqa: E402
import connectors.jetstream_source as source_mod  # noqa: E402
from flows.store import build_flow, stop_on_sigterm  # noqa: E402
from schemas.settings import StoreSettings  # noqa: E402

PARTS: list[source_mod._StreamPartition] = []
CHDB: dict[str, object] = {"sample": {}, "ask": False}


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


_build_part = source_mod.JetStreamSource.build_part


def _recording_build_part(self, step_id, for_part, resume_state):  # type: ignore[no-untyped-def]
    part = _build_part(self, step_id, for_part, resume_state)
    PARTS.append(part)
    return part


source_mod.JetStreamSource.build_part = _recording_build_part  # type: ignore[method-assign]

_insert = backend_mod.ChdbBackend.insert
CHDB_SQL = (
    "SELECT metric, value FROM system.metrics WHERE metric IN ('MemoryTracking') "
    "UNION ALL SELECT concat('parts_active:', toString(count())), sum(primary_key_bytes_in_memory_allocated) "
    "FROM system.parts WHERE active "
    "UNION ALL SELECT 'merges', count() FROM system.merges"
)
LOG_SQL = (
    "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts WHERE active GROUP BY 1 ORDER BY 1"
)


def _probing_insert(self, database, table, batch, token):  # type: ignore[no-untyped-def]
    _insert(self, database, table, batch, token)
    if CHDB["ask"]:
        CHDB["ask"] = False
        try:
            CHDB["sample"] = {str(k): float(v) for k, v in self.query(CHDB_SQL)}
            CHDB["system"] = {str(k): (int(r), int(b)) for k, r, b in self.query(LOG_SQL)}
        except Exception as exc:  # a probe, not the store
            CHDB["sample"] = {"error": str(exc)[:200]}


backend_mod.ChdbBackend.insert = _probing_insert  # type: ignore[method-assign]


def _probe(every: float, trace: bool) -> None:
    started = time.monotonic()
    base = None
    while True:
        time.sleep(every)
        CHDB["ask"] = True
        held = {p._stream: (len(p._in_flight), len(p._awaiting), p._inbox.qsize(), len(getattr(p, "_acking", ())))
                for p in PARTS}
        held_bytes = sum(len(m.data) if hasattr(m, "data") else len(m) for p in PARTS for m in list(p._in_flight.values()))
        line = {
            "t_min": round((time.monotonic() - started) / 60, 2),
            "rss_mb": round(_status("VmRSS") / 1024, 1),
            "anon_mb": round(_status("RssAnon") / 1024, 1),  # the rest is file pages: chDB's 555 MB library
            "in_flight_awaiting_inbox_acking": held,
            "held_mb": round(held_bytes / 2**20, 1),
            "chdb": {k: (round(v / 2**20, 1) if isinstance(v, float) and v > 1e5 else v) for k, v in CHDB["sample"].items()},
            "system_tables": CHDB.get("system", {}),
        }
        if trace:
            line["py_traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
            snap = tracemalloc.take_snapshot()
            if base is None and line["t_min"] >= 1.0:
                base = snap
            elif base is not None:
                line["top_growth"] = [str(s)[:160] for s in snap.compare_to(base, "lineno")[:6]]
        else:
            counts = Counter(type(o).__name__ for o in gc.get_objects())
            line["gc_top"] = counts.most_common(6)
        print("PROBE " + json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=float, default=15.0)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.trace:
        tracemalloc.start(8)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    flow = build_flow(StoreSettings(), stop_on_sigterm())
    threading.Thread(target=_probe, args=(args.every, args.trace), daemon=True).start()
    cli_main(flow)


if __name__ == "__main__":
    main()
