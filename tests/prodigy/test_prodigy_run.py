"""Whole program runs at speed=max: TCT (prompts answered as an operator would) end to end
through `cellauto.connect`, and over a pty; CD34; results within the public ranges."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import cellauto
from cellauto.driver import Device
from cellauto.schema import Event, EventKind, Quantity, Result
from cellauto.state import COMPLETE


async def run_answering(
    device: Device, program: str, parameters: dict[str, object]
) -> tuple[Result, list[Event]]:
    """Run a program, answering every prompt; returns the result and every event."""
    events = device.events(maxsize=1_000_000)
    run = await device.start_program(program, parameters)
    seen: list[Event] = []

    async def operator() -> None:
        async for event in events:
            seen.append(event)
            if event.kind == EventKind.PROMPT:
                await device.answer_prompt(str(event.data["prompt_id"]), "done", "alice")

    task = asyncio.create_task(operator())
    try:
        result = await run  # simulated time: pytest's timeout guards a hang
    finally:
        task.cancel()
    return result, seen


def value(result: Result, name: str) -> float:
    prop = result.properties[name]
    assert isinstance(prop, Quantity)
    return prop.value


async def test_full_tct_run_through_a_sim_url() -> None:
    device = await cellauto.connect("prodigy+sim://?speed=max&seed=1")
    try:
        samples = device.subscribe(maxsize=1_000_000)
        result, events = await run_answering(device, "TCT", {"moi": cellauto.Q(5, "1")})
        assert result.outcome == "complete"
        assert device.state == COMPLETE
        assert 12.9 < result.total_runtime.total_seconds() / 86400 < 13.2  # 13 days (Zhu 2018)
        assert 70 <= value(result, "purity") <= 99.9
        assert 30 <= value(result, "recovery") <= 80
        assert 5 <= value(result, "transduction") <= 90
        assert 15 <= value(result, "fold_expansion") <= 50
        assert value(result, "target_fraction_cells") > 0
        assert value(result, "non_target_fraction_cells") > 0
        prompts = [e for e in events if e.kind == EventKind.PROMPT]
        assert len(prompts) == 5
        assert len([e for e in events if e.kind == EventKind.PROMPT_ANSWERED]) == 5
        steps = [e.data["step_number"] for e in events if e.kind == EventKind.STEP_STARTED]
        assert steps == list(range(1, 15))
        kinds = [e.kind for e in events]
        assert kinds.index(EventKind.PROGRAM_FINISHED) < len(kinds) - 1
        samples.close()
        got = [s async for s in samples]
        channels = {s.channel for s in got}
        assert {"chamber.temperature", "in_process_control.total_cells"} <= channels
        for channel in channels:  # Sample.seq is per channel: gapless, nothing was lost
            seqs = [s.seq for s in got if s.channel == channel]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    finally:
        await device.close()


async def test_tct_and_cd34_over_each_link(
    start_sim: Callable[..., Awaitable[object]], connect: Callable[..., Awaitable[Device]]
) -> None:
    sim = await start_sim(seed="7")
    device = await connect(sim)
    result, _ = await run_answering(device, "TCT", {"moi": cellauto.Q(8, "1")})
    assert result.outcome == "complete"
    await device.reset()
    result, events = await run_answering(
        device, "CD34", {"input_leukocytes": cellauto.Q(2e10, "{cells}")}
    )
    assert result.outcome == "complete"
    assert value(result, "input_cells") == 2e10
    assert 70 <= value(result, "purity") <= 99.9
    assert len([e for e in events if e.kind == EventKind.PROMPT]) == 3
