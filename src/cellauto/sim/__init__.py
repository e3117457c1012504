"""The simulator engine: virtual clock, process models, program runner and fault injection.

Device simulators (``simulators/<device>/``) build on these; the wire servers that serve a
simulator's protocol live in ``cellauto.sim.servers``.
"""

from cellauto.sim.clock import (
    DEFAULT_EPOCH,
    Clock,
    DiscreteEventClock,
    ScaledClock,
    Speed,
    make_clock,
)
from cellauto.sim.faults import (
    Fault,
    FaultKind,
    FaultScheduler,
    FaultSink,
    SensorFaults,
    format_duration,
    format_faults,
    parse_duration,
    parse_faults,
)
from cellauto.sim.models import (
    CO2_LOOP,
    O2_LOOP,
    TEMPERATURE_LOOP,
    VARIABLES,
    Bioreactor,
    BioreactorParams,
    ControlLoop,
    Culture,
    CultureParams,
    CultureState,
    LoopParams,
    Medium,
    Reading,
    SensorNoise,
)
from cellauto.sim.runner import ProgramRunner, RunEvent, RunStatus, StepContext, StepHook

__all__ = [
    "CO2_LOOP",
    "DEFAULT_EPOCH",
    "O2_LOOP",
    "TEMPERATURE_LOOP",
    "VARIABLES",
    "Bioreactor",
    "BioreactorParams",
    "Clock",
    "ControlLoop",
    "Culture",
    "CultureParams",
    "CultureState",
    "DiscreteEventClock",
    "Fault",
    "FaultKind",
    "FaultScheduler",
    "FaultSink",
    "LoopParams",
    "Medium",
    "ProgramRunner",
    "Reading",
    "RunEvent",
    "RunStatus",
    "ScaledClock",
    "SensorFaults",
    "SensorNoise",
    "Speed",
    "StepContext",
    "StepHook",
    "format_duration",
    "format_faults",
    "make_clock",
    "parse_duration",
    "parse_faults",
]
