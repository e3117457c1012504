"""The MSC expansion's length is the user's: `passages` drops the passages (and the expansions
after them) beyond it, and each expansion lasts until the culture reaches `passage_confluency`
from the confluency `seeding_density` gives (docs/devices/cellqualia.md)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
import pytest_asyncio

import cellauto
from cellauto import Q
from cellauto.errors import CommandRejected
from cellauto.schema import EventKind
from cellauto.sim import SimHandle, start_simulator

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim() -> AsyncIterator[SimHandle]:
    handle = await start_simulator("cellqualia", seed=5)
    yield handle
    await handle.stop()


async def test_no_passage_and_a_low_confluency_make_a_short_bank(sim: SimHandle) -> None:
    async with await cellauto.connect(sim.url, device_id="cq", time=sim.time) as device:
        feed = device.events()
        run = await device.start_program(
            "MSC expansion",
            {
                "passages": 0,
                "passage_confluency": Q(50, "%"),
                "seeding_density": Q(10000, "{cells}/cm2"),
            },
        )
        steps = []
        async for event in feed:
            if event.kind is EventKind.PROMPT:
                await device.answer_prompt(str(event.data["prompt_id"]), "done", "olga")
            elif event.kind is EventKind.STEP_STARTED:
                steps.append(event.message)
            elif event.kind is EventKind.PROGRAM_FINISHED:
                break
        feed.close()
        result = await run
    assert result.outcome == "complete"
    assert steps == [
        "Load materials",
        "Decontaminate",
        "Seed",
        "Expand (passage 0)",
        "Harvest",
        "Bank",
    ]
    # 33 % seeded to 50 % at 0.03/h: ln(2)/0.03 h of expansion, then 3 + 1 + 2 + 2 h of steps
    expansion = math.log(2) / 0.03
    assert result.total_runtime.total_seconds() / 3600 == pytest.approx(8 + expansion, abs=0.1)
    assert result.properties["passages"] == 0
    summary = next(f for f in result.files if f.name == "cell-bank-summary.json")
    banked = json.loads(
        await asyncio.to_thread(Path(url2pathname(urlparse(summary.path).path)).read_text)
    )
    assert banked["passages"] == 0
    assert 50 <= banked["final_confluency_percent"] < 60  # grown for 4 h after the trigger
    assert [f.name for f in result.files if f.name.endswith(".png")] == ["phase-contrast-final.png"]


async def test_more_passages_than_the_program_has_are_refused(sim: SimHandle) -> None:
    async with await cellauto.connect(sim.url, device_id="cq", time=sim.time) as device:
        with pytest.raises(CommandRejected, match=r"'passages' is 3.*outside 0\.0\.\.2\.0"):
            await device.start_program("MSC expansion", {"passages": 3})
