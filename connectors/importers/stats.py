"""What an import did, so a user can see at a glance whether the capture came through whole."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from schemas.raw import RawEvent


@dataclass
class ImportStats:
    """Counts of one import run; `errors` names every line that was not imported, and why."""

    written: int = 0
    by_venue_kind: Counter[tuple[str, str]] = field(default_factory=Counter)
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def count(self, event: RawEvent) -> None:
        """Note one message written to the recording."""
        self.written += 1
        self.by_venue_kind[(event.venue, event.kind)] += 1

    def error(self, where: str, reason: str) -> None:
        """Note one line that could not be imported; `where` is "file:line"."""
        self.errors.append(f"{where}: {reason}")

    def summary(self) -> str:
        """One line for a terminal or a log."""
        parts = ", ".join(f"{venue}/{kind} {n}" for (venue, kind), n in sorted(self.by_venue_kind.items()))
        text = (
            f"{self.written} messages written ({parts or 'none'}), "
            f"{self.skipped} lines skipped, {len(self.errors)} errors"
        )
        if self.errors:
            text += f" (first: {self.errors[0]})"
        return text
