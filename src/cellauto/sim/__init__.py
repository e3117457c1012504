"""The simulator engine and device-author surface: `start_simulator` and `SimHandle` (one handle
for every simulator, with ground truth), virtual clock, process models, program runner and fault
injection.

Device simulators (``simulators/<device>/``) build on these; the wire servers that serve a
simulator's protocol live in ``cellauto.sim.servers``.
"""

from cellauto.sim.alarms import AlarmBook, BookAlarm
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
from cellauto.sim.handle import (
    AlarmInjection,
    FaultPlan,
    SimHandle,
    plan_faults,
    start_simulator,
)
from cellauto.sim.lifecycle import (
    RUN_ENDS,
    RUNNER_COMMANDS,
    NoSuchPrompt,
    RunLifecycle,
    RunPublisher,
    SimRun,
    StateCause,
    result_outcome,
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
from cellauto.sim.options import COMMON_OPTIONS, SimOptions, parse_sim_options
from cellauto.sim.params import Given, ParameterRefused, check_parameters
from cellauto.sim.runner import ProgramRunner, RunEvent, RunStatus, StepContext, StepHook
from cellauto.sim.sampling import Deadband, Periodic
from cellauto.sim.truth import GroundTruth, TruthEvent, TruthSample

__all__ = [
    "CO2_LOOP",
    "COMMON_OPTIONS",
    "DEFAULT_EPOCH",
    "O2_LOOP",
    "RUNNER_COMMANDS",
    "RUN_ENDS",
    "TEMPERATURE_LOOP",
    "VARIABLES",
    "AlarmBook",
    "AlarmInjection",
    "Bioreactor",
    "BioreactorParams",
    "BookAlarm",
    "Clock",
    "ControlLoop",
    "Culture",
    "CultureParams",
    "CultureState",
    "Deadband",
    "DiscreteEventClock",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FaultScheduler",
    "FaultSink",
    "Given",
    "GroundTruth",
    "LoopParams",
    "Medium",
    "NoSuchPrompt",
    "ParameterRefused",
    "Periodic",
    "ProgramRunner",
    "Reading",
    "RunEvent",
    "RunLifecycle",
    "RunPublisher",
    "RunStatus",
    "ScaledClock",
    "SensorFaults",
    "SensorNoise",
    "SimHandle",
    "SimOptions",
    "SimRun",
    "Speed",
    "StateCause",
    "StepContext",
    "StepHook",
    "TruthEvent",
    "TruthSample",
    "check_parameters",
    "format_duration",
    "format_faults",
    "make_clock",
    "parse_duration",
    "parse_faults",
    "parse_sim_options",
    "plan_faults",
    "result_outcome",
    "start_simulator",
]
