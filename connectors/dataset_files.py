"""Writing a training dataset's files: Parquet tables, .npy tensors and the meta JSON.

Every writer gives the same bytes for the same input (no timestamps, fixed compression,
sorted JSON keys), so a dataset can be checked by its hash. `.npy` tensors are written
through a memory map in chunks, so a large tensor never has to be held twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

CHUNK_ROWS = 4096


def write_table(path: Path, columns: dict[str, Any], schema: dict[str, Any]) -> None:
    """A Parquet file (zstd) of `columns`, in the given order and types."""
    pl.DataFrame(columns, schema=schema).write_parquet(path, compression="zstd", statistics=True)


def write_tensor(path: Path, shape: tuple[int, ...], fill: Callable[[int, int], np.ndarray]) -> None:
    """A float32 .npy of `shape`, rows [start, stop) produced by `fill(start, stop)`."""
    tensor = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    for start in range(0, shape[0], CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, shape[0])
        tensor[start:stop] = fill(start, stop)
    tensor.flush()
    del tensor


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def file_digest(path: Path) -> str:
    """sha256 of a file, to name an input in meta.json."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
