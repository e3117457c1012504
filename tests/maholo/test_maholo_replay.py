"""HTTP capture and replay with the Maholo: a session recorded with ``capture=`` plays back
through the same adapter with ``maholo+replay://``, answers, refusals and events alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cellauto.driver import Device
from cellauto.errors import HttpProblem, ReplayMismatch
from cellauto.registry import connect
from cellauto.schema import EventKind
from cellauto.schema.quantity import Q
from cellauto.sim import start_simulator

TOKEN = "replay-secret-token"


async def session(device: Device) -> list[Any]:
    """Reads, a refused command, a queued robot job and what the stream reported of it."""
    out: list[Any] = [device.info.model_dump(mode="json"), str(device.state)]
    feed = device.events()
    sample = await device.read("incubator.co2")
    out.append([sample.value, sample.unit, str(sample.timestamp)])
    with pytest.raises(HttpProblem) as refused:
        await device.command("submit_job", job_type="passage", plate_ids="P1", volume=Q(7, "uL"))
    out.append([refused.value.status, refused.value.detail])
    submitted = await device.command("submit_job", job_type="seeding", plate_ids="P1")
    out.append(submitted.data)
    async for event in feed:
        if event.kind is EventKind.NOTE and event.data.get("robot_job"):
            out.append(event.message)
            break
    out.append(await device.jobs())  # type: ignore[attr-defined]
    await device.close()
    return out


async def test_a_captured_session_replays_through_the_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = tmp_path / "maholo.jsonl"
    monkeypatch.setenv("CELLAUTO_TOKEN_M_LIVE", TOKEN)
    sim = await start_simulator("maholo", seed=6, speed=1.0, failures="off", token=TOKEN)
    try:
        live = await session(
            await connect(f"{sim.url}?capture={capture}", device_id="m-live", time=sim.time)
        )
    finally:
        await sim.stop()
    text = capture.read_text(encoding="utf-8")
    assert TOKEN not in text
    assert '"op":"event"' in text
    replayed = await session(await connect(f"maholo+replay://{capture}", device_id="m-live"))
    assert replayed == live


async def test_a_request_the_capture_does_not_hold_is_a_mismatch(tmp_path: Path) -> None:
    capture = tmp_path / "maholo.jsonl"
    sim = await start_simulator("maholo", seed=6, failures="off")
    try:
        live = await connect(f"{sim.url}?capture={capture}", device_id="m-cap", time=sim.time)
        await live.read("incubator.co2")
        await live.close()
    finally:
        await sim.stop()
    device = await connect(f"maholo+replay://{capture}", device_id="m-cap")
    try:
        with pytest.raises(ReplayMismatch, match=r"m-cap: read incubator\.temperature"):
            await device.read("incubator.temperature")
    finally:
        await device.close()
