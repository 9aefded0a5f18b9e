"""Where feature rows go on NATS: `features.{exchange}.{symbol}`, one message id per row."""

from __future__ import annotations

import orjson

from operators.message_ids import id_stem
from schemas.features import FeatureRow, feature_dict
from schemas.publication import Publication
from schemas.streams import subject


def feature_publication(row: FeatureRow) -> Publication:
    payload = orjson.dumps(feature_dict(row))
    stem = id_stem(row.venue, row.symbol, row.update_id, row.recv_ns, payload)
    return Publication(subject("features", row.venue, row.symbol), payload, f"f.{stem}")
