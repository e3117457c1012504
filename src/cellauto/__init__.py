"""cellauto: one schema, one async driver interface, simulators and Arrow batch records for
automated cell-manufacturing systems.

The public names live here; the modules behind them are implementation detail.
"""

from cellauto._version import __version__
from cellauto.batch import AlarmPolicy, AutoAnswer, Batch, IdentityMismatch, TerminalPrompts
from cellauto.driver import Device, OperatorPrompt, RunAborted, RunEnded, RunStopped
from cellauto.errors import (
    AlarmRaised,
    BatchError,
    CellautoError,
    CommandRejected,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    InvalidAnswer,
    InvalidTransition,
    ProfileError,
    ProtocolError,
    RecordError,
    SchemaVersionError,
    UnitError,
)
from cellauto.feeds import Feed
from cellauto.operation import Operation, OperationStatus
from cellauto.profiles import available_profiles, load_profile
from cellauto.registry import DeviceUrl, connect, parse_url
from cellauto.schema import (
    SCHEMA_VERSION,
    Alarm,
    AlarmSeverity,
    AuditEntry,
    BatchInfo,
    DeviceInfo,
    DeviceProfile,
    ElectronicSignature,
    Event,
    EventKind,
    ProgramTemplate,
    Q,
    Quality,
    Quantity,
    Result,
    Sample,
    SampleInfo,
)
from cellauto.state import State, StateCommand, StateMachine
from cellauto.units import convert

__all__ = [
    "SCHEMA_VERSION",
    "Alarm",
    "AlarmPolicy",
    "AlarmRaised",
    "AlarmSeverity",
    "AuditEntry",
    "AutoAnswer",
    "Batch",
    "BatchError",
    "BatchInfo",
    "CellautoError",
    "CommandRejected",
    "ConnectionLost",
    "Device",
    "DeviceError",
    "DeviceInfo",
    "DeviceProfile",
    "DeviceTimeout",
    "DeviceUrl",
    "ElectronicSignature",
    "Event",
    "EventKind",
    "Feed",
    "IdentityMismatch",
    "InvalidAnswer",
    "InvalidTransition",
    "Operation",
    "OperationStatus",
    "OperatorPrompt",
    "ProfileError",
    "ProgramTemplate",
    "ProtocolError",
    "Q",
    "Quality",
    "Quantity",
    "RecordError",
    "Result",
    "RunAborted",
    "RunEnded",
    "RunStopped",
    "Sample",
    "SampleInfo",
    "SchemaVersionError",
    "State",
    "StateCommand",
    "StateMachine",
    "TerminalPrompts",
    "UnitError",
    "__version__",
    "available_profiles",
    "connect",
    "convert",
    "load_profile",
    "parse_url",
]
