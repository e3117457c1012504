"""The Prodigy simulator on real endpoints (TCP loopback, pty) and adapters connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from cellauto.profiles import load_profile
from cellauto.registry import parse_url
from cellauto_adapters.prodigy import ProdigyAdapter
from cellauto_simulators.prodigy import ProdigySimulator, start_simulator

FAST = {"request_timeout": "0.3", "heartbeat": "0.2", "retries": "3"}

Start = Callable[..., Awaitable[ProdigySimulator]]
Connect = Callable[..., Awaitable[ProdigyAdapter]]


@pytest.fixture(params=["tcp", "pty"])
def link(request: pytest.FixtureRequest) -> str:
    """Each test runs over TCP and over a pseudo-terminal."""
    return str(request.param)


@pytest.fixture
async def start_sim(link: str) -> AsyncIterator[Start]:
    """Starts simulators (speed=max, seed=1 unless told) on the link; stops them after."""
    running: list[ProdigySimulator] = []

    async def start(**options: str) -> ProdigySimulator:
        opts = {"speed": "max", "seed": "1"} | options
        if link == "pty":
            opts["pty"] = "1"
        sim = await start_simulator(load_profile("prodigy"), opts)
        running.append(sim)
        return sim

    yield start
    for sim in reversed(running):
        await sim.stop()


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Connects adapters (fast timeouts) to simulators; closes them after."""
    devices: list[ProdigyAdapter] = []

    async def open_(sim: ProdigySimulator, **options: str) -> ProdigyAdapter:
        url = parse_url(sim.url)
        url.options.update(FAST | options)
        device = ProdigyAdapter("prodigy-1", load_profile("prodigy"), url, time=sim.time)
        devices.append(device)
        await device.connect()
        return device

    yield open_
    for device in reversed(devices):
        await device.close()


@pytest.fixture
async def sim(start_sim: Start) -> ProdigySimulator:
    return await start_sim()


@pytest.fixture
async def device(sim: ProdigySimulator, connect: Connect) -> ProdigyAdapter:
    return await connect(sim)
