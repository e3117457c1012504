"""Every profile alarm, raised by the simulator during a TCT run: reported with its severity
and source, acknowledged, cleared, and acted on (critical aborts, error holds)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from prodigy_helpers import start_tct, wait_for

from cellauto.driver import RunAborted
from cellauto.profiles import load_profile
from cellauto.schema import AlarmState, EventKind
from cellauto.state import ABORTED, EXECUTE, HELD
from cellauto_adapters.prodigy import ProdigyAdapter
from cellauto_simulators.prodigy import ProdigySimulator

ALARMS = load_profile("prodigy").alarms


async def until(predicate: Callable[[], bool]) -> None:
    await wait_for(predicate)


@pytest.mark.parametrize("spec", ALARMS, ids=lambda a: a.code)
async def test_each_alarm(device: ProdigyAdapter, sim: ProdigySimulator, spec: object) -> None:
    code, severity = spec.code, str(spec.severity)  # type: ignore[attr-defined]
    await start_tct(device)
    run = device.operation
    assert run is not None
    events = device.events()
    alarm_id = sim.raise_alarm(code)
    await until(lambda: alarm_id in {a.alarm_id for a in device.alarms})
    alarm = device.alarm(alarm_id)
    assert (alarm.code, str(alarm.severity), alarm.state) == (code, severity, AlarmState.ACTIVE)
    assert alarm.source == spec.functional_unit  # type: ignore[attr-defined]
    if severity == "critical":
        with pytest.raises(RunAborted):
            await run
        await until(lambda: device.state == ABORTED)
    elif severity == "error":
        await until(lambda: device.state == HELD)
    else:
        assert device.state == EXECUTE
    await device.acknowledge(alarm_id, "alice")
    await until(lambda: device.alarm(alarm_id).acknowledged)
    assert device.alarm(alarm_id).acknowledged_by == "alice"
    sim.clear_alarm(code)
    await until(lambda: not device.alarm(alarm_id).active)
    assert device.alarm(alarm_id).state == AlarmState.CLEARED
    assert alarm_id not in {a.alarm_id for a in device.alarms}
    if severity == "error":
        await device.unhold()
        assert device.state == EXECUTE
    kinds = []
    while len(kinds) < 3:
        async with asyncio.timeout(2):
            event = await anext(events)
        if event.kind.value.startswith("alarm_"):
            kinds.append(event.kind)
    assert kinds == [
        EventKind.ALARM_RAISED,
        EventKind.ALARM_ACKNOWLEDGED,
        EventKind.ALARM_CLEARED,
    ]


async def test_alarms_and_process_faults_scheduled_by_url_options(
    start_sim: Callable[..., object], connect: Callable[..., object]
) -> None:
    sim = await start_sim(faults="door_open@1h:10m,temperature_excursion@2h:30m=3")  # type: ignore[misc]
    device: ProdigyAdapter = await connect(sim)  # type: ignore[misc]
    events = device.events(maxsize=100_000)
    await until(lambda: sum(1 for a in device._alarms.values() if not a.active) == 2)
    codes = []
    async with asyncio.timeout(2):
        async for event in events:
            if event.kind == EventKind.ALARM_RAISED:
                codes.append(event.data["code"])
            if len(codes) == 2:
                break
    assert codes == ["door_open", "temperature_deviation"]
