"""The live features step: keyed by `venue:symbol`, after book_sync, in the collect flow.

It sees the same normalized events `dataset build` feeds the same engine, so live rows
equal offline rows. Out: FeatureRows (to `features.{ex}.{sym}`) and full books carrying
`ml_features` (these replace the plain full books on NATS).
"""

from __future__ import annotations

from collections.abc import Iterable

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import StatefulLogic

from operators.features.attach import BookFeatures
from operators.features.engine import FeatureSettings
from schemas.events import BookDelta, BookFull, QualityEvent, Trade

_FED = (BookFull, BookDelta, Trade, QualityEvent)


class FeatureLogic(StatefulLogic[object, object, None]):
    """One book's feature engine.

    Recovery snapshot: nothing. The engine holds a replica of a 5000-level book, and
    copying it at every epoch stalled the worker for milliseconds; after a restart the
    book resyncs and publishes a full book, from which the engine starts again."""

    def __init__(self, settings: FeatureSettings) -> None:
        self.settings = settings
        self.features: BookFeatures | None = None

    def on_item(self, value: object) -> tuple[Iterable[object], bool]:
        if self.features is None:
            self.features = BookFeatures(f"{value.venue}:{value.symbol}", self.settings)  # type: ignore[attr-defined]
        return self.features.handle(value), StatefulLogic.RETAIN

    def snapshot(self) -> None:
        return None


def feature_step(step_id: str, synced: Stream, settings: FeatureSettings) -> Stream:
    """(key, event) in; FeatureRow and BookFull (with ml_features) out, unkeyed."""
    fed = op.filter(f"{step_id}_input", synced,
                    lambda kv: isinstance(kv[1], _FED) and getattr(kv[1], "symbol", None) is not None)
    featured = op.stateful(step_id, fed, lambda _resume: FeatureLogic(settings))
    return op.map(f"{step_id}_unkey", featured, lambda kv: kv[1])
