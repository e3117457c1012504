"""Programs shared by the simulator tests."""

from __future__ import annotations

from cellauto.schema import ProgramStep, ProgramTemplate
from cellauto.schema.quantity import Q


def three_step() -> ProgramTemplate:
    """Prime 1 h, seed 2 h, expand 7 h."""
    steps = [
        ProgramStep(name="Prime", unit_operation="prime", duration=Q(1, "h")),
        ProgramStep(name="Seed", unit_operation="seed", duration=Q(2, "h")),
        ProgramStep(name="Expand", unit_operation="expand", duration=Q(7, "h")),
    ]
    return ProgramTemplate(name="three step", version="1", author="tests", steps=steps)
