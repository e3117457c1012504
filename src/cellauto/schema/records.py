"""Rows of a batch record: samples, events, alarms, commands."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, JsonValue, StringConstraints, model_validator

from cellauto.schema._base import ChannelName, Identifier, Model, Name, UtcDatetime
from cellauto.schema.quantity import Quantity, UnitCode


class Quality(StrEnum):
    """OPC UA status class of a sample."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class Sample(Model):
    """One timestamped value of one channel."""

    device_id: Identifier
    channel: ChannelName
    timestamp: UtcDatetime
    value: float | int | bool | str
    unit: UnitCode | None = None
    quality: Quality = Quality.GOOD
    seq: int = Field(ge=0, description="Per-device sequence number; gaps mean lost samples.")

    @model_validator(mode="after")
    def _unit_matches_value(self) -> Sample:
        numeric = isinstance(self.value, int | float) and not isinstance(self.value, bool)
        if numeric and self.unit is None:
            raise ValueError(f"{self.channel}: a numeric sample needs a unit ('1' if it has none)")
        if not numeric and self.unit is not None:
            raise ValueError(f"{self.channel}: a {type(self.value).__name__} sample has no unit")
        return self

    @property
    def quantity(self) -> Quantity:
        """The value as a Quantity (numeric samples only)."""
        if self.unit is None or isinstance(self.value, bool | str):
            raise TypeError(f"{self.channel} is not numeric")
        return Quantity(value=float(self.value), unit=self.unit)


class EventKind(StrEnum):
    """What an event reports."""

    STATE_CHANGED = "state_changed"
    COMMAND = "command"
    PROGRAM_STARTED = "program_started"
    PROGRAM_FINISHED = "program_finished"
    STEP_STARTED = "step_started"
    STEP_FINISHED = "step_finished"
    ALARM_RAISED = "alarm_raised"
    ALARM_ACKNOWLEDGED = "alarm_acknowledged"
    ALARM_CLEARED = "alarm_cleared"
    PROMPT = "prompt"
    PROMPT_ANSWERED = "prompt_answered"
    MATERIAL_TRANSFER = "material_transfer"
    CONNECTION_CHANGED = "connection_changed"
    NOTE = "note"


class Event(Model):
    """Something that happened on a device at one time."""

    device_id: Identifier
    time: UtcDatetime
    seq: int = Field(ge=0)
    kind: EventKind
    source: str = Field(default="device", description="Functional unit or component, or 'device'.")
    message: str = ""
    from_state: str | None = None
    to_state: str | None = None
    cause: str | None = Field(
        default=None, description="Command name, 'state_complete' or 'reported'."
    )
    data: dict[str, JsonValue] = Field(default_factory=dict)
    vendor_data: dict[str, JsonValue] = Field(default_factory=dict)


class AlarmSeverity(StrEnum):
    """How bad an alarm is; `critical` stops the process."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class AlarmState(StrEnum):
    """Where an alarm stands (OPC UA: Active and Acked)."""

    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED_UNACKNOWLEDGED = "cleared_unacknowledged"
    CLEARED = "cleared"


class Alarm(Model):
    """One occurrence of an alarm the device's profile declares."""

    alarm_id: Identifier = Field(description="This occurrence.")
    code: Name = Field(description="The alarm as declared in the device profile.")
    device_id: Identifier
    source: str = "device"
    severity: AlarmSeverity
    message: str
    active: bool = True
    acknowledged: bool = False
    raised_at: UtcDatetime
    acknowledged_at: UtcDatetime | None = None
    acknowledged_by: str | None = None
    cleared_at: UtcDatetime | None = None
    vendor_data: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def state(self) -> AlarmState:
        """Active/acknowledged combined into one state."""
        if self.active:
            return AlarmState.ACKNOWLEDGED if self.acknowledged else AlarmState.ACTIVE
        return AlarmState.CLEARED if self.acknowledged else AlarmState.CLEARED_UNACKNOWLEDGED

    @model_validator(mode="after")
    def _consistent(self) -> Alarm:
        if self.acknowledged and (self.acknowledged_at is None or not self.acknowledged_by):
            raise ValueError(f"alarm {self.alarm_id}: acknowledged needs acknowledged_at and _by")
        if not self.active and self.cleared_at is None:
            raise ValueError(f"alarm {self.alarm_id}: a cleared alarm needs cleared_at")
        return self


CommandValue = float | int | bool | str | Quantity


class Command(Model):
    """A command sent to a device."""

    command_id: Identifier
    device_id: Identifier
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    parameters: dict[Name, CommandValue] = Field(default_factory=dict)
    issued_at: UtcDatetime
    issued_by: str | None = None


class CommandResult(Model):
    """What a device answered to a command."""

    command_id: Identifier
    device_id: Identifier
    name: Name
    accepted: bool
    message: str = ""
    finished_at: UtcDatetime
    data: dict[str, JsonValue] = Field(default_factory=dict)
