"""What a flow hands the NATS sink: one message, already encoded, with its dedup id."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Publication:
    """One JetStream message.

    `msg_id` becomes the `Nats-Msg-Id` header, so it must be the same whenever the same
    event is published again (a retry, a replay after recovery): JetStream then stores
    it once. It must also differ between any two different messages, or JetStream drops
    the second. Derive it from the event and its bytes (`operators.message_ids`), never
    from a clock.
    """

    subject: str
    data: bytes
    msg_id: str
