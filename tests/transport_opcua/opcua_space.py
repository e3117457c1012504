"""The address space the OPC UA transport tests serve (shared by conftest and the tests)."""

from __future__ import annotations

from cellauto.sim.servers.opcua import EventType, Method, MethodFailed, Obj, Var

CHAMBER = "2:Cocoon/2:Chamber"
TEMP = f"{CHAMBER}/2:Temperature"
SETPOINT = f"{CHAMBER}/2:Setpoint"
SEQ = "2:Cocoon/2:Seq"
LOGIN = ("tester", "")
"""A simulated user (any name logs in; its password is not checked by default)."""


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
