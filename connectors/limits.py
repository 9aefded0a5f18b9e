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
from collections import deque
from collections.abc import Callable


class WindowBudget:
    """At most `budget` units per `window_s` seconds (a sliding window), with head-room."""

    def __init__(
        self,
        budget: float,
        window_s: float,
        headroom: float = 0.8,
        spread_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.limit = budget * headroom
        self.window_s = window_s
        self.spread_s = spread_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._spent: deque[tuple[float, float]] = deque()  # (when, cost)
        self._blocked_until = 0.0

    def _used(self, now: float) -> float:
        while self._spent and self._spent[0][0] <= now - self.window_s:
            self._spent.popleft()
        return sum(cost for _, cost in self._spent)

    def reserve(self, cost: float) -> float:
        """Reserve `cost` and return how many seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._blocked_until)
            used = self._used(now)
            if used + cost > self.limit and self._spent:
                # Wait until enough of the oldest spending leaves the window.
                excess = used + cost - self.limit
                for when, spent in self._spent:
                    excess -= spent
                    if excess <= 0:
                        start = max(start, when + self.window_s)
                        break
            start += self._rng.uniform(0, self.spread_s)
            self._spent.append((start, cost))
            return start - now

    async def acquire(self, cost: float) -> None:
        await asyncio.sleep(self.reserve(cost))

    def observe_used(self, used: float) -> None:
        """The exchange says how much it counted this window; trust the larger figure."""
        with self._lock:
            now = self._clock()
            mine = self._used(now)
            if used > mine:
                self._spent.append((now, used - mine))

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
