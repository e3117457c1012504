"""Material and its chain of identity (LADS SampleInfo, extended for cell therapy)."""

from __future__ import annotations

from pydantic import Field, JsonValue

from cellauto.schema._base import Identifier, Model
from cellauto.schema.quantity import Quantity


class SampleInfo(Model):
    """A sample or container of material: who it came from, which lot, where it sits."""

    container_id: Identifier = Field(description="Bag, cassette, tube set or plate id.")
    sample_id: Identifier | None = None
    position: str | None = Field(default=None, description="Well, port or slot in the container.")
    material: str | None = Field(default=None, description="e.g. apheresis, PBMC, CD4/CD8 T cells.")
    donor_id: Identifier | None = None
    patient_id: Identifier | None = None
    lot: Identifier | None = None
    batch_id: Identifier | None = None
    volume: Quantity | None = None
    custom_data: dict[str, JsonValue] = Field(default_factory=dict)
