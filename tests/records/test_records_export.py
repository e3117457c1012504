"""Exports: golden files for CSV, JSON Lines and Parquet; hive datasets other tools read.

Regenerate the golden files on purpose with ``CELLAUTO_REGEN_GOLDEN=1 pytest tests/records``,
then review the diff before committing it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from cellauto.errors import RecordError
from cellauto.records import (
    export_csv,
    export_jsonl,
    export_parquet,
    export_parquet_dataset,
    open_batch,
)
from cellauto.records.tables import TABLES
from cellauto.schema import GENESIS_HASH, AuditEntry, canonical_json

GOLDEN = Path(__file__).parents[1] / "golden" / "records"
REGEN = os.environ.get("CELLAUTO_REGEN_GOLDEN") == "1"


def _check_golden(name: str, actual: bytes) -> None:
    golden = GOLDEN / name
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(actual)
    assert golden.is_file(), f"{golden} missing; run with CELLAUTO_REGEN_GOLDEN=1 to create it"
    assert actual.decode() == golden.read_text(encoding="utf-8"), f"{name} differs from golden"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


@pytest.fixture
def golden_record(make_record: Callable[..., Path]) -> Path:
    """The golden record: deterministic content (fixed clock and ids), left open so its bytes
    do not depend on the compressor's version."""
    return make_record(seal=False)


def test_csv_export_matches_golden(golden_record: Path, tmp_path: Path) -> None:
    written = export_csv(golden_record, tmp_path / "csv")
    assert sorted(p.name for p in written) == [
        "audit.csv",
        "events.csv",
        "results.csv",
        "samples.csv",
    ]
    for file in written:
        _check_golden(f"csv/{file.name}", file.read_bytes())


def test_jsonl_export_matches_golden_and_rechecks_the_chain(
    golden_record: Path, tmp_path: Path
) -> None:
    written = export_jsonl(golden_record, tmp_path / "jsonl")
    for file in written:
        _check_golden(f"jsonl/{file.name}", file.read_bytes())
    prev = GENESIS_HASH
    for line in (tmp_path / "jsonl" / "audit.jsonl").read_text().splitlines():
        entry = json.loads(line)
        body = {k: v for k, v in entry.items() if k != "hash"}
        assert entry["prev_hash"] == prev
        assert hashlib.sha256(canonical_json(body)).hexdigest() == entry["hash"]
        AuditEntry.model_validate(entry)
        prev = entry["hash"]


def test_parquet_export_matches_golden(golden_record: Path, tmp_path: Path) -> None:
    for file in export_parquet(golden_record, tmp_path / "pq"):
        table = pq.read_table(file)
        content = {
            "schema": [f"{f.name}: {f.type}" for f in table.schema],
            "rows": [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()],
        }
        text = json.dumps(content, indent=1, sort_keys=True) + "\n"
        _check_golden(f"parquet/{file.stem}.json", text.encode())


def test_exports_are_pure_functions_of_the_record(golden_record: Path, tmp_path: Path) -> None:
    for exporter in (export_csv, export_jsonl, export_parquet):
        name = exporter.__name__
        first = {p.name: p.read_bytes() for p in exporter(golden_record, tmp_path / name / "1")}
        second = {
            p.name: p.read_bytes()
            for p in exporter(open_batch(golden_record), tmp_path / name / "2")
        }
        assert first == second


def test_sealed_record_exports_the_same_rows_plus_the_seal_entry(
    make_record: Callable[..., Path], tmp_path: Path
) -> None:
    sealed = make_record("B-0001")
    export_csv(sealed, tmp_path / "csv")
    export_jsonl(sealed, tmp_path / "jsonl")
    for name in ("samples.csv", "events.csv", "results.csv"):
        assert (tmp_path / "csv" / name).read_bytes() == (GOLDEN / "csv" / name).read_bytes()
    audit = (tmp_path / "jsonl" / "audit.jsonl").read_text().splitlines()
    assert audit[:-1] == (GOLDEN / "jsonl" / "audit.jsonl").read_text().splitlines()
    assert json.loads(audit[-1])["action"] == "record_sealed"


def test_hive_partitioned_dataset_reads_in_duckdb_and_polars(
    make_record: Callable[..., Path], tmp_path: Path
) -> None:
    records = [make_record(f"B-{i}", samples=5 + i) for i in range(3)]
    records.append(make_record("odd", batch_id="B.odd_1", samples=2))
    out = tmp_path / "lake"
    export_parquet_dataset(records, out)
    assert (out / "samples" / "batch_id=B-0" / "part-0.parquet").is_file()
    assert (out / "samples" / "batch_id=B.odd_1" / "part-0.parquet").is_file()
    rows = duckdb.sql(
        f"select batch_id, count(*) from read_parquet('{out}/samples/**/*.parquet', "
        "hive_partitioning=true) group by batch_id order by batch_id"
    ).fetchall()
    assert rows == [("B-0", 7), ("B-1", 8), ("B-2", 9), ("B.odd_1", 4)]
    frame = (
        pl.scan_parquet(out / "audit" / "**" / "*.parquet", hive_partitioning=True)
        .group_by("batch_id")
        .agg(pl.len())
        .sort("batch_id")
        .collect()
    )
    assert frame["len"].to_list() == [6, 6, 6, 6]
    assert frame["batch_id"].to_list()[:3] == ["B-0", "B-1", "B-2"]


def test_an_export_covers_every_table_and_never_overwrites_without_force(
    make_record: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_record("B-0001")
    out = tmp_path / "out"
    for exporter in (export_csv, export_jsonl, export_parquet):
        written = exporter(path, tmp_path / exporter.__name__)
        assert sorted(p.stem for p in written) == sorted(TABLES)
    export_csv(path, out)
    with pytest.raises(RecordError, match="exists and is not empty; choose a new folder"):
        export_jsonl(path, out)
    assert sorted(p.suffix for p in out.iterdir()) == [".csv"] * 4
    export_jsonl(path, out, force=True)
    assert sorted(p.suffix for p in out.iterdir()) == [".jsonl"] * 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_unreadable_table_leaves_no_partial_export(
    make_record: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_record("B-0001")
    (path / "results.arrow").write_bytes(b"not arrow")
    out = tmp_path / "out"
    with pytest.raises(RecordError, match="failed, nothing written"):
        export_parquet(path, out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["B-0001"]
