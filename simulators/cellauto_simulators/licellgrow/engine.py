"""The simulated LiCellGrow: a closed expansion culture with in-line glucose, lactate, pH and
dissolved oxygen, and perfusion driven by glucose. EVERY number here is assumed (no public data
about the device exists); the model is a plausible generic one, not the product's.

It is a cellauto `Device` driven by the simulator engine (clock, program runner, event log with
ground truth), so the SiLA 2 server of `cellauto.sila` serves it exactly as it serves a device
driven by an adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cellauto.driver import Device, OperatorPrompt
from cellauto.errors import CommandRejected
from cellauto.protocols import load_protocol
from cellauto.schema import (
    Alarm,
    CommandResult,
    DeviceInfo,
    DeviceProfile,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quantity,
    Result,
    Sample,
)
from cellauto.schema.programs import Outcome
from cellauto.schema.quantity import Q
from cellauto.sim import Clock, GroundTruth, ProgramRunner, RunEvent
from cellauto.sim.device import ClockPin, EventLog
from cellauto.state import ABORTING, COMPLETE, STOPPING, State, StateCommand, StateMachine

_log = logging.getLogger("cellauto.sim.licellgrow")
_ENDINGS: dict[State, Outcome] = {COMPLETE: "complete", STOPPING: "stopped", ABORTING: "aborted"}

# -- the culture model (all assumed) ------------------------------------------------------------

MEDIUM_GLUCOSE = 25.0  # mmol/L in fresh medium (assumed)
VOLUME = 500.0  # mL working volume (assumed)


@dataclass
class Culture:
    """Cells, metabolites and gases of the vessel; `advance(dt)` integrates dt seconds."""

    cells: float = 0.0  # total cells
    glucose: float = MEDIUM_GLUCOSE  # mmol/L
    lactate: float = 0.5  # mmol/L
    perfusion: float = 0.0  # mL/min
    fed: float = 0.0  # mL since the run started
    reservoir: float = 5000.0  # mL
    growth_per_day: float = 0.6  # specific growth rate (assumed)
    glucose_per_cell_day: float = 2.0e-10  # mmol per cell per day (assumed)
    lactate_yield: float = 1.6  # mol lactate per mol glucose (assumed)
    glucose_low: float = 5.0  # perfusion on below this (mmol/L, the program's threshold)
    consumed_day: float = 0.0
    produced_day: float = 0.0

    def advance(self, dt: float) -> None:
        if dt <= 0:
            return
        days = dt / 86400
        capacity = 2e9
        growth = self.growth_per_day * (1 - self.cells / capacity) * min(1.0, self.glucose / 2.0)
        self.cells *= math.exp(growth * days)
        used = min(self.glucose, self.cells * self.glucose_per_cell_day * days / (VOLUME / 1000))
        self.glucose -= used
        self.lactate += used * self.lactate_yield
        self.consumed_day = used / days if days else 0.0
        self.produced_day = used * self.lactate_yield / days if days else 0.0
        # the feeding controller: perfusion proportional to the glucose shortfall
        shortfall = max(0.0, self.glucose_low + 2.0 - self.glucose)
        self.perfusion = min(5.0, 1.5 * shortfall) if self.cells > 0 and self.reservoir > 0 else 0.0
        exchanged = min(self.perfusion * dt / 60, self.reservoir)
        if exchanged > 0:
            fraction = min(1.0, exchanged / VOLUME)
            self.glucose += (MEDIUM_GLUCOSE - self.glucose) * fraction
            self.lactate -= self.lactate * fraction
            self.fed += exchanged
            self.reservoir -= exchanged

    @property
    def ph(self) -> float:
        return 7.4 - 0.03 * self.lactate

    @property
    def dissolved_oxygen(self) -> float:
        return max(5.0, 95.0 - self.cells / 2.5e7)


class SimulatedLiCellGrow(Device):
    """The engine's LiCellGrow (see the module doc); `truth` records what it publishes."""

    kind = "licellgrow"

    def __init__(self, profile: DeviceProfile, clock: Clock, truth: GroundTruth, seed: int) -> None:
        super().__init__("licellgrow-sim", profile, time=clock)
        self.clock = clock
        self.truth = truth
        self.log = EventLog(clock, truth)
        self.vendor = load_protocol("licellgrow").by_state()
        self.random = random.Random(seed)
        self.culture = Culture(growth_per_day=self.random.uniform(0.5, 0.7))
        self.machine = StateMachine("licellgrow-sim")
        self.runner: ProgramRunner | None = None
        self.drift = 0.0  # mmol/L of glucose sensor drift
        self.hours_since_calibration = 0.0
        self.calibration = "calibrated"
        self.prompt_pin = ClockPin(clock)
        self.start_pin = ClockPin(clock)
        self.start_pin.hold()  # virtual time starts with the first client (see `first_client`)
        self._changes: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._last = clock.monotonic()
        self._alarm_ids = 0
        self._raised: dict[str, str] = {}
        self._result_sent = False
        self._sim_run_id = ""

    # -- Device -------------------------------------------------------------------------------

    async def _connect(self) -> DeviceInfo:
        self._tasks.append(asyncio.create_task(self._apply_changes(), name="licellgrow states"))
        self._tasks.append(asyncio.create_task(self._sampler(), name="licellgrow sampler"))
        await self._adopt(self.machine.state)
        return DeviceInfo(
            manufacturer="cellauto simulator (assumed LiCellGrow model)",
            model="LiCellGrow (simulated, assumption-based)",
            serial_number="LCG-SIM-1",
            software_revision="0.2.0",
        )

    async def _close(self) -> None:
        if self.runner is not None and self.runner.outcome is None:
            self.runner.abort()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.prompt_pin.release()
        self.start_pin.release()

    def first_client(self) -> None:
        """At speed=max virtual time starts when the first client connects, so a seeded run does
        not depend on how long the client took."""
        self.start_pin.release()

    async def _read(self, channel: str) -> Sample:
        self._advance()
        return self.sample(channel, self._measure(channel), self.clock.now(), publish=False)

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        threshold = parameters.get("glucose_low_threshold")
        if isinstance(threshold, Quantity):
            self.culture.glucose_low = float(threshold.to("mmol/L").value)
        self._sim_run_id = run.device_program_run_id
        runner = ProgramRunner(
            template,
            self.clock,
            machine=self.machine,
            parameters=parameters,
            on_step_start={
                "seed": lambda _ctx: setattr(self.culture, "cells", 5e7),
                "calibrate": lambda _ctx: self._calibrate(),
            },
        )
        runner.add_listener(self._on_run_event)
        self.runner = runner
        self._result_sent = False
        self._tasks.append(asyncio.create_task(self._execute(runner, run), name="licellgrow run"))

    async def _execute(self, runner: ProgramRunner, run: ProgramRun) -> None:
        await runner.run()

    def _result(self, runner: ProgramRunner, outcome: Outcome) -> Result:
        started = runner.started or self.clock.now()
        stopped = self.clock.now()
        return Result(
            device_id=self.device_id,
            device_program_run_id=self._sim_run_id,
            program=runner.program.name,
            program_version=runner.program.version,
            template_hash=runner.program.content_hash,
            started=started,
            stopped=stopped,
            outcome=outcome,
            total_runtime=stopped - started,
            total_pause_time=timedelta(seconds=runner.paused),
            properties={
                "final_cells": Q(round(self.culture.cells), "{cells}"),
                "fed_volume": Q(round(self.culture.fed, 3), "mL"),
            },
        )

    def _on_run_event(self, event: RunEvent) -> None:
        """Queue the run's events; the Result goes immediately before the state that ends the
        run (into Complete, Stopping or Aborting: ADR 0008)."""
        runner = self.runner
        if event.kind == "state" and event.transition is not None and runner is not None:
            outcome = _ENDINGS.get(event.transition.to_state)
            if outcome is not None and not self._result_sent:
                self._result_sent = True
                self._changes.put_nowait(self._result(runner, outcome))
        self._changes.put_nowait(event)

    async def _send_state_command(self, command: StateCommand) -> None:
        runner = self.runner
        if runner is not None and runner.outcome is None:
            getattr(runner, str(command))()
        else:
            transition = self.machine.command(command)
            if transition is not None:
                self._changes.put_nowait(transition.to_state)
            while self.machine.state.is_acting:
                self._changes.put_nowait(self.machine.state_complete().to_state)
        await self._settled()

    async def _settled(self) -> None:
        """Wait until every queued change has been reported."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._changes.put_nowait(done)
        await done

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        await self.report_alarm_status(
            alarm.alarm_id, alarm.code, "acknowledged", self.clock.now(), user=user
        )

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        if self.runner is None or self.runner.prompt is None:
            raise CommandRejected(self.device_id, "answer_prompt", "no prompt is open")
        self.runner.answer_prompt(answer)
        self.report_prompt_answered(prompt.prompt_id, answer, user)
        self.log.append("prompt_answered", {"prompt_id": prompt.prompt_id, "answer": answer})
        self.prompt_pin.release()

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        if name == "calibrate_sensor":
            self._calibrate()
        elif name == "feed_now":
            volume = parameters.get("volume", Q(50, "mL"))
            assert isinstance(volume, Quantity)
            self.culture.perfusion = 0.0
            self.culture.glucose += (MEDIUM_GLUCOSE - self.culture.glucose) * min(
                1.0, volume.value / VOLUME
            )
            self.culture.fed += volume.value
        elif name == "set_feed_thresholds":
            low = parameters.get("glucose_low")
            if isinstance(low, Quantity):
                self.culture.glucose_low = low.value
        self.log.append("command", {"name": name})
        return self.command_result(name)

    # -- alarms (the handle's injection) --------------------------------------------------------

    def raise_alarm(self, code: str) -> str:
        """Raise profile alarm `code` now; its id (reported in order with other changes)."""
        self._alarm_ids += 1
        alarm_id = f"LCG-A{self._alarm_ids}"
        self._raised[alarm_id] = code
        self.log.append("alarm", {"alarm_id": alarm_id, "code": code, "status": "raised"})
        self._changes.put_nowait(("raised", alarm_id, code))
        return alarm_id

    def clear_alarm(self, code: str) -> None:
        """Clear every active alarm `code`."""
        for alarm_id, known in list(self._raised.items()):
            if known == code:
                del self._raised[alarm_id]
                self.log.append("alarm", {"alarm_id": alarm_id, "code": code, "status": "cleared"})
                self._changes.put_nowait(("cleared", alarm_id, code))

    # -- the engine ---------------------------------------------------------------------------

    def _calibrate(self) -> None:
        self.drift = 0.0
        self.hours_since_calibration = 0.0
        self.calibration = "calibrated"

    def _advance(self) -> None:
        now = self.clock.monotonic()
        dt, self._last = now - self._last, now
        if dt > 0:
            self.culture.advance(dt)
            self.hours_since_calibration += dt / 3600
            self.drift += dt / 86400 * 0.05  # mmol/L per day (assumed)
            if self.hours_since_calibration > 336:
                self.calibration = "drift_suspected"

    def _measure(self, channel: str) -> float | str:
        c = self.culture
        noise = self.random.gauss
        values: dict[str, float | str] = {
            "culture.temperature": 37.0 + noise(0, 0.05),
            "culture.temperature_setpoint": 37.0,
            "culture.co2": 5.0 + noise(0, 0.02),
            "culture.co2_setpoint": 5.0,
            "culture.volume": VOLUME,
            "culture.ph": c.ph + noise(0, 0.005),
            "culture.dissolved_oxygen": c.dissolved_oxygen,
            "metabolite_sensor.glucose": max(0.0, c.glucose + self.drift + noise(0, 0.05)),
            "metabolite_sensor.lactate": max(0.0, c.lactate + noise(0, 0.05)),
            "metabolite_sensor.glucose_consumption_rate": c.consumed_day,
            "metabolite_sensor.lactate_production_rate": c.produced_day,
            "metabolite_sensor.calibration_state": self.calibration,
            "metabolite_sensor.hours_since_calibration": self.hours_since_calibration,
            "feed_pump.flow_rate": c.perfusion,
            "feed_pump.fed_volume": c.fed,
            "feed_pump.state": "feeding" if c.perfusion > 0 else "idle",
            "feed_pump.reservoir_volume": c.reservoir,
        }
        value = values[channel]
        return round(value, 4) if isinstance(value, float) else value

    async def _sampler(self) -> None:
        """Publish every channel at its sample period (on-change channels each minute)."""
        periods = {
            name: spec.sample_period.to("s").value if spec.sample_period else 60.0
            for name, spec in self.profile.channels().items()
        }
        origin = self.clock.monotonic()
        due = dict.fromkeys(periods, 0.0)
        while True:
            at = min(due.values())
            await self.clock.sleep_until(origin + at)
            with self.clock.busy():
                self._advance()
                stamp = self.clock.now()
                for name in sorted(periods):
                    if due[name] <= at:
                        value = self._measure(name)
                        self.truth.sample(name, stamp, value)
                        self.report_sample(self.sample(name, value, stamp))
                        due[name] = at + periods[name]

    async def _apply_changes(self) -> None:
        """Report run events, state changes and results in the order they happened."""
        while True:
            change = await self._changes.get()
            try:
                await self._apply(change)
            except Exception:  # a bug in one change must not silence the device
                _log.exception("licellgrow simulator: applying %r failed", change)

    async def _apply(self, change: Any) -> None:
        if True:
            if isinstance(change, asyncio.Future):
                change.set_result(None)
            elif isinstance(change, State):
                await self._adopt(change)
            elif isinstance(change, Result):
                await self.report_result(change)
            elif isinstance(change, RunEvent):
                await self._run_event(change)
            elif isinstance(change, tuple):
                status, alarm_id, code = change
                await self.report_alarm_status(alarm_id, code, status, self.clock.now())

    async def _adopt(self, state: State) -> None:
        if state != self.state:
            self.log.append("state", {"state": self.vendor[state]})
        await self.report_state(state)

    async def _run_event(self, event: RunEvent) -> None:
        status = event.status
        if event.kind == "state" and event.transition is not None:
            await self._adopt(event.transition.to_state)
        elif event.kind == "step_started":
            self.log.append("step", {"step": status.step_index, "name": status.step_name})
            await self.report_progress(
                progress=status.progress,
                remaining=timedelta(seconds=status.remaining),
                step_name=status.step_name,
                step_number=status.step_index,
            )
        elif event.kind == "prompt":
            prompt_id = f"{self._sim_run_id}-step{status.step_index}"
            self.prompt_pin.hold()
            self.log.append("prompt", {"prompt_id": prompt_id, "text": event.detail})
            self.report_prompt(
                OperatorPrompt(
                    prompt_id, self.device_id, event.detail or str(status.prompt), event.time
                )
            )
