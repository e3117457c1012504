"""A plain pymodbus client, written from the register tables of schemas/protocols/acc200.md
alone (no cellauto register map, transport or adapter), drives the simulated ACC-200: it reads
identity and the incubator temperature at their documented addresses, downloads a recipe with
its CRC, starts it, answers its prompt through the event ring and sees the run complete. Where
the mbpoll command-line client is installed, it reads and writes at the same addresses too."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import zlib
from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusTcpClient

from cellauto.sim import SimHandle, start_simulator

UNIT = 1


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    handle = await start_simulator("acc200", seed=5)
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def client(sim: SimHandle) -> AsyncIterator[AsyncModbusTcpClient]:
    port = int(sim.url.rsplit(":", 1)[1])
    plain = AsyncModbusTcpClient("127.0.0.1", port=port)
    assert await plain.connect()
    try:
        yield plain
    finally:
        plain.close()


def f32(high: int, low: int) -> float:
    """float32, high word first (section 1)."""
    return float(struct.unpack(">f", struct.pack(">HH", high, low))[0])


def u32(high: int, low: int) -> int:
    return (high << 16) | low


def text(words: list[int]) -> str:
    return b"".join(w.to_bytes(2, "big") for w in words).rstrip(b"\0").decode("ascii")


async def inputs(client: AsyncModbusTcpClient, address: int, count: int) -> list[int]:
    reply = await client.read_input_registers(address, count=count, device_id=UNIT)
    assert not reply.isError(), reply
    return list(reply.registers)


async def pulse(client: AsyncModbusTcpClient, coil: int) -> None:
    reply = await client.write_coil(coil, True, device_id=UNIT)
    assert not reply.isError(), reply


async def test_identity_and_temperature_at_the_documented_addresses(
    client: AsyncModbusTcpClient,
) -> None:
    assert await inputs(client, 0, 2) == [2, 0]  # map version 2.0
    assert text(await inputs(client, 10, 8)) == "ACC-200 (sim)"
    assert text(await inputs(client, 18, 8)).startswith("SIM")
    temperature = f32(*await inputs(client, 100, 2))
    assert 36.0 < temperature < 38.0
    setpoint = await client.read_holding_registers(0, count=2, device_id=UNIT)
    assert f32(*setpoint.registers) == 37.0
    assert (await inputs(client, 41, 1))[0] == 4  # PackML Idle


RECIPE = {
    "recipe": 1,
    "program": "plain client",
    "version": "1",
    "hash": "",
    "steps": [
        {"name": "Connect", "op": "connect_bag", "unit": None, "s": None, "prompt": "Go?"},
        {"name": "Culture", "op": "medium_exchange", "unit": "vessels", "s": 3600},
    ],
    "parameters": {"vessel_count": 2},
}


async def commit_recipe(client: AsyncModbusTcpClient) -> int:
    """Download and commit `RECIPE` (section 5); returns its CRC."""
    payload = json.dumps(RECIPE).encode()
    padded = payload + b"\0" * (len(payload) % 2)
    words = [int.from_bytes(padded[i : i + 2], "big") for i in range(0, len(padded), 2)]
    for offset in range(0, len(words), 120):  # holding 1000-3047, at most 120 per write
        await client.write_registers(1000 + offset, words[offset : offset + 120], device_id=UNIT)
    crc = zlib.crc32(payload)
    await client.write_registers(60, [len(payload), crc >> 16, crc & 0xFFFF], device_id=UNIT)
    await pulse(client, 16)  # recipe.commit
    assert (await inputs(client, 200, 1))[0] == 1  # recipe.status: accepted
    return crc


async def open_prompt(client: AsyncModbusTcpClient) -> int:
    """Wait for the running recipe's prompt; returns `prompt.active` (its event's seq)."""
    prompt = 0
    while not prompt:
        prompt = u32(*await inputs(client, 54, 2))
    return prompt


async def test_a_recipe_runs_to_completion_through_coils_and_the_event_ring(
    client: AsyncModbusTcpClient,
) -> None:
    crc = await commit_recipe(client)
    assert u32(*await inputs(client, 52, 2)) == crc  # program.loaded_crc

    head = u32(*await inputs(client, 58, 2))
    await pulse(client, 0)  # cmd.start
    prompt = await open_prompt(client)
    record = await inputs(client, 310 + 8 * ((prompt - 1) % 64), 8)
    assert u32(record[0], record[1]) == prompt
    assert record[4] == 5  # kind: prompt
    assert record[5] == 1  # code: the step that waits
    await client.write_registers(50, [prompt >> 16, prompt & 0xFFFF, 1], device_id=UNIT)
    await pulse(client, 17)  # prompt.submit
    while (await inputs(client, 41, 1))[0] != 17:  # until PackML Complete
        pass
    newest = u32(*await inputs(client, 58, 2))
    kinds = []
    for n in range(head + 1, newest + 1):
        record = await inputs(client, 310 + 8 * ((n - 1) % 64), 8)
        assert u32(record[0], record[1]) == n
        kinds.append((record[4], record[5]))
    states = [code for kind, code in kinds if kind == 1]
    assert states == [3, 6, 16, 17]  # Starting, Execute, Completing, Complete
    assert (8, 17) in kinds  # run_end, complete


async def test_during_a_run_clear_reset_and_an_answer_to_another_prompt_are_exception_03(
    client: AsyncModbusTcpClient,
) -> None:
    await commit_recipe(client)
    await pulse(client, 0)  # cmd.start
    prompt = await open_prompt(client)
    for coil in (7, 8):  # cmd.clear, cmd.reset: not while the recipe runs (section 3)
        reply = await client.write_coil(coil, True, device_id=UNIT)
        assert reply.isError()
        assert reply.exception_code == 3
    other = prompt + 1
    await client.write_registers(50, [other >> 16, other & 0xFFFF, 1], device_id=UNIT)
    reply = await client.write_coil(17, True, device_id=UNIT)  # prompt.submit
    assert reply.isError()
    assert reply.exception_code == 3
    assert u32(*await inputs(client, 54, 2)) == prompt  # still open
    await client.write_registers(50, [prompt >> 16, prompt & 0xFFFF, 1], device_id=UNIT)
    await pulse(client, 17)
    assert u32(*await inputs(client, 54, 2)) == 0
    await pulse(client, 2)  # cmd.hold: the run takes it
    while (await inputs(client, 41, 1))[0] != 11:  # until PackML Held
        pass


async def test_exception_replies_for_a_bad_address_value_or_command(
    client: AsyncModbusTcpClient,
) -> None:
    reply = await client.read_input_registers(4000, count=2, device_id=UNIT)
    assert reply.isError()
    assert reply.exception_code == 2
    hot = struct.unpack(">HH", struct.pack(">f", 80.0))
    reply = await client.write_registers(0, list(hot), device_id=UNIT)
    assert reply.isError()
    assert reply.exception_code == 3
    reply = await client.write_coil(2, True, device_id=UNIT)  # cmd.hold while Idle
    assert reply.isError()
    assert reply.exception_code == 3


MBPOLL = shutil.which("mbpoll")


async def mbpoll(sim: SimHandle, *args: str, write: str | None = None) -> str:
    """Run the mbpoll command-line Modbus client once against the simulator (0-based addresses,
    as the tables give them); `write` is a value to write instead of reading."""
    port = sim.url.rsplit(":", 1)[1]
    process = await asyncio.create_subprocess_exec(
        *(
            MBPOLL or "mbpoll",
            "-m",
            "tcp",
            "-a",
            "1",
            "-0",
            "-1",
            "-p",
            port,
            *args,
            "127.0.0.1",
            *([write] if write else []),
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


@pytest.mark.skipif(MBPOLL is None, reason="mbpoll (Debian package mbpoll) is not installed")
async def test_a_non_python_client_reads_and_writes_at_the_documented_addresses(
    sim: SimHandle, client: AsyncModbusTcpClient
) -> None:
    out = await mbpoll(sim, "-t", "3:float", "-B", "-r", "100", "-c", "1")
    temperature = float(out.split("[100]:")[1].split()[0])
    assert 36.0 < temperature < 38.0
    assert "[41]: \t4" in await mbpoll(sim, "-t", "3", "-r", "41", "-c", "1")  # Idle
    await mbpoll(sim, "-t", "4:float", "-B", "-r", "0", write="36.5")  # the temperature setpoint
    reply = await client.read_holding_registers(0, count=2, device_id=UNIT)
    assert f32(*reply.registers) == 36.5
