"""Normalized events <-> ClickHouse columnar batches, pure: no driver, no I/O.

Full books are written by a `FullBookFrames`, which remembers the previous full book of
each book: one stored whole holds every level, any other only what differs from the
previous one beyond what the deltas between them say (see `FullBookFrames`); `StoredFullBook` is such a row
read back, and `operators.stored_books` turns rows and deltas into the books again.
A batch is `{column: [values...]}` in a table's column order, the shape both the native
driver (`columnar=True`) and chDB's Arrow insert take without a per-row object. Times are
integer ticks (ms for `timestamp`, ns for `collected_at`); prices and quantities stay the
exchange's text, except in level arrays: integers that give that text back (`_StoredLevels`,
`schemas.decimal_units`), or the text where it has no integer form. `batch_token` names a batch by the identities of its rows, so the same
rows always carry the same `insert_deduplication_token`. Reading back selects the times as
integers and rebuilds the events (see `schemas.clickhouse` for what is and is not kept).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from schemas import decimal_units
from schemas.clickhouse import (
    FEATURES, KEYFRAME_INTERVAL_MS, KLINES, ORDERBOOK_DELTAS, ORDERBOOK_FULL_DEPTH, QUALITY_EVENTS, TABLES, TICKERS, TOP_LEVELS,
    TRADES, Table,
)
from schemas.events import BookDelta, BookFull, Kline, PriceQty, QualityEvent, Ticker, Trade
from schemas.features import FeatureRow

Batch = dict[str, list[Any]]
Row = tuple[Any, ...]


def _ms(exchange_ms: int | None, recv_ns: int) -> int:
    return exchange_ms if exchange_ms is not None else recv_ns // 1_000_000


def _prices(levels: Sequence[PriceQty]) -> list[str]:
    return [level[0] for level in levels]


def _quantities(levels: Sequence[PriceQty]) -> list[str]:
    return [level[1] for level in levels]


BID_STEPS, ASK_STEPS = -1, 1  # signs of a side's price steps (decimal_units.to_steps)


@dataclass(slots=True)
class _StoredLevels:
    """A row's level arrays as stored: each kind (prices, quantities) as integers of one scale
    and text form, or, if its texts have none, as text (the integer arrays then empty)."""

    texts: list[list[str]]  # per side: prices, quantities
    units: list[list[int]]  # per side: prices (steps, or plain where the sign is None), quantities
    form: tuple[int, int, int, int]  # price_scale, price_decimals, quantity_scale, quantity_decimals


def _stored_levels(sides: Sequence[Sequence[PriceQty]], signs: Sequence[int | None]) -> _StoredLevels:
    prices, quantities = [_prices(side) for side in sides], [_quantities(side) for side in sides]
    price_units, quantity_units = decimal_units.encode(prices), decimal_units.encode(quantities)
    texts: list[list[str]] = []
    units: list[list[int]] = []
    for i, sign in enumerate(signs):
        if price_units is None:
            texts.append(prices[i])
            units.append([])
        else:
            texts.append([])
            side = price_units.arrays[i]
            units.append(side if sign is None else decimal_units.to_steps(side, sign))
        texts.append(quantities[i] if quantity_units is None else [])
        units.append([] if quantity_units is None else quantity_units.arrays[i])
    price_form = (price_units.scale, price_units.decimals) if price_units else (0, 0)
    quantity_form = (quantity_units.scale, quantity_units.decimals) if quantity_units else (0, 0)
    return _StoredLevels(texts, units, (*price_form, *quantity_form))


def _delta_row(d: BookDelta) -> Row:
    levels = _stored_levels((d.bid_updates, d.ask_updates), (BID_STEPS, ASK_STEPS))
    return (
        d.venue, d.symbol, _ms(d.exchange_ms, d.recv_ns), d.update_id, d.first_update_id, d.prev_update_id,
        *levels.texts, d.recv_ns, *levels.units, *levels.form,
    )


WHOLE, DELTAS, CHANGES = "whole", "deltas", "changes"  # orderbook_full_depth.levels_encoding


@dataclass(slots=True)
class _Previous:
    """What the next full book of a book is written against."""

    last_update_id: int
    slot: int  # its KEYFRAME_INTERVAL_MS slot of exchange time
    bids: list[PriceQty]  # its whole sides (published levels, then kept ones), best first
    asks: list[PriceQty]
    deep_bids: dict[str, str]  # its OKX books-full levels, price -> quantity
    deep_asks: dict[str, str]


def _past(levels: Sequence[PriceQty], base: Sequence[PriceQty], sign: float) -> list[PriceQty]:
    """The levels deeper than the base's deepest (what the base plus the deltas cannot know)."""
    if not base:
        return list(levels)
    edge = sign * float(base[-1][0])
    index = len(levels)
    while index and sign * float(levels[index - 1][0]) > edge:
        index -= 1
    return list(levels[index:])


