"""Helpers the Prodigy tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cellauto.schema import EventKind
from cellauto.state import EXECUTE
from cellauto_adapters.prodigy import ProdigyAdapter


async def wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll `predicate` until it holds; AssertionError after `seconds`."""
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true within {seconds} s: {predicate}")


async def start_tct(device: ProdigyAdapter) -> None:
    """Start TCT and get it past its first prompt, into Execute."""
    events = device.events()
    await device.start_program("TCT", {"moi": 5})
    async with asyncio.timeout(5):
        async for event in events:
            if event.kind == EventKind.PROMPT:
                await device.answer_prompt(event.data["prompt_id"], "done", "alice")  # type: ignore[arg-type]
                break
    await wait_for(lambda: device.state == EXECUTE)
