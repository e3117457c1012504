"""The site catalog: publish records to Iceberg tables, query them, re-publish, evolve, race."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from site_records import T0, make_record

from cellauto.cli import main
from cellauto.errors import RecordIntegrityError, RecordStateError, SchemaVersionError
from cellauto.records import SiteCatalog, catalog, open_batch, sign
from cellauto.records.site_catalog import NAMESPACE, catalog_schema
from cellauto.records.tables import RECORD_FORMAT
from example_runs import ExampleRun

pytest.importorskip("pyiceberg")

SAMPLES_PER_RECORD = 50  # make_record: 10 channels x 5 hours


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("records")
    return [
        make_record(folder, "B-0001", kind="prodigy", final_density=2.0e6),
        make_record(folder, "B-0002", kind="cocoon", final_density=3.0e6),
        make_record(
            folder,
            "B-0003",
            kind="cocoon",
            product="MSC",
            start=T0 + timedelta(days=40),
            final_density=4.0e6,
        ),
    ]


@pytest.fixture(scope="module")
def site(records: list[Path], tmp_path_factory: pytest.TempPathFactory) -> SiteCatalog:
    folder = tmp_path_factory.mktemp("site")
    site = catalog(f"sqlite:///{folder}/catalog.db")
    assert [site.publish(r).action for r in records] == ["published"] * 3
    return site


def test_published_batches_carry_chain_head_and_verify_result(
    site: SiteCatalog, records: list[Path]
) -> None:
    batches = site.scan("batches").sort_by("batch_id").to_pylist()
    assert [b["batch_id"] for b in batches] == ["B-0001", "B-0002", "B-0003"]
    for row, path in zip(batches, records, strict=True):
        manifest = catalog_manifest(path)
        assert row["chain_head"] == manifest["chain_head"]
        assert row["head"] == manifest["chain_head"]
        assert row["verify_status"] == "sealed and intact"
        assert row["samples"] == SAMPLES_PER_RECORD
    assert (Path(site.uri.removeprefix("sqlite:///")).parent / "warehouse" / NAMESPACE).is_dir()


def catalog_manifest(path: Path) -> dict[str, object]:
    import json

    loaded: dict[str, object] = json.loads((path / "manifest.json").read_text())
    return loaded


def test_tables_are_partitioned_by_product_device_kind_and_month(site: SiteCatalog) -> None:
    for name in ("samples", "events", "results"):
        spec = site.table(name).spec()
        assert [(f.name, str(f.transform)) for f in spec.fields] == [
            ("product", "identity"),
            ("device_kind", "identity"),
            ("month", "month"),
        ]
    assert [f.name for f in site.table("audit").spec().fields] == ["product", "month"]


def test_query_through_pyiceberg_polars_and_duckdb(site: SiteCatalog) -> None:
    import polars as pl

    msc = site.scan("samples", "product = 'MSC'")
    assert set(msc.column("batch_id").to_pylist()) == {"B-0003"}
    assert msc.num_rows == SAMPLES_PER_RECORD

    final = (
        site.polars("samples")
        .filter(pl.col("channel") == "in_process_control.cell_concentration")
        .sort("timestamp")
        .group_by("batch_id")
        .agg(pl.col("value").last().alias("final_density"))
        .sort("batch_id")
        .collect()
    )
    assert final.to_dicts() == [
        {"batch_id": "B-0001", "final_density": 2.0e6},
        {"batch_id": "B-0002", "final_density": 3.0e6},
        {"batch_id": "B-0003", "final_density": 4.0e6},
    ]
    con = site.duckdb()
    kinds = con.sql(
        "select device_kind, count(distinct batch_id) from samples group by all order by 1"
    ).fetchall()
    assert kinds == [("cocoon", 2), ("prodigy", 1)]
    joined = con.sql(
        "select b.product, count(*) from results r join batches b using (batch_id) group by all "
        "order by 1"
    ).fetchall()
    assert joined == [("CAR-T", 2), ("MSC", 1)]


def test_republishing_stores_nothing_twice(site: SiteCatalog, records: list[Path]) -> None:
    snapshot = site.table("samples").refresh().current_snapshot()
    assert [site.publish(r).action for r in records] == ["unchanged"] * 3
    assert site.table("samples").refresh().current_snapshot() == snapshot
    assert site.scan("samples").num_rows == 3 * SAMPLES_PER_RECORD
    assert site.scan("batches").num_rows == 3


def test_a_signature_after_publishing_updates_the_batch_in_place(
    records: list[Path], tmp_path: Path
) -> None:
    site = catalog(f"sqlite:///{tmp_path}/catalog.db")
    record = make_record(tmp_path / "r", "B-0100")
    site.publish(record)
    audit_before = site.scan("audit").num_rows
    sign(record, printed_name="Bob Jones", user_id="bob", meaning="approval", reason="QA")
    assert site.publish(record).action == "updated"
    assert site.scan("audit").num_rows == audit_before + 1
    assert site.scan("samples").num_rows == SAMPLES_PER_RECORD
    (row,) = site.scan("batches").to_pylist()
    assert row["signatures_after_seal"] == 1
    assert row["head"] != row["chain_head"]


def test_an_interrupted_publish_is_completed_without_duplicates(tmp_path: Path) -> None:
    from cellauto.records import open_batch
    from cellauto.records.site_catalog import catalog_rows

    site = catalog(f"sqlite:///{tmp_path}/catalog.db")
    record = make_record(tmp_path / "r", "B-0200")
    site._replace("samples", "B-0200", catalog_rows(open_batch(record), "samples"))  # then a crash
    assert site.published("B-0200") is None
    assert site.publish(record).action == "published"
    assert site.scan("samples").num_rows == SAMPLES_PER_RECORD


def test_refuses_unsealed_tampered_and_foreign_records(tmp_path: Path) -> None:
    site = catalog(f"sqlite:///{tmp_path}/catalog.db")
    unsealed = make_record(tmp_path / "open", "B-0300", seal=False)
    with pytest.raises(RecordStateError, match=r"B-0300.*not sealed"):
        site.publish(unsealed)
    tampered = make_record(tmp_path / "bad", "B-0301")
    data = bytearray((tampered / "samples.arrow").read_bytes())
    data[-100] ^= 0xFF
    (tampered / "samples.arrow").write_bytes(bytes(data))
    with pytest.raises(RecordIntegrityError, match=r"B-0301.*does not verify"):
        site.publish(tampered)
    published = make_record(tmp_path / "one", "B-0302")
    site.publish(published)
    (published / "files" / "late.txt").write_text("added after publishing")
    with pytest.raises(RecordIntegrityError, match=r"B-0302.*does not verify"):
        site.publish(published)  # even when nothing else changed
    other = make_record(tmp_path / "two", "B-0302", start=T0 + timedelta(days=1))
    with pytest.raises(RecordIntegrityError, match="another record with this batch id"):
        site.publish(other)
    assert site.scan("batches").column("batch_id").to_pylist() == ["B-0302"]
    assert site.scan("samples").num_rows == SAMPLES_PER_RECORD


def _older_catalog(uri: str, samples_schema: pa.Schema) -> None:
    """A catalog whose samples table an older cellauto created."""
    site = catalog(uri)
    site.iceberg.create_namespace(NAMESPACE)
    site.iceberg.create_table(f"{NAMESPACE}.samples", schema=samples_schema)


def test_a_newer_record_format_evolves_an_older_catalog(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/catalog.db"
    current = catalog_schema("samples")
    older = pa.schema([f for f in current if f.name not in ("value_bool", "device_kind")])
    _older_catalog(uri, older)
    site = catalog(uri)
    site.publish(make_record(tmp_path / "r", "B-0400"))
    assert site.scan_schema("samples").names == [*older.names, "value_bool", "device_kind"]
    samples = site.scan("samples")
    assert samples.num_rows == SAMPLES_PER_RECORD
    assert pc.count(samples.column("device_kind")).as_py() == SAMPLES_PER_RECORD
    properties = site.table("samples").properties
    assert properties["cellauto.record_format"] == RECORD_FORMAT


def test_an_incompatible_catalog_is_refused_clearly(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/catalog.db"
    current = catalog_schema("samples")
    changed = pa.schema(
        [pa.field("value", pa.string()) if f.name == "value" else f for f in current]
    )
    _older_catalog(uri, changed)
    site = catalog(uri)
    with pytest.raises(SchemaVersionError, match="table samples: column value is"):
        site.publish(make_record(tmp_path / "r", "B-0500"))
    assert site.published("B-0500") is None


def test_concurrent_publishers_lose_nothing(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/catalog.db"
    folder = tmp_path / "records"
    shared = make_record(folder, "B-SHARED")
    first = [make_record(folder, f"B-A{i}") for i in range(2)]
    second = [make_record(folder, f"B-B{i}", kind="cocoon") for i in range(2)]
    child = Path(__file__).with_name("publisher_child.py")
    procs = [
        subprocess.Popen(
            [sys.executable, str(child), uri, *map(str, [*paths, shared])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for paths in (first, second)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    site = catalog(uri)
    batches = sorted(site.scan("batches").column("batch_id").to_pylist())
    assert batches == sorted(["B-SHARED", *(p.name for p in first + second)])
    samples = site.scan("samples")
    assert samples.num_rows == 5 * SAMPLES_PER_RECORD
    counts = samples.group_by("batch_id").aggregate([("seq", "count")]).to_pylist()
    assert all(row["seq_count"] == SAMPLES_PER_RECORD for row in counts)


def test_a_namespace_another_publisher_creates_meanwhile_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQL catalog checks for the namespace, then inserts it: another publisher's insert in
    between fails this one on the database's unique key (seen once in the race test above)."""
    uri = f"sqlite:///{tmp_path}/catalog.db"
    site = catalog(uri)
    real_exists = site.iceberg.namespace_exists
    checks: list[bool] = []

    def another_publisher_wins(namespace: str) -> bool:
        if not checks:
            catalog(uri).iceberg.create_namespace(NAMESPACE)
            checks.append(False)
            return False
        checks.append(real_exists(namespace))
        return checks[-1]

    monkeypatch.setattr(site.iceberg, "namespace_exists", another_publisher_wins)
    site.publish(make_record(tmp_path / "r", "B-0600"))
    assert checks[0] is False
    assert site.scan("batches").column("batch_id").to_pylist() == ["B-0600"]