def _by_price(levels: Sequence[PriceQty]) -> dict[str, str]:
    return {level[0]: level[1] for level in levels}


def _changes(before: dict[str, str], now: dict[str, str]) -> list[PriceQty]:
    """From `before` to `now`: changed or new levels, and "0" for each level gone, by price
    text. (Set operations on the dicts' views: a few hundred µs for 5000 levels.)"""
    changed = [[p, q] for p, q in now.items() - before.items()]
    gone = [[p, "0"] for p in before.keys() - now.keys()]
    return sorted(changed + gone, key=lambda level: float(level[0]))


class FullBookFrames:
    """Writes each full book whole, or against the previous full book of its book.

    - whole: the first full book of a book this writer sees, the first of every
      KEYFRAME_INTERVAL_MS slot of exchange time (so a reader never walks further), and
      one whose update id does not follow the previous one's;
    - changes: a snapshot (a new sync, a Binance audit: the book changed by more than
      deltas): the levels that differ from the previous full book;
    - deltas: any other: the previous full book moved by the stored deltas in between,
      plus the levels past its deepest (the tail that came up from below).
    OKX books-full levels are always stored as changes against the previous full book.

    It holds, per book, only the previous full book it wrote: the state any writer that
    sees a book's full books in order has (the collector's sink, a store fed by JetStream).
    A writer that starts, or restarts, begins every book whole.
    """

    def __init__(self, keyframe_interval_ms: int = KEYFRAME_INTERVAL_MS) -> None:
        self._interval = keyframe_interval_ms
        self._previous: dict[tuple[str, str], _Previous] = {}

    def row(self, b: BookFull) -> Row:
        ms = _ms(b.exchange_ms, b.recv_ns)
        slot = ms // self._interval
        previous = self._previous.get((b.venue, b.symbol))
        bids, asks = [*b.bids, *b.kept_bids], [*b.asks, *b.kept_asks]
        deep = (_by_price(b.deep_bids), _by_price(b.deep_asks))
        if b.last_update_id is not None:
            self._previous[(b.venue, b.symbol)] = _Previous(b.last_update_id, slot, bids, asks, *deep)
        else:
            self._previous.pop((b.venue, b.symbol), None)
        if (previous is None or slot != previous.slot or b.last_update_id is None
                or b.last_update_id <= previous.last_update_id):
            return _full_row(b, ms, WHOLE, None, b.bids, b.asks, b.deep_bids, b.deep_asks, b.kept_bids, b.kept_asks)
        deep_bids, deep_asks = _changes(previous.deep_bids, deep[0]), _changes(previous.deep_asks, deep[1])
        if b.update_type == "snapshot":
            return _full_row(b, ms, CHANGES, previous.last_update_id, _changes(_by_price(previous.bids), _by_price(bids)),
                             _changes(_by_price(previous.asks), _by_price(asks)), deep_bids, deep_asks, [], [])
        return _full_row(b, ms, DELTAS, previous.last_update_id, _past(bids, previous.bids, -1.0),
                         _past(asks, previous.asks, 1.0), deep_bids, deep_asks, [], [])


def _full_row(
    b: BookFull, ms: int, encoding: str, base: int | None, bids: Sequence[PriceQty], asks: Sequence[PriceQty],
    deep_bids: Sequence[PriceQty], deep_asks: Sequence[PriceQty], kept_bids: Sequence[PriceQty],
    kept_asks: Sequence[PriceQty],
) -> Row:
    levels = _stored_levels(
        (b.bids[:TOP_LEVELS], b.asks[:TOP_LEVELS], bids, asks, deep_bids, deep_asks, kept_bids, kept_asks),
        (None, None, *(BID_STEPS, ASK_STEPS) * 3),
    )
    texts = levels.texts
    return (
        b.venue, b.symbol, ms, b.last_update_id or 0, b.update_type,
        b.first_update_id, b.prev_update_id, b.sequence_id,
        *texts[0:12],
        b.deep_age_ms, len(b.bids) + len(b.asks) + len(b.deep_bids) + len(b.deep_asks),
        b.checksum, b.is_valid, list(b.validation_errors), b.recv_ns,
        *texts[12:16],
        b.exact_bid_levels, b.exact_ask_levels,
        encoding, base, len(b.bids), len(b.asks), len(b.kept_bids), len(b.kept_asks),
        *levels.units, *levels.form,
    )


