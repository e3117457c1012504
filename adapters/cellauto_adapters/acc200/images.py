"""The image share as the adapter sees it: each image the microscope wrote (a PNG with a JSON
metadata file of the same name, protocol section 8) becomes a result file with its SHA-256,
checked against the metadata."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from cellauto.schema.programs import ResultFile

_log = logging.getLogger("cellauto_adapters.acc200")


class ImageShare:
    """Images under `root` (``run-<run>/vessel-<i>/image-<n>.png`` + ``.json``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._seen: set[Path] = set()

    def forget(self) -> None:
        """A new run: images already collected are not collected again anyway."""

    def new_images(self, run_id: int, vessel: int) -> list[ResultFile]:
        """Images of `vessel` in run `run_id` not collected yet, oldest first."""
        folder = self.root / f"run-{run_id}" / f"vessel-{vessel}"
        found = []
        for meta in sorted(folder.glob("image-*.json"), key=_number):
            if meta in self._seen:
                continue
            image = self.result_file(meta)
            if image is not None:
                self._seen.add(meta)
                found.append(image)
        return found

    def result_file(self, meta: Path) -> ResultFile | None:
        """The result file of one image, or None if its PNG does not match its metadata."""
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
            png = meta.with_name(str(record["file"]))
            digest = hashlib.sha256(png.read_bytes()).hexdigest()
        except (OSError, ValueError, KeyError) as exc:
            _log.warning("image share: cannot read %s: %s", meta, exc)
            return None
        if digest != record.get("sha256"):
            _log.warning("image share: %s does not match the SHA-256 of its metadata", png)
            return None
        return ResultFile(
            name=f"run{record['run']}-vessel{record['vessel']}-{png.name}",
            mime_type="image/png",
            path=png.resolve().as_uri(),
            sha256=digest,
        )


def _number(path: Path) -> int:
    digits = path.stem.rpartition("-")[2]
    return int(digits) if digits.isdigit() else 0
