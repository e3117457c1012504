"""Read, write, call, browse and addressing against a real loopback server."""

from __future__ import annotations

import pytest
from opcua_space import CHAMBER, SEQ, SETPOINT, TEMP

from cellauto.errors import NodeNotFound, OpcUaStatusError
from cellauto.sim.servers.opcua import OpcUaServer
from cellauto.transport.opcua import BrowseEntry, OpcUaTransport


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
