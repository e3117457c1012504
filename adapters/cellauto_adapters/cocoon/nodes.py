"""The Cocoon protocol's vocabulary (schemas/protocols/cocoon.md): node paths, vendor states,
methods and event types, as the adapter maps them onto cellauto's channels and states."""

from __future__ import annotations

from cellauto.schema import AlarmSeverity
from cellauto.state import (
    ABORTED,
    ABORTING,
    CLEARING,
    COMPLETE,
    COMPLETING,
    EXECUTE,
    HELD,
    HOLDING,
    IDLE,
    RESETTING,
    STARTING,
    STOPPED,
    STOPPING,
    SUSPENDED,
    SUSPENDING,
    UNHOLDING,
    UNSUSPENDING,
    State,
    StateCommand,
)

NAMESPACE = "urn:cellauto:cocoon:v1"
"""The Cocoon namespace URI; its index is read from the server's NamespaceArray."""
NAMESPACE_ARRAY = "i=2255"
ROOT = "Cocoon"

STATES: dict[str, State] = {
    "Standby": STOPPED,
    "Ready": IDLE,
    "Starting": STARTING,
    "Running": EXECUTE,
    "Finishing": COMPLETING,
    "Finished": COMPLETE,
    "Resetting": RESETTING,
    "Holding": HOLDING,
    "Held": HELD,
    "Resuming": UNHOLDING,
    "Pausing": SUSPENDING,
    "Paused": SUSPENDED,
    "Unpausing": UNSUSPENDING,
    "Stopping": STOPPING,
    "Aborting": ABORTING,
    "Aborted": ABORTED,
    "Clearing": CLEARING,
}
"""Vendor state (`Status/State`) -> cellauto state (protocol section 4)."""

STATE_METHODS: dict[StateCommand, str] = {
    StateCommand.HOLD: "Hold",
    StateCommand.UNHOLD: "Unhold",
    StateCommand.SUSPEND: "Suspend",
    StateCommand.UNSUSPEND: "Unsuspend",
    StateCommand.STOP: "Stop",
    StateCommand.ABORT: "Abort",
    StateCommand.CLEAR: "Clear",
    StateCommand.RESET: "Reset",
}

EVENT_TYPES = (
    "CocoonStateEvent",
    "CocoonStepEvent",
    "CocoonPromptEvent",
    "CocoonAlarmEvent",
    "CocoonResultEvent",
)
IDENTIFICATION = ("Manufacturer", "Model", "SerialNumber", "SoftwareRevision", "DeviceRevision")

SETPOINTS = {
    "chamber_temperature": "chamber.temperature_setpoint",
    "chamber_co2": "chamber.co2_setpoint",
    "cold_zone_temperature": "cold_zone.temperature_setpoint",
}
"""Parameters of the `set_setpoints` command -> the writable channel each one writes."""

_ACRONYMS = {"co2": "CO2", "ph": "pH"}


def severity(opcua: int) -> AlarmSeverity:
    """An OPC UA severity (1..1000) as an alarm severity."""
    if opcua >= 800:
        return AlarmSeverity.CRITICAL
    if opcua >= 600:
        return AlarmSeverity.ERROR
    if opcua >= 300:
        return AlarmSeverity.WARNING
    return AlarmSeverity.INFO


class Paths:
    """Browse paths in the Cocoon namespace, once its index is known."""

    def __init__(self, ns: int) -> None:
        self.ns = ns
        self.root = f"{ns}:{ROOT}"

    def channel(self, channel: str) -> str:
        """`chamber.ph` -> `<ns>:Cocoon/<ns>:Chamber/<ns>:pH`."""
        unit, variable = channel.split(".")
        return f"{self.root}/{self.ns}:{node_name(unit)}/{self.ns}:{node_name(variable)}"

    def status(self, name: str) -> str:
        """A variable of `Cocoon/Status`."""
        return f"{self.root}/{self.ns}:Status/{self.ns}:{name}"

    def identification(self, name: str) -> str:
        """A variable of `Cocoon/Identification`."""
        return f"{self.root}/{self.ns}:Identification/{self.ns}:{name}"

    def method(self, name: str) -> str:
        """A method of `Cocoon` as the transport's `call` names it."""
        return f"{self.ns}:{name}"

    def event_types(self) -> list[str]:
        """The Cocoon event types, as paths below BaseEventType."""
        return [f"{self.ns}:{name}" for name in EVENT_TYPES]


def node_name(snake: str) -> str:
    """`cold_zone` -> `ColdZone`, `co2_setpoint` -> `CO2Setpoint`, `ph` -> `pH`."""
    return "".join(_ACRONYMS.get(word, word.capitalize()) for word in snake.split("_"))
