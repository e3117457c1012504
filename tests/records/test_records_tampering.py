"""Tampering with a sealed record as an adversarial reviewer would: every case fails `verify`
with the right cause, and `resume` never touches a record that was sealed."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from records_helpers import StepClock, batch_info

from cellauto.errors import RecordStateError
from cellauto.records import RecordWriter, verify
from cellauto.records.layout import Manifest
from cellauto.records.tables import file_schema
from cellauto.schema import GENESIS_HASH


def _digests(path: Path) -> dict[str, str]:
    return {
        str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(path.rglob("*"))
        if f.is_file() and f.name != "manifest.json"
    }


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    file = path / "manifest.json"
    os.chmod(file, 0o644)
    raw = json.loads(file.read_text())
    change(raw)
    file.write_text(json.dumps(raw))


def _flip_open(raw: dict[str, Any]) -> None:
    raw["state"] = "open"


def _flip_open_and_clear(raw: dict[str, Any]) -> None:
    raw["state"] = "open"
    for key in ("seal_reason", "sealed_at", "chain_head", "time_start", "time_end"):
        raw[key] = None
    raw["tables"], raw["row_counts"] = {}, {}


def _drop_state(raw: dict[str, Any]) -> None:
    del raw["state"]
    raw["tables"] = {}


@pytest.mark.parametrize("change", [_flip_open, _flip_open_and_clear, _drop_state])
def test_resume_refuses_a_sealed_record_however_its_manifest_is_edited(
    make_record: Callable[..., Path], change: Callable[[dict[str, Any]], None]
) -> None:
    path = make_record()
    before = _digests(path)
    _edit(path, change)
    with pytest.raises(RecordStateError, match="says open, but the record was sealed"):
        RecordWriter.resume(path)
    assert _digests(path) == before
    report = verify(path)
    assert report.problems[0].startswith(
        "manifest.json: state is 'open', but the record was sealed"
    )


def test_resume_refuses_a_seal_interrupted_after_its_entry(tmp_path: Path) -> None:
    path = tmp_path / "b"
    writer = RecordWriter.create(path, batch_info(), clock=StepClock(), flush_interval=None)
    writer.audit("alice", "record_sealed", "batch:B-0001", value={"tables": {}})
    writer.abandon()
    before = _digests(path)
    with pytest.raises(RecordStateError, match="holds record_sealed at seq 1"):
        RecordWriter.resume(path)
    assert _digests(path) == before


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("seal_reason", "complete: completed"),
        ("created", "2020-01-01T00:00:00Z"),
        ("sealed_at", "2030-01-01T00:00:00Z"),
        ("time_start", "2020-01-01T00:00:00Z"),
        ("time_end", "2030-01-01T00:00:00Z"),
        ("row_counts", {"samples": 1, "events": 3, "audit": 5, "results": 1}),
        ("cellauto_version", "9.9.9"),
    ],
)
def test_every_sealed_manifest_field_is_checked(
    make_record: Callable[..., Path], key: str, value: Any
) -> None:
    path = make_record()
    _edit(path, lambda raw: raw.__setitem__(key, value))
    problems = verify(path).problems
    assert problems[0].startswith(f"manifest.json: {key} is ")
    assert problems[0].endswith("(the manifest was edited after the seal)")


def test_a_relabelled_batch_status_is_found(make_record: Callable[..., Path]) -> None:
    path = make_record()
    _edit(path, lambda raw: raw["batch"].__setitem__("status", "complete"))
    assert verify(path).problems == [
        "manifest.json: batch info differs from the sealed copy in the audit"
    ]


def test_an_edited_table_digest_is_found(make_record: Callable[..., Path]) -> None:
    path = make_record()
    _edit(path, lambda raw: raw["tables"]["samples"].__setitem__("sha256", "0" * 64))
    assert verify(path).problems[0].startswith("manifest.json: tables.samples is ")


def test_a_table_redirected_in_the_manifest_is_named(make_record: Callable[..., Path]) -> None:
    path = make_record()
    _edit(path, lambda raw: raw["tables"]["samples"].__setitem__("file", "events.arrow"))
    problem = verify(path).problems[0]
    assert problem.startswith("manifest.json: tables.samples is ")
    assert "redirected" in problem


def test_a_table_file_replaced_by_a_symlink_is_named(
    make_record: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_record()
    elsewhere = tmp_path / "elsewhere.arrow"
    (path / "samples.arrow").rename(elsewhere)
    (path / "samples.arrow").symlink_to(elsewhere)
    assert verify(path).problems[0].startswith("samples.arrow: a symbolic link to ")


def test_audit_bytes_changed_outside_its_rows_are_a_problem(
    make_record: Callable[..., Path],
) -> None:
    path = make_record()
    file = path / "audit.arrow"
    table = pa.ipc.open_file(pa.memory_map(str(file))).read_all()
    os.chmod(file, 0o644)
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_file(str(file), table.schema, options=options) as out:
        out.write_table(table)
    assert verify(path).problems == [
        "audit.arrow: bytes changed since the seal (SHA-256 differs from the manifest), "
        "although every entry still chains"
    ]


def test_a_sealed_chain_that_does_not_start_with_record_created_is_broken(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b"
    writer = RecordWriter.create(path, batch_info(), clock=StepClock(), flush_interval=None)
    writer.abandon()
    for file in (path / "audit").iterdir():
        file.unlink()  # what the old resume left: an emptied trail, continued from nothing
    manifest = Manifest.model_validate_json((path / "manifest.json").read_text())
    resumed = RecordWriter(
        path,
        manifest,
        segment=2,
        entries_seq=0,
        head=GENESIS_HASH,
        channels={},
        channel_units={},
        flush_rows=10,
        flush_interval=None,
        durable=False,
        clock=StepClock(),
    )
    resumed.audit("cellauto", "record_resumed", "batch:B-0001")
    resumed.close()
    report = verify(path)
    assert report.problems == [
        "audit entry #0 is record_resumed, not record_created (the start of the trail was "
        "removed or replaced)"
    ]


def test_a_segment_damaged_in_the_middle_is_not_called_a_torn_write(tmp_path: Path) -> None:
    path = tmp_path / "b"
    writer = RecordWriter.create(path, batch_info(), clock=StepClock(), flush_interval=None)
    segment = path / "audit" / "segment-000001.arrows"
    first = segment.stat().st_size
    for i in range(16):
        writer.audit("alice", "note", "batch", value=i)
    writer.abandon()
    data = bytearray(segment.read_bytes())
    data[first : first + 8] = b"\0" * 8  # the second entry's message header
    segment.write_bytes(bytes(data))
    report = verify(path)
    assert report.problems[0].startswith(
        "audit/segment-000001.arrows: damaged, not a torn last write: 16 complete record "
        "batches after the damaged bytes cannot be read"
    )
    assert not any("torn last write (crash)" in note for note in report.notes)


def _rows(path: Path) -> list[dict[str, Any]]:
    return pa.ipc.open_file(pa.memory_map(str(path / "audit.arrow"))).read_all().to_pylist()


def test_tampering_keeps_file_schema(make_record: Callable[..., Path]) -> None:
    path = make_record()
    assert pa.Table.from_pylist(_rows(path), schema=file_schema("audit")).num_rows == 6
