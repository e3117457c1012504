"""Reading records: one batch (sealed or open), many batches, DuckDB, Polars, versions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from records_helpers import T0, batch_info

from cellauto.errors import RecordError, SchemaVersionError
from cellauto.records import RecordWriter, open_batch, open_batches
from cellauto.records.tables import default_arrow_dir, file_schema, stale_files
from cellauto.schema import Quality, Sample


def test_open_record_reads_segments_and_sealed_reads_files(
    make_record: Callable[..., Path],
) -> None:
    open_path = make_record("B-open", seal=False)
    sealed_path = make_record("B-sealed")
    opened, sealed = open_batch(open_path), open_batch(sealed_path)
    assert not opened.sealed
    assert sealed.sealed
    for name in ("samples", "events", "results"):
        left = opened.table(name).drop_columns(["batch_id"]).to_pylist()
        assert left == sealed.table(name).drop_columns(["batch_id"]).to_pylist()


def test_duckdb_and_polars_views(make_record: Callable[..., Path]) -> None:
    for path in (make_record("B-1"), make_record("B-2", seal=False)):
        record = open_batch(path)
        con = record.duckdb()
        rows = con.sql(
            "select channel, count(*), avg(value) from samples group by channel order by channel"
        ).fetchall()
        assert rows == [
            ("chamber.door_closed", 1, None),
            ("chamber.step", 1, None),
            ("chamber.temperature", 20, pytest.approx(37.0 + 19 / 16)),
        ]
        assert con.sql("select count(*) from audit").fetchall() == [(6 if record.sealed else 5,)]
        frame = record.polars().group_by("channel").agg(pl.len()).collect()
        assert dict(zip(*frame.to_dict(as_series=False).values(), strict=True)) == {
            "chamber.door_closed": 1,
            "chamber.step": 1,
            "chamber.temperature": 20,
        }
        assert isinstance(con, duckdb.DuckDBPyConnection)


def test_open_batches_scans_many_batches_as_one_dataset(make_record: Callable[..., Path]) -> None:
    paths = [make_record(f"B-{i}", samples=10 + i) for i in range(3)]
    make_record("B-open", seal=False)
    root = paths[0].parent
    dataset = open_batches(root)
    assert dataset.count_rows() == (12 + 13 + 14)
    by_batch = (
        dataset.to_table(columns=["batch_id"])
        .unify_dictionaries()  # each file has its own dictionaries
        .group_by("batch_id")
        .aggregate([("batch_id", "count")])
    )
    counts = dict(zip(*by_batch.to_pydict().values(), strict=True))
    assert counts == {"B-0": 12, "B-1": 13, "B-2": 14}
    with_open = open_batches(root, include_open=True)
    assert with_open.count_rows() == 12 + 13 + 14 + 22
    filtered = dataset.to_table(filter=pc.field("channel") == "chamber.step")
    assert filtered.num_rows == 3
    con = duckdb.connect()
    con.register("samples", dataset)
    assert con.sql("select count(distinct batch_id) from samples").fetchall() == [(3,)]
    assert open_batches(root, "events").count_rows() == 9


def test_newer_schema_or_record_format_gives_a_clear_message(
    make_record: Callable[..., Path],
) -> None:
    path = make_record()
    original = (path / "manifest.json").read_text()
    manifest = json.loads(original)
    manifest["schema_version"] = "2.0"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SchemaVersionError, match=r"schema version 2\.0, newer.*upgrade cellauto"):
        open_batch(path)
    manifest = json.loads(original)
    manifest["record_format"] = "7.1"
    manifest["a_field_from_the_future"] = 1
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SchemaVersionError, match=r"record format 7\.1.*upgrade cellauto"):
        open_batch(path)
    manifest["record_format"] = "1.9"  # a newer minor version only adds: still readable
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert open_batch(path).samples.num_rows == 22


def test_not_a_record(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="not a batch record"):
        open_batch(tmp_path)
    with pytest.raises(RecordError, match="no table 'nope'"):
        open_batches(tmp_path, "nope")


def test_published_arrow_schemas_match_the_code() -> None:
    assert stale_files(default_arrow_dir()) == []


def test_stale_arrow_schema_is_reported(tmp_path: Path) -> None:
    from cellauto.records.tables import export

    export(tmp_path)
    assert stale_files(tmp_path) == []
    (tmp_path / "samples.json").write_text("{}")
    (tmp_path / "old.json").write_text("{}")
    assert stale_files(tmp_path) == ["old.json", "samples.json"]


values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**53), 2**53),
)
texts = st.text(min_size=0, max_size=20)


@st.composite
def sample_rows(draw: st.DrawFn) -> list[Sample]:
    channels = {
        "chamber.temperature": ("number", "Cel"),
        "chamber.ph": ("number", "[pH]"),
        "chamber.door_closed": ("bool", None),
        "chamber.step": ("text", None),
    }
    rows = []
    for seq in range(draw(st.integers(0, 40))):
        channel = draw(st.sampled_from(sorted(channels)))
        kind, unit = channels[channel]
        value: float | int | bool | str = draw(
            values if kind == "number" else st.booleans() if kind == "bool" else texts
        )
        rows.append(
            Sample(
                device_id=draw(st.sampled_from(["cocoon-1", "prodigy-1"])),
                channel=channel,
                timestamp=T0 + timedelta(microseconds=draw(st.integers(0, 10**12))),
                value=value,
                unit=unit,
                quality=draw(st.sampled_from(list(Quality))),
                seq=seq,
            )
        )
    return rows


def _row(s: Sample) -> dict[str, object]:
    number = not isinstance(s.value, bool | str)
    return {
        "batch_id": "B-0001",
        "device_id": s.device_id,
        "channel": s.channel,
        "timestamp": s.timestamp,
        "value": float(s.value) if number else None,  # type: ignore[arg-type]
        "value_text": s.value if isinstance(s.value, str) else None,
        "value_bool": s.value if isinstance(s.value, bool) else None,
        "unit": s.unit,
        "quality": s.quality.value,
        "seq": s.seq,
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sample_rows(), st.integers(1, 7), st.booleans())
def test_samples_round_trip_through_arrow(
    tmp_path_factory: pytest.TempPathFactory, rows: list[Sample], flush_rows: int, seal: bool
) -> None:
    path = tmp_path_factory.mktemp("prop") / "B-0001"
    writer = RecordWriter.create(path, batch_info(), flush_rows=flush_rows, flush_interval=None)
    for row in rows:
        writer.add_sample(row)
    if seal:
        writer.close()
    else:
        writer.abandon()
    table = open_batch(path).samples
    assert table.schema.equals(file_schema("samples"), check_metadata=False)
    assert table.to_pylist() == [_row(s) for s in rows]
