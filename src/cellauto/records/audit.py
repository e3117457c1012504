"""The audit chain: building entries, their Arrow rows, and walking the chain.

Each entry carries the SHA-256 of the previous entry (``prev_hash``) and of its own canonical
JSON (``hash``). Changing, removing or reordering any entry breaks the chain at that entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
from pydantic import JsonValue

from cellauto.schema import (
    GENESIS_HASH,
    AuditEntry,
    ElectronicSignature,
    canonical_json,
    sha256_hex,
)

SIGN_ACTION = "sign"
"""Action of the audit entry a signature is carried in."""
SIGNED_CHAIN = "audit_chain"
"""``value.signed`` of a signature made while the record is open: it signs the chain head."""
SIGNED_SEALED = "sealed_record"
"""``value.signed`` of a signature added after the seal: it signs `record_hash`."""


def record_hash(chain_head: str, manifest_sha256: str) -> str:
    """What a signature added to a sealed record signs: SHA-256 of the canonical JSON of
    ``{"chain_head": ..., "manifest_sha256": ...}`` (the chain head before the signature entry
    and the digest of the sealed manifest, see `layout.manifest_digest`)."""
    return sha256_hex({"chain_head": chain_head, "manifest_sha256": manifest_sha256})


def signature_break(entry: AuditEntry) -> str | None:
    """Why a signature entry is not bound to what it claims to sign, or None."""
    sig, value = entry.signature, entry.value
    if sig is None or not isinstance(value, dict):
        return None
    signed = value.get("signed")
    if signed == SIGNED_CHAIN and sig.signed_hash != entry.prev_hash:
        return "the signature is not bound to the chain head it claims to sign"
    if signed == SIGNED_SEALED:
        head, digest = value.get("chain_head"), value.get("manifest_sha256")
        if head != entry.prev_hash or not isinstance(digest, str):
            return "the signature is not bound to the chain head it claims to sign"
        if sig.signed_hash != record_hash(head, digest):
            return "the signature is not bound to the record hash it claims to sign"
    return None


def make_entry(
    *,
    seq: int,
    prev_hash: str,
    time: datetime,
    actor: str,
    action: str,
    object: str,
    value: JsonValue = None,
    previous_value: JsonValue = None,
    reason: str = "",
    signature: ElectronicSignature | None = None,
) -> AuditEntry:
    """A validated entry chained onto `prev_hash`, with its hash filled in."""
    draft = AuditEntry(
        seq=seq,
        time=time,
        actor=actor,
        action=action,
        object=object,
        value=value,
        previous_value=previous_value,
        reason=reason,
        signature=signature,
        prev_hash=prev_hash,
        hash=GENESIS_HASH,
    )
    return draft.model_copy(update={"hash": draft.expected_hash()})


def entry_row(entry: AuditEntry) -> dict[str, Any]:
    """The audit-table row of one entry."""
    sig = entry.signature
    return {
        "seq": entry.seq,
        "time": entry.time,
        "actor": entry.actor,
        "action": entry.action,
        "object": entry.object,
        "value": canonical_json(entry.value).decode(),
        "previous_value": canonical_json(entry.previous_value).decode(),
        "reason": entry.reason,
        "signature_printed_name": sig.printed_name if sig else None,
        "signature_user_id": sig.user_id if sig else None,
        "signature_meaning": sig.meaning.value if sig else None,
        "signature_signed_at": sig.signed_at if sig else None,
        "signature_signed_hash": sig.signed_hash if sig else None,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def row_entry(row: dict[str, Any]) -> AuditEntry:
    """The entry of one audit-table row (the inverse of `entry_row`)."""
    signature = None
    if row["signature_meaning"] is not None:
        signature = ElectronicSignature(
            printed_name=row["signature_printed_name"],
            user_id=row["signature_user_id"],
            meaning=row["signature_meaning"],
            signed_at=row["signature_signed_at"],
            signed_hash=row["signature_signed_hash"],
        )
    return AuditEntry(
        seq=row["seq"],
        time=row["time"],
        actor=row["actor"],
        action=row["action"],
        object=row["object"],
        value=json.loads(row["value"]),
        previous_value=json.loads(row["previous_value"]),
        reason=row["reason"],
        signature=signature,
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def table_entries(table: pa.Table) -> list[AuditEntry]:
    """Every entry of an audit table, in order."""
    return [row_entry(row) for row in table.to_pylist()]


def first_break(entries: Sequence[AuditEntry]) -> tuple[int, str] | None:
    """(index, reason) of the first entry that breaks the chain, or None if it is intact."""
    prev = GENESIS_HASH
    for index, entry in enumerate(entries):
        if entry.hash != entry.expected_hash():
            return index, f"audit entry seq {entry.seq} (#{index}): content changed (hash mismatch)"
        if entry.prev_hash != prev:
            return index, (
                f"audit entry seq {entry.seq} (#{index}): prev_hash does not match the entry "
                "before it (an entry was removed, inserted or reordered)"
            )
        if entry.seq != index:
            return index, f"audit entry #{index}: seq is {entry.seq}, expected {index}"
        unbound = signature_break(entry)
        if unbound is not None:
            return index, f"audit entry seq {entry.seq} (#{index}): {unbound}"
        prev = entry.hash
    return None


def chain_head(entries: Iterable[AuditEntry]) -> str:
    """Hash of the last entry (GENESIS_HASH for an empty chain)."""
    head = GENESIS_HASH
    for entry in entries:
        head = entry.hash
    return head
