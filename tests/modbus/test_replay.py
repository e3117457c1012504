"""Capture a session with a live server and replay it without one: same answers, same errors;
a request that differs from the capture is a `ReplayMismatch`. The golden capture is
regenerated on purpose with CELLAUTO_REGEN_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cellauto.errors import ModbusIllegalValue, ReplayMismatch
from cellauto.transport.modbus import ModbusTransport, RegisterMap, ReplayLink
from cellauto.transport.opcua_capture import Capture

from .conftest import link_to
from .server import MapServer

GOLDEN = Path(__file__).parents[1] / "golden" / "modbus" / "session.jsonl"


async def session(plc: ModbusTransport) -> list[Any]:
    """A short session touching every table, a write with read-back and an exception."""
    seen: list[Any] = [await plc.read("sp.f32", "vessel*.volume", "alarm.*")]
    await plc.write({"sp.f32": 37.0, "sp.label": "run-1", "cmd.lamp": True})
    seen.append(await plc.read("sp.*"))
    seen.append([(r["seq"], r["code"]) for r in (await plc.read_ring("events", 0)).records])
    try:
        await plc.read("pv.f32_little")
    except ModbusIllegalValue as error:
        seen.append(error.code)
    return seen


async def record(server: MapServer, path: Path) -> list[Any]:
    await server.set("vessel2.volume", 8.5)
    await server.set("alarm.leak", True)
    await server.set("events.head", 1)
    await server.set_words("input", 300, [0, 1, 42, 0])
    capture = Capture(path)
    try:
        async with ModbusTransport(server.map, link_to(server, capture=capture)) as plc:
            server.faults[("input", 3)] = 3
            return await session(plc)
    finally:
        capture.close()


async def test_a_replayed_capture_gives_the_live_answers(
    server: MapServer, regmap: RegisterMap, tmp_path: Path
) -> None:
    live = await record(server, tmp_path / "live.jsonl")
    if os.environ.get("CELLAUTO_REGEN_GOLDEN") == "1":
        GOLDEN.write_text((tmp_path / "live.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    assert live[-1] == 3
    for capture in (tmp_path / "live.jsonl", GOLDEN):
        replay = ReplayLink(capture, device="testplc")
        async with ModbusTransport(regmap, replay) as plc:
            assert await session(plc) == live
        assert replay.remaining == 0


async def test_a_request_the_capture_does_not_hold_is_a_mismatch(regmap: RegisterMap) -> None:
    async with ModbusTransport(regmap, ReplayLink(GOLDEN, device="testplc")) as plc:
        with pytest.raises(ReplayMismatch, match=r"testplc: read sp.u16: sent frame #0"):
            await plc.read("sp.u16")
