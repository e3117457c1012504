"""RecordWriter: what goes in comes out, bad rows are rejected, flush bounds hold."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from records_helpers import T0, StepClock, batch_info, fill, sample

from cellauto.errors import (
    RecordError,
    RecordStateError,
    RecordValidationError,
)
from cellauto.records import RecordWriter, open_batch, verify
from cellauto.schema import Quality, Sample


def _columns(n: int, *, unit: str = "Cel", start: int = 0, tz: str | None = "UTC") -> pa.Table:
    return pa.table(
        {
            "device_id": pa.array(["prodigy-1"] * n).dictionary_encode(),
            "channel": ["centrifuge.speed"] * n,
            "unit": [unit] * n,
            "timestamp": pa.array(
                [T0 + timedelta(seconds=i) for i in range(start, start + n)],
                pa.timestamp("us", tz=tz),
            ),
            "value": pa.array(range(start, start + n), pa.int64()),
            "seq": range(start, start + n),
        }
    )


def test_round_trip_of_every_table(make_record: object, tmp_path: Path) -> None:
    path = make_record()  # type: ignore[operator]
    record = open_batch(path)
    assert record.sealed
    samples = record.samples.to_pylist()
    assert len(samples) == 22
    assert samples[0]["timestamp"] == T0
    assert samples[0]["value"] == 37.0
    assert samples[0]["unit"] == "Cel"
    assert samples[20]["value"] is None
    assert samples[20]["value_bool"] is True
    assert samples[21]["value_text"] == "seed"
    assert samples[21]["unit"] is None
    kinds = record.events.column("kind").to_pylist()
    assert kinds == ["state_changed", "step_started", "alarm_raised"]
    assert record.events.to_pylist()[2]["alarm_code"] == "door_open"
    [result] = record.result_models()
    assert result.properties == {"viability": 0.93}
    actions = [e.action for e in record.audit_entries()]
    assert actions == [
        "record_created",
        "file_added",
        "set_parameter",
        "checkpoint",
        "sign",
        "record_sealed",
    ]
    assert record.manifest.row_counts == {"samples": 22, "events": 3, "results": 1, "audit": 6}
    assert record.manifest.time_start == T0
    assert record.manifest.chain_head == record.audit_entries()[-1].hash
    assert record.manifest.devices[0].profile_version == "0.1"
    assert not (path / "samples").exists(), "segments are removed once compacted"


def test_sealed_tables_are_compressed_arrow_ipc_files(make_record: object) -> None:
    path = make_record()  # type: ignore[operator]
    reader = pa.ipc.open_file(pa.memory_map(str(path / "samples.arrow")))
    assert reader.schema.metadata[b"cellauto.schema_version"] == b"1.0"
    assert reader.num_record_batches >= 1
    assert pa.types.is_dictionary(reader.schema.field("channel").type)


def test_columnar_path_casts_and_codes(tmp_path: Path) -> None:
    with RecordWriter.create(tmp_path / "b", batch_info()) as writer:
        writer.add_samples(_columns(100))
        writer.add_samples(_columns(50, start=100).to_batches()[0])
        writer.add_sample(
            sample(0, device="prodigy-1", channel="centrifuge.speed", value=3, unit="Cel")
        )
    table = open_batch(tmp_path / "b").samples
    assert table.num_rows == 151
    assert table.column("value").type == pa.float64()
    assert table.column("seq").to_pylist()[:150] == list(range(150))
    assert set(table.column("quality").to_pylist()) == {"good"}


def test_unit_differing_from_first_recorded_is_rejected_and_record_stays_consistent(
    tmp_path: Path,
) -> None:
    writer = RecordWriter.create(tmp_path / "b", batch_info())
    writer.add_sample(sample(0))
    with pytest.raises(RecordValidationError) as info:
        writer.add_sample(sample(1, unit="[degF]"))
    message = str(info.value)
    assert "B-0001" in message
    assert "cocoon-1" in message
    assert "chamber.temperature" in message
    assert "'[degF]'" in message
    assert "'Cel'" in message
    writer.add_samples(_columns(10, unit="Cel"))
    with pytest.raises(RecordValidationError, match=r"prodigy-1: centrifuge\.speed"):
        writer.add_samples(_columns(10, unit="{rev}/min"))
    writer.add_sample(sample(2))
    writer.close()
    record = open_batch(tmp_path / "b")
    assert record.samples.column("seq").to_pylist()[:1] == [0]
    assert record.samples.column("unit").to_pylist() == ["Cel", "Cel"] + ["Cel"] * 10
    assert verify(tmp_path / "b").status == "sealed and intact"


def test_declared_channel_unit_is_enforced_from_the_first_sample(tmp_path: Path) -> None:
    writer = RecordWriter.create(
        tmp_path / "b", batch_info(), channel_units={("cocoon-1", "chamber.temperature"): "K"}
    )
    with pytest.raises(RecordValidationError, match="declared unit 'K'"):
        writer.add_sample(sample(0))
    writer.add_device("prodigy-1", kind="prodigy", channel_units={"centrifuge.speed": "{rev}/min"})
    with pytest.raises(RecordValidationError, match="declared unit"):
        writer.add_samples(_columns(3, unit="Cel"))
    writer.add_samples(_columns(3, unit="{rev}/min"))
    writer.close()
    assert open_batch(tmp_path / "b").samples.num_rows == 3


def test_naive_timestamps_are_rejected(tmp_path: Path) -> None:
    writer = RecordWriter.create(tmp_path / "b", batch_info())
    naive = Sample.model_construct(
        device_id="cocoon-1",
        channel="chamber.temperature",
        timestamp=datetime(2026, 1, 1),
        value=37.0,
        unit="Cel",
        quality=Quality.GOOD,
        seq=0,
    )
    with pytest.raises(RecordValidationError, match="time zone"):
        writer.add_sample(naive)
    with pytest.raises(RecordValidationError, match="timezone-aware") as info:
        writer.add_samples(_columns(5, tz=None))
    assert "prodigy-1" in str(info.value)
    assert "centrifuge.speed" in str(info.value)
    writer.close()
    assert open_batch(tmp_path / "b").samples.num_rows == 0


def test_values_of_the_wrong_type_are_rejected(tmp_path: Path) -> None:
    writer = RecordWriter.create(tmp_path / "b", batch_info())
    writer.add_sample(sample(0, channel="chamber.step", value="seed", unit=None))
    with pytest.raises(RecordValidationError, match="wrong type"):
        writer.add_sample(sample(1, channel="chamber.step", value=True, unit=None))
    with pytest.raises(RecordValidationError, match="wrong type"):
        writer.add_sample(sample(2, channel="chamber.step", value=2.0))
    text_values = _columns(2).set_column(4, "value", pa.array(["a", "b"]))
    with pytest.raises(RecordValidationError, match="wrong type"):
        writer.add_samples(text_values)
    bad_quality = _columns(2).append_column("quality", pa.array(["good", "excellent"]))
    with pytest.raises(RecordValidationError, match="excellent"):
        writer.add_samples(bad_quality)
    with pytest.raises(RecordError, match="needs columns"):
        writer.add_samples(_columns(2).drop_columns(["seq"]))
    writer.add_samples(_columns(2).append_column("quality", pa.array(["bad", "uncertain"])))
    writer.close()
    table = open_batch(tmp_path / "b").samples
    assert table.column("quality").to_pylist() == ["good", "bad", "uncertain"]


def test_rows_reach_disk_within_the_flush_interval_without_flush(tmp_path: Path) -> None:
    writer = RecordWriter.create(tmp_path / "b", batch_info(), flush_interval=0.2)
    writer.add_sample(sample(0))
    writer.add_event(
        __import__("cellauto").Event(
            device_id="cocoon-1", time=T0, seq=0, kind="note", message="hello"
        )
    )
    deadline = time.monotonic() + 5
    record = open_batch(tmp_path / "b")
    # the flusher writes one table after the other: wait for both, not just the first
    while not (record.samples.num_rows and record.events.num_rows) and time.monotonic() < deadline:
        time.sleep(0.05)
        record = open_batch(tmp_path / "b")
    assert record.samples.num_rows == 1
    assert record.events.num_rows == 1
    writer.close()


def test_rows_reach_disk_at_the_row_bound(tmp_path: Path) -> None:
    writer = RecordWriter.create(tmp_path / "b", batch_info(), flush_rows=100, flush_interval=None)
    for i in range(250):
        writer.add_sample(sample(i))
    assert open_batch(tmp_path / "b").samples.num_rows == 200
    writer.close()
    assert open_batch(tmp_path / "b").samples.num_rows == 250


def test_audit_entries_are_on_disk_as_soon_as_appended(tmp_path: Path) -> None:
    writer = RecordWriter.create(tmp_path / "b", batch_info(), flush_interval=None)
    entry = writer.audit("bob", "acknowledge", "alarm:A-1", reason="checked the door")
    entries = open_batch(tmp_path / "b").audit_entries()
    assert entries[-1] == entry
    writer.abandon()


def test_sealed_and_closed_records_refuse_writes(tmp_path: Path) -> None:
    writer = RecordWriter.create(tmp_path / "b", batch_info())
    writer.close()
    writer.close()  # safe to call twice
    with pytest.raises(RecordStateError, match="closed"):
        writer.add_sample(sample(0))
    with pytest.raises(RecordStateError, match="sealed"):
        RecordWriter.resume(tmp_path / "b")
    with pytest.raises(RecordStateError, match="not empty"):
        RecordWriter.create(tmp_path / "b", batch_info())


def test_files_cannot_be_replaced_or_escape_the_record(tmp_path: Path) -> None:
    writer = RecordWriter.create(tmp_path / "b", batch_info())
    stored = writer.add_file(b"abc", "image.png", mime_type="image/png")
    assert stored.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(RecordStateError, match="never replaced"):
        writer.add_file(b"xyz", "image.png", mime_type="image/png")
    with pytest.raises(RecordError, match="plain file name"):
        writer.add_file(b"xyz", "../escape.txt", mime_type="text/plain")
    writer.close()


def test_exception_in_with_block_seals_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), RecordWriter.create(tmp_path / "b", batch_info()):
        _ = 1 / 0
    manifest = open_batch(tmp_path / "b").manifest
    assert manifest.sealed
    assert manifest.seal_reason is not None
    assert "ZeroDivisionError" in manifest.seal_reason


def test_resume_starts_a_new_segment_and_continues_the_chain(tmp_path: Path) -> None:
    writer = RecordWriter.create(tmp_path / "b", batch_info(), clock=StepClock())
    fill(writer)
    writer.abandon()
    resumed = RecordWriter.resume(tmp_path / "b", clock=StepClock(T0 + timedelta(hours=1)))
    with pytest.raises(RecordValidationError, match="first recorded"):
        resumed.add_sample(sample(99, unit="K"))  # the unit is learnt from the old segment
    resumed.add_sample(sample(100, value=38.0))
    resumed.flush()
    assert sorted(p.name for p in (tmp_path / "b" / "samples").iterdir()) == [
        "segment-000001.arrows",
        "segment-000002.arrows",
    ]
    assert verify(tmp_path / "b").status == "unsealed but intact"
    resumed.close()
    record = open_batch(tmp_path / "b")
    assert record.samples.num_rows == 23
    assert "record_resumed" in [e.action for e in record.audit_entries()]
    assert verify(tmp_path / "b").status == "sealed and intact"


def test_timestamps_keep_microseconds_and_convert_to_utc(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
    with RecordWriter.create(tmp_path / "b", batch_info()) as writer:
        writer.add_sample(
            Sample(device_id="d", channel="a.b", timestamp=local, value=1, unit="1", seq=0)
        )
    [row] = open_batch(tmp_path / "b").samples.to_pylist()
    assert row["timestamp"] == local
    assert row["timestamp"].astimezone(UTC).hour == 8


def test_columnar_batches_are_queued_in_order_with_single_samples(tmp_path: Path) -> None:
    path = tmp_path / "b"
    writer = RecordWriter.create(path, batch_info(), flush_rows=100, flush_interval=None)
    writer.add_samples(_columns(10))
    writer.add_sample(sample(10, device="prodigy-1", channel="centrifuge.speed"))
    writer.add_samples(_columns(30, start=11).append_column("quality", pa.array(["bad"] * 30)))
    writer.add_samples(pa.concat_tables([_columns(20, start=41), _columns(20, start=61)]))
    writer.add_samples(_columns(0))
    assert open_batch(path).samples.num_rows == 0  # 81 rows queued, below flush_rows
    writer.add_samples(_columns(19, start=81))  # 100 rows: written at the row bound
    assert open_batch(path).samples.num_rows == 100
    writer.add_samples(_columns(5, start=100))
    writer.flush()
    table = open_batch(path).samples
    assert table.column("seq").to_pylist() == list(range(105))
    assert table.column("quality").to_pylist() == ["good"] * 11 + ["bad"] * 30 + ["good"] * 64
    assert set(table.column("unit").to_pylist()) == {"Cel"}
    writer.close()
    assert verify(path).status == "sealed and intact"


def test_queued_columnar_rows_reach_disk_within_the_flush_interval(tmp_path: Path) -> None:
    writer = RecordWriter.create(tmp_path / "b", batch_info(), flush_interval=0.2)
    writer.add_samples(_columns(10))
    deadline = time.monotonic() + 5
    while open_batch(tmp_path / "b").samples.num_rows == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_batch(tmp_path / "b").samples.num_rows == 10
    writer.close()


def test_repeated_batch_shapes_are_still_checked_row_by_row(tmp_path: Path) -> None:
    """The per-schema and same-codes caches must not let a different batch through."""
    writer = RecordWriter.create(tmp_path / "b", batch_info(), flush_interval=None)
    writer.add_samples(_columns(4))
    writer.add_samples(_columns(4, start=4))  # same schema, same codes: the cached path
    other = _columns(4, start=8).set_column(
        1, "channel", pa.array(["centrifuge.speed"] * 3 + ["x.y"])
    )
    writer.add_samples(other)  # a new channel in the last row: admitted with its unit
    mixed = _columns(4, start=12).set_column(2, "unit", pa.array(["Cel"] * 3 + ["K"]))
    with pytest.raises(RecordValidationError, match=r"x\.y: unit 'K' differs from 'Cel'"):
        writer.add_samples(mixed.set_column(1, "channel", other.column("channel")))
    with pytest.raises(RecordValidationError, match="quality needs values"):
        writer.add_samples(_columns(2).append_column("quality", pa.array(["good", None])))
    with pytest.raises(RecordValidationError, match="seq must be integers without nulls"):
        writer.add_samples(_columns(2).set_column(5, "seq", pa.array([1, None])))
    writer.close()
    assert open_batch(tmp_path / "b").samples.column("seq").to_pylist() == list(range(12))
