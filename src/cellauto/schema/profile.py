"""Device profiles: a device's data contract, every number tagged with its provenance."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, JsonValue, StringConstraints, model_validator

from cellauto.schema._base import Document, Model, Name
from cellauto.schema.programs import DType, ParameterSpec, ProgramTemplate
from cellauto.schema.provenance import Citation, Provenance, SourcedRange, SourcedValue, is_public
from cellauto.schema.quantity import Quantity, UnitCode
from cellauto.schema.records import AlarmSeverity
from cellauto.units import is_convertible


class SourcedQuantity(Quantity):
    """A quantity with its provenance."""

    source: Provenance


class ChannelDescriptor(Model):
    """One measured (sensor) or controlled (control) variable of a functional unit."""

    name: Name = Field(description="The variable; the channel is '<unit>.<name>'.")
    kind: Literal["sensor", "control"]
    description: str = ""
    dtype: DType = "float"
    unit: UnitCode | None = None
    substance: str | None = Field(
        default=None, description="Analyte, for mass/molar conversion (glucose, lactate...)."
    )
    eu_range: SourcedRange | None = Field(default=None, description="Engineering-unit range.")
    alarm_limits: SourcedRange | None = None
    setpoint: SourcedValue | None = Field(default=None, description="Default target (controls).")
    sample_period: SourcedQuantity | None = None
    writable: bool = False
    choices: list[str] | None = Field(default=None, description="Values of a str channel.")

    @model_validator(mode="after")
    def _consistent(self) -> ChannelDescriptor:
        numeric = self.dtype in ("float", "int")
        if numeric and self.unit is None:
            raise ValueError(f"numeric channel {self.name!r} needs a unit ('1' if it has none)")
        if not numeric and any(
            x is not None for x in (self.unit, self.eu_range, self.alarm_limits, self.setpoint)
        ):
            raise ValueError(f"{self.dtype} channel {self.name!r} cannot have a unit or limits")
        if self.writable and self.kind != "control":
            raise ValueError(f"channel {self.name!r}: only control channels are writable")
        if self.sample_period is not None:
            if not is_convertible(self.sample_period.unit, "s"):
                raise ValueError(f"channel {self.name!r}: sample_period must be a time")
            if self.sample_period.value <= 0:
                raise ValueError(f"channel {self.name!r}: sample_period must be positive")
        if self.eu_range is not None:
            for label, limits in (("alarm_limits", self.alarm_limits),):
                for bound in (limits.low, limits.high) if limits else ():
                    if bound is not None and not self.eu_range.contains(bound):
                        raise ValueError(
                            f"channel {self.name!r}: {label} {bound:g} lies outside eu_range"
                        )
            if self.setpoint is not None and not self.eu_range.contains(self.setpoint.value):
                raise ValueError(
                    f"channel {self.name!r}: setpoint {self.setpoint.value:g} lies outside eu_range"
                )
        return self


class FunctionalUnit(Model):
    """An addressable part of a device (LADS FunctionalUnit) and its channels."""

    name: Name
    kind: Name = Field(description="e.g. culture_chamber, reagent_zone, centrifuge, robot_arm.")
    description: str = ""
    channels: list[ChannelDescriptor] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> FunctionalUnit:
        _require_unique(f"functional unit {self.name!r} channel", [c.name for c in self.channels])
        return self


class CommandSpec(Model):
    """A device command beyond the common state commands."""

    name: Name
    description: str
    parameters: list[ParameterSpec] = Field(default_factory=list)
    allowed_states: list[str] = Field(
        default_factory=list, description="States the command may be sent in; empty means any."
    )
    source: Provenance


class AlarmSpec(Model):
    """An alarm the device can raise."""

    code: Name
    title: str
    severity: AlarmSeverity
    functional_unit: Name | None = None
    description: str = ""
    action: str = Field(default="", description="What the operator should do.")
    source: Provenance


AlarmReaction = Literal["none", "hold", "stop", "abort"]
"""What an active alarm makes the device itself do to a running program."""


class DeviceProfile(Document):
    """A device's data contract: units, channels, programs, commands and alarms."""

    device: Name = Field(description="Device kind, as in URLs: cocoon, prodigy...")
    profile_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    manufacturer: str
    model: str
    description: str
    protocol: str = Field(description="Path of the protocol profile the adapter speaks.")
    transports: list[Literal["opcua", "serial", "tcp", "modbus", "http", "https", "sila"]] = Field(
        min_length=1
    )
    sources: dict[str, Citation] = Field(default_factory=dict)
    functional_units: list[FunctionalUnit] = Field(min_length=1)
    programs: list[ProgramTemplate] = Field(default_factory=list)
    commands: list[CommandSpec] = Field(default_factory=list)
    alarms: list[AlarmSpec] = Field(default_factory=list)
    alarm_reactions: dict[AlarmSeverity, AlarmReaction] = Field(
        default_factory=dict,
        description="What the device itself does to a running program when an alarm of this "
        "severity is raised ('hold' acts only in Execute); absent severities: none. Stated "
        "once here; the simulator reads it, the host's alarm policy acts on top of it.",
    )
    vendor_data: dict[str, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_references(self) -> DeviceProfile:
        units = [u.name for u in self.functional_units]
        _require_unique("functional unit", units)
        _require_unique("program", [p.name for p in self.programs])
        _require_unique("command", [c.name for c in self.commands])
        _require_unique("alarm", [a.code for a in self.alarms])
        for where, source in self.provenances():
            key = source.removeprefix("public:")
            if is_public(source) and key not in self.sources:
                raise ValueError(f"{where}: cites {key!r}, which is not in [sources]")
        for program in self.programs:
            for step in program.steps:
                if step.functional_unit is not None and step.functional_unit not in units:
                    raise ValueError(
                        f"program {program.name!r} step {step.name!r}: no functional unit "
                        f"{step.functional_unit!r}"
                    )
                if step.duration is not None and step.source is None:
                    raise ValueError(
                        f"program {program.name!r} step {step.name!r}: duration without a source"
                    )
        for alarm in self.alarms:
            if alarm.functional_unit is not None and alarm.functional_unit not in units:
                raise ValueError(
                    f"alarm {alarm.code!r}: no functional unit {alarm.functional_unit!r}"
                )
        return self

    def provenances(self) -> Iterator[tuple[str, str]]:
        """Every (where, provenance) pair in the profile, one per group of sourced numbers."""
        for unit in self.functional_units:
            for ch in unit.channels:
                where = f"{unit.name}.{ch.name}"
                for label, item in (
                    ("eu_range", ch.eu_range),
                    ("alarm_limits", ch.alarm_limits),
                    ("setpoint", ch.setpoint),
                    ("sample_period", ch.sample_period),
                ):
                    if item is not None:
                        yield f"{where}.{label}", item.source
        for program in self.programs:
            for step in program.steps:
                if step.source is not None:
                    yield f"program {program.name} step {step.name}", step.source
            for param in program.parameters:
                if param.source is not None:
                    yield f"program {program.name} parameter {param.name}", param.source
        for command in self.commands:
            yield f"command {command.name}", command.source
            for param in command.parameters:
                if param.source is not None:
                    yield f"command {command.name} parameter {param.name}", param.source
        for alarm in self.alarms:
            yield f"alarm {alarm.code}", alarm.source

    def provenance_counts(self) -> dict[str, int]:
        """How many sourced items are public and how many assumed."""
        sources = [source for _, source in self.provenances()]
        public = sum(1 for s in sources if is_public(s))
        return {"public": public, "assumed": len(sources) - public}

    def channels(self) -> dict[str, ChannelDescriptor]:
        """Every channel by its full name ``<unit>.<variable>``."""
        return dict(self._channel_map)

    @cached_property
    def _channel_map(self) -> dict[str, ChannelDescriptor]:
        # built once: adapters look channels up for every sample (the model is frozen)
        return {f"{u.name}.{c.name}": c for u in self.functional_units for c in u.channels}

    def channel(self, name: str) -> ChannelDescriptor:
        """The channel called `name` (``chamber.temperature``); KeyError naming the known ones."""
        channels = self._channel_map
        if name not in channels:
            raise KeyError(f"{self.device} has no channel {name!r}; it has {', '.join(channels)}")
        return channels[name]

    def program(self, name: str) -> ProgramTemplate:
        """The program called `name`; KeyError naming the known ones."""
        for program in self.programs:
            if program.name == name:
                return program
        known = ", ".join(p.name for p in self.programs) or "none"
        raise KeyError(f"{self.device} has no program {name!r}; it has {known}")


def _require_unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name!r} is declared twice")
        seen.add(name)
