"""The one state machine of every device, functional unit and program run.

It is LADS's two-level machine, which is PackML's: an outer functional state (Stopped, Running,
Stopping, Aborting, Aborted, Clearing) and, inside Running, a running state (Idle, Starting,
Execute, Completing, Complete, Resetting, Holding, Held, Unholding, Suspending, Suspended,
Unsuspending). States ending in -ing are acting states: they move on by themselves when the
device reports that their action is done ("state complete").

The machine never reads a clock; callers stamp transitions with time when they record them.
The mappings to PackML, ISA-88, MTP and SiLA live as data in ``schemas/states.toml``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cellauto.errors import InvalidTransition
from cellauto.resources import schemas_dir


class FunctionalState(StrEnum):
    """Outer level (LADS FunctionalStateMachine, PackML machine level)."""

    STOPPED = "Stopped"
    RUNNING = "Running"
    STOPPING = "Stopping"
    ABORTING = "Aborting"
    ABORTED = "Aborted"
    CLEARING = "Clearing"


class RunningState(StrEnum):
    """Inner level inside Running (LADS RunningStateMachine, PackML ExecuteState)."""

    IDLE = "Idle"
    STARTING = "Starting"
    EXECUTE = "Execute"
    COMPLETING = "Completing"
    COMPLETE = "Complete"
    RESETTING = "Resetting"
    HOLDING = "Holding"
    HELD = "Held"
    UNHOLDING = "Unholding"
    SUSPENDING = "Suspending"
    SUSPENDED = "Suspended"
    UNSUSPENDING = "Unsuspending"


class StateCommand(StrEnum):
    """Commands of the state machine."""

    START = "start"
    STOP = "stop"
    ABORT = "abort"
    CLEAR = "clear"
    HOLD = "hold"
    UNHOLD = "unhold"
    SUSPEND = "suspend"
    UNSUSPEND = "unsuspend"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class State:
    """A point of the two-level machine; `running` is set exactly when `functional` is Running."""

    functional: FunctionalState
    running: RunningState | None = None

    def __post_init__(self) -> None:
        if (self.functional is FunctionalState.RUNNING) != (self.running is not None):
            raise ValueError(f"invalid state {self.functional}/{self.running}")

    def __str__(self) -> str:
        return self.functional if self.running is None else f"{self.functional}/{self.running}"

    @classmethod
    def parse(cls, text: str) -> State:
        """``"Stopped"`` or ``"Running/Execute"`` back into a State."""
        outer, _, inner = text.partition("/")
        try:
            return cls(FunctionalState(outer), RunningState(inner) if inner else None)
        except ValueError:
            known = ", ".join(map(str, ALL_STATES))
            raise ValueError(f"{text!r} is not a state; known: {known}") from None

    @property
    def is_acting(self) -> bool:
        """True for the -ing states, which end by themselves on state complete."""
        return str(self.running or self.functional).endswith("ing")


F, R = FunctionalState, RunningState


def _run(state: RunningState) -> State:
    return State(F.RUNNING, state)


STOPPED = State(F.STOPPED)
STOPPING = State(F.STOPPING)
ABORTING = State(F.ABORTING)
ABORTED = State(F.ABORTED)
CLEARING = State(F.CLEARING)
IDLE, STARTING, EXECUTE = _run(R.IDLE), _run(R.STARTING), _run(R.EXECUTE)
COMPLETING, COMPLETE, RESETTING = _run(R.COMPLETING), _run(R.COMPLETE), _run(R.RESETTING)
HOLDING, HELD, UNHOLDING = _run(R.HOLDING), _run(R.HELD), _run(R.UNHOLDING)
SUSPENDING, SUSPENDED, UNSUSPENDING = _run(R.SUSPENDING), _run(R.SUSPENDED), _run(R.UNSUSPENDING)

ALL_STATES: tuple[State, ...] = (
    *(State(f) for f in F if f is not F.RUNNING),
    *(_run(r) for r in R),
)

COMPLETIONS: dict[State, State] = {
    STARTING: EXECUTE,
    EXECUTE: COMPLETING,  # the program's own end: its last step is done
    COMPLETING: COMPLETE,
    RESETTING: IDLE,
    HOLDING: HELD,
    UNHOLDING: EXECUTE,
    SUSPENDING: SUSPENDED,
    UNSUSPENDING: EXECUTE,
    STOPPING: STOPPED,
    ABORTING: ABORTED,
    CLEARING: STOPPED,
}
"""Where each acting state goes on state complete. Execute completes when its work is done."""

_RUNNING_STATES = tuple(_run(r) for r in R)

TRANSITIONS: dict[tuple[State, StateCommand], State] = {
    # start: from Idle (PackML), and from Stopped (LADS StoppedToRunning + StartProgram)
    (IDLE, StateCommand.START): STARTING,
    (STOPPED, StateCommand.START): STARTING,
    # reset: PackML Stopped/Complete -> Resetting -> Idle
    (STOPPED, StateCommand.RESET): RESETTING,
    (COMPLETE, StateCommand.RESET): RESETTING,
    (EXECUTE, StateCommand.HOLD): HOLDING,
    (HELD, StateCommand.UNHOLD): UNHOLDING,
    (EXECUTE, StateCommand.SUSPEND): SUSPENDING,
    (SUSPENDED, StateCommand.UNSUSPEND): UNSUSPENDING,
    (ABORTED, StateCommand.CLEAR): CLEARING,
    **{(s, StateCommand.STOP): STOPPING for s in _RUNNING_STATES},
    **{(s, StateCommand.ABORT): ABORTING for s in (*_RUNNING_STATES, STOPPED, STOPPING, CLEARING)},
}
"""Every legal command: (state, command) -> the state it leads to."""

ALREADY_THERE: dict[StateCommand, frozenset[State]] = {
    StateCommand.STOP: frozenset({STOPPING, STOPPED}),
    StateCommand.ABORT: frozenset({ABORTING, ABORTED}),
    StateCommand.CLEAR: frozenset({CLEARING, STOPPED}),
    StateCommand.HOLD: frozenset({HOLDING, HELD}),
    StateCommand.UNHOLD: frozenset({UNHOLDING, EXECUTE}),
    StateCommand.SUSPEND: frozenset({SUSPENDING, SUSPENDED}),
    StateCommand.UNSUSPEND: frozenset({UNSUSPENDING, EXECUTE}),
    StateCommand.RESET: frozenset({RESETTING, IDLE}),
    StateCommand.START: frozenset({STARTING}),
}
"""States in which a command's goal is already reached or under way: the command is a no-op.
Public methods target a state, so calling them twice is safe."""

Cause = Literal["command", "state_complete", "reported"]


@dataclass(frozen=True, slots=True)
class Transition:
    """One move of the machine, and why it happened."""

    from_state: State
    to_state: State
    cause: Cause
    command: StateCommand | None = None


def allowed_commands(state: State) -> frozenset[StateCommand]:
    """Commands that move the machine out of `state`."""
    return frozenset(cmd for (src, cmd) in TRANSITIONS if src == state)


class StateMachine:
    """The two-level machine of one device (or functional unit, or program run)."""

    def __init__(self, device: str, initial: State = STOPPED) -> None:
        self.device = device
        self.state = initial

    def command(self, command: StateCommand | str) -> Transition | None:
        """Apply a command: the transition, None if its goal is already reached, or
        InvalidTransition naming the device, the state and the command."""
        cmd = StateCommand(command)
        target = TRANSITIONS.get((self.state, cmd))
        if target is None:
            if self.state in ALREADY_THERE[cmd]:
                return None
            allowed = [str(c) for c in allowed_commands(self.state)]
            raise InvalidTransition(self.device, str(self.state), str(cmd), allowed)
        return self._move(target, "command", cmd)

    def check(self, command: StateCommand | str) -> None:
        """Raise InvalidTransition if `command` is neither legal nor a no-op now."""
        cmd = StateCommand(command)
        if (self.state, cmd) not in TRANSITIONS and self.state not in ALREADY_THERE[cmd]:
            allowed = [str(c) for c in allowed_commands(self.state)]
            raise InvalidTransition(self.device, str(self.state), str(cmd), allowed)

    def state_complete(self) -> Transition:
        """The current acting state's action is done: move to where it leads."""
        target = COMPLETIONS.get(self.state)
        if target is None:
            raise InvalidTransition(
                self.device,
                str(self.state),
                "state_complete",
                [str(c) for c in allowed_commands(self.state)],
            )
        return self._move(target, "state_complete", None)

    def observe(self, state: State) -> Transition | None:
        """Adopt a state the device itself reports (the device is the truth); None if unchanged."""
        if state == self.state:
            return None
        return self._move(state, "reported", None)

    def _move(self, target: State, cause: Cause, command: StateCommand | None) -> Transition:
        transition = Transition(self.state, target, cause, command)
        self.state = target
        return transition


