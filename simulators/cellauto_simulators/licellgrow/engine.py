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

from pydantic import JsonValue

from cellauto.driver import Device, OperatorPrompt
from cellauto.errors import CommandRejected, SimulationError
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
from cellauto.sim import Clock, GroundTruth, ProgramRunner, RunEvent, StepContext
from cellauto.sim.device import ClockPin, EventLog
from cellauto.state import ABORTING, COMPLETE, STOPPING, State, StateCommand, StateMachine

_log = logging.getLogger("cellauto.sim.licellgrow")
_ENDINGS: dict[State, Outcome] = {COMPLETE: "complete", STOPPING: "stopped", ABORTING: "aborted"}

# -- the culture model (all assumed) ------------------------------------------------------------

MEDIUM_GLUCOSE = 25.0  # mmol/L in fresh medium (assumed)
VOLUME = 500.0  # mL working volume at seeding (assumed)
CALIBRATION_DUE = 336.0  # h after which drift is suspected (assumed)
CALIBRATION_STANDARD = "glucose 10 mmol/L, lactate 5 mmol/L"  # (assumed)


@dataclass(frozen=True)
class CellKinetics:
    """Growth and metabolism of one cell type (every number assumed)."""

    growth_per_day: tuple[float, float]  # the specific growth rate is drawn from this range
    capacity: float  # cells the vessel holds
    glucose_per_cell_day: float  # mmol per cell per day
    lactate_yield: float  # mol lactate per mol glucose
    seeded: float  # cells seeded
    adherent: bool  # adherent cells stay in the vessel when culture is bled


KINETICS: dict[str, CellKinetics] = {
    "msc": CellKinetics((0.35, 0.45), 5e8, 3e-9, 1.8, 1e7, adherent=True),
    "t_cell": CellKinetics((0.6, 0.8), 5e9, 8e-10, 1.6, 5e7, adherent=False),
}
"""By the ``cell_type`` parameter of a program's seed step."""


@dataclass
class Culture:
    """Cells, metabolites and gases of the vessel; `advance(dt)` integrates dt seconds.

    Perfusion: fresh medium flows in at `perfusion`; the same volume leaves, `bleed_fraction` of
    it as culture (with suspended cells) and the rest as cell-free perfusate through the
    retention filter, so the volume holds. The feeding controller sets `perfusion` from glucose.
    """

    kinetics: CellKinetics = KINETICS["t_cell"]
    growth_per_day: float = 0.7
    cells: float = 0.0
    volume: float = VOLUME  # mL
    glucose: float = MEDIUM_GLUCOSE  # mmol/L
    lactate: float = 0.5  # mmol/L
    feeding: bool = False  # the feeding controller runs (expansion steps)
    perfusion: float = 0.0  # mL/min of fresh medium in
    bleed: float = 0.0  # mL/min of culture out
    fed: float = 0.0  # mL since the run started
    bled: float = 0.0  # mL since the run started
    reservoir: float = 5000.0  # mL
    glucose_low: float = 5.0  # mmol/L: perfusion rises as glucose falls below this + 2
    lactate_high: float = 15.0  # mmol/L: full perfusion above this
    max_perfusion: float = 5.0  # mL/min
    bleed_fraction: float = 0.1  # of the perfusion flow
    consumed_day: float = 0.0
    produced_day: float = 0.0

    def seed(self, kinetics: CellKinetics, growth_per_day: float) -> None:
        self.kinetics, self.growth_per_day = kinetics, growth_per_day
        self.cells = kinetics.seeded

    def advance(self, dt: float) -> None:
        if dt <= 0:
            return
        k = self.kinetics
        days = dt / 86400
        growth = self.growth_per_day * (1 - self.cells / k.capacity) * min(1.0, self.glucose / 2.0)
        self.cells *= math.exp(growth * days)
        used = min(self.glucose, self.cells * k.glucose_per_cell_day * days / (self.volume / 1000))
        self.glucose -= used
        self.lactate += used * k.lactate_yield
        self.consumed_day = used / days
        self.produced_day = used * k.lactate_yield / days
        self.perfusion = self.controller() if self.reservoir > 0 else 0.0
        self.bleed = self.perfusion * self.bleed_fraction
        self.exchange(min(self.perfusion * dt / 60, self.reservoir), self.bleed_fraction)

    def controller(self) -> float:
        """The feeding controller: perfusion in proportion to the glucose shortfall below
        `glucose_low` + 2 mmol/L, full perfusion while lactate is above `lactate_high`."""
        if not self.feeding or self.cells <= 0:
            return 0.0
        if self.lactate > self.lactate_high:
            return self.max_perfusion
        shortfall = max(0.0, self.glucose_low + 2.0 - self.glucose)
        return min(self.max_perfusion, 1.5 * shortfall)

    def exchange(self, volume: float, bleed_fraction: float) -> None:
        """`volume` mL of fresh medium in, as much out (`bleed_fraction` of it as culture)."""
        if volume <= 0:
            return
        fraction = min(1.0, volume / self.volume)
        self.glucose += (MEDIUM_GLUCOSE - self.glucose) * fraction
        self.lactate -= self.lactate * fraction
        if not self.kinetics.adherent:
            self.cells -= self.cells * fraction * bleed_fraction
        self.fed += volume
        self.bled += volume * bleed_fraction
        self.reservoir -= volume

    def withdraw(self, volume: float) -> None:
        """Take `volume` mL of culture out (a sample): cells go with it, concentrations hold."""
        self.cells -= self.cells * volume / self.volume
        self.volume -= volume

    @property
    def ph(self) -> float:
        return 7.4 - 0.03 * self.lactate

    @property
    def dissolved_oxygen(self) -> float:
        return max(5.0, 95.0 - 90.0 * self.cells / self.kinetics.capacity)


