"""`Device.run_result` / `report_run_result`: a run's Result built from its ProgramRun; the
result of a run this connection did not start is a note and completes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cellauto.errors import ProtocolError
from cellauto.mock import MockDevice
from cellauto.registry import connect
from cellauto.schema import EventKind, Quantity


async def _running() -> MockDevice:
    device = await connect("prodigy+serial:///dev/null", mock=True)
    assert isinstance(device, MockDevice)
    await device.inject_state("Running/Idle")
    return device


async def test_a_foreign_runs_result_is_a_note_and_the_own_one_ends_the_run() -> None:
    device = await _running()
    events = device.events()
    run = await device.start_program("TCT", {}, supervisory_job_id="job-1", user="alice")
    foreign = await device.report_run_result("other-run", "complete")
    assert foreign is None
    assert not run.done()  # another run's result does not end this one
    assert device.current_run is not None
    started = device.time.now()
    own = await device.report_run_result(
        device.current_run.device_program_run_id,
        "complete",
        started=started,
        stopped=started + timedelta(hours=2),
        pause=timedelta(minutes=5),
        properties={"cells": Quantity(value=2e9, unit="1")},
    )
    await device.inject_state("Running/Complete")
    result = await run
    assert own == result
    assert (result.program, result.supervisory_job_id, result.user) == ("TCT", "job-1", "alice")
    assert result.total_runtime == timedelta(hours=2)
    assert result.total_pause_time == timedelta(minutes=5)
    events.close()
    notes = [e async for e in events if e.kind is EventKind.NOTE]
    assert [n.data["run_id"] for n in notes] == ["other-run"]


async def test_a_result_never_stops_before_it_started_and_outcomes_are_checked() -> None:
    device = await _running()
    await device.start_program("TCT", {})
    run = device.current_run
    assert run is not None
    result = device.run_result("stopped", stopped=run.started - timedelta(seconds=1))
    assert result.stopped == result.started == run.started
    assert result.total_runtime == timedelta(0)
    with pytest.raises(ProtocolError, match=r"prodigy-1: result: unknown run outcome 'done'"):
        device.run_result("done")
