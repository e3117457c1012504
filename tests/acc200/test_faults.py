"""The simulated ACC-200's faults through the real adapter: exception replies as typed errors
naming the device and the operation, a stalled PLC, image acquisition failure, a pump failure,
a blocked line, and a vessel leak that holds the run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cellauto import Q
from cellauto.driver import Device
from cellauto.errors import (
    DeviceTimeout,
    ModbusDeviceFailure,
    ModbusGatewayPathUnavailable,
    ModbusIllegalValue,
)
from cellauto.registry import connect
from cellauto.schema import EventKind, Sample
from cellauto.sim import SimHandle, start_simulator
from cellauto.state import EXECUTE, HELD


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimHandle]:
    handle = await start_simulator("acc200", seed=4, share=str(tmp_path / "share"))
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def device(sim: SimHandle) -> AsyncIterator[Device]:
    acc = await connect(sim.url, device_id="iace-f", time=sim.time)
    try:
        yield acc
    finally:
        await acc.close()


async def test_exception_replies_are_typed_errors_naming_device_and_operation(
    sim: SimHandle, device: Device
) -> None:
    server = sim.device.server  # type: ignore[attr-defined]
    server.faults[("input", 100)] = 4
    with pytest.raises(ModbusDeviceFailure, match="iace-f") as failed:
        await device.read("incubator.temperature")
    assert "read incubator.temperature" in str(failed.value)
    server.faults[("input", 100)] = 0x0A
    with pytest.raises(ModbusGatewayPathUnavailable):
        await device.read("incubator.temperature")
    server.faults[("input", 100)] = 6  # busy twice, then answered: retried by the link
    server.fault_count[("input", 100)] = 2
    assert (await device.read("incubator.temperature")).unit == "Cel"
    with pytest.raises(ModbusIllegalValue, match="capture_image"):  # vessel 3 is empty
        await device.command("capture_image", position=3)


async def test_a_stalled_plc_times_out_and_answers_again(sim: SimHandle, device: Device) -> None:
    sim.inject("stall@0s:10s")
    await sim.clock.sleep(0)
    with pytest.raises(DeviceTimeout):
        await device.read("incubator.temperature")
    await sim.clock.sleep(20)
    assert (await device.read("incubator.temperature")).unit == "Cel"


async def test_image_acquisition_failure_writes_no_image(sim: SimHandle, device: Device) -> None:
    events = device.events()
    await device.command("add_vessel", position=1)
    sim.raise_alarm("image_acquisition_failure")
    await device.command("capture_image", position=1)
    assert (await device.read("microscope.state")).value in ("idle", "error")
    assert not list(sim.share.rglob("*.png"))  # type: ignore[attr-defined]
    sim.clear_alarm("image_acquisition_failure")
    await device.command("capture_image", position=1)
    assert len(list(sim.share.rglob("*.png"))) == 1  # type: ignore[attr-defined]
    seen: list[tuple[EventKind, object]] = []
    while len(seen) < 2:
        event = await anext(events)
        if event.kind in (EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED):
            seen.append((event.kind, event.data["code"]))
    assert seen == [
        (EventKind.ALARM_RAISED, "image_acquisition_failure"),
        (EventKind.ALARM_CLEARED, "image_acquisition_failure"),
    ]


async def test_pump_failure_and_a_blocked_line_stop_medium_changes(
    sim: SimHandle, device: Device
) -> None:
    await device.command("add_vessel", position=2)
    sim.raise_alarm("pump_failure")
    await device.command("medium_change", position=2, volume=Q(5, "mL"))
    sim.clear_alarm("pump_failure")
    sim.raise_alarm("circuit_pressure_high")
    await device.command("medium_change", position=2, volume=Q(5, "mL"))
    await sim.clock.sleep(400)  # a scan publishes the line pressure
    assert float((await device.read("fluidics.circuit_pressure")).value) > 50.0
    sim.clear_alarm("circuit_pressure_high")
    await device.command("medium_change", position=2, volume=Q(5, "mL"))
    await sim.clock.sleep(400)
    assert (await device.read("vessel2.medium_changes")).value == 1
    codes = [a.code for a in device.alarms]
    assert "pump_failure" in codes
    assert "circuit_pressure_high" in codes


async def test_a_vessel_leak_holds_the_run(sim: SimHandle, device: Device) -> None:
    events = device.events()
    run = await device.start_program("iPSC expansion", {"vessel_count": 2})
    async for event in events:
        if event.kind is EventKind.PROMPT and device.state == EXECUTE:
            break
    await device.answer_prompt(device.prompts[0], "done", "op")
    sim.raise_alarm("vessel_leak")
    async for event in events:
        if event.kind is EventKind.STATE_CHANGED and event.to_state == str(HELD):
            break
    assert device.alarms[0].code == "vessel_leak"
    await device.abort()
    with pytest.raises(Exception, match="aborted"):
        await run


async def test_acknowledging_an_alarm_acknowledges_that_alarm_alone(
    sim: SimHandle, device: Device
) -> None:
    feed = device.events()
    ids: dict[str, str] = {}
    for code in ("pump_failure", "humidity_low"):
        sim.raise_alarm(code)
        async for event in feed:
            if event.kind is EventKind.ALARM_RAISED and event.data.get("code") == code:
                ids[code] = str(event.data["alarm_id"])
                break
    await device.acknowledge(ids["pump_failure"], "ann")
    assert device.alarm(ids["pump_failure"]).acknowledged_by == "ann"
    assert not device.alarm(ids["humidity_low"]).acknowledged  # map 1.0 acknowledged both
    plc = sim.device  # type: ignore[attr-defined]
    assert plc.alarms["pump_failure"][1]
    assert not plc.alarms["humidity_low"][1]
    await device.acknowledge(ids["humidity_low"], "bo")
    assert device.alarm(ids["humidity_low"]).acknowledged_by == "bo"
    assert device.alarm(ids["pump_failure"]).acknowledged_by == "ann"


async def test_reads_between_and_across_scans_are_valid_samples_of_their_scan() -> None:
    sim = await start_simulator("acc200", seed=2, speed="max", scan="60")
    device = await connect(f"{sim.url}?heartbeat=0", device_id="iace-r", time=sim.time)
    try:
        samples = []
        for _ in range(20):
            samples += [await device.read("incubator.temperature") for _ in range(5)]
            await sim.time.sleep(61.0)  # the next scan
    finally:
        await device.close()
        await sim.stop()
    for sample in samples:  # built from an earlier read's sample, yet what validation gives
        assert Sample.model_validate(sample.model_dump()) == sample
    stamps = [s.timestamp for s in samples]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) > 1  # scans came and went
    by_scan = {s.timestamp: s.value for s in samples}
    assert all(s.value == by_scan[s.timestamp] for s in samples)  # one value per scan
