"""Aborting a Prodigy while a prompt is open reaches Aborted and can be cleared (the adapter no
longer adopts a stale state from a CMD reply after a later event was applied)."""

from __future__ import annotations

import pytest

from cellauto.driver import RunAborted
from cellauto.schema import EventKind
from cellauto.state import ABORTED, IDLE, STOPPED
from cellauto_adapters.prodigy import ProdigyAdapter


async def test_abort_with_a_prompt_open_reaches_aborted_and_clears(device: ProdigyAdapter) -> None:
    events = device.events()
    run = await device.start_program("TCT", {})
    async for event in events:
        if event.kind is EventKind.PROMPT:
            break
    assert device.prompts
    await device.abort()
    with pytest.raises(RunAborted):
        await run
    async for event in events:
        if event.kind is EventKind.STATE_CHANGED and event.to_state == str(ABORTED):
            break
    assert device.state == ABORTED
    await device.clear()
    assert device.state == STOPPED
    await device.reset()
    assert device.state == IDLE
