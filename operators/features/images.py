"""Book images: the plan's depth x 2 image, its price-bin heatmap, and the snapshot stack."""

from __future__ import annotations

from collections import deque

import numpy as np

from operators.features.arrays import BookArrays


def depth_image(book: BookArrays, depth: int = 50) -> np.ndarray:
    """[depth, 2]: level sizes (column 0 bids, 1 asks) best first, divided by the largest."""
    image = np.zeros((depth, 2))
    bids, asks = book.bid_sizes[:depth], book.ask_sizes[:depth]
    image[: len(bids), 0] = bids
    image[: len(asks), 1] = asks
    peak = image.max()
    return image / peak if peak > 0 else image


def price_heatmap(book: BookArrays, *, bins: int = 200, levels: int = 100, half_range_bps: float = 10.0) -> np.ndarray:
    """[bins, 2]: size of the best `levels` per side summed into `bins` price points evenly
    spread over mid +- `half_range_bps` (nearest point; levels outside are left out).

    The plan assigned each level to its bin with `=`; summing keeps every level's size
    when two fall into one bin.
    """
    mid = book.mid()
    low, high = mid * (1 - half_range_bps / 1e4), mid * (1 + half_range_bps / 1e4)
    step = (high - low) / (bins - 1)
    heatmap = np.zeros((bins, 2))
    for column, prices, sizes in ((0, book.bid_prices[:levels], book.bid_sizes[:levels]),
                                  (1, book.ask_prices[:levels], book.ask_sizes[:levels])):
        index = np.rint((prices - low) / step).astype(np.int64)
        inside = (index >= 0) & (index < bins)
        np.add.at(heatmap[:, column], index[inside], sizes[inside])
    return heatmap


class OrderBookSnapshotStack:
    """The plan's stacker: the last `stack_size` images taken at least `update_interval` s apart."""

    def __init__(self, stack_size: int = 10, update_interval: float = 1.0) -> None:
        self.stack_size = stack_size
        self.update_interval = update_interval
        self.snapshots: deque[np.ndarray] = deque(maxlen=stack_size)
        self._last_ns: int | None = None

    def add_snapshot(self, image: np.ndarray, timestamp_ns: int) -> bool:
        """Keep `image` if the interval has passed since the last kept one; True if kept."""
        if self._last_ns is not None and timestamp_ns - self._last_ns < self.update_interval * 1e9:
            return False
        self.snapshots.append(image)
        self._last_ns = timestamp_ns
        return True

    def get_stacked_tensor(self) -> np.ndarray | None:
        """[time, bins, 2], oldest first, once `stack_size` images are held (None before)."""
        if len(self.snapshots) < self.stack_size:
            return None
        return np.stack(self.snapshots, axis=0)
