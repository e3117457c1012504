"""The Cocoon simulator's `disconnect` fault is a network blip on a real server: the session
outlives its connection, and a standard client (asyncua's own auto-reconnect) reactivates it
and keeps receiving its subscription."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncua import Client
from asyncua.common.node import Node

from cellauto.profiles import load_profile
from cellauto_simulators.cocoon import start_simulator


async def test_asyncua_reconnects_by_itself_and_keeps_its_session() -> None:
    sim = await start_simulator(load_profile("cocoon"), {"speed": "max"})
    server = sim.device.server
    changes: asyncio.Queue[Any] = asyncio.Queue()

    class Handler:
        def datachange_notification(self, _node: Node, value: Any, _data: Any) -> None:
            changes.put_nowait(value)

    try:
        url = sim.url.replace("cocoon+opcua://", "opc.tcp://")
        client = Client(url, auto_reconnect=True)
        await client.connect()
        try:
            ns = await client.get_namespace_index("urn:cellauto:cocoon:v1")
            node = await client.nodes.objects.get_child(
                [f"{ns}:Cocoon", f"{ns}:Chamber", f"{ns}:Temperature"]
            )
            subscription = await client.create_subscription(10, Handler())
            await subscription.subscribe_data_change(node)
            await changes.get()
            sessions = set(server.session_ids())
            assert len(sessions) == 1
            await server.restart()  # every connection drops; the listener comes back at once
            while not changes.empty():
                changes.get_nowait()
            await changes.get()  # notifications flow again, on the same session
            assert set(server.session_ids()) == sessions
            assert 36.0 < await node.read_value() < 38.0
        finally:
            await client.disconnect()
    finally:
        await sim.stop()
