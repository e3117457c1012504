"""The Cocoon protocol as the adapter reads it (schemas/protocols/cocoon.md): its namespace,
root object, event types, the vocabulary table (cocoon.toml) and the setpoint parameters; the
rest of the address space is the OPC UA event-log family's (`cellauto.adapter.opcua_log`)."""

from __future__ import annotations

from cellauto.adapter import load_protocol
from cellauto.adapter.opcua_log import NodePaths

NAMESPACE = "urn:cellauto:cocoon:v1"
"""The Cocoon namespace URI; its index is read from the server's NamespaceArray."""
ROOT = "Cocoon"
ACRONYMS = {"co2": "CO2", "ph": "pH"}
"""Snake-case words not written capitalised in node names (`chamber.ph` is `Chamber/pH`)."""

PROTOCOL = load_protocol("cocoon")
"""Vendor states, state-command methods and error codes (schemas/protocols/cocoon.toml)."""

EVENT_TYPES = (
    "CocoonStateEvent",
    "CocoonStepEvent",
    "CocoonPromptEvent",
    "CocoonAlarmEvent",
    "CocoonResultEvent",
)

SETPOINTS = {
    "chamber_temperature": "chamber.temperature_setpoint",
    "chamber_co2": "chamber.co2_setpoint",
    "cold_zone_temperature": "cold_zone.temperature_setpoint",
}
"""Parameters of the `set_setpoints` command -> the writable channel each one writes."""


class Paths(NodePaths):
    """Browse paths in the Cocoon namespace, once its index is known."""

    def __init__(self, ns: int) -> None:
        super().__init__(ns, ROOT, ACRONYMS)
