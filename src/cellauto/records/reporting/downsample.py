"""Envelope-preserving reduction of a long series for drawing: min and max per bucket.

A plot a few hundred pixels wide cannot show more than a few points per pixel column. Keeping,
for each of `buckets` equal-count buckets, the point with the smallest and the point with the
largest value (in time order) draws the same envelope as the full series: no spike or dip is
lost, which averaging or taking every n-th point would do.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def minmax_indices(values: npt.NDArray[np.float64], buckets: int) -> npt.NDArray[np.int64]:
    """Indices (sorted, unique) of the points to draw: the first and last point and each
    bucket's minimum and maximum. Short series (at most ``2 * buckets`` points) are kept whole.
    `values` must hold no NaN."""
    n = len(values)
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    if n <= 2 * buckets:
        return np.arange(n, dtype=np.int64)
    size = -(-n // buckets)  # ceil: every bucket but the last holds `size` points
    rows = -(-n // size)
    padded = np.pad(values, (0, rows * size - n), mode="edge").reshape(rows, size)
    base = np.arange(rows, dtype=np.int64) * size
    low = base + np.argmin(padded, axis=1)
    high = base + np.argmax(padded, axis=1)
    keep = np.concatenate((low, high, np.array([0, n - 1], dtype=np.int64)))
    return np.unique(np.minimum(keep, n - 1))


def reduce_series(
    times: npt.NDArray[np.int64], values: npt.NDArray[np.float64], buckets: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """`times` and `values` (same length, in time order) reduced to their min/max envelope."""
    keep = minmax_indices(values, buckets)
    return times[keep], values[keep]
