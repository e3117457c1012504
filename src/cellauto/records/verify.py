"""verify(): walk a record's audit chain, table digests and file hashes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellauto.errors import RecordError
from cellauto.records.audit import chain_head, first_break, table_entries
from cellauto.records.layout import FILES_DIR, sha256_file
from cellauto.records.reader import BatchRecord
from cellauto.records.tables import TABLES


@dataclass
class VerifyReport:
    """What `verify` found. `problems` are in the order found; the first names the first break."""

    path: Path
    batch_id: str
    sealed: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        """True if nothing was found changed, removed or reordered."""
        return not self.problems

    @property
    def status(self) -> str:
        """One line: sealed and intact, unsealed but intact, or the first problem."""
        if self.problems:
            return f"BROKEN: {self.problems[0]}"
        return "sealed and intact" if self.sealed else "unsealed but intact"


def verify(path: str | os.PathLike[str]) -> VerifyReport:
    """Check a record; never raises for tampering (see the report), only for a non-record."""
    record = BatchRecord(Path(path))
    report = VerifyReport(record.path, record.batch_id, record.sealed)
    manifest = record.manifest
    try:
        entries = table_entries(record.audit)
    except (RecordError, ValueError) as exc:
        report.problems.append(f"audit table unreadable: {exc}")
        return report
    for name in TABLES:
        try:
            report.rows[name] = record.table(name).num_rows
        except RecordError as exc:
            report.problems.append(str(exc))
    broken = first_break(entries)
    if broken is not None:
        report.problems.append(broken[1])
    report.notes += [f"{seg}: torn last write (crash); read up to it" for seg in record.torn]

    if manifest.sealed:
        _check_sealed(record, entries, report)
    elif not entries:
        report.problems.append("audit trail is empty (record_created entry missing)")
    elif entries[0].action != "record_created":
        report.problems.append("audit entry #0 is not record_created (start of the trail removed)")
    _check_files(record, entries, report)
    return report


def _check_sealed(record: BatchRecord, entries: list[Any], report: VerifyReport) -> None:
    manifest = record.manifest
    head = chain_head(entries)
    if manifest.chain_head != head:
        report.problems.append(
            f"audit trail ends at {head[:12]}..., the manifest's chain head is "
            f"{str(manifest.chain_head)[:12]}... (entries removed after the seal, or the "
            "manifest changed)"
        )
    seals = [e for e in entries if e.action == "record_sealed"]
    if not seals:
        report.problems.append("no record_sealed entry in the audit trail")
        return
    seal = seals[-1].value
    tables = seal.get("tables") if isinstance(seal, dict) else None
    if not isinstance(seal, dict) or not isinstance(tables, dict):
        report.problems.append("the record_sealed entry has no table digests")
        return
    for name in ("samples", "events", "results"):
        expected = tables.get(name)
        file = record.path / f"{name}.arrow"
        if not isinstance(expected, dict) or not file.is_file():
            report.problems.append(f"{name}.arrow: missing")
            continue
        if sha256_file(file) != expected.get("sha256"):
            report.problems.append(f"{name}.arrow: changed since the seal (SHA-256 mismatch)")
        elif report.rows.get(name) != expected.get("rows"):
            report.problems.append(f"{name}.arrow: row count differs from the seal entry")
    audit_file = manifest.tables.get("audit")
    if audit_file is not None and sha256_file(record.path / audit_file.file) != audit_file.sha256:
        report.notes.append("audit.arrow bytes differ from the manifest digest")
    if seal.get("batch") != manifest.batch.model_dump(mode="json"):
        report.problems.append(
            "manifest.json: batch info differs from the sealed copy in the audit"
        )
    devices = [d.model_dump(mode="json") for d in manifest.devices]
    if seal.get("devices") != devices:
        report.problems.append("manifest.json: devices differ from the sealed copy in the audit")


def _check_files(record: BatchRecord, entries: list[Any], report: VerifyReport) -> None:
    expected: dict[str, str] = {}
    for entry in entries:
        if entry.action == "file_added" and isinstance(entry.value, dict):
            expected[entry.object] = str(entry.value.get("sha256"))
    for name, digest in expected.items():
        file = record.path / name
        if not file.is_file():
            report.problems.append(f"{name}: removed (recorded in the audit trail)")
        elif sha256_file(file) != digest:
            report.problems.append(f"{name}: changed (SHA-256 differs from the audit trail)")
    folder = record.path / FILES_DIR
    if folder.is_dir():
        for file in sorted(folder.rglob("*")):
            name = file.relative_to(record.path).as_posix()
            if file.is_file() and name not in expected:
                report.problems.append(f"{name}: not in the audit trail (added outside cellauto)")
