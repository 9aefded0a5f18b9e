"""`dataset build` on a 10-minute simulated recording and on the real Binance capture: the
files, their shapes, byte-identical rebuilds, labels without made-up values, and no
feature that depends on input after its sample."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import zstandard

from flows.cli import main
from flows.dataset import DatasetSettings, book_rows, build_dataset
from operators.features.engine import FeatureSettings
from sim.recording import generate_recording

FILES = ("features.parquet", "labels.parquet", "lob.npy", "heatmap.npy", "meta.json")


@pytest.fixture(scope="module")
def sim_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "ten_minutes.jsonl.zst"
    generate_recording(path, venues=("binance",), symbols=("BTC-USDT",), seconds=600, seed=3)
    return path


@pytest.fixture(scope="module")
def sim_dataset(sim_recording: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    assert main(["dataset", "build", "--from", str(sim_recording), "--venue", "binance", "--symbol", "BTC-USDT",
                 "--out", str(out)]) == 0
    return out


def test_files_and_shapes_on_ten_simulated_minutes(sim_dataset: Path):
    assert all((sim_dataset / name).is_file() for name in FILES)
    features = pl.read_parquet(sim_dataset / "features.parquet")
    labels = pl.read_parquet(sim_dataset / "labels.parquet")
    meta = json.loads((sim_dataset / "meta.json").read_text())
    n = features.height
    assert 5000 < n <= 6000  # one sample per applied diff, 10 per second
    assert features.columns[:3] == ["timestamp", "recv_ns", "update_id"] and features.columns == meta["columns"]
    for name in ("spread", "spread_bps", "mid_price", "bid_depth", "ask_depth", "price_range", "total_bid_volume",
                 "total_ask_volume", "volume_imbalance", "avg_bid_size", "avg_ask_size", "volume_concentration",
                 "bid_flow", "ask_flow", "net_flow", "flow_ratio", "update_count", "ofi", "ofi_10", "microprice"):
        assert name in features.columns
    assert features["update_id"].is_sorted() and features["timestamp"].is_sorted()
    assert labels.height == n and labels["update_id"].to_list() == features["update_id"].to_list()
    lob = np.load(sim_dataset / "lob.npy")
    heat = np.load(sim_dataset / "heatmap.npy")
    assert lob.shape == (n, 100, 40) and lob.dtype == np.float32
    assert heat.shape == (n, 10, 200, 2) and heat.dtype == np.float32
    # window i ends at sample i: its last row is sample i's 40 raw inputs
    assert lob[500, -1, 0] == np.float32(features["ask_price_1"][500])
    assert lob[500, 0, 2] == np.float32(features["bid_price_1"][401])
    assert np.isnan(lob[0, :99]).all() and not np.isnan(lob[99:]).any()
    first_stack = meta["heatmap_first_full_stack"]
    assert np.isnan(heat[: first_stack]).all() and not np.isnan(heat[first_stack:]).any()
    assert meta["samples"] == n and meta["code_version"]["commit"]


def test_labels_are_null_where_the_windows_run_out(sim_dataset: Path):
    labels = pl.read_parquet(sim_dataset / "labels.parquet")
    features = pl.read_parquet(sim_dataset / "features.parquet")
    n = labels.height
    for k in (10, 20, 50, 100):
        column = labels[f"label_{k}"]
        assert column[: k - 1].null_count() == k - 1 and column[-k:].null_count() == k  # first k-1, last k
        assert column[k - 1 : n - k].null_count() == 0
        assert set(labels[f"class_{k}"].drop_nulls().unique().to_list()) <= {-1, 0, 1}
    # recompute one label by hand: mean of the next 10 mids over the mean of the last 10
    mids = features["mid_price"].to_numpy()
    t = 1234
    expected = (mids[t + 1 : t + 11].mean() - mids[t - 9 : t + 1].mean()) / mids[t - 9 : t + 1].mean()
    assert labels["label_10"][t] == pytest.approx(expected, rel=1e-9, abs=1e-15)
    # 60 s horizon: the last minute of samples has no label
    recv = features["recv_ns"].to_numpy()
    unlabeled = labels["label_60s"].is_null().to_numpy()
    assert unlabeled[recv > recv[-1] - 60 * 10**9].all()
    assert not unlabeled[(recv > recv[0] + 61 * 10**9) & (recv < recv[-1] - 61 * 10**9)].any()
    assert labels["class_10"].drop_nulls().unique().len() == 3  # the market does move both ways


def test_building_twice_gives_the_same_bytes(sim_recording: Path, sim_dataset: Path, tmp_path: Path):
    main(["dataset", "build", "--from", str(sim_recording), "--venue", "binance", "--symbol", "BTC-USDT",
          "--out", str(tmp_path)])
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (sim_dataset / name).read_bytes(), name


def _truncated(path: Path, keep: int, out: Path) -> Path:
    lines = io.BytesIO(zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())).readlines()
    out.write_bytes(b"".join(lines[:keep]))
    return out


def test_no_feature_depends_on_input_after_its_sample(sim_recording: Path, tmp_path: Path):
    settings = FeatureSettings()
    full = [r for r in book_rows([sim_recording], "binance", "BTC-USDT", settings)][:3000]
    prefix = _truncated(sim_recording, 20_000, tmp_path / "prefix.jsonl")
    cut = list(book_rows([prefix], "binance", "BTC-USDT", settings))
    assert 1000 < len(cut) < 3000
    for before, after in zip(cut, full):
        assert (before.update_id, before.values) == (after.update_id, after.values)


def test_dataset_of_the_real_binance_capture(real_recordings: dict[str, Path], tmp_path: Path):
    settings = DatasetSettings(window=20, event_horizons=(10,), stack_size=2)
    meta = build_dataset([real_recordings["binance"]], venue="binance", symbol="NKN-USDT", out=tmp_path,
                         settings=settings, progress=False)
    features = pl.read_parquet(tmp_path / "features.parquet")
    n = features.height
    assert n > 100 and meta["samples"] == n
    assert np.load(tmp_path / "lob.npy").shape == (n, 20, 40)
    assert np.load(tmp_path / "heatmap.npy").shape == (n, 2, 200, 2)
    assert (features["best_ask"] > features["best_bid"]).all()
    default = build_dataset([real_recordings["binance"]], venue="binance", symbol="NKN-USDT", out=tmp_path / "d",
                            settings=DatasetSettings(), progress=False)
    assert np.load(tmp_path / "d" / "lob.npy").shape == (default["samples"], 100, 40)
    again = build_dataset([real_recordings["binance"]], venue="binance", symbol="NKN-USDT", out=tmp_path / "e",
                          settings=DatasetSettings(), progress=False)
    for name in FILES:
        assert (tmp_path / "d" / name).read_bytes() == (tmp_path / "e" / name).read_bytes(), name
    assert again == default


def test_train_loader_batches(sim_dataset: Path):
    from examples.train_loader import batches, usable_samples

    index = usable_samples(sim_dataset, "class_10")
    seen = 0
    for lob, heat, target in batches(sim_dataset, "class_10", batch=256):
        assert lob.shape[1:] == (100, 40) and heat.shape[1:] == (10, 200, 2) and len(target) == len(lob)
        assert not np.isnan(lob).any() and not np.isnan(heat).any()
        assert set(np.unique(target)) <= {-1, 0, 1}
        seen += len(target)
    assert seen == len(index) > 4000
