"""Read a `marketprism dataset build` directory into numpy batches for training.

    python examples/train_loader.py DATASET_DIR [--label class_10] [--batch 64]

Yields (lob windows [batch, 100, 40], heatmap stacks [batch, T, bins, 2], labels [batch])
for the samples that have a full window, a full stack and a label, in time order (shuffle
in your trainer if you want to; keep train/test splits by time). Tensors are memory-mapped,
so a dataset larger than RAM still loads.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl


def usable_samples(dataset: Path, label: str) -> np.ndarray:
    """Indices of samples with a full lob window, a full heatmap stack and a non-null label."""
    meta = json.loads((dataset / "meta.json").read_text())
    labels = pl.read_parquet(dataset / "labels.parquet", columns=[label])[label]
    first = max(meta["lob_first_full_window"], meta["heatmap_first_full_stack"] or meta["samples"])
    index = np.arange(meta["samples"])
    return index[(index >= first) & labels.is_not_null().to_numpy()]


def batches(dataset: Path, label: str = "class_10", batch: int = 64) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    lob = np.load(dataset / "lob.npy", mmap_mode="r")
    heat = np.load(dataset / "heatmap.npy", mmap_mode="r")
    targets = pl.read_parquet(dataset / "labels.parquet", columns=[label])[label].to_numpy()
    index = usable_samples(dataset, label)
    for start in range(0, len(index), batch):
        rows = index[start : start + batch]
        yield np.asarray(lob[rows]), np.asarray(heat[rows]), targets[rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--label", default="class_10")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    count = 0
    for lob, heat, target in batches(args.dataset, args.label, args.batch):
        count += len(target)
    print(f"{count} samples: lob {lob.shape[1:]}, heatmap {heat.shape[1:]}, last batch labels {np.unique(target)}")


if __name__ == "__main__":
    main()
