"""A loopback OPC UA server built with the simulator helper, and a client transport on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opcua_space import EVENTS, LOGIN, address_space

from cellauto.sim.servers.opcua import OpcUaServer
from cellauto.transport.opcua import Backoff, OpcUaTransport


@pytest.fixture
async def server() -> AsyncIterator[OpcUaServer]:
    async with OpcUaServer(address_space(), event_types=EVENTS) as srv:
        yield srv


@pytest.fixture
async def transport(server: OpcUaServer) -> AsyncIterator[OpcUaTransport]:
    async with OpcUaTransport(
        server.url,
        device="cocoon-1",
        timeout=1.0,
        heartbeat=0.3,
        backoff=Backoff(0.05, seed=1),
        credentials=LOGIN,
    ) as t:
        yield t
