"""Property tests: both sync machines against a naive reference, on random valid streams.

Why: the machines' book code is built for speed (float keys, bisect, horizons, sequence
arithmetic), so it is checked against `tests.streams`, where the exchange's book is a dict
sorted at read time and every message is derived from it. For every message fed, the test
predicts the exact events the machine must emit (from the protocol and the truth alone) and
compares the whole book afterwards. Messages are built through the real `parse_side`.

Faults are injected where the protocol says they are detectable; the test knows the message
at which detection must happen and asserts it there, not "eventually".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from operators.binance_sync import BinanceBookSync
from operators.book import OrderBook
from operators.levels import BadMessage, parse_side
from operators.okx_sync import OkxBookSync
from operators.sync_base import SyncSettings
from schemas.events import BookDelta, BookFull, QualityEvent, QualityKind, ResyncRequest
from tests.streams import (
    BinanceDiff,
    BinanceSnap,
    BinanceStream,
    OkxMsg,
    OkxStream,
    RawLevels,
    RefBook,
    binance_streams,
    exchange_ms,
    okx_checksum_naive,
    okx_snapshot,
    okx_streams,
)

# Full books publish 5 levels of deeper books, and periodic ones come out every third
# applied update (messages are 100 ms apart). The machines ask for no audits here, and
# snapshot slots are longer than any stream (audits and slots are tested on their own).
SYNC = SyncSettings(depth=5, full_interval_ms=300, audit_interval_ms=None, snapshot_interval_ms=10**12)
STEP_NS = 100_000_000
START_NS = 1_700_000_000_000_000_000
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Summary = tuple[object, ...]


def pairs(levels: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    """(price, quantity) texts of book levels, whatever extra fields the venue's levels carry."""
    return [(level[0], level[1]) for level in levels]


def summary(event: object) -> Summary:
    """The parts of an event the properties are about, comparable with ==."""
    if isinstance(event, BookFull):
        return ("full", event.update_type, event.last_update_id, event.is_valid, pairs(event.bids), pairs(event.asks))
    if isinstance(event, BookDelta):
        ids = (event.update_id, event.prev_update_id, event.first_update_id)
        return ("delta", *ids, event.bid_updates, event.ask_updates)
    if isinstance(event, QualityEvent):
        return ("quality", event.kind, event.update_id)
    if isinstance(event, ResyncRequest):
        return ("resync",)
    return ("unexpected", repr(event))


