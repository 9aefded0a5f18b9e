"""Damage to inject into a generated recording, and a record of where each piece went.

Faults land between 30 % and 90 % of the run (drawn from `FaultPlan.seed`), when every
book is in sync and a later message still follows. They hit book messages that move the
sequence: Binance depth diffs and OKX `books` updates other than keep-alives. A test reads
`Fault` records to know what a client should detect, and at which receive time.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

Message = dict[str, Any]
Frame = tuple[int, str, bool]  # receive time ns, text, whether it is a malformed extra frame

KINDS = ("drop", "duplicate", "swap", "bad_checksum", "not_json", "bad_price", "negative_qty", "resnapshot")
_ONLY_ON = {"bad_checksum": "okx", "resnapshot": "binance"}


@dataclass(frozen=True)
class FaultPlan:
    """How many faults of each kind to inject; all off by default."""

    seed: int = 0
    drop: int = 0  # a book message never arrives
    duplicate: int = 0  # a book message arrives twice
    swap: int = 0  # a book message arrives after its successor
    bad_checksum: int = 0  # an OKX update carries a wrong checksum
    not_json: int = 0  # an extra frame: the first half of a book message
    bad_price: int = 0  # an extra frame: a copy of a book message with a non-numeric price
    negative_qty: int = 0  # an extra frame: a copy of a book message with a negative size
    resnapshot: int = 0  # an extra Binance REST snapshot later on, as a resync would fetch

    def schedule(
        self, streams: Sequence[tuple[str, str]], start_ns: int, seconds: float
    ) -> dict[tuple[str, str], list[tuple[int, str]]]:
        """(time, kind) per (venue, symbol), in time order."""
        rng = random.Random(f"faults:{self.seed}")
        plan: dict[tuple[str, str], list[tuple[int, str]]] = {stream: [] for stream in streams}
        for kind in KINDS:
            count = getattr(self, kind)
            eligible = [s for s in streams if s[0] == _ONLY_ON.get(kind, s[0])]
            if count and not eligible:
                raise ValueError(f"{kind} faults need a {_ONLY_ON[kind]} stream in the recording")
            for _ in range(count):
                at = start_ns + int(rng.uniform(0.3, 0.9) * seconds * 1e9)
                plan[rng.choice(eligible)].append((at, kind))
        for faults in plan.values():
            faults.sort()
        return plan


class Fault(NamedTuple):
    """One injected fault: the receive time of the frame that shows it (or would have carried it)."""

    venue: str
    symbol: str
    recv_ns: int
    kind: str


class FaultInjector:
    """Applies one stream's scheduled faults to its book messages as they are produced."""

    def __init__(
        self, venue: str, symbol: str, scheduled: list[tuple[int, str]], encode: Callable[[Message], str]
    ) -> None:
        self.venue, self.symbol = venue, symbol
        self.injected: list[Fault] = []
        self.resnapshot_times = [at for at, kind in scheduled if kind == "resnapshot"]
        self._pending = [(at, kind) for at, kind in scheduled if kind != "resnapshot"]
        self._encode = encode
        self._held: tuple[int, str] | None = None  # (when it was due, text) of a message its successor overtakes

    def record(self, recv_ns: int, kind: str) -> None:
        self.injected.append(Fault(self.venue, self.symbol, recv_ns, kind))

    def book_message(self, message: Message, sent_ns: int, arrive: Callable[[], int]) -> list[Frame]:
        """The frames a client receives in place of `message`, sent at `sent_ns`; `arrive` times each frame."""
        text = self._encode(message)
        if self._held is not None:
            held, self._held = self._held[1], None
            frames = [(arrive(), text, False), (arrive(), held, False)]
            self.record(frames[0][0], "swap")
            return frames
        if not self._pending or sent_ns < self._pending[0][0]:
            return [(arrive(), text, False)]
        kind = self._pending[0][1]
        if kind in ("bad_price", "negative_qty") and not first_level(self.venue, message):
            return [(arrive(), text, False)]  # nothing to damage here: try the next message
        self._pending.pop(0)
        if kind == "swap":
            self._held = (arrive(), text)
            return []
        frames: list[Frame]
        if kind == "drop":
            frames = []
            self.record(arrive(), kind)
        elif kind == "duplicate":
            frames = [(arrive(), text, False), (arrive(), text, False)]
            self.record(frames[1][0], kind)
        elif kind == "bad_checksum":
            frames = [(arrive(), self._encode(damage(kind, self.venue, message)), False)]
            self.record(frames[0][0], kind)
        else:
            frames = [(arrive(), self._malformed(kind, message, text), True), (arrive(), text, False)]
            self.record(frames[0][0], kind)
        return frames

    def finish(self) -> None:
        """At the end of the run, a message still waiting for a successor to overtake it was in effect dropped."""
        if self._held is not None:
            self.record(self._held[0], "drop")
            self._held = None

    def _malformed(self, kind: str, message: Message, text: str) -> str:
        if kind == "not_json":
            return text[: len(text) // 2]
        return self._encode(damage(kind, self.venue, message))


def damage(kind: str, venue: str, message: Message) -> Message:
    """A damaged copy of a book message: "bad_checksum" (OKX), "bad_price" or "negative_qty" (a level needed)."""
    damaged = copy.deepcopy(message)
    if kind == "bad_checksum":
        entry = damaged["data"][0]
        entry["checksum"] = entry["checksum"] ^ (2 if entry["checksum"] == 1 else 1)
        return damaged
    level = first_level(venue, damaged)
    if level is None:
        raise ValueError(f"a {venue} message without levels cannot carry a {kind} fault")
    if kind == "bad_price":
        level[0] = "abc"
    elif kind == "negative_qty":
        level[1] = "-" + level[1] if level[1].strip("0.") else "-1"
    else:
        raise ValueError(f"{kind!r} is not damage to a message")
    return damaged


def first_level(venue: str, message: Message) -> list[str] | None:
    """The first level of a Binance diff or an OKX books message, or None when it has none."""
    if venue == "binance":
        sides = (message["data"]["b"], message["data"]["a"])
    else:
        sides = (message["data"][0]["bids"], message["data"][0]["asks"])
    return next((side[0] for side in sides if side), None)
