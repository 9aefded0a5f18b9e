"""One websocket client as a venue sees it: an ordered outbox drained by one sender, which faults can stall or cut.

Venues never await a slow client: they push text and move on, and the sender writes it
in order. That is also where connection faults act: a stall holds the outbox, a cut
writes half a frame and closes the TCP connection, a drop aborts it.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed


class _Close(NamedTuple):
    code: int
    reason: str


class Peer:
    """A connection's outbox and its sender task; `last_push` is when a frame last left."""

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.ip: str = connection.remote_address[0]
        self._loop = asyncio.get_running_loop()
        self._outbox: asyncio.Queue[str | _Close] = asyncio.Queue()
        self._stall_until = 0.0
        self._cut = False
        self._silent = False
        self.last_push = self._loop.time()

    def push(self, text: str) -> None:
        self._outbox.put_nowait(text)

    def close_after_outbox(self, code: int, reason: str) -> None:
        """Close once everything pushed so far has gone out."""
        self._outbox.put_nowait(_Close(code, reason))

    def stall(self, seconds: float) -> None:
        self._stall_until = max(self._stall_until, self._loop.time() + seconds)

    def cut_next_frame(self) -> None:
        self._cut = True

    def silence(self) -> None:
        """Send no frame ever again; the connection stays open (closes the venue asks for still happen)."""
        self._silent = True

    def drop(self) -> None:
        """Lose the TCP connection: no close frame, unsent data discarded."""
        self.connection.transport.abort()

    async def run(self) -> None:
        """Send the outbox in order until the connection ends."""
        try:
            while True:
                item = await self._outbox.get()
                delay = self._stall_until - self._loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if isinstance(item, _Close):
                    await self.connection.close(item.code, item.reason)
                    return
                if self._silent:
                    continue
                if self._cut:
                    self._write_half(item)
                    return
                await self.connection.send(item)
                self.last_push = self._loop.time()
        except ConnectionClosed:
            return

    def _write_half(self, text: str) -> None:
        """A text frame whose header promises all of `text` but whose payload stops halfway, then EOF."""
        payload = text.encode()
        size = len(payload)
        if size < 126:
            header = bytes([0x81, size])
        elif size < 1 << 16:
            header = bytes([0x81, 126]) + size.to_bytes(2, "big")
        else:
            header = bytes([0x81, 127]) + size.to_bytes(8, "big")
        transport = self.connection.transport
        transport.write(header + payload[: size // 2])
        transport.close()  # flushes what was written, then closes
