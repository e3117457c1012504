"""The Cocoon OPC UA address space of schemas/protocols/cocoon.md, built from the profile."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cellauto.protocols import load_protocol
from cellauto.schema import ChannelDescriptor, DeviceProfile
from cellauto.sim.servers.opcua import EventType, Method, Obj, Var
from cellauto.state import IDLE, State

NAMESPACE = "urn:cellauto:cocoon:v1"
ROOT = "Cocoon"

TABLES = load_protocol("cocoon")
VENDOR_STATES: dict[State, str] = TABLES.by_state()
"""Protocol section 4: the device's own state names (from schemas/protocols/cocoon.toml)."""

IDENTIFICATION = ("Manufacturer", "Model", "SerialNumber", "SoftwareRevision", "DeviceRevision")
STATUS: dict[str, tuple[str, Any]] = {
    "State": ("String", VENDOR_STATES[IDLE]),
    "RunId": ("String", ""),
    "ProgramName": ("String", ""),
    "Progress": ("Double", 0.0),
    "RemainingTime": ("Double", 0.0),
    "EventSeq": ("UInt64", 0),
    "BatchId": ("String", ""),
    "PatientId": ("String", ""),
    "ActiveAlarms": ("String", "[]"),
}


def _event(name: str, **fields: str) -> EventType:
    return EventType(name, {"Seq": "UInt64", "Kind": "String", **fields})


EVENT_TYPES = {
    "state": _event("CocoonStateEvent", State="String", PreviousState="String", Cause="String"),
    "step": _event(
        "CocoonStepEvent",
        RunId="String",
        StepNumber="UInt32",
        StepName="String",
        UnitOperation="String",
        Progress="Double",
        RemainingTime="Double",
    ),
    "prompt": _event(
        "CocoonPromptEvent",
        PromptId="String",
        RunId="String",
        Text="String",
        Status="String",
        User="String",
        Answer="String",
    ),
    "alarm": _event(
        "CocoonAlarmEvent",
        AlarmId="String",
        Code="String",
        Status="String",
        SourceUnit="String",
        User="String",
    ),
    "result": _event(
        "CocoonResultEvent",
        RunId="String",
        Outcome="String",
        Started="DateTime",
        Stopped="DateTime",
        PauseTime="Double",
        Properties="String",
    ),
}
"""Protocol section 5, by `Kind`: every type carries `Seq` and `Kind` besides its own fields."""

_ACRONYMS = {"co2": "CO2", "ph": "pH"}
_DATATYPES = {"float": "Double", "int": "UInt32", "bool": "Boolean", "str": "String"}
_ZERO: dict[str, Any] = {"float": 0.0, "int": 0, "bool": False, "str": ""}


def node_name(snake: str) -> str:
    """`cold_zone` -> `ColdZone`, `co2_setpoint` -> `CO2Setpoint`, `ph` -> `pH`."""
    return "".join(_ACRONYMS.get(word, word.capitalize()) for word in snake.split("_"))


def channel_path(ns: int, channel: str) -> str:
    """The browse path of a channel's variable: `chamber.ph` -> `2:Cocoon/2:Chamber/2:pH`."""
    unit, variable = channel.split(".")
    return f"{ns}:{ROOT}/{ns}:{node_name(unit)}/{ns}:{node_name(variable)}"


def status_path(ns: int, name: str) -> str:
    """The browse path of a `Status` variable."""
    return f"{ns}:{ROOT}/{ns}:Status/{ns}:{name}"


def initial_value(channel: ChannelDescriptor) -> Any:
    """What a channel's variable holds before the first update."""
    if channel.setpoint is not None:
        return channel.setpoint.value
    if channel.choices:
        return channel.choices[0]
    return _ZERO[channel.dtype]


MethodSpec = tuple[list[tuple[str, str]], list[tuple[str, str]]]

METHODS: dict[str, MethodSpec] = {
    "LoadProtocol": ([("Definition", "String"), ("ContentHash", "String")], []),
    "Start": (
        [
            ("RunId", "String"),
            ("BatchId", "String"),
            ("PatientId", "String"),
            ("Parameters", "String"),
        ],
        [("EstimatedRuntime", "Double"), ("Seq", "UInt64")],
    ),
    **{
        name: ([], [("NewState", "String"), ("Seq", "UInt64")])
        for name in ("Hold", "Unhold", "Suspend", "Unsuspend", "Stop", "Abort", "Clear", "Reset")
    },
    "AcknowledgePrompt": (
        [("PromptId", "String"), ("User", "String"), ("Answer", "String")],
        [("Seq", "UInt64")],
    ),
    "AcknowledgeAlarm": ([("AlarmId", "String"), ("User", "String")], [("Seq", "UInt64")]),
    "TakeSample": ([("Volume", "Double")], [("SampleId", "String")]),
    "CheckCassette": ([], [("Integrity", "String")]),
    "ValidateProtocol": ([], [("Problems", "String")]),
    "ReleaseCassette": ([], []),
    "ReadEventLog": ([("FromSeq", "UInt64")], [("Events", "String"), ("LastSeq", "UInt64")]),
}
"""Protocol section 3: method -> (inputs, outputs)."""


def build(
    profile: DeviceProfile,
    identification: Mapping[str, str],
    handlers: Mapping[str, Callable[..., Any]],
) -> list[Obj]:
    """The `Cocoon` object: identification, status, one object per functional unit, methods."""
    units = [
        Obj(
            node_name(unit.name),
            [
                Var(
                    node_name(ch.name),
                    _DATATYPES[ch.dtype],
                    initial_value(ch),
                    writable=ch.writable,
                    unit=ch.unit,
                    low=ch.eu_range.low if ch.eu_range is not None else None,
                    high=ch.eu_range.high if ch.eu_range is not None else None,
                    description=ch.description,
                )
                for ch in unit.channels
            ],
        )
        for unit in profile.functional_units
    ]
    methods = [
        Method(name, handlers[name], inputs, outputs) for name, (inputs, outputs) in METHODS.items()
    ]
    return [
        Obj(
            ROOT,
            [
                Obj(
                    "Identification", [Var(k, "String", identification[k]) for k in IDENTIFICATION]
                ),
                Obj("Status", [Var(k, t, v) for k, (t, v) in STATUS.items()]),
                *units,
                *methods,
            ],
        )
    ]
