"""Every profile alarm, injected through the simulator's faults option, reaches the adapter as
an Alarm that is raised, cleared and acknowledged."""

from __future__ import annotations

from cocoon_support import PROFILE, adapter_for, cocoon, next_event

from cellauto.schema import AlarmState, EventKind
from cellauto.sim import format_duration

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
            sim.device.release("power_loss")
            await next_event(late_events, lambda e: e.kind is EventKind.ALARM_CLEARED)
            assert late.alarms == []
        finally:
            await late.close()
