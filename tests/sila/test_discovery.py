"""mDNS discovery of a SiLA server (the simulator with discovery=1), on loopback only."""

from __future__ import annotations

import asyncio

from cellauto.profiles import load_profile
from cellauto.sila.discovery import discover
from cellauto_simulators.licellgrow import LiCellGrowSimulator


async def test_the_simulator_is_discovered_with_its_url() -> None:
    sim = await LiCellGrowSimulator.launch(
        load_profile("licellgrow"), {"discovery": "1"}, default_speed="max"
    )
    try:
        found = await asyncio.to_thread(discover, 2.0, ["127.0.0.1"])
        port = sim.url.split("?")[0].rsplit(":", 1)[1]
        assert [f.url for f in found if f.url.endswith(f":{port}")] == [
            f"sila+grpc://127.0.0.1:{port}"
        ]
    finally:
        await sim.stop()
