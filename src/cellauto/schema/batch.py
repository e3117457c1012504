"""The batch: one manufacturing run across devices (a BatchML subset)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from cellauto.schema._base import Document, Identifier, UtcDatetime


class BatchStatus(StrEnum):
    """Where a batch stands."""

    PLANNED = "planned"
    RUNNING = "running"
    HELD = "held"
    COMPLETE = "complete"
    STOPPED = "stopped"
    ABORTED = "aborted"


class BatchInfo(Document):
    """Header of a batch (BatchML BatchListEntry fields)."""

    batch_id: Identifier
    product: str
    recipe: str | None = None
    recipe_version: str | None = None
    lot_id: Identifier | None = None
    status: BatchStatus = BatchStatus.PLANNED
    operators: list[str] = Field(default_factory=list)
    equipment: list[Identifier] = Field(default_factory=list, description="Device ids.")
    actual_start: UtcDatetime | None = None
    actual_end: UtcDatetime | None = None

    @model_validator(mode="after")
    def _times(self) -> BatchInfo:
        if self.actual_end is not None:
            if self.actual_start is None:
                raise ValueError(f"batch {self.batch_id}: an end time needs a start time")
            if self.actual_end < self.actual_start:
                raise ValueError(f"batch {self.batch_id}: ends before it starts")
        return self
