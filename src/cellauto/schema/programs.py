"""Programs (LADS ProgramTemplate), their runs and results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, JsonValue, StringConstraints, model_validator

from cellauto.schema._base import (
    Document,
    Identifier,
    Model,
    Name,
    UtcDatetime,
    sha256_hex,
)
from cellauto.schema.material import SampleInfo
from cellauto.schema.provenance import Provenance
from cellauto.schema.quantity import Quantity, UnitCode
from cellauto.units import is_convertible

ProgramName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")]
PropertyValue = float | int | bool | str | Quantity
"""A parameter or result property: a plain value or a quantity with its unit."""
DType = Literal["float", "int", "bool", "str"]


class ParameterSpec(Model):
    """A parameter a program or command accepts."""

    name: Name
    description: str = ""
    dtype: DType = "float"
    unit: UnitCode | None = None
    default: float | int | bool | str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: list[str] | None = None
    required: bool = False
    source: Provenance | None = Field(
        default=None, description="Provenance of default, minimum and maximum."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ParameterSpec:
        numeric = self.dtype in ("float", "int")
        if numeric and self.unit is None:
            raise ValueError(f"numeric parameter {self.name!r} needs a unit ('1' if it has none)")
        if not numeric and (self.unit, self.minimum, self.maximum) != (None, None, None):
            raise ValueError(f"{self.dtype} parameter {self.name!r} cannot have a unit or limits")
        if self.choices is not None and self.dtype != "str":
            raise ValueError(f"only str parameters have choices ({self.name!r} is {self.dtype})")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"parameter {self.name!r}: minimum is above maximum")
        has_numbers = (self.default, self.minimum, self.maximum) != (None, None, None)
        if numeric and has_numbers and self.source is None:
            raise ValueError(f"parameter {self.name!r} has numbers but no source")
        return self


class ProgramStep(Model):
    """One step of a program: a unit operation on a functional unit, with its duration."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    unit_operation: Name = Field(
        description="e.g. prime, seed, activate, transduce, feed, harvest."
    )
    functional_unit: Name | None = None
    duration: Quantity | None = None
    parameters: dict[Name, PropertyValue] = Field(default_factory=dict)
    prompt: str | None = Field(
        default=None, description="Operator action the step waits for (connect bag, take sample)."
    )
    source: Provenance | None = Field(default=None, description="Provenance of the step's numbers.")

    @model_validator(mode="after")
    def _duration_is_time(self) -> ProgramStep:
        if self.duration is not None:
            if not is_convertible(self.duration.unit, "s"):
                raise ValueError(
                    f"step {self.name!r}: duration unit {self.duration.unit!r} is no time"
                )
            if self.duration.value <= 0:
                raise ValueError(f"step {self.name!r}: duration must be positive")
        return self

    @property
    def duration_seconds(self) -> float | None:
        """The step's duration in seconds, if it has one."""
        return None if self.duration is None else self.duration.to("s").value


class ProgramTemplate(Document):
    """A device program (recipe/protocol template) with a hash of its content for change control."""

    name: ProgramName
    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    author: str
    description: str = ""
    device: Name | None = Field(default=None, description="Device kind the template is for.")
    supervisory_template_id: Identifier | None = None
    created: UtcDatetime | None = None
    modified: UtcDatetime | None = None
    parameters: list[ParameterSpec] = Field(default_factory=list)
    steps: list[ProgramStep] = Field(min_length=1)
    content_hash: str = Field(
        default="",
        description="SHA-256 of the template's content (all fields but this one). Filled in when "
        "empty; a mismatch means the content was changed after hashing.",
    )

    @model_validator(mode="after")
    def _hash_and_names(self) -> ProgramTemplate:
        names = [p.name for p in self.parameters]
        if len(names) != len(set(names)):
            raise ValueError(f"program {self.name!r} declares a parameter twice")
        computed = self.compute_hash()
        if not self.content_hash:
            object.__setattr__(self, "content_hash", computed)
        elif self.content_hash != computed:
            raise ValueError(
                f"program {self.name!r} {self.version}: content_hash does not match the content "
                "(changed after hashing); clear content_hash to re-hash a deliberate change"
            )
        return self

    def compute_hash(self) -> str:
        """SHA-256 of the canonical JSON of everything but `content_hash`."""
        return sha256_hex(self.model_dump(mode="json", exclude={"content_hash"}))

    def parameter(self, name: str) -> ParameterSpec:
        """The declared parameter called `name` (KeyError if none)."""
        for spec in self.parameters:
            if spec.name == name:
                return spec
        raise KeyError(name)


class ResultFile(Model):
    """A file a program run produced (image, vendor report), stored beside the record."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    mime_type: str
    path: str = Field(description="Path relative to the batch record folder, or a URL.")
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


Outcome = Literal["complete", "stopped", "aborted"]


class ProgramRun(Document):
    """A program run as started (LADS ActiveProgram at start)."""

    device_id: Identifier
    device_program_run_id: Identifier
    program: ProgramName
    program_version: str
    template_hash: str
    parameters: dict[Name, PropertyValue] = Field(default_factory=dict)
    supervisory_job_id: Identifier | None = None
    supervisory_task_id: Identifier | None = None
    samples: list[SampleInfo] = Field(default_factory=list)
    user: str | None = None
    started: UtcDatetime
    estimated_runtime: timedelta | None = None

    def result(
        self,
        outcome: Outcome,
        *,
        stopped: datetime,
        started: datetime | None = None,
        pause: timedelta = timedelta(0),
        properties: Mapping[str, PropertyValue] | None = None,
        files: Iterable[ResultFile] = (),
        vendor_data: Mapping[str, JsonValue] | None = None,
    ) -> Result:
        """This run's Result: its identity and samples, from `started` (by default when it
        started) to `stopped` (never before `started`)."""
        start = started or self.started
        stop = max(stopped, start)
        return Result(
            device_id=self.device_id,
            device_program_run_id=self.device_program_run_id,
            program=self.program,
            program_version=self.program_version,
            template_hash=self.template_hash,
            supervisory_job_id=self.supervisory_job_id,
            supervisory_task_id=self.supervisory_task_id,
            user=self.user,
            started=start,
            stopped=stop,
            outcome=outcome,
            total_runtime=stop - start,
            total_pause_time=pause,
            properties=dict(properties or {}),
            samples=self.samples,
            files=list(files),
            vendor_data=dict(vendor_data or {}),
        )


class Result(Document):
    """What a program run produced (LADS Result): frozen before the run reaches Complete."""

    device_id: Identifier
    device_program_run_id: Identifier
    program: ProgramName
    program_version: str
    template_hash: str
    supervisory_job_id: Identifier | None = None
    supervisory_task_id: Identifier | None = None
    user: str | None = None
    started: UtcDatetime
    stopped: UtcDatetime
    outcome: Outcome
    total_runtime: timedelta
    total_pause_time: timedelta = timedelta(0)
    properties: dict[Name, PropertyValue] = Field(default_factory=dict)
    samples: list[SampleInfo] = Field(default_factory=list)
    files: list[ResultFile] = Field(default_factory=list)
    vendor_data: dict[str, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _times(self) -> Result:
        if self.stopped < self.started:
            raise ValueError("a result cannot stop before it started")
        return self
