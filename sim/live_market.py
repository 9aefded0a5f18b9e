"""One venue:symbol played in real time: each 100 ms window is drawn when it starts and published when it ends.

Drawing a window ahead lets a REST snapshot taken mid-window stand at the last step
already past (`update_id_at`), so its `lastUpdateId` falls inside the diff that follows,
as on the real exchange. Trades and top-of-book changes are told at their own step times
(`due`); the window's book increment goes out at its end, while the book still stands
there. The timeline of every step (time, update id) maps any recent instant to the true
book at that instant.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import deque
from dataclasses import replace

from sim.market import Market, Step, Window
from sim.specs import spec_for


class LiveMarket:
    """A `Market` with a window drawn ahead, the steps still to be told, and a timeline of every step."""

    def __init__(
        self, venue: str, symbol: str, seed: int, start_ns: int, rate_scale: float = 1.0, trend_levels_per_s: float = 0.0
    ) -> None:
        self.venue, self.symbol = venue, symbol
        spec = spec_for(venue, symbol)
        if rate_scale != 1.0:  # a busier market: `SimSettings.rate_scale`
            spec = replace(spec, activity=spec.activity * rate_scale)
        self.market = Market(spec, seed=f"{seed}:{venue}:{symbol}", start_ns=start_ns, trend_levels_per_s=trend_levels_per_s)
        self._ids = array("q")  # update id of every step, in order
        self._times = array("q")  # its time in ns, never decreasing
        self._floor_id = self.market.update_id  # the book before the first step on the timeline
        self._untold: deque[Step] = deque()  # drawn steps with trades or a new top, not yet told
        self.pending = self._draw()

    def due(self, until_ns: int) -> list[Step]:
        """Steps with trades or a new top, up to `until_ns`, that have not been told yet."""
        steps = []
        while self._untold and self._untold[0].ts_ns <= until_ns:
            steps.append(self._untold.popleft())
        return steps

    def draw_next(self) -> None:
        """Move on after `pending` was published: the book now stands at the end of the next window."""
        self.pending = self._draw()

    def update_id_at(self, ts_ns: int) -> int:
        """The update id of the true book at wall-clock `ts_ns` (within the kept history)."""
        index = bisect_right(self._times, ts_ns)
        return self._ids[index - 1] if index else self._floor_id

    def forget_before(self, ts_ns: int) -> None:
        """Drop history older than `ts_ns`; call it on the thread that draws windows."""
        index = bisect_right(self._times, ts_ns)
        if not index:
            return
        self._floor_id = self._ids[index - 1]
        self.market.forget_before(self._floor_id)
        del self._times[:index], self._ids[:index]

    def _draw(self) -> Window:
        window = self.market.next_window()
        for step in window.steps:
            self._ids.append(step.update_id)  # before its time: a reader bisects the times
            self._times.append(step.ts_ns)
            if step.trades or step.top is not None:
                self._untold.append(step)
        return window