def test_a_new_catalog_another_publisher_creates_meanwhile_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two publishers opening a new SQLite catalog both find its tables absent and create them;
    the later one fails with "table ... already exists" (seen once in the race test above)."""
    from pyiceberg.catalog.sql import SqlCatalog, SqlCatalogBaseTable

    real_create = SqlCatalog.create_tables
    races: list[str] = []

    def another_publisher_first(self: SqlCatalog) -> None:
        if not races:
            real_create(self)  # the other publisher's, then ours:
            races.append("lost")
            SqlCatalogBaseTable.metadata.create_all(self.engine, checkfirst=False)
        real_create(self)

    monkeypatch.setattr(SqlCatalog, "create_tables", another_publisher_first)
    site = catalog(f"sqlite:///{tmp_path}/catalog.db")
    site.publish(make_record(tmp_path / "r", "B-0700"))
    assert races == ["lost"]
    assert site.scan("batches").column("batch_id").to_pylist() == ["B-0700"]


def test_cli_publishes(
    records: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{tmp_path}/cli/catalog.db"
    assert main(["records", "publish", *map(str, records[:2]), "--catalog", uri]) == 0
    assert main(["records", "publish", str(records[0]), "--catalog", uri]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("B-0001: published (samples 50")
    assert out[2] == "B-0001: unchanged"
    unsealed = make_record(tmp_path / "open", "B-0600", seal=False)
    assert main(["records", "publish", str(unsealed), "--catalog", uri]) != 0
    assert "not sealed" in capsys.readouterr().err


def test_a_record_spanning_months_and_device_kinds_is_split_by_partition(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from cellauto.records.site_catalog import _partitions

    site = catalog(f"sqlite:///{tmp_path}/catalog.db")
    start = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    site.publish(make_record(tmp_path / "r", "B-0700", start=start, hours=4))
    partitions = sorted(
        (task.file.partition[2], task.file.record_count)
        for task in site.table("samples").scan().plan_files()
    )
    march, april = (2026 - 1970) * 12 + 2, (2026 - 1970) * 12 + 3
    assert partitions == [(march, 20), (april, 30)]
    assert site.scan("samples", "timestamp >= '2026-04-01T00:00:00+00:00'").num_rows == 30

    table = pa.table(
        {
            "batch_id": ["B"] * 4,
            "product": ["CAR-T"] * 4,
            "device_kind": pa.array(["cocoon", "prodigy", "cocoon", "prodigy"]).dictionary_encode(),
            "time": pa.array([start] * 4, pa.timestamp("us", tz="UTC")),
        }
    )
    folders = sorted(folder for folder, _ in _partitions(table, "time"))
    assert folders == [
        "product=CAR-T/device_kind=cocoon/month=2026-03",
        "product=CAR-T/device_kind=prodigy/month=2026-03",
    ]


def test_the_demo_record_publishes_once_and_queries_by_product(
    demo: ExampleRun, tmp_path: Path
) -> None:
    record = Path(demo.cwd, "records", "B-DEMO-001")
    site = catalog(f"sqlite:///{tmp_path}/catalog.db")
    assert site.publish(record).action == "published"
    assert site.publish(record).action == "unchanged"
    rows = open_batch(record).samples.num_rows
    assert site.scan("samples").num_rows == rows
    batches = site.scan("batches").to_pylist()
    assert [(b["batch_id"], b["verify_status"]) for b in batches] == [
        ("B-DEMO-001", "sealed and intact")
    ]
    per_device = site.polars("samples").group_by("device_id").len().collect()
    assert per_device["len"].sum() == rows
