"""The live features step: keyed by `venue:symbol`, after book_sync, in the collect flow.

It sees the same normalized events `dataset build` feeds the same engine, so live rows
equal offline rows. Out: FeatureRows (to `features.{ex}.{sym}`) and full books carrying
`ml_features` (these replace the plain full books on NATS).
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Stream

from operators.features.attach import BookFeatures
from operators.features.engine import FeatureSettings
from schemas.events import BookDelta, BookFull, QualityEvent, Trade

_FED = (BookFull, BookDelta, Trade, QualityEvent)


def feature_step(step_id: str, synced: Stream, settings: FeatureSettings) -> Stream:
    """(key, event) in; FeatureRow and BookFull (with ml_features) out, unkeyed."""
    fed = op.filter(f"{step_id}_input", synced,
                    lambda kv: isinstance(kv[1], _FED) and getattr(kv[1], "symbol", None) is not None)

    def mapper(state: BookFeatures | None, value: object) -> tuple[BookFeatures, list[object]]:
        if state is None:
            state = BookFeatures(f"{value.venue}:{value.symbol}", settings)  # type: ignore[attr-defined]
        return state, state.handle(value)

    featured = op.stateful_flat_map(step_id, fed, mapper)
    return op.map(f"{step_id}_unkey", featured, lambda kv: kv[1])
