"""Scripts get what they ask for, or a clear refusal: URLs under `sim=True`, seeds, device ids,
durations, prompt choices, a device held by its own alarm, and an audit entry for every command
a script sends."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

import cellauto
from cellauto.batch import AutoAnswer, Batch, PromptAnswer, PromptRequest
from cellauto.driver import DeviceAction
from cellauto.records import open_batch
from cellauto.registry import DeviceUrlError


def audit(batch: Batch) -> list[dict[str, object]]:
    return open_batch(batch.path).audit.to_pylist()


async def test_sim_keeps_a_real_urls_options_and_seeds_every_simulated_device(
    tmp_path: Path,
) -> None:
    async with Batch("B-URL", product="p", operator="o", records=tmp_path, sim=True, seed=7) as b:
        real = await b.connect("prodigy+serial:///dev/ttyUSB0?request_timeout=3")
        explicit = await b.connect("prodigy+sim://?speed=max")
        seeded = await b.connect("prodigy+sim://?seed=2")
        assert real.info.serial_number == "SIM-0007"
        assert explicit.info.serial_number == "SIM-0008"
        assert seeded.info.serial_number == "SIM-0002"
    urls = [json.loads(str(r["value"])) for r in audit(b) if r["action"] == "device.connect"]
    assert "request_timeout=3" in urls[0]
    assert urls[0].startswith("prodigy+sim://")
    assert "seed=8" in urls[1]


async def test_sim_logs_in_as_the_real_urls_user_and_never_sends_its_password(
    tmp_path: Path,
) -> None:
    # the Cocoon simulator lets anonymous sessions only read (BadUserAccessDenied); this
    # method ran, and answered what an idle device says
    async with Batch("B-USR", product="p", operator="o", records=tmp_path, sim=True) as b:
        cocoon = await b.connect("cocoon+opcua://olga:s3cret@cocoon-01.local:4840")
        outcome = await cocoon.command("validate_protocol")
        assert outcome.data == {"problems": ["no protocol loaded"]}
    (url,) = [json.loads(str(r["value"])) for r in audit(b) if r["action"] == "device.connect"]
    assert url.startswith("cocoon+sim://olga@?")
    assert "s3cret" not in url


async def test_a_user_name_for_a_simulator_without_users_is_refused() -> None:
    with pytest.raises(DeviceUrlError, match="prodigy simulator has no users"):
        await cellauto.connect("prodigy+sim://olga@?speed=max")


async def test_refused_faults_on_real_equipment_and_a_second_device_under_one_id(
    tmp_path: Path,
) -> None:
    async with Batch("B-NO", product="p", operator="o", records=tmp_path, sim=True) as batch:
        with pytest.raises(cellauto.BatchError, match="faults= is a simulator option"):
            await batch.connect("prodigy+serial:///dev/ttyUSB0?faults=stall@1h:1m")
        await batch.connect("prodigy+sim://", device_id="left")
        with pytest.raises(cellauto.BatchError, match="device_id 'left' is already connected"):
            await batch.connect("prodigy+sim://", device_id="left")
        assert list(batch.devices) == ["left"]


async def test_sleep_takes_a_timedelta_and_refuses_nonsense(tmp_path: Path) -> None:
    async with Batch("B-SLEEP", product="p", operator="o", records=tmp_path, sim=True) as batch:
        before = batch.now()
        await batch.sleep(timedelta(hours=2))
        assert batch.now() - before == timedelta(hours=2)
        with pytest.raises(cellauto.BatchError, match="finite, non-negative"):
            await batch.sleep(float("nan"))


class Stubborn:
    async def answer(self, request: PromptRequest) -> PromptAnswer:
        return PromptAnswer("maybe", "bob")


async def test_a_prompt_answer_must_be_one_of_its_choices(tmp_path: Path) -> None:
    policy = AutoAnswer(answers={"bag": "connected"})
    async with Batch(
        "B-ASK", product="p", operator="o", records=tmp_path, sim=True, prompts=policy
    ) as batch:
        assert await batch.prompt("Seal the bag", choices=("done", "redo")) == "done"
        batch.prompts = Stubborn()
        with pytest.raises(cellauto.InvalidAnswer, match=r"'maybe'.*one of: done, redo"):
            await batch.prompt("Seal the bag", choices=("done", "redo"))


async def test_a_device_prompt_answer_must_be_one_of_its_choices() -> None:
    from datetime import UTC, datetime

    device = await cellauto.connect("prodigy+serial:///dev/null", mock=True)
    prompt = cellauto.OperatorPrompt(
        "P1", device.device_id, "Bag connected?", datetime.now(UTC), ("yes", "no")
    )
    device.report_prompt(prompt)
    with pytest.raises(cellauto.InvalidAnswer, match="'maybe' is not one of"):
        await device.answer_prompt(prompt, "maybe", "bob")
    await device.close()


async def test_script_commands_are_audited_and_an_alarm_hold_asks_the_policy(
    tmp_path: Path,
) -> None:
    # the Prodigy holds itself on an error-severity alarm (air in the line, 40 min in)
    async with Batch(
        "B-SELF", product="p", operator="o", records=tmp_path, sim=True, seed=3
    ) as batch:
        prodigy = await batch.connect("prodigy+sim://?faults=air_detected@40m:5m")
        run = await prodigy.start_program("CD34")
        await prodigy.wait_for_state("Running/Execute", timeout=30)
        await prodigy.hold()
        await prodigy.wait_for_state("Running/Held", timeout=30)
        await prodigy.unhold()
        result = await run  # would wait forever on the device's own hold
        assert result.outcome == "complete"
        assert str(prodigy.state) == "Running/Complete"  # await run: final state reported
        await prodigy.command("export_run_report")
        await prodigy.reset()
    rows = audit(batch)
    by_script = [(r["action"], r["object"]) for r in rows if r["reason"] == "by the script"]
    assert ("device.hold", prodigy.device_id) in by_script
    assert ("device.unhold", prodigy.device_id) in by_script
    assert ("device.reset", prodigy.device_id) in by_script
    (exported,) = [r for r in rows if r["action"] == "device.export_run_report"]
    assert (exported["object"], exported["reason"]) == (prodigy.device_id, "by the script")
    decisions = [r for r in rows if r["action"] == "alarm.decision"]
    assert decisions
    assert json.loads(str(decisions[0]["value"])) == "continue"


class LeftToTheScript:
    """A prompt policy that never answers: the script answers the device itself."""

    async def answer(self, request: PromptRequest) -> PromptAnswer:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_scripts_prompt_answers_and_acknowledgements_are_audited(tmp_path: Path) -> None:
    async with Batch(
        "B-ANS",
        product="p",
        operator="o",
        records=tmp_path,
        sim=True,
        prompts=LeftToTheScript(),
        alarm_policy=None,
    ) as batch:
        prodigy = await batch.connect("prodigy+sim://?faults=air_detected@1m:1m")
        events = prodigy.events()
        async for event in events:
            if event.kind is cellauto.EventKind.ALARM_RAISED:
                break
        (alarm,) = prodigy.alarms
        await prodigy.acknowledge(alarm, "alice")
        await prodigy.start_program("CD34")
        async for event in events:
            if event.kind is cellauto.EventKind.PROMPT:
                break
        (prompt,) = prodigy.prompts
        await prodigy.answer_prompt(prompt, "done", "alice")
    rows = [r for r in audit(batch) if r["reason"] == "by the script"]
    acks = [r for r in rows if r["action"] == "alarm.acknowledge"]
    answers = [r for r in rows if r["action"] == "prompt.answer"]
    assert [(r["object"], r["actor"]) for r in acks] == [
        (f"{prodigy.device_id}/{alarm.alarm_id}", "alice")
    ]
    assert [(r["object"], r["actor"]) for r in answers] == [
        (f"{prodigy.device_id}/{prompt.prompt_id}", "alice")
    ]
    assert json.loads(str(answers[0]["value"])) == "done"


async def test_a_profile_command_is_reported_as_an_action_with_its_parameters() -> None:
    device = await cellauto.connect("prodigy+serial:///dev/null", mock=True)
    actions: list[DeviceAction] = []
    device.on_action.append(actions.append)
    await device.command("take_sample", volume=cellauto.Q(3, "mL"))
    await device.close()
    (action,) = actions
    assert (action.device_id, action.action) == (device.device_id, "take_sample")
    assert json.loads(str(action.value)) == {"volume": {"value": 3.0, "unit": "mL"}}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
async def test_a_parameter_must_be_a_finite_number(bad: float) -> None:
    device = await cellauto.connect("prodigy+serial:///dev/null", mock=True)
    with pytest.raises(
        cellauto.CommandRejected,
        match=r"prodigy-1: start_program TCT transduction: parameter 'moi' must be a finite",
    ):
        await device.start_program("TCT transduction", {"moi": bad})
    await device.close()


def test_a_dimensionless_quantity_prints_without_a_unit() -> None:
    assert str(cellauto.Q(2, "1")) == "2"
    assert str(cellauto.Q(2, "mL")) == "2 mL"


async def test_cellauto_run_faults_reach_every_simulated_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CELLAUTO_FAULTS", "corrupt@1h")
    async with Batch("B-F", product="p", operator="o", records=tmp_path, sim=True) as batch:
        await batch.connect("prodigy+serial:///dev/ttyUSB0")
        await batch.connect("prodigy+sim://?faults=stall@2h:1m")  # its own faults stay
    urls = [json.loads(str(r["value"])) for r in audit(batch) if r["action"] == "device.connect"]
    assert "faults=corrupt@1h" in urls[0]
    assert "faults=stall@2h:1m" in urls[1]
    assert "corrupt" not in urls[1]
