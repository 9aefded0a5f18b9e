"""The store as a child process of `marketprism collect`: started on the collector's NATS,
asked to drain and stop (SIGTERM) at the end, killed only if it does not within the timeout.

If the collector dies without stopping it (kill -9), Linux kills the store with it
(PR_SET_PDEATHSIG): a store left running would hold chDB's directory against the next
collector's store. Killing it is safe: it stores exactly once across a kill -9.
It runs below the collector's CPU priority: on Linux under the SCHED_IDLE policy, so a
core that runs only the store counts as idle to the scheduler and a waking collector thread
takes it at once (a niceness alone left the collector waiting behind chDB's merges for
milliseconds at 10x rates); elsewhere at `STORE_NICENESS`. On shared cores its inserts wait
for the collector, not the other way round; it catches up from the streams when they are
quieter, and its lag is on the status board."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("marketprism")

PR_SET_PDEATHSIG = 1
# The store is throughput first and the collector latency first: where they share cores,
# the store yields them (it catches up from the streams; its lag is on the status board).
STORE_NICENESS = 10


def _start_below_collector() -> None:
    """Runs in the child before exec: a lower CPU priority, and death with the collector."""
    os.nice(STORE_NICENESS)
    if sys.platform.startswith("linux"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class StoreProcess:
    """`python -m bytewax.run flows.store` with the collector's NATS URL and data directory;
    its log goes to `<data_dir>/store.log`."""

    def __init__(self, *, nats_url: str, data_dir: Path, stop_timeout_s: float = 120.0) -> None:
        self.nats_url = nats_url
        self.data_dir = Path(data_dir)
        self.stop_timeout_s = stop_timeout_s
        self.log_path = self.data_dir / "store.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> StoreProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MARKETPRISM_NATS_URL": self.nats_url, "MARKETPRISM_DATA_DIR": str(self.data_dir)}
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bytewax.run", "flows.store"], env=env, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=_start_below_collector,
            )
        log.info("store process %d started (log %s)", self.process.pid, self.log_path)
        return self

    def stop(self) -> int | None:
        """Ask it to store what the streams hold and stop; its exit code (None if killed)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            log.error("store process %d still storing after %.0f s: killed; it resumes where it stopped",
                      self.process.pid, self.stop_timeout_s)
            self.process.kill()
            self.process.wait()
            return None
