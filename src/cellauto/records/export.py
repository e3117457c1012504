"""Exports of records: Parquet (one batch, or many as a hive-partitioned dataset), CSV, JSON Lines.

Every format writes every table (samples, events, audit, results). An export is written into a
temporary folder beside `out` and moved into place only once complete, so a failure (an
unreadable table, a full disk) leaves nothing behind; an existing, non-empty `out` is refused
unless ``force=True``, which replaces it whole (one export, one format, per folder).

Durations (``results.total_runtime``) stay Arrow ``duration[us]`` in Parquet (pyarrow and Polars
read them back as durations; DuckDB's Parquet reader sees BIGINT microseconds, while
`BatchRecord.duckdb` gives INTERVAL); CSV and JSON Lines write them as ISO 8601 durations
(``PT3600S``).

Each export is a pure function of the record: the same record gives the same rows and bytes
(Parquet files also carry the writing pyarrow version in their metadata).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cellauto.errors import RecordError
from cellauto.records.reader import BatchRecord, open_batch
from cellauto.records.tables import TABLES
from cellauto.schema import canonical_json

JSONL_TABLES = tuple(TABLES)
_JSON_COLUMNS = {"data", "vendor_data", "value", "previous_value", "result"}

RecordLike = BatchRecord | str | os.PathLike[str]


def _record(record: RecordLike) -> BatchRecord:
    return record if isinstance(record, BatchRecord) else open_batch(record)


def iso_duration(value: timedelta) -> str:
    """A duration as ISO 8601 (``PT3600S``, ``PT1.5S``, ``-PT2S``)."""
    micros = value // timedelta(microseconds=1)
    sign, micros = ("-", -micros) if micros < 0 else ("", micros)
    seconds, fraction = divmod(micros, 1_000_000)
    text = f"{seconds}.{fraction:06d}".rstrip("0").rstrip(".") if fraction else str(seconds)
    return f"{sign}PT{text}S"


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded to plain strings and durations as ISO 8601 text (what CSV
    and other tools expect)."""
    columns = []
    for column in table.columns:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        elif pa.types.is_duration(column.type):
            column = pa.array(
                [None if v is None else iso_duration(v) for v in column.to_pylist()], pa.string()
            )
        columns.append(column)
    names = table.column_names
    return pa.Table.from_arrays(columns, names=names)


def into_new_folder(
    out: str | os.PathLike[str], force: bool, what: str, write: Callable[[Path], None]
) -> list[Path]:
    """Run `write` into a fresh temporary folder beside `out`, then move it into place."""
    target = Path(out)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise RecordError(f"export of {what}: {target} is not a folder")
    if target.exists() and any(target.iterdir()) and not force:
        raise RecordError(
            f"export of {what}: {target} exists and is not empty; choose a new folder, or "
            "replace it with --force (force=True)"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise RecordError(f"export of {what}: cannot write beside {target}: {exc}") from None
    try:
        write(tmp)
        written = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file())
        if target.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            target.replace(old / target.name)
            tmp.replace(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.replace(target)
    except (RecordError, OSError, pa.ArrowException) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RecordError(f"export of {what} to {target} failed, nothing written: {exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [target / name for name in written]


def export_parquet(
    record: RecordLike, out: str | os.PathLike[str], *, force: bool = False
) -> list[Path]:
    """Write ``<table>.parquet`` for each table of one batch into the new folder `out`."""
    rec = _record(record)

    def write(folder: Path) -> None:
        for name in TABLES:
            pq.write_table(rec.table(name), folder / f"{name}.parquet", compression="zstd")

    return into_new_folder(out, force, f"batch {rec.batch_id}", write)


def export_parquet_dataset(
    records: Iterable[RecordLike], out: str | os.PathLike[str], *, force: bool = False
) -> list[Path]:
    """Write many batches as one hive-partitioned Parquet dataset per table, in the new folder
    `out`.

    Layout: ``<out>/<table>/batch_id=<id>/part-0.parquet``, which DuckDB
    (``read_parquet('<out>/samples/**/*.parquet', hive_partitioning=true)``), Polars
    (``scan_parquet(..., hive_partitioning=True)``) and Spark read as they are. The batch_id
    column lives in the folder names, not in the files.
    """

    def write(folder: Path) -> None:
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

    return into_new_folder(out, force, "batches", write)


def export_csv(
    record: RecordLike, out: str | os.PathLike[str], *, force: bool = False
) -> list[Path]:
    """Write ``<table>.csv`` for each table of one batch into the new folder `out`."""
    rec = _record(record)

    def write(folder: Path) -> None:
        for name in TABLES:
            pacsv.write_csv(_plain(rec.table(name)), folder / f"{name}.csv")

    return into_new_folder(out, force, f"batch {rec.batch_id}", write)


def export_jsonl(
    record: RecordLike, out: str | os.PathLike[str], *, force: bool = False
) -> list[Path]:
    """Write ``<table>.jsonl`` for every table of one batch into the new folder `out`: one
    canonical JSON object per line.

    Each audit line is the entry exactly as hashed, so anyone can re-check the chain with
    SHA-256 over the canonical JSON of every field but ``hash``.
    """
    rec = _record(record)

    def write(folder: Path) -> None:
        for name in JSONL_TABLES:
            if name == "audit":
                lines = [canonical_json(e.model_dump(mode="json")) for e in rec.audit_entries()]
            else:
                lines = [canonical_json(_json_row(row)) for row in rec.table(name).to_pylist()]
            (folder / f"{name}.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))

    return into_new_folder(out, force, f"batch {rec.batch_id}", write)


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in _JSON_COLUMNS and isinstance(value, str):
            out[key] = json.loads(value)
        elif isinstance(value, timedelta):
            out[key] = iso_duration(value)
        elif isinstance(value, float) and not math.isfinite(value):
            out[key] = None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        elif hasattr(value, "isoformat"):
            out[key] = value.isoformat().replace("+00:00", "Z")
        else:
            out[key] = value
    return out
