"""verify(): walk a record's audit chain (with the addenda of a sealed record), table digests
and file hashes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellauto.errors import RecordError
from cellauto.records.anchor import check_anchor
from cellauto.records.audit import (
    SIGN_ACTION,
    SIGNED_SEALED,
    chain_head,
    first_break,
    table_entries,
)
from cellauto.records.keys import TrustStore
from cellauto.records.layout import (
    ADDENDA_DIR,
    ADDENDUM_RE,
    FILES_DIR,
    manifest_digest,
    sha256_file,
)
from cellauto.records.reader import BatchRecord, read_table_file
from cellauto.records.seal import (
    CREATE_ACTION,
    DATA_TABLES,
    SEAL_ACTION,
    manifest_differences,
    sealed_evidence,
)
from cellauto.records.signed import check_checkpoints, check_signatures
from cellauto.records.tables import TABLES
from cellauto.schema import AuditEntry

_SEALED_AUDIT = "audit.arrow"


@dataclass
class VerifyReport:
    """What `verify` found. `problems` are in the order found; the first names the first break."""

    path: Path
    batch_id: str
    sealed: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    signatures: list[str] = field(default_factory=list)
    """One line per electronic signature in the audit trail, in order."""

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


def verify(
    path: str | os.PathLike[str],
    *,
    trust: TrustStore | str | os.PathLike[str] | None = None,
    anchor: str | os.PathLike[str] | None = None,
) -> VerifyReport:
    """Check a record; never raises for tampering (see the report), only for a non-record.

    `trust` (a `TrustStore`, or the folder or file of one) checks that every signature was made
    by a key the site trusts and that has not been revoked; `anchor` checks the record against
    the latest head anchored for it in that file (see `anchor.anchor`).

    Problems are listed in the order checked: the manifest's state, the audit chain, the start
    of the chain, the manifest against the seal, the table files, the data checkpoints, the
    addenda, the files, the signatures, the anchor."""
    store = trust if isinstance(trust, TrustStore) or trust is None else TrustStore.load(trust)
    record = BatchRecord(Path(path))
    report = VerifyReport(record.path, record.batch_id, record.sealed)
    manifest = record.manifest
    if not manifest.sealed:
        try:
            open_entries = table_entries(record.audit)
        except (RecordError, ValueError) as exc:
            report.problems.append(f"audit segments unreadable: {exc}")
            return report
        evidence = sealed_evidence(record.path, manifest, open_entries)
        if evidence is not None:
            report.problems.append(
                f"manifest.json: state is 'open', but the record was sealed: {evidence}"
            )
            return report
    try:
        entries, origins = _audit(record, report)
    except (RecordError, ValueError) as exc:
        report.problems.append(f"audit table unreadable: {exc}")
        return report
    for segment, lost in record.damaged:
        report.problems.append(
            f"{segment}: damaged, not a torn last write: {lost} complete record batches after "
            "the damaged bytes cannot be read (data lost from the middle of the segment)"
        )
    broken = first_break(entries)
    if broken is not None:
        index, reason = broken
        where = origins[index] if index < len(origins) else _SEALED_AUDIT
        report.problems.append(reason if where == _SEALED_AUDIT else f"{reason} (in {where})")
    damaged = {segment for segment, _ in record.damaged}
    report.notes += [
        f"{seg}: torn last write (crash); read up to it"
        for seg in record.torn
        if seg not in damaged
    ]
    if not entries:
        report.problems.append("audit trail is empty (record_created entry missing)")
    elif entries[0].action != CREATE_ACTION:
        report.problems.append(
            f"audit entry #0 is {entries[0].action}, not {CREATE_ACTION} (the start of the trail "
            "was removed or replaced)"
        )
    if manifest.sealed:
        _check_sealed(record, entries, origins.count(_SEALED_AUDIT), report)
        _check_addenda(record, entries, origins, report)
    for name in TABLES:
        if name == "audit":
            report.rows[name] = len(entries)
            continue
        try:
            report.rows[name] = record.table(name).num_rows
        except RecordError as exc:
            report.problems.append(str(exc))
    if manifest.sealed:
        _check_tables(record, entries[: origins.count(_SEALED_AUDIT)], report)
    try:
        report.problems += check_checkpoints(record, entries)
    except RecordError as exc:
        report.problems.append(str(exc))
    _check_files(record, entries, report)
    problems, notes = check_signatures(entries, store)
    report.problems += problems
    report.notes += notes
    if anchor is not None:
        report.problems += check_anchor(record.path, record.batch_id, entries, anchor)
    sealed_count = origins.count(_SEALED_AUDIT) if manifest.sealed else len(entries)
    for index, entry in enumerate(entries):
        sig = entry.signature
        if sig is not None:
            report.signatures.append(
                f"{sig.meaning.value} by {sig.printed_name} ({sig.user_id}) at "
                f"{sig.signed_at.isoformat()}, audit entry seq {entry.seq}, signs "
                f"{sig.signed_hash[:16]}..."
                + (f" (added after the seal: {origins[index]})" if index >= sealed_count else "")
            )
    return report


def _audit(record: BatchRecord, report: VerifyReport) -> tuple[list[AuditEntry], list[str]]:
    """The audit entries and the file each came from (sealed: audit.arrow, then addenda)."""
    if not record.sealed:
        entries = table_entries(record.audit)
        return entries, ["audit"] * len(entries)
    entries, origins = [], []
    for file in record.table_files("audit"):
        name = file.relative_to(record.path).as_posix()
        if name != _SEALED_AUDIT and not file.is_file():
            report.problems.append(
                f"{name}: missing (listed in manifest.json: a signature added after the seal "
                "was removed)"
            )
            continue
        found = table_entries(read_table_file(file))
        entries += found
        origins += [name] * len(found)
    return entries, origins


def _seal_of(entries: list[AuditEntry]) -> dict[str, Any] | None:
    seals = [e for e in entries if e.action == SEAL_ACTION]
    value = seals[-1].value if seals else None
    return value if isinstance(value, dict) else None


def _check_sealed(
    record: BatchRecord, entries: list[AuditEntry], sealed_count: int, report: VerifyReport
) -> None:
    """The sealed chain ends in its seal entry, and the manifest says what the seal sealed."""
    manifest = record.manifest
    sealed = entries[:sealed_count]
    head = chain_head(sealed)
    if manifest.chain_head != head:
        report.problems.append(
            f"audit trail ends at {head[:12]}..., the manifest's chain head is "
            f"{str(manifest.chain_head)[:12]}... (entries removed after the seal, or the "
            "manifest changed)"
        )
    if not sealed or sealed[-1].action != SEAL_ACTION:
        last = sealed[-1].action if sealed else "nothing"
        report.problems.append(
            f"the sealed audit trail ends with {last}, not {SEAL_ACTION} (entries removed or "
            "added after the seal)"
        )
    seal = _seal_of(sealed)
    if seal is None or not isinstance(seal.get("tables"), dict):
        report.problems.append("the record_sealed entry has no table digests")
        return
    differences, complete = manifest_differences(manifest, seal)
    report.problems += differences
    if not complete:
        report.notes.append(
            "sealed by a cellauto writing record format 1.0: created, sealed_at, time span, row "
            "counts and versions in manifest.json are not covered by the seal (informational)"
        )
    audit = manifest.tables.get("audit")
    if audit is None or audit.file != _SEALED_AUDIT:
        report.problems.append(
            f"manifest.json: tables.audit names {audit.file if audit else 'nothing'}, not "
            f"{_SEALED_AUDIT} (the audit table was redirected)"
        )
    elif audit.rows != sealed_count:
        report.problems.append(
            f"manifest.json: tables.audit lists {audit.rows} rows, {_SEALED_AUDIT} holds "
            f"{sealed_count} entries"
        )


def _check_tables(record: BatchRecord, sealed: list[AuditEntry], report: VerifyReport) -> None:
    """Each data table file is the one the seal names: a plain file, same bytes, same rows."""
    seal = _seal_of(sealed)
    tables = seal.get("tables") if seal is not None else None
    if not isinstance(tables, dict):
        return
    for name in (*DATA_TABLES, "audit"):
        file = record.path / f"{name}.arrow"
        if file.is_symlink():
            report.problems.append(
                f"{name}.arrow: a symbolic link to {os.readlink(file)} (a sealed table is a "
                "plain file; the table was redirected)"
            )
            continue
        if name == "audit":
            listed = record.manifest.tables.get("audit")
            if listed is not None and file.is_file() and sha256_file(file) != listed.sha256:
                report.problems.append(
                    "audit.arrow: bytes changed since the seal (SHA-256 differs from the "
                    "manifest), although every entry still chains"
                )
            continue
        expected = tables.get(name)
        if not isinstance(expected, dict) or not file.is_file():
            report.problems.append(f"{name}.arrow: missing")
            continue
        if sha256_file(file) != expected.get("sha256"):
            report.problems.append(f"{name}.arrow: changed since the seal (SHA-256 mismatch)")
        elif report.rows.get(name) != expected.get("rows"):
            report.problems.append(
                f"{name}.arrow: {report.rows.get(name)} rows, the seal entry recorded "
                f"{expected.get('rows')}"
            )


def _check_addenda(
    record: BatchRecord, entries: list[AuditEntry], origins: list[str], report: VerifyReport
) -> None:
    """Addenda: unchanged files, only signatures, each bound to the manifest as sealed."""
    listed = set()
    for addendum in record.manifest.addenda:
        listed.add(addendum.file)
        file = record.path / addendum.file
        if not file.is_file():
            continue  # reported while reading
        mine = [e for e, origin in zip(entries, origins, strict=True) if origin == addendum.file]
        if sha256_file(file) != addendum.sha256:
            report.problems.append(
                f"{addendum.file}: changed since it was added (SHA-256 mismatch)"
            )
        elif len(mine) != addendum.rows or chain_head(mine) != addendum.head:
            report.problems.append(f"{addendum.file}: entries differ from manifest.json")
    digest: str | None = None
    for index, (entry, origin) in enumerate(zip(entries, origins, strict=True)):
        if origin == _SEALED_AUDIT:
            continue
        value = entry.value
        is_signature = (
            entry.action == SIGN_ACTION
            and entry.signature is not None
            and isinstance(value, dict)
            and value.get("signed") == SIGNED_SEALED
        )
        if not is_signature or not isinstance(value, dict):
            report.problems.append(
                f"audit entry seq {entry.seq} (#{index}) (in {origin}): not a signature; only "
                "signatures may be added to a sealed record"
            )
            continue
        digest = digest or manifest_digest(record.path)
        if value.get("manifest_sha256") != digest:
            report.problems.append(
                f"manifest.json: changed since audit entry seq {entry.seq} (#{index}) (in "
                f"{origin}) signed it (the sealed manifest's SHA-256 differs)"
            )
            break
    folder = record.path / ADDENDA_DIR
    if folder.is_dir():
        for file in sorted(folder.iterdir()):
            name = f"{ADDENDA_DIR}/{file.name}"
            if ADDENDUM_RE.match(file.name) and name not in listed:
                report.problems.append(
                    f"{name}: not listed in manifest.json (a signing interrupted before its "
                    "commit, or a signature removed from the manifest); not part of the record"
                )


def _check_files(record: BatchRecord, entries: list[AuditEntry], report: VerifyReport) -> None:
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
