"""JetStream publishes whose acks come back on one inbox subscription of the connection.

nats-py's `publish_async` spends about 19 µs of the publishing thread per message (a task
for its semaphore wait, a future, a PubAck dataclass built from the reply); this is a
plain publish with a reply subject, about 7 µs, and every microsecond of that thread holds
the GIL the collector's worker waits for. What the sink needs of an ack is small: done or
not, a duplicate or not, and for a refusal its code and description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg

# A reply without a body carries its status in headers ("503": no stream takes the subject).
STATUS_HEADER = "Status"
DESCRIPTION_HEADER = "Description"


@dataclass(slots=True)
class PendingAck:
    """One publish's answer: `done` once JetStream replied; `error_code` None when it stored
    the message (`duplicate` when it had it already), else the code of its refusal."""

    done: bool = False
    duplicate: bool = False
    error_code: int | None = None
    error: str = ""

    def settle(self, data: bytes, headers: dict[str, str] | None) -> None:
        self.done = True
        if not data:
            status = (headers or {}).get(STATUS_HEADER, "")
            self.error_code = int(status) if status.isdigit() else 0
            self.error = (headers or {}).get(DESCRIPTION_HEADER) or f"a reply without a body (status {status!r})"
            return
        try:
            reply = orjson.loads(data)
        except orjson.JSONDecodeError:
            reply = None
        if not isinstance(reply, dict):
            self.error_code, self.error = 0, f"not a JetStream ack: {data[:200]!r}"
        elif isinstance(failure := reply.get("error"), dict):
            self.error_code = int(failure.get("code") or 0)
            self.error = str(failure.get("description", failure))
        elif "seq" not in reply:
            self.error_code, self.error = 0, f"an ack without a sequence: {data[:200]!r}"
        else:
            self.duplicate = bool(reply.get("duplicate"))


class AckInbox:
    """Publishes on `nc` with a reply subject under one inbox; `on_settled` runs (on the
    connection's loop) after each ack arrives. One per connection: a new connection's acks
    never settle an old connection's publishes."""

    def __init__(self, nc: Client, on_settled: Callable[[], None]) -> None:
        self._nc = nc
        self._on_settled = on_settled
        self._prefix = nc.new_inbox() + "."
        self._pending: dict[str, PendingAck] = {}
        self._next_token = 0

    async def start(self) -> None:
        await self._nc.subscribe(self._prefix + "*", cb=self._on_reply)

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> PendingAck:
        token = str(self._next_token)
        self._next_token += 1
        pending = self._pending[token] = PendingAck()
        await self._nc.publish(subject, payload, reply=self._prefix + token, headers={"Nats-Msg-Id": msg_id})
        return pending

    async def _on_reply(self, msg: Msg) -> None:
        pending = self._pending.pop(msg.subject[len(self._prefix):], None)
        if pending is not None:  # None: a reply nobody waits for (a second one, say)
            pending.settle(msg.data, msg.headers)
            self._on_settled()