@dataclass
class MetaboliteSensor:
    """In-line glucose and lactate probe: readings drift off linearly (rates drawn from the seed)
    until a calibration against the standard zeroes the offsets (all assumed)."""

    glucose_drift_per_day: float
    lactate_drift_per_day: float
    glucose_offset: float = 0.0
    lactate_offset: float = 0.0
    hours_since_calibration: float = 0.0
    state: str = "calibrated"

    def advance(self, dt: float) -> None:
        self.glucose_offset += self.glucose_drift_per_day * dt / 86400
        self.lactate_offset += self.lactate_drift_per_day * dt / 86400
        self.hours_since_calibration += dt / 3600
        if self.state == "calibrated" and self.hours_since_calibration > CALIBRATION_DUE:
            self.state = "drift_suspected"

    def calibrated(self) -> None:
        self.glucose_offset = self.lactate_offset = self.hours_since_calibration = 0.0
        self.state = "calibrated"


_CONTROLLER_PARAMETERS = (
    ("glucose_low_threshold", "glucose_low", "mmol/L"),
    ("lactate_high_threshold", "lactate_high", "mmol/L"),
    ("max_perfusion_rate", "max_perfusion", "mL/min"),
    ("bleed_fraction", "bleed_fraction", "1"),
)
"""Program parameter -> the feeding controller's attribute, in its unit."""


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
        self.culture = Culture()
        self.sensor = MetaboliteSensor(
            glucose_drift_per_day=self.random.uniform(0.03, 0.08),
            lactate_drift_per_day=-self.random.uniform(0.02, 0.06),
        )
        self.machine = StateMachine("licellgrow-sim")
        self.runner: ProgramRunner | None = None
        self.prompt_pin = ClockPin(clock)
        self.calibration_pin = ClockPin(clock)
        self._calibration_prompt: str | None = None
        self.prompts_changed = asyncio.Event()
        """Set whenever a prompt opens or is answered (the link faults wait on it)."""
        self._calibrations = 0
        self._samples_taken = 0
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
        self.calibration_pin.release()
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
        culture = self.culture
        for name, attribute, unit in _CONTROLLER_PARAMETERS:
            value = parameters.get(name)
            if isinstance(value, Quantity):
                setattr(culture, attribute, float(value.to(unit).value))
        self._sim_run_id = run.device_program_run_id
        runner = ProgramRunner(
            template,
            self.clock,
            machine=self.machine,
            parameters=parameters,
            on_step_start={
                "seed": self._seed,
                "calibrate": lambda _ctx: setattr(self.sensor, "state", "calibrating"),
                "activate": lambda _ctx: setattr(culture, "feeding", True),
                "expand": lambda _ctx: setattr(culture, "feeding", True),
                "harvest": lambda _ctx: setattr(culture, "feeding", False),
            },
            on_step_end={"calibrate": lambda _ctx: self.sensor.calibrated()},
        )
        runner.add_listener(self._on_run_event)
        self.runner = runner
        self._result_sent = False
        self._tasks.append(asyncio.create_task(self._execute(runner, run), name="licellgrow run"))

    def _seed(self, context: StepContext) -> None:
        cell_type = context.parameters.get("cell_type", "t_cell")
        kinetics = KINETICS.get(str(cell_type))
        if kinetics is None:
            raise SimulationError(f"licellgrow simulator: no cell type {cell_type!r}")
        self._advance()
        self.culture.seed(kinetics, self.random.uniform(*kinetics.growth_per_day))

    async def _execute(self, runner: ProgramRunner, run: ProgramRun) -> None:
        try:
            await runner.run()
        finally:
            self._advance()
            self.culture.feeding = False

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
        if prompt.prompt_id == self._calibration_prompt:
            self._advance()
            self._calibration_prompt = None
            self.sensor.calibrated()
            self._publish("metabolite_sensor.calibration_state")
            self.report_prompt_answered(prompt.prompt_id, answer, user)
            self.log.append("prompt_answered", {"prompt_id": prompt.prompt_id, "answer": answer})
            self.clear_alarm("sensor_drift")
            self.calibration_pin.release()
            self.prompts_changed.set()
            return
        if self.runner is None or self.runner.prompt is None:
            raise CommandRejected(self.device_id, "answer_prompt", "no prompt is open")
        self.runner.answer_prompt(answer)
        self.report_prompt_answered(prompt.prompt_id, answer, user)
        self.log.append("prompt_answered", {"prompt_id": prompt.prompt_id, "answer": answer})
        self.prompt_pin.release()
        self.prompts_changed.set()

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        self._advance()
        if name == "calibrate_sensor":
            self._open_calibration()
        elif name == "feed_now":
            volume = parameters.get("volume", Q(50, "mL"))
            assert isinstance(volume, Quantity)
            wanted = float(volume.to("mL").value)
            if wanted > self.culture.reservoir:
                raise CommandRejected(self.device_id, name, "the medium reservoir holds less")
            self.culture.exchange(wanted, self.culture.bleed_fraction)
        elif name == "take_sample":
            data = self._take_sample(parameters.get("volume", Q(1, "mL")))
            self.log.append("command", {"name": name, "sample_id": str(data["sample_id"])})
            self._publish("culture.volume")
            return self.command_result(name, data=data)
        elif name == "set_feed_thresholds":
            for key, attribute in (
                ("glucose_low", "glucose_low"),
                ("lactate_high", "lactate_high"),
            ):
                value = parameters.get(key)
                if isinstance(value, Quantity):
                    setattr(self.culture, attribute, float(value.to("mmol/L").value))
        self.log.append("command", {"name": name})
        return self.command_result(name)

    def _take_sample(self, volume: PropertyValue) -> dict[str, JsonValue]:
        """Draw `volume` of culture; its id and off-line analysis (the model's state now: an
        off-line analyser does not drift as the in-line sensor does)."""
        assert isinstance(volume, Quantity)
        wanted = float(volume.to("mL").value)
        culture = self.culture
        if culture.cells <= 0:
            raise CommandRejected(self.device_id, "take_sample", "no culture is running")
        if wanted >= culture.volume:
            raise CommandRejected(self.device_id, "take_sample", "the vessel holds less culture")
        density = culture.cells / culture.volume
        culture.withdraw(wanted)
        self._samples_taken += 1
        return {
            "sample_id": f"LCG-SIM-1-S{self._samples_taken:03d}",
            "viable_cell_density": {"value": float(f"{density:.4g}"), "unit": "{cells}/mL"},
            "glucose": {"value": round(culture.glucose, 3), "unit": "mmol/L"},
            "lactate": {"value": round(culture.lactate, 3), "unit": "mmol/L"},
            "ph": {"value": round(culture.ph, 3), "unit": "[pH]"},
        }

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

    def _open_calibration(self) -> None:
        """A calibration outside a program: the operator connects the standard (a prompt);
        answering it calibrates."""
        if self._calibration_prompt is not None:
            raise CommandRejected(self.device_id, "calibrate_sensor", "a calibration is open")
        self._calibrations += 1
        prompt_id = f"LCG-CAL{self._calibrations}"
        self._calibration_prompt = prompt_id
        self.sensor.state = "calibrating"
        self._publish("metabolite_sensor.calibration_state")
        text = f"Connect the calibration standard ({CALIBRATION_STANDARD}), then confirm."
        self.calibration_pin.hold()
        self.log.append("prompt", {"prompt_id": prompt_id, "text": text})
        self.report_prompt(OperatorPrompt(prompt_id, self.device_id, text, self.clock.now()))
        self.prompts_changed.set()

    def _advance(self) -> None:
        now = self.clock.monotonic()
        dt, self._last = now - self._last, now
        if dt > 0:
            was = self.sensor.state
            self.culture.advance(dt)
            self.sensor.advance(dt)
            if was != self.sensor.state == "drift_suspected":
                self.raise_alarm("sensor_drift")

    def _measure(self, channel: str) -> float | str:
        c, s = self.culture, self.sensor
        noise = self.random.gauss
        values: dict[str, float | str] = {
            "culture.temperature": 37.0 + noise(0, 0.05),
            "culture.temperature_setpoint": 37.0,
            "culture.co2": 5.0 + noise(0, 0.02),
            "culture.co2_setpoint": 5.0,
            "culture.volume": c.volume,
            "culture.ph": c.ph + noise(0, 0.005),
            "culture.dissolved_oxygen": c.dissolved_oxygen,
            "metabolite_sensor.glucose": max(0.0, c.glucose + s.glucose_offset + noise(0, 0.05)),
            "metabolite_sensor.lactate": max(0.0, c.lactate + s.lactate_offset + noise(0, 0.05)),
            "metabolite_sensor.glucose_consumption_rate": c.consumed_day,
            "metabolite_sensor.lactate_production_rate": c.produced_day,
            "metabolite_sensor.calibration_state": s.state,
            "metabolite_sensor.hours_since_calibration": s.hours_since_calibration,
            "feed_pump.flow_rate": c.perfusion,
            "feed_pump.fed_volume": c.fed,
            "feed_pump.state": "feeding" if c.perfusion > 0 else "idle",
            "feed_pump.reservoir_volume": c.reservoir,
            "bleed_pump.flow_rate": c.bleed,
            "bleed_pump.bled_volume": c.bled,
            "bleed_pump.perfusate_flow_rate": c.perfusion - c.bleed,
        }
        value = values[channel]
        return round(value, 4) if isinstance(value, float) else value

    def _publish(self, channel: str) -> None:
        """Publish `channel` now (a change that should not wait for the next sample)."""
        value, stamp = self._measure(channel), self.clock.now()
        published = self.truth.sample(channel, stamp, value)
        self.report_sample(self.sample(channel, value, stamp, seq=published.seq))

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
                for name in sorted(periods):
                    if due[name] <= at:
                        self._publish(name)
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
            self.prompts_changed.set()
