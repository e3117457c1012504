"""Provenance of the numbers in device profiles: public (with a citation) or assumed."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from cellauto.schema._base import Model, Text

Provenance = Annotated[
    str, StringConstraints(pattern=r"^(assumed|public:[A-Za-z0-9][A-Za-z0-9_.\-]*)$")
]
"""``assumed``, or ``public:<key>`` where ``<key>`` names an entry of the profile's ``sources``."""


def is_public(source: str) -> bool:
    """True for a ``public:<key>`` provenance."""
    return source.startswith("public:")


class Citation(Model):
    """A public source that profile numbers cite."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    title: Text
    note: str = ""


class SourcedValue(Model):
    """A number in the channel's own unit, with its provenance."""

    value: float = Field(allow_inf_nan=False)
    source: Provenance


class SourcedRange(Model):
    """A low/high pair (either may be open) in the channel's own unit, with its provenance."""

    low: float | None = Field(default=None, allow_inf_nan=False)
    high: float | None = Field(default=None, allow_inf_nan=False)
    source: Provenance

    @model_validator(mode="after")
    def _ordered(self) -> SourcedRange:
        if self.low is None and self.high is None:
            raise ValueError("a range needs low, high or both")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        return self

    def contains(self, value: float) -> bool:
        """True if `value` lies within the range (bounds included)."""
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)
