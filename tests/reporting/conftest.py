"""Fixtures of the report tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from report_records import build

from cellauto.records import RecordWriter


@pytest.fixture
def make_record(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Build a report test record (sealed unless seal=False); returns its folder."""
    open_writers: list[RecordWriter] = []

    def make(name: str = "B-0001", **options: object) -> Path:
        path = tmp_path / name
        writer = build(path, **options)  # type: ignore[arg-type]
        if not options.get("seal", True):
            open_writers.append(writer)
        return path

    yield make
    for writer in open_writers:
        writer.abandon()
