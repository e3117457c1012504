"""Signing a sealed record: append-only addenda chained onto the sealed audit chain.

A sealed record's tables are final. QA's review and approval signatures are added as audit
entries in new files, ``addenda/addendum-NNNNNN.arrow`` (one per signature, never rewritten),
chained onto the head of the sealed chain and listed, with their SHA-256 and head, in the
manifest's ``addenda`` by an atomic rewrite that first checks the head it chains onto.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from cellauto.errors import RecordIntegrityError, RecordStateError, RecordWriteError
from cellauto.records.audit import (
    SIGN_ACTION,
    SIGNED_SEALED,
    entry_row,
    make_entry,
    record_hash,
)
from cellauto.records.encode import Codes, rows_to_batch
from cellauto.records.files import DIR_MODE, SEALED_MODE, fsync_dir, new_temp
from cellauto.records.keys import Signer, cryptographic_signature
from cellauto.records.layout import (
    ADDENDA_DIR,
    Addendum,
    addendum_name,
    commit_addendum,
    manifest_digest,
    read_manifest,
    sha256_file,
)
from cellauto.records.tables import DICTIONARY_COLUMNS, file_schema
from cellauto.records.verify import verify
from cellauto.schema import AuditEntry, ElectronicSignature, SignatureMeaning


def _now() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One signer at a time per record (an advisory lock on ``addenda/.lock``)."""
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def sign(
    path: str | os.PathLike[str],
    *,
    printed_name: str,
    user_id: str,
    meaning: SignatureMeaning | str,
    reason: str = "",
    clock: Callable[[], datetime] = _now,
    signer: Signer | None = None,
) -> AuditEntry:
    """Sign a sealed record (e.g. QA review or approval); returns the signature's audit entry.

    The signature binds printed name, meaning and time to the record hash
    ``record_hash(head, manifest_sha256)``: the hash of the last audit entry before it (the
    sealed chain head, or the previous signature added after the seal) and the SHA-256 of the
    sealed manifest. The record must verify intact. An open record is signed with
    `RecordWriter.sign`. With a `signer` (a person's key), the entry also carries the
    signer's Ed25519 signature, checked by `verify` against the site's trust store.
    """
    folder = Path(path)
    manifest = read_manifest(folder)
    batch_id = manifest.batch.batch_id
    if signer is not None and signer.user_id != user_id:
        raise RecordStateError(
            f"record {batch_id}: the key of {signer.user_id} cannot sign for {user_id}"
        )
    if not manifest.sealed:
        raise RecordStateError(
            f"record {batch_id} at {folder} is open: sign it with RecordWriter.sign() while it "
            "is written, or seal it (RecordWriter.close) and sign it then"
        )
    addenda = folder / ADDENDA_DIR
    try:
        addenda.mkdir(exist_ok=True, mode=DIR_MODE)
        with _locked(addenda):
            manifest = read_manifest(folder)
            name = addendum_name(len(manifest.addenda) + 1)
            report = verify(folder)
            # a file at the next number is a signing interrupted before its commit: replaced
            problems = [p for p in report.problems if not p.startswith(f"{name}: ")]
            if problems:
                raise RecordIntegrityError(
                    f"record {batch_id}: will not sign a record that fails verification: "
                    f"{problems[0]}"
                )
            head = manifest.head
            assert head is not None  # a sealed manifest has a chain head
            digest = manifest_digest(folder)
            time = clock()
            signature = ElectronicSignature(
                printed_name=printed_name,
                user_id=user_id,
                meaning=SignatureMeaning(meaning),
                signed_at=time,
                signed_hash=record_hash(head, digest),
            )
            entry = make_entry(
                seq=report.rows["audit"],
                prev_hash=head,
                time=time,
                actor=user_id,
                action=SIGN_ACTION,
                object=f"batch:{batch_id}",
                value={
                    "signed": SIGNED_SEALED,
                    "chain_head": head,
                    "manifest_sha256": digest,
                    **(cryptographic_signature(signature, signer) if signer else {}),
                },
                reason=reason,
                signature=signature,
            )
            target = folder / name
            _write_entries(target, [entry])
            addendum = Addendum(file=name, sha256=sha256_file(target), rows=1, head=entry.hash)
            commit_addendum(folder, head, addendum)
    except OSError as exc:
        raise RecordWriteError(
            f"record {batch_id} at {folder}: adding the signature failed: {exc}; the record is "
            "unchanged (fix permissions or free space, then sign again)"
        ) from None
    return entry


def _write_entries(target: Path, entries: list[AuditEntry]) -> None:
    """Write audit entries as an Arrow IPC file: via a temporary file, fsync and rename."""
    codes = {column: Codes() for column in DICTIONARY_COLUMNS["audit"]}
    batch = rows_to_batch("audit", [entry_row(e) for e in entries], codes)
    tmp = new_temp(target)
    with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, file_schema("audit")) as out:
        out.write_batch(batch)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    tmp.chmod(SEALED_MODE)
    tmp.replace(target)
    fsync_dir(target.parent)
