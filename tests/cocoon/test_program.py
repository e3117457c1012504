"""Program runs at speed=max: a whole CAR-T and MSC protocol with prompts, state commands
during a run, stop, abort, clear and reset."""

from __future__ import annotations

import asyncio

import pytest
from cocoon_support import PROFILE, answering, cocoon, drain, next_event, quick

from cellauto.driver import RunAborted, RunStopped
from cellauto.schema import EventKind, Quantity
from cellauto.schema.quantity import Q
from cellauto.state import (
    ABORTED,
    COMPLETE,
    EXECUTE,
    HELD,
    IDLE,
    STOPPED,
    SUSPENDED,
)


@pytest.mark.parametrize(
    ("program", "hours", "parameters"),
    [
        ("CAR-T", 24, {"feed_interval": Q(12, "h")}),
        ("MSC expansion", 30, {"exchange_interval": Q(24, "h")}),
    ],
)
async def test_a_whole_program_runs_with_prompts_feeds_and_a_result(
    program: str, hours: float, parameters: dict[str, object]
) -> None:
    template = quick(program, hours=hours)
    async with cocoon() as (_sim, device):
        events = device.events()
        samples = device.subscribe(["chamber.volume", "cassette.id", "controller.step_index"])
        operator = answering(device, device.events())
        run = await device.start_program(
            template, parameters, supervisory_job_id="B-0001", user="alice"
        )
        result = await run  # no wall-clock bound on simulated work (pytest-timeout guards)
        operator.cancel()
        assert device.state == COMPLETE
        assert result.outcome == "complete"
        assert result.supervisory_job_id == "B-0001"
        assert result.total_runtime.total_seconds() == pytest.approx(hours * 3600, abs=60)
        harvested = result.properties["harvested_cells"]
        assert isinstance(harvested, Quantity)
        assert harvested.value > 0
        feeds = result.properties["feeds"]
        assert isinstance(feeds, Quantity)
        assert feeds.value >= 1
        viability = result.properties["viability"]  # of the cells harvested, not the empty bag
        assert isinstance(viability, Quantity)
        assert 50 < viability.value < 100

        seen = [e for e in await drain(events) if e.kind is not EventKind.COMMAND]
        steps = [e.message for e in seen if e.kind is EventKind.STEP_STARTED]
        assert steps == [s.name for s in template.steps]
        prompts = [e for e in seen if e.kind is EventKind.PROMPT]
        answered = [e for e in seen if e.kind is EventKind.PROMPT_ANSWERED]
        assert [p.message for p in prompts] == [s.prompt for s in template.steps if s.prompt]
        assert [a.data["user"] for a in answered] == ["alice"] * len(prompts)
        states = [e.to_state for e in seen if e.kind is EventKind.STATE_CHANGED]
        assert states[-3:] == ["Running/Execute", "Running/Completing", "Running/Complete"]
        finished = [e for e in seen if e.kind is EventKind.PROGRAM_FINISHED]
        assert finished[0].data["outcome"] == "complete"

        values = await drain(samples)
        assert {s.channel for s in values} == {
            "chamber.volume",
            "cassette.id",
            "controller.step_index",
        }
        assert any(str(s.value).startswith("CAS-SIM0007") for s in values)

        await device.reset()
        assert device.state == IDLE


async def test_a_prompt_blocks_its_step_until_answered() -> None:
    async with cocoon() as (_sim, device):
        events = device.events()
        run = await device.start_program(quick("CAR-T"))
        prompt = await next_event(events, lambda e: e.kind is EventKind.PROMPT)
        assert prompt.message == "Install a new Cocoon cassette and close the door."
        await asyncio.sleep(0.3)
        assert not run.done()
        assert run.status.step_number == 1
        assert (await device.read("controller.operator_prompt")).value == prompt.message
        assert [p.prompt_id for p in device.prompts] == [prompt.data["prompt_id"]]
        await device.command("acknowledge_prompt", prompt_id=prompt.data["prompt_id"], user="bob")
        assert prompt.data["prompt_id"] not in [p.prompt_id for p in device.prompts]
        step = await next_event(events, lambda e: e.kind is EventKind.STEP_STARTED)
        assert step.message == "Cassette check"
        assert (await device.read("cassette.present")).value is True
        await device.abort()


async def test_hold_suspend_and_their_resumes_target_states() -> None:
    async with cocoon() as (_sim, device):
        events = device.events()
        operator = answering(device, device.events())
        run = await device.start_program(quick("CAR-T"))
        await next_event(events, lambda e: e.message == "Prime")
        await device.hold()
        assert device.state == HELD
        await device.hold()  # already there: a no-op
        await device.unhold()
        assert device.state == EXECUTE
        await device.suspend()
        assert device.state == SUSPENDED
        await device.unsuspend()
        assert device.state == EXECUTE
        assert run.status.device_state == "Running/Execute"
        await device.stop()
        with pytest.raises(RunStopped, match="cocoon-1"):
            await run
        assert device.state == STOPPED
        operator.cancel()


async def test_abort_ends_the_run_then_clear_and_reset_make_it_ready() -> None:
    async with cocoon() as (_sim, device):
        events = device.events()
        run = await device.start_program(quick("MSC expansion"))
        await next_event(events, lambda e: e.kind is EventKind.PROMPT)
        await device.abort()
        with pytest.raises(RunAborted, match="cocoon-1: start_program MSC expansion quick") as info:
            await run
        assert info.value.result is not None
        assert info.value.result.outcome == "aborted"
        assert device.state == ABORTED
        await device.clear()
        assert device.state == STOPPED
        await device.reset()
        assert device.state == IDLE
        assert PROFILE.program("MSC expansion").name == "MSC expansion"
