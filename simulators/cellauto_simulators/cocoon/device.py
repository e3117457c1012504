"""The Cocoon's process model: a culture chamber, cold zone, fluidics and cassette on the
engine's Bioreactor, driven by a program's steps (prime, seed, feeds, concentrate, harvest),
with the conditions behind its alarms. It knows no wire: `CocoonDevice` (server.py) serves it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

from cellauto.errors import FaultSpecError
from cellauto.schema import DeviceProfile, ProgramTemplate, PropertyValue, Quantity
from cellauto.sim import (
    Bioreactor,
    BioreactorParams,
    Clock,
    ControlLoop,
    CultureParams,
    CultureState,
    LoopParams,
    ProgramRunner,
    StepContext,
)
from cellauto.sim.device import ConditionAlarm, LimitAlarm, alarm_conditions
from cellauto.state import EXECUTE

COLD_ZONE_LOOP = LoopParams(setpoint=4.0, ambient=22.0, tau=1200, gain=-30.0, closed_loop=600)
"""Assumed reagent-zone cooling loop: a chiller pulls the zone below ambient."""
COLD_ZONE_NOISE = 0.05  # Cel, assumed
FLOW_NOISE = 0.2  # mL/min, assumed
TRANSFER_FLOW = {"prime": 50.0, "seed": 20.0, "wash": 30.0, "concentrate": 30.0, "harvest": 20.0}
"""Pump flow (mL/min, assumed) while a step of these unit operations runs."""
FEED_FLOW = 10.0  # mL/min while a feed runs (assumed)
FEED_PUMP_TIME = 600.0  # s a feed keeps the pump on (assumed)
LOW_GLUCOSE = 2.0  # mmol/L: feed early below this (assumed)
MIN_FEED_SPACING = 6 * 3600.0  # s between glucose-triggered feeds (assumed)
PRIME_VOLUME = 50.0  # mL of medium in the chamber after priming (assumed)
CONCENTRATED_VOLUME = 50.0  # mL after concentration (assumed)
OCCLUDED_PRESSURE = 200.0  # kPa with a blocked line (assumed)
LIMIT_ALARMS = {
    "chamber.temperature": "chamber_temperature_deviation",
    "cold_zone.temperature": "cold_zone_temperature_deviation",
    "chamber.co2": "gas_deviation",
    "fluidics.line_pressure": "pump_occlusion",
}
"""Channels whose profile alarm limits raise an alarm."""
STATE_ALARMS: dict[str, tuple[str, Any]] = {
    "cassette_not_detected": ("cassette.present", False),
    "cassette_integrity_failed": ("cassette.integrity", "fail"),
    "leak": ("fluidics.leak_detected", True),
    "reagent_missing": ("cold_zone.reagents_loaded", False),
    "power_loss": ("controller.mains_power", False),
    "remote_link_lost": ("controller.remote_link", False),
}
"""Alarms raised while a channel holds a value; injecting one forces that value."""
LOOP_ALARMS: dict[str, tuple[str, float]] = {
    "chamber_temperature_deviation": ("temperature", 39.5),
    "gas_deviation": ("co2", 8.0),
    "cold_zone_temperature_deviation": ("cold_zone", 11.0),
}
"""Alarms injected by driving a control loop to a target for the injection's duration."""
DEFAULT_LOOP_FAULT = 1800.0  # s a loop injection without a duration lasts
UNTESTED = "untested"  # cassette.integrity before a test (the first of its profile choices)
NEEDED_FROM = {"cassette.present": "install_cassette", "cold_zone.reagents_loaded": "load_reagents"}
"""A missing cassette or reagent is an alarm only in a run past the step that provides it."""
SETPOINTS = (
    "chamber.temperature_setpoint",
    "chamber.co2_setpoint",
    "cold_zone.temperature_setpoint",
)
"""Writable setpoint channels, each the setpoint of one control loop."""


def culture_params(seed: int) -> CultureParams:
    """The culture kinetics of one batch: donor-to-donor variability drawn from `seed` around
    the engine's T-cell defaults (spreads assumed: growth rate 6 %, lag 10 %, capacity 8 %,
    death rate 20 %), so each seed expands to its own plausible harvest."""
    rng = random.Random(f"cocoon-batch:{seed}")
    base = CultureParams()
    return replace(
        base,
        mu_max=base.mu_max * _clip(rng.gauss(1.0, 0.06), 0.8, 1.2),
        lag=base.lag * _clip(rng.gauss(1.0, 0.10), 0.7, 1.3),
        max_density=base.max_density * _clip(rng.gauss(1.0, 0.08), 0.75, 1.25),
        death_rate=base.death_rate * _clip(rng.gauss(1.0, 0.20), 0.4, 1.6),
    )


