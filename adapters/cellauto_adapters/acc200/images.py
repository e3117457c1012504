"""The image share as the adapter sees it: each image the microscope wrote (a PNG with a JSON
metadata file of the same name, protocol section 8) becomes a result file with its SHA-256,
checked against the metadata.

The share is watched with watchfiles (the operating system's file notifications), so files are
known as they land; an ``image`` event or the end of a run collects a vessel's or a run's
folder at once, so a result never waits on the watcher and nothing it has not reported yet is
missed.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        self.watched: dict[Path, ResultFile] = {}
        """Images the watcher reported, by metadata file."""
        self._collected: set[Path] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> bool:
        """Watch the share (False if watchfiles is not installed or the share is missing)."""
        try:
            from watchfiles import awatch
        except ImportError:
            _log.info("watchfiles is not installed: images are collected on image events only")
            return False
        if not self.root.is_dir():
            _log.warning("image share %s is not a folder here: give share=<local path>", self.root)
            return False

        async def watch() -> None:
            async for changes in awatch(self.root, stop_event=self._stop, recursive=True):
                for _change, name in sorted(changes, key=lambda c: c[1]):
                    self._arrived(Path(name))

        self._watcher = asyncio.create_task(watch(), name=f"watch {self.root}")
        return True

    def _arrived(self, path: Path) -> None:
        if path.suffix == ".json" and path not in self.watched and path.is_file():
            image = self.result_file(path)
            if image is not None:
                self.watched[path] = image

    async def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    def collect(self, run_id: int, vessel: int | None = None) -> list[ResultFile]:
        """Images of run `run_id` (of one `vessel`, or all) not collected yet, in image order."""
        folder = self.root / f"run-{run_id}"
        pattern = f"vessel-{vessel}/image-*.json" if vessel else "vessel-*/image-*.json"
        found = []
        for meta in sorted(folder.glob(pattern), key=_number):
            if meta in self._collected:
                continue
            image = self.watched.get(meta) or self.result_file(meta)
            if image is not None:
                self._collected.add(meta)
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
