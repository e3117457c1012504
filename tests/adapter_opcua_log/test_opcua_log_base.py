"""The OPC UA event-log adapter base, through a second device of the family (the Kiln in
`kiln.py`): its simulator serves a real loopback endpoint and the base talks to it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from kiln import NAMESPACE, PROFILE, KilnAdapter, KilnSimulator

from cellauto.errors import CommandRejected
from cellauto.feeds import Feed
from cellauto.registry import parse_url
from cellauto.schema import AlarmSeverity, Event, EventKind
from cellauto.state import State


@asynccontextmanager
async def kiln(sim: KilnSimulator) -> AsyncIterator[KilnAdapter]:
    """The simulator started and the base's Kiln adapter connected to it; both closed after."""
    await sim.start()
    device = KilnAdapter("kiln-1", PROFILE, parse_url(sim.url + "?timeout=3"))
    try:
        await device.connect()
        yield device
    finally:
        await device.close()
        await sim.stop()


async def drain(feed: Feed[Event]) -> list[Event]:
    feed.close()
    return [event async for event in feed]


async def test_connect_reads_identity_state_values_and_adopts_active_alarms() -> None:
    sim = KilnSimulator()
    sim.alarm("a-1", "door_ajar", "raised", Severity=400)
    sim.alarm("a-1", "door_ajar", "acknowledged", User="bob")
    async with kiln(sim) as device:
        assert (device.info.manufacturer, device.info.serial_number) == ("cellauto tests", "K-1")
        assert device.info.vendor_data == {"namespace": NAMESPACE, "event_seq": 2}
        assert device.state == State.parse("Running/Idle")
        [alarm] = device.alarms
        assert (alarm.alarm_id, alarm.code, alarm.active) == ("a-1", "door_ajar", True)
        assert (alarm.acknowledged, alarm.acknowledged_by) == (True, "unknown")
        assert (await device.read("oven.rh")).value == 40.5  # `RH`: the Kiln's acronym


async def test_a_published_value_reaches_subscribers() -> None:
    sim = KilnSimulator()
    async with kiln(sim) as device:
        feed = device.subscribe(["oven.rh"])
        await sim.server.set(sim.path("Oven", "RH"), 38.5, sim.clock.now())
        async for sample in feed:
            if sample.value == 38.5:
                break


async def test_state_commands_use_the_vocabulary_and_return_once_applied() -> None:
    sim = KilnSimulator()
    async with kiln(sim) as device:
        feed = device.events()
        await device.stop()
        assert device.state == State.parse("Stopped")
        await device.reset()
        assert device.state == State.parse("Running/Idle")
        moves = [e.to_state for e in await drain(feed) if e.kind is EventKind.STATE_CHANGED]
        expected = ["Stopping", "Stopped", "Running/Resetting", "Running/Idle"]
        assert moves == [str(State.parse(s)) for s in expected]


async def test_a_bad_status_is_command_rejected_naming_the_operation_and_its_meaning() -> None:
    sim = KilnSimulator()
    async with kiln(sim) as device:
        with pytest.raises(CommandRejected) as refused:
            await device.call("fire now", "Fire")  # the kiln is hot already
        assert refused.value.operation == "fire now"
        assert "BadInvalidState" in str(refused.value)
        assert refused.value.hint == "not allowed in the kiln's state"


async def test_prompt_alarm_result_and_the_devices_own_kinds_are_dispatched() -> None:
    sim = KilnSimulator()
    async with kiln(sim) as device:
        feed = device.events()
        sim.event("prompt", "Load the tray", PromptId="p-1", Text="Load the tray", Status="open")
        sim.alarm("a-2", "overheat", "raised", Severity=900)
        door = sim.event("door", "door opened", Open=True)
        now = sim.clock.now()
        properties = json.dumps({"peak": {"value": 1200, "unit": "Cel"}, "glaze": "matt"})
        seq = sim.event(
            "result",
            "fired",
            RunId="r-9",
            Outcome="complete",
            Started=now,
            Stopped=now,
            PauseTime=0.0,
            Properties=properties,
        )
        await device.sequencer.applied(seq)
        assert [p.text for p in device.prompts] == ["Load the tray"]
        alarm = device.alarm("a-2")
        assert (alarm.severity, alarm.source, alarm.vendor_data["severity"]) == (
            AlarmSeverity.CRITICAL,
            "oven",
            900,
        )
        assert device.doors == [(door, True)]
        await device.answer_prompt("p-1", "loaded", "alice")
        await device.acknowledge("a-2", "alice")
        assert not device.prompts
        assert device.alarm("a-2").acknowledged_by == "alice"
        kinds = [e.kind for e in await drain(feed)]
        assert kinds == [
            EventKind.PROMPT,
            EventKind.ALARM_RAISED,
            EventKind.NOTE,  # the result of a run this connection did not start
            EventKind.PROMPT_ANSWERED,
            EventKind.ALARM_ACKNOWLEDGED,
        ]


async def test_a_skipped_seq_is_read_back_and_what_the_log_lost_is_one_note() -> None:
    sim = KilnSimulator(maxlen=4)
    async with kiln(sim) as device:
        feed = device.events()
        missed = [sim.log_only("door", Open=bool(n % 2)) for n in range(5)]
        last = sim.event("door", "door closed", Open=False)
        await device.sequencer.applied(last)
        logged = [(seq, bool(n % 2)) for n, seq in enumerate(missed)]
        assert device.doors == [*logged[2:], (last, False)]  # the log kept 3.. of them
        notes = [e.data for e in await drain(feed) if e.kind is EventKind.NOTE]
        assert notes == [{"lost_seq": {"from": 1, "to": 2}}]