class StateMapping(BaseModel):
    """One row of the mapping from a cellauto state to the neighbouring standards."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: str
    packml: int
    packml_name: str
    isa88: str
    mtp: int
    mtp_name: str
    sila: Literal["waiting", "running", "finishedSuccessfully", "finishedWithError"] | None = None
    note: str = ""


class CommandMapping(BaseModel):
    """One row of the mapping from a cellauto command to the neighbouring standards."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: StateCommand
    packml: int
    isa88: str
    mtp: int
    mtp_name: str
    note: str = ""


@cache
def state_mappings() -> dict[State, StateMapping]:
    """PackML, ISA-88, MTP and SiLA equivalents of every state (from ``schemas/states.toml``)."""
    rows = [StateMapping.model_validate(row) for row in _mapping_file()["state"]]
    return {State.parse(row.state): row for row in rows}


@cache
def command_mappings() -> dict[StateCommand, CommandMapping]:
    """PackML, ISA-88 and MTP equivalents of every command (from ``schemas/states.toml``)."""
    rows = [CommandMapping.model_validate(row) for row in _mapping_file()["command"]]
    return {row.command: row for row in rows}


def _mapping_file() -> dict[str, list[dict[str, object]]]:
    with (schemas_dir() / "states.toml").open("rb") as handle:
        data: dict[str, list[dict[str, object]]] = tomllib.load(handle)
    return data