def _trade_row(t: Trade) -> Row:
    return (t.venue, t.symbol, _ms(t.exchange_ms, t.recv_ns), t.trade_id, t.price, t.quantity, t.side, t.recv_ns)


def _ticker_row(t: Ticker) -> Row:
    return (
        t.venue, t.symbol, _ms(t.exchange_ms, t.recv_ns), t.recv_ns, t.update_id,
        t.best_bid_price, t.best_bid_quantity, t.best_ask_price, t.best_ask_quantity, t.last_price,
    )


def _quality_row(q: QualityEvent) -> Row:
    return (q.venue, q.symbol or "", q.recv_ns, q.kind, q.detail, q.update_id)


def _kline_row(k: Kline) -> Row:
    return (
        k.venue, k.symbol, k.interval, k.open_time, k.close_time, k.open, k.high, k.low, k.close,
        k.volume, k.quote_volume, k.trade_count, k.is_closed, _ms(k.exchange_ms, k.recv_ns), k.recv_ns,
    )


class FeatureSampling:
    """Which feature rows a writer stores: the first of each book in every `interval_ms` slot
    of its time (`timestamp`), or every row when `interval_ms` is 0.

    The FEATURES stream keeps every sample; the table is a coarser grid because one row
    (200-odd float64 values, about 1 KB compressed, near their entropy) costs more than the
    book's market data of the same second, and every sample can be computed again, to the
    bit, from the stored books (`marketprism dataset build --from clickhouse`). Like
    `FullBookFrames` it knows only what this writer saw: one that restarts stores the first
    row of each book it sees again, so a slot may hold one row more after a restart.
    """

    def __init__(self, interval_ms: int) -> None:
        if interval_ms < 0:
            raise ValueError("interval_ms must be 0 (every row) or positive")
        self._interval = interval_ms
        self._slots: dict[tuple[str, str], int] = {}

    def keep(self, row: FeatureRow) -> bool:
        if not self._interval:
            return True
        slot = _ms(row.exchange_ms, row.recv_ns) // self._interval
        book = (row.venue, row.symbol)
        if self._slots.get(book) == slot:
            return False
        self._slots[book] = slot
        return True


def _feature_row(f: FeatureRow) -> Row:
    return (f.venue, f.symbol, _ms(f.exchange_ms, f.recv_ns), f.update_id or 0, f.recv_ns,
            list(f.values), list(f.values.values()))


_ROWS: dict[type, tuple[Table, Callable[[Any], Row]]] = {
    BookDelta: (ORDERBOOK_DELTAS, _delta_row),
    Trade: (TRADES, _trade_row),
    Ticker: (TICKERS, _ticker_row),
    QualityEvent: (QUALITY_EVENTS, _quality_row),
    Kline: (KLINES, _kline_row),
    FeatureRow: (FEATURES, _feature_row),
}


def table_of(event: object) -> Table | None:
    """The table an event is stored in; None for what is not stored (resync requests...)."""
    if isinstance(event, BookFull):
        return ORDERBOOK_FULL_DEPTH
    entry = _ROWS.get(type(event))
    return entry[0] if entry else None


def new_batch(table: Table) -> Batch:
    return {name: [] for name in table.column_names}


def add_event(batches: dict[str, Batch], event: object, frames: FullBookFrames) -> str | None:
    """Append one event to its table's batch (created on first use); the table's name, or None.
    Full books are written by `frames`: give it every full book, in order, once."""
    if isinstance(event, BookFull):
        table, row = ORDERBOOK_FULL_DEPTH, frames.row(event)
    else:
        entry = _ROWS.get(type(event))
        if entry is None:
            return None
        table, row = entry[0], entry[1](event)
    batch = batches.get(table.name)
    if batch is None:
        batch = batches[table.name] = new_batch(table)
    for column, value in zip(batch.values(), row):
        column.append(value)
    return table.name