def pairs_of(book: RefBook, depth: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The reference's best `depth` bids and asks, as a full book publishes them."""
    return book.top(True, depth), book.top(False, depth)


def fault_events(kind: QualityKind, update_id: int | None, was_synced: bool = True) -> list[Summary]:
    state = [("quality", "out_of_sync", update_id)] if was_synced else []
    return [("quality", kind, update_id), *state, ("resync",)]


def assert_book(
    book: OrderBook,
    ref: RefBook,
    bid_horizon: Decimal | None = None,
    ask_horizon: Decimal | None = None,
    touched: frozenset[Decimal] = frozenset(),
) -> None:
    """Both whole sides equal the reference (within the known range, and past it the levels
    an applied diff set), and never crossed."""
    bids, asks = pairs(book.bids.top(len(book.bids) + 1)), pairs(book.asks.top(len(book.asks) + 1))
    assert bids == ref.top(True, horizon=bid_horizon, also=touched)
    assert asks == ref.top(False, horizon=ask_horizon, also=touched)
    if bids and asks:
        assert Decimal(bids[0][0]) < Decimal(asks[0][0])
    assert not book.is_crossed()


def due(recv_ns: int, last_full_ns: int | None) -> bool:
    """A periodic full book is due."""
    return last_full_ns is not None and recv_ns - last_full_ns >= SYNC.full_interval_ms * 1_000_000


# -- Binance ---------------------------------------------------------------------------

# The `limit` of a REST snapshot: unknown, or small enough to cut the generated books.
LIMITS = st.none() | st.integers(1, 12)


def horizon(raw: RawLevels, limit: int | None, deepest: Callable[[Iterable[Decimal]], Decimal]) -> Decimal | None:
    """The deepest price a snapshot side vouches for. Only a side shorter than a known limit
    is complete; a full page, or one of unknown limit, may have been cut there."""
    if not raw or (limit is not None and len(raw) < limit):
        return None
    return deepest(Decimal(price) for price, _ in raw)


class BinanceRun:
    """Feeds a `BinanceBookSync` and predicts, from the protocol and the truth, what it says.

    The prediction follows Binance's documented procedure literally: buffer until a snapshot,
    refuse a snapshot older than the first buffered U, skip diffs with u <= lastUpdateId, and
    take the book at u straight from the truth table (never by replaying levels). A book is
    known down to its snapshot's deepest level, and past it at the prices a diff applied
    since set. A snapshot while in sync is an audit: the book is rebuilt from it at once
    when the diffs applied since the last sync reach back to it, or with the first diff past
    it when it is newer than the book; either way a fresh full book follows.
    """

    def __init__(self, stream: BinanceStream) -> None:
        self.stream = stream
        self.machine = BinanceBookSync("binance", "BTC-USDT", SYNC)
        self.recv_ns = START_NS
        self.synced = False
        self.last: int | None = None
        self.bid_horizon: Decimal | None = None
        self.ask_horizon: Decimal | None = None
        self.touched: set[Decimal] = set()  # prices set by diffs applied since the book was loaded
        self.applied: list[BinanceDiff] = []  # diffs applied since the book went in sync
        self.pending: BinanceSnap | None = None  # an audit snapshot newer than the book
        self.buffer: list[tuple[BinanceDiff, int]] = []
        self.last_full_ns: int | None = None

    def feed(self, item: BinanceDiff | BinanceSnap, fault: QualityKind | None = None) -> list[object]:
        """One message; `fault` names the detection the machine must report right here."""
        self.recv_ns += STEP_NS
        if isinstance(item, BinanceDiff):
            out = self.machine.on_diff(item.wire(self.recv_ns))
            expected = self._diff(item, fault)
        else:
            out = self.machine.on_snapshot(item.wire(self.recv_ns))
            expected = self._snapshot(item)
        assert [summary(event) for event in out] == expected
        self._check_state()
        return out

    def _diff(self, diff: BinanceDiff, fault: QualityKind | None) -> list[Summary]:
        if fault is not None:
            self.synced, self.last_full_ns, self.pending = False, None, None
            self.buffer = [(diff, self.recv_ns)]
            return fault_events(fault, diff.last_id)
        if not self.synced:
            self.buffer.append((diff, self.recv_ns))
            return []
        assert self.last is not None
        return [] if diff.last_id <= self.last else self._apply(diff, self.recv_ns)

    def _load(self, snap: BinanceSnap, diffs: list[BinanceDiff]) -> None:
        self.bid_horizon = horizon(snap.raw_bids, snap.limit, min)
        self.ask_horizon = horizon(snap.raw_asks, snap.limit, max)
        self.touched = {Decimal(level[0]) for diff in diffs for level in (*diff.raw_bids, *diff.raw_asks)}

    def _snapshot(self, snap: BinanceSnap) -> list[Summary]:
        if self.synced:
            return self._audit(snap)
        if self.buffer and snap.last_id + 1 < self.buffer[0][0].first_id:
            return fault_events("stale_snapshot", snap.last_id, was_synced=False)
        self.synced, self.last, self.last_full_ns = True, snap.last_id, self.recv_ns
        self._load(snap, [])
        self.applied = []
        out = [("quality", "in_sync", snap.last_id), self._full("snapshot")]
        buffered, self.buffer = self.buffer, []
        for diff, recv_ns in buffered:
            if diff.last_id > self.last:
                out += self._apply(diff, recv_ns)
        return out

    def _audit(self, snap: BinanceSnap) -> list[Summary]:
        assert self.last is not None
        self.pending = None
        if snap.last_id > self.last:
            self.pending = snap
            return []
        newer = [diff for diff in self.applied if diff.last_id > snap.last_id]
        if newer and newer[0].first_id > snap.last_id + 1 or not newer and snap.last_id != self.last:
            return []  # the retained diffs do not reach back to it: skipped
        self._load(snap, newer)
        self.last_full_ns = self.recv_ns
        return [self._full("snapshot")]

    def _apply(self, diff: BinanceDiff, recv_ns: int) -> list[Summary]:
        prev, self.last = self.last, diff.last_id
        self.applied.append(diff)
        self.touched.update(Decimal(level[0]) for level in (*diff.raw_bids, *diff.raw_asks))
        out: list[Summary] = [("delta", diff.last_id, prev, diff.first_id, diff.raw_bids, diff.raw_asks)]
        pending = self.pending
        if pending is not None and diff.last_id > pending.last_id:
            self.pending = None
            self._load(pending, [diff])
            self.last_full_ns = recv_ns
            out.append(self._full("snapshot"))
        elif due(recv_ns, self.last_full_ns):
            self.last_full_ns = recv_ns
            out.append(self._full("full_refresh"))
        return out

    def _full(self, update_type: str) -> Summary:
        assert self.last is not None
        ref = self.stream.state_at(self.last)
        bids = ref.top(True, SYNC.depth, self.bid_horizon, self.touched)
        asks = ref.top(False, SYNC.depth, self.ask_horizon, self.touched)
        return ("full", update_type, self.last, True, bids, asks)

    def _check_state(self) -> None:
        machine = self.machine
        assert machine.synced == self.synced
        if not self.synced:
            assert len(machine.book.bids) == len(machine.book.asks) == 0
            return
        assert self.last is not None and machine.last_id == self.last
        known = frozenset(self.touched)
        assert_book(machine.book, self.stream.state_at(self.last), self.bid_horizon, self.ask_horizon, known)


@st.composite
def binance_feeds(
    draw: st.DrawFn, stream: BinanceStream, stale: bool = False, resnapshots: bool = False
) -> tuple[list[BinanceDiff | BinanceSnap], int, int]:
    """The socket joins at some diff and buffers a few, then the snapshot arrives: its id lies
    anywhere from "just bridges the first buffered U" to a little past the last buffered u,
    so some buffered (or even live) diffs are stale. Optionally a stale snapshot comes first
    and later snapshots (older or newer than the book) follow.
    Returns (feed, position of the snapshot that syncs, its id)."""
    diffs = stream.diffs
    join = draw(st.integers(0, len(diffs) - 1))
    buffered = draw(st.integers(0, len(diffs) - join))
    lowest = diffs[join].first_id - 1
    reach = diffs[join + buffered - 1].last_id if buffered else lowest
    snap_id = draw(st.integers(lowest, min(reach + 2, stream.end_id)))
    snap = stream.snapshot(snap_id, draw(LIMITS))
    feed: list[BinanceDiff | BinanceSnap] = [*diffs[join : join + buffered], snap, *diffs[join + buffered :]]
    position = buffered
    if stale and buffered and lowest - 1 >= stream.base - 1:
        too_old = draw(st.integers(stream.base - 1, lowest - 1))
        feed.insert(draw(st.integers(1, buffered)), stream.snapshot(too_old, None))
        position += 1
    if resnapshots:
        for _ in range(draw(st.integers(0, 3))):
            again = draw(st.integers(stream.base - 1, stream.end_id))
            feed.insert(draw(st.integers(position + 1, len(feed))), stream.snapshot(again, draw(LIMITS)))
    return feed, position, snap_id


@PROPERTY
@given(data=st.data())
def test_binance_valid_streams_track_the_reference(data: st.DataObject) -> None:
    """Buffering, bridging, stale and truncated snapshots, later snapshots: the book equals the
    truth after every message and every event is the predicted one (no faults)."""
    stream = data.draw(binance_streams())
    feed, _, _ = data.draw(binance_feeds(stream, stale=True, resnapshots=True))
    run = BinanceRun(stream)
    for item in feed:
        run.feed(item)
    assert run.machine.synced and run.machine.last_id == stream.end_id
    assert run.machine.stats.gaps == 0


@PROPERTY
@given(data=st.data())
def test_binance_duplicates_are_applied_once(data: st.DataObject) -> None:
    """Any message repeated, at once or much later, changes nothing and is not counted."""
    stream = data.draw(binance_streams())
    feed, _, snap_id = data.draw(binance_feeds(stream))
    first = [item for item in feed if isinstance(item, BinanceDiff)]
    for _ in range(data.draw(st.integers(1, 6))):
        source = data.draw(st.integers(0, len(feed) - 1))
        feed.insert(data.draw(st.integers(source + 1, len(feed))), feed[source])
    run = BinanceRun(stream)
    for item in feed:
        run.feed(item)
    assert_book(run.machine.book, stream.state_at(stream.end_id), run.bid_horizon, run.ask_horizon, frozenset(run.touched))
    assert run.machine.stats.updates_applied == sum(diff.last_id > snap_id for diff in first)
    assert run.machine.stats.snapshots == 1


@pytest.mark.parametrize("fault", ["drop", "swap"])
@PROPERTY
@given(data=st.data())
def test_binance_drops_and_reorders_are_always_detected(fault: str, data: st.DataObject) -> None:
    """A missing or reordered diff after sync is a gap at the first out-of-chain diff; nothing
    is published until a new snapshot, which makes the book valid and true again."""
    stream = data.draw(binance_streams(min_diffs=3))
    feed, position, snap_id = data.draw(binance_feeds(stream))
    live = [q for q in range(position + 1, len(feed)) if feed[q].last_id > snap_id]
    if fault == "drop":
        candidates = [q for q in live if q + 1 < len(feed)]
        assume(candidates)
        detect = data.draw(st.sampled_from(candidates))
        del feed[detect]
    else:
        assume(len(live) >= 2)
        detect = data.draw(st.sampled_from(live[:-1]))
        later = data.draw(st.sampled_from([q for q in live if q > detect]))
        feed[detect], feed[later] = feed[later], feed[detect]
    resume = data.draw(st.integers(detect + 1, len(feed)))
    seen = max(item.last_id for item in feed[:resume])
    recovery = stream.snapshot(data.draw(st.integers(seen, stream.end_id)), data.draw(LIMITS))

    run = BinanceRun(stream)
    for q, item in enumerate(feed[:resume]):
        out = run.feed(item, fault="gap" if q == detect else None)
        if q == detect:
            assert not run.machine.synced
        if q > detect:
            assert out == []  # buffering: no delta, no full book, no repeated alarm
    run.feed(recovery)
    assert run.machine.synced
    for item in feed[resume:]:
        run.feed(item)
    assert run.machine.stats.gaps == 1 and run.machine.last_id == stream.end_id


# -- OKX -------------------------------------------------------------------------------


class OkxRun:
    """Feeds an `OkxBookSync` and predicts its events from the truth.

    Which messages are duplicates, and where a fault must be detected, is known from how the
    test built the feed; the prediction never looks at seqIds to decide either.
    """

    def __init__(self) -> None:
        self.machine = OkxBookSync("okx", "BTC-USDT", SYNC)
        self.recv_ns = START_NS
        self.synced = False
        self.book = RefBook()
        self.seq: int | None = None
        self.last_full_ns: int | None = None
        self.verified = self.unverified = 0
        self.first_received: dict[int, int] = {}

    def feed(self, msg: OkxMsg, duplicate: bool = False, fault: QualityKind | None = None) -> list[object]:
        self.recv_ns += STEP_NS
        # A repeat is the same message again: it carries the exchange time of its first delivery.
        sent_ns = self.first_received.setdefault(id(msg), self.recv_ns)
        out = self.machine.on_book(msg.wire(self.recv_ns, sent_ns))
        assert [summary(event) for event in out] == self._expect(msg, duplicate, fault)
        assert self.machine.synced == self.synced
        if self.synced:
            assert_book(self.machine.book, self.book)
        else:
            assert len(self.machine.book.bids) == len(self.machine.book.asks) == 0
        return out

    def _update_id(self, msg: OkxMsg) -> int:
        return msg.seq if msg.seq is not None else exchange_ms(self.recv_ns)

    def _expect(self, msg: OkxMsg, duplicate: bool, fault: QualityKind | None) -> list[Summary]:
        was_synced = self.synced
        if fault is not None:
            self.synced, self.last_full_ns = False, None
            return fault_events(fault, self._update_id(msg), was_synced)
        if msg.kind == "snapshot":
            self._count(msg)
            self.synced, self.book, self.seq, self.last_full_ns = True, msg.book, msg.seq, self.recv_ns
            # A snapshot that replaces a book in sync says so (its deltas restart); else the book comes in sync.
            state = [("quality", "resync", msg.seq)] if was_synced else [("quality", "in_sync", msg.seq)]
            return [*state, ("full", "snapshot", msg.seq, True, *pairs_of(msg.book, SYNC.depth))]
        if not self.synced or duplicate:
            return []
        self._count(msg)
        if msg.kind == "keepalive":
            return []
        prev, self.seq, self.book = self.seq, msg.seq, msg.book
        out: list[Summary] = [("delta", self._update_id(msg), prev, None, msg.raw_bids, msg.raw_asks)]
        if due(self.recv_ns, self.last_full_ns):
            self.last_full_ns = self.recv_ns
            out.append(("full", "full_refresh", msg.seq, True, *pairs_of(msg.book, SYNC.depth)))
        return out

    def _count(self, msg: OkxMsg) -> None:
        if msg.checksum:
            self.verified += 1
        else:
            self.unverified += 1


def chain_end(messages: list[OkxMsg], index: int) -> int:
    """The index of the first reset or snapshot after `index` (or the end): where the chain
    of seqIds that message `index` belongs to ends."""
    later = range(index + 1, len(messages))
    return next((k for k in later if messages[k].kind in ("reset", "snapshot")), len(messages))


@pytest.mark.parametrize("with_seq", [True, False], ids=["seqId", "no-seqId"])
@PROPERTY
@given(data=st.data())
def test_okx_valid_streams_track_the_reference(with_seq: bool, data: st.DataObject) -> None:
    """Snapshots (also while synced), updates, keep-alives, sequence resets (also to seqIds
    seen before), unverified (0) checksums: the book equals the truth after every message,
    no fault is raised."""
    stream = data.draw(okx_streams(with_seq=with_seq, resnapshots=True, recurring_ids=True))
    run = OkxRun()
    for msg in stream.messages:
        run.feed(msg)
    stats = run.machine.stats
    assert stats.updates_applied == sum(msg.kind in ("update", "reset") for msg in stream.messages)
    assert (stats.checksums_verified, stats.checksums_unverified) == (run.verified, run.unverified)
    assert stats.gaps == stats.checksum_failures == stats.resyncs == 0


@PROPERTY
@given(data=st.data())
def test_okx_duplicates_are_applied_once(data: st.DataObject) -> None:
    """With seqId, a repeated update, reset or keep-alive (at once, or later within its chain
    of seqIds) is dropped. Not claimed: repeats from before a reset or a new snapshot (the ids
    may start over, so they no longer identify a message) and, without seqId, any repeat."""
    stream = data.draw(okx_streams(with_seq=True, resnapshots=True, min_updates=2))
    messages = stream.messages
    increments = [i for i, msg in enumerate(messages) if msg.kind != "snapshot"]
    assume(increments)
    repeats: dict[int, list[int]] = {}
    for _ in range(data.draw(st.integers(1, 6))):
        source = data.draw(st.sampled_from(increments))
        target = data.draw(st.integers(source, chain_end(messages, source) - 1))
        repeats.setdefault(target, []).append(source)
    run = OkxRun()
    for index, msg in enumerate(messages):
        run.feed(msg)
        for source in repeats.get(index, []):
            assert run.feed(messages[source], duplicate=True) == []
    assert run.machine.stats.updates_applied == sum(msg.kind in ("update", "reset") for msg in messages)


def okx_detectable(stream: OkxStream, fault: str) -> list[int]:
    """Indices i where dropping message i (or delivering i+1 before i) must be caught at the
    next message delivered. With seqId: any increment i (resets included) followed by an
    update, or for a drop by a keep-alive (a keep-alive itself carries nothing to lose).
    Without seqId only the checksum can tell: i+1 applied on the book before i must not
    match i+1's checksum."""
    messages = stream.messages
    found = []
    for i in range(1, len(messages) - 1):
        follower = messages[i + 1]
        if stream.with_seq:
            allowed = ("update", "reset", "keepalive") if fault == "drop" else ("update", "reset")
            if messages[i].kind in ("update", "reset") and follower.kind in allowed:
                found.append(i)
        elif follower.checksum:
            wrong = messages[i - 1].book.applied(follower.raw_bids, follower.raw_asks)
            if okx_checksum_naive(wrong) != follower.checksum:
                found.append(i)
    return found


@pytest.mark.parametrize("with_seq", [True, False], ids=["seqId", "no-seqId"])
@pytest.mark.parametrize("fault", ["drop", "swap", "checksum"])
@PROPERTY
@given(data=st.data())
def test_okx_faults_are_always_detected(with_seq: bool, fault: str, data: st.DataObject) -> None:
    """A lost or reordered increment is a gap (seqId) or a checksum failure (no seqId) at the
    first message after it; a corrupted checksum fails at its own message. Then nothing is
    published until the resubscription's snapshot, after which the book is true again."""
    stream = data.draw(okx_streams(with_seq=with_seq, resnapshots=False, min_updates=2))
    messages = stream.messages
    order = list(range(len(messages)))
    kind: QualityKind = "gap" if with_seq else "checksum_failure"
    bad_checksum: int | None = None
    if fault == "checksum":
        kind = "checksum_failure"
        detect = data.draw(st.integers(0, len(messages) - 1))
        real = okx_checksum_naive(messages[detect].book)
        bad_checksum = data.draw(st.integers(-(2**31), 2**31 - 1).filter(lambda v: v not in (0, real)))
    else:
        candidates = okx_detectable(stream, fault)
        assume(candidates)
        detect = data.draw(st.sampled_from(candidates))
        if fault == "drop":
            del order[detect]
        else:
            order[detect], order[detect + 1] = order[detect + 1], order[detect]
    resume = data.draw(st.integers(detect + (2 if fault == "swap" else 1), len(order)))
    snap_index = max(order[:resume])

    run = OkxRun()
    for position, index in enumerate(order[:resume]):
        msg = messages[index]
        if position == detect and bad_checksum is not None:
            msg = replace(msg, checksum=bad_checksum)
        out = run.feed(msg, fault=kind if position == detect else None)
        if position == detect:
            assert not run.machine.synced
        if position > detect:
            assert out == []
    run.feed(stream.snapshot_at(snap_index))
    assert run.machine.synced
    assert order[resume:] == list(range(snap_index + 1, len(messages)))
    for index in order[resume:]:
        run.feed(messages[index])
    assert run.machine.stats.resyncs == 1


# -- engine bugs the properties above found: fixed ones stay as regressions ---------------


def okx_update(seq: int, prev: int, before: RefBook, raw_bids: RawLevels) -> OkxMsg:
    """A one-sided OKX update with its true checksum."""
    book = before.applied(raw_bids, [])
    return OkxMsg("reset" if seq < prev else "update", raw_bids, [], seq, prev, okx_checksum_naive(book), book)


def okx_resets() -> tuple[OkxMsg, OkxMsg, OkxMsg]:
    """A snapshot at seqId 1000, a legal reset to seqId 5, and the update after it."""
    book = RefBook({"100": "1"}, {"101": "1"})
    snapshot = okx_snapshot(book, 1000, True, okx_checksum_naive(book))
    reset = okx_update(5, 1000, book, [["100", "2", "0", "1"]])
    after = okx_update(6, 5, reset.book, [["100", "3", "0", "1"]])
    return snapshot, reset, after


def test_okx_update_after_a_lost_reset_is_a_gap() -> None:
    """Was: `prev <= seq < self.seq_id` took every update after a lost reset for "an older
    message arriving late" and dropped it silently, leaving a frozen book marked synced."""
    snapshot, _, after = okx_resets()
    run = OkxRun()
    run.feed(snapshot)
    run.feed(after, fault="gap")  # the reset before it was lost


def test_okx_repeated_reset_is_dropped() -> None:
    """Was: a repeat of the reset one update later failed the same test and dropped the book."""
    snapshot, reset, after = okx_resets()
    run = OkxRun()
    for msg in (snapshot, reset, after):
        run.feed(msg)
    run.feed(reset, duplicate=True)


def test_okx_small_depth_still_verifies_checksums() -> None:
    """Was: the OKX book was cut to `settings.depth` (the publishing depth), so with a depth
    under 25 a valid snapshot failed its checksum, and under the channel's window levels the
    venue still maintains were forgotten. Now the book keeps the window, publishes `depth`."""
    book = RefBook({str(100 - i): "1" for i in range(30)}, {"101": "1"})
    run = OkxRun()
    run.feed(okx_snapshot(book, 1000, True, okx_checksum_naive(book)))
    run.feed(okx_update(1001, 1000, book, [[str(100 - i), "0", "0", "0"] for i in range(10)]))


def test_okx_gap_after_a_snapshot_with_recurring_ids_is_noticed() -> None:
    """Regression: remembered (prevSeqId, seqId) pairs must not outlive a snapshot.

    A resubscription after a maintenance reset brings a snapshot whose seqIds start over
    below the old ones. If the first update after it is lost, the next ones carry pairs the
    old chain already had, so they are dropped silently as repeats: no gap, no resync, a
    frozen book marked synced, until a pair the old chain did not have arrives. The update
    right after the lost one must be a gap.
    """
    book = RefBook({"100": "1"}, {"101": "1"})
    first = okx_update(11, 10, book, [["100", "2", "0", "1"]])
    second = okx_update(12, 11, first.book, [["100", "3", "0", "1"]])
    run = OkxRun()
    for msg in (okx_snapshot(book, 10, True, okx_checksum_naive(book)), first, second):
        run.feed(msg)
    again = RefBook({"99": "1"}, {"101": "1"})
    run.feed(okx_snapshot(again, 10, True, okx_checksum_naive(again)))  # seqIds start over at 10
    lost = okx_update(11, 10, again, [["99", "2", "0", "1"]])
    run.feed(okx_update(12, 11, lost.book, [["99", "3", "0", "1"]]), fault="gap")


# -- parse_side ------------------------------------------------------------------------


def plain_decimal(text: str) -> bool:
    """ASCII digits with at most one point between digits: what the exchanges send."""

    def digits(part: str) -> bool:
        return part.isascii() and part.isdigit()

    whole, point, fraction = text.partition(".")
    return digits(whole) and (not point or digits(fraction))


NOT_DECIMALS = (
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "Infinity", "1e5", "1E-3", "-1", "-0.5", "+1"])
    | st.sampled_from([" 1", "1 ", "1.", ".5", "1..2", "0x10", "1,5", "1_000", "١٢"])
    | st.builds(str, st.integers(max_value=-1))
    | st.text(max_size=8).filter(lambda text: not plain_decimal(text))
    | st.none()
    | st.floats()
    | st.integers()
)


@settings(max_examples=300, deadline=None)
@given(bad=NOT_DECIMALS, in_price=st.booleans(), bid=st.booleans())
def test_parse_side_rejects_what_is_not_a_plain_decimal(bad: object, in_price: bool, bid: bool) -> None:
    """Non-numeric, negative, nan/inf, exponent, empty, non-string values, in a price or a
    quantity, behind a good level: refused as BadMessage."""
    level = [bad, "1.5"] if in_price else ["100.5", bad]
    with pytest.raises(BadMessage):
        parse_side([["99.5", "2"], level], "bids" if bid else "asks", bid)


@settings(max_examples=100, deadline=None)
@given(zero=st.sampled_from(["0", "0.0", "0.00000000", "00"]), bid=st.booleans())
def test_parse_side_rejects_zero_prices(zero: str, bid: bool) -> None:
    """A zero quantity means "remove"; a zero price means nothing and must not become a key."""
    with pytest.raises(BadMessage):
        parse_side([[zero, "1"]], "bids", bid)
