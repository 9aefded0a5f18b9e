"""Which NATS subjects each normalized event goes to, with the payload and a stable message id.

Subjects are the plan's, lower case: `orderbook.full|snapshot|delta|pure_delta.{ex}.{sym}`,
`market.{ex}.{sym}.trade|ticker|quality`, `market.{ex}.{sym}.kline.{interval}`. The message
id (JetStream `Nats-Msg-Id`, see `operators.message_ids`) is derived from the event and its
payload bytes, so a publish retried after an outage, or replayed after a restart, is
stored once, and two different messages are never taken for one. Trades and klines are
the exception: a venue's trade id, and a candle's open time with what moves between its
pushes, already name one thing, so a trade delivered twice (two connections overlapping
at a handover) is stored once.

Full books go to `orderbook.full` every time (every (re)sync and every full interval) and
to `orderbook.snapshot` after every (re)sync and audit, and as the first book of every
snapshot interval of exchange time (the sync machine marks it, so none is skipped).
"""

from __future__ import annotations

import orjson

from operators.message_ids import NO_SYMBOL, id_stem
from schemas.encoding import (
    book_delta_dict, book_full_dict, book_update_dict, kline_dict, quality_dict, ticker_dict, trade_dict,
)  # fmt: skip
from schemas.events import BookDelta, BookFull, Kline, QualityEvent, Ticker, Trade
from schemas.publication import Publication
from schemas.streams import subject


def _id_part(venue: str, symbol: str) -> str:
    return f"{venue}.{symbol.lower()}"


def kline_msg_id(kline: Kline) -> str:
    """One id per distinct update of a candle: its open time, whether it is closed, and what
    moves between two pushes of an open candle: the push's exchange time (Binance E) or,
    where the venue sends none (OKX), the volume so far, which grows with every trade (an
    OKX push with the same volume repeats the same candle, so sharing its id is right)."""
    moment = kline.exchange_ms if kline.exchange_ms is not None else f"v{kline.volume}"
    state = "c" if kline.is_closed else "o"
    return f"kl.{_id_part(kline.venue, kline.symbol)}.{kline.interval}.{kline.open_time}.{moment}.{state}"


def quality_publication(event: QualityEvent) -> Publication:
    """A quality or state event on `market.{ex}.{sym}.quality` (`-` for the whole venue)."""
    symbol = NO_SYMBOL if event.symbol is None else event.symbol
    payload = orjson.dumps(quality_dict(event))
    stem = id_stem(event.venue, event.symbol, event.update_id, event.recv_ns, payload)
    return Publication(subject("quality", event.venue, symbol), payload, f"q.{stem}")


def publications(event: object) -> list[Publication]:
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
        if event.snapshot_slot_start:
            out.append(Publication(subject("snapshot", event.venue, event.symbol), payload, f"s.{stem}"))
        return out
    if isinstance(event, Trade):
        ident = f"t.{_id_part(event.venue, event.symbol)}.{event.trade_id}"
        return [Publication(subject("trade", event.venue, event.symbol), orjson.dumps(trade_dict(event)), ident)]
    if isinstance(event, Ticker):
        payload = orjson.dumps(ticker_dict(event))
        stem = id_stem(event.venue, event.symbol, event.update_id, event.recv_ns, payload)
        return [Publication(subject("ticker", event.venue, event.symbol), payload, f"k.{stem}")]
    if isinstance(event, Kline):
        kline_subject = subject("kline", event.venue, event.symbol, event.interval)
        return [Publication(kline_subject, orjson.dumps(kline_dict(event)), kline_msg_id(event))]
    if isinstance(event, QualityEvent):
        return [quality_publication(event)]
    return []
