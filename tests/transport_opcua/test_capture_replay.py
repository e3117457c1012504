"""Capture at the API level, and replay of the capture as a transport."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opcua_space import LOGIN, SEQ, SETPOINT, TEMP

from cellauto.errors import OpcUaReplayMismatch
from cellauto.sim.servers.opcua import OpcUaServer
from cellauto.transport.opcua import OpcUaApi, OpcUaTransport
from cellauto.transport.opcua_capture import Capture
from cellauto.transport.opcua_replay import OpcUaReplay


async def session(t: OpcUaApi, server: OpcUaServer | None) -> list[object]:
    """What an adapter would do; returns every answer it got."""
    answers: list[object] = [await t.read(TEMP), await t.read_many([TEMP, SETPOINT])]
    await t.write(SETPOINT, 36.5)
    answers.append(await t.call("2:Cocoon", "2:Start", "TCT"))
    answers.append(await t.browse("2:Cocoon/2:Chamber"))
    async with t.subscribe([SEQ], 0.01) as sub:  # type: ignore[attr-defined]
        answers.append(await anext(sub))
        if server is not None:
            await server.set(SEQ, 1)
        answers.append(await anext(sub))
    return answers


async def test_capture_then_replay_gives_same_answers(server: OpcUaServer, tmp_path: Path) -> None:
    path = tmp_path / "cocoon.jsonl"
    async with OpcUaTransport(
        server.url, device="cocoon-1", capture=Capture(path), credentials=LOGIN
    ) as live:
        recorded = await session(live, server)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert {"read", "read_many", "write", "call", "browse", "subscribe", "data"} <= {
        line["op"] for line in lines
    }
    assert all(
        line["dir"] == ("in" if line["op"] in ("data", "state") else "out") for line in lines
    )

    async with OpcUaReplay(path, device="cocoon-1") as replay:
        assert await session(replay, None) == recorded
        assert replay.remaining == 0


async def test_replay_mismatch_is_detected(server: OpcUaServer, tmp_path: Path) -> None:
    path = tmp_path / "cocoon.jsonl"
    async with OpcUaTransport(
        server.url, device="cocoon-1", capture=Capture(path), credentials=LOGIN
    ) as live:
        await live.read(TEMP)
        await live.write(SETPOINT, 36.5)
    async with OpcUaReplay(path, device="cocoon-1") as replay:
        assert await replay.read(TEMP) == 37.0
        with pytest.raises(OpcUaReplayMismatch) as info:
            await replay.write(SETPOINT, 30.0)
        assert info.value.index == 1
        assert info.value.device == "cocoon-1"
        assert info.value.operation == f"write {SETPOINT}"
        assert "36.5" in str(info.value)
