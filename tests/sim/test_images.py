"""Synthetic microscopy images: the covered fraction measured from the PNG is the one asked
for; deterministic per seed; metadata travels in the PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cellauto.errors import SimulationError
from cellauto.sim.images import THRESHOLD, covered_fraction, render_confluence


@pytest.mark.parametrize("confluence", [0.0, 0.02, 0.25, 0.5, 0.8, 0.97, 1.0])
def test_the_image_shows_the_confluence_asked_for(confluence: float) -> None:
    image = render_confluence(confluence, seed=7, size=96)
    measured = covered_fraction(image.png)
    assert abs(measured - confluence) <= 1 / 96**2
    assert image.confluence == measured


def test_same_seed_same_bytes_other_seed_other_cells() -> None:
    first = render_confluence(0.4, seed=1, size=64)
    assert render_confluence(0.4, seed=1, size=64).png == first.png
    assert render_confluence(0.4, seed=2, size=64).png != first.png
    assert len(first.sha256) == 64


def test_growth_with_one_seed_only_adds_cells() -> None:
    def mask(confluence: float) -> np.ndarray:
        png = render_confluence(confluence, seed=5, size=64).png
        return np.asarray(Image.open(io.BytesIO(png))) < THRESHOLD

    early, late = mask(0.3), mask(0.6)
    assert (late | early).sum() == late.sum()


def test_metadata_is_returned_and_stored_in_the_png() -> None:
    image = render_confluence(0.5, seed=3, size=32, metadata={"vessel": 4, "run": "R-1"})
    assert image.metadata["vessel"] == 4
    assert image.metadata["seed"] == 3
    with Image.open(io.BytesIO(image.png)) as png:
        assert png.format == "PNG"
        assert png.size == (32, 32)
        assert png.text["vessel"] == "4"  # type: ignore[attr-defined]
        assert png.text["confluence"] == "0.5"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("confluence", "size"), [(1.5, 32), (-0.1, 32), (float("nan"), 32), (0.5, 4)]
)
def test_impossible_requests_are_simulation_errors(confluence: float, size: int) -> None:
    with pytest.raises(SimulationError):
        render_confluence(confluence, seed=0, size=size)
