"""The behaviour every Device shares, exercised through the mock device (no I/O, no behaviour
of its own), so what is tested here is the core's: state checks, parameter validation,
fan-out, events, operations. End-to-end behaviour over a wire is tested with simulators."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import cellauto
from cellauto.driver import RunAborted
from cellauto.errors import CommandRejected, InvalidTransition
from cellauto.mock import MockDevice
from cellauto.registry import DeviceUrlError, connect, parse_url
from cellauto.schema import Alarm, AlarmSeverity, EventKind, Result


async def mock(url: str = "prodigy+serial:///dev/null") -> MockDevice:
    device = await connect(url, mock=True)
    assert isinstance(device, MockDevice)
    return device


def test_parse_url() -> None:
    url = parse_url("prodigy+serial:///dev/ttyUSB0?baudrate=115200")
    assert (url.device, url.transport, url.address) == ("prodigy", "serial", "/dev/ttyUSB0")
    assert url.options == {"baudrate": "115200"}
    assert parse_url("cocoon+opcua://127.0.0.1:4840").address == "127.0.0.1:4840"
    assert parse_url("prodigy+sim://?speed=max&seed=7").options == {"speed": "max", "seed": "7"}
    with pytest.raises(DeviceUrlError, match="not a device URL"):
        parse_url("opc.tcp://127.0.0.1:4840")


async def test_connect_names_missing_adapters() -> None:
    with pytest.raises(DeviceUrlError, match="no adapter for device 'nosuch'"):
        await connect("nosuch+tcp://127.0.0.1:1")


async def test_illegal_command_raises_before_anything_is_sent() -> None:
    device = await mock()
    with pytest.raises(InvalidTransition, match=r"prodigy-1: hold: not allowed in state Stopped"):
        await device.hold()
    assert [name for name, _ in device.calls] == ["connect"]


async def test_state_targeting_commands_are_no_ops_when_reached() -> None:
    device = await mock()
    await device.stop()  # already Stopped
    await device.inject_state("Running/Held")
    await device.hold()
    assert [name for name, _ in device.calls] == ["connect"]
    await device.unhold()
    assert device.calls[-1] == ("unhold", {})


async def test_unknown_channel_and_program_are_rejected_naming_what_exists() -> None:
    device = await mock()
    with pytest.raises(CommandRejected, match=r"read chamber\.colour: no channel"):
        await device.read("chamber.colour")
    with pytest.raises(CommandRejected, match="has no program 'Nope'"):
        await device.start_program("Nope")
    with pytest.raises(CommandRejected, match="not a command of this device"):
        await device.command("self_destruct")


async def test_parameters_are_validated_and_converted_before_start() -> None:
    device = await mock()
    template = device.profile.program("TCT")
    numeric = next(p for p in template.parameters if p.maximum and p.unit not in (None, "1"))
    assert numeric.unit is not None
    with pytest.raises(CommandRejected, match=f"parameter '{numeric.name}' needs a quantity"):
        await device.start_program("TCT", {numeric.name: 5})
    with pytest.raises(CommandRejected, match="outside"):
        await device.start_program(
            "TCT", {numeric.name: cellauto.Q(numeric.maximum * 10, numeric.unit)}
        )
    with pytest.raises(CommandRejected, match="unknown parameter colour"):
        await device.start_program("TCT", {"colour": "blue"})
    assert [name for name, _ in device.calls] == ["connect"]
    run = await device.start_program(
        "TCT", {numeric.name: cellauto.Q(numeric.maximum, numeric.unit)}
    )
    assert device.calls[-1][0] == "start_program"
    assert device.calls[-1][1]["parameters"][numeric.name] == cellauto.Q(
        numeric.maximum, numeric.unit
    )
    assert run.status.status == "waiting"
    assert run.status.step_count == len(template.steps)


async def test_subscribe_filters_and_counts_overflow() -> None:
    device = await mock()
    temperature = device.subscribe(["chamber.temperature"], maxsize=3)
    everything = device.subscribe()
    for value in range(5):
        device.inject_sample("chamber.temperature", 36.0 + value)
    device.inject_sample("chamber.co2", 5.0)
    assert temperature.dropped == 2
    await device.close()
    assert [s.value async for s in temperature] == [38.0, 39.0, 40.0]
    assert len([s async for s in everything]) == 6


async def test_every_transition_is_an_event_and_drives_the_operation() -> None:
    device = await mock()
    events = device.events()
    run = await device.start_program("TCT")
    statuses: list[str] = []

    async def watch() -> None:
        async for status in run.watch():
            statuses.append(f"{status.status}:{status.device_state}:{status.step_number}")

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await device.inject_state("Running/Starting")
    await device.inject_state("Running/Execute")
    await device.report_progress(
        progress=0.5, remaining=timedelta(days=6), step_name="Expansion", step_number=4
    )
    await asyncio.sleep(0.01)  # a watcher sees the latest status, so let it look now
    now = datetime.now(UTC)
    result = Result(
        device_id=device.device_id,
        device_program_run_id=device.current_run.device_program_run_id,  # type: ignore[union-attr]
        program="TCT",
        program_version="0.1.0",
        template_hash="0" * 64,
        started=now,
        stopped=now,
        outcome="complete",
        total_runtime=timedelta(0),
    )
    await device.inject_result(result)
    await device.inject_state("Running/Complete")
    assert await run == result
    await watcher  # no wall-clock bound: the suite's timeout is
    assert statuses[-1].startswith("finishedSuccessfully")
    assert "running:Running/Execute:4" in statuses
    await device.close()
    kinds = [(e.kind, e.to_state) async for e in events]
    assert (EventKind.STATE_CHANGED, "Running/Execute") in kinds
    assert (EventKind.STEP_STARTED, None) in kinds
    assert kinds[-1] == (EventKind.STATE_CHANGED, "Running/Complete")


async def test_an_abort_fails_the_run_with_a_clear_error() -> None:
    device = await mock()
    run = await device.start_program("TCT")
    await device.inject_state("Running/Execute")
    await device.abort()
    assert device.calls[-1] == ("abort", {})
    await device.inject_state("Aborting")
    assert not run.done()  # `await run` returns once the device is Aborted: clear() is allowed then
    await device.inject_state("Aborted")
    with pytest.raises(RunAborted, match=r"prodigy-1: start_program TCT: the run was aborted"):
        await run
    assert run.status.status == "finishedWithError"
    assert run.status.device_state == "Aborted"
    await device.clear()


async def test_alarms_are_tracked_and_acknowledged() -> None:
    device = await mock()
    events = device.events()
    now = datetime.now(UTC)
    alarm = Alarm(
        alarm_id="A-1",
        code=device.profile.alarms[0].code,
        device_id=device.device_id,
        severity=AlarmSeverity.CRITICAL,
        message="Door open",
        raised_at=now,
    )
    await device.inject_alarm(alarm)
    assert device.alarms == [alarm]
    await device.acknowledge("A-1", user="alice")
    assert device.calls[-1] == ("acknowledge", {"alarm_id": "A-1", "user": "alice"})
    acked = alarm.model_copy(
        update={"acknowledged": True, "acknowledged_at": now, "acknowledged_by": "alice"}
    )
    await device.inject_alarm(acked)
    cleared = acked.model_copy(update={"active": False, "cleared_at": now})
    await device.inject_alarm(cleared)
    assert device.alarms == []
    with pytest.raises(CommandRejected, match="no such alarm"):
        await device.acknowledge("A-9", user="alice")
    await device.close()
    assert [e.kind async for e in events] == [
        EventKind.ALARM_RAISED,
        EventKind.ALARM_ACKNOWLEDGED,
        EventKind.ALARM_CLEARED,
    ]
