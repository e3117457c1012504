"""Synthetic microscopy images for simulators: a small grayscale PNG in which cells (dark blobs
on a light background) cover a given fraction of the field, deterministic per seed.

Cells are Gaussian bumps at seeded random centres; their summed field is thresholded at the
quantile that leaves exactly the wanted fraction covered, so blobs merge into colonies and then
into a sheet as confluence rises. Needs the ``images`` extra (Pillow and NumPy).
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from typing import Any

from cellauto.errors import SimulationError

__all__ = ["CELL_LEVEL", "THRESHOLD", "SyntheticImage", "covered_fraction", "render_confluence"]

BACKGROUND_LEVEL = 200
CELL_LEVEL = 80
THRESHOLD = (BACKGROUND_LEVEL + CELL_LEVEL) // 2
"""Gray level separating cells (darker) from background (lighter) in the rendered images."""


@dataclass(frozen=True)
class SyntheticImage:
    """A rendered image: PNG bytes, the exact covered fraction and metadata (also stored in the
    PNG's text chunks)."""

    png: bytes
    confluence: float
    metadata: dict[str, Any]

    @property
    def sha256(self) -> str:
        """SHA-256 of the PNG bytes (hex)."""
        return hashlib.sha256(self.png).hexdigest()


def _libraries() -> tuple[Any, Any]:
    try:
        import numpy
        from PIL import Image
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise SimulationError(
            "synthetic images need Pillow and NumPy: pip install 'cellauto[images]'"
        ) from None
    return numpy, Image


def render_confluence(
    confluence: float,
    *,
    seed: int,
    size: int = 128,
    cell_radius: float = 5.0,
    metadata: dict[str, Any] | None = None,
) -> SyntheticImage:
    """A `size` x `size` PNG with cells covering `confluence` (0..1) of the field.

    The same arguments always give the same bytes, and with one seed a higher confluence covers
    a superset of a lower one's pixels, so a vessel imaged with a fixed seed grows smoothly.
    `metadata` (JSON-ready values) is stored in the PNG's text chunks and returned with the
    confluence, seed and size added.
    """
    if not 0.0 <= confluence <= 1.0 or math.isnan(confluence):
        raise SimulationError(f"confluence must lie in 0..1, got {confluence!r}")
    if not 8 <= size <= 2048:
        raise SimulationError(f"image size must lie in 8..2048 px, got {size}")
    np, image_module = _libraries()
    rng = np.random.default_rng(seed)
    field = _cell_field(np, rng, size, cell_radius)
    covered = _cover(np, field, confluence)
    texture = rng.normal(0.0, 6.0, (size, size))
    pixels = np.where(covered, CELL_LEVEL + texture, BACKGROUND_LEVEL + texture)
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    # keep texture from crossing the threshold, so the image shows exactly `covered`
    pixels = np.where(covered, np.minimum(pixels, THRESHOLD - 1), np.maximum(pixels, THRESHOLD))
    fraction = float(covered.mean())
    info = dict(metadata or {}) | {
        "confluence": round(fraction, 6),
        "seed": seed,
        "size": size,
        "generator": "cellauto.sim.images",
    }
    png = _encode_png(image_module, pixels.astype(np.uint8), info)
    return SyntheticImage(png, fraction, info)


def _cell_field(np: Any, rng: Any, size: int, radius: float) -> Any:
    """Sum of Gaussian bumps (one per cell) on a torus, so edges are not special."""
    cells = max(1, int(3 * size * size / (math.pi * radius * radius)))
    centres = rng.integers(0, size, (cells, 2))
    heights = rng.uniform(0.6, 1.4, cells)
    counts = np.zeros((size, size))
    np.add.at(counts, (centres[:, 0], centres[:, 1]), heights)
    axis = np.minimum(np.arange(size), size - np.arange(size))
    kernel = np.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * radius * radius))
    spectrum = np.fft.rfft2(counts) * np.fft.rfft2(kernel)
    return np.fft.irfft2(spectrum, s=(size, size))


def _cover(np: Any, field: Any, confluence: float) -> Any:
    """The `confluence` fraction of pixels with the highest field values (ties by position)."""
    flat = field.ravel()
    wanted = round(confluence * flat.size)
    covered = np.zeros(flat.size, dtype=bool)
    if wanted:
        covered[np.argsort(-flat, kind="stable")[:wanted]] = True
    return covered.reshape(field.shape)


def _encode_png(image_module: Any, pixels: Any, info: dict[str, Any]) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    for key, value in info.items():
        text.add_text(str(key), str(value))
    buffer = io.BytesIO()
    image_module.fromarray(pixels).save(buffer, format="PNG", pnginfo=text, optimize=False)
    return buffer.getvalue()


def covered_fraction(png: bytes) -> float:
    """The fraction of pixels darker than `THRESHOLD` in a PNG: the confluence it shows."""
    np, image_module = _libraries()
    with image_module.open(io.BytesIO(png)) as image:
        pixels = np.asarray(image.convert("L"))
    return float((pixels < THRESHOLD).mean())
