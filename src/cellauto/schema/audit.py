"""The audit trail and electronic signatures (21 CFR Part 11 §11.10(e), §11.50, §11.70)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, JsonValue, StringConstraints

from cellauto.schema._base import Model, UtcDatetime, sha256_hex

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
GENESIS_HASH = "0" * 64
"""`prev_hash` of the first entry of a chain."""


class SignatureMeaning(StrEnum):
    """What a signer declares by signing (§11.50(a)(3))."""

    AUTHORSHIP = "authorship"
    REVIEW = "review"
    APPROVAL = "approval"
    RESPONSIBILITY = "responsibility"


class ElectronicSignature(Model):
    """Binds a printed name, a meaning and a time to the hash of what was signed."""

    printed_name: Annotated[str, StringConstraints(min_length=1)]
    user_id: Annotated[str, StringConstraints(min_length=1)]
    meaning: SignatureMeaning
    signed_at: UtcDatetime
    signed_hash: Sha256 = Field(description="SHA-256 of the canonical JSON of what was signed.")


class AuditEntry(Model):
    """One append-only, hash-chained audit entry: who did what, when, why, from which value."""

    seq: int = Field(ge=0)
    time: UtcDatetime
    actor: Annotated[str, StringConstraints(min_length=1)]
    action: Annotated[str, StringConstraints(min_length=1)]
    object: str = Field(description="What was acted on: a device, channel, batch, alarm...")
    value: JsonValue = None
    previous_value: JsonValue = None
    reason: str = ""
    signature: ElectronicSignature | None = None
    prev_hash: Sha256
    hash: Sha256

    def expected_hash(self) -> str:
        """The hash this entry must carry: SHA-256 over the canonical JSON of all other fields."""
        return entry_hash(self.model_dump(mode="json", exclude={"hash"}))


def entry_hash(fields: dict[str, JsonValue]) -> str:
    """Hash of an audit entry's fields (everything but ``hash``)."""
    return sha256_hex(fields)
