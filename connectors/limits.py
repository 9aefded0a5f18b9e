"""Request budgets shared by every book of a venue in this process.

Snapshots are what gets an IP banned: 5000-level Binance depth costs 250 of 6000 weight a
minute, OKX books-full allows 10 requests per 2 s. Every REST call reserves its cost here
first; the exchange's own headers (`x-mbx-used-weight-1m`, `Retry-After`) correct our
count, and a random spread keeps many books reconnecting at once from becoming a storm.
Thread-safe: each source partition runs its own event loop thread.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable


class WindowBudget:
    """At most `budget` units per `window_s` seconds, paced: a small burst, then an even rate.

    Any window sees at most `budget * headroom * (1 + burst_fraction)` units, so the
    defaults (0.8, 0.25) never exceed the venue's limit.

    Virtual scheduling (GCRA): units flow at `budget * headroom / window_s` per second, and
    up to `burst_fraction` of the budget may go at once. So one resync gets its snapshot at
    once, while forty books resyncing together are served one after another, never more
    than `budget` in any window. The exchange's own count (`observe_used`) and `Retry-After`
    (`block_for`) push the schedule back.
    """

    def __init__(
        self,
        budget: float,
        window_s: float,
        headroom: float = 0.8,
        burst_fraction: float = 0.25,
        spread_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.window_s = window_s
        self.limit = budget * headroom
        self.rate = self.limit / window_s
        self.tolerance_s = self.limit * burst_fraction / self.rate
        self.spread_s = spread_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._theoretical = clock()
        self._blocked_until = 0.0

    def reserve(self, cost: float) -> float:
        """Reserve `cost` and return how many seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            theoretical = max(self._theoretical, now)
            start = max(now, theoretical + cost / self.rate - self.tolerance_s, self._blocked_until)
            self._theoretical = max(theoretical, start) + cost / self.rate
            return start + self._rng.uniform(0, self.spread_s) - now

    async def acquire(self, cost: float) -> None:
        await asyncio.sleep(self.reserve(cost))
        while (blocked := self._blocked_until - self._clock()) > 0:  # a ban that came while we waited
            await asyncio.sleep(blocked)

    def observe_used(self, used: float) -> None:
        """The exchange says how much this IP spent this window: leave no more than the rest."""
        with self._lock:
            now = self._clock()
            remaining = max(0.0, self.limit - used)
            self._theoretical = max(self._theoretical, now + self.tolerance_s - remaining / self.rate)

    def block_for(self, seconds: float) -> None:
        """A 429/418 with Retry-After: nobody sends until it has passed."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)


class BackoffDelays:
    """Capped exponential back-off with full jitter, for reconnects and retries."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None) -> None:
        self.first_s, self.cap_s = first_s, cap_s
        self._attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap_s, self.first_s * 2**self._attempt)
        self._attempt += 1
        return self._rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        self._attempt = 0
