"""The Cocoon protocol as the adapter reads it (schemas/protocols/cocoon.md): node paths, event
types, the vocabulary table (cocoon.toml) and how wire values become cellauto values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue

from cellauto.adapter import load_protocol
from cellauto.schema import AlarmSeverity, PropertyValue, Quality, Quantity

NAMESPACE = "urn:cellauto:cocoon:v1"
"""The Cocoon namespace URI; its index is read from the server's NamespaceArray."""
NAMESPACE_ARRAY = "i=2255"
ROOT = "Cocoon"

PROTOCOL = load_protocol("cocoon")
"""Vendor states, state-command methods and error codes (schemas/protocols/cocoon.toml)."""

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


def aware(value: Any) -> datetime | None:
    """An OPC UA DateTime (or ISO 8601 text from the event log) in UTC; None if neither."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def quality(status: str) -> Quality:
    """An OPC UA status name as a sample quality."""
    if status.startswith("Good"):
        return Quality.GOOD
    return Quality.UNCERTAIN if status.startswith("Uncertain") else Quality.BAD


def jsonable(value: PropertyValue) -> JsonValue:
    """A parameter value as the JSON the methods take."""
    return value.model_dump(mode="json") if isinstance(value, Quantity) else value


def result_property(value: Any) -> PropertyValue:
    """A property of the result event's JSON (a quantity is ``{value, unit}``)."""
    if isinstance(value, dict):
        return Quantity(value=float(value["value"]), unit=str(value["unit"]))
    if isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"unsupported result property {value!r}")
