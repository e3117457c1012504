"""Ground truth: what a simulated device really did, for tests and benchmarks.

Every event the device logged (in its own seq order), every value it published per channel
(numbered per channel from 0: consecutive publications carry consecutive seq numbers, so a gap in
a record's `Sample.seq` names values that were published and not received), and the windows in
which its link was down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """One event as the device logged it."""

    seq: int
    time: datetime
    kind: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TruthSample:
    """One value as the device published it; `seq` counts the channel's publications from 0."""

    time: datetime
    value: float | str | bool
    seq: int


@dataclass
class GroundTruth:
    """What the device did; the simulator appends, tests read."""

    events: list[TruthEvent] = field(default_factory=list)
    samples: dict[str, list[TruthSample]] = field(default_factory=dict)
    outages: list[tuple[datetime, datetime | None]] = field(default_factory=list)

    def published(
        self, channel: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[TruthSample]:
        """The values `channel` published with `start <= time < end` (open bounds: all)."""
        return [
            s
            for s in self.samples.get(channel, [])
            if (start is None or s.time >= start) and (end is None or s.time < end)
        ]

    # --- recording (the simulator's side) ----------------------------------------------------

    def event(self, seq: int, time: datetime, kind: str, data: Mapping[str, Any]) -> None:
        """Record a logged event (`data` is kept, not copied: do not mutate it afterwards)."""
        self.events.append(TruthEvent(seq, time, kind, data))

    def sample(self, channel: str, time: datetime, value: float | str | bool) -> TruthSample:
        """Record a published value; returns it with its per-channel seq."""
        series = self.samples.setdefault(channel, [])
        sample = TruthSample(time, value, len(series))
        series.append(sample)
        return sample

    def link_down(self, time: datetime) -> None:
        """The link went down at `time`."""
        self.outages.append((time, None))

    def link_up(self, time: datetime) -> None:
        """The link came back at `time` (closes the open outage, if any)."""
        if self.outages and self.outages[-1][1] is None:
            self.outages[-1] = (self.outages[-1][0], time)
