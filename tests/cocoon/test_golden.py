"""A recorded OPC UA session replayed through the adapter gives the same events and samples as
the golden file. Regenerate both (live capture, then replay) with CELLAUTO_REGEN_GOLDEN=1."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from cocoon_support import PROFILE, adapter_for, drain, next_event, quick

from cellauto.driver import RunAborted
from cellauto.registry import parse_url
from cellauto.schema import EventKind
from cellauto.transport.opcua_replay import OpcUaReplay
from cellauto_adapters.cocoon import CocoonAdapter
from cellauto_simulators.cocoon import start_simulator

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "cocoon"
CAPTURE = GOLDEN / "session.jsonl"
EXPECTED = GOLDEN / "session.json"
REGEN = os.environ.get("CELLAUTO_REGEN_GOLDEN") == "1"


class FixedTime:
    def now(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC)


async def session(device: CocoonAdapter) -> dict[str, list[object]]:
    """Connect, read, run a protocol to its second prompt, abort, clear."""
    events, recorded = device.events(), device.events()
    samples = device.subscribe()
    await device.connect()
    await device.read("chamber.temperature")
    run = await device.start_program(quick("CAR-T"))
    first = await next_event(events, lambda e: e.kind is EventKind.PROMPT)
    await device.command("acknowledge_prompt", prompt_id=first.data["prompt_id"], user="alice")
    await next_event(events, lambda e: e.kind is EventKind.PROMPT)
    await device.abort()
    with pytest.raises(RunAborted):
        await run
    await device.clear()
    await device.close()
    return {
        "events": [e.model_dump(mode="json", exclude={"seq"}) for e in await drain(recorded)],
        "samples": [s.model_dump(mode="json", exclude={"seq"}) for s in await drain(samples)],
    }


@pytest.fixture(autouse=True)
def fixed_run_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cellauto.driver.uuid", SimpleNamespace(uuid4=lambda: uuid.UUID(int=7)))


async def test_a_recorded_session_replays_to_the_golden_events_and_samples() -> None:
    if REGEN or not CAPTURE.exists():
        sim = await start_simulator(PROFILE, {"speed": "max", "seed": "11"})
        try:
            await session(adapter_for(sim, capture=str(CAPTURE)))
        finally:
            await sim.stop()
    replay = OpcUaReplay(CAPTURE, device="cocoon-1")
    url = parse_url("cocoon+opcua://replay")
    outcome = await session(
        CocoonAdapter("cocoon-1", PROFILE, url, time=FixedTime(), transport=replay)
    )
    assert replay.remaining == 0
    if REGEN or not EXPECTED.exists():
        EXPECTED.write_text(json.dumps(outcome, indent=1) + "\n", encoding="utf-8")
    assert outcome == json.loads(EXPECTED.read_text(encoding="utf-8"))
    kinds = {e["kind"] for e in outcome["events"]}  # type: ignore[index]
    assert {"state_changed", "step_started", "prompt", "prompt_answered"} <= kinds
