"""`marketprism dataset build`: a training dataset of one book from recordings or storage.

A recording is replayed through the sync engine (`flows.offline.sync_messages`, the same
BookSync the live flow runs); from storage (`--from clickhouse`) the book's stored full
books, deltas, trades and quality events are read back in the order book_sync emitted them
(`flows.stored_events`). Either way the normalized events go through the same
`FeatureEngine` the collect flow runs, so offline rows equal live rows, and a dataset from
storage equals the one from the recording of the same run. Files in `--out`:
features.parquet, labels.parquet, lob.npy [samples, window, 40], heatmap.npy
[samples, stack, bins, 2], meta.json and, when normalizing, normalization.parquet.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from tqdm import tqdm

from connectors.dataset_files import file_digest, write_json, write_table, write_tensor
from flows.offline import sync_messages
from operators.features.engine import FeatureEngine, FeatureSettings
from operators.features.fi2010 import RAW_COLUMNS
from operators.features.labels import classes, event_labels, time_labels
from operators.features.normalize import day_of, zscore
from operators.sync_base import SyncSettings
from schemas.features import FeatureRow

if TYPE_CHECKING:  # chDB and the ClickHouse driver load only for a build from storage
    from connectors.clickhouse_backend import Backend

MS = 1_000_000


@dataclass(frozen=True)
class DatasetSettings:
    """Sampling, label and tensor settings; all of them go into meta.json."""

    features: FeatureSettings = field(default_factory=lambda: FeatureSettings(heatmap=True))
    window: int = 100  # DeepLOB: 100 events of the 40 raw inputs
    event_horizons: tuple[int, ...] = (10, 20, 50, 100)
    time_horizons_ms: tuple[int, ...] = (1_000, 10_000, 60_000)
    smoothing_events: int | None = None  # None: equal to each horizon (DeepLOB)
    smoothing_ms: int | None = None
    alpha: float = 2e-6  # |label| <= alpha is "stationary" (0.02 bp)
    stack_size: int = 10  # heatmap.npy: this many images ...
    stack_interval_s: float = 1.0  # ... at least this far apart
    normalize_days: int | None = None  # z-score with the previous N days' statistics


def book_rows(paths: Iterable[Path], venue: str, symbol: str, settings: FeatureSettings,
              progress: bool = False) -> Iterator[FeatureRow]:
    """Every feature row of `venue:symbol` in the recordings, in order."""
    engine = FeatureEngine(venue, symbol, settings)
    with tqdm(desc=f"dataset {venue}:{symbol}", unit=" msg", disable=not progress, mininterval=0.5) as bar:
        for _, produced in sync_messages(paths, SyncSettings(depth=settings.depth)):
            bar.update()
            for event in produced:
                if getattr(event, "venue", None) == venue and getattr(event, "symbol", None) == symbol:
                    row = engine.on_event(event)
                    if row is not None:
                        yield row


def stored_rows(backend: Backend, database: str, venue: str, symbol: str, settings: FeatureSettings, *,
                since_ms: int | None = None, until_ms: int | None = None,
                progress: bool = False) -> Iterator[FeatureRow]:
    """Every feature row of `venue:symbol` from its stored events, in order (see `flows.stored_events`)."""
    from flows.stored_events import stored_events

    engine = FeatureEngine(venue, symbol, settings)
    events = stored_events(backend, database, venue, symbol, since_ms=since_ms, until_ms=until_ms)
    for event in tqdm(events, desc=f"dataset {venue}:{symbol}", unit=" event", disable=not progress, mininterval=0.5):
        row = engine.on_event(event)
        if row is not None:
            yield row


def row_time_ms(row: FeatureRow) -> int:
    return row.exchange_ms if row.exchange_ms is not None else row.recv_ns // MS


def code_version() -> dict[str, str]:
    try:
        package = version("marketprism")
    except PackageNotFoundError:
        package = "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parents[1],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"package": package, "commit": commit}


def _label_columns(mids: np.ndarray, times_ns: np.ndarray, settings: DatasetSettings) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k in settings.event_horizons:
        label = event_labels(mids, horizon=k, window=min(settings.smoothing_events or k, k))
        out[f"label_{k}"], out[f"class_{k}"] = label, classes(label, settings.alpha)
    for horizon in settings.time_horizons_ms:
        window = min(settings.smoothing_ms or horizon, horizon)
        label = time_labels(mids, times_ns, horizon_ns=horizon * MS, window_ns=window * MS)
        name = f"{horizon // 1000}s" if horizon % 1000 == 0 else f"{horizon}ms"
        out[f"label_{name}"], out[f"class_{name}"] = label, classes(label, settings.alpha)
    return out


def _nullable(values: np.ndarray, kind: Any = pl.Float64) -> pl.Series:
    """A column with NaN written as null (undefined stays undefined, never a number)."""
    series = pl.Series(values=values, dtype=pl.Float64).fill_nan(None)
    return series if kind == pl.Float64 else series.cast(kind)


def engine_settings(settings: DatasetSettings) -> FeatureSettings:
    """The engine makes a heatmap only when the stack interval has passed: every one is kept."""
    return dataclasses.replace(settings.features, heatmap=True,
                               heatmap_interval_ms=round(settings.stack_interval_s * 1000))


def build_dataset(paths: list[Path], *, venue: str, symbol: str, out: Path, settings: DatasetSettings,
                  start_ms: int | None = None, end_ms: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Write the dataset files of the recordings; returns meta.json's content."""
    inputs = [{"name": p.name, "bytes": p.stat().st_size, "sha256": file_digest(p)} for p in paths]
    rows = book_rows(paths, venue, symbol, engine_settings(settings), progress)
    return write_dataset(rows, inputs=inputs, venue=venue, symbol=symbol, out=out, settings=settings,
                         start_ms=start_ms, end_ms=end_ms, where=", ".join(p.name for p in paths))


