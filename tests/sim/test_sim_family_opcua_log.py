"""The OPC UA event-log family base speaks the family's run and alarm vocabulary for any member:
state, prompt, result and alarm events with their fields, the State and ActiveAlarms mirror, the
declared alarm reaction, and the state, prompt, alarm and back-fill methods."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest
from tests_sim_programs import three_step

from cellauto.profiles import load_profile
from cellauto.sim import DiscreteEventClock, ProgramRunner
from cellauto.sim.families.opcua_log import OpcUaEventLogDevice
from cellauto.sim.servers.opcua import EventType, MethodFailed
from cellauto.state import HELD, IDLE, StateMachine

H = 3600.0
KINDS = ("state", "prompt", "alarm", "result")


class Tiny(OpcUaEventLogDevice):
    """A member with no wire of its own beyond the family's (never served here)."""

    SOURCE: ClassVar[str] = "Tiny"

    def __init__(self) -> None:
        clock = DiscreteEventClock()
        super().__init__(
            clock,
            [],
            namespace="urn:test:tiny",
            event_types={kind: EventType(f"Tiny{kind}", {"Seq": "UInt64"}) for kind in KINDS},
            status_path=lambda ns, name: f"{ns}:Tiny/{ns}:Status/{ns}:{name}",
            name="tiny",
            profile=load_profile("prodigy"),  # declares error -> hold
            machine=StateMachine("tiny-1", initial=IDLE),
            vendor_states={IDLE: "READY", HELD: "PAUSED"},
            severities={"error": 700},
        )


def logged(device: OpcUaEventLogDevice, first: int = 1) -> list[dict[str, Any]]:
    text, _ = device.read_log(first)
    return [json.loads(line) for line in text.splitlines()]


async def test_a_run_and_an_alarm_are_told_in_the_familys_words() -> None:
    device = Tiny()
    program = three_step()
    program.steps[0] = program.steps[0].model_copy(update={"prompt": "Seat the kit"})
    runner = ProgramRunner(program, device.clock, machine=device.machine)
    run = device.runs.start(runner, "R1")
    prompted = asyncio.Event()
    runner.add_listener(lambda event: prompted.set() if event.kind == "prompt" else None)
    await prompted.wait()
    assert run.prompt_id is not None
    methods = device.family_methods()
    assert await methods["AcknowledgePrompt"](run.prompt_id, "ann", "seated") == device.seq
    with pytest.raises(MethodFailed) as refused:
        await methods["AcknowledgePrompt"]("nope", "ann", "x")
    assert refused.value.status == "BadNotFound"
    await device.clock.sleep(H)
    alarm_id = device.raise_book_alarm("door_open")
    assert device.machine.state == HELD  # the profile's reaction to an error
    assert device.status_for(logged(device)[-1]) == {"State": "PAUSED"}
    with pytest.raises(MethodFailed) as refused:
        await methods["Reset"]()  # a run holds: reset is refused
    assert refused.value.status == "BadInvalidState"
    assert await methods["Unhold"]() == (str(device.machine.state), device.seq)
    assert await methods["AcknowledgeAlarm"](alarm_id, "ann") == device.seq
    device.clear_book_alarm("door_open")
    assert run.task is not None
    await run.task

    events = logged(device)
    assert [e["Seq"] for e in events] == list(range(1, len(events) + 1))
    prompts = [(e["Status"], e["User"], e["Answer"]) for e in events if e["Kind"] == "prompt"]
    assert prompts == [("open", "", ""), ("answered", "ann", "seated")]
    alarms = [e for e in events if e["Kind"] == "alarm"]
    assert [(a["AlarmId"], a["Status"], a["User"]) for a in alarms] == [
        (alarm_id, "raised", ""),
        (alarm_id, "acknowledged", "ann"),
        (alarm_id, "cleared", ""),
    ]
    assert {a["Code"] for a in alarms} == {"door_open"}
    assert alarms[0]["Severity"] == 700
    held = next(e for e in events if e["Kind"] == "state" and e["State"] == "PAUSED")
    assert held["Cause"] == f"alarm:{alarm_id}"
    (result,) = [e for e in events if e["Kind"] == "result"]
    assert (result["RunId"], result["Outcome"], json.loads(result["Properties"])) == (
        "R1",
        "complete",
        {},
    )
    assert events.index(result) == len(events) - 2  # just before the state that ends the run
    assert events[-1]["Kind"] == "state"
    assert device.status_for(alarms[-1]) == {"ActiveAlarms": "[]"}


async def test_the_back_fill_method_reads_the_log_from_a_seq() -> None:
    device = Tiny()
    for n in range(3):
        device.event("state", f"event {n}", State="READY", PreviousState="READY", Cause="done")
    text, last = await device.family_methods()["ReadEventLog"](2)
    assert last == 3
    assert [json.loads(line)["Seq"] for line in text.splitlines()] == [2, 3]
