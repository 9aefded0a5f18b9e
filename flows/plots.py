"""`marketprism plot heatmap|depth`: pictures of a book from a recording (filled in below)."""

from __future__ import annotations

from typing import Any


def add_plot_command(commands: Any) -> None:
    """`marketprism plot ...` (called by flows.cli)."""
