"""The batch alarm policy against the Cocoon simulator: a critical alarm holds the device and
asks the operator, whose answer (continue or abort) is carried out and audited."""

from __future__ import annotations

from pathlib import Path

import pytest

import cellauto
from cellauto.batch import AutoAnswer, Batch
from cellauto.records import open_batch


@pytest.mark.parametrize(("decision", "outcome"), [("continue", "complete"), ("abort", "aborted")])
async def test_a_critical_alarm_holds_the_device_and_asks(
    tmp_path: Path, decision: str, outcome: str
) -> None:
    prompts = AutoAnswer(answers={"Alarm": decision, "bag": "connected", "sample": "taken"})
    async with Batch(
        "B-ALARM", product="CAR-T", operator="alice", records=tmp_path, sim=True, prompts=prompts
    ) as batch:
        # a leak (critical) for 10 minutes, 3 hours into the run
        cocoon = await batch.connect("cocoon+sim://?seed=4&faults=leak@3h:10m")
        run = await cocoon.start_program("CAR-T expansion")
        if outcome == "complete":
            # the decision carried out: the run resumes (no need to wait out its 5 days)
            await cocoon.wait_for_state("Running/Held", timeout=60)
            await cocoon.wait_for_state("Running/Execute", timeout=60)
            await cocoon.stop()
            with pytest.raises(cellauto.RunStopped):
                await run
        else:
            with pytest.raises(cellauto.RunAborted):
                await run
    audit = open_batch(batch.path).audit.to_pylist()
    actions = [(row["action"], row["value"]) for row in audit]
    holds = [row for row in audit if row["action"] == "device.hold"]
    assert holds
    assert "alarm" in holds[0]["reason"]
    assert ("alarm.decision", f'"{decision}"') in actions
    events = open_batch(batch.path).events.to_pylist()
    states = [e["to_state"] for e in events if e["kind"] == "state_changed"]
    assert "Running/Held" in states
    ends = [value for action, value in actions if action == "batch.end"]
    if decision == "abort":
        assert "device.abort" in [action for action, _ in actions]
        assert "Aborted" in states
        assert ends == ['"aborted"']
    else:
        assert ends == ['"complete"']
