"""The min/max reduction keeps every bucket's extremes, in time order, and short series whole."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cellauto.records.reporting.downsample import minmax_indices, reduce_series

finite = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)


@given(arrays(np.float64, st.integers(1, 3000), elements=finite), st.integers(1, 200))
def test_every_bucket_keeps_its_extremes(values: np.ndarray, buckets: int) -> None:
    keep = minmax_indices(values, buckets)
    assert np.all(np.diff(keep) > 0), "sorted, no duplicates"
    assert keep[0] == 0
    assert keep[-1] == len(values) - 1
    if len(values) <= 2 * buckets:
        assert len(keep) == len(values)
        return
    assert len(keep) <= 2 * buckets + 2
    size = -(-len(values) // buckets)
    kept = set(keep.tolist())
    for start in range(0, len(values), size):
        bucket = values[start : start + size]
        assert any(values[i] == bucket.min() for i in kept if start <= i < start + size)
        assert any(values[i] == bucket.max() for i in kept if start <= i < start + size)


def test_a_single_spike_survives() -> None:
    values = np.full(100_000, 37.0)
    values[54_321] = 41.5
    times, drawn = reduce_series(np.arange(100_000, dtype=np.int64), values, 400)
    assert len(drawn) <= 802
    assert drawn.max() == 41.5
    assert times[drawn.argmax()] == 54_321


def test_buckets_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        minmax_indices(np.zeros(10), 0)
