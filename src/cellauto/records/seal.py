"""What the ``record_sealed`` audit entry seals, and how a manifest is checked against it.

The seal entry is the last entry of the sealed chain. Its value holds the seal reason, each data
table's file name, SHA-256 and row count, the batch header and devices, and every other field of
the manifest that the writer knows at that moment (`SEALED_FIELDS`). `verify` compares the
manifest with it field by field.

Fields of ``manifest.json`` the seal cannot hold, and how they are checked instead
(`INFORMATIONAL_FIELDS`):

- ``state``: implied by the seal entry itself (a chain that holds one is sealed);
- ``chain_head``: the hash of the seal entry, checked against the audit chain;
- ``tables.audit``: the audit file is written after the seal entry; each of its rows is
  hash-chained, and its SHA-256 is checked against the file;
- ``addenda``: signatures added after the seal, checked entry by entry (see `addenda`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from cellauto.errors import RecordError
from cellauto.records.audit import table_entries
from cellauto.records.layout import ADDENDA_DIR, ADDENDUM_RE, Manifest, TableFile
from cellauto.records.reader import read_table_file
from cellauto.schema import AuditEntry

SEAL_ACTION = "record_sealed"
CREATE_ACTION = "record_created"
CHECKPOINT_ACTION = "checkpoint"
"""Action of the entry that records each data table's rows and running digest before an
in-batch signature."""
SEALED_FIELDS = (
    "record_format",
    "schema_version",
    "cellauto_version",
    "created",
    "seal_reason",
    "sealed_at",
    "time_start",
    "time_end",
    "row_counts",
)
"""Manifest fields copied into the seal entry (besides ``batch``, ``devices`` and the data
tables' digests)."""
INFORMATIONAL_FIELDS = ("state", "chain_head", "tables.audit", "addenda")
DATA_TABLES = ("samples", "events", "results")


def seal_value(manifest: Manifest, tables: Mapping[str, TableFile]) -> JsonValue:
    """The value of the ``record_sealed`` entry for `manifest` as it is about to be sealed."""
    data = manifest.model_dump(mode="json")
    return {
        "reason": manifest.seal_reason,
        "tables": {n: t.model_dump(mode="json") for n, t in tables.items()},
        "batch": data["batch"],
        "devices": data["devices"],
        "manifest": {key: data[key] for key in SEALED_FIELDS},
    }


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def manifest_differences(manifest: Manifest, seal: Mapping[str, Any]) -> tuple[list[str], bool]:
    """Problems where `manifest` differs from what `seal` sealed, in manifest order, and whether
    the seal holds the manifest fields (False for records sealed in record format 1.0)."""
    data = manifest.model_dump(mode="json")
    problems: list[str] = []
    sealed_fields = seal.get("manifest")
    if isinstance(sealed_fields, dict):
        for key in SEALED_FIELDS:
            if key in sealed_fields and data.get(key) != sealed_fields[key]:
                problems.append(
                    f"manifest.json: {key} is {_show(data.get(key))}, the seal recorded "
                    f"{_show(sealed_fields[key])} (the manifest was edited after the seal)"
                )
    elif data.get("seal_reason") != seal.get("reason", data.get("seal_reason")):
        problems.append(
            f"manifest.json: seal_reason is {_show(data.get('seal_reason'))}, the seal recorded "
            f"{_show(seal.get('reason'))} (the manifest was edited after the seal)"
        )
    if seal.get("batch") != data["batch"]:
        problems.append("manifest.json: batch info differs from the sealed copy in the audit")
    if seal.get("devices") != data["devices"]:
        problems.append("manifest.json: devices differ from the sealed copy in the audit")
    tables = seal.get("tables")
    if isinstance(tables, dict):
        for name in DATA_TABLES:
            listed = data["tables"].get(name)
            if listed != tables.get(name):
                what = "missing" if listed is None else _show(listed)
                problems.append(
                    f"manifest.json: tables.{name} is {what}, the seal recorded "
                    f"{_show(tables.get(name))} (the table was redirected or its digest edited)"
                )
    return problems, isinstance(sealed_fields, dict)


def sealed_evidence(path: Path, manifest: Manifest, entries: Sequence[AuditEntry]) -> str | None:
    """Why a record whose manifest says ``open`` was in fact sealed, or None if nothing says so.

    `entries` are the audit entries of the open segments."""
    for entry in entries:
        if entry.action == SEAL_ACTION:
            return (
                f"its audit chain holds {SEAL_ACTION} at seq {entry.seq} (a seal interrupted "
                "after its entry was written, or manifest.json edited)"
            )
    written = [key for key in ("seal_reason", "sealed_at", "chain_head") if getattr(manifest, key)]
    written += [key for key in ("tables", "row_counts", "addenda") if getattr(manifest, key)]
    if written:
        return f"manifest.json holds {', '.join(written)}, which only sealing writes"
    audit_file = path / "audit.arrow"
    if audit_file.exists() or audit_file.is_symlink():
        try:
            seals = [
                e for e in table_entries(read_table_file(audit_file)) if e.action == SEAL_ACTION
            ]
        except (RecordError, ValueError):
            return "audit.arrow exists (it is written only by sealing) and cannot be read"
        if seals:
            return f"audit.arrow holds {SEAL_ACTION} at seq {seals[-1].seq}"
        return "audit.arrow exists (it is written only by sealing)"
    addenda = path / ADDENDA_DIR
    if addenda.is_dir() and any(ADDENDUM_RE.match(f.name) for f in addenda.iterdir()):
        return f"{ADDENDA_DIR}/ holds signatures, which are added only to a sealed record"
    return None
