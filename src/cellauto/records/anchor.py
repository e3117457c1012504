"""Anchoring a record's chain head outside the record, and checking a record against it.

A person with write access to the records folder can rewrite a whole record and recompute
every hash; only something outside the folder can tell. `anchor` appends one JSON line per call
(batch id, the record's head, the SHA-256 of the sealed manifest, the time) to a file the site
chooses: an append-only (``chattr +a``) or WORM share, a file another team owns, a file that is
itself mailed or printed. `check_anchor` finds the latest line for the batch and checks that the
record's chain still holds that head.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cellauto.errors import RecordError
from cellauto.records.layout import manifest_digest, read_manifest
from cellauto.schema import AuditEntry


def anchor(record: str | os.PathLike[str], to: str | os.PathLike[str]) -> dict[str, Any]:
    """Append the sealed record's head to the anchor file `to`; returns the line written."""
    path = Path(record)
    manifest = read_manifest(path)
    if not manifest.sealed or manifest.head is None:
        raise RecordError(f"record {manifest.batch.batch_id} at {path} is open; anchor it sealed")
    line = {
        "batch_id": manifest.batch.batch_id,
        "head": manifest.head,
        "chain_head": manifest.chain_head,
        "manifest_sha256": manifest_digest(path),
        "anchored_at": datetime.now(UTC).isoformat(),
    }
    data = (json.dumps(line, sort_keys=True) + "\n").encode()
    try:
        fd = os.open(to, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise RecordError(f"anchor file {to}: cannot append: {exc}") from None
    return line


def check_anchor(
    path: Path, batch_id: str, entries: list[AuditEntry], to: str | os.PathLike[str]
) -> list[str]:
    """Problems of the record at `path` against the latest anchor of `batch_id` in `to`."""
    try:
        lines = Path(to).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        return [f"anchor file {to}: cannot read: {exc}"]
    latest: dict[str, Any] | None = None
    for text in lines:
        try:
            item = json.loads(text)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("batch_id") == batch_id:
            latest = item
    if latest is None:
        return [f"anchor file {to}: batch {batch_id} was never anchored there"]
    head = latest.get("head")
    when = latest.get("anchored_at")
    if head not in {entry.hash for entry in entries}:
        return [
            f"the audit chain does not hold the head {str(head)[:16]}... anchored at {when} "
            f"in {to}: the record was rewritten after it was anchored"
        ]
    if latest.get("manifest_sha256") != manifest_digest(path):
        return [
            f"manifest.json: differs from the sealed manifest anchored at {when} in {to} "
            "(the manifest was rewritten after it was anchored)"
        ]
    return []
