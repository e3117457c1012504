"""Builders shared by the batch-record tests: deterministic clocks, samples and records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cellauto.records import RecordWriter
from cellauto.schema import (
    Alarm,
    AlarmSeverity,
    BatchInfo,
    Event,
    EventKind,
    Result,
    Sample,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class StepClock:
    """A clock that advances one second per call: deterministic audit times."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def sample(
    i: int,
    *,
    device: str = "cocoon-1",
    channel: str = "chamber.temperature",
    value: float | int | bool | str = 37.0,
    unit: str | None = "Cel",
) -> Sample:
    """Sample number `i` (seq i, timestamp T0 + i ms)."""
    return Sample(
        device_id=device,
        channel=channel,
        timestamp=T0 + timedelta(milliseconds=i),
        value=value,
        unit=unit,
        seq=i,
    )


def batch_info(batch_id: str = "B-0001") -> BatchInfo:
    return BatchInfo(
        batch_id=batch_id, product="CAR-T", operators=["alice"], equipment=["cocoon-1"]
    )


def fill(writer: RecordWriter, *, samples: int = 20) -> None:
    """A small, deterministic, complete record: samples, events, an alarm, a result, a file,
    audit entries and a signature."""
    for i in range(samples):
        writer.add_sample(sample(i, value=37.0 + i / 8))
    writer.add_sample(sample(samples, channel="chamber.door_closed", value=True, unit=None))
    writer.add_sample(sample(samples + 1, channel="chamber.step", value="seed", unit=None))
    writer.add_event(
        Event(
            device_id="cocoon-1",
            time=T0,
            seq=0,
            kind=EventKind.STATE_CHANGED,
            from_state="Idle",
            to_state="Execute",
            cause="start",
        )
    )
    writer.add_event(
        Event(
            device_id="cocoon-1",
            time=T0 + timedelta(seconds=5),
            seq=1,
            kind=EventKind.STEP_STARTED,
            message="seed",
            data={"step": 1},
        )
    )
    writer.add_alarm(
        Alarm(
            alarm_id="A-1",
            code="door_open",
            device_id="cocoon-1",
            severity=AlarmSeverity.WARNING,
            message="door open",
            raised_at=T0 + timedelta(seconds=7),
        )
    )
    writer.add_result(
        Result(
            device_id="cocoon-1",
            device_program_run_id="run-1",
            program="TCT",
            program_version="1.0",
            template_hash="ab" * 32,
            started=T0,
            stopped=T0 + timedelta(hours=1),
            outcome="complete",
            total_runtime=timedelta(hours=1),
            properties={"viability": 0.93},
        )
    )
    writer.add_file(b"vendor report\n", "report.txt", mime_type="text/plain", actor="alice")
    writer.audit(
        "alice",
        "set_parameter",
        "cocoon-1/program.TCT.target_cells",
        value=1e9,
        previous_value=5e8,
        reason="per batch record BR-7",
    )
    writer.sign("Alice Smith", "alice", "responsibility", reason="batch complete")
