"""The run life cycle every simulator shares: the one transition that publishes the result,
state-command routing by the state model, prompt ids and answers, the declared alarm reaction,
and the run's task (started, cancelled, a failure logged)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests_sim_programs import three_step

from cellauto.errors import InvalidTransition
from cellauto.profiles import load_profile
from cellauto.schema.programs import Outcome
from cellauto.sim import DiscreteEventClock, ProgramRunner, RunEvent
from cellauto.sim.alarms import AlarmBook
from cellauto.sim.lifecycle import (
    RUN_ENDS,
    NoSuchPrompt,
    RunLifecycle,
    SimRun,
    StateCause,
    result_outcome,
)
from cellauto.state import (
    ABORTED,
    COMPLETE,
    COMPLETING,
    HELD,
    IDLE,
    STOPPED,
    StateCommand,
    StateMachine,
    Transition,
)

H = 3600.0


class Wire:
    """A device's publisher that writes down what it was asked to publish, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.prompts = 0
        self.prompted = asyncio.Event()

    def run_state(self, transition: Transition, cause: StateCause) -> None:
        self.sent.append(("state", str(transition.to_state), cause))

    def run_result(self, run: SimRun, outcome: Outcome) -> None:
        self.sent.append(("result", outcome))

    def run_step(self, run: SimRun, event: RunEvent) -> None:
        assert event.step is not None
        self.sent.append(("step", event.step.name))

    def new_prompt_id(self, run: SimRun) -> str:
        self.prompts += 1
        return f"{run.run_id}/P{self.prompts}"

    def run_prompt(self, run: SimRun, prompt_id: str, text: str) -> None:
        self.sent.append(("prompt", prompt_id, text))
        self.prompted.set()

    def run_prompt_answered(self, run: SimRun, prompt_id: str, answer: str, user: str) -> None:
        self.sent.append(("answered", prompt_id, answer, user, run.runner.prompt))


def rig(program: Any = None) -> tuple[DiscreteEventClock, RunLifecycle, Wire, SimRun]:
    clock = DiscreteEventClock()
    machine = StateMachine("sim-1", initial=IDLE)
    wire = Wire()
    runs = RunLifecycle(machine, wire)
    runner = ProgramRunner(program or three_step(), clock, machine=machine)
    run = runs.begin(runner, "R1")
    return clock, runs, wire, run


def index(sent: list[tuple[Any, ...]], item: tuple[Any, ...]) -> int:
    return sent.index(item)


def test_the_result_goes_with_entering_complete_stopping_or_aborting() -> None:
    assert {str(s): o for s, o in RUN_ENDS.items()} == {
        "Running/Complete": "complete",
        "Stopping": "stopped",
        "Aborting": "aborted",
    }
    assert result_outcome(Transition(COMPLETING, COMPLETE, "state_complete")) == "complete"
    assert result_outcome(Transition(IDLE, COMPLETING, "state_complete")) is None


async def test_a_completed_run_publishes_its_result_once_just_before_complete() -> None:
    _, _, wire, run = rig()
    run.task = asyncio.ensure_future(run.runner.run())
    assert await run.task == "complete"
    results = [s for s in wire.sent if s[0] == "result"]
    assert results == [("result", "complete")]
    complete = ("state", "Running/Complete", StateCause("done"))
    assert index(wire.sent, complete) == index(wire.sent, results[0]) + 1
    assert not run.running


@pytest.mark.parametrize(
    ("command", "outcome", "ending", "final"),
    [
        (StateCommand.STOP, "stopped", "Stopping", STOPPED),
        (StateCommand.ABORT, "aborted", "Aborting", ABORTED),
    ],
)
async def test_a_stopped_or_aborted_run_publishes_its_result_before_the_state_that_ends_it(
    command: StateCommand, outcome: str, ending: str, final: object
) -> None:
    clock, runs, wire, run = rig()
    run.task = asyncio.ensure_future(run.runner.run())
    await clock.sleep(2 * H)
    runs.command(command)
    await run.task
    assert runs.machine.state == final
    results = [s for s in wire.sent if s[0] == "result"]
    assert results == [("result", outcome)]
    entered = ("state", ending, StateCause("command", str(command)))
    assert index(wire.sent, entered) == index(wire.sent, results[0]) + 1


async def test_state_commands_go_to_the_run_while_it_runs_and_to_the_machine_otherwise() -> None:
    clock, runs, wire, run = rig()
    with pytest.raises(InvalidTransition):
        runs.command(StateCommand.HOLD)  # idle: nothing to hold
    run.task = asyncio.ensure_future(run.runner.run())
    await clock.sleep(H)
    runs.command(StateCommand.HOLD)
    assert runs.machine.state == HELD
    for refused in (StateCommand.RESET, StateCommand.CLEAR):
        with pytest.raises(InvalidTransition):
            runs.command(refused)
    assert runs.machine.state == HELD
    runs.command(StateCommand.UNHOLD)
    assert await run.task == "complete"
    wire.sent.clear()
    runs.command(StateCommand.RESET)  # no run any more: the machine takes it
    assert runs.machine.state == IDLE
    assert wire.sent == [
        ("state", "Running/Resetting", StateCause("command", "reset")),
        ("state", "Running/Idle", StateCause("done")),
    ]


