"""Base classes and field types shared by every model of the common schema."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from cellauto.errors import SchemaVersionError

SCHEMA_VERSION = "1.0"
"""Version of the common schema. Readers accept any minor version of the same major."""


def check_schema_version(version: str) -> str:
    """Accept `version` if this cellauto can read documents written with it."""
    match = re.fullmatch(r"(\d+)\.(\d+)", version)
    if match is None:
        raise SchemaVersionError(f"{version!r} is not a schema version (expected MAJOR.MINOR)")
    major = int(match.group(1))
    ours = int(SCHEMA_VERSION.split(".")[0])
    if major > ours:
        raise SchemaVersionError(
            f"written with schema version {version}, newer than this cellauto reads "
            f"({SCHEMA_VERSION}); upgrade cellauto to read it"
        )
    if major < ours:
        raise SchemaVersionError(
            f"written with schema version {version}, older than this cellauto reads "
            f"({SCHEMA_VERSION}); use a cellauto release of schema {major}.x to read it"
        )
    return version


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "timestamp has no time zone; cellauto records only timezone-aware UTC times "
            "(e.g. datetime.now(UTC) or '2026-01-01T08:00:00Z')"
        )
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
"""A timezone-aware datetime, normalised to UTC. Naive datetimes are a validation error."""

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
"""A lower_snake_case identifier: functional units, channel variables, commands, parameters."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
"""Non-empty free text."""

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=False)]
"""An id assigned by a device, a person or a system (batch, sample, container, run...)."""

ChannelName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", max_length=129)
]
"""A channel: ``<functional unit>.<variable>``, e.g. ``chamber.temperature``."""


class Model(BaseModel):
    """Immutable schema model that rejects unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class Document(Model):
    """A model persisted on its own (a file, a table header): it carries its schema version."""

    schema_version: Annotated[str, AfterValidator(check_schema_version)] = Field(
        default=SCHEMA_VERSION, description="Common-schema version this document was written with."
    )


def canonical_json(data: Any) -> bytes:
    """Canonical JSON bytes of plain data: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def sha256_hex(data: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of plain data."""
    return hashlib.sha256(canonical_json(data)).hexdigest()
