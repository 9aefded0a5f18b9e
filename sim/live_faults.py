"""Faults for the live exchange: armed at a time or on demand, applied where they can show, and recorded.

A fault is armed for one venue:symbol and waits until it can take effect, so a test that
arms one and then reads knows it will see it:

- increments (`MESSAGE_KINDS`), on the next book increment sent to at least one client:
  drop, duplicate, reorder (sent after its successor), bad_checksum (OKX), seq_reset (OKX:
  seqId jumps below prevSeqId, which is legal), and the malformed extra frames of
  `faults` (not_json: the first half of the message; bad_price; negative_qty), each sent
  just before the intact message;
- connections (`CONNECTION_KINDS`), at the next 100 ms tick on every connection carrying
  the symbol: disconnect (TCP dropped without a close frame), stall (no message sent for
  `stall_s`, then everything at once, as a stuck stream delivers it; websocket pings and
  pongs go on), cut_frame (the next text frame goes out half written, then the TCP
  connection closes), silent_socket (nothing at all is sent on that connection from now
  on, replies such as OKX's `pong` included, and it stays open; websocket pings and pongs
  go on; unlike a stall it never resumes, but a new connection works);
- snapshots (`SNAPSHOT_KINDS`), on the next REST book request: slow_snapshot (the book is
  read, then sent `slow_snapshot_s` later), fail_snapshot (HTTP 500), limit_snapshot (HTTP
  429 as the venue answers it), ban_snapshot (HTTP 418 with `Retry-After: ban_snapshot_s`,
  as Binance answers a banned IP; OKX documents no 418, but a ban may come from any
  layer in front of it), bad_snapshot_body (HTTP 200 whose body is the first half of the
  book's JSON, so it does not parse);
- subscriptions (`SUBSCRIBE_KINDS`, OKX), on the next `subscribe` of `books` for the
  symbol: subscribe_error (the venue's error reply `{"event":"error","code":"60012",
  "msg":...,"connId":...}` instead of the acknowledgement, and no data).

Every fault that takes effect becomes an `InjectedFault` in `FaultBoard.injected`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, NamedTuple

from sim.faults import damage, first_level

Message = dict[str, Any]

MESSAGE_KINDS = (
    "drop", "duplicate", "reorder", "bad_checksum", "seq_reset", "not_json", "bad_price", "negative_qty",
)  # fmt: skip
CONNECTION_KINDS = ("disconnect", "stall", "cut_frame", "silent_socket")
SNAPSHOT_KINDS = ("slow_snapshot", "fail_snapshot", "limit_snapshot", "ban_snapshot", "bad_snapshot_body")
SUBSCRIBE_KINDS = ("subscribe_error",)
KINDS = MESSAGE_KINDS + CONNECTION_KINDS + SNAPSHOT_KINDS + SUBSCRIBE_KINDS
OKX_ONLY = ("bad_checksum", "seq_reset", "subscribe_error")


@dataclass(frozen=True)
class ScheduledFault:
    """Arm `kind` for `venue`:`symbol` `at_s` seconds after the exchange starts."""

    at_s: float
    kind: str
    venue: str
    symbol: str


@dataclass(frozen=True)
class FaultSettings:
    """The faults of one run, and how long the timed ones last."""

    schedule: tuple[ScheduledFault, ...] = ()
    stall_s: float = 5.0
    slow_snapshot_s: float = 3.0
    ban_snapshot_s: int = 120  # Binance's first ban


class InjectedFault(NamedTuple):
    """A fault that took effect: where, when (wall-clock ns), what, and anything a reader needs to undo it."""

    venue: str
    symbol: str
    at_ns: int
    kind: str
    detail: str = ""


class Cut(NamedTuple):
    """A frame that carries only the first half of `message`'s text: not JSON."""

    message: Message


Frame = Message | Cut


def half_body(body: str) -> str:
    """The first half of a REST body: what `bad_snapshot_body` answers instead of it."""
    return body[: len(body) // 2]


def showable(venue: str, message: Message) -> tuple[str, ...]:
    """The message faults `message` can carry: damage to a level needs a level (an OKX update may have none)."""
    if first_level(venue, message) is not None:
        return MESSAGE_KINDS
    return tuple(kind for kind in MESSAGE_KINDS if kind not in ("bad_price", "negative_qty"))


def check(kind: str, venue: str) -> None:
    """Refuse a fault the venue cannot show."""
    if kind not in KINDS:
        raise ValueError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")
    if venue not in ("binance", "okx"):
        raise ValueError(f"unknown venue {venue!r}; known: binance, okx")
    if kind in OKX_ONLY and venue != "okx":
        raise ValueError(f"{kind} is an OKX fault")


class FaultBoard:
    """Armed faults per venue:symbol, in arming order, and the record of those that took effect."""

    def __init__(self, settings: FaultSettings, now_ns: Callable[[], int]) -> None:
        for fault in settings.schedule:
            check(fault.kind, fault.venue)
        self.settings = settings
        self.injected: list[InjectedFault] = []
        self._now_ns = now_ns
        self._schedule = sorted(settings.schedule, key=lambda fault: fault.at_s)
        self._armed: dict[tuple[str, str], deque[str]] = {}

    def arm(self, kind: str, venue: str, symbol: str) -> None:
        check(kind, venue)
        self._armed.setdefault((venue, symbol), deque()).append(kind)

    def arm_due(self, elapsed_s: float) -> None:
        """Arm the scheduled faults whose time has come."""
        while self._schedule and self._schedule[0].at_s <= elapsed_s:
            fault = self._schedule.pop(0)
            self.arm(fault.kind, fault.venue, fault.symbol)

    def take(self, venue: str, symbol: str, kinds: Collection[str]) -> str | None:
        """The first armed fault of `kinds` for venue:symbol, disarmed; the caller applies and records it."""
        armed = self._armed.get((venue, symbol))
        for kind in armed or ():
            if kind in kinds:
                armed.remove(kind)  # type: ignore[union-attr]
                return kind
        return None

    def record(self, venue: str, symbol: str, kind: str, detail: str = "") -> None:
        self.injected.append(InjectedFault(venue, symbol, self._now_ns(), kind, detail))


class IncrementFaults:
    """Message faults on one ordered sequence of book increments; it holds a message a reorder delays."""

    def __init__(self, venue: str) -> None:
        self._venue = venue
        self._held: Message | None = None

    @property
    def holding(self) -> bool:
        """A reorder is under way: arm nothing new until its held message has gone out."""
        return self._held is not None

    def frames(self, message: Message, kind: str | None) -> list[Frame]:
        """What goes out instead of `message` (None: no fault); a held message follows its successor."""
        if self._held is not None:
            held, self._held = self._held, None
            return [message, held]
        if kind is None:
            return [message]
        if kind == "drop":
            return []
        if kind == "duplicate":
            return [message, message]
        if kind == "reorder":
            self._held = message
            return []
        if kind == "bad_checksum":
            return [damage(kind, self._venue, message)]
        if kind == "not_json":
            return [Cut(message), message]
        return [damage(kind, self._venue, message), message]
