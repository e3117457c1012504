"""The program runner: executes a program's steps on the virtual clock and drives the state machine.

A run goes Starting -> Execute -> (each step) -> Completing -> Complete. Step time counts only in
Execute: hold and suspend stop it, unhold and unsuspend resume it. Stop and abort end the run.
A step with a prompt waits, after its start hook, until `answer_prompt` is called; virtual time
stands still meanwhile (the answer comes at the moment the prompt was raised). Hooks per unit
operation are how a device simulator acts on its process model (``"feed"`` -> ``model.feed``).
The simulated device completes its acting states (Holding, Stopping...) at once.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cellauto.errors import SimulationError
from cellauto.schema import ProgramStep, ProgramTemplate
from cellauto.schema.programs import Outcome, PropertyValue
from cellauto.sim.clock import Clock
from cellauto.state import (
    ABORTED,
    ABORTING,
    COMPLETE,
    EXECUTE,
    HOLDING,
    STOPPED,
    STOPPING,
    SUSPENDING,
    UNHOLDING,
    UNSUSPENDING,
    State,
    StateCommand,
    StateMachine,
    Transition,
)

EventKind = Literal["state", "step_started", "step_finished", "prompt", "prompt_answered"]
_INSTANT = frozenset({HOLDING, SUSPENDING, UNHOLDING, UNSUSPENDING})


@dataclass(frozen=True, slots=True)
class RunStatus:
    """Where a run is: state, step (1-based), progress 0..1, remaining virtual seconds."""

    state: State
    step_index: int | None
    step_name: str | None
    step_count: int
    progress: float
    remaining: float
    elapsed: float
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class RunEvent:
    """A state transition or a step event, stamped with virtual time."""

    kind: EventKind
    time: datetime
    status: RunStatus
    transition: Transition | None = None
    step: ProgramStep | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a hook gets: the runner, the step, its 1-based index and its effective parameters
    (run parameters overlaid by the step's own)."""

    runner: ProgramRunner
    step: ProgramStep
    index: int
    parameters: Mapping[str, PropertyValue] = field(default_factory=dict)


StepHook = Callable[[StepContext], Awaitable[None] | None]
RunListener = Callable[[RunEvent], None]


class _Ended(Exception):
    """Stop or abort arrived while the run waited."""


