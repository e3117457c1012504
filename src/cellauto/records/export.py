"""Exports of records: Parquet (one batch, or many as a hive-partitioned dataset), CSV, JSON Lines.

Each export is a pure function of the record: the same record gives the same rows and bytes
(Parquet files also carry the writing pyarrow version in their metadata).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cellauto.records.reader import BatchRecord, open_batch
from cellauto.records.tables import TABLES
from cellauto.schema import canonical_json

JSONL_TABLES = ("audit", "events")
_JSON_COLUMNS = {"data", "vendor_data", "value", "previous_value", "result"}

RecordLike = BatchRecord | str | os.PathLike[str]


def _record(record: RecordLike) -> BatchRecord:
    return record if isinstance(record, BatchRecord) else open_batch(record)


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded to plain strings (what CSV and other tools expect)."""
    columns = []
    for column in table.columns:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns.append(column)
    names = table.column_names
    return pa.Table.from_arrays(columns, names=names)


def export_parquet(record: RecordLike, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``<table>.parquet`` for each table of one batch into `out`."""
    rec = _record(record)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TABLES:
        target = folder / f"{name}.parquet"
        pq.write_table(rec.table(name), target, compression="zstd")
        written.append(target)
    return written


def export_parquet_dataset(
    records: Iterable[RecordLike], out: str | os.PathLike[str]
) -> list[Path]:
    """Write many batches as one hive-partitioned Parquet dataset per table.

    Layout: ``<out>/<table>/batch_id=<id>/part-0.parquet`` (ids URL-encoded), which DuckDB
    (``read_parquet('<out>/samples/**/*.parquet', hive_partitioning=true)``), Polars
    (``scan_parquet(..., hive_partitioning=True)``) and Spark read as they are. The batch_id
    column lives in the folder names, not in the files.
    """
    folder = Path(out)
    written = []
    for item in records:
        rec = _record(item)
        part = f"batch_id={quote(rec.batch_id, safe='')}"
        for name in TABLES:
            table = rec.table(name)
            if "batch_id" in table.column_names:
                table = table.drop_columns(["batch_id"])
            target = folder / name / part / "part-0.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target, compression="zstd")
            written.append(target)
    return written


def export_csv(record: RecordLike, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``<table>.csv`` for each table of one batch into `out`."""
    rec = _record(record)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TABLES:
        target = folder / f"{name}.csv"
        pacsv.write_csv(_plain(rec.table(name)), target)
        written.append(target)
    return written


def export_jsonl(record: RecordLike, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``audit.jsonl`` and ``events.jsonl``: one canonical JSON object per line.

    Each audit line is the entry exactly as hashed, so anyone can re-check the chain with
    SHA-256 over the canonical JSON of every field but ``hash``.
    """
    rec = _record(record)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in JSONL_TABLES:
        target = folder / f"{name}.jsonl"
        if name == "audit":
            lines = [canonical_json(e.model_dump(mode="json")) for e in rec.audit_entries()]
        else:
            lines = [canonical_json(_json_row(row)) for row in rec.table(name).to_pylist()]
        target.write_bytes(b"".join(line + b"\n" for line in lines))
        written.append(target)
    return written


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in _JSON_COLUMNS and isinstance(value, str):
            out[key] = json.loads(value)
        elif hasattr(value, "isoformat"):
            out[key] = value.isoformat().replace("+00:00", "Z")
        else:
            out[key] = value
    return out
