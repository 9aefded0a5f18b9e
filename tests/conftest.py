"""Shared fixtures: where the third-party recordings live, and importing them once."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.importers.cryptofeed import import_cryptofeed

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "real-data" / "cryptofeed-ce58c2a0"

CAPTURES = {
    "okx": ["OKX.ws.1.0"],
    "binance": ["BINANCE.ws.1.0", "BINANCE.http.0.0"],
    "binance_us": ["BINANCE_US.ws.1.0", "BINANCE_US.http.0.0"],
}


@pytest.fixture(scope="session")
def real_recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each real capture imported into one recording (read from ../shared, never copied)."""
    if not REAL_DATA.is_dir():
        pytest.fail(f"the real recordings are missing: {REAL_DATA} (../shared must sit beside the repo)")
    out_dir = tmp_path_factory.mktemp("real")
    recordings = {}
    for name, files in CAPTURES.items():
        out = out_dir / f"{name}.jsonl.zst"
        stats = import_cryptofeed([REAL_DATA / f for f in files], out)
        assert not stats.errors, stats.errors
        recordings[name] = out
    return recordings
