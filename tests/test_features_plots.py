"""The pictures: sizes as asked, and content that follows the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.cli import main
from flows.plots import collect_frames
from sim.recording import generate_recording


@pytest.fixture(scope="module")
def rising(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plots") / "rising.jsonl.zst"
    generate_recording(path, venues=("binance",), symbols=("BTC-USDT",), seconds=60, seed=2, trend_levels_per_s=20)
    return path


def _weighted_row(column: np.ndarray) -> float:
    return float((np.arange(len(column)) * column).sum() / column.sum())


def test_liquidity_band_follows_the_mid(rising: Path):
    frames = collect_frames([rising], venue="binance", symbol="BTC-USDT", columns=60, rows=200, levels=20)
    assert frames.liquidity.shape == (200, 60)
    mids = (frames.best_bid + frames.best_ask) / 2
    assert mids[-1] - mids[0] > 5  # the simulated market rises ~20 ticks a second
    step = frames.prices[0] - frames.prices[1]
    mid_rows = (frames.prices[0] - mids) / step  # row 0 is the highest price
    brightest = frames.liquidity.argmax(axis=0)
    assert mid_rows[-1] < mid_rows[0] - 100  # the mid crosses most of the picture
    assert np.abs(brightest - mid_rows).max() < 5  # and the brightest row goes with it


def test_heatmap_png_size_and_brightest_rows_move(rising: Path, tmp_path: Path):
    out = tmp_path / "heat.png"
    assert main(["plot", "heatmap", "--from", str(rising), "--venue", "binance", "--symbol", "BTC-USDT",
                 "--out", str(out), "--width", "640", "--height", "360", "--levels", "20"]) == 0
    image = np.asarray(Image.open(out).convert("L"), dtype=np.float64)
    assert image.shape == (360, 640)
    plot = image[: 360 - 24, 70 + 5: 640 - 5]  # inside the margins
    early, late = plot[:, :40].mean(axis=1), plot[:, -40:].mean(axis=1)
    assert np.argmax(early) > np.argmax(late) + 100  # the brightest rows move up with the mid
    again = tmp_path / "again.png"
    main(["plot", "heatmap", "--from", str(rising), "--venue", "binance", "--symbol", "BTC-USDT",
          "--out", str(again), "--width", "640", "--height", "360", "--levels", "20"])
    assert again.read_bytes() == out.read_bytes()


def test_depth_png_from_the_real_capture(real_recordings: dict[str, Path], tmp_path: Path):
    out = tmp_path / "depth.png"
    assert main(["plot", "depth", "--from", str(real_recordings["binance"]), "--venue", "binance",
                 "--symbol", "NKN-USDT", "--out", str(out), "--width", "500", "--height", "300"]) == 0
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert image.shape == (300, 500, 3)
    green = (image[..., 1] > image[..., 0] + 40)
    red = (image[..., 0] > image[..., 1] + 40)
    columns_green, columns_red = np.nonzero(green.any(axis=0))[0], np.nonzero(red.any(axis=0))[0]
    assert columns_green.max() < columns_red.min()  # bids left of the mid, asks right
    # the bid curve is tallest at its far (left) end: cumulative
    assert green[:, columns_green.min() + 2].sum() > green[:, columns_green.max() - 2].sum()