def to_batches(events: Iterable[object], frames: FullBookFrames | None = None) -> dict[str, Batch]:
    """Columnar batches per table for a list of events (what is not stored is skipped)."""
    frames = frames or FullBookFrames()
    batches: dict[str, Batch] = {}
    for event in events:
        add_event(batches, event, frames)
    return batches


def batch_len(batch: Batch) -> int:
    return len(next(iter(batch.values()))) if batch else 0


def batch_token(table: str, batch: Batch) -> str:
    """A deterministic `insert_deduplication_token`: the table and its rows' identities.

    Rows are identified by the sorting key and the version, so two batches with the same
    token hold the same rows, and a retried or replayed batch is recognised whoever cut it.
    (The version matters where updates share a key: two batches of a candle's updates.)
    """
    definition = TABLES[table]
    names = definition.order_by
    if definition.version_column not in names:
        names = (*names, definition.version_column)
    keys = [batch[name] for name in names]
    digest = hashlib.blake2b(orjson.dumps(keys), digest_size=16).hexdigest()
    return f"{table}:{batch_len(batch)}:{digest}"


# ---- reading back ----


def _select_expression(column_type: str, name: str) -> str:
    if column_type.startswith("DateTime64(3"):
        return f"toUnixTimestamp64Milli({name})"
    if column_type.startswith("DateTime64(9"):
        return f"toUnixTimestamp64Nano({name})"
    return name


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def select_sql(
    table: Table,
    database: str,
    exchange: str,
    symbol: str,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    newest_first: bool = False,
    limit: int | None = None,
) -> str:
    """Rows of one book (or one venue's symbol-less quality events: symbol ""), `FINAL` so
    each event is seen once, in key order, times in [since_ms, until_ms]."""
    columns = ", ".join(_select_expression(c.type, c.name) for c in table.columns)
    time_type = next(c.type for c in table.columns if c.name == table.time_column)
    from_ms = "fromUnixTimestamp64Milli" if time_type.startswith("DateTime64(3") else "fromUnixTimestamp64Nano"
    scale = 1 if from_ms.endswith("Milli") else 1_000_000
    where = [f"exchange_name = {_quote(exchange)}", f"symbol_name = {_quote(symbol)}"]
    if since_ms is not None:
        where.append(f"{table.time_column} >= {from_ms}(toInt64({int(since_ms) * scale}), 'UTC')")
    if until_ms is not None:
        where.append(f"{table.time_column} <= {from_ms}(toInt64({int(until_ms) * scale + scale - 1}), 'UTC')")
    direction = " DESC" if newest_first else ""
    order = ", ".join(f"{name}{direction}" for name in table.order_by)
    sql = f"SELECT {columns} FROM {database}.{table.name} FINAL WHERE {' AND '.join(where)} ORDER BY {order}"
    return sql + (f" LIMIT {int(limit)}" if limit is not None else "")


def _kind_texts(r: dict[str, Any], kind: str, sides: dict[str, str]) -> dict[str, list[str]]:
    """One kind's texts (`kind` "price" or "quantity") per side prefix (`sides`: prefix ->
    its integer column), from the text columns if any holds texts (rows older than
    migration 7, or texts with no integer form), otherwise from the integers."""
    plural = "prices" if kind == "price" else "quantities"
    stored = {prefix: r[f"{prefix}_{plural}"] for prefix in sides}
    if any(stored.values()):
        return stored
    scale, decimals = r[f"{kind}_scale"], r[f"{kind}_decimals"]
    out = {}
    for prefix, column in sides.items():
        units = r[column]
        if column.endswith("_steps"):
            units = decimal_units.from_steps(units, BID_STEPS if prefix.endswith("bid") else ASK_STEPS)
        out[prefix] = decimal_units.texts(units, scale, decimals)
    return out


def _levels_of(r: dict[str, Any], prefixes: Sequence[str]) -> dict[str, list[PriceQty]]:
    """The levels of these sides (prefixes "bid", "deep_ask"...) of a row, as [price, quantity]."""
    prices = _kind_texts(r, "price", {p: f"{p}_price_steps" for p in prefixes})
    quantities = _kind_texts(r, "quantity", {p: f"{p}_quantity_units" for p in prefixes})
    return {p: [[price, quantity] for price, quantity in zip(prices[p], quantities[p])] for p in prefixes}


def _delta(r: dict[str, Any]) -> BookDelta:
    levels = _levels_of(r, ("bid", "ask"))
    return BookDelta(
        r["exchange_name"], r["symbol_name"], r["update_id"], r["prev_update_id"], r["first_update_id"],
        levels["bid"], levels["ask"], r["timestamp"], r["collected_at"],  # type: ignore[arg-type]
    )


