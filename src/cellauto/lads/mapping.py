"""How cellauto's model maps onto LADS (OPC 30500-1), as data both directions can use.

- a device is a LADSDevice in the DI DeviceSet; its DeviceInfo fills the DI identification;
- a profile's functional unit is a LADS FunctionalUnit; its channels are Functions in its
  FunctionSet (the function type chosen by `function_kind`);
- cellauto's two-level state machine *is* LADS's FunctionalStateMachine with its
  RunningStateMachine: the state names are the same, and each state command is a LADS method;
- programs are ProgramTemplates, a run is the ActiveProgram, a Result is a LADS Result.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cellauto.schema import AlarmSeverity
from cellauto.schema.profile import ChannelDescriptor, FunctionalUnit
from cellauto.state import StateCommand


class FunctionKind(StrEnum):
    """The LADS function type a channel is served as (BrowseName of the ObjectType)."""

    ANALOG_SENSOR = "AnalogScalarSensorFunctionType"
    ANALOG_CONTROL = "AnalogControlFunctionType"
    TWO_STATE_SENSOR = "TwoStateDiscreteSensorFunctionType"
    TWO_STATE_CONTROL = "TwoStateDiscreteControlFunctionType"
    MULTI_STATE_SENSOR = "MultiStateDiscreteSensorFunctionType"
    MULTI_STATE_CONTROL = "MultiStateDiscreteControlFunctionType"


def function_kind(channel: ChannelDescriptor) -> FunctionKind:
    """The LADS function type of a channel: analog for numbers, two-state for booleans,
    multi-state for text (its choices, or the values seen so far, are the EnumStrings)."""
    control = channel.kind == "control"
    if channel.dtype in ("float", "int"):
        return FunctionKind.ANALOG_CONTROL if control else FunctionKind.ANALOG_SENSOR
    if channel.dtype == "bool":
        return FunctionKind.TWO_STATE_CONTROL if control else FunctionKind.TWO_STATE_SENSOR
    return FunctionKind.MULTI_STATE_CONTROL if control else FunctionKind.MULTI_STATE_SENSOR


VALUE_VARIABLES: dict[FunctionKind, tuple[str, ...]] = {
    FunctionKind.ANALOG_SENSOR: ("SensorValue", "RawValue"),
    FunctionKind.ANALOG_CONTROL: ("TargetValue", "CurrentValue"),
    FunctionKind.TWO_STATE_SENSOR: ("SensorValue",),
    FunctionKind.TWO_STATE_CONTROL: ("TargetValue", "CurrentValue"),
    FunctionKind.MULTI_STATE_SENSOR: ("SensorValue",),
    FunctionKind.MULTI_STATE_CONTROL: ("TargetValue", "CurrentValue"),
}
"""The LADS variables (of the function) that carry a channel's value; the first is the one a
LADS client reads as the channel. A control's CurrentValue follows its paired sensor channel
when there is one (see `paired_sensor`)."""


def paired_sensor(unit: FunctionalUnit, channel: ChannelDescriptor) -> str | None:
    """For a control channel ``x_setpoint``, the sensor channel ``x`` of the same unit whose
    value is the control's CurrentValue; None if there is no such channel."""
    if channel.kind != "control" or not channel.name.endswith("_setpoint"):
        return None
    base = channel.name.removesuffix("_setpoint")
    names = {c.name for c in unit.channels if c.kind == "sensor"}
    return base if base in names else None


STATE_METHODS: dict[StateCommand, tuple[str, str]] = {
    StateCommand.START: ("FunctionalUnitState", "Start"),
    StateCommand.STOP: ("FunctionalUnitState", "Stop"),
    StateCommand.ABORT: ("FunctionalUnitState", "Abort"),
    StateCommand.CLEAR: ("FunctionalUnitState", "Clear"),
    StateCommand.HOLD: ("RunningStateMachine", "Hold"),
    StateCommand.UNHOLD: ("RunningStateMachine", "Unhold"),
    StateCommand.SUSPEND: ("RunningStateMachine", "Suspend"),
    StateCommand.UNSUSPEND: ("RunningStateMachine", "Unsuspend"),
    StateCommand.RESET: ("RunningStateMachine", "Reset"),
}
"""Each cellauto state command and the LADS method serving it: (state machine, method).
LADS's RunningStateMachine has Hold/Unhold/Suspend/Unsuspend/Reset itself, so cellauto's hold
and suspend map one to one; LADS's ToComplete has no cellauto command and is not served."""

START_PROGRAM = "StartProgram"


@dataclass(frozen=True, slots=True)
class StateNames:
    """A cellauto state as LADS shows it: the FunctionalStateMachine's state, and the
    RunningStateMachine's state inside Running (None outside it)."""

    functional: str
    running: str | None


SEVERITY: dict[AlarmSeverity, int] = {
    AlarmSeverity.INFO: 200,
    AlarmSeverity.WARNING: 500,
    AlarmSeverity.ERROR: 700,
    AlarmSeverity.CRITICAL: 900,
}
"""OPC UA event Severity (1..1000) of each cellauto alarm severity."""


def severity_from_opcua(value: int) -> AlarmSeverity:
    """The cellauto severity of an OPC UA Severity: the highest band it reaches."""
    found = AlarmSeverity.INFO
    for severity, threshold in SEVERITY.items():
        if value >= threshold:
            found = severity
    return found
