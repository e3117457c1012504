"""Values a device should not send, and the sealed manifest after every way a batch ends."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest
from records_helpers import T0, StepClock, batch_info, sample

import cellauto
from cellauto.records import RecordWriter, open_batch, verify
from cellauto.records.tables import RECORD_FORMAT


def test_nan_and_infinities_are_recorded_as_bad(tmp_path: Path) -> None:
    path = tmp_path / "b"
    writer = RecordWriter.create(path, batch_info(), clock=StepClock(), flush_interval=None)
    for i, value in enumerate([37.0, math.nan, math.inf, -math.inf]):
        writer.add_sample(sample(i, value=value))
    values = pa.array([1.0, math.nan, 2.0, math.inf])
    n = len(values)
    writer.add_samples(
        pa.table(
            {
                "device_id": ["cocoon-1"] * n,
                "channel": ["chamber.ph"] * n,
                "unit": ["[pH]"] * n,
                "timestamp": pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
                "value": values,
                "seq": list(range(4, 4 + n)),
                "quality": ["good", "good", "uncertain", "uncertain"],
            }
        )
    )
    writer.close()
    quality = open_batch(path).samples.column("quality").to_pylist()
    assert quality == ["good", "bad", "bad", "bad", "good", "bad", "uncertain", "bad"]


async def test_the_sealed_manifest_tells_how_the_batch_ended(tmp_path: Path) -> None:
    async with cellauto.Batch(
        "B-DONE", product="p", operator="alice", records=tmp_path, sim=True
    ) as done:
        pass
    async with cellauto.Batch(
        "B-ABORT", product="p", operator="alice", records=tmp_path, sim=True
    ) as aborted:
        await aborted.abort("contamination suspected")
    with pytest.raises(RuntimeError):
        async with cellauto.Batch(
            "B-CRASH", product="p", operator="alice", records=tmp_path, sim=True
        ) as crashed:
            raise RuntimeError("script bug")
    expected = {
        done.path: ("complete", "complete: completed"),
        aborted.path: ("aborted", "aborted: contamination suspected"),
        crashed.path: ("stopped", "stopped: error: RuntimeError: script bug"),
    }
    for path, (status, reason) in expected.items():
        manifest = open_batch(path).manifest
        assert manifest.record_format == RECORD_FORMAT
        assert manifest.batch.status == status
        assert manifest.batch.actual_end is not None
        assert manifest.seal_reason == reason
        assert verify(path).status == "sealed and intact"


async def test_a_crashed_batch_is_resumed_on_the_same_chain(tmp_path: Path) -> None:
    crashed = cellauto.Batch(
        "B-RESUME", product="CAR-T", operator="alice", records=tmp_path, sim=True
    )
    await crashed.__aenter__()
    crashed.writer.audit("alice", "note", "batch:B-RESUME", value="before the crash")
    crashed.writer.abandon()  # the process died: no seal
    async with cellauto.Batch.resume(crashed.path, operator="bob", sim=True) as batch:
        assert batch.product == "CAR-T"
        batch.release("reviewed after the restart")
    record = open_batch(batch.path)
    actions = [e.action for e in record.audit_entries()]
    assert actions.index("note") < actions.index("record_resumed") < actions.index("batch.resume")
    resumed = record.audit_entries()[actions.index("record_resumed")]
    assert isinstance(resumed.value, dict)
    assert resumed.value["interrupted_after_seq"] == actions.index("note")
    assert record.manifest.batch.status == "complete"
    assert record.manifest.seal_reason == "complete: completed"
    assert verify(batch.path).status == "sealed and intact"
