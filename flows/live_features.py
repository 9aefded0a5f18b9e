"""Live features inside book_sync: each book's engine sees the events its sync emits, in
the collect flow.

It sees the same normalized events `dataset build` feeds the same engine, so live rows
equal offline rows. It runs in book_sync's own step, not a keyed step after it: a second
keyed step, with the filters and maps around it, cost every event half a dozen Python
calls on the worker, which is where the hot path's tail came from.
"""

from __future__ import annotations

from operators.features.attach import BookFeatures
from operators.features.engine import FeatureSettings
from schemas.events import BookDelta, BookFull, QualityEvent, Trade

_FED = (BookFull, BookDelta, Trade, QualityEvent)


class LiveFeatures:
    """One book's feature engine, fed by its BookSyncLogic.

    Not in the recovery snapshot: the engine holds a replica of a 5000-level book, and
    copying it at every epoch stalled the worker for milliseconds; after a restart the
    book resyncs and publishes a full book, from which the engine starts again."""

    def __init__(self, key: str, settings: FeatureSettings) -> None:
        self._features = BookFeatures(key, settings)

    def add_to(self, events: list[object]) -> list[object]:
        """`events` with the feature rows they make after them, and each full book replaced
        by itself carrying `ml_features` (what goes to `orderbook.full`)."""
        out: list[object] = []
        for event in events:
            if not isinstance(event, _FED) or event.symbol is None:
                out.append(event)
                continue
            derived = self._features.handle(event)
            if not isinstance(event, BookFull):  # a full book makes no row: `derived` is the book itself
                out.append(event)
            out.extend(derived)
        return out
