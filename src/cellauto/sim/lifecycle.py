"""The run life cycle every simulated device shares (ADR 0020).

`RunLifecycle` owns a device's program runs (one at a time) and turns the runner's events into
calls of the device's `RunPublisher`, which puts them on its wire:

- the result is published once, on the one agreed transition (`result_outcome`): entering
  Complete (from Completing), Stopping or Aborting, just before that state event, so a client
  holds the result by the time it sees the run end;
- `start` runs a program in a task (a failure is logged, `on_end` runs however it ends) and
  `close` cancels it;
- a state command goes where the state model says (`command`): to the running program while one
  runs (hold, unhold, suspend, unsuspend, stop, abort; reset and clear are refused then), to the
  device's state machine otherwise, acting states completed at once; `InvalidTransition` if the
  state does not allow it;
- every prompt gets its id from the device; `answer` checks it and publishes the answer before
  the runner resumes (the runner pins a max-speed clock while a prompt is open);
- a raised alarm gets the profile's declared reaction (`react`), and the state events it causes
  name the alarm as their cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cellauto.errors import InvalidTransition, SimulationError
from cellauto.schema.profile import AlarmReaction
from cellauto.schema.programs import Outcome
from cellauto.sim.alarms import AlarmBook, BookAlarm
from cellauto.sim.device import react
from cellauto.sim.runner import ProgramRunner, RunEvent
from cellauto.state import (
    ABORTING,
    COMPLETE,
    STOPPING,
    State,
    StateCommand,
    StateMachine,
    Transition,
)

_log = logging.getLogger("cellauto.sim")

__all__ = [
    "RUNNER_COMMANDS",
    "RUN_ENDS",
    "NoSuchPrompt",
    "RunLifecycle",
    "RunPublisher",
    "SimRun",
    "StateCause",
    "result_outcome",
]

RUN_ENDS: Mapping[State, Outcome] = {
    COMPLETE: "complete",
    STOPPING: "stopped",
    ABORTING: "aborted",
}
"""The states whose entry publishes a run's result, with the run's outcome."""

RUNNER_COMMANDS = frozenset(
    {
        StateCommand.HOLD,
        StateCommand.UNHOLD,
        StateCommand.SUSPEND,
        StateCommand.UNSUSPEND,
        StateCommand.STOP,
        StateCommand.ABORT,
    }
)
"""State commands a running program takes."""


def result_outcome(transition: Transition) -> Outcome | None:
    """The outcome whose result `transition` publishes (None: it publishes none)."""
    return RUN_ENDS.get(transition.to_state)


@dataclass(frozen=True, slots=True)
class StateCause:
    """Why the state changed: a state `command` (`detail`: its name), the device completing
    a state (`done`), an alarm's declared reaction (`alarm`, `detail`: the alarm id), or the
    device on its own (`device`: a failed run)."""

    kind: Literal["command", "done", "alarm", "device"]
    detail: str = ""


class NoSuchPrompt(SimulationError):
    """An answer to a prompt that is not open."""


class RunPublisher(Protocol):
    """What a device publishes of its runs (in its wire's words)."""

    def run_state(self, transition: Transition, cause: StateCause) -> None: ...

    def run_result(self, run: SimRun, outcome: Outcome) -> None: ...

    def run_step(self, run: SimRun, event: RunEvent) -> None: ...

    def run_prompt(self, run: SimRun, prompt_id: str, text: str) -> None: ...

    def run_prompt_answered(self, run: SimRun, prompt_id: str, answer: str, user: str) -> None: ...

    def new_prompt_id(self, run: SimRun) -> str: ...


@dataclass(eq=False)
class SimRun:
    """One program run of a device: its runner, id, open prompt and task."""

    runner: ProgramRunner
    run_id: str
    prompt_id: str | None = None
    result_sent: bool = False
    task: asyncio.Task[Any] | None = None

    @property
    def running(self) -> bool:
        """Whether the program has not ended yet."""
        if self.task is not None:
            return not self.task.done()
        return self.runner.outcome is None


class RunLifecycle:
    """A device's runs; see the module doc."""

    def __init__(self, machine: StateMachine, publisher: RunPublisher) -> None:
        self.machine = machine
        self.publisher = publisher
        self.run: SimRun | None = None
        self._cause: StateCause | None = None

    @property
    def running(self) -> bool:
        """Whether a program runs now."""
        return self.run is not None and self.run.running

    def begin(self, runner: ProgramRunner, run_id: str) -> SimRun:
        """Follow a new run (the device starts its task and keeps it in `run.task`)."""
        run = self.run = SimRun(runner, run_id)
        runner.add_listener(lambda event: self._on_event(run, event))
        return run

    def start(
        self, runner: ProgramRunner, run_id: str, *, on_end: Callable[[], None] | None = None
    ) -> SimRun:
        """Follow a new run and run its program in a task (`run.task`); `on_end` is called when
        the program ends, completed, failed or cancelled."""
        run = self.begin(runner, run_id)
        run.task = asyncio.create_task(
            self._drive(run, on_end), name=f"{self.machine.device} run {run_id}"
        )
        return run

    async def _drive(self, run: SimRun, on_end: Callable[[], None] | None) -> None:
        try:
            await run.runner.run()
        except Exception:
            _log.exception("%s: run %s failed", self.machine.device, run.run_id)
        finally:
            if on_end is not None:
                on_end()

    async def close(self) -> None:
        """Cancel the run's task, if one runs, and wait for it to end."""
        task = self.run.task if self.run is not None else None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- commands -------------------------------------------------------------------------

    def command(self, command: StateCommand) -> None:
        """Route a state command (see the module doc); `InvalidTransition` if not allowed."""
        run = self.run
        if run is not None and run.running:
            if command not in RUNNER_COMMANDS:
                raise InvalidTransition(
                    self.machine.device, str(self.machine.state), str(command), ()
                )
            getattr(run.runner, command.value)()
            return
        self._publish(self.machine.command(command))
        while self.machine.state.is_acting:
            self._publish(self.machine.state_complete())

    def answer(self, prompt_id: str, answer: str, user: str) -> None:
        """Answer the open prompt `prompt_id` (`NoSuchPrompt` if it is not the open one)."""
        run = self.run
        open_ = run is not None and run.runner.prompt is not None
        if run is None or not open_ or run.prompt_id != prompt_id:
            raise NoSuchPrompt(f"{self.machine.device}: no open prompt {prompt_id!r}")
        self.publisher.run_prompt_answered(run, prompt_id, answer, user)
        run.prompt_id = None
        run.runner.answer_prompt(answer)

    def react(self, book: AlarmBook, alarm: BookAlarm) -> None:
        """Apply the profile's reaction to `alarm` to the running program, if any."""
        self.react_to(book.reaction(alarm), alarm.alarm_id)

    def react_to(self, reaction: AlarmReaction, alarm_id: str) -> None:
        """Apply `reaction` to the running program, if any, for alarm `alarm_id` (a device
        that keeps its alarms without an `AlarmBook`)."""
        run = self.run
        if run is None or not run.running:
            return
        self._cause = StateCause("alarm", alarm_id)
        try:
            with contextlib.suppress(InvalidTransition):
                react(reaction, run.runner)
        finally:
            self._cause = None

    # --- events ---------------------------------------------------------------------------

    def _publish(self, transition: Transition | None) -> None:
        if transition is not None:
            self.publisher.run_state(transition, self._cause_of(transition))

    def _cause_of(self, transition: Transition) -> StateCause:
        if self._cause is not None:
            return self._cause
        if transition.command is not None:
            return StateCause("command", str(transition.command))
        return StateCause("done" if transition.cause == "state_complete" else "device")

    def _on_event(self, run: SimRun, event: RunEvent) -> None:
        if event.kind == "state" and event.transition is not None:
            outcome = result_outcome(event.transition)
            if outcome is not None and not run.result_sent:
                run.result_sent = True
                self.publisher.run_result(run, outcome)
            self._publish(event.transition)
        elif event.kind == "step_started":
            self.publisher.run_step(run, event)
        elif event.kind == "prompt":
            run.prompt_id = self.publisher.new_prompt_id(run)
            self.publisher.run_prompt(run, run.prompt_id, event.detail)
