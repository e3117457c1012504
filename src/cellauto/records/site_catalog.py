"""A site catalog of every batch: sealed records published to Apache Iceberg tables (pyiceberg).

```python
from cellauto.records import catalog

site = catalog("sqlite:///site/catalog.db")     # warehouse: site/warehouse/
site.publish("records/B-0001")                  # idempotent; refuses unsealed or broken records
site.polars("samples").filter(...)              # or site.duckdb().sql("select ... from samples")
```

Tables (namespace ``cellauto``): ``samples``, ``events``, ``audit``, ``results`` (the record's
tables, plus ``product`` and ``device_kind`` columns), and ``batches`` (one row per published
record: its manifest, row counts, chain head and verify result). A batch counts as published when
its ``batches`` row exists; that row is committed last.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cellauto.errors import (
    RecordError,
    RecordIntegrityError,
    RecordStateError,
    SchemaVersionError,
)
from cellauto.records.reader import BatchRecord, open_batch
from cellauto.records.tables import RECORD_FORMAT, TABLES
from cellauto.records.verify import verify

if TYPE_CHECKING:
    import duckdb
    import polars
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

NAMESPACE = "cellauto"
CATALOG_TABLES = ("batches", "samples", "events", "audit", "results")
_COMMIT_ATTEMPTS = 30
_WRITERS = max(2, min(8, os.cpu_count() or 2))
_ROWS_PER_PIECE = 1_000_000
_FORMAT_PROPERTY = "cellauto.record_format"

# partition values are read back from the data files' column statistics, which must then be
# exact (Iceberg truncates string statistics to 16 characters by default)
_FULL_METRICS = {
    f"write.metadata.metrics.column.{column}": "full"
    for column in ("batch_id", "product", "device_kind")
}

_TIME_COLUMN = {"samples": "timestamp", "events": "time", "audit": "time", "results": "started"}

BATCHES = pa.schema(
    [
        pa.field("batch_id", pa.string()),
        pa.field("product", pa.string()),
        pa.field("lot_id", pa.string()),
        pa.field("recipe", pa.string()),
        pa.field("state", pa.string()),
        pa.field("seal_reason", pa.string()),
        pa.field("record_format", pa.string()),
        pa.field("schema_version", pa.string()),
        pa.field("cellauto_version", pa.string()),
        pa.field("operators", pa.list_(pa.string())),
        pa.field("device_ids", pa.list_(pa.string())),
        pa.field("device_kinds", pa.list_(pa.string())),
        pa.field("created", pa.timestamp("us", tz="UTC")),
        pa.field("sealed_at", pa.timestamp("us", tz="UTC")),
        pa.field("time_start", pa.timestamp("us", tz="UTC")),
        pa.field("time_end", pa.timestamp("us", tz="UTC")),
        pa.field("samples", pa.int64()),
        pa.field("events", pa.int64()),
        pa.field("audit", pa.int64()),
        pa.field("results", pa.int64()),
        pa.field("chain_head", pa.string()),
        pa.field("head", pa.string()),
        pa.field("signatures_after_seal", pa.int32()),
        pa.field("verify_status", pa.string()),
        pa.field("verified_at", pa.timestamp("us", tz="UTC")),
        pa.field("published_at", pa.timestamp("us", tz="UTC")),
        pa.field("manifest", pa.string()),
    ]
)
"""One row per published record. ``chain_head`` is the head at the seal, ``head`` includes the
signatures added after it."""


@dataclass(frozen=True)
class Published:
    """What `SiteCatalog.publish` did with one record."""

    batch_id: str
    action: str
    """``published``, ``updated`` (signatures added since; tables replaced) or ``unchanged``."""
    rows: dict[str, int]


def catalog_schema(table: str) -> pa.Schema:
    """The Arrow schema of a catalog table (all columns nullable, strings plain)."""
    if table == "batches":
        return BATCHES
    fields = []
    for f in TABLES[table]:
        type_ = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if pa.types.is_duration(type_):
            fields.append(pa.field(f"{f.name}_us", pa.int64(), metadata=f.metadata))
            continue
        fields.append(pa.field(f.name, type_, metadata=f.metadata))
    if table == "audit":
        fields.insert(0, pa.field("batch_id", pa.string()))
    fields.append(pa.field("product", pa.string()))
    if table != "audit":
        fields.append(pa.field("device_kind", pa.string()))
    return pa.schema(fields)


def _plain(table: pa.Table) -> pa.Table:
    """Durations as int64 microseconds (``<name>_us``); dictionary columns stay dictionaries
    (Parquet stores them as strings, without decoding them here)."""
    columns, names = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_duration(column.type):
            column, name = column.cast(pa.int64()), f"{name}_us"
        columns.append(column)
        names.append(name)
    return pa.Table.from_arrays(columns, names=names)


def _constant(value: str, rows: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.repeat(pa.scalar(0, pa.int32()), rows), pa.array([value], pa.string())
    )


def _device_kinds(device_ids: pa.ChunkedArray, kinds: dict[str, str]) -> pa.ChunkedArray:
    """The device kind of each row, as a dictionary column (no per-row string work)."""
    names = sorted(set(kinds.values()) | {"unknown"})
    chunks = []
    for chunk in device_ids.chunks:
        if not pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_encode()
        mapping = pa.array(
            [names.index(kinds.get(d, "unknown")) for d in chunk.dictionary.to_pylist()],
            pa.int32(),
        )
        indices = mapping.take(chunk.indices)
        chunks.append(pa.DictionaryArray.from_arrays(indices, pa.array(names, pa.string())))
    return pa.chunked_array(chunks, pa.dictionary(pa.int32(), pa.string()))


def catalog_rows(record: BatchRecord, table: str) -> pa.Table:
    """One record's `table` as the catalog stores it."""
    manifest = record.manifest
    data = _plain(record.table(table))
    rows = data.num_rows
    if table == "audit":
        data = data.add_column(0, "batch_id", _constant(record.batch_id, rows))
    data = data.append_column("product", _constant(manifest.batch.product, rows))
    if table != "audit":
        kinds = {d.device_id: d.kind or "unknown" for d in manifest.devices}
        data = data.append_column("device_kind", _device_kinds(data.column("device_id"), kinds))
    return data


