"""A made-up second device of the OPC UA event-log family, the Kiln, written for the family
base's tests only: its simulator on `OpcUaEventLogDevice` and its adapter on
`OpcUaEventLogAdapter`, each a handful of lines, meeting on a real loopback endpoint.

The Kiln is not the Cocoon: another namespace, root, acronym, vocabulary and event kinds
(``door``, its own), so what the adapter base does for it is the family's, not the Cocoon's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from cellauto.adapter import ProtocolTables
from cellauto.adapter.opcua_log import OpcUaEventLogAdapter
from cellauto.errors import CommandRejected
from cellauto.schema import DeviceProfile, ProgramRun, ProgramTemplate, PropertyValue
from cellauto.sim.clock import ScaledClock
from cellauto.sim.families.opcua_log import OpcUaEventLogDevice
from cellauto.sim.servers.opcua import EventType, Method, MethodFailed, Obj, Var
from cellauto.state import IDLE, State, StateCommand

NAMESPACE = "urn:cellauto:tests:kiln:v1"
PROTOCOL = ProtocolTables(
    name="kiln",
    version=1,
    states={
        "Cold": State.parse("Stopped"),
        "Hot": State.parse("Running/Idle"),
        "Venting": State.parse("Stopping"),
        "Firing": State.parse("Running/Resetting"),
    },
    commands={StateCommand.STOP: "Vent", StateCommand.RESET: "Fire"},
    errors={"BadInvalidState": ("not allowed in the kiln's state", "report to the user")},
    severities={},
)
PROFILE = DeviceProfile.model_validate(
    {
        "device": "kiln",
        "profile_version": "0.1.0",
        "manufacturer": "cellauto",
        "model": "Test kiln",
        "description": "A made-up OPC UA event-log device for testing the family base.",
        "protocol": "tests/adapter_opcua_log/kiln.py",
        "transports": ["opcua"],
        "functional_units": [
            {
                "name": "oven",
                "kind": "incubator",
                "channels": [
                    {"name": "temperature", "kind": "sensor", "unit": "Cel"},
                    {"name": "rh", "kind": "sensor", "unit": "%"},
                ],
            }
        ],
    }
)


def _event(name: str, **fields: str) -> EventType:
    return EventType(name, {"Seq": "UInt64", "Kind": "String", **fields})


EVENT_TYPES = {
    "state": _event("KilnStateEvent", State="String"),
    "prompt": _event(
        "KilnPromptEvent",
        PromptId="String",
        Text="String",
        Status="String",
        User="String",
        Answer="String",
    ),
    "alarm": _event(
        "KilnAlarmEvent",
        AlarmId="String",
        Code="String",
        Status="String",
        SourceUnit="String",
        User="String",
    ),
    "result": _event(
        "KilnResultEvent",
        RunId="String",
        Outcome="String",
        Started="DateTime",
        Stopped="DateTime",
        PauseTime="Double",
        Properties="String",
    ),
    "door": _event("KilnDoorEvent", Open="Boolean"),
}


class KilnSimulator(OpcUaEventLogDevice):
    """The Kiln's simulator: ``Vent`` (Hot -> Cold) and ``Fire`` (Cold -> Hot) as its state
    commands, prompt and alarm acknowledgement, ``ReadEventLog``; tests log the rest."""

    SOURCE = "Kiln"

    def __init__(self, *, maxlen: int = 100_000) -> None:
        methods = [
            Method("Vent", self._vent, (), [("NewState", "String"), ("Seq", "UInt64")]),
            Method("Fire", self._fire, (), [("NewState", "String"), ("Seq", "UInt64")]),
            Method(
                "AcknowledgeAlarm",
                self._acknowledge_alarm,
                [("AlarmId", "String"), ("User", "String")],
                [("Seq", "UInt64")],
            ),
            Method(
                "AcknowledgePrompt",
                self._acknowledge_prompt,
                [("PromptId", "String"), ("User", "String"), ("Answer", "String")],
                [("Seq", "UInt64")],
            ),
            Method(
                "ReadEventLog",
                self._read_event_log,
                [("FromSeq", "UInt64")],
                [("Events", "String"), ("LastSeq", "UInt64")],
            ),
        ]
        identification = {
            "Manufacturer": "cellauto tests",
            "Model": "Kiln",
            "SerialNumber": "K-1",
            "SoftwareRevision": "1",
            "DeviceRevision": "A",
        }
        status = {
            "State": ("String", "Hot"),
            "EventSeq": ("UInt64", 0),
            "ActiveAlarms": ("String", "[]"),
            "Progress": ("Double", 0.0),
            "RemainingTime": ("Double", 0.0),
        }
        root = Obj(
            "Kiln",
            [
                Obj("Identification", [Var(k, "String", v) for k, v in identification.items()]),
                Obj("Status", [Var(k, t, v) for k, (t, v) in status.items()]),
                Obj(
                    "Oven",
                    [
                        Var("Temperature", "Double", 20.0, unit="Cel"),
                        Var("RH", "Double", 40.5, unit="%"),
                    ],
                ),
                *methods,
            ],
        )
        super().__init__(
            ScaledClock(),
            [root],
            namespace=NAMESPACE,
            event_types=EVENT_TYPES,
            status_path=lambda ns, name: f"{ns}:Kiln/{ns}:Status/{ns}:{name}",
            name="Kiln simulator",
            anonymous="operate",
            maxlen=maxlen,
            vendor_states={IDLE: "Hot"},  # the state it starts in
        )
        self.alarm_records: dict[str, dict[str, Any]] = {}  # ActiveAlarms, by AlarmId
        self._flushed = asyncio.Event()

    @property
    def url(self) -> str:
        """The adapter's URL of this simulator."""
        return f"kiln+opcua://127.0.0.1:{self.server.port}"

    def path(self, *names: str) -> str:
        """A browse path below the root (`path("Oven", "RH")`)."""
        return "/".join(f"{self.ns}:{name}" for name in ("Kiln", *names))

    def log_only(self, kind: str, **fields: Any) -> int:
        """Log an event the subscription never delivers (as one missed while away would be)."""
        entry = {"Kind": kind, "Seq": self.seq + 1, "Time": self.clock.now()}
        self.log.append(kind, entry | {"Message": kind, "Severity": 100, **fields})
        return self.seq

    def alarm(self, alarm_id: str, code: str, status: str, **fields: Any) -> int:
        """Log an alarm event and keep ActiveAlarms up to date."""
        record = self.alarm_records.setdefault(
            alarm_id, {"AlarmId": alarm_id, "Code": code, "Active": True, "Acknowledged": False}
        )
        record["Active"] = record["Active"] and status != "cleared"
        record["Acknowledged"] = record["Acknowledged"] or status == "acknowledged"
        return self.event(
            "alarm", code, AlarmId=alarm_id, Code=code, Status=status, SourceUnit="oven", **fields
        )

    async def after_events(self) -> None:
        self._flushed.set()

    async def flush(self) -> None:
        """Return once every logged event has been published (its status mirrored)."""
        while self.status.get(self.SEQ_STATUS, 0) != self.seq:
            self._flushed.clear()
            await self._flushed.wait()

    def status_for(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        if entry["Kind"] == "state":
            return {"State": entry["State"]}
        if entry["Kind"] == "alarm":
            return {"ActiveAlarms": json.dumps(list(self.alarm_records.values()))}
        return {}

    def _move(self, expected: str, *states: str) -> tuple[str, int]:
        if self.status.get("State", "Hot") != expected:
            raise MethodFailed("BadInvalidState", f"not {expected}")
        for state in states:
            self.event("state", state, State=state)
        return states[-1], self.seq

    async def _vent(self) -> tuple[str, int]:
        return self._move("Hot", "Venting", "Cold")

    async def _fire(self) -> tuple[str, int]:
        return self._move("Cold", "Firing", "Hot")

    async def _acknowledge_alarm(self, alarm_id: str, user: str) -> int:
        code = self.alarm_records[alarm_id]["Code"]
        return self.alarm(alarm_id, code, "acknowledged", User=user)

    async def _acknowledge_prompt(self, prompt_id: str, user: str, answer: str) -> int:
        return self.event(
            "prompt", "answered", PromptId=prompt_id, Status="answered", User=user, Answer=answer
        )

    async def _read_event_log(self, first: int) -> tuple[str, int]:
        return self.read_log(first)


class KilnAdapter(OpcUaEventLogAdapter):
    """The Kiln's adapter: its tables, and its own event kind ``door``."""

    kind = "kiln"
    namespace = NAMESPACE
    root = "Kiln"
    acronyms: ClassVar[Mapping[str, str]] = {"rh": "RH"}
    event_types = tuple(t.name for t in EVENT_TYPES.values())
    protocol = PROTOCOL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.doors: list[tuple[int, bool]] = []

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        raise CommandRejected(self.device_id, f"start_program {template.name}", "no programs")

    async def _device_event(self, kind: str, fields: Mapping[str, Any], time: datetime) -> None:
        if kind == "door":
            self.doors.append((int(fields["Seq"]), bool(fields["Open"])))
        else:
            await super()._device_event(kind, fields, time)
