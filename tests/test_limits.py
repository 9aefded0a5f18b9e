"""Request budgets: many books asking at once are spread out and never exceed the venue's limit."""

from __future__ import annotations

import asyncio
import random
import time

from connectors.binance import depth_weight
from connectors.limits import BackoffDelays, WindowBudget


class _Clock:
    """A clock the test advances by hand, so budgets can be checked over simulated minutes."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _spent_in_any_window(starts: list[tuple[float, float]], window_s: float) -> float:
    return max(sum(cost for when, cost in starts if start <= when < start + window_s) for start, _ in starts)


def test_forty_books_resyncing_at_once_stay_inside_binance_weight() -> None:
    clock = _Clock()
    budget = WindowBudget(budget=6000, window_s=60.0, clock=clock, rng=random.Random(1))
    weight = depth_weight(5000)
    starts = [(clock.now + budget.reserve(weight), weight) for _ in range(40)]
    assert weight == 250
    assert _spent_in_any_window(starts, 60.0) <= 6000
    ordered = sorted(when for when, _ in starts)
    assert sum(when < clock.now + 0.5 for when in ordered) <= 5  # a small burst at once ...
    assert min(b - a for a, b in zip(ordered[4:], ordered[5:])) > 2.5  # ... then paced, never a storm
    assert ordered[-1] - clock.now > 100


def test_exchange_reported_weight_and_retry_after_are_honoured() -> None:
    clock = _Clock()
    budget = WindowBudget(budget=6000, window_s=60.0, clock=clock, spread_s=0.0)
    assert budget.reserve(250) == 0.0
    budget.observe_used(4700)  # other processes on this IP spent weight too
    # 100 of the 4800 we allow ourselves are left: wait until 150 more have been earned back.
    assert abs(budget.reserve(250) - 150 / (6000 * 0.8 / 60)) < 1e-9
    fresh = WindowBudget(budget=6000, window_s=60.0, clock=clock, spread_s=0.0)
    fresh.block_for(30.0)
    assert fresh.reserve(5) == 30.0


def test_okx_books_full_budget_allows_ten_per_two_seconds() -> None:
    clock = _Clock()
    budget = WindowBudget(budget=10, window_s=2.0, clock=clock, spread_s=0.0)
    starts = [(clock.now + budget.reserve(1), 1.0) for _ in range(40)]
    assert _spent_in_any_window(starts, 2.0) <= 10


def test_backoff_grows_with_jitter_up_to_its_cap() -> None:
    backoff = BackoffDelays(first_s=0.5, cap_s=8.0, rng=random.Random(3))
    delays = [backoff.next() for _ in range(8)]
    assert all(0.25 <= d <= 8.0 for d in delays)
    assert delays[-1] >= 4.0 and delays[0] <= 0.5
    backoff.reset()
    assert backoff.next() <= 0.5


def test_a_ban_that_comes_while_a_request_waits_holds_it_too() -> None:
    """A 418 seen by one book stops the others, even those already waiting for their slot."""

    async def second_request_starts_after() -> float:
        budget = WindowBudget(budget=1, window_s=0.5, burst_fraction=1.0, spread_s=0.0)
        await budget.acquire(1)
        started = time.monotonic()
        waiting = asyncio.create_task(budget.acquire(1))  # its slot: in about 0.6 s
        await asyncio.sleep(0)  # let it reserve
        budget.block_for(1.5)
        await waiting
        return time.monotonic() - started

    assert asyncio.run(second_request_starts_after()) >= 1.5
