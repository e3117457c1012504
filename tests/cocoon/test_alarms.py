"""Every profile alarm, injected through the simulator's faults option, reaches the adapter as
an Alarm that is raised, cleared and acknowledged."""

from __future__ import annotations

import pytest
from cocoon_support import PROFILE, adapter_for, answering, cocoon, next_event, quick

from cellauto.driver import RunAborted
from cellauto.schema import AlarmSeverity, AlarmState, EventKind
from cellauto.sim import format_duration
from cellauto.state import HELD
from cellauto_simulators.cocoon import start_simulator

CODES = [alarm.code for alarm in PROFILE.alarms]
SPEC = ",".join(f"{code}@{format_duration(3600 * (i + 1))}:20m" for i, code in enumerate(CODES))


async def test_every_alarm_is_raised_cleared_and_acknowledged() -> None:
    async with cocoon(faults=SPEC) as (_sim, device):
        events = device.events()
        raised: dict[str, str] = {}
        cleared: set[str] = set()

        async def watch() -> None:
            async for event in events:
                code = str(event.data.get("code", ""))
                if event.kind is EventKind.ALARM_RAISED:
                    raised[code] = str(event.data["alarm_id"])
                elif event.kind is EventKind.ALARM_CLEARED:
                    cleared.add(code)
                if cleared == set(CODES):
                    return

        await watch()  # simulated time: pytest's timeout guards a hang
        assert set(raised) == set(CODES)
        assert {a.code for a in device.alarms} == set(CODES)
        for alarm in device.alarms:
            spec = next(s for s in PROFILE.alarms if s.code == alarm.code)
            assert alarm.severity == spec.severity
            assert alarm.source == spec.functional_unit
            assert alarm.state is AlarmState.CLEARED_UNACKNOWLEDGED
            assert alarm.cleared_at is not None
            assert alarm.cleared_at > alarm.raised_at
            await device.acknowledge(alarm, "qa")
        assert device.alarms == []


async def test_an_alarm_raised_before_connect_is_adopted() -> None:
    async with cocoon() as (sim, first):
        events = first.events()
        sim.device.inject("power_loss")
        await next_event(events, lambda e: e.kind is EventKind.ALARM_RAISED)
        late = adapter_for(sim)
        await late.connect()
        try:
            (alarm,) = late.alarms
            assert alarm.code == "power_loss"
            assert (await late.read("controller.mains_power")).value is False
            await late.acknowledge(alarm, "qa")
            assert late.alarms[0].acknowledged_by == "qa"
            late_events = late.events()
            sim.device.clear_alarm("power_loss")
            await next_event(late_events, lambda e: e.kind is EventKind.ALARM_CLEARED)
            assert late.alarms == []
        finally:
            await late.close()


async def test_a_declared_reaction_acts_on_the_run_and_its_state_events_name_the_alarm() -> None:
    profile = PROFILE.model_copy(
        update={"alarm_reactions": {AlarmSeverity.CRITICAL: "abort", AlarmSeverity.ERROR: "hold"}}
    )
    sim = await start_simulator(profile, {"speed": "max", "seed": "7"})
    device = adapter_for(sim)
    try:
        await device.connect()
        events = device.events()
        operator = answering(device, device.events())
        run = await device.start_program(quick("CAR-T"))
        await next_event(events, lambda e: e.message == "Prime")
        held = sim.raise_alarm("pump_occlusion")  # error: hold
        await next_event(events, lambda e: e.kind is EventKind.STATE_CHANGED)
        assert device.state == HELD
        await device.unhold()
        aborted = sim.raise_alarm("power_loss")  # critical: abort
        with pytest.raises(RunAborted):
            await run
        operator.cancel()
    finally:
        await device.close()
        await sim.stop()
    causes = [e.data["Cause"] for e in sim.truth.events if e.kind == "state"]
    assert f"alarm:{held}" in causes
    assert f"alarm:{aborted}" in causes
    assert "command:unhold" in causes


async def test_clearing_an_injected_temperature_alarm_ends_the_excursion() -> None:
    code = "chamber_temperature_deviation"
    async with cocoon() as (sim, device):
        events = device.events()
        sim.raise_alarm(code)
        await next_event(events, lambda e: e.kind is EventKind.ALARM_RAISED)
        await sim.clock.sleep(600)
        sim.clear_alarm(code)
        await next_event(events, lambda e: e.kind is EventKind.ALARM_CLEARED)
        await sim.clock.sleep(1200)  # the loop was forced for 30 min: clearing ended that
        assert sim.device.values["chamber.temperature"] < 37.5
        assert not [a for a in device.alarms if a.code == code and a.active]
