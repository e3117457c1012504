"""What `verify` checks of signatures: each key-made signature against the key it carries and
the site's trust store, and each data checkpoint against the rows the tables hold."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from cellauto.records.audit import SIGNED_CHAIN
from cellauto.records.digest import digests_at
from cellauto.records.keys import PublicKey, TrustStore, key_id_of, signing_message
from cellauto.records.reader import BatchRecord
from cellauto.records.seal import CHECKPOINT_ACTION, DATA_TABLES
from cellauto.records.tables import file_schema
from cellauto.schema import AuditEntry


def check_signatures(
    entries: Sequence[AuditEntry], trust: TrustStore | None
) -> tuple[list[str], list[str]]:
    """(problems, notes) about every signature in `entries`."""
    problems: list[str] = []
    notes: list[str] = []
    keyless = 0
    for index, entry in enumerate(entries):
        sig = entry.signature
        if sig is None:
            continue
        label = (
            f"signature at audit seq {entry.seq} ({sig.meaning.value} by {sig.printed_name} "
            f"({sig.user_id}))"
        )
        value = entry.value if isinstance(entry.value, dict) else {}
        if value.get("signed") == SIGNED_CHAIN and (
            index == 0 or entries[index - 1].action != CHECKPOINT_ACTION
        ):
            notes.append(f"{label}: no data checkpoint before it (signs the audit chain only)")
        if "signature" not in value:
            keyless += 1
            if trust is not None:
                problems.append(
                    f"{label}: made without a key (no cryptographic signature), so the trust "
                    "store cannot establish the signer"
                )
            continue
        try:
            raw = base64.b64decode(str(value.get("public_key")), validate=True)
            signed = base64.b64decode(str(value.get("signature")), validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"{label}: its key or signature is not base64")
            continue
        key_id = str(value.get("key_id"))
        carried = PublicKey(sig.user_id, sig.printed_name, key_id, raw)
        if key_id != key_id_of(raw):
            problems.append(f"{label}: key id {key_id} does not match the public key it carries")
            continue
        if not carried.verify(signing_message(sig), signed):
            problems.append(
                f"{label}: the Ed25519 signature does not verify (the signed name, meaning, "
                "time or hash were changed)"
            )
            continue
        if trust is None:
            continue
        known = trust.keys.get(key_id)
        if known is None:
            problems.append(
                f"{label}: key {key_id} is not in the trust store {trust.source} (unknown signer)"
            )
        elif known.public_key != raw:
            problems.append(f"{label}: key {key_id} differs from the trust store's")
        elif known.user_id != sig.user_id:
            problems.append(
                f"{label}: key {key_id} belongs to {known.user_id} in the trust store, not to "
                f"{sig.user_id}"
            )
        elif known.revoked_at is not None and sig.signed_at >= known.revoked_at:
            problems.append(
                f"{label}: key {key_id} of {known.user_id} was revoked at "
                f"{known.revoked_at.isoformat()} (revoked signer)"
            )
        elif known.revoked_at is not None:
            notes.append(
                f"{label}: key {key_id} was revoked at {known.revoked_at.isoformat()}, after "
                "this signature"
            )
    if keyless and trust is None:
        notes.append(f"{keyless} signature(s) made without a key: the signer is not established")
    elif trust is None and any(e.signature for e in entries):
        notes.append(
            "signatures checked against the keys they carry only; pass a trust store "
            "(--trust) to establish who signed"
        )
    return problems, notes


def check_checkpoints(record: BatchRecord, entries: Sequence[AuditEntry]) -> list[str]:
    """Problems where a table's first rows differ from a checkpoint taken before a signature."""
    checkpoints: list[tuple[AuditEntry, dict[str, Any]]] = []
    for entry in entries:
        value = entry.value
        if entry.action == CHECKPOINT_ACTION and isinstance(value, dict):
            tables = value.get("tables")
            if isinstance(tables, dict):
                checkpoints.append((entry, tables))
    if not checkpoints:
        return []
    problems: list[str] = []
    for name in DATA_TABLES:
        wanted: list[tuple[AuditEntry, int, str]] = []
        for entry, tables in checkpoints:
            counted = tables.get(name)
            if isinstance(counted, dict):
                rows = counted.get("rows")
                wanted.append(
                    (entry, rows if isinstance(rows, int) else -1, str(counted.get("sha256")))
                )
        table = record.table(name)
        try:
            found = digests_at(
                table.to_batches(), file_schema(name), [rows for _, rows, _ in wanted]
            )
        except (KeyError, pa.ArrowException) as exc:
            problems.append(f"{name}: cannot be checked against the checkpoints: {exc}")
            continue
        for entry, rows, digest in wanted:
            if rows not in found:
                problems.append(
                    f"{name}: the checkpoint at audit seq {entry.seq} counted {rows} rows, the "
                    f"table holds {table.num_rows} (rows removed after it was signed)"
                )
                break
            if found[rows] != digest:
                problems.append(
                    f"{name}: its first {rows} rows differ from the checkpoint at audit seq "
                    f"{entry.seq} (data changed after it was signed)"
                )
                break
    return problems