def build_dataset_from_storage(backend: Backend, database: str, *, venue: str, symbol: str, out: Path,
                               settings: DatasetSettings, start_ms: int | None = None, end_ms: int | None = None,
                               progress: bool = True) -> dict[str, Any]:
    """Write the dataset files of the stored book; returns meta.json's content."""
    rows = stored_rows(backend, database, venue, symbol, engine_settings(settings), since_ms=start_ms,
                       until_ms=end_ms, progress=progress)
    inputs = [{"clickhouse": backend.where, "database": database}]
    return write_dataset(rows, inputs=inputs, venue=venue, symbol=symbol, out=out, settings=settings,
                         start_ms=start_ms, end_ms=end_ms, where=f"{backend.where} ({database})")


def write_dataset(feature_rows: Iterable[FeatureRow], *, inputs: list[dict[str, Any]], venue: str, symbol: str,
                  out: Path, settings: DatasetSettings, start_ms: int | None, end_ms: int | None,
                  where: str) -> dict[str, Any]:
    """The dataset files of one book's feature rows (made with `engine_settings`); meta.json's content."""
    out.mkdir(parents=True, exist_ok=True)
    rows: list[FeatureRow] = []
    kept_images: list[np.ndarray] = []
    images_before: list[int] = []  # per sample: how many stack images were kept up to it
    for row in feature_rows:
        if row.heatmap is not None:
            kept_images.append(row.heatmap.astype(np.float32))
        moment = row_time_ms(row)
        if (start_ms is None or moment >= start_ms) and (end_ms is None or moment < end_ms):
            rows.append(row)
            images_before.append(len(kept_images))
    if not rows:
        raise LookupError(f"no samples of {venue}:{symbol} in {where} in the given range")

    names = list(rows[0].values)
    matrix = np.array([list(row.values.values()) for row in rows], dtype=np.float64)  # None -> NaN
    timestamps = np.array([row_time_ms(row) for row in rows], dtype=np.int64)
    recv = np.array([row.recv_ns for row in rows], dtype=np.int64)
    update_ids = [row.update_id for row in rows]
    mids = matrix[:, names.index("mid_price")].copy()

    if settings.normalize_days:
        matrix, used = zscore(day_of(timestamps), matrix, settings.normalize_days)
        stats_rows = [(day, name, float(mean[j]), float(std[j]))
                      for day, (mean, std) in sorted(used.items()) for j, name in enumerate(names)]
        write_table(out / "normalization.parquet",
                    {"day": [r[0] for r in stats_rows], "column": [r[1] for r in stats_rows],
                     "mean": [r[2] for r in stats_rows], "std": [r[3] for r in stats_rows]},
                    {"day": pl.Int64, "column": pl.Utf8, "mean": pl.Float64, "std": pl.Float64})

    ids = {"timestamp": timestamps, "recv_ns": recv, "update_id": update_ids}
    id_schema = {"timestamp": pl.Int64, "recv_ns": pl.Int64, "update_id": pl.Int64}
    write_table(out / "features.parquet", {**ids, **{name: _nullable(matrix[:, j]) for j, name in enumerate(names)}},
                {**id_schema, **dict.fromkeys(names, pl.Float64)})

    labels = _label_columns(mids, recv, settings)
    write_table(out / "labels.parquet",
                {"timestamp": timestamps, "update_id": update_ids,
                 **{k: _nullable(v, pl.Float64 if k.startswith("label_") else pl.Int8) for k, v in labels.items()}},
                {"timestamp": pl.Int64, "update_id": pl.Int64,
                 **{k: (pl.Float64 if k.startswith("label_") else pl.Int8) for k in labels}})

    raw = matrix[:, [names.index(c) for c in RAW_COLUMNS]]
    padded = np.vstack([np.full((settings.window - 1, raw.shape[1]), np.nan), raw])
    windows = np.lib.stride_tricks.sliding_window_view(padded, settings.window, axis=0)  # [n, 40, window]
    lob_shape = (len(rows), settings.window, raw.shape[1])
    write_tensor(out / "lob.npy", lob_shape, lambda a, b: windows[a:b].transpose(0, 2, 1))

    bins = settings.features.heatmap_bins
    heat_shape = (len(rows), settings.stack_size, bins, 2)
    stack = settings.stack_size

    def heat(a: int, b: int) -> np.ndarray:
        block = np.full((b - a, stack, bins, 2), np.nan, dtype=np.float32)
        for i in range(a, b):
            held = images_before[i]
            if held >= stack:
                block[i - a] = np.stack(kept_images[held - stack:held])
        return block

    write_tensor(out / "heatmap.npy", heat_shape, heat)

    meta = {
        "inputs": inputs,
        "venue": venue, "symbol": symbol, "start_ms": start_ms, "end_ms": end_ms,
        "settings": dataclasses.asdict(settings),
        "samples": len(rows),
        "columns": ["timestamp", "recv_ns", "update_id", *names],
        "label_columns": list(labels),
        "lob_columns": list(RAW_COLUMNS),
        "lob_shape": list(lob_shape), "lob_first_full_window": settings.window - 1,
        "heatmap_shape": list(heat_shape), "heatmap_first_full_stack": next(
            (i for i, held in enumerate(images_before) if held >= stack), None),
        "normalized": bool(settings.normalize_days),
        "code_version": code_version(),
    }
    write_json(out / "meta.json", meta)
    return meta


