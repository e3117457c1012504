"""Reading an open record back to resume it: its audit chain, its channels, chained digests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
from pydantic import JsonValue

from cellauto.records import audit as chain
from cellauto.records.buffers import Kind
from cellauto.records.layout import SegmentReader, read_segment, segments
from cellauto.schema import AuditEntry


def read_audit(path: Path) -> list[AuditEntry]:
    """The audit entries of an open record's segments, in order (up to any torn write)."""
    entries: list[AuditEntry] = []
    for seg in segments(path, "audit"):
        batches, _ = read_segment(seg)
        for batch in batches:
            entries.extend(chain.row_entry(row) for row in batch.to_pylist())
    return entries


def chained_digests(entries: Sequence[AuditEntry]) -> set[str]:
    """Every SHA-256 an audit entry's value names (files added, tables sealed)."""
    found: set[str] = set()

    def walk(value: JsonValue) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "sha256" and isinstance(item, str):
                    found.add(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for entry in entries:
        walk(entry.value)
    return found


def read_channels(path: Path) -> dict[tuple[str, str], tuple[str | None, Kind]]:
    """(device, channel) -> (unit, kind) of every channel recorded in the open segments."""
    found: dict[tuple[str, str], tuple[str | None, Kind]] = {}
    columns = ["device_id", "channel", "unit", "value_bool"]
    for seg in segments(path, "samples"):
        for batch in SegmentReader(seg):  # one batch in memory at a time
            groups = (
                pa.Table.from_batches([batch.select(columns)])
                .group_by(columns[:3], use_threads=False)
                .aggregate([("value_bool", "count")])
            )
            for row in groups.to_pylist():
                if row["unit"] is not None:
                    kind: Kind = "number"
                else:
                    kind = "bool" if row["value_bool_count"] else "text"
                found.setdefault((str(row["device_id"]), str(row["channel"])), (row["unit"], kind))
    return found
