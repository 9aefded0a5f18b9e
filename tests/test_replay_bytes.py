"""Replay output is pinned: the same recordings give the very bytes they gave before the
replay was made fast (typed decoding, fewer steps). The digests were taken with the
orjson-only decoders; a change here means the replay's output changed, not just its speed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from flows.replay import run_replay
from sim.faults import FaultPlan
from sim.recording import generate_recording

# sha256 of (events JSONL, report JSON) per case, taken before the replay was made fast.
# Re-pinned since for two deliberate changes: OKX full books carry the levels kept past
# the live window (`kept_bids`/`kept_asks`, for exact rebuilds from storage); and a book's
# first periodic full book after a slot boundary's comes its phase later (the books of a
# process no longer publish theirs at once), so `full_refresh` books fall on other diffs:
# every other line, and every report, byte for byte as before (checked when re-pinning).
PINNED = {
    "clean": ("aaf565287ed00151d2aaed15bfa1035f22ce761aae02b332050390b178a27eb8",
              "26f80cee02d6f5d72930fec8bc5b615b3a3a2c63aecca646c045138efa3c718d"),
    "faults": ("cc67f9aeee3c0384b08e277338b06bf5ca64eda9d2c038793650469f19a06d51",
               "d9b74b0434a8ed193d6dfb0a0256520cc2ab104071dda4e3c0a850fb91c9d017"),
    "real": ("5c5ea49f536549c240e7c34f8a737aea3ef96ba5b96b3c2ca5c8dd95615c3fea",
             "ab65ad582dc3ce63f7ea325760faa8e48aa530f1ba1608de5abdb14890ec20f8"),
    "defects": ("3d7c057b57c7b8610195e86edec7b7e9b7b1009aa7bf12f8ae6af27e1f80feb8",
                "ca01f05b830bd852f93817814df85b9d989db04e0b03d53308ad423434db3201"),
}

FAULTS = FaultPlan(seed=3, drop=2, duplicate=2, swap=1, bad_checksum=1, not_json=2, bad_price=2, negative_qty=2, resnapshot=2)


def _digests(tmp_path: Path, inputs: list[Path]) -> tuple[str, str]:
    out, report = tmp_path / "events.jsonl", tmp_path / "report.json"
    run_replay(inputs, out=out, report=report, full_interval_ms=1000, depth=1000)
    return hashlib.sha256(out.read_bytes()).hexdigest(), hashlib.sha256(report.read_bytes()).hexdigest()


def _recording(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.jsonl.zst"
    generate_recording(
        path, venues=("binance", "okx"), symbols=("BTC-USDT", "ETH-USDT"), seconds=20, seed=11,
        faults=FAULTS if case == "faults" else None,
    )
    return path


@pytest.mark.parametrize("case", ["clean", "faults"])
def test_generated_replay_bytes_are_pinned(tmp_path: Path, case: str) -> None:
    assert _digests(tmp_path, [_recording(tmp_path, case)]) == PINNED[case]


def test_real_replay_bytes_are_pinned(tmp_path: Path, real_recordings: dict[str, Path]) -> None:
    assert _digests(tmp_path, list(real_recordings.values())) == PINNED["real"]


def test_defective_lines_are_pinned_too(tmp_path: Path) -> None:
    """Damaged recording lines and odd envelopes give the same defects as before."""
    good = orjson.dumps({"recv_ns": 1717200000001000000, "venue": "binance", "conn": "c", "kind": "ws", "symbol": None, "url": None,
                         "data": '{"e":"trade","E":1717200000000,"s":"BTCUSDT","t":1,"p":"1.0","q":"2","T":1717200000000,"m":true}'})
    lines = [
        good, b"{not json", b"[1]", b'{"recv_ns": -1}', b'{"recv_ns": true, "venue": "binance"}',
        b'{"recv_ns": 2, "venue": "nowhere", "kind": "ws", "data": ""}', b'{"recv_ns": 2, "venue": "okx", "kind": "x", "data": ""}',
        b'{"recv_ns": 2, "venue": "okx", "kind": "ws", "data": 5}', b'{"recv_ns": 2, "venue": "okx", "kind": "ws", "data": "pong", "symbol": 3}',
        b'{"recv_ns": 2, "venue": "okx", "kind": "ws", "data": "pong", "url": 3}',
        b'{"recv_ns": 3, "venue": "okx", "kind": "ws", "data": "pong", "conn": 7, "extra": 1}',
        b'{"recv_ns": 4, "venue": "binance", "kind": "ws", "data": "{\\"stream\\":null,\\"data\\":{}}"}',
        good.replace(b'"m\\":true', b'"m\\":1'), good.replace(b'"t\\":1', b'"t\\":1.0'), good.replace(b'"t\\":1', b'"t\\":-1'),
    ]
    path = tmp_path / "defects.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert _digests(tmp_path, [path]) == PINNED["defects"]


@pytest.fixture
def pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loops without the compiled core, as on a machine that could not build it."""
    monkeypatch.setattr("operators.book.CORE", None)
    monkeypatch.setattr("operators.levels.CORE", None)
    monkeypatch.setattr("operators.binance_columns.FRAMES", None)
    monkeypatch.setattr("schemas.encoding._TEXT", None)
    monkeypatch.setattr("schemas.columns._SLOTS", None)


@pytest.mark.usefixtures("pure_python")
def test_pure_python_gives_the_same_bytes(tmp_path: Path, real_recordings: dict[str, Path]) -> None:
    assert _digests(tmp_path, [_recording(tmp_path, "faults")]) == PINNED["faults"]
    assert _digests(tmp_path, list(real_recordings.values())) == PINNED["real"]
