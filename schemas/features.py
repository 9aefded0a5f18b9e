"""One sample of a book's features, as the feature engine emits it and sinks carry it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class FeatureRow:
    """The features of `venue:symbol` right after update `update_id` (float64, None = undefined).

    `heatmap` is the sample's [bins, 2] price heatmap (numpy), kept off the wire: datasets
    stack it, live consumers that want images compute them from `orderbook.full`.
    """

    venue: str
    symbol: str
    update_id: int | None
    exchange_ms: int | None
    recv_ns: int
    values: dict[str, float | None]
    heatmap: Any = field(default=None, repr=False)


def feature_dict(row: FeatureRow) -> dict[str, Any]:
    """The JSON of `features.{exchange}.{symbol}`: ids, times and the flat feature values."""
    return {
        "event_type": "features",
        "exchange_name": row.venue,
        "symbol_name": row.symbol,
        "update_id": row.update_id,
        "timestamp": row.exchange_ms,
        "recv_ns": row.recv_ns,
        "features": row.values,
    }
