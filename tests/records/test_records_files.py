"""A record's files: created exclusively (never through a planted symlink), with explicit modes
whatever the umask, read-only once sealed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from records_helpers import StepClock, batch_info, fill

from cellauto.errors import RecordStateError
from cellauto.records import RecordWriter, verify


def test_a_planted_temporary_symlink_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    path = tmp_path / "b"
    writer = RecordWriter.create(path, batch_info(), clock=StepClock(), flush_interval=None)
    fill(writer)
    for name in ("samples", "events", "results", "audit"):
        (path / f"{name}.arrow.tmp").symlink_to(victim)
    (path / "manifest.json.tmp").symlink_to(victim)
    writer.close()
    assert victim.read_bytes() == b"precious"
    assert verify(path).status == "sealed and intact"


def test_a_file_name_taken_by_a_symlink_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    path = tmp_path / "b"
    writer = RecordWriter.create(path, batch_info(), clock=StepClock(), flush_interval=None)
    (path / "files" / "report.txt").symlink_to(victim)
    with pytest.raises(RecordStateError, match="files are never replaced"):
        writer.add_file(b"x", "report.txt", mime_type="text/plain")
    writer.abandon()
    assert victim.read_bytes() == b"precious"


def test_modes_are_explicit_whatever_the_umask_and_read_only_once_sealed(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "b"
        writer = RecordWriter.create(path, batch_info(), clock=StepClock(), flush_interval=None)
        fill(writer)
        writer.flush()
        for file in path.rglob("*"):
            assert not file.stat().st_mode & stat.S_IWOTH, file
            assert not file.stat().st_mode & stat.S_IWGRP, file
        writer.close()
    finally:
        os.umask(old)
    for file in path.rglob("*"):
        mode = stat.S_IMODE(file.stat().st_mode)
        if file.is_file():
            assert mode == 0o444, (file, oct(mode))
        else:
            assert not mode & (stat.S_IWOTH | stat.S_IWGRP), (file, oct(mode))