class ProgramRunner:
    """Runs one program on `clock`, driving `machine` (a fresh one named `device` if None).

    `on_step_start` / `on_step_end` map a unit operation (or ``"*"`` for every step) to a hook.
    """

    def __init__(
        self,
        program: ProgramTemplate,
        clock: Clock,
        *,
        device: str = "simulator",
        machine: StateMachine | None = None,
        parameters: Mapping[str, PropertyValue] | None = None,
        on_step_start: Mapping[str, StepHook] | None = None,
        on_step_end: Mapping[str, StepHook] | None = None,
    ) -> None:
        self.program = program
        self.clock = clock
        self.machine = machine or StateMachine(device)
        self.parameters = dict(parameters or {})
        self.on_step_start = dict(on_step_start or {})
        self.on_step_end = dict(on_step_end or {})
        self.responses: list[str] = []
        self.started: datetime | None = None
        self.stopped: datetime | None = None
        self.outcome: Outcome | None = None
        self._durations = [s.duration_seconds or 0.0 for s in program.steps]
        self._total = sum(self._durations)
        self._listeners: list[RunListener] = []
        self._index: int | None = None  # 0-based current step
        self._step_left = 0.0
        self._executing_since: float | None = None
        self._t0 = 0.0
        self._t_end: float | None = None
        self._paused = 0.0
        self._paused_since: float | None = None
        self._prompt: str | None = None
        self._answered = False
        self._changed: asyncio.Event | None = None
        self._sleeper: asyncio.Future[None] | None = None
        self._active = False

    # --- observation ----------------------------------------------------------------------

    def add_listener(self, listener: RunListener) -> Callable[[], None]:
        """Call `listener` with every RunEvent; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @property
    def state(self) -> State:
        """The run's state."""
        return self.machine.state

    @property
    def prompt(self) -> str | None:
        """The operator prompt the run waits on, if any."""
        return self._prompt

    @property
    def paused(self) -> float:
        """Virtual seconds spent held or suspended so far."""
        extra = 0.0 if self._paused_since is None else self.clock.monotonic() - self._paused_since
        return self._paused + extra

    @property
    def status(self) -> RunStatus:
        """The run's status now."""
        state = self.machine.state
        count = len(self.program.steps)
        step_left = self._step_left
        if self._executing_since is not None:
            step_left -= self.clock.monotonic() - self._executing_since
        step_left = max(0.0, step_left)
        i = self._index
        if state == COMPLETE:
            progress, remaining = 1.0, 0.0
        elif i is None:
            progress, remaining = 0.0, self._total
        else:
            remaining = step_left + sum(self._durations[i + 1 :])
            progress = (self._total - remaining) / self._total if self._total > 0 else i / count
        return RunStatus(
            state=state,
            step_index=None if i is None else i + 1,
            step_name=None if i is None else self.program.steps[i].name,
            step_count=count,
            progress=min(1.0, max(0.0, progress)),
            remaining=remaining,
            elapsed=self._elapsed(),
            prompt=self._prompt,
        )

    # --- commands -------------------------------------------------------------------------

    def hold(self) -> None:
        """Hold: step time stops until `unhold`."""
        self._command(StateCommand.HOLD)

    def unhold(self) -> None:
        """Resume from Held."""
        self._command(StateCommand.UNHOLD)

    def suspend(self) -> None:
        """Suspend (waiting on something outside): step time stops until `unsuspend`."""
        self._command(StateCommand.SUSPEND)

    def unsuspend(self) -> None:
        """Resume from Suspended."""
        self._command(StateCommand.UNSUSPEND)

    def stop(self) -> None:
        """End the run in order (outcome ``stopped``)."""
        self._command(StateCommand.STOP)

    def abort(self) -> None:
        """End the run at once (outcome ``aborted``)."""
        self._command(StateCommand.ABORT)

    def answer_prompt(self, response: str = "") -> None:
        """Answer the pending prompt; SimulationError if there is none."""
        if self._prompt is None:
            raise SimulationError(
                f"{self.machine.device}: answer_prompt: no prompt is pending "
                f"(state {self.machine.state})"
            )
        self.responses.append(response)
        self._answered = True
        self._signal()

    # --- running --------------------------------------------------------------------------

    async def run(self) -> Outcome:
        """Execute the program; returns ``complete``, ``stopped`` or ``aborted``."""
        if self._active or self.outcome is not None:
            raise SimulationError(f"{self.machine.device}: run: a runner runs once")
        self._changed = asyncio.Event()
        self.machine.check(StateCommand.START)
        self._active = True
        self._t0 = self.clock.monotonic()
        self.started = self.clock.now()
        try:
            self._emit_transition(self.machine.command(StateCommand.START))
            self._emit_transition(self.machine.state_complete())
            self._set_execute_clock()
            for i, step in enumerate(self.program.steps):
                await self._run_step(i, step)
            await self._until_executing()
            self._index = len(self.program.steps) - 1
            self._step_left = 0.0
            self._emit_transition(self.machine.state_complete())
            self._emit_transition(self.machine.state_complete())
            self.outcome = "complete"
        except _Ended:
            self.outcome = self._finish_ending()
        except BaseException:
            self._executing_since = None
            if self.machine.state not in (ABORTING, ABORTED):
                self._emit_transition(self.machine.command(StateCommand.ABORT))
            if self.machine.state == ABORTING:
                self._emit_transition(self.machine.state_complete())
            self.outcome = "aborted"
            raise
        finally:
            self._prompt = None
            self._active = False
            self._close_pause()
            self._t_end = self.clock.monotonic()
            self.stopped = self.clock.now()
            if self._sleeper is not None:
                self._sleeper.cancel()
        return self.outcome

    async def _run_step(self, i: int, step: ProgramStep) -> None:
        await self._until_executing()
        self._index = i
        self._step_left = self._durations[i]
        self._executing_since = None
        self._emit("step_started", step=step)
        context = StepContext(self, step, i + 1, {**self.parameters, **step.parameters})
        await self._call_hooks(self.on_step_start, step, context)
        if step.prompt is not None:
            self._prompt, self._answered = step.prompt, False
            self._emit("prompt", step=step, detail=step.prompt)
            # At max speed an open prompt pins virtual time: the operator's (real) reaction
            # time must not let other simulators on the same clock run on, or a seeded run
            # would depend on how fast the answer came.
            with self.clock.busy():
                while not self._answered:
                    await self._changed_or_ended()
            self._prompt = None
            self._emit("prompt_answered", step=step, detail=self.responses[-1])
        while self._step_left > 0:
            await self._until_executing()
            self._executing_since = self.clock.monotonic()
            self._sleeper = asyncio.ensure_future(self.clock.sleep(self._step_left))
            await asyncio.wait({self._sleeper})
            if not self._sleeper.cancelled():
                self._step_left, self._executing_since = 0.0, None
            self._sleeper = None
        await self._call_hooks(self.on_step_end, step, context)
        self._emit("step_finished", step=step)

    async def _call_hooks(
        self, hooks: Mapping[str, StepHook], step: ProgramStep, context: StepContext
    ) -> None:
        for key in ("*", step.unit_operation):
            hook = hooks.get(key)
            if hook is not None:
                result = hook(context)
                if inspect.isawaitable(result):
                    await result
            self._raise_if_ended()

    async def _until_executing(self) -> None:
        while self.machine.state != EXECUTE:
            await self._changed_or_ended()
        self._raise_if_ended()

    async def _changed_or_ended(self) -> None:
        self._raise_if_ended()
        assert self._changed is not None
        self._changed.clear()
        await self._changed.wait()
        self._raise_if_ended()

    def _raise_if_ended(self) -> None:
        if self.machine.state in (STOPPING, STOPPED, ABORTING, ABORTED):
            raise _Ended

    def _finish_ending(self) -> Outcome:
        if self.machine.state in (STOPPING, ABORTING):
            self._emit_transition(self.machine.state_complete())
        return "stopped" if self.machine.state == STOPPED else "aborted"

    def _command(self, command: StateCommand) -> None:
        transition = self.machine.command(command)
        if transition is None:
            return
        self._account()
        self._emit_transition(transition)
        # Stopping and Aborting end within the command: its answer names the final state, and
        # nothing (an open prompt, a sleeping step) can leave the run between the two.
        if transition.to_state in _INSTANT or transition.to_state in (STOPPING, ABORTING):
            self._emit_transition(self.machine.state_complete())
        self._set_execute_clock()
        if self._sleeper is not None and self.machine.state != EXECUTE:
            self._sleeper.cancel()
        self._signal()

    def _account(self) -> None:
        """Charge the Execute time since the last mark to the current step."""
        if self._executing_since is not None:
            self._step_left -= self.clock.monotonic() - self._executing_since
            self._executing_since = None

    def _set_execute_clock(self) -> None:
        if not self._active:
            return
        now = self.clock.monotonic()
        if self.machine.state == EXECUTE:
            self._close_pause()
        elif self._paused_since is None and self.machine.state.running is not None:
            self._paused_since = now

    def _close_pause(self) -> None:
        if self._paused_since is not None:
            self._paused += self.clock.monotonic() - self._paused_since
            self._paused_since = None

    def _signal(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _elapsed(self) -> float:
        if self.started is None:
            return 0.0
        end = self._t_end if self._t_end is not None else self.clock.monotonic()
        return end - self._t0

    def _emit_transition(self, transition: Transition | None) -> None:
        if transition is not None:
            self._emit("state", transition=transition)

    def _emit(
        self,
        kind: EventKind,
        *,
        transition: Transition | None = None,
        step: ProgramStep | None = None,
        detail: str = "",
    ) -> None:
        event = RunEvent(kind, self.clock.now(), self.status, transition, step, detail)
        for listener in list(self._listeners):
            listener(event)