def _clip(x: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, x))


@dataclass
class CultureRun:
    """A run's process bookkeeping (its life cycle is the server's `RunLifecycle`)."""

    runner: ProgramRunner
    run_id: str
    needs: set[str] = field(default_factory=set)
    feeds: int = 0
    last_feed: float = 0.0
    pump_until: float = 0.0
    step_started: float = 0.0
    harvested: float = 0.0
    harvest_viability: float | None = None


class CocoonProcess:
    """One Cocoon's process (see the module doc); `elapsed()` is virtual time since power-on."""

    def __init__(self, profile: DeviceProfile, clock: Clock, *, seed: int, serial: str) -> None:
        self.profile = profile
        self.clock = clock
        self.serial = serial
        params = replace(BioreactorParams.from_profile(profile), culture=culture_params(seed))
        self.reactor = Bioreactor(params, seed=seed)
        medium = self.reactor.params.medium
        self.reactor.culture.state = CultureState(
            glucose=medium.glucose, bicarbonate=medium.bicarbonate
        )
        self.cold = ControlLoop(COLD_ZONE_LOOP)
        self.rng = self.reactor.rng
        self.conditions: list[LimitAlarm | ConditionAlarm] = [
            *(LimitAlarm.from_profile(profile, c, a) for c, a in LIMIT_ALARMS.items()),
            *(ConditionAlarm(c, a, bad) for a, (c, bad) in STATE_ALARMS.items()),
        ]
        self.forced: dict[str, Any] = {}
        """Channels an injected condition holds at a value."""
        self.pinned: set[str] = set()
        """Alarm codes held active whatever the readings (until released)."""
        self.run: CultureRun | None = None
        self.cassette = {
            "cassette.present": False,
            "cassette.id": "",
            "cassette.integrity": UNTESTED,
        }
        self.reagents_loaded = False
        self.flow = 0.0
        self.transferred = 0.0
        self._samples_taken = 0
        self._cassettes = 0
        self.origin = clock.monotonic()

    def elapsed(self) -> float:
        """Virtual seconds since the device started."""
        return self.clock.monotonic() - self.origin

    def advance(self) -> None:
        """Bring the chamber, cold zone and fluidics up to now."""
        t = self.elapsed()
        dt = t - self.reactor.time
        if dt > 0:
            self.reactor.advance_to(t)
            self.cold.step(dt)
            if self.flow > 0:
                self.transferred += self.flow * dt / 60.0

    def loop(self, setpoint: str) -> ControlLoop:
        """The control loop a setpoint channel (`SETPOINTS`) sets."""
        if setpoint == "cold_zone.temperature_setpoint":
            return self.cold
        return self.reactor.loops[setpoint.split(".")[1].removesuffix("_setpoint")]

    # -- conditions behind alarms --------------------------------------------------------------

    def inject(self, code: str) -> None:
        """Make the condition behind a profile alarm true until `release` (a loop excursion
        ends by itself after `DEFAULT_LOOP_FAULT`)."""
        if code in STATE_ALARMS:
            channel, value = STATE_ALARMS[code]
            self.forced[channel] = value
        elif code in LOOP_ALARMS:
            self._fault_loop(code).force(LOOP_ALARMS[code][1], DEFAULT_LOOP_FAULT)
        elif code == "pump_occlusion":
            self.forced["fluidics.line_pressure"] = OCCLUDED_PRESSURE
        else:
            known = ", ".join(a.code for a in self.profile.alarms)
            raise FaultSpecError(f"cocoon simulator: no alarm {code!r} to inject; alarms: {known}")

    def release(self, code: str) -> None:
        """End an injected condition (and a pin)."""
        self.pinned.discard(code)
        if code in STATE_ALARMS:
            self.forced.pop(STATE_ALARMS[code][0], None)
        elif code in LOOP_ALARMS:
            self._fault_loop(code).release()
        elif code == "pump_occlusion":
            self.forced.pop("fluidics.line_pressure", None)

    def _fault_loop(self, code: str) -> ControlLoop:
        loop = LOOP_ALARMS[code][0]
        return self.cold if loop == "cold_zone" else self.reactor.loops[loop]

    def alarm_states(self, values: dict[str, Any], active: dict[str, Any]) -> dict[str, bool]:
        """Whether each alarm's condition holds for the published `values` (`active`: the
        codes active now): a missing cassette or reagent only once a run needs it, a pinned
        code always."""
        conditions = alarm_conditions(self.conditions, values, active)
        needs = self.run.needs if self.run is not None else set()
        for code, (channel, _) in STATE_ALARMS.items():
            if channel in NEEDED_FROM and channel not in needs and channel not in self.forced:
                conditions[code] = False
        for code in self.pinned:
            conditions[code] = True
        return conditions

    # -- readings ------------------------------------------------------------------------------

    def measure(self, channel: str) -> Any:
        """A channel's value now (forced by an injected condition, or measured with noise)."""
        if channel in self.forced:
            return self.forced[channel]
        unit, variable = channel.split(".")
        run = self.run
        match channel:
            case "chamber.temperature_setpoint" | "chamber.co2_setpoint":
                return self.loop(channel).setpoint
            case "cold_zone.temperature_setpoint":
                return self.cold.setpoint
            case "cold_zone.temperature":
                return self.cold.value + self.rng.gauss(0.0, COLD_ZONE_NOISE)
            case "cold_zone.reagents_loaded":
                return self.reagents_loaded
            case "fluidics.flow_rate":
                return max(0.0, self.flow + self.rng.gauss(0.0, FLOW_NOISE)) if self.flow else 0.0
            case "fluidics.line_pressure":
                return 20.0 + 1.5 * self.flow + self.rng.gauss(0.0, 0.5) if self.flow else 0.0
            case "fluidics.volume_transferred":
                return self.transferred
            case "fluidics.leak_detected":
                return False
            case "controller.mains_power" | "controller.remote_link":
                return True
            case "controller.operator_prompt":
                return run.runner.prompt or "" if run else ""
            case "controller.step_index":
                return run.runner.status.step_index or 0 if run else 0
            case "controller.step_name":
                return run.runner.status.step_name or "" if run else ""
            case "controller.step_elapsed":
                return self.elapsed() - run.step_started if run else 0.0
            case "controller.run_elapsed":
                return run.runner.status.elapsed / 3600.0 if run else 0.0
        if unit == "cassette":
            return self.cassette[channel]
        return self.reactor.read(variable).value

    # -- a run's steps -------------------------------------------------------------------------

    def runner(self, program: ProgramTemplate, run_id: str, **options: Any) -> CultureRun:
        """A runner of `program` with this process's step hooks, as the current run."""
        runner = ProgramRunner(
            program,
            self.clock,
            device=self.serial,
            on_step_start={"*": self._step_start},
            on_step_end={"*": self._step_end},
            **options,
        )
        self.run = CultureRun(runner, run_id)
        return self.run

    def expansion(self) -> None:
        """Feeds during expansion: on schedule, or early when glucose runs low."""
        run = self.run
        if run is None or run.runner.outcome is not None:
            return
        status = run.runner.status
        t = self.elapsed()
        if run.pump_until and t >= run.pump_until:
            run.pump_until, self.flow = 0.0, 0.0
        step = run.runner.program.steps[status.step_index - 1] if status.step_index else None
        if step is None or step.unit_operation not in ("feed", "medium_exchange"):
            return
        if status.state != EXECUTE:
            return
        params = {**run.runner.parameters}
        interval = _number(params, "feed_interval", "h", _number(params, "exchange_interval", "h"))
        since = t - run.last_feed
        glucose = self.reactor.culture.state.glucose
        if since >= interval * 3600.0 or (glucose < LOW_GLUCOSE and since >= MIN_FEED_SPACING):
            self._feed(run, params)

    def _feed(self, run: CultureRun, params: dict[str, PropertyValue]) -> None:
        state = self.reactor.culture.state
        if "exchange_fraction" in params:
            self.reactor.exchange(state.volume * _number(params, "exchange_fraction", "%") / 100)
        else:
            target = _number(params, "culture_volume", "mL", 200.0)
            room = target - state.volume
            if room > 1.0:
                self.reactor.feed(min(room, 0.25 * target))
            else:
                self.reactor.exchange(0.5 * state.volume)
        run.feeds += 1
        run.last_feed = self.elapsed()
        run.pump_until = run.last_feed + FEED_PUMP_TIME
        self.flow = FEED_FLOW

    def _step_start(self, ctx: StepContext) -> None:
        assert self.run is not None
        self.advance()
        op = ctx.step.unit_operation
        self.run.step_started = self.elapsed()
        self.transferred = 0.0
        self.flow = TRANSFER_FLOW.get(op, 0.0)
        params = dict(ctx.parameters)
        if op == "integrity_test":
            self.cassette["cassette.integrity"] = "running"
        elif op == "prime":
            medium = self.reactor.params.medium
            self.reactor.culture.state = CultureState(
                glucose=medium.glucose, bicarbonate=medium.bicarbonate, volume=PRIME_VOLUME
            )
        elif op == "seed":
            cells = _number(
                params, "starting_cells", "{cells}", _number(params, "seeding_cells", "{cells}")
            )
            self.reactor.seed(cells, 0.5 * _number(params, "culture_volume", "mL", 200.0))
        elif op in ("feed", "medium_exchange"):
            self.run.last_feed = self.elapsed()

    def _step_end(self, ctx: StepContext) -> None:
        run = self.run
        assert run is not None
        self.advance()
        op = ctx.step.unit_operation
        if op == "install_cassette":
            self._cassettes += 1
            self.cassette |= {
                "cassette.present": True,
                "cassette.id": f"CAS-{self.serial}-{self._cassettes:04d}",
                "cassette.integrity": "untested",
            }
            run.needs.add("cassette.present")
        elif op == "integrity_test":
            self.cassette["cassette.integrity"] = "pass"
        elif op == "load_reagents":
            self.reagents_loaded = True
            run.needs.add("cold_zone.reagents_loaded")
        elif op == "concentrate":
            state = self.reactor.culture.state
            if state.volume > CONCENTRATED_VOLUME:
                self.reactor.culture.remove(state.volume - CONCENTRATED_VOLUME, cell_fraction=0)
        elif op == "harvest":
            run.harvest_viability = self.reactor.culture.state.viability
            run.harvested = self.reactor.harvest()
        self.flow = 0.0

    def ended(self) -> None:
        """The run's program ended: nothing it provided is needed any more."""
        if self.run is not None:
            self.run.needs.clear()

    def result_properties(self) -> dict[str, Any]:
        """The current run's result: harvested cells, viability, feeds."""
        run = self.run
        viability = self.reactor.culture.state.viability
        if run is not None and run.harvest_viability is not None:
            viability = run.harvest_viability
        return {
            "harvested_cells": {"value": run.harvested if run else 0.0, "unit": "{cells}"},
            "viability": {"value": round(100 * viability, 3), "unit": "%"},
            "feeds": {"value": run.feeds if run else 0, "unit": "1"},
        }

    # -- the operator's actions ----------------------------------------------------------------

    def ready(self, program: ProgramTemplate) -> bool:
        """Whether `program` can start: a cassette is seated, or the program seats its own."""
        seats = any(step.unit_operation == "install_cassette" for step in program.steps)
        return bool(self.measure("cassette.present")) or seats

    def take_sample(self, volume: float) -> str | None:
        """Draw `volume` mL of culture; the sample's id (None: not that much in the chamber)."""
        self.advance()
        if self.reactor.culture.state.volume <= volume:
            return None
        self.reactor.culture.remove(volume)
        self._samples_taken += 1
        return f"{self.serial}-S{self._samples_taken:03d}"

    def check_cassette(self) -> str:
        """Test the seated cassette's integrity (once); the result."""
        integrity = self.measure("cassette.integrity")
        if integrity in ("", "untested", "running"):
            integrity = self.cassette["cassette.integrity"] = "pass"
        return str(integrity)

    def release_cassette(self) -> None:
        """Take the cassette out."""
        self.cassette |= {
            "cassette.present": False,
            "cassette.id": "",
            "cassette.integrity": UNTESTED,
        }


def _number(
    params: dict[str, PropertyValue], name: str, unit: str = "1", default: float = 0.0
) -> float:
    value = params.get(name)
    if isinstance(value, Quantity):
        return value.to(unit).value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default