def _parse_time(text: str | None) -> int | None:
    if text is None:
        return None
    from datetime import datetime, timezone

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _build_from_storage(args: argparse.Namespace, settings: DatasetSettings) -> dict[str, Any]:
    from connectors.clickhouse_backend import open_backend
    from schemas.clickhouse import ClickHouseSettings

    storage = ClickHouseSettings()
    backend = open_backend(storage)
    try:
        return build_dataset_from_storage(backend, storage.database, venue=args.venue, symbol=args.symbol,
                                          out=args.out, settings=settings, start_ms=_parse_time(args.start),
                                          end_ms=_parse_time(args.end))
    finally:
        backend.close()


def _run_build(args: argparse.Namespace) -> int:
    settings = DatasetSettings(
        features=FeatureSettings(heatmap=True, every_updates=args.every_updates, interval_ms=args.interval_ms),
        alpha=args.alpha, smoothing_events=args.smoothing_events, smoothing_ms=args.smoothing_ms,
        normalize_days=args.normalize_days,
    )
    if args.sources == ["clickhouse"]:
        meta = _build_from_storage(args, settings)
    else:
        meta = build_dataset([Path(p) for p in args.sources], venue=args.venue, symbol=args.symbol, out=args.out,
                             settings=settings, start_ms=_parse_time(args.start), end_ms=_parse_time(args.end))
    print(f"{args.out}: {meta['samples']} samples, {len(meta['columns'])} columns, lob {meta['lob_shape']}, "
          f"heatmap {meta['heatmap_shape']}")
    return 0


def add_dataset_command(commands: Any) -> None:
    """`marketprism dataset build ...` (called by flows.cli)."""
    dataset = commands.add_parser("dataset", help="build training datasets")
    actions = dataset.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="features, labels and DeepLOB tensors of one book from recordings "
                                             "or from storage")
    build.add_argument("--from", dest="sources", nargs="+", required=True, metavar="RECORDING|clickhouse",
                       help="recordings, or `clickhouse`: the stored book (MARKETPRISM_CLICKHOUSE_*; "
                            "chDB under data/clickhouse by default)")
    build.add_argument("--venue", required=True)
    build.add_argument("--symbol", required=True)
    build.add_argument("--start", help="ISO-8601, inclusive (exchange time)")
    build.add_argument("--end", help="ISO-8601, exclusive")
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--every-updates", type=int, default=1, help="a sample every N updates (default 1)")
    build.add_argument("--interval-ms", type=int, help="and/or a sample every this much receive time")
    build.add_argument("--alpha", type=float, default=2e-6, help="up/down threshold of the labels (relative)")
    build.add_argument("--smoothing-events", type=int, help="smoothing window in events (default: the horizon)")
    build.add_argument("--smoothing-ms", type=int, help="smoothing window in ms (default: the horizon)")
    build.add_argument("--normalize-days", type=int, help="z-score with the previous N days' statistics")
    build.set_defaults(run=_run_build)
