"""A LADS session captured through the generic adapter (``?capture=``) replays through it
(``lads+replay://``) without a server: the browse, the program run with its prompt, and the
result with its files come back as they were (`cellauto.transport.lads.replay`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from asyncua import ua

import cellauto
from cellauto.driver import Device
from cellauto.errors import OpcUaReplayMismatch
from cellauto.schema import EventKind, PropertyValue, Q
from cellauto.sim import start_simulator
from cellauto.transport.opcua_capture import decode, encode


async def session(
    device: Device, program: str, parameters: dict[str, PropertyValue]
) -> list[object]:
    """What a user sees of one run, closed at the end."""
    seen: list[object] = [
        device.info.model_dump(mode="json"),
        sorted(p.name for p in device.profile.programs),
    ]
    events = device.events()
    run = await device.start_program(program, parameters)
    async for event in events:
        if event.kind is EventKind.PROMPT:
            await device.answer_prompt(str(event.data["prompt_id"]), "done", "olga")
            seen.append(event.message)
        elif event.kind is EventKind.PROGRAM_FINISHED:
            break
    events.close()
    result = await run
    seen += [result.outcome, result.properties, sorted((f.name, f.sha256) for f in result.files)]
    await device.close()
    return seen


SHORT_BANK: dict[str, PropertyValue] = {
    "passages": 0,
    "passage_confluency": Q(50, "%"),
    "seeding_density": Q(10000, "{cells}/cm2"),
}


@pytest.mark.parametrize(
    ("kind", "program", "parameters", "files"),
    [
        ("lads", "Isolator decontamination", {}, 0),  # a profile built by browsing
        ("cellqualia", "MSC expansion", SHORT_BANK, 2),  # an image and the bank summary
    ],
)
@pytest.mark.asyncio
async def test_a_program_run_replays_through_the_adapter(
    tmp_path: Path, kind: str, program: str, parameters: dict[str, PropertyValue], files: int
) -> None:
    capture = tmp_path / "run.jsonl"
    sim = await start_simulator("cellqualia", seed=6)
    try:
        url = sim.url.replace("cellqualia+opcua://", f"{kind}+opcua://")
        live_device = await cellauto.connect(
            f"{url}?capture={capture}&heartbeat=0", device_id="lq", time=sim.time
        )
        live = await session(live_device, program, parameters)
    finally:
        await sim.stop()
    assert live[-3] == "complete"
    assert len(live[-1]) == files  # type: ignore[arg-type]
    replayed_device = await cellauto.connect(f"{kind}+replay://{capture}", device_id="lq")
    assert await session(replayed_device, program, parameters) == live


@pytest.mark.asyncio
async def test_a_request_the_capture_does_not_hold_fails_clearly(tmp_path: Path) -> None:
    capture = tmp_path / "short.jsonl"
    sim = await start_simulator("cellqualia", seed=6)
    try:
        url = sim.url.replace("cellqualia+opcua://", "lads+opcua://")
        device = await cellauto.connect(f"{url}?capture={capture}&heartbeat=0", device_id="lq")
        await device.close()
    finally:
        await sim.stop()
    replayed = await cellauto.connect(f"lads+replay://{capture}", device_id="lq")
    try:
        with pytest.raises(OpcUaReplayMismatch, match="not in the capture"):
            await replayed.start_program("Isolator decontamination")
    finally:
        await replayed.close()


def test_a_capture_keeps_a_localized_text_as_the_text_an_adapter_reads() -> None:
    # state and step names over LADS are LocalizedText; their repr could not be replayed
    assert encode(ua.LocalizedText("Running", "en")) == "Running"
    assert decode(encode([ua.LocalizedText("Aerate")])) == ["Aerate"]