def _batch_row(record: BatchRecord, status: str, verified_at: datetime) -> pa.Table:
    m = record.manifest
    row: dict[str, Any] = {
        "batch_id": m.batch.batch_id,
        "product": m.batch.product,
        "lot_id": m.batch.lot_id,
        "recipe": m.batch.recipe,
        "state": m.state,
        "seal_reason": m.seal_reason,
        "record_format": m.record_format,
        "schema_version": m.schema_version,
        "cellauto_version": m.cellauto_version,
        "operators": list(m.batch.operators),
        "device_ids": [d.device_id for d in m.devices],
        "device_kinds": [d.kind or "unknown" for d in m.devices],
        "created": m.created,
        "sealed_at": m.sealed_at,
        "time_start": m.time_start,
        "time_end": m.time_end,
        **{name: record.table(name).num_rows for name in TABLES},
        "chain_head": m.chain_head,
        "head": m.head,
        "signatures_after_seal": len(m.addenda),
        "verify_status": status,
        "verified_at": verified_at,
        "published_at": datetime.now(UTC),
        "manifest": m.model_dump_json(),
    }
    return pa.Table.from_pylist([row], schema=BATCHES)


def _retrying(what: str, action: Callable[[], None]) -> None:
    """Run one Iceberg commit, again after a concurrent commit won (optimistic concurrency)."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    # a concurrent commit won: pyiceberg's own retry may then find the other publisher's
    # files (ValidationException); this loop recomputes the whole replacement instead
    retryable: tuple[type[BaseException], ...] = (CommitFailedException, ValidationException)
    try:
        from sqlalchemy.exc import OperationalError

        retryable += (OperationalError,)  # SQLite: "database is locked"
    except ImportError:  # pragma: no cover - the REST catalog needs no SQLAlchemy
        pass
    for attempt in range(_COMMIT_ATTEMPTS):
        try:
            action()
            return
        except retryable as exc:
            if attempt == _COMMIT_ATTEMPTS - 1:
                raise RecordError(
                    f"{what}: {_COMMIT_ATTEMPTS} commits lost to concurrent writers: {exc}"
                ) from None
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))


class SiteCatalog:
    """The Iceberg tables of a site's published batch records (see the module docstring)."""

    def __init__(self, iceberg: Catalog, uri: str) -> None:
        self.iceberg = iceberg
        self.uri = uri
        self._tables: dict[str, Table] = {}

    # -- tables ------------------------------------------------------------------------------

    def table(self, name: str) -> Table:
        """The pyiceberg Table `name` (batches, samples, events, audit, results), created with
        its partition spec on first use."""
        if name not in CATALOG_TABLES:
            raise RecordError(
                f"the site catalog has no table {name!r} (tables: {', '.join(CATALOG_TABLES)})"
            )
        if name not in self._tables:

            def load() -> None:
                self._tables[name] = self._load_or_create(name)

            _retrying(f"opening table {name} of catalog {self.uri}", load)
        return self._tables[name]

    def _load_or_create(self, name: str) -> Table:
        from pyiceberg.exceptions import (
            NamespaceAlreadyExistsError,
            NoSuchTableError,
            TableAlreadyExistsError,
        )
        from pyiceberg.transforms import MonthTransform

        identifier = f"{NAMESPACE}.{name}"
        try:
            return _with_full_metrics(self.iceberg.load_table(identifier))
        except NoSuchTableError:
            pass
        try:
            self.iceberg.create_namespace(NAMESPACE)
        except NamespaceAlreadyExistsError:
            pass
        except Exception:
            # the SQL catalog checks, then inserts: a publisher that inserts in between makes
            # this one fail on the database's unique key instead of NamespaceAlreadyExistsError
            if not self.iceberg.namespace_exists(NAMESPACE):
                raise
        schema = catalog_schema(name)
        try:
            txn = self.iceberg.create_table_transaction(
                identifier,
                schema=schema,
                properties={
                    _FORMAT_PROPERTY: RECORD_FORMAT,
                    "write.parquet.compression-codec": "zstd",
                    # one manifest per publish would make every scan plan read them all
                    "commit.manifest-merge.enabled": "true",
                    "commit.manifest.min-count-to-merge": "16",
                    **_FULL_METRICS,
                },
            )
            with txn.update_spec() as spec:
                spec.add_identity("product")
                if "device_kind" in schema.names:
                    spec.add_identity("device_kind")
                spec.add_field(_TIME_COLUMN.get(name, "created"), MonthTransform(), "month")
            txn.commit_transaction()
        except (TableAlreadyExistsError, _commit_failed()):
            pass  # another publisher created it first
        return _with_full_metrics(self.iceberg.load_table(identifier))

    def scan(self, name: str, row_filter: str | None = None) -> pa.Table:
        """A table (or the rows matching an Iceberg filter expression, e.g.
        ``"product = 'CAR-T'"``) read into memory as Arrow."""
        table = self.table(name)
        scan = table.scan(row_filter=row_filter) if row_filter else table.scan()
        result: pa.Table = scan.to_arrow()
        return result

    def polars(self, name: str) -> polars.LazyFrame:
        """A table as a Polars LazyFrame (``polars.scan_iceberg``: pruned by partition and
        column statistics)."""
        pl = _optional("polars", "analysis")
        lazy: polars.LazyFrame = pl.scan_iceberg(self.table(name))
        return lazy

    def duckdb(
        self,
        connection: duckdb.DuckDBPyConnection | None = None,
        tables: Iterable[str] = CATALOG_TABLES,
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with a view per table (all, or `tables`) over the current
        snapshot's data files."""
        duckdb = _optional("duckdb", "analysis")
        con = connection if connection is not None else duckdb.connect()
        for name in tables:
            con.register(name, self.dataset(name))
        return con

    def dataset(self, name: str) -> Any:
        """A table's current snapshot as a lazy pyarrow dataset over its Parquet data files
        (local warehouses), or read into memory (other file systems)."""
        import pyarrow.dataset as ds

        table = self.table(name)
        files = [task.file.file_path for task in table.scan().plan_files()]
        local = [f.removeprefix("file://") for f in files if "://" not in f.removeprefix("file://")]
        schema = self.scan_schema(name)
        if len(local) == len(files):
            return ds.dataset(local, format="parquet", schema=schema)
        return ds.dataset(self.scan(name))

    def scan_schema(self, name: str) -> pa.Schema:
        """The Arrow schema of a table as it is now (after any evolution)."""
        schema: pa.Schema = self.table(name).schema().as_arrow()
        return schema

    # -- publishing ---------------------------------------------------------------------------

    def published(self, batch_id: str) -> dict[str, Any] | None:
        """The batches row of `batch_id`, or None if it is not published."""
        self._refresh("batches")
        rows = self.table("batches").scan(row_filter=_batch_filter(batch_id)).to_arrow()
        if rows.num_rows == 0:
            return None
        found: dict[str, Any] = rows.to_pylist()[-1]
        return found

    def publish(self, record: BatchRecord | str | os.PathLike[str]) -> Published:
        """Publish one sealed, intact record: idempotent (a record published twice is stored
        once; one signed since it was published replaces its rows)."""
        rec = record if isinstance(record, BatchRecord) else open_batch(record)
        batch = rec.batch_id
        if not rec.sealed:
            raise RecordStateError(
                f"record {batch} at {rec.path} is not sealed; only sealed records are published "
                "(close the writer, or resume and close a crashed record)"
            )
        with ThreadPoolExecutor(1, thread_name_prefix=f"cellauto-verify-{batch}") as pool:
            # verify hashes the files while this thread reads them and writes the Parquet
            # files; nothing is committed before verify has passed
            checking = pool.submit(verify, rec.path)
            existing = self.published(batch)
            if existing is not None and existing["chain_head"] != rec.manifest.chain_head:
                raise RecordIntegrityError(
                    f"batch {batch}: the catalog {self.uri} holds another record with this batch "
                    f"id (sealed chain head {existing['chain_head']}, this record's "
                    f"{rec.manifest.chain_head}); not published"
                )
            unchanged = existing is not None and existing["head"] == rec.manifest.head
            tables: dict[str, pa.Table] = {}
            staged: dict[str, dict[int, list[str]]] = {}
            try:
                for name in () if unchanged else TABLES:
                    tables[name] = catalog_rows(rec, name)
                    staged[name] = self._stage(name, tables[name])
                report = checking.result()
                if not report.intact:
                    raise RecordIntegrityError(
                        f"record {batch} at {rec.path} does not verify, not published: "
                        f"{report.status}"
                    )
            except BaseException:
                self._discard(staged)
                raise
        if unchanged:
            return Published(batch, "unchanged", {})
        verified_at = datetime.now(UTC)
        for name, data in tables.items():
            self._replace(name, batch, data, staged[name])
        self._replace("batches", batch, _batch_row(rec, report.status, verified_at))
        rows = {name: data.num_rows for name, data in tables.items()}
        return Published(batch, "published" if existing is None else "updated", rows)

    def publish_many(
        self, records: Iterable[BatchRecord | str | os.PathLike[str]]
    ) -> list[Published]:
        """Publish each record in turn."""
        return [self.publish(record) for record in records]

    def _refresh(self, name: str) -> None:
        self._tables[name] = self.table(name).refresh()

    def _stage(self, name: str, data: pa.Table) -> dict[int, list[str]]:
        """Write `data`'s files for the table's current schema (nothing if the table must
        evolve first): table schema id -> files."""
        table = self.table(name)
        schema = table.schema().as_arrow()
        if any(f.name not in schema.names for f in data.schema):
            return {}
        return {table.schema().schema_id: self._write_files(name, table, _conform(data, schema))}

    def _discard(self, staged: dict[str, dict[int, list[str]]]) -> None:
        """Delete files written for a publish that will not be committed."""
        for name, by_schema in staged.items():
            io = self.table(name).io
            for path in (p for paths in by_schema.values() for p in paths):
                with contextlib.suppress(OSError):
                    io.delete(path)

    def _replace(
        self,
        name: str,
        batch_id: str,
        data: pa.Table,
        staged: dict[int, list[str]] | None = None,
    ) -> None:
        """Replace the rows of `batch_id` in table `name` by `data`, in one commit.

        The Parquet files are written once (per table schema; `staged` holds files already
        written) and added to the table together with the delete of the batch's earlier rows,
        so a concurrent publisher that wins the commit only costs this one a retry.
        """
        written: dict[int, list[str]] = dict(staged or {})
        plain = _value_schema(data.schema)

        def commit() -> None:
            self._refresh(name)
            table = self.table(name)
            if self._evolve(name, table, plain):
                table = self.table(name)
            schema = table.schema()
            if schema.schema_id not in written:
                conformed = _conform(data, schema.as_arrow())
                written[schema.schema_id] = self._write_files(name, table, conformed)
            with warnings.catch_warnings():
                # the first publish of a batch replaces nothing, which pyiceberg warns about
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                with table.transaction() as txn:
                    txn.delete(_batch_filter(batch_id))
                    if written[schema.schema_id]:
                        txn.add_files(written[schema.schema_id], check_duplicate_files=False)

        _retrying(f"publishing batch {batch_id} to {self.uri} ({name})", commit)

    def _write_files(self, name: str, table: Table, data: pa.Table) -> list[str]:
        """Parquet files of `data` in the table's data folder: one per partition, or several
        written in parallel for a large one (pyarrow's writer uses one core per file)."""
        jobs = []
        for folder, part in _partitions(data, _TIME_COLUMN.get(name, "created")):
            batch = quote(str(part.column("batch_id")[0]), safe="")
            pieces = max(1, min(_WRITERS, part.num_rows // _ROWS_PER_PIECE))
            step = -(-part.num_rows // pieces)
            for first in range(0, part.num_rows, step):
                path = f"{table.location()}/data/{folder}/{batch}-{uuid.uuid4()}.parquet"
                jobs.append((path, part.slice(first, step)))

        def write(path: str, rows: pa.Table) -> str:
            try:
                with table.io.new_output(path).create(overwrite=False) as stream:
                    pq.write_table(rows, stream, compression="zstd", store_schema=False)
            except OSError as exc:
                raise RecordError(f"catalog {self.uri}: cannot write {path}: {exc}") from None
            return path

        if len(jobs) == 1:
            return [write(*jobs[0])]
        with ThreadPoolExecutor(_WRITERS, thread_name_prefix="cellauto-parquet") as pool:
            return list(pool.map(write, *zip(*jobs, strict=True)))

    def _evolve(self, name: str, table: Table, schema: pa.Schema) -> bool:
        """Add the columns a newer record format brings (True if it did); refuse a changed
        column type."""
        current = table.schema().as_arrow()
        for f in schema:
            if f.name not in current.names:
                continue
            have = current.field(f.name).type
            if not _compatible(have, f.type):
                raise SchemaVersionError(
                    f"catalog {self.uri} table {name}: column {f.name} is {have} there but "
                    f"{f.type} in records of format {RECORD_FORMAT}; migrate the table or publish "
                    "to a new catalog"
                )
        added = [f.name for f in schema if f.name not in current.names]
        if not added:
            return False
        with table.update_schema() as update:
            update.union_by_name(schema)
        with table.transaction() as txn:
            txn.set_properties({_FORMAT_PROPERTY: RECORD_FORMAT})
        self._refresh(name)
        return True


def _with_full_metrics(table: Table) -> Table:
    """`table`, after setting the exact statistics partitioning needs if an older catalog
    created it without them."""
    missing = {k: v for k, v in _FULL_METRICS.items() if table.properties.get(k) != v}
    if not missing:
        return table
    with table.transaction() as txn:
        txn.set_properties(missing)
    return table.refresh()


def _batch_filter(batch_id: str) -> Any:
    from pyiceberg.expressions import EqualTo

    # pydantic's mypy plugin sees EqualTo's fields, not its positional __init__
    equal_to: Any = EqualTo
    return equal_to("batch_id", batch_id)


def _commit_failed() -> type[BaseException]:
    from pyiceberg.exceptions import CommitFailedException

    return CommitFailedException


def _compatible(have: pa.DataType, new: pa.DataType) -> bool:
    """Whether values of type `new` can be appended to a column of type `have`."""
    if have.equals(new):
        return True
    widening = {
        (pa.int32(), pa.int64()),
        (pa.float32(), pa.float64()),
        (pa.large_string(), pa.string()),
        (pa.string(), pa.large_string()),
    }
    if (have, new) in widening or (new, have) in widening:
        return True
    if pa.types.is_timestamp(have) and pa.types.is_timestamp(new):
        return (have.tz is None) == (new.tz is None)
    lists = (pa.types.is_list, pa.types.is_large_list)
    if any(t(have) for t in lists) and any(t(new) for t in lists):
        return _compatible(have.value_type, new.value_type)
    return False


def _value_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with dictionary types replaced by their value types."""
    return pa.schema(
        [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema]
    )


def _conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """`data` in the order and types of the table's schema (string columns may stay
    dictionary-encoded: Parquet writes them as strings); columns it lacks as nulls."""
    columns, fields = [], []
    for f in schema:
        if f.name not in data.column_names:
            columns.append(pa.nulls(data.num_rows, f.type))
            fields.append(f)
            continue
        column = data.column(f.name)
        if column.type.equals(f.type):
            columns.append(column)
            fields.append(f)
            continue
        stringy = pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        if pa.types.is_dictionary(column.type) and stringy:
            fields.append(f.with_type(column.type))
        else:
            column = column.cast(f.type)
            fields.append(f)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _month(value: datetime) -> int:
    return value.year * 12 + value.month - 1


def _partitions(data: pa.Table, time_column: str) -> list[tuple[str, pa.Table]]:
    """`data` split by (product, device kind, month): (folder name, rows) pairs. A record has
    one product; most have one device kind and one month, then nothing is split."""
    if data.num_rows == 0:
        return []
    keys: pa.Array | None = None
    times = data.column(time_column)
    low, high = (v.as_py() for v in pc.min_max(times).values())
    if low is not None and _month(low) != _month(high):
        keys = pc.add(pc.multiply(pc.year(times), 12), pc.subtract(pc.month(times), 1))
    if "device_kind" in data.column_names:
        kinds = data.column("device_kind")
        if pa.types.is_dictionary(kinds.type):
            kinds = pa.chunked_array([c.indices for c in kinds.unify_dictionaries().chunks])
        if len(pc.unique(kinds)) > 1:
            index = pc.dictionary_encode(kinds).combine_chunks().indices.cast(pa.int64())
            keys = index if keys is None else pc.add(pc.multiply(index, 1_000_000), keys)
    parts = [data] if keys is None else [data.filter(pc.equal(keys, k)) for k in pc.unique(keys)]
    return [(_folder(part, time_column), part) for part in parts]


def _folder(part: pa.Table, time_column: str) -> str:
    when = part.column(time_column)[0].as_py()
    names = [("product", str(part.column("product")[0]))]
    if "device_kind" in part.column_names:
        names.append(("device_kind", str(part.column("device_kind")[0])))
    names.append(("month", f"{when.year:04d}-{when.month:02d}" if when else "null"))
    return "/".join(f"{key}={quote(value, safe='')}" for key, value in names)


def _optional(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise RecordError(
            f"{module} is not installed; install it with `pip install cellauto[{extra}]`"
        ) from None


def _sqlite_catalog(uri: str, properties: dict[str, str]) -> Catalog:
    from pyiceberg.catalog.sql import SqlCatalog

    database = Path(uri.removeprefix("sqlite:///"))
    if not uri.startswith("sqlite:///") or not database.name:
        raise RecordError(f"catalog {uri!r}: expected sqlite:///<path>/catalog.db")
    database = database if database.is_absolute() else Path.cwd() / database
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        warehouse = database.parent / "warehouse"
        warehouse.mkdir(exist_ok=True)
    except OSError as exc:
        raise RecordError(f"catalog {uri}: cannot create {database.parent}: {exc}") from None
    props = {"uri": f"sqlite:///{database}", "warehouse": warehouse.as_uri(), **properties}
    from sqlalchemy.exc import OperationalError

    attempt = 0
    while True:
        try:
            return SqlCatalog("cellauto", **props)
        except OperationalError as exc:
            # two publishers opening a new catalog both create its tables ("table ... already
            # exists" for the later one), or one waits on the other's lock: open it again
            attempt += 1
            if attempt == _COMMIT_ATTEMPTS:
                raise RecordError(f"catalog {uri}: cannot open {database}: {exc}") from None
            time.sleep(random.uniform(0.01, 0.05) * attempt)


def catalog(uri: str, **properties: str) -> SiteCatalog:
    """Open (creating on first publish) a site catalog.

    - ``sqlite:///path/catalog.db``: an embedded SQLite catalog, warehouse ``path/warehouse/``.
    - ``http(s)://host/...``: an Iceberg REST catalog; the warehouse and object-storage
      settings (``warehouse="s3://bucket/cellauto"``, ``s3.endpoint=...``) come as `properties`
      or from the catalog server.
    - ``pyiceberg:<name>``: the catalog `name` as configured in ``~/.pyiceberg.yaml`` or
      ``PYICEBERG_CATALOG__<NAME>__*`` environment variables (where a site keeps credentials).
    """
    _optional("pyiceberg", "catalog")
    from pyiceberg.catalog import load_catalog

    props = dict(properties)
    if uri.startswith("sqlite:"):
        return SiteCatalog(_sqlite_catalog(uri, props), uri)
    if uri.startswith(("http://", "https://")):
        return SiteCatalog(load_catalog("cellauto", type="rest", uri=uri, **props), uri)
    if uri.startswith("pyiceberg:"):
        return SiteCatalog(load_catalog(uri.removeprefix("pyiceberg:"), **props), uri)
    raise RecordError(
        f"catalog {uri!r}: expected sqlite:///<path>.db, http(s)://<rest catalog> or "
        "pyiceberg:<configured catalog name>"
    )


def manifest_json(row: dict[str, Any]) -> dict[str, Any]:
    """The manifest a batches row was published from."""
    loaded: dict[str, Any] = json.loads(row["manifest"])
    return loaded
