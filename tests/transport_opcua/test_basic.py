"""Read, write, call, browse and addressing against a real loopback server (one per module:
starting one costs about a second of CPU; each test starts from the declared values)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from opcua_space import CHAMBER, EVENTS, LOGIN, SEQ, SETPOINT, TEMP, address_space

from cellauto.errors import ConnectionLost, NodeNotFound, OpcUaStatusError
from cellauto.sim.servers.opcua import OpcUaServer
from cellauto.transport.opcua import BrowseEntry, OpcUaTransport

pytestmark = pytest.mark.asyncio(loop_scope="module")
INITIAL = {TEMP: 37.0, SETPOINT: 37.0, f"{CHAMBER}/2:Count": 3, SEQ: 0}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared_server() -> AsyncIterator[OpcUaServer]:
    async with OpcUaServer(address_space(), event_types=EVENTS) as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="module")
async def server(shared_server: OpcUaServer) -> AsyncIterator[OpcUaServer]:
    """The module's server, with the declared values again after each test."""
    yield shared_server
    for path, value in INITIAL.items():
        await shared_server.set(path, value)


@pytest_asyncio.fixture(loop_scope="module")
async def transport(server: OpcUaServer) -> AsyncIterator[OpcUaTransport]:
    async with OpcUaTransport(server.url, device="cocoon-1", credentials=LOGIN) as t:
        yield t


async def test_read_write_call(server: OpcUaServer, transport: OpcUaTransport) -> None:
    assert await transport.read(TEMP) == 37.0
    await server.set(TEMP, 37.5)
    assert await transport.read(TEMP) == 37.5
    await transport.write(SETPOINT, 36.0)
    assert await server.get(SETPOINT) == 36.0
    await transport.write(f"{CHAMBER}/2:Count", 7)  # Int32 node: type taken from DataType
    assert await transport.read(f"{CHAMBER}/2:Count") == 7
    assert await transport.read_many([TEMP, SETPOINT, SEQ]) == [37.5, 36.0, 0]
    assert await transport.call("2:Cocoon", "2:Add", 2, 3) == 5
    assert await transport.call("2:Cocoon", "2:Start", "TCT") == [True, "started TCT"]


async def test_anonymous_sessions_only_read_and_a_user_operates(server: OpcUaServer) -> None:
    async with OpcUaTransport(server.url, device="cocoon-1") as anonymous:
        assert await anonymous.read(SETPOINT) == 37.0
        async with anonymous.subscribe([TEMP], 0.01) as sub:
            assert (await anext(sub)).value == 37.0
        with pytest.raises(OpcUaStatusError) as refused:
            await anonymous.write(SETPOINT, 36.0)
        assert refused.value.status == "BadUserAccessDenied"
        with pytest.raises(OpcUaStatusError) as refused:
            await anonymous.call("2:Cocoon", "2:Add", 2, 3)
        assert refused.value.status == "BadUserAccessDenied"
    assert await server.get(SETPOINT) == 37.0
    async with OpcUaTransport(server.url, device="cocoon-1", credentials=("olga", "")) as olga:
        await olga.write(SETPOINT, 36.0)
        assert await olga.call("2:Cocoon", "2:Add", 2, 3) == 5
    assert await server.get(SETPOINT) == 36.0


async def test_anonymous_operate_and_declared_users_with_passwords() -> None:
    space = address_space()
    open_server = OpcUaServer(space, event_types=EVENTS, anonymous="operate")
    async with open_server, OpcUaTransport(open_server.url, device="cocoon-1") as anonymous:
        await anonymous.write(SETPOINT, 36.0)
    async with OpcUaServer(space, event_types=EVENTS, users={"olga": "s3cret"}) as server:
        async with OpcUaTransport(server.url, device="cocoon-1", credentials=("olga", "s3cret")):
            pass
        for wrong in [("olga", "guess"), ("mallory", "s3cret")]:
            with pytest.raises(ConnectionLost, match="BadUserAccessDenied"):
                async with OpcUaTransport(server.url, device="cocoon-1", credentials=wrong):
                    pass


async def test_browse(transport: OpcUaTransport) -> None:
    top = await transport.browse()
    assert BrowseEntry("2:Cocoon", "Object") in top
    children = await transport.browse("2:Cocoon")
    assert BrowseEntry("2:Cocoon/2:Chamber", "Object") in children
    assert BrowseEntry("2:Cocoon/2:Seq", "Variable") in children
    assert BrowseEntry("2:Cocoon/2:Start", "Method") in children


async def test_nodeid_addressing(server: OpcUaServer, transport: OpcUaTransport) -> None:
    assert await transport.node_id(TEMP) == server.node_id(TEMP)
    assert await transport.read(server.node_id(TEMP)) == 37.0
    assert isinstance(await transport.read("i=2258"), object)  # Server CurrentTime


async def test_unknown_path_names_path(transport: OpcUaTransport) -> None:
    with pytest.raises(NodeNotFound) as info:
        await transport.read("2:Cocoon/2:Chamber/2:Pressure")
    assert info.value.path == "2:Cocoon/2:Chamber/2:Pressure"
    assert "cocoon-1" in str(info.value)
    assert "read 2:Cocoon/2:Chamber/2:Pressure" in str(info.value)


async def test_bad_status_is_typed(transport: OpcUaTransport) -> None:
    with pytest.raises(OpcUaStatusError) as info:
        await transport.write(TEMP, 1.0)  # not writable
    assert info.value.status == "BadUserAccessDenied" or info.value.status.startswith("Bad")
    assert info.value.operation == f"write {TEMP}"
    with pytest.raises(OpcUaStatusError) as info:
        await transport.call("2:Cocoon", "2:Start", "bad")
    assert info.value.status == "BadInvalidState"
    assert info.value.operation == "call 2:Start"


async def test_generic_client_reads_served_node(server: OpcUaServer) -> None:
    from asyncua import Client

    async with Client(server.url) as client:
        objects = client.nodes.objects
        cocoon = await objects.get_child("2:Cocoon")
        names = {(await c.read_browse_name()).Name for c in await cocoon.get_children()}
        assert {"Seq", "Chamber", "Start"} <= names
        temp = await objects.get_child(["2:Cocoon", "2:Chamber", "2:Temperature"])
        assert await temp.read_value() == 37.0
