"""Reading records back: one batch as pyarrow tables, DuckDB or Polars; many as one dataset."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.ipc as ipc

from cellauto.errors import RecordError
from cellauto.records.audit import table_entries
from cellauto.records.layout import MANIFEST, Manifest, SegmentReader, read_manifest, segments
from cellauto.records.tables import TABLES, file_schema
from cellauto.schema import AuditEntry, Result

if TYPE_CHECKING:
    import duckdb
    import polars


class BatchRecord:
    """One batch record, sealed or open (then read up to the last complete flush)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest: Manifest = read_manifest(path)
        self._tables: dict[str, pa.Table] = {}
        self._torn: dict[str, list[tuple[str, int]]] = {}

    @property
    def batch_id(self) -> str:
        """The batch's id."""
        return self.manifest.batch.batch_id

    @property
    def sealed(self) -> bool:
        """True if the writer closed the record."""
        return self.manifest.sealed

    @property
    def torn(self) -> list[str]:
        """Segments that end in a partial write (a crash); their complete part is read."""
        return [segment for segment, _ in self._torn_segments()]

    @property
    def damaged(self) -> list[tuple[str, int]]:
        """Segments that stop early although complete record batches follow the damage (not a
        torn last write): (segment, number of complete batches that could not be read)."""
        return [(segment, lost) for segment, lost in self._torn_segments() if lost]

    def _torn_segments(self) -> list[tuple[str, int]]:
        if not self.sealed:
            for name in TABLES:
                self.table(name)
        return [found for name in TABLES for found in self._torn.get(name, [])]

    def table(self, name: str) -> pa.Table:
        """The table `name` (samples, events, audit, results), read into memory."""
        if name not in TABLES:
            raise RecordError(f"a record has no table {name!r} (tables: {', '.join(TABLES)})")
        if name not in self._tables:
            self._tables[name] = self._read(name)
        return self._tables[name]

    def _read(self, name: str) -> pa.Table:
        schema = file_schema(name)
        if self.sealed:
            parts = [read_table_file(file) for file in self.table_files(name)]
            if len(parts) == 1:
                return parts[0]
            return pa.concat_tables(parts).unify_dictionaries()
        batches: list[pa.RecordBatch] = []
        for segment in segments(self.path, name):
            reader = SegmentReader(segment)
            batches += reader
            if reader.torn:
                where = str(segment.relative_to(self.path))
                self._torn.setdefault(name, []).append((where, reader.lost_batches))
        return pa.Table.from_batches(batches, schema=schema).unify_dictionaries()

    def table_files(self, name: str) -> list[Path]:
        """The files of a sealed table, in order: ``<name>.arrow``, then for the audit the
        addenda (signatures added after the seal) listed in the manifest."""
        files = [self.path / self.manifest.tables[name].file]
        if name == "audit":
            files += [self.path / addendum.file for addendum in self.manifest.addenda]
        return files

    @property
    def samples(self) -> pa.Table:
        """batch_id, device_id, channel, timestamp, value, value_text, value_bool, unit,
        quality, seq."""
        return self.table("samples")

    @property
    def events(self) -> pa.Table:
        """State transitions, alarms, program/step start and end, prompts, transfers."""
        return self.table("events")

    @property
    def audit(self) -> pa.Table:
        """The hash-chained audit trail, including signatures (and, once sealed, the signatures
        added after the seal, in order)."""
        return self.table("audit")

    @property
    def results(self) -> pa.Table:
        """Each program run's Result (full JSON in the ``result`` column)."""
        return self.table("results")

    def audit_entries(self) -> list[AuditEntry]:
        """The audit trail as AuditEntry models."""
        return table_entries(self.audit)

    def result_models(self) -> list[Result]:
        """The results as Result models."""
        return [
            Result.model_validate_json(text) for text in self.results.column("result").to_pylist()
        ]

    def dataset(self, name: str = "samples") -> ds.Dataset:
        """A table as a pyarrow dataset (lazy, column-pruned scans for a sealed record)."""
        if self.sealed:
            files = [str(file) for file in self.table_files(name)]
            return ds.dataset(files, format="ipc", schema=file_schema(name))
        return ds.dataset(self.table(name))

    def duckdb(
        self, connection: duckdb.DuckDBPyConnection | None = None
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views ``samples``, ``events``, ``audit``, ``results``."""
        duckdb = _optional("duckdb")
        con = connection if connection is not None else duckdb.connect()
        for name in TABLES:
            con.register(name, self.dataset(name))
        return con

    def polars(self, name: str = "samples") -> polars.LazyFrame:
        """A table as a Polars LazyFrame."""
        pl = _optional("polars")
        if self.sealed and not (name == "audit" and self.manifest.addenda):
            lazy: polars.LazyFrame = pl.scan_ipc(self.path / self.manifest.tables[name].file)
            return lazy
        frame: polars.DataFrame = pl.from_arrow(self.table(name))
        return frame.lazy()

    def __repr__(self) -> str:
        return f"<BatchRecord {self.batch_id} {self.manifest.state} at {self.path}>"


def _optional(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise RecordError(
            f"{module} is not installed; install it with `pip install cellauto[analysis]`"
        ) from None


def read_table_file(file: Path) -> pa.Table:
    """One sealed table file (Arrow IPC file format) into memory."""
    if not file.is_file():
        raise RecordError(f"{file}: missing (listed in the manifest)")
    try:
        return ipc.open_file(pa.memory_map(str(file))).read_all()
    except (OSError, pa.ArrowInvalid) as exc:
        raise RecordError(f"{file}: cannot read: {exc}") from None


def open_batch(path: str | os.PathLike[str]) -> BatchRecord:
    """Open one batch record folder for reading (sealed, or open up to the last flush)."""
    return BatchRecord(Path(path))


def find_batches(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Every batch record folder under `root` (at any depth, not inside another record),
    sorted by path."""
    base = Path(root)
    if not base.is_dir():
        raise RecordError(f"{base} is not a folder of batch records")
    found: list[Path] = []
    for folder, subfolders, files in os.walk(base):
        if MANIFEST in files and Path(folder) != base:
            found.append(Path(folder))
            subfolders.clear()  # a record's own folders hold no records
        else:
            subfolders.sort()
    yield from sorted(found)


def open_batches(
    root: str | os.PathLike[str], table: str = "samples", *, include_open: bool = False
) -> ds.Dataset:
    """Many batches' `table` as one pyarrow dataset, scanned lazily (not loaded into memory).

    Sealed records are scanned from their files. Open records are read into memory if
    `include_open`, else left out. The audit table gains no batch_id column; use
    `export_parquet_dataset` for a hive-partitioned copy.
    """
    if table not in TABLES:
        raise RecordError(f"a record has no table {table!r} (tables: {', '.join(TABLES)})")
    schema = file_schema(table)
    files: list[str] = []
    children: list[ds.Dataset] = []
    for path in find_batches(root):
        record = open_batch(path)
        if record.sealed:
            files += [str(file) for file in record.table_files(table)]
        elif include_open:
            children.append(ds.dataset(record.table(table)))
    parts: list[ds.Dataset] = [ds.dataset(files, format="ipc", schema=schema)] if files else []
    parts += children
    if not parts:
        return ds.dataset(pa.Table.from_batches([], schema=schema))
    if len(parts) == 1:
        return parts[0]
    return ds.dataset(parts)
