"""A loopback OPC UA server built with the simulator helper, and a client transport on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cellauto.sim.servers.opcua import EventType, Method, MethodFailed, Obj, OpcUaServer, Var
from cellauto.transport.opcua import Backoff, OpcUaTransport

CHAMBER = "2:Cocoon/2:Chamber"
TEMP = f"{CHAMBER}/2:Temperature"
SETPOINT = f"{CHAMBER}/2:Setpoint"
SEQ = "2:Cocoon/2:Seq"


def address_space() -> list[Obj]:
    """The test device: a chamber with values, a writable setpoint and two methods."""

    async def add(a: int, b: int) -> int:
        return a + b

    async def start(program: str) -> tuple[bool, str]:
        if program == "bad":
            raise MethodFailed("BadInvalidState", "cannot start")
        return True, f"started {program}"

    return [
        Obj(
            "Cocoon",
            [
                Var("Seq", "UInt32", 0),
                Var("Name", "String", "cocoon-1"),
                Obj(
                    "Chamber",
                    [
                        Var("Temperature", "Double", 37.0),
                        Var("Setpoint", "Double", 37.0, writable=True),
                        Var("Count", "Int32", 3, writable=True),
                    ],
                ),
                Method("Add", add, [("a", "Int32"), ("b", "Int32")], [("sum", "Int32")]),
                Method(
                    "Start", start, [("program", "String")], [("ok", "Boolean"), ("msg", "String")]
                ),
            ],
        )
    ]


EVENTS = [EventType("AlarmEvent", {"AlarmId": "String", "Value": "Double"})]


@pytest.fixture
async def server() -> AsyncIterator[OpcUaServer]:
    async with OpcUaServer(address_space(), event_types=EVENTS) as srv:
        yield srv


@pytest.fixture
async def transport(server: OpcUaServer) -> AsyncIterator[OpcUaTransport]:
    async with OpcUaTransport(
        server.url, device="cocoon-1", timeout=1.0, heartbeat=0.3, backoff=Backoff(0.05, seed=1)
    ) as t:
        yield t
