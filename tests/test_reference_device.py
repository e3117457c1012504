"""The driver layer end to end: the reference incubator's real adapter talks over a real
loopback TCP port to its simulator, which runs on the engine's virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import cellauto
from cellauto.errors import CommandRejected, InvalidTransition, SimulationError
from cellauto.operation import Operation
from cellauto.registry import register_adapter, register_simulator
from cellauto.schema import EventKind, Result
from reference_device import PROFILE, IncubatorAdapter, start_simulator

register_adapter("incubator", IncubatorAdapter)
register_simulator("incubator", start_simulator)


async def until_step(run: Operation[Result], number: int) -> None:
    """Wait until the run reports step `number`."""

    async def watch() -> None:
        async for status in run.watch():
            if status.step_number == number:
                return

    await watch()


async def answer_next_prompt(device: cellauto.Device, answer: str) -> str:
    """Wait for the device's next operator prompt, answer it, return its text."""
    events = device.events()
    async with asyncio.timeout(5):
        while not device.prompts:
            event = await anext(events)
            assert event.kind is not EventKind.PROGRAM_FINISHED, "the run ended without a prompt"
    events.close()
    (prompt,) = device.prompts
    await device.answer_prompt(prompt, answer, user="alice")
    return prompt.text


@pytest.fixture
async def incubator() -> AsyncIterator[IncubatorAdapter]:
    device = await cellauto.connect("incubator+sim://?speed=max&seed=3", profile=PROFILE)
    assert isinstance(device, IncubatorAdapter)
    try:
        yield device
    finally:
        await device.close()


async def test_connect_reads_identity_state_and_channels(incubator: IncubatorAdapter) -> None:
    assert incubator.info.serial_number == "SIM-1"
    assert str(incubator.state) == "Stopped"
    sample = await incubator.read("chamber.temperature")
    assert sample.unit == "Cel"
    assert 30 < float(sample.value) < 45
    assert sample.timestamp.year == 2025  # the simulator's virtual clock, not the wall clock


async def test_subscribe_delivers_polled_samples_in_order(incubator: IncubatorAdapter) -> None:
    feed = incubator.subscribe(["chamber.glucose"])
    seen = []
    async for sample in feed:
        seen.append(sample)
        if len(seen) == 5:
            break
    assert all(s.channel == "chamber.glucose" and s.unit == "mmol/L" for s in seen)
    assert [s.seq for s in seen] == sorted(s.seq for s in seen)
    assert feed.dropped == 0


async def test_full_program_run_with_prompt_at_max_speed(incubator: IncubatorAdapter) -> None:
    events = incubator.events()
    run = await incubator.start_program("expand", {"grow_time": cellauto.Q(2, "d")})
    statuses = []

    async def watch() -> None:
        async for status in run.watch():
            statuses.append(status)

    watcher = asyncio.create_task(watch())
    assert await answer_next_prompt(incubator, "bag connected") == "Connect the medium bag"
    result = await run  # returns once the device reports Complete
    await watcher
    assert result.outcome == "complete"
    assert result.device_program_run_id == incubator.current_run.device_program_run_id  # type: ignore[union-attr]
    assert result.total_runtime.total_seconds() >= (1 + 48) * 3600  # virtual, not wall time
    assert statuses[-1].status == "finishedSuccessfully"
    # a poll-only device at max speed may finish a 48 h step between two polls: the step the
    # run waited in is seen, later ones need not be
    assert any(s.step_name == "Add medium" and s.status == "running" for s in statuses)
    await incubator.close()
    kinds = [e async for e in events]
    transitions = [e.to_state for e in kinds if e.kind is EventKind.STATE_CHANGED]
    assert transitions[-1] == "Running/Complete"
    answered = [e for e in kinds if e.kind is EventKind.PROMPT_ANSWERED]
    assert [(e.message, e.data["user"]) for e in answered] == [("bag connected", "alice")]
    assert incubator.prompts == []
    assert EventKind.PROGRAM_STARTED in {e.kind for e in kinds}
    assert [e.seq for e in kinds] == sorted(e.seq for e in kinds)


async def test_hold_and_unhold_reach_the_device(incubator: IncubatorAdapter) -> None:
    run = await incubator.start_program("expand")
    await until_step(run, 2)  # waiting on the prompt: the run cannot finish
    await incubator.hold()
    assert str(incubator.state) in ("Running/Holding", "Running/Held")
    await incubator.hold()  # already holding: a no-op, nothing sent
    await incubator.unhold()
    await incubator.abort()
    with pytest.raises(cellauto.RunAborted, match="the run was aborted"):
        await run


async def test_bad_requests_fail_before_anything_moves(incubator: IncubatorAdapter) -> None:
    with pytest.raises(
        InvalidTransition, match="incubator-1: unhold: not allowed in state Stopped"
    ):
        await incubator.unhold()
    with pytest.raises(CommandRejected, match=r"outside 1\.0\.\.240\.0 h"):
        await incubator.start_program("expand", {"grow_time": cellauto.Q(30, "d")})
    with pytest.raises(CommandRejected, match="needs a quantity in 'h'"):
        await incubator.start_program("expand", {"grow_time": 48})
    assert str(incubator.state) == "Stopped"


async def test_disconnect_fault_is_survived() -> None:
    device = await cellauto.connect(
        "incubator+sim://?speed=max&seed=3&faults=disconnect@2h", profile=PROFILE
    )
    try:
        events = device.events()
        run = await device.start_program("expand")
        await answer_next_prompt(device, "ok")
        result = await run
        assert result.outcome == "complete"
        assert device.transport.connected
    finally:
        await device.close()
    connection = [
        e.message for e in [e async for e in events] if e.kind is EventKind.CONNECTION_CHANGED
    ]
    assert "disconnected" in connection
    assert connection.index("connected", connection.index("disconnected")) > 0


async def test_the_reference_simulator_refuses_alarms_its_profile_lacks() -> None:
    sim = await start_simulator(PROFILE, {})
    try:
        with pytest.raises(SimulationError, match="no alarm 'door'; alarms: none"):
            sim.raise_alarm("door")
    finally:
        await sim.stop()