async def test_a_prompt_gets_the_devices_id_and_only_that_id_answers_it() -> None:
    program = three_step()
    program.steps[1] = program.steps[1].model_copy(update={"prompt": "Connect the bag"})
    clock, runs, wire, run = rig(program)
    run.task = asyncio.ensure_future(run.runner.run())
    await wire.prompted.wait()
    assert wire.sent[-1] == ("prompt", "R1/P1", "Connect the bag")
    assert run.prompt_id == "R1/P1"
    held_at = clock.monotonic()
    with pytest.raises(NoSuchPrompt):
        runs.answer("R1/P2", "done", "op")
    runs.answer("R1/P1", "connected", "op")
    # published at once, while the prompt is still open: before the run moves on
    assert wire.sent[-1] == ("answered", "R1/P1", "connected", "op", "Connect the bag")
    assert clock.monotonic() == held_at
    with pytest.raises(NoSuchPrompt):
        runs.answer("R1/P1", "again", "op")
    assert await run.task == "complete"
    assert run.runner.responses == ["connected"]


@pytest.mark.parametrize(
    ("code", "final"), [("centrifuge_imbalance", ABORTED), ("door_open", HELD)]
)
async def test_a_raised_alarm_gets_the_profiles_reaction_and_is_named_as_its_cause(
    code: str, final: object
) -> None:
    profile = load_profile("prodigy")
    book = AlarmBook(profile, "A{:04d}".format)
    severity = book.spec(code).severity
    assert str(severity) == ("critical" if final == ABORTED else "error")
    clock, runs, wire, run = rig()
    run.task = asyncio.ensure_future(run.runner.run())
    await clock.sleep(H)
    alarm = book.raise_(code)
    assert alarm is not None
    runs.react(book, alarm)
    assert runs.machine.state == final
    caused = [s[2] for s in wire.sent if s[0] == "state" and s[2].kind == "alarm"]
    assert caused
    assert all(c == StateCause("alarm", alarm.alarm_id) for c in caused)
    runs.react(book, alarm)  # held already / ended: no second reaction, no error
    run.task.cancel()
    await asyncio.gather(run.task, return_exceptions=True)


async def test_an_alarm_without_a_run_or_without_a_reaction_changes_no_state() -> None:
    book = AlarmBook(load_profile("cocoon"), "AL-{:06d}".format)
    _, runs, wire, _ = rig()
    alarm = book.raise_("power_loss")
    assert alarm is not None
    runs.react(book, alarm)  # no run started
    assert wire.sent == []
    assert runs.machine.state == IDLE


async def test_start_runs_the_program_in_a_task_and_tells_when_it_ends() -> None:
    clock = DiscreteEventClock()
    machine = StateMachine("sim-1", initial=IDLE)
    wire = Wire()
    runs = RunLifecycle(machine, wire)
    ended: list[str | None] = []
    runner = ProgramRunner(three_step(), clock, machine=machine)
    run = runs.start(runner, "R1", on_end=lambda: ended.append(runner.outcome))
    assert run is runs.run
    assert run.task is not None
    assert runs.running
    await run.task
    assert ended == ["complete"]
    assert ("result", "complete") in wire.sent
    assert not runs.running


async def test_close_cancels_the_running_program_and_on_end_still_runs() -> None:
    clock = DiscreteEventClock()
    machine = StateMachine("sim-1", initial=IDLE)
    runs = RunLifecycle(machine, Wire())
    ended: list[bool] = []
    runner = ProgramRunner(three_step(), clock, machine=machine)
    run = runs.start(runner, "R1", on_end=lambda: ended.append(True))
    await clock.sleep(H)
    await runs.close()
    assert run.task is not None
    assert run.task.cancelled()
    assert ended == [True]
    assert not runs.running
    await runs.close()  # nothing runs any more: no error


async def test_a_program_that_fails_is_logged_naming_the_device_and_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_ctx: object) -> None:
        raise RuntimeError("hook broke")

    clock = DiscreteEventClock()
    machine = StateMachine("sim-1", initial=IDLE)
    runs = RunLifecycle(machine, Wire())
    ended: list[bool] = []
    runner = ProgramRunner(three_step(), clock, machine=machine, on_step_start={"seed": broken})
    run = runs.start(runner, "R7", on_end=lambda: ended.append(True))
    assert run.task is not None
    await run.task
    assert ended == [True]
    failed = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in failed] == ["sim-1: run R7 failed"]
    assert failed[0].exc_info is not None
    assert "hook broke" in str(failed[0].exc_info[1])
