"""Fixtures of the batch-record tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from records_helpers import StepClock, batch_info, fill

from cellauto.records import RecordWriter


@pytest.fixture
def make_record(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Build a filled record; sealed unless seal=False. Returns its folder."""
    open_writers: list[RecordWriter] = []

    def build(
        name: str = "B-0001", *, seal: bool = True, samples: int = 20, batch_id: str = ""
    ) -> Path:
        path = tmp_path / name
        writer = RecordWriter.create(
            path,
            batch_info(batch_id or name),
            clock=StepClock(),
            devices=[{"device_id": "cocoon-1", "kind": "cocoon", "profile_version": "0.1"}],
        )
        fill(writer, samples=samples)
        if seal:
            writer.close()
            for file in path.rglob("*"):  # a tamperer with write access starts with chmod
                file.chmod(0o755 if file.is_dir() else 0o644)
        else:
            writer.flush()
            open_writers.append(writer)
        return path

    yield build
    for writer in open_writers:
        writer.abandon()
