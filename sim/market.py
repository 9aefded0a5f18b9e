"""A seeded order-book process for one symbol, and the truth of every state it passes through.

The model knows no wire format. It advances in 100 ms windows; a window is a list of
steps, and a step is one update id: a batch of level changes (price, new size; 0 removes
the level) applied at once, with the trades that caused it. `binance_format` and
`okx_format` turn windows into messages; `book_at` rebuilds any past state so a test
can hold a client's book against the truth.

A window is drawn to match Binance BTCUSDT in 2024 (scaled by `SymbolSpec.activity`):
4 % of windows are quiet; trades take from the best level (2.75 per window) and quotes
at the best level change (5.4 per window), which is what bookTicker counts; the number
of distinct levels a window touches is log-normal (median 16, mean 36, at most 1,100),
and a window past 150 levels re-quotes a block of consecutive levels in one big step.
The other changes hit single levels, mostly within a few dozen of the top, one in seven
anywhere. A hidden fair price random-walks and decides which side trades, cancels and
improves, so the mid follows it and levels come and go at the top.

The book is never crossed: a new level goes between two levels of its own side, past
its deepest level, or strictly inside the spread.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass

from sim.specs import SymbolSpec

WINDOW_NS = 100_000_000
BID, ASK = 0, 1

Level = tuple[str, str]
Top = tuple[int, int, int, int]  # best bid ticks, its lots, best ask ticks, its lots
Change = tuple[int, int, int]  # BID or ASK, price ticks, new lots (0 removes the level)
Unit = tuple[int, int]  # price ticks, lots

_QUIET_SHARE = 0.04
_TRADES_PER_WINDOW = 2.75
_TOP_CHANGES_PER_WINDOW = 5.4
_MEDIAN_LEVELS = 15.5
_LEVELS_SIGMA = 1.3
_MAX_LEVELS = 1100
_BIG_BATCH = 150
_NEAR_RANK_MEAN = 25.0
_DEEP_SHARE = 0.15
_MIN_LEVELS = 200  # a side never thins below this
_CHECKPOINT_EVERY = 20_000  # logged level changes between two full copies of the book


@dataclass(slots=True)
class Trade:
    trade_id: int
    ts_ns: int
    price: int
    qty: int
    taker_buys: bool  # the taker bought, taking from the asks


@dataclass(slots=True)
class Step:
    update_id: int
    ts_ns: int
    changes: list[Change]
    trades: list[Trade]
    top: Top | None  # the top of the book after this step, when the step changed it


@dataclass(slots=True)
class Window:
    start_ns: int
    end_ns: int
    steps: list[Step]
    update_id: int  # the book's update id at the end of the window

    def changes(self) -> tuple[dict[int, int], dict[int, int]]:
        """Each touched level's final size per side, as a 100 ms diff reports it."""
        sides: tuple[dict[int, int], dict[int, int]] = ({}, {})
        for step in self.steps:
            for side, price, lots in step.changes:
                sides[side][price] = lots
        return sides


_Op = Callable[[list[Change]], list[Trade]]  # one step: applies its changes, returns its trades


