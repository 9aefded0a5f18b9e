"""Which NATS subjects each normalized event goes to, with the payload and a stable message id.

Subjects are the plan's, lower case: `orderbook.full|snapshot|delta|pure_delta.{ex}.{sym}`,
`market.{ex}.{sym}.trade|ticker|quality`. The message id (JetStream `Nats-Msg-Id`, see
`operators.message_ids`) is derived from the event and its payload bytes, so a publish
retried after an outage, or replayed after a restart, is stored once, and two different
messages are never taken for one.

Full books go to `orderbook.full` every time (every (re)sync and every full interval) and
to `orderbook.snapshot` after every (re)sync and at most once per snapshot interval.
"""

from __future__ import annotations

import orjson

from operators.message_ids import NO_SYMBOL, id_stem
from schemas.encoding import book_delta_dict, book_full_dict, book_update_dict, quality_dict, ticker_dict, trade_dict
from schemas.events import BookDelta, BookFull, QualityEvent, Ticker, Trade
from schemas.publication import Publication
from schemas.streams import subject


def is_periodic_snapshot(book: BookFull, full_interval_ms: int, snapshot_interval_ms: int) -> bool:
    """True for the first full book of each snapshot interval (recording time, no state)."""
    now = book.recv_ns // 1_000_000
    return now // snapshot_interval_ms != (now - full_interval_ms) // snapshot_interval_ms


def quality_publication(event: QualityEvent) -> Publication:
    """A quality or state event on `market.{ex}.{sym}.quality` (`-` for the whole venue)."""
    symbol = NO_SYMBOL if event.symbol is None else event.symbol
    payload = orjson.dumps(quality_dict(event))
    stem = id_stem(event.venue, event.symbol, event.update_id, event.recv_ns, payload)
    return Publication(subject("quality", event.venue, symbol), payload, f"q.{stem}")


def publications(event: object, full_interval_ms: int, snapshot_interval_ms: int) -> list[Publication]:
    """The NATS messages for one event (none for internal signals such as resync requests)."""
    if isinstance(event, BookDelta):
        update = orjson.dumps(book_update_dict(event))
        pure = orjson.dumps(book_delta_dict(event))
        ident = (event.venue, event.symbol, event.update_id, event.recv_ns)
        return [
            Publication(subject("delta", event.venue, event.symbol), update, f"d.{id_stem(*ident, update)}"),
            Publication(subject("pure_delta", event.venue, event.symbol), pure, f"p.{id_stem(*ident, pure)}"),
        ]
    if isinstance(event, BookFull):
        payload = orjson.dumps(book_full_dict(event))
        stem = id_stem(event.venue, event.symbol, event.last_update_id, event.recv_ns, payload)
        out = [Publication(subject("full", event.venue, event.symbol), payload, f"f.{stem}")]
        if event.update_type == "snapshot" or is_periodic_snapshot(event, full_interval_ms, snapshot_interval_ms):
            out.append(Publication(subject("snapshot", event.venue, event.symbol), payload, f"s.{stem}"))
        return out
    if isinstance(event, Trade):
        payload = orjson.dumps(trade_dict(event))
        stem = id_stem(event.venue, event.symbol, event.trade_id, event.recv_ns, payload)
        return [Publication(subject("trade", event.venue, event.symbol), payload, f"t.{stem}")]
    if isinstance(event, Ticker):
        payload = orjson.dumps(ticker_dict(event))
        stem = id_stem(event.venue, event.symbol, event.update_id, event.recv_ns, payload)
        return [Publication(subject("ticker", event.venue, event.symbol), payload, f"k.{stem}")]
    if isinstance(event, QualityEvent):
        return [quality_publication(event)]
    return []
