"""One book's feature engine plus the latest row, for the plan's `ml_features` (the live features in book_sync)."""

from __future__ import annotations

from dataclasses import replace

from operators.features.engine import FeatureEngine, FeatureSettings
from schemas.events import BookFull
from schemas.features import FeatureRow


class BookFeatures:
    """Feeds one book's events to its engine; emits feature rows, and full books carrying
    the latest row's values as `ml_features` (None until the first row)."""

    def __init__(self, key: str, settings: FeatureSettings) -> None:
        venue, _, symbol = key.partition(":")
        self.engine = FeatureEngine(venue, symbol, settings)
        self.latest: dict[str, float | None] | None = None

    def handle(self, event: object) -> list[FeatureRow | BookFull]:
        row = self.engine.on_event(event)
        if row is not None:
            self.latest = row.values
            return [row]
        if isinstance(event, BookFull):
            return [replace(event, ml_features=self.latest)]
        return []
