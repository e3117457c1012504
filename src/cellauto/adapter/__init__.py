"""The device-author surface: what an adapter package imports to implement a device.

Script authors use `cellauto`; device authors use this module (and `cellauto.sim` for
simulators). Adapters import the core through here, not through private modules.
"""

from cellauto.adapter.conformance import CASES, Conformance, conformance_of
from cellauto.adapter.opcua_log import OpcUaEventLogAdapter
from cellauto.adapter.options import (
    CAPTURE,
    CONNECTION,
    HEARTBEAT,
    RECONNECT_ATTEMPTS,
    RECONNECT_TIME,
    TIMEOUT,
    Option,
    Options,
    Values,
    host_port,
    integer,
    number,
    reconnect_policy,
    text,
)
from cellauto.adapter.sequencer import EventSequencer, ReadBack
from cellauto.errors import DeviceLost, DeviceOptionError
from cellauto.protocols import ProtocolTables, load_protocol
from cellauto.transport.base import Backoff, ConnectionEvent, ConnectionState

__all__ = [
    "CAPTURE",
    "CASES",
    "CONNECTION",
    "HEARTBEAT",
    "RECONNECT_ATTEMPTS",
    "RECONNECT_TIME",
    "TIMEOUT",
    "Backoff",
    "Conformance",
    "ConnectionEvent",
    "ConnectionState",
    "DeviceLost",
    "DeviceOptionError",
    "EventSequencer",
    "OpcUaEventLogAdapter",
    "Option",
    "Options",
    "ProtocolTables",
    "ReadBack",
    "Values",
    "conformance_of",
    "host_port",
    "integer",
    "load_protocol",
    "number",
    "reconnect_policy",
    "text",
]
