"""The replay report: per-book counters, trade counts and every error, as one JSON object.

Its shape is fixed (`REPORT_BOOK_FIELDS`), so scripts and CI can diff reports across runs.
"""

from __future__ import annotations

from typing import Any

from schemas.events import BookStats

REPORT_BOOK_FIELDS = (
    "messages",
    "updates_applied",
    "levels_applied",
    "snapshots",
    "resyncs",
    "gaps",
    "checksums_verified",
    "checksum_failures",
    "checksums_unverified",
    "crossed",
    "rejected",
    "best_bid",
    "best_ask",
    "bid_levels",
    "ask_levels",
    "exact_bid_levels",
    "exact_ask_levels",
    "audits_passed",
    "audit_failures",
    "last_update_id",
)

# The report keeps this many error sentences and then says how many more there were.
MAX_REPORT_ERRORS = 1000


class ReportBuilder:
    """Collects what the replay learns and renders the report."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, Any]] = {}
        self.trades: dict[str, int] = {}
        self.errors: list[str] = []
        self.errors_dropped = 0

    def add_error(self, text: str) -> None:
        if len(self.errors) < MAX_REPORT_ERRORS:
            self.errors.append(text)
        else:
            self.errors_dropped += 1

    def add_book(self, key: str, stats: BookStats, has_book: bool) -> None:
        if has_book:
            self.books[key] = {name: getattr(stats, name) for name in REPORT_BOOK_FIELDS}
        if stats.trades:
            self.trades[key] = stats.trades
        for text in stats.errors:
            self.add_error(text)
        if stats.errors_omitted:
            self.add_error(f"{key}: ... and {stats.errors_omitted} more errors for this book")

    def render(self) -> dict[str, Any]:
        errors = sorted(self.errors)
        if self.errors_dropped:
            errors.append(f"... and {self.errors_dropped} more errors")
        return {
            "books": dict(sorted(self.books.items())),
            "trades": dict(sorted(self.trades.items())),
            "errors": errors,
        }
