"""Tiny naive clients for the live simulator tests: written from the exchanges' documents, never from sim's code.

- `RawWebSocket`: a websocket client that does only what the test says (it never answers
  a ping by itself) and shows frames as they are on the wire, cut ones included.
- `BinanceBook`, `OkxBook`: one dict per side; OKX with a plain CRC32 checksum.
- `recv_json`, `wait_for`: reading and waiting with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import base64
import os
import socket
import time
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
from websockets.sync.client import ClientConnection

T = TypeVar("T")


def wait_for(probe: Callable[[], T], timeout: float, what: str) -> T:
    """Poll `probe` until it returns something truthy, or fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def recv_json(ws: ClientConnection, timeout: float = 3.0) -> Any:
    return orjson.loads(ws.recv(timeout=timeout))


def recv_until(ws: ClientConnection, match: Callable[[Any], bool], timeout: float, what: str) -> Any:
    """The first JSON message that `match`es, reading for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        message = orjson.loads(ws.recv(timeout=left))
        if match(message):
            return message
    raise AssertionError(f"{what}: not within {timeout} s")


class TruncatedFrame(Exception):
    """The connection ended inside a frame: its header promised `expected` payload bytes, `got` came."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"frame cut after {got} of {expected} bytes")
        self.expected, self.got = expected, got


class RawWebSocket:
    """RFC 6455 by hand: a handshake, masked frames out, raw frames in."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        self.status = int(head.split(b" ", 2)[1])

    def read_frame(self, timeout: float) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame; EOFError at a clean end, TruncatedFrame inside a frame."""
        self.sock.settimeout(timeout)
        first = self._exact(2, at_boundary=True)
        size = first[1] & 0x7F
        if size == 126:
            size = int.from_bytes(self._exact(2), "big")
        elif size == 127:
            size = int.from_bytes(self._exact(8), "big")
        payload = b""
        while len(payload) < size:
            chunk = self.sock.recv(size - len(payload))
            if not chunk:
                raise TruncatedFrame(size, len(payload))
            payload += chunk
        return first[0] & 0x0F, payload

    def send_pong(self, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        self.sock.close()

    def _exact(self, n: int, at_boundary: bool = False) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                if at_boundary and not data:
                    raise EOFError("connection closed")
                raise TruncatedFrame(n, len(data))
            data += chunk
        return data


class BinanceBook:
    """A Binance local book from a REST snapshot plus diffs: exact text per level, zero removes."""

    def __init__(self, snapshot: dict) -> None:
        self.last_update_id: int = snapshot["lastUpdateId"]
        self.sides = ({p: q for p, q in snapshot["bids"]}, {p: q for p, q in snapshot["asks"]})
        self.edges = (Decimal(snapshot["bids"][-1][0]), Decimal(snapshot["asks"][-1][0]))

    def apply(self, diff: dict) -> None:
        for side, levels in zip(self.sides, (diff["b"], diff["a"]), strict=True):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.last_update_id = diff["u"]

    def known(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Levels no deeper than the snapshot's last: deeper ones are unknown until they change."""
        bids = sorted((p for p in self.sides[0] if Decimal(p) >= self.edges[0]), key=Decimal, reverse=True)
        asks = sorted((p for p in self.sides[1] if Decimal(p) <= self.edges[1]), key=Decimal)
        return [(p, self.sides[0][p]) for p in bids], [(p, self.sides[1][p]) for p in asks]


def within(levels: list[tuple[str, str]], edge: Decimal, bids: bool) -> list[tuple[str, str]]:
    return [(p, q) for p, q in levels if (Decimal(p) >= edge if bids else Decimal(p) <= edge)]


class OkxBook:
    """An OKX local book from `books` messages: a snapshot replaces it, sizes of "0" remove levels."""

    def __init__(self) -> None:
        self.sides: tuple[dict[str, list[str]], dict[str, list[str]]] = ({}, {})

    def apply(self, entry: dict, snapshot: bool) -> None:
        if snapshot:
            self.sides = ({}, {})
        for side, levels in zip(self.sides, (entry["bids"], entry["asks"]), strict=True):
            for level in levels:
                if Decimal(level[1]) == 0:
                    side.pop(level[0], None)
                else:
                    side[level[0]] = level

    def top(self, depth: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.sides[0], key=Decimal, reverse=True)[:depth]
        asks = sorted(self.sides[1], key=Decimal)[:depth]
        return [(p, self.sides[0][p][1]) for p in bids], [(p, self.sides[1][p][1]) for p in asks]

    def checksum(self) -> int:
        bids, asks = self.top(25)
        parts: list[str] = []
        for i in range(25):
            if i < len(bids):
                parts += bids[i]
            if i < len(asks):
                parts += asks[i]
        crc = zlib.crc32(":".join(parts).encode())
        return crc - (1 << 32) if crc >= 1 << 31 else crc
