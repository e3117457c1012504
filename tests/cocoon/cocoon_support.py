"""Shared by the Cocoon tests: the profile, short programs, and the simulator + adapter pair."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar
from urllib.parse import urlencode

from cellauto.feeds import Feed
from cellauto.profiles import load_profile
from cellauto.registry import parse_url
from cellauto.schema import Event, EventKind, ProgramStep, ProgramTemplate
from cellauto.schema.quantity import Q
from cellauto_adapters.cocoon import CocoonAdapter
from cellauto_simulators.cocoon import CocoonSimulator, start_simulator

PROFILE = load_profile("cocoon")
T = TypeVar("T")
FAST = {"timeout": "3", "heartbeat": "0.3"}


def quick(program: str, hours: float = 6.0) -> ProgramTemplate:
    """A profile program with its timed steps shrunk to `hours` in all, same shape otherwise."""
    template = PROFILE.program(program)
    total = sum(s.duration_seconds or 0 for s in template.steps)
    steps = [
        step
        if step.duration is None
        else ProgramStep.model_validate(
            step.model_dump() | {"duration": Q(step.duration_seconds * hours * 3600 / total, "s")}
        )
        for step in template.steps
    ]
    data = template.model_dump(exclude={"content_hash"}) | {
        "steps": steps,
        "name": f"{program} quick",
    }
    return ProgramTemplate.model_validate(data)


def adapter_for(sim: CocoonSimulator, **options: str) -> CocoonAdapter:
    """The real adapter on the simulator's real endpoint (options go in the URL)."""
    url = parse_url(sim.url + "?" + urlencode(FAST | options))
    return CocoonAdapter("cocoon-1", PROFILE, url, time=sim.time)


@asynccontextmanager
async def cocoon(**options: str) -> AsyncIterator[tuple[CocoonSimulator, CocoonAdapter]]:
    """A simulator (speed=max, seed=7 unless given) and a connected adapter; both closed after."""
    sim = await start_simulator(PROFILE, {"speed": "max", "seed": "7"} | options)
    device = adapter_for(sim)
    try:
        await device.connect()
        yield sim, device
    finally:
        await device.close()
        await sim.stop()


async def next_event(feed: Feed[Event], match: Callable[[Event], bool]) -> Event:
    """The next event of `feed` that matches (no wall-clock bound: the suite's timeout is)."""
    async for event in feed:
        if match(event):
            return event
    raise AssertionError("the event feed ended")


async def drain(feed: Feed[T]) -> list[T]:
    """Close `feed` and return what it still holds."""
    feed.close()
    return [item async for item in feed]


def answering(device: CocoonAdapter, feed: Feed[Event], user: str = "alice") -> asyncio.Task[None]:
    """A task that answers every operator prompt, as an operator at the device would."""

    async def answer() -> None:
        async for event in feed:
            if event.kind is EventKind.PROMPT:
                await device.answer_prompt(str(event.data["prompt_id"]), "done", user)

    return asyncio.create_task(answer())
