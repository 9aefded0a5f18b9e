"""The exchanges' rate limits, as pure bookkeeping: callers pass the time, so tests need no clock.

- `RequestWeights`: Binance REQUEST_WEIGHT per IP. Each calendar minute (`window_s`) has a
  budget (6000); the request that takes the minute past it gets 429 with `Retry-After` until
  the minute ends; any request during that back-off earns a 418 ban of `ban_s`, doubling for
  each repeat up to three days, and requests during a ban get 418 with the time left.
- `SlidingWindow`: at most `limit` events in any `period_s` per key (OKX's 40 books / 2 s,
  10 books-full / 2 s, 3 connection attempts / s; Binance's 5 incoming messages / s).
  Refused events are not counted.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Hashable
from dataclasses import dataclass

MAX_BAN_S = 3 * 86400.0


def binance_depth_weight(limit: int) -> int:
    """The request weight of `GET /api/v3/depth` for `limit` levels per side."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a weighed request gets: HTTP status 200, 429 or 418, the minute's weight used, seconds to wait."""

    status: int
    used: int
    retry_after: int = 0


@dataclass(slots=True)
class _IpWeight:
    window: int = -1
    used: int = 0
    backoff_until: float = 0.0
    banned_until: float = 0.0
    bans: int = 0


class RequestWeights:
    """Binance's weight budget per IP and calendar minute, with 429 back-offs and escalating 418 bans."""

    def __init__(self, limit: int = 6000, window_s: float = 60.0, ban_s: float = 120.0) -> None:
        self.limit, self._window_s, self._ban_s = limit, window_s, ban_s
        self._ips: defaultdict[str, _IpWeight] = defaultdict(_IpWeight)

    def charge(self, ip: str, weight: int, now: float) -> Verdict:
        """Weigh one request from `ip` at `now` (seconds since the epoch)."""
        state = self._ips[ip]
        window = int(now // self._window_s)
        if window != state.window:
            state.window, state.used = window, 0
        if now < state.banned_until:
            return Verdict(418, state.used, math.ceil(state.banned_until - now))
        if now < state.backoff_until:
            state.bans += 1
            ban = min(self._ban_s * 2 ** (state.bans - 1), MAX_BAN_S)
            state.banned_until = now + ban
            return Verdict(418, state.used, math.ceil(ban))
        state.used += weight
        if state.used > self.limit:
            state.backoff_until = (window + 1) * self._window_s
            return Verdict(429, state.used, max(1, math.ceil(state.backoff_until - now)))
        return Verdict(200, state.used)


class SlidingWindow:
    """At most `limit` events per key in any `period_s` seconds."""

    def __init__(self, limit: int, period_s: float) -> None:
        self.limit, self.period_s = limit, period_s
        self._events: defaultdict[Hashable, deque[float]] = defaultdict(deque)

    def allow(self, key: Hashable, now: float) -> bool:
        """Count an event for `key` at `now` (any monotonic seconds) if it fits; False if it does not."""
        events = self._events[key]
        while events and events[0] <= now - self.period_s:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    def forget(self, key: Hashable) -> None:
        """Drop a key that will not come back (a closed connection)."""
        self._events.pop(key, None)
