"""What a device declares to the conformance suite (tests/conformance/)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

CASES = (
    "identity",
    "channels",
    "subscription_order",
    "state_commands",
    "abort_clear_reset",
    "prompt_blocks",
    "alarms",
    "zero_loss",
    "sample_seq",
    "replay",
)
"""The suite's cases; ``alarm:<code>`` names one profile alarm within ``alarms``."""


@dataclass(frozen=True)
class Conformance:
    """How the conformance suite exercises a device.

    `program` is a profile program that raises at least one operator prompt.
    `not_applicable` maps a case (one of `CASES`, or ``alarm:<code>``) to why it does not apply;
    the device's page in ``docs/devices/`` must repeat each case and reason word for word.
    `test_options` are adapter URL options that keep the suite fast (short timeouts).
    `outage_faults` drop the link during a run of `program` shrunk to `outage_hours` (None:
    the program as the profile has it, for devices that only run their own programs);
    `values_recoverable` says whether the protocol lets the adapter read back channel values
    published while the link was down (an event log with samples) or not (then exactly those
    values are the recorded gap)."""

    program: str
    not_applicable: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    test_options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    outage_faults: str = "disconnect@1h:20m,disconnect@3h:40m"
    outage_hours: float | None = 6.0
    values_recoverable: bool = False
    known_defects: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Cases that apply but fail today, with the defect: the suite runs them as strict
    expected failures, so fixing the defect turns them red until the entry is removed."""

    def __post_init__(self) -> None:
        for case in [*self.not_applicable, *self.known_defects]:
            if case not in CASES and not case.startswith("alarm:"):
                raise ValueError(f"no conformance case {case!r}; cases: {', '.join(CASES)}")


def conformance_of(adapter: Any) -> Conformance:
    """An adapter class's declaration; ValueError if it has none."""
    declared = getattr(adapter, "conformance", None)
    if not isinstance(declared, Conformance):
        raise ValueError(f"{adapter!r} declares no `conformance: ClassVar[Conformance]`")
    return declared
