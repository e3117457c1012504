"""The program runner: step sequence, progress, hold, prompts, stop/abort, hooks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from cellauto.errors import InvalidTransition, SimulationError
from cellauto.schema import ProgramStep, ProgramTemplate
from cellauto.schema.quantity import Q
from cellauto.sim import (
    Bioreactor,
    DiscreteEventClock,
    ProgramRunner,
    RunEvent,
    ScaledClock,
    StepContext,
)
from cellauto.state import ABORTED, COMPLETE, EXECUTE, HELD, STOPPED, SUSPENDED

H = 3600.0


def program(*steps: ProgramStep) -> ProgramTemplate:
    return ProgramTemplate(name="test", version="1", author="tests", steps=list(steps))


def step(name: str, op: str, hours: float | None = None, **kw: Any) -> ProgramStep:
    duration = None if hours is None else Q(hours, "h")
    return ProgramStep(name=name, unit_operation=op, duration=duration, **kw)


THREE = program(step("Prime", "prime", 1), step("Seed", "seed", 2), step("Expand", "expand", 7))


def number(ctx: StepContext, name: str) -> float:
    value = ctx.parameters[name]
    assert isinstance(value, float | int)
    return float(value)


def recorder(runner: ProgramRunner) -> list[RunEvent]:
    events: list[RunEvent] = []
    runner.add_listener(events.append)
    return events


async def test_runs_steps_in_order_and_drives_the_state_machine() -> None:
    clock = DiscreteEventClock()
    runner = ProgramRunner(THREE, clock, device="sim-1")
    events = recorder(runner)
    assert await runner.run() == "complete"
    assert clock.monotonic() == 10 * H
    assert runner.state == COMPLETE
    states = [str(e.transition.to_state) for e in events if e.transition]
    assert states == [
        "Running/Starting",
        "Running/Execute",
        "Running/Completing",
        "Running/Complete",
    ]
    steps = [(e.kind, e.status.step_index, (e.time - clock.start).total_seconds()) for e in events]
    assert [s for s in steps if s[0].startswith("step")] == [
        ("step_started", 1, 0.0),
        ("step_finished", 1, 1 * H),
        ("step_started", 2, 1 * H),
        ("step_finished", 2, 3 * H),
        ("step_started", 3, 3 * H),
        ("step_finished", 3, 10 * H),
    ]
    assert runner.status.progress == 1.0
    assert runner.status.remaining == 0.0
    assert runner.status.elapsed == 10 * H


async def test_status_reports_step_progress_and_remaining_time() -> None:
    clock = DiscreteEventClock()
    runner = ProgramRunner(THREE, clock)
    task = asyncio.create_task(runner.run())
    await clock.sleep(2 * H)
    status = runner.status
    assert (status.step_index, status.step_name, status.step_count) == (2, "Seed", 3)
    assert status.remaining == 8 * H
    assert status.progress == pytest.approx(0.2)
    assert status.state == EXECUTE
    await task


async def test_hold_stops_the_step_clock() -> None:
    clock = DiscreteEventClock()
    runner = ProgramRunner(THREE, clock)
    task = asyncio.create_task(runner.run())
    await clock.sleep(1.5 * H)
    runner.hold()
    assert runner.state == HELD
    remaining = runner.status.remaining
    await clock.sleep(5 * H)
    assert runner.status.remaining == remaining
    assert runner.status.step_index == 2
    runner.unhold()
    assert runner.state == EXECUTE
    assert await task == "complete"
    assert clock.monotonic() == 15 * H
    assert runner.paused == 5 * H
    with pytest.raises(InvalidTransition, match="hold: not allowed in state Running/Complete"):
        runner.hold()


async def test_suspend_stops_the_step_clock_and_holding_twice_is_a_no_op() -> None:
    clock = DiscreteEventClock()
    runner = ProgramRunner(THREE, clock)
    task = asyncio.create_task(runner.run())
    await clock.sleep(H / 2)
    runner.suspend()
    runner.suspend()
    assert runner.state == SUSPENDED
    await clock.sleep(24 * H)
    runner.unsuspend()
    await task
    assert clock.monotonic() == 34 * H
    with pytest.raises(InvalidTransition, match="unhold: not allowed in state Running/Complete"):
        runner.unhold()


async def test_prompt_blocks_until_answered() -> None:
    clock = DiscreteEventClock()
    prog = program(
        step("Prime", "prime", 1),
        step("Connect bag", "connect_bag", prompt="Connect the medium bag"),
        step("Feed", "feed", 1),
    )
    runner = ProgramRunner(prog, clock)
    events = recorder(runner)
    with pytest.raises(SimulationError, match="no prompt is pending"):
        runner.answer_prompt()
    task = asyncio.create_task(runner.run())
    other = asyncio.create_task(clock.sleep(3 * 24 * H))  # another simulator on the same clock
    await asyncio.sleep(0.05)  # real time: the operator thinks
    assert not task.done()
    assert runner.prompt == "Connect the medium bag"
    assert runner.status.step_name == "Connect bag"
    assert clock.monotonic() == H  # an open prompt pins virtual time
    assert not other.done()
    runner.answer_prompt("bag B-17 connected")
    assert await task == "complete"
    assert clock.monotonic() == 2 * H
    await other
    assert runner.responses == ["bag B-17 connected"]
    kinds = [e.kind for e in events if e.kind.startswith("prompt")]
    assert kinds == ["prompt", "prompt_answered"]


@pytest.mark.parametrize(
    ("command", "outcome", "final"), [("abort", "aborted", ABORTED), ("stop", "stopped", STOPPED)]
)
async def test_abort_or_stop_mid_run_ends_it(command: str, outcome: str, final: object) -> None:
    clock = DiscreteEventClock()
    runner = ProgramRunner(THREE, clock)
    events = recorder(runner)
    task = asyncio.create_task(runner.run())
    await clock.sleep(2 * H)
    getattr(runner, command)()
    assert await task == outcome
    assert runner.state == final
    assert clock.monotonic() == 2 * H
    started = [e.status.step_index for e in events if e.kind == "step_started"]
    assert started == [1, 2]
    assert runner.stopped == clock.now()


async def test_abort_while_waiting_on_a_prompt() -> None:
    clock = DiscreteEventClock()
    runner = ProgramRunner(program(step("Ask", "take_sample", prompt="Take a sample")), clock)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.05)  # real time: nobody answers
    assert runner.prompt == "Take a sample"
    runner.abort()
    assert await task == "aborted"
    assert runner.prompt is None


async def test_hooks_act_on_the_model_per_unit_operation() -> None:
    clock = DiscreteEventClock()
    reactor = Bioreactor(seed=1)
    calls: list[tuple[str, int]] = []

    def seed(ctx: StepContext) -> None:
        reactor.seed(number(ctx, "cells"), number(ctx, "volume"))

    async def feed(ctx: StepContext) -> None:
        reactor.advance_to(clock.monotonic())
        reactor.feed(number(ctx, "volume"))

    def every(ctx: StepContext) -> None:
        calls.append((ctx.step.unit_operation, ctx.index))

    prog = program(
        step("Seed", "seed", 1, parameters={"volume": 100.0}),
        step("Grow", "expand", 48),
        step("Feed", "feed", 1, parameters={"volume": 50.0}),
    )
    runner = ProgramRunner(
        prog,
        clock,
        parameters={"cells": 5e7},
        on_step_start={"seed": seed, "feed": feed, "*": every},
    )
    assert await runner.run() == "complete"
    assert calls == [("seed", 1), ("expand", 2), ("feed", 3)]
    assert reactor.culture.state.volume == 150.0


async def test_a_failing_hook_aborts_the_run_and_raises() -> None:
    clock = DiscreteEventClock()

    def broken(ctx: StepContext) -> None:
        raise RuntimeError("pump driver crashed")

    runner = ProgramRunner(THREE, clock, on_step_end={"seed": broken})
    with pytest.raises(RuntimeError, match="pump driver crashed"):
        await runner.run()
    assert runner.state == ABORTED
    assert runner.outcome == "aborted"


async def test_runs_on_a_scaled_clock_too() -> None:
    clock = ScaledClock(36000.0)
    prog = program(step("Prime", "prime", 0.5), step("Seed", "seed", 0.5))
    runner = ProgramRunner(prog, clock)
    t0 = time.perf_counter()
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.02)
    runner.hold()
    await asyncio.sleep(0.05)
    runner.unhold()
    assert await task == "complete"
    wall = time.perf_counter() - t0
    assert 0.15 <= wall < 1.0
    assert runner.paused == pytest.approx(0.05 * 36000, rel=0.5)