@dataclass(slots=True)
class StoredFullBook:
    """One row of orderbook_full_depth as stored. Whole (`base_update_id` None): `book` is
    the full book. Otherwise its bids/asks hold, per `encoding`, the tail past the base's
    deepest levels or the changes from the base (a side's published and kept levels as
    one), its deep levels the changes from the base's, and the counts where sides end."""

    book: BookFull
    encoding: str
    base_update_id: int | None
    bid_levels: int
    ask_levels: int
    kept_bid_levels: int
    kept_ask_levels: int


def _full(r: dict[str, Any]) -> StoredFullBook:
    levels = _levels_of(r, ("bid", "ask", "deep_bid", "deep_ask", "kept_bid", "kept_ask"))
    book = BookFull(
        venue=r["exchange_name"], symbol=r["symbol_name"], update_type=r["update_type"],
        last_update_id=r["last_update_id"] or None, first_update_id=r["first_update_id"],
        prev_update_id=r["prev_update_id"], sequence_id=r["sequence_id"],
        bids=levels["bid"], asks=levels["ask"], checksum=r["checksum"], is_valid=bool(r["is_valid"]),
        validation_errors=list(r["validation_errors"]), exchange_ms=r["timestamp"], recv_ns=r["collected_at"],
        deep_bids=levels["deep_bid"], deep_asks=levels["deep_ask"], deep_age_ms=r["deep_age_ms"],
        kept_bids=levels["kept_bid"], kept_asks=levels["kept_ask"],
        exact_bid_levels=r["exact_bid_levels"], exact_ask_levels=r["exact_ask_levels"],
    )
    return StoredFullBook(
        book, r["levels_encoding"], r["base_update_id"], r["bid_levels"], r["ask_levels"], r["kept_bid_levels"], r["kept_ask_levels"]
    )


def _trade(r: dict[str, Any]) -> Trade:
    return Trade(
        r["exchange_name"], r["symbol_name"], r["trade_id"], r["price"], r["quantity"], r["side"],
        r["timestamp"], r["collected_at"],
    )


def _ticker(r: dict[str, Any]) -> Ticker:
    return Ticker(
        r["exchange_name"], r["symbol_name"], r["update_id"], r["best_bid_price"], r["best_bid_quantity"],
        r["best_ask_price"], r["best_ask_quantity"], r["last_price"], r["timestamp"], r["collected_at"],
    )


def _kline(r: dict[str, Any]) -> Kline:
    return Kline(
        venue=r["exchange_name"], symbol=r["symbol_name"], interval=r["kline_interval"], open_time=r["open_time"],
        close_time=r["close_time"], open=r["open_price"], high=r["high_price"], low=r["low_price"],
        close=r["close_price"], volume=r["volume"], quote_volume=r["quote_volume"], trade_count=r["trade_count"],
        is_closed=bool(r["is_closed"]), exchange_ms=r["timestamp"], recv_ns=r["collected_at"],
    )


def _quality(r: dict[str, Any]) -> QualityEvent:
    return QualityEvent(
        r["exchange_name"], r["symbol_name"] or None, r["kind"], r["detail"], r["update_id"], r["collected_at"]
    )


def _features(r: dict[str, Any]) -> FeatureRow:
    return FeatureRow(r["exchange_name"], r["symbol_name"], r["update_id"] or None, r["timestamp"], r["collected_at"],
                      dict(zip(r["feature_names"], r["feature_values"])))


_EVENTS: dict[str, Callable[[dict[str, Any]], object]] = {
    ORDERBOOK_DELTAS.name: _delta,
    ORDERBOOK_FULL_DEPTH.name: _full,
    TRADES.name: _trade,
    TICKERS.name: _ticker,
    QUALITY_EVENTS.name: _quality,
    KLINES.name: _kline,
    FEATURES.name: _features,
}


def events_from_rows(table: Table, rows: Iterable[Row]) -> list[object]:
    """Rows selected by `select_sql` back into events (full books: `StoredFullBook` rows). Not restored: a delta's top of book
    (the full book and the deltas rebuild it), levels' fields past price and quantity, and
    an exchange time the venue did not send (it reads back as the receive time)."""
    build, names = _EVENTS[table.name], table.column_names
    return [build(dict(zip(names, row))) for row in rows]
