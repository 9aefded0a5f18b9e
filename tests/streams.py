"""Random but valid Binance and OKX book streams, derived from a naive model of the exchange.

Why a separate truth: the sync machines must be checked against something that shares none
of their tricks (float keys, bisect, horizons, sequence arithmetic). Here the exchange's book
is a plain dict of price text -> quantity text per side, changed one level at a time and
sorted only when read. Every wire message is derived from that truth, so the tests know the
exact book at every update id without trusting the engine.
"""

from __future__ import annotations

from collections.abc import Collection

import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from hypothesis import strategies as st

from operators.levels import parse_side
from operators.wire import DepthDiff, DepthSnapshot, OkxBookMessage

# Quantity texts that all mean "remove the level" (Binance sends the padded form, OKX "0").
ZERO_QUANTITIES = ("0", "0.0", "0.00000000")
# OKX checksums cover this many levels per side.
CHECKSUM_LEVELS = 25
# The `books` channel maintains 400 levels; generated books stay far inside that window.
OKX_WINDOW = 400

RawLevels = list[list[str]]
Change = tuple[bool, str, str]  # (is_bid, price text, quantity text)


def exchange_ms(recv_ns: int) -> int:
    """A plausible exchange time for a message received at `recv_ns` (a few ms earlier)."""
    return recv_ns // 1_000_000 - 3


class RefBook:
    """The reference book: price text -> quantity text per side; order exists only when read."""

    def __init__(self, bids: dict[str, str] | None = None, asks: dict[str, str] | None = None) -> None:
        self.bids: dict[str, str] = dict(bids or {})
        self.asks: dict[str, str] = dict(asks or {})

    def copy(self) -> RefBook:
        return RefBook(self.bids, self.asks)

    def set(self, bid: bool, price: str, quantity: str) -> None:
        side = self.bids if bid else self.asks
        if Decimal(quantity) == 0:
            side.pop(price, None)
        else:
            side[price] = quantity

    def applied(self, raw_bids: RawLevels, raw_asks: RawLevels) -> RefBook:
        """A copy with one increment applied, level by level, as the exchange defines it."""
        book = self.copy()
        for bid, raw in ((True, raw_bids), (False, raw_asks)):
            for level in raw:
                book.set(bid, level[0], level[1])
        return book

    def top(
        self, bid: bool, depth: int | None = None, horizon: Decimal | None = None, also: Collection[Decimal] = ()
    ) -> list[tuple[str, str]]:
        """Best first; `horizon` is the deepest known price: levels beyond it are left out,
        except those at the prices in `also` (levels an increment set since the snapshot)."""
        side = self.bids if bid else self.asks
        levels = [
            (price, qty)
            for price, qty in side.items()
            if horizon is None
            or (Decimal(price) >= horizon if bid else Decimal(price) <= horizon)
            or Decimal(price) in also
        ]
        levels.sort(key=lambda level: Decimal(level[0]), reverse=bid)
        return levels if depth is None else levels[:depth]


def okx_checksum_naive(book: RefBook) -> int:
    """OKX's checksum straight from its definition: signed CRC32 of bid1px:bid1sz:ask1px:..."""
    bids, asks = book.top(True, CHECKSUM_LEVELS), book.top(False, CHECKSUM_LEVELS)
    fields: list[str] = []
    for index in range(CHECKSUM_LEVELS):
        if index < len(bids):
            fields += bids[index]
        if index < len(asks):
            fields += asks[index]
    crc = zlib.crc32(":".join(fields).encode())
    return crc - 2**32 if crc >= 2**31 else crc


# -- price ladders, quantities, books --------------------------------------------------


@dataclass(frozen=True)
class Ladder:
    """Price slots of one instrument: bids strictly below `mid`, asks strictly above, so no
    generated book can ever cross. Slot 0 is the best price of its side."""

    scale: int
    mid: int
    slots: int

    def price(self, bid: bool, slot: int) -> str:
        tick = self.mid - 1 - slot if bid else self.mid + 1 + slot
        return f"{Decimal(tick).scaleb(-self.scale):f}"


def ladders(slots: int) -> st.SearchStrategy[Ladder]:
    return st.builds(Ladder, st.sampled_from([2, 0, 1, 8]), st.integers(slots + 2, 10**9), st.just(slots))


