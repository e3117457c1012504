"""Prodigy simulator defects of issue 12, each with the behaviour the protocol promises."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from cellauto.driver import Device, RunAborted
from cellauto.schema import EventKind
from cellauto.state import ABORTED, IDLE, STOPPED


async def test_abort_with_a_prompt_open_reaches_aborted_and_can_be_cleared(
    start_sim: Callable[..., Awaitable[object]], connect: Callable[..., Awaitable[Device]]
) -> None:
    sim = await start_sim()
    device = await connect(sim)
    events = device.events()
    run = await device.start_program("TCT", {"moi": 5})
    async with asyncio.timeout(10):
        async for event in events:
            if event.kind == EventKind.PROMPT:
                break
    await device.abort()
    assert device.state == ABORTED
    with pytest.raises(RunAborted):
        await run
    states = [e.data["state"] for e in sim.truth.events if e.kind == "STATE"]  # type: ignore[attr-defined]
    assert states[-2:] == ["ABORTING", "ABORTED"]
    await device.clear()
    assert device.state == STOPPED
    await device.reset()
    assert device.state == IDLE
