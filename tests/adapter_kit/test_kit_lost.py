"""Bounded, truthful failure: a device that goes away for good ends every waiter with a
DeviceLost naming the device, the last contact and what was attempted, and the outage is two
events (down, then lost), not one per reconnect attempt."""

from __future__ import annotations

from typing import Any

import pytest

from cellauto.errors import DeviceLost
from cellauto.feeds import Feed
from cellauto.profiles import load_profile
from cellauto.registry import connect, load_simulator
from cellauto.schema import Event, EventKind

LIMITS = {"reconnect_attempts": "2", "reconnect_time": "5"}
FAST = {
    "cocoon": {"timeout": "3", "heartbeat": "0.3"},
    "prodigy": {"request_timeout": "0.3", "heartbeat": "0.2"},
}


async def _connection_events(feed: Feed[Event]) -> list[str]:
    return [e.message async for e in feed if e.kind is EventKind.CONNECTION_CHANGED]


@pytest.mark.parametrize("kind", ["cocoon", "prodigy"])
async def test_a_vanished_device_ends_every_waiter_with_device_lost(kind: str) -> None:
    sim = await load_simulator(kind)(load_profile(kind), {"speed": "max"})
    query = "&".join(f"{k}={v}" for k, v in (FAST[kind] | LIMITS).items())
    device = await connect(f"{sim.url}?{query}", device_id=f"{kind}-lost", time=sim.time)
    events, samples = device.events(), device.subscribe()
    program = device.profile.programs[0]
    params = {
        p.name: (p.minimum if p.minimum is not None else 1)
        for p in program.parameters
        if p.required and p.default is None and p.dtype in ("float", "int")
    }
    run = await device.start_program(program.name, params)
    await _pull_the_plug(kind, sim)  # the device goes away for good, mid-run
    with pytest.raises(DeviceLost) as caught:
        await run
    lost = caught.value
    assert lost.device == f"{kind}-lost"
    assert lost.attempts <= 2
    assert "last contact" in str(lost)
    with pytest.raises(DeviceLost):
        await device.read(next(iter(device.profile.channels())))
    with pytest.raises(DeviceLost):
        async for _ in samples:
            pass
    await device.close()
    await sim.stop()
    changes = await _connection_events(events)
    assert changes == ["disconnected", "lost"]


async def _pull_the_plug(kind: str, sim: Any) -> None:
    """Stop the simulator's server without stopping its device model (no run end is sent)."""
    if kind == "cocoon":
        await sim.device.server.stop()
    else:
        await sim.server.close()