# Exact decimal texts of varied shape: "3", "0.001", "1.50000000".
quantities = st.builds(lambda n, k: f"{Decimal(n).scaleb(-k):f}", st.integers(1, 10**6), st.integers(0, 8))


@st.composite
def books(draw: st.DrawFn, ladder: Ladder) -> RefBook:
    book = RefBook()
    for bid in (True, False):
        size = draw(st.integers(0, ladder.slots))
        slots = draw(st.permutations(range(ladder.slots)))[:size]
        for slot in slots:
            book.set(bid, ladder.price(bid, slot), draw(quantities))
    return book


@st.composite
def changes(draw: st.DrawFn, ladder: Ladder) -> Change:
    """One level change; about a third are removals (some of levels that are not there)."""
    bid = draw(st.booleans())
    price = ladder.price(bid, draw(st.integers(0, ladder.slots - 1)))
    removal = draw(st.integers(0, 2)) == 0
    return bid, price, draw(st.sampled_from(ZERO_QUANTITIES)) if removal else draw(quantities)


def net_levels(batch: list[Change], okx: bool) -> tuple[RawLevels, RawLevels]:
    """The raw sides of one message: the last quantity of every price the batch touched."""
    net: dict[tuple[bool, str], str] = {}
    for bid, price, qty in batch:
        net[(bid, price)] = qty
    sides: tuple[RawLevels, RawLevels] = ([], [])
    for (bid, price), qty in net.items():
        level = [price, qty, "0", "0" if Decimal(qty) == 0 else "1"] if okx else [price, qty]
        sides[0 if bid else 1].append(level)
    return sides


# -- Binance ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BinanceDiff:
    """A diff-depth event covering update ids first_id..last_id (one id per level change)."""

    first_id: int
    last_id: int
    raw_bids: RawLevels
    raw_asks: RawLevels

    def wire(self, recv_ns: int) -> DepthDiff:
        return DepthDiff(
            self.first_id,
            self.last_id,
            parse_side(self.raw_bids, "b", True),
            parse_side(self.raw_asks, "a", False),
            self.raw_bids,
            self.raw_asks,
            exchange_ms(recv_ns),
            recv_ns,
        )


@dataclass(frozen=True, eq=False)
class BinanceSnap:
    """A REST depth snapshot: the best `limit` levels per side at `last_id` (all when None)."""

    last_id: int
    raw_bids: RawLevels
    raw_asks: RawLevels
    limit: int | None

    def wire(self, recv_ns: int) -> DepthSnapshot:
        return DepthSnapshot(
            self.last_id,
            parse_side(self.raw_bids, "bids", True),
            parse_side(self.raw_asks, "asks", False),
            self.limit,
            recv_ns,
        )


@dataclass
class BinanceStream:
    """The exchange's history: `states[k]` is the book after k level changes, and the k-th
    change (0-based) has update id `base + k`, so the book at id x is `states[x - base + 1]`."""

    base: int
    states: list[RefBook]
    diffs: list[BinanceDiff]

    @property
    def end_id(self) -> int:
        return self.base + len(self.states) - 2

    def state_at(self, update_id: int) -> RefBook:
        return self.states[update_id - self.base + 1]

    def snapshot(self, update_id: int, limit: int | None) -> BinanceSnap:
        book = self.state_at(update_id)
        raw_bids = [list(level) for level in book.top(True, limit)]
        raw_asks = [list(level) for level in book.top(False, limit)]
        return BinanceSnap(update_id, raw_bids, raw_asks, limit)


@st.composite
def binance_streams(draw: st.DrawFn, min_diffs: int = 1, max_diffs: int = 25) -> BinanceStream:
    ladder = draw(ladders(20))
    book = draw(books(ladder))
    base = draw(st.integers(1, 10**12))
    states, diffs = [book], []
    for size in draw(st.lists(st.integers(1, 4), min_size=min_diffs, max_size=max_diffs)):
        batch = draw(st.lists(changes(ladder), min_size=size, max_size=size))
        for bid, price, qty in batch:
            book = book.copy()
            book.set(bid, price, qty)
            states.append(book)
        first = base + len(states) - 1 - size
        diffs.append(BinanceDiff(first, first + size - 1, *net_levels(batch, okx=False)))
    return BinanceStream(base, states, diffs)


