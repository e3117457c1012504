"""Records for the report tests: small and deterministic, or demo-like (two devices, many
channels, tens of thousands of samples), built with the records writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from cellauto.records import RecordWriter
from cellauto.schema import (
    Alarm,
    AlarmSeverity,
    BatchInfo,
    BatchStatus,
    Event,
    EventKind,
    Quantity,
    Result,
    Sample,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PATIENT = "P-4711"


class StepClock:
    """Audit times one second apart: deterministic."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _event(device: str, minutes: float, seq: int, kind: EventKind, **fields: object) -> Event:
    return Event(
        device_id=device,
        time=T0 + timedelta(minutes=minutes),
        seq=seq,
        kind=kind,
        **fields,  # type: ignore[arg-type]
    )


def _series(
    device: str, channel: str, unit: str, values: np.ndarray, period_s: float, first_seq: int
) -> pa.Table:
    n = len(values)
    times = T0 + np.arange(n) * timedelta(seconds=period_s)
    return pa.table(
        {
            "device_id": [device] * n,
            "channel": [channel] * n,
            "unit": [unit] * n,
            "timestamp": pa.array(list(times), pa.timestamp("us", tz="UTC")),
            "value": values.astype(float),
            "seq": np.arange(first_seq, first_seq + n),
        }
    )


COCOON_CHANNELS = (
    ("chamber.temperature", "Cel", 37.0, 0.2),
    ("chamber.co2", "%", 5.0, 0.1),
    ("chamber.ph", "[pH]", 7.2, 0.05),
    ("chamber.dissolved_oxygen", "%", 40.0, 2.0),
    ("chamber.glucose", "mmol/L", 20.0, 0.5),
    ("chamber.lactate", "mmol/L", 2.0, 0.3),
)


def build(path: Path, *, points: int = 240, seal: bool = True, seed: int = 7) -> RecordWriter:
    """A record of one Cocoon run: six channels of `points` samples each (a temperature spike
    and an alarm on it), cell density, a text channel, a program with steps, a prompt, a
    material transfer, a connection gap, a result with units, audit entries and signatures.
    Returns the writer (closed if `seal`)."""
    rng = np.random.default_rng(seed)
    device = "cocoon-1"
    writer = RecordWriter.create(
        path,
        BatchInfo(
            batch_id=path.name,
            product="CAR-T",
            recipe="expansion",
            recipe_version="2",
            lot_id="LOT-2026-0042",
            status=BatchStatus.RUNNING,
            operators=["alice"],
            equipment=[device],
            actual_start=T0,
        ),
        clock=StepClock(),
        devices=[{"device_id": device, "kind": "cocoon", "profile_version": "0.4.0"}],
        actor="alice",
    )
    writer.audit(
        "alice",
        "batch.start",
        f"batch:{path.name}",
        value={"product": "CAR-T", "patient_id": PATIENT},
    )
    writer.sign("Alice Smith", "alice", "responsibility", reason="start of batch")
    seq = 0
    period = 24 * 3600 / points  # one virtual day
    for channel, unit, centre, noise in COCOON_CHANNELS:
        values = centre + rng.normal(0, noise, points)
        if channel == "chamber.temperature":
            values[points // 2] = 38.6  # one spike above the alarm limit
        writer.add_samples(_series(device, channel, unit, values, period, seq))
        seq += points
    density = 1e5 * np.exp(np.linspace(0, 3, points))
    writer.add_samples(_series(device, "chamber.cell_density", "{cells}/mL", density, period, seq))
    seq += points
    writer.add_sample(
        Sample(device_id=device, channel="status.step_name", timestamp=T0, value="Expand", seq=seq)
    )
    events = [
        _event(device, 0, 0, EventKind.PROGRAM_STARTED, message="CAR-T expansion"),
        _event(device, 1, 1, EventKind.STEP_STARTED, message="Seed", data={"step": 1}),
        _event(
            device,
            60,
            2,
            EventKind.PROMPT,
            message="Take a sample",
            data={"prompt_id": "p1", "choices": ["sample taken"]},
        ),
        _event(
            device,
            60,
            3,
            EventKind.PROMPT_ANSWERED,
            message="sample taken",
            data={"prompt_id": "p1", "answer": "sample taken", "user": "alice"},
        ),
        _event(
            device,
            300,
            4,
            EventKind.CONNECTION_CHANGED,
            message="values missed while disconnected are not recoverable",
            data={
                "gap": {
                    "from": (T0 + timedelta(minutes=290)).isoformat(),
                    "to": (T0 + timedelta(minutes=300)).isoformat(),
                }
            },
        ),
        _event(device, 600, 5, EventKind.STEP_STARTED, message="Expand", data={"step": 2}),
        _event(device, 1400, 6, EventKind.PROGRAM_FINISHED, message="complete"),
    ]
    for event in events:
        writer.add_event(event)
    writer.add_event(
        Event(
            device_id=device,
            time=T0 + timedelta(minutes=2),
            seq=100,
            kind=EventKind.MATERIAL_TRANSFER,
            source="received",
            message=f"TD-0001: received -> {device}",
            data={
                "material": {
                    "container_id": "TD-0001",
                    "material": "T cells",
                    "patient_id": PATIENT,
                    "volume": {"value": 100, "unit": "mL"},
                },
                "from": "received",
                "to": device,
            },
        )
    )
    spike = T0 + timedelta(seconds=period * (points // 2))
    alarm = Alarm(
        alarm_id="A-1",
        code="temperature_high",
        device_id=device,
        severity=AlarmSeverity.WARNING,
        message="chamber temperature high",
        raised_at=spike,
    )
    writer.add_alarm(alarm)
    acknowledged = alarm.model_copy(
        update={
            "acknowledged": True,
            "acknowledged_at": spike + timedelta(minutes=3),
            "acknowledged_by": "alice",
        }
    )
    writer.add_alarm(acknowledged)
    writer.add_alarm(
        acknowledged.model_copy(
            update={"active": False, "cleared_at": spike + timedelta(minutes=9)}
        )
    )
    writer.add_result(
        Result(
            device_id=device,
            device_program_run_id="run-1",
            program="CAR-T expansion",
            program_version="1.0",
            template_hash="ab" * 32,
            started=T0,
            stopped=T0 + timedelta(hours=23),
            outcome="complete",
            total_runtime=timedelta(hours=23),
            properties={
                "harvested_cells": Quantity(value=2.1e9, unit="{cells}"),
                "viability": Quantity(value=94.5, unit="%"),
                "doublings": 4.2,
            },
        )
    )
    writer.audit(
        "alice",
        "prompt.answer",
        f"batch:{path.name}",
        value="done",
        reason="Label and seal the final product bag",
    )
    writer.sign("Alice Smith", "alice", "approval", reason="release: reviewed")
    if seal:
        writer.audit(
            "alice", "batch.end", f"batch:{path.name}", value="complete", reason="completed"
        )
        writer.close(reason="complete: completed", actor="alice")
    else:
        writer.flush()
    return writer