def _key(side: int, price: int) -> int:
    # Signed keys sort both sides best first: bids as -price, asks as +price.
    return -price if side == BID else price


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Market:
    """One symbol's book, moved forward a window at a time, with its full history.

    History is a log of every level change plus a full copy of the book every
    `_CHECKPOINT_EVERY` changes, so `book_at` replays at most that many changes.
    `update_id` moves only after a step is fully logged, so another thread may call
    `book_at` for any id up to it while the book moves on. `forget_before` drops old
    history, for live runs that would otherwise grow by about 100 MB an hour.
    """

    def __init__(self, spec: SymbolSpec, *, seed: int | str, start_ns: int, trend_levels_per_s: float = 0.0) -> None:
        self.spec = spec
        # A trending market: this many times a second (up when positive) the whole best level
        # of one side is taken and re-quoted on the other, so the price walks through the book.
        self.trend_levels_per_s = trend_levels_per_s
        self.now_ns = start_ns
        self.update_id = spec.first_update_id
        self._rng = random.Random(f"market:{seed}")
        self._next_trade_id = spec.first_trade_id
        self._keys: tuple[list[int], list[int]] = ([], [])  # signed keys, best first
        self._qty: tuple[dict[int, int], dict[int, int]] = ({}, {})  # signed key -> lots
        self._seed_book()
        self._fair = self._mid()
        self._log_keys = array("q")
        self._log_qty = array("q")
        self._step_end = array("q")  # absolute log length after each step, indexed by id - oldest id - 1
        self._oldest_id = spec.first_update_id  # the oldest state book_at can rebuild
        self._log_base = 0  # log entries forgotten before the first one kept
        self._checkpoint_ids: list[int] = []
        self._checkpoints: list[tuple[dict[int, int], dict[int, int]]] = []
        self._checkpoint(self.update_id)

    # ----- reading the book -----

    def top(self) -> Top:
        bid, ask = self._keys[BID][0], self._keys[ASK][0]
        return -bid, self._qty[BID][bid], ask, self._qty[ASK][ask]

    def depth(self, side: int) -> int:
        return len(self._keys[side])

    def price_at(self, side: int, rank: int) -> int:
        """Price of the level `rank` places from the top (0 is the best)."""
        return abs(self._keys[side][rank])

    def quantity(self, side: int, price: int) -> int:
        """Lots at `price`, 0 where there is no level."""
        return self._qty[side].get(_key(side, price), 0)

    def current_book(self, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """The book now as exact text, bids descending and asks ascending."""
        bids, asks = self._qty
        return self._text(self._keys[BID][:depth], bids), self._text(self._keys[ASK][:depth], asks)

    def book_at(self, update_id: int, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """The book as it was right after `update_id` was applied, as exact text."""
        bids, asks = self.book_units_at(update_id, depth)
        price_text, qty_text = self.spec.price_text, self.spec.qty_text
        return [(price_text(p), qty_text(q)) for p, q in bids], [(price_text(p), qty_text(q)) for p, q in asks]

    def book_units_at(self, update_id: int, depth: int | None = None) -> tuple[list[Unit], list[Unit]]:
        """The book right after `update_id` as (price ticks, lots), best first: for writers that need more than text."""
        first = self._oldest_id
        if not first <= update_id <= self.update_id:
            raise ValueError(f"{self.spec.symbol}: update id {update_id} is outside {first}..{self.update_id}")
        index = bisect_right(self._checkpoint_ids, update_id) - 1
        bids, asks = self._checkpoints[index]
        sides = (dict(bids), dict(asks))
        keys, qtys = self._log_keys, self._log_qty
        for j in range(self._log_offset(self._checkpoint_ids[index]), self._log_offset(update_id)):
            book = sides[keys[j] > 0]
            if qtys[j]:
                book[keys[j]] = qtys[j]
            else:
                del book[keys[j]]
        bids, asks = sides
        return [(-k, bids[k]) for k in sorted(bids)[:depth]], [(k, asks[k]) for k in sorted(asks)[:depth]]

    def forget_before(self, update_id: int) -> None:
        """Keep history from the last checkpoint at or before `update_id` on; older ids leave `book_at`.

        Not safe against a `book_at` running on another thread at the same moment: call it
        where the book is written, and only for ids no reader still asks about.
        """
        keep = bisect_right(self._checkpoint_ids, update_id) - 1
        if keep <= 0:
            return
        oldest = self._checkpoint_ids[keep]
        cut = self._log_offset(oldest)
        del self._log_keys[:cut], self._log_qty[:cut]
        del self._step_end[: oldest - self._oldest_id]
        del self._checkpoint_ids[:keep], self._checkpoints[:keep]
        self._log_base += cut
        self._oldest_id = oldest

    # ----- moving on -----

    def next_window(self) -> Window:
        """Advance 100 ms: the steps that happened, with their update ids and times."""
        rng = self._rng
        start = self.now_ns
        self.now_ns = end = start + WINDOW_NS
        self._walk_fair()
        steps: list[Step] = []
        if rng.random() >= _QUIET_SHARE:
            levels = rng.lognormvariate(math.log(_MEDIAN_LEVELS), _LEVELS_SIGMA)
            target = min(_MAX_LEVELS, max(1, round(self.spec.activity * levels)))
            touched: set[tuple[int, int]] = set()
            for op in self._plan(target):
                self._run(op, steps, touched)
            while len(touched) < target:  # repeats on the same level fell short of the target
                self._run(self._touch_book, steps, touched)
        for step, ts in zip(steps, sorted(rng.randrange(start + 1, end + 1) for _ in steps)):
            step.ts_ns = ts
            for trade in step.trades:
                trade.ts_ns = ts
        return Window(start, end, steps, self.update_id)

    def _plan(self, target: int) -> list[_Op]:
        """The steps of a busy window, in random order, meant to touch about `target` levels."""
        rng, activity = self._rng, self.spec.activity
        ops: list[_Op] = [self._trade] * _poisson(rng, _TRADES_PER_WINDOW * activity)
        ops += [self._touch_top] * _poisson(rng, _TOP_CHANGES_PER_WINDOW * activity)
        singles = target - 3  # trades and top quotes share about three levels
        if target >= _BIG_BATCH:
            block = int(target * 0.9)
            ops.append(lambda changes: self._requote_block(block, changes))
            singles -= block
        ops += [self._touch_book] * max(0, singles)
        if self.trend_levels_per_s:
            ops += [self._follow_trend] * _poisson(rng, abs(self.trend_levels_per_s) * WINDOW_NS / 1e9)
        rng.shuffle(ops)
        return ops

    def _run(self, op: _Op, steps: list[Step], touched: set[tuple[int, int]]) -> None:
        before = self.top()
        changes: list[Change] = []
        trades = op(changes)
        if not changes:
            return
        update_id = self.update_id + 1
        for side, price, lots in changes:
            touched.add((side, price))
            self._log_keys.append(_key(side, price))
            self._log_qty.append(lots)
        self._step_end.append(self._log_base + len(self._log_keys))
        after = self.top()
        steps.append(Step(update_id, 0, changes, trades, after if after != before else None))
        if len(self._log_keys) - self._log_offset(self._checkpoint_ids[-1]) >= _CHECKPOINT_EVERY:
            self._checkpoint(update_id)
        self.update_id = update_id  # last: readers on other threads trust every id up to this one

    # ----- what can happen in a step -----

    def _trade(self, changes: list[Change]) -> list[Trade]:
        """A taker order: part or all of the best level, now and then sweeping the next one."""
        rng = self._rng
        taker_buys = rng.random() < 0.5 + 0.45 * self._pressure()
        side = ASK if taker_buys else BID
        trades: list[Trade] = []
        while len(trades) < 2 and self.depth(side) > _MIN_LEVELS:
            key = self._keys[side][0]
            have = self._qty[side][key]
            take = have if rng.random() < 0.3 else min(have, max(1, int(have * rng.uniform(0.05, 0.9))))
            self._set(side, key, have - take, changes)
            trades.append(Trade(self._next_trade_id, 0, abs(key), take, taker_buys))
            self._next_trade_id += 1
            if take < have or rng.random() >= 0.1:
                break
        return trades

    def _follow_trend(self, changes: list[Change]) -> list[Trade]:
        """One move of the trend: a taker empties the best level it walks into, a maker quotes
        the other side at that price; the side left behind is refilled past its deepest level
        and the side walked into loses its deepest, so both keep their depth."""
        up = self.trend_levels_per_s > 0
        taken, quoted = (ASK, BID) if up else (BID, ASK)
        key = self._keys[taken][0]
        lots = self._qty[taken][key]
        self._set(taken, key, 0, changes)
        trade = Trade(self._next_trade_id, 0, abs(key), lots, up)
        self._next_trade_id += 1
        self._set(quoted, _key(quoted, abs(key)), self._new_qty(0), changes)
        deepest = self._keys[taken][-1]
        self._set(taken, deepest + self._gap(self.depth(taken)), self._new_qty(self.depth(taken)), changes)
        if self.depth(quoted) > self.spec.levels_per_side:
            self._set(quoted, self._keys[quoted][-1], 0, changes)
        self._fair = float(abs(key))  # the hidden price moves with the trend, so nothing pulls it back
        return [trade]

    def _touch_top(self, changes: list[Change]) -> list[Trade]:
        """A quote at the best level: a better price inside the spread, a cancel, or a new size."""
        rng = self._rng
        pressure = self._pressure()
        bid, _, ask, _ = self.top()
        wide = ask - bid >= 2
        u = rng.random()
        if wide and u < 0.6:
            side = BID if rng.random() < 0.5 + 0.45 * pressure else ASK
            price = (ask - 1 if side == BID else bid + 1) if rng.random() < 0.5 else rng.randrange(bid + 1, ask)
            self._set(side, _key(side, price), self._new_qty(0), changes)
        elif u < (0.7 if wide else 0.25):
            side = ASK if rng.random() < 0.5 + 0.45 * pressure else BID
            if self.depth(side) > _MIN_LEVELS:
                self._set(side, self._keys[side][0], 0, changes)
        else:
            self._requote(rng.randrange(2), 0, changes)
        return []

    def _touch_book(self, changes: list[Change]) -> list[Trade]:
        """One level below the top: mostly near it, sometimes anywhere; keeps the depth near its target."""
        rng = self._rng
        side = rng.randrange(2)
        n = self.depth(side)
        deep = rng.random() < _DEEP_SHARE
        rank = rng.randrange(n) if deep else min(n - 1, 1 + int(rng.expovariate(1.0 / _NEAR_RANK_MEAN)))
        lean = max(-0.2, min(0.2, (self.spec.levels_per_side - n) / 300))
        u = rng.random()
        if u < 0.25 + lean:
            if deep:
                self._insert_below(side, rank, changes)
            else:
                self._insert_near_top(side, rank, changes)
        elif u < 0.5 and n > _MIN_LEVELS:
            self._set(side, self._keys[side][rank], 0, changes)
        else:
            self._requote(side, rank, changes)
        return []

    def _requote_block(self, size: int, changes: list[Change]) -> list[Trade]:
        """A big batch: new sizes on a run of consecutive levels, as when a market maker reloads its ladder."""
        rng = self._rng
        side = rng.randrange(2)
        size = min(size, self.depth(side) - 2)
        room = self.depth(side) - size
        first = rng.randrange(1, room) if rng.random() < 0.5 else min(room - 1, 1 + int(rng.expovariate(0.01)))
        for rank in range(first, first + size):
            self._requote(side, rank, changes)
        return []

    def _requote(self, side: int, rank: int, changes: list[Change]) -> None:
        key = self._keys[side][rank]
        old = self._qty[side][key]
        new = max(1, int(math.sqrt(old * self._new_qty(rank))))
        self._set(side, key, new if new != old else old + 1, changes)

    def _insert_near_top(self, side: int, rank: int, changes: list[Change]) -> None:
        """A new level about as far from the best price as the `rank`-th level usually is.

        Placing by distance, not between existing levels, rebuilds a dense top after the
        price has moved away from the old levels.
        """
        best = self._keys[side][0]
        key = best + 1 + int(self._rng.expovariate(1.0 / ((1 + self.spec.near_gap) * rank)))
        if key in self._qty[side]:
            self._requote(side, bisect_left(self._keys[side], key), changes)
        else:
            self._set(side, key, self._new_qty(rank), changes)

    def _insert_below(self, side: int, rank: int, changes: list[Change]) -> None:
        """A new level in a gap just below `rank`, or past the deepest level when the book is solid there."""
        keys, rng = self._keys[side], self._rng
        for _ in range(4):
            if rank + 1 < len(keys) and keys[rank + 1] - keys[rank] >= 2:
                self._set(side, rng.randrange(keys[rank] + 1, keys[rank + 1]), self._new_qty(rank), changes)
                return
            rank = min(len(keys) - 1, rank + rng.randrange(1, 20))
        self._set(side, keys[-1] + self._gap(len(keys)), self._new_qty(len(keys)), changes)

    # ----- helpers -----

    def _set(self, side: int, key: int, lots: int, changes: list[Change]) -> None:
        keys, qty = self._keys[side], self._qty[side]
        if lots:
            if key not in qty:
                insort(keys, key)
            qty[key] = lots
        else:
            del qty[key]
            del keys[bisect_left(keys, key)]
        changes.append((side, abs(key), lots))

    def _seed_book(self) -> None:
        spec = self.spec
        for side, first in ((BID, -spec.start_price), (ASK, spec.start_price + 1)):
            key = first
            for rank in range(spec.levels_per_side):
                self._keys[side].append(key)
                self._qty[side][key] = self._new_qty(rank)
                key += self._gap(rank)

    def _gap(self, rank: int) -> int:
        mean = self.spec.near_gap + self.spec.gap_growth * rank
        return 1 + (int(self._rng.expovariate(1.0 / mean)) if mean > 0 else 0)

    def _new_qty(self, rank: int) -> int:
        lots = self.spec.median_qty * math.exp(self._rng.gauss(0.0, 1.3)) * (1.0 + rank / 1500)
        return max(1, int(lots))

    def _mid(self) -> float:
        return (self._keys[ASK][0] + abs(self._keys[BID][0])) / 2

    def _walk_fair(self) -> None:
        step = self._rng.gauss(0.0, self.spec.volatility * math.sqrt(WINDOW_NS / 1e9))
        self._fair += step + 0.05 * (self._mid() - self._fair)

    def _pressure(self) -> float:
        """-1..1: how hard the fair price pulls the mid down or up."""
        scale = 2 + 4 * self.spec.near_gap
        return max(-1.0, min(1.0, (self._fair - self._mid()) / scale))

    def _checkpoint(self, update_id: int) -> None:
        self._checkpoints.append((dict(self._qty[BID]), dict(self._qty[ASK])))
        self._checkpoint_ids.append(update_id)  # after the copy: a reader that finds the id finds the copy

    def _log_offset(self, update_id: int) -> int:
        """Where the log (as kept) ends right after `update_id`."""
        index = update_id - self._oldest_id
        return self._step_end[index - 1] - self._log_base if index else 0

    def _text(self, keys: list[int], book: dict[int, int]) -> list[Level]:
        price_text, qty_text = self.spec.price_text, self.spec.qty_text
        return [(price_text(abs(k)), qty_text(book[k])) for k in keys]