# -- OKX -------------------------------------------------------------------------------

OkxKind = Literal["snapshot", "update", "reset", "keepalive"]


@dataclass(frozen=True, eq=False)
class OkxMsg:
    """One `books` push and the true book after it (`reset`: an update with seqId < prevSeqId)."""

    kind: OkxKind
    raw_bids: RawLevels
    raw_asks: RawLevels
    seq: int | None
    prev: int | None
    checksum: int
    book: RefBook = field(repr=False)

    def wire(self, recv_ns: int, sent_ns: int | None = None) -> OkxBookMessage:
        """The message as received at `recv_ns`; `sent_ns` dates it (a repeat keeps its own)."""
        return OkxBookMessage(
            self.kind == "snapshot",
            OKX_WINDOW,
            parse_side(self.raw_bids, "bids", True),
            parse_side(self.raw_asks, "asks", False),
            self.raw_bids,
            self.raw_asks,
            self.checksum,
            self.seq,
            self.prev,
            exchange_ms(recv_ns if sent_ns is None else sent_ns),
            recv_ns,
        )


@dataclass
class OkxStream:
    messages: list[OkxMsg]
    with_seq: bool

    def snapshot_at(self, index: int) -> OkxMsg:
        """The snapshot a resubscription would bring right after message `index`."""
        msg = self.messages[index]
        return okx_snapshot(msg.book, msg.seq, self.with_seq, okx_checksum_naive(msg.book))


def okx_snapshot(book: RefBook, seq: int | None, with_seq: bool, checksum: int) -> OkxMsg:
    raw_bids = [[p, q, "0", "1"] for p, q in book.top(True)]
    raw_asks = [[p, q, "0", "1"] for p, q in book.top(False)]
    return OkxMsg("snapshot", raw_bids, raw_asks, seq, -1 if with_seq else None, checksum, book)


@st.composite
def okx_streams(
    draw: st.DrawFn,
    with_seq: bool,
    resnapshots: bool,
    recurring_ids: bool = False,
    min_updates: int = 1,
    max_updates: int = 30,
) -> OkxStream:
    """A snapshot, then updates; with seqId also keep-alives and sequence resets. A reset goes
    below every seqId used before, or (with `recurring_ids`, legal but ambiguous for repeats
    and gaps) a little below the current one, so earlier (prevSeqId, seqId) pairs come again."""
    ladder = draw(ladders(40))
    book = draw(books(ladder))

    def checksum(of: RefBook) -> int:
        """The real checksum, or now and then 0 ("not computed")."""
        return okx_checksum_naive(of) if draw(st.integers(0, 7)) else 0

    seq = draw(st.integers(10**6, 10**9)) if with_seq else None
    lowest = seq
    messages = [okx_snapshot(book, seq, with_seq, checksum(book))]
    kinds: list[OkxKind] = ["update"] * 5
    if with_seq:
        kinds += ["keepalive", "reset"]
    if resnapshots:
        kinds.append("snapshot")
    for _ in range(draw(st.integers(min_updates, max_updates))):
        kind = draw(st.sampled_from(kinds))
        if kind == "keepalive":
            messages.append(OkxMsg(kind, [], [], seq, seq, checksum(book), book))
            continue
        batch = draw(st.lists(changes(ladder), min_size=0 if kind == "snapshot" else 1, max_size=4))
        raw_bids, raw_asks = net_levels(batch, okx=True)
        book = book.applied(raw_bids, raw_asks)
        prev = seq
        if seq is not None and lowest is not None:
            # A snapshot may follow a reset too (the resubscription after maintenance).
            if kind in ("reset", "snapshot") and recurring_ids and draw(st.booleans()):
                seq -= draw(st.integers(1, 6))
                lowest = min(lowest, seq)
            elif kind == "reset":
                seq = lowest = lowest - draw(st.integers(1, 1000))
            else:
                seq += draw(st.integers(1, 3))
        if kind == "snapshot":
            messages.append(okx_snapshot(book, seq, with_seq, checksum(book)))
        else:
            messages.append(OkxMsg(kind, raw_bids, raw_asks, seq, prev, checksum(book), book))
    return OkxStream(messages, with_seq)
