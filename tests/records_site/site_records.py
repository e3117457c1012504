"""Small deterministic records for the ASM and catalog tests, made with the records writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cellauto.records import RecordWriter
from cellauto.schema import BatchInfo, Event, EventKind, Result, Sample

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class StepClock:
    """Advances one second per call: deterministic audit times."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _sample(
    device: str, channel: str, hour: int, value: float | str, unit: str | None, seq: int
) -> Sample:
    return Sample(
        device_id=device,
        channel=channel,
        timestamp=T0 + timedelta(hours=hour),
        value=value,
        unit=unit,
        seq=seq,
    )


def make_record(
    folder: Path,
    batch_id: str = "B-0001",
    *,
    product: str = "CAR-T",
    kind: str = "prodigy",
    start: datetime = T0,
    hours: int = 4,
    seal: bool = True,
    final_density: float = 2.0e6,
) -> Path:
    """A record of one device: in-process counts, metabolites, pH, DO, temperature trends."""
    device = f"{kind}-1"
    path = folder / batch_id
    writer = RecordWriter.create(
        path,
        BatchInfo(batch_id=batch_id, product=product, operators=["alice"], equipment=[device]),
        clock=StepClock(start),
        devices=[{"device_id": device, "kind": kind, "profile_version": "0.1"}],
        flush_interval=None,
    )
    shift = start - T0
    seq = 0
    for hour in range(hours + 1):
        density = 1.0e5 + (final_density - 1.0e5) * hour / hours
        rows: list[tuple[str, float | str, str | None]] = [
            ("chamber.temperature", 37.0 + hour / 10, "Cel"),
            ("chamber.ph", 7.2 - hour / 50, "[pH]"),
            ("chamber.dissolved_oxygen", 80.0 - hour, "%{air_saturation}"),
            ("in_process_control.glucose", 20.0 - hour, "mmol/L"),
            ("in_process_control.lactate", 1.0 + hour / 2, "mmol/L"),
            ("in_process_control.cell_concentration", density, "{cells}/mL"),
            ("in_process_control.viability", 95.0 - hour / 4, "%"),
            ("in_process_control.total_cells", density * 100, "{cells}"),
            ("chamber.rcf", 100.0, "[g]"),
            ("controller.step_name", f"step {hour}", None),
        ]
        for channel, value, unit in rows:
            sample = _sample(device, channel, hour, value, unit, seq)
            writer.add_sample(sample.model_copy(update={"timestamp": sample.timestamp + shift}))
            seq += 1
    writer.add_event(
        Event(
            device_id=device,
            time=start,
            seq=0,
            kind=EventKind.STATE_CHANGED,
            from_state="Idle",
            to_state="Execute",
            cause="start",
        )
    )
    writer.add_result(
        Result(
            device_id=device,
            device_program_run_id=f"{batch_id}-run-1",
            program="TCT",
            program_version="1.0",
            template_hash="ab" * 32,
            started=start,
            stopped=start + timedelta(hours=hours),
            outcome="complete",
            total_runtime=timedelta(hours=hours),
            properties={"viability": 0.93},
        )
    )
    if seal:
        writer.close()
    else:
        writer.flush()
        writer.abandon()
    return path
