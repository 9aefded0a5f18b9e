"""What the collect flow hands its NATS sink for each published event, in one step."""

from __future__ import annotations

from flows.metrics import observe_latency
from operators.features.publish import feature_publication
from operators.routing import publications
from schemas.events import BookDelta, BookFull, Kline, Ticker, Trade
from schemas.features import FeatureRow
from schemas.publication import Publication

# What book_sync emits that only goes to NATS; the rest (quality events, resync requests,
# status updates, final counters) is rare and has other sinks too.
MARKET_EVENTS: frozenset[type] = frozenset({BookDelta, BookFull, Trade, Ticker, Kline, FeatureRow})


def routed_publications(keyed: tuple[str, object]) -> list[tuple[str, Publication]]:
    """One book's event -> its messages, keyed by subject; its receive -> publish latency is
    observed here, as it is handed over."""
    event = keyed[1]
    if type(event) is FeatureRow:
        message = feature_publication(event)
        return [(message.subject, message)]
    observe_latency(event)
    return [(message.subject, message) for message in publications(event)]
