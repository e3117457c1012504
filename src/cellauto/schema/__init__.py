"""The common data schema: pydantic models every device, record and export shares."""

from cellauto.schema._base import (
    SCHEMA_VERSION,
    Document,
    Model,
    UtcDatetime,
    canonical_json,
    check_schema_version,
    sha256_hex,
)
from cellauto.schema.audit import GENESIS_HASH, AuditEntry, ElectronicSignature, SignatureMeaning
from cellauto.schema.batch import BatchInfo, BatchStatus
from cellauto.schema.identity import DeviceInfo
from cellauto.schema.material import SampleInfo
from cellauto.schema.profile import (
    AlarmSpec,
    ChannelDescriptor,
    CommandSpec,
    DeviceProfile,
    FunctionalUnit,
    SourcedQuantity,
)
from cellauto.schema.programs import (
    ParameterSpec,
    ProgramRun,
    ProgramStep,
    ProgramTemplate,
    PropertyValue,
    Result,
    ResultFile,
)
from cellauto.schema.provenance import Citation, SourcedRange, SourcedValue
from cellauto.schema.quantity import Q, Quantity
from cellauto.schema.records import (
    Alarm,
    AlarmSeverity,
    AlarmState,
    Command,
    CommandResult,
    Event,
    EventKind,
    Quality,
    Sample,
)

PERSISTED_MODELS: tuple[type[Model], ...] = (
    DeviceProfile,
    ProgramTemplate,
    ProgramRun,
    Result,
    BatchInfo,
    Sample,
    Event,
    Alarm,
    Command,
    CommandResult,
    AuditEntry,
    ElectronicSignature,
    SampleInfo,
    DeviceInfo,
)
"""Every model that is written to disk or the wire; each has a JSON Schema in schemas/json/."""

__all__ = [
    "GENESIS_HASH",
    "PERSISTED_MODELS",
    "SCHEMA_VERSION",
    "Alarm",
    "AlarmSeverity",
    "AlarmSpec",
    "AlarmState",
    "AuditEntry",
    "BatchInfo",
    "BatchStatus",
    "ChannelDescriptor",
    "Citation",
    "Command",
    "CommandResult",
    "CommandSpec",
    "DeviceInfo",
    "DeviceProfile",
    "Document",
    "ElectronicSignature",
    "Event",
    "EventKind",
    "FunctionalUnit",
    "Model",
    "ParameterSpec",
    "ProgramRun",
    "ProgramStep",
    "ProgramTemplate",
    "PropertyValue",
    "Q",
    "Quality",
    "Quantity",
    "Result",
    "ResultFile",
    "Sample",
    "SampleInfo",
    "SignatureMeaning",
    "SourcedQuantity",
    "SourcedRange",
    "SourcedValue",
    "UtcDatetime",
    "canonical_json",
    "check_schema_version",
    "sha256_hex",
]
