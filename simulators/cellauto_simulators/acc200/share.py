"""The image share: the microscope writes each image as a PNG with a JSON metadata file of the
same name (``<share>/run-<run>/vessel-<i>/image-<n>.png`` and ``.json``, protocol section 8)."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

from cellauto.sim.images import render_confluence

IMAGE_SIZE = 64  # px: small, synthetic


def image_path(share: Path, run_id: int, vessel: int, number: int) -> Path:
    """Where image `number` of `vessel` in run `run_id` goes."""
    return share / f"run-{run_id}" / f"vessel-{vessel}" / f"image-{number}.png"


def write_image(
    share: Path,
    *,
    run_id: int,
    vessel: int,
    number: int,
    confluency: float,
    time: datetime,
    seed: int,
) -> Path:
    """Render and write one image and its metadata (metadata last, so a watcher that sees the
    JSON finds the PNG complete); returns the PNG's path."""
    png = image_path(share, run_id, vessel, number)
    png.parent.mkdir(parents=True, exist_ok=True)
    meta = {"run": run_id, "vessel": vessel, "image": number, "time": time.isoformat()}
    image = render_confluence(
        min(1.0, max(0.0, confluency)),
        seed=seed * 1000 + vessel,
        size=IMAGE_SIZE,
        metadata=meta,
    )
    _write(png, image.png)
    record = meta | {
        "confluency": round(100 * image.confluence, 3),
        "unit": "%",
        "sha256": hashlib.sha256(image.png).hexdigest(),
        "file": png.name,
    }
    _write(png.with_suffix(".json"), json.dumps(record, sort_keys=True).encode())
    return png


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(data)
    os.replace(partial, path)
