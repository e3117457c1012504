"""The simulated Cocoon: a culture chamber, cold zone, fluidics and cassette on the engine's
process model and program runner, with alarms, an event log, and the protocol's methods.

Every channel is updated at its profile sample period (channels without one when they change);
each update is one OPC UA data change with the device's virtual time as source timestamp. At
``speed=max`` an open operator prompt holds virtual time still: the operator answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import ValidationError

from cellauto.errors import FaultSpecError, InvalidTransition
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
    RunEvent,
    StepContext,
)
from cellauto.sim.alarms import AlarmBook, BookAlarm
from cellauto.sim.device import ClockPin, LimitAlarm, react
from cellauto.sim.families.opcua_log import OpcUaEventLogDevice
from cellauto.sim.params import Given, ParameterRefused, check_parameters
from cellauto.sim.sampling import Periodic
from cellauto.sim.servers.opcua import MethodFailed
from cellauto.sim.truth import GroundTruth
from cellauto.state import (
    ABORTING,
    COMPLETE,
    EXECUTE,
    IDLE,
    STOPPING,
    State,
    StateCommand,
    StateMachine,
    Transition,
)

from .address_space import (
    EVENT_TYPES,
    NAMESPACE,
    TABLES,
    VENDOR_STATES,
    build,
    channel_path,
    status_path,
)

_log = logging.getLogger("cellauto_simulators.cocoon")

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
SEVERITY = dict(TABLES.severities)  # alarm severity -> OPC UA Severity (cocoon.toml)
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
RUN_ENDS: dict[State, str] = {COMPLETE: "complete", STOPPING: "stopped", ABORTING: "aborted"}
"""A run's result event precedes the state event that ends it, with this outcome."""
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
"""State commands a running program takes (reset and clear are refused while it runs)."""
DEFAULT_LOOP_FAULT = 1800.0  # s a loop injection without a duration lasts
UNTESTED = "untested"  # cassette.integrity before a test (the first of its profile choices)
NEEDED_FROM = {"cassette.present": "install_cassette", "cold_zone.reagents_loaded": "load_reagents"}
"""A missing cassette or reagent is an alarm only in a run past the step that provides it."""


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
class _Run:
    runner: ProgramRunner
    run_id: str
    task: asyncio.Task[Any] | None = None
    needs: set[str] = field(default_factory=set)
    feeds: int = 0
    last_feed: float = 0.0
    pump_until: float = 0.0
    step_started: float = 0.0
    harvested: float = 0.0
    ended: bool = False


class CocoonDevice(OpcUaEventLogDevice):
    """One simulated Cocoon serving its protocol through `server` (see the module doc)."""

    SOURCE: ClassVar[str] = "Cocoon"

    def __init__(
        self,
        profile: DeviceProfile,
        clock: Clock,
        *,
        seed: int,
        serial: str,
        port: int = 0,
        truth: GroundTruth | None = None,
        anonymous: Literal["read", "operate"] = "read",
    ) -> None:
        self.profile = profile
        self.serial = serial
        self.channels = profile.channels()
        params = replace(BioreactorParams.from_profile(profile), culture=culture_params(seed))
        self.reactor = Bioreactor(params, seed=seed)
        medium = self.reactor.params.medium
        self.reactor.culture.state = CultureState(
            glucose=medium.glucose, bicarbonate=medium.bicarbonate
        )
        self.cold = ControlLoop(COLD_ZONE_LOOP)
        self.rng = self.reactor.rng
        self.machine = StateMachine(serial, initial=IDLE)
        super().__init__(
            clock,
            build(profile, self._identification(), self._handlers()),
            namespace=NAMESPACE,
            event_types=EVENT_TYPES,
            status_path=status_path,
            name=f"Cocoon simulator {serial}",
            port=port,
            anonymous=anonymous,
            truth=truth,
        )
        self.values: dict[str, Any] = {}
        self._status_of: dict[str, str] = {}
        self._on_change = [n for n, ch in self.channels.items() if ch.sample_period is None]
        self.limit_alarms = [
            LimitAlarm.from_profile(profile, c, a) for c, a in LIMIT_ALARMS.items()
        ]
        self.alarms = AlarmBook(profile, lambda _n: f"AL-{self.seq + 1:06d}", device="cocoon")
        self._alarm_list = "[]"
        self.forced: dict[str, Any] = {}
        self.pinned: set[str] = set()
        self.sensor_filter: Callable[[str, float], float | None] = lambda _c, v: v
        self.protocol: ProgramTemplate | None = None
        self.run: _Run | None = None
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
        self._origin = clock.monotonic()
        self._prompt_pin = ClockPin(clock)
        self._pending_answer = ("", "")

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve: the OPC UA server and event publisher (the family base), and the sampler."""
        await super().start()
        self.status["State"] = VENDOR_STATES[self.machine.state]
        self.spawn(self._sampler(), "sampler")

    async def stop(self) -> None:
        """Stop every task, any run and the server."""
        if self.run is not None and self.run.task is not None:
            self._tasks.append(self.run.task)
        self._prompt_pin.release()
        await super().stop()

    @property
    def _ns(self) -> int:
        return self.ns

    def elapsed(self) -> float:
        """Virtual seconds since the device started."""
        return self.clock.monotonic() - self._origin

    # -- alarm injection ---------------------------------------------------------------------

    def inject(self, code: str, duration: float | None = None) -> None:
        """Make the condition behind a profile alarm true (for `duration` virtual s, or until
        `release`): the device then raises the alarm as it would for the real condition."""
        if code in STATE_ALARMS:
            channel, value = STATE_ALARMS[code]
            self.forced[channel] = value
            if duration is not None:
                self.spawn(self._release_after(code, duration), f"release {code}")
        elif code in LOOP_ALARMS:
            loop, target = LOOP_ALARMS[code]
            control = self.cold if loop == "cold_zone" else self.reactor.loops[loop]
            control.force(target, duration or DEFAULT_LOOP_FAULT)
        elif code == "pump_occlusion":
            self.forced["fluidics.line_pressure"] = OCCLUDED_PRESSURE
            if duration is not None:
                self.spawn(self._release_after(code, duration), f"release {code}")
        else:
            known = ", ".join(a.code for a in self.profile.alarms)
            raise FaultSpecError(f"cocoon simulator: no alarm {code!r} to inject; alarms: {known}")

    def raise_now(self, code: str, duration: float | None = None) -> str:
        """Inject `code`'s condition and raise its alarm now (it stays active, whatever the
        readings, until `release` or the end of `duration`); returns the alarm id."""
        self.inject(code, duration)
        self.pinned.add(code)
        if duration is not None and code not in STATE_ALARMS and code != "pump_occlusion":
            self.spawn(self._release_after(code, duration), f"release {code}")
        active = self.alarms.active(code)
        return active.alarm_id if active is not None else self._raise_alarm(code)

    def release(self, code: str) -> None:
        """End an injected condition (the alarm clears at the next update)."""
        self.pinned.discard(code)
        if code in STATE_ALARMS:
            self.forced.pop(STATE_ALARMS[code][0], None)
        elif code == "pump_occlusion":
            self.forced.pop("fluidics.line_pressure", None)

    async def _release_after(self, code: str, duration: float) -> None:
        await self.clock.sleep(duration)
        self.release(code)

    # -- sampling ----------------------------------------------------------------------------

    async def _sampler(self) -> None:
        schedule = Periodic(self.profile)
        while True:
            await self.clock.sleep_until(self._origin + schedule.next_at)
            with self.clock.busy():
                self._advance()
                await self._poll_setpoints()
                self._expansion()
                at, names = schedule.pop_due()
                stamp = self.clock.at(self._origin + at)
                for name in names:
                    await self._publish_value(name, self._measure(name), stamp)
                await self._publish_changes()
                self._check_alarms()
                await self._publish_progress()

    async def _publish_changes(self) -> None:
        """Publish the channels without a sample period whose value changed."""
        for name in self._on_change:
            await self._publish_value(name, self._measure(name))

    async def _publish_value(
        self, channel: str, value: Any, period: datetime | None = None
    ) -> None:
        """Update a channel's variable. A periodic update (`period`: its instant
        ``origin + k * sample_period``, the source timestamp) is always written, so the k-th
        write of a channel is its publication k; an on-change channel's unchanged value and
        status is no data change."""
        status = "Good"
        if isinstance(value, float):
            filtered = self.sensor_filter(channel, value)
            if filtered is None:
                status, value = "BadSensorFailure", self.values.get(channel, value)
            else:
                value = filtered
        unchanged = self.values.get(channel) == value and self._status_of.get(channel) == status
        if unchanged and period is None:
            return
        self.values[channel] = value
        self._status_of[channel] = status
        now = period if period is not None else self.clock.now()
        await self.server.set(channel_path(self._ns, channel), value, now, status=status)
        self.truth.sample(channel, now, _truth_value(value))

    def _advance(self) -> None:
        t = self.elapsed()
        dt = t - self.reactor.time
        if dt > 0:
            self.reactor.advance_to(t)
            self.cold.step(dt)
            if self.flow > 0:
                self.transferred += self.flow * dt / 60.0

    async def _poll_setpoints(self) -> None:
        for channel, loop in (
            ("chamber.temperature_setpoint", self.reactor.loops["temperature"]),
            ("chamber.co2_setpoint", self.reactor.loops["co2"]),
            ("cold_zone.temperature_setpoint", self.cold),
        ):
            loop.setpoint = float(await self.server.get(channel_path(self._ns, channel)))

    def _measure(self, channel: str) -> Any:
        if channel in self.forced:
            return self.forced[channel]
        unit, variable = channel.split(".")
        match channel:
            case "chamber.temperature_setpoint":
                return self.reactor.loops["temperature"].setpoint
            case "chamber.co2_setpoint":
                return self.reactor.loops["co2"].setpoint
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
                return self.run.runner.prompt or "" if self.run else ""
            case "controller.step_index":
                return self.run.runner.status.step_index or 0 if self.run else 0
            case "controller.step_name":
                return self.run.runner.status.step_name or "" if self.run else ""
            case "controller.step_elapsed":
                return self.elapsed() - self.run.step_started if self.run else 0.0
            case "controller.run_elapsed":
                return self.run.runner.status.elapsed / 3600.0 if self.run else 0.0
        if unit == "cassette":
            return self.cassette[channel]
        return self.reactor.read(variable).value

    async def _publish_progress(self) -> None:
        if self.run is not None and self.run.runner.outcome is None:
            status = self.run.runner.status
            await self._set_status(Progress=status.progress, RemainingTime=status.remaining)

    async def _set_status(self, **values: Any) -> None:
        await self.set_status(**values)

    # -- process -----------------------------------------------------------------------------

    def _expansion(self) -> None:
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

    def _feed(self, run: _Run, params: dict[str, PropertyValue]) -> None:
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
        self._advance()
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
        self._advance()
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
            run.harvested = self.reactor.harvest()
        self.flow = 0.0

    # -- alarms ------------------------------------------------------------------------------

    def _check_alarms(self) -> None:
        active = self.alarms.active_codes()
        conditions: dict[str, bool] = {}
        for limit in self.limit_alarms:
            value = self.values.get(limit.channel)
            if isinstance(value, float):
                violated = limit.violated(value, limit.code in active)
                conditions[limit.code] = conditions.get(limit.code, False) or violated
        needs = self.run.needs if self.run is not None else set()
        for code, (channel, bad) in STATE_ALARMS.items():
            needed = channel not in NEEDED_FROM or channel in needs or channel in self.forced
            conditions[code] = needed and self.values.get(channel) == bad
        for code in self.pinned:
            conditions[code] = True
        for code, on in conditions.items():
            if on and code not in active:
                self._raise_alarm(code)
            elif not on and code in active:
                for alarm in self.alarms.clear(code):
                    self._alarm_event(alarm, "cleared", "")

    def _raise_alarm(self, code: str) -> str:
        alarm = self.alarms.raise_(code)
        assert alarm is not None  # callers raise only codes not active
        self._alarm_event(alarm, "raised", "")
        if self._running() and self.run is not None:
            with contextlib.suppress(InvalidTransition):
                react(self.alarms.reaction(alarm), self.run.runner)
        return alarm.alarm_id

    def _alarm_event(self, alarm: BookAlarm, status: str, user: str) -> None:
        spec = alarm.spec
        self.event(
            "alarm",
            f"{spec.title} ({status})",
            severity=SEVERITY[spec.severity],
            AlarmId=alarm.alarm_id,
            Code=alarm.code,
            Status=status,
            SourceUnit=spec.functional_unit or "",
            User=user,
        )
        held = [
            {"AlarmId": a.alarm_id, "Code": a.code, "Active": a.active}
            | {"Acknowledged": a.acknowledged}
            for a in self.alarms
        ]
        self._alarm_list = json.dumps(held)

    # -- events (the OPC UA event-log family base publishes them) --------------------------

    def status_for(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        if entry["Kind"] == "state":
            return {"State": entry["State"]}
        if entry["Kind"] == "alarm":
            return {"ActiveAlarms": self._alarm_list}
        return {}

    async def after_events(self) -> None:
        await self._publish_changes()

    # -- state -------------------------------------------------------------------------------

    def _transition(self, transition: Transition | None) -> None:
        if transition is None:
            return
        command = transition.command
        cause = f"command:{command}" if command is not None else "done"
        outcome = RUN_ENDS.get(transition.to_state)
        if outcome is not None and self.run is not None and not self.run.ended:
            self.run.ended = True
            self._result_event(self.run, outcome)
        self.event(
            "state",
            f"{VENDOR_STATES[transition.from_state]} -> {VENDOR_STATES[transition.to_state]}",
            State=VENDOR_STATES[transition.to_state],
            PreviousState=VENDOR_STATES[transition.from_state],
            Cause=cause,
        )

    def _result_event(self, run: _Run, outcome: str) -> None:
        runner = run.runner
        state = self.reactor.culture.state
        properties = {
            "harvested_cells": {"value": run.harvested, "unit": "{cells}"},
            "viability": {"value": round(100 * state.viability, 3), "unit": "%"},
            "feeds": {"value": run.feeds, "unit": "1"},
        }
        self.event(
            "result",
            f"run {run.run_id} {outcome}",
            RunId=run.run_id,
            Outcome=outcome,
            Started=runner.started or self.clock.now(),
            Stopped=self.clock.now(),
            PauseTime=runner.paused,
            Properties=json.dumps(properties),
        )

    def _on_run_event(self, event: RunEvent) -> None:
        run = self.run
        assert run is not None
        if event.kind == "state":
            self._transition(event.transition)
        elif event.kind == "step_started":
            status = event.status
            assert event.step is not None
            self.event(
                "step",
                event.step.name,
                RunId=run.run_id,
                StepNumber=status.step_index or 0,
                StepName=event.step.name,
                UnitOperation=event.step.unit_operation,
                Progress=status.progress,
                RemainingTime=status.remaining,
            )
        elif event.kind == "prompt":
            self.event(
                "prompt",
                event.detail,
                severity=300,
                PromptId=self._prompt_id(),
                RunId=run.run_id,
                Text=event.detail,
                Status="open",
                User="",
                Answer="",
            )
        self._sync_prompt_hold()

    def _prompt_id(self) -> str:
        assert self.run is not None
        return f"{self.run.run_id}-{self.run.runner.status.step_index}"

    def _sync_prompt_hold(self) -> None:
        self._prompt_pin.set(self.run is not None and self.run.runner.prompt is not None)

    async def _run_program(self, run: _Run) -> None:
        await run.runner.run()
        self._sync_prompt_hold()
        run.needs.clear()

    def _state_command(self, command: StateCommand) -> int:
        run = self.run
        try:
            act = getattr(run.runner, str(command), None) if run is not None else None
            if run is not None and run.runner.outcome is None and command in RUNNER_COMMANDS:
                assert act is not None
                act()
            elif run is not None and run.runner.outcome is None:  # reset/clear: not to a run
                raise InvalidTransition(self.serial, str(self.machine.state), str(command), ())
            else:
                self._transition(self.machine.command(command))
                while self.machine.state.is_acting:
                    self._transition(self.machine.state_complete())
        except InvalidTransition as exc:
            raise MethodFailed("BadInvalidState", str(exc)) from None
        self._sync_prompt_hold()
        return self.seq

    # -- methods (protocol section 3) --------------------------------------------------------

    def _handlers(self) -> dict[str, Callable[..., Any]]:
        def state_method(command: StateCommand) -> Callable[[], Any]:
            async def handler() -> tuple[str, int]:
                seq = self._state_command(command)
                return VENDOR_STATES[self.machine.state], seq

            return handler

        commands = {
            "Hold": StateCommand.HOLD,
            "Unhold": StateCommand.UNHOLD,
            "Suspend": StateCommand.SUSPEND,
            "Unsuspend": StateCommand.UNSUSPEND,
            "Stop": StateCommand.STOP,
            "Abort": StateCommand.ABORT,
            "Clear": StateCommand.CLEAR,
            "Reset": StateCommand.RESET,
        }
        return {
            **{name: state_method(cmd) for name, cmd in commands.items()},
            "LoadProtocol": self._load_protocol,
            "Start": self._start,
            "AcknowledgePrompt": self._acknowledge_prompt,
            "AcknowledgeAlarm": self._acknowledge_alarm,
            "TakeSample": self._take_sample,
            "CheckCassette": self._check_cassette,
            "ValidateProtocol": self._validate_protocol,
            "ReleaseCassette": self._release_cassette,
            "ReadEventLog": self._read_event_log,
        }

    def _running(self) -> bool:
        return self.run is not None and self.run.runner.outcome is None

    async def _load_protocol(self, definition: str, content_hash: str) -> None:
        if self._running():
            raise MethodFailed("BadInvalidState", "a protocol is running")
        try:
            data = json.loads(definition)
        except ValueError as exc:
            raise MethodFailed("BadInvalidArgument", f"definition is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MethodFailed("BadInvalidArgument", "definition is not a JSON object")
        try:
            computed = protocol_hash(data)
        except ValueError:
            raise MethodFailed("BadInvalidArgument", "definition holds NaN or infinity") from None
        if content_hash != computed:
            raise MethodFailed("BadInvalidArgument", "content hash does not match the definition")
        try:
            template = ProgramTemplate.model_validate(data | {"content_hash": ""})
        except ValidationError as exc:
            raise MethodFailed("BadInvalidArgument", f"invalid protocol: {exc}") from None
        self.protocol = template

    async def _start(
        self, run_id: str, batch_id: str, patient_id: str, parameters: str
    ) -> tuple[float, int]:
        if self.protocol is None:
            raise MethodFailed("BadInvalidState", "no protocol loaded; call LoadProtocol first")
        try:
            self.machine.check(StateCommand.START)
        except InvalidTransition as exc:
            raise MethodFailed("BadInvalidState", str(exc)) from None
        params = self._parameters(self.protocol, parameters)
        if not self._measure("cassette.present") and not _installs_cassette(self.protocol):
            raise MethodFailed("BadResourceUnavailable", "no cassette seated")
        runner = ProgramRunner(
            self.protocol,
            self.clock,
            device=self.serial,
            machine=self.machine,
            parameters=params,
            on_step_start={"*": self._step_start},
            on_step_end={"*": self._step_end},
        )
        run = self.run = _Run(runner, run_id or f"{self.serial}-{self.seq}")
        runner.add_listener(self._on_run_event)
        await self._set_status(
            RunId=run.run_id, ProgramName=self.protocol.name, BatchId=batch_id, PatientId=patient_id
        )
        started = asyncio.Event()
        remove = runner.add_listener(lambda _e: started.set())
        run.task = asyncio.create_task(self._run_program(run), name=f"cocoon run {run.run_id}")
        await started.wait()
        remove()
        return runner.status.remaining, self.seq

    def _parameters(self, protocol: ProgramTemplate, text: str) -> dict[str, PropertyValue]:
        """Start's Parameters (protocol section 3) checked against the protocol's own."""
        try:
            raw = json.loads(text or "{}")
        except ValueError as exc:
            raise MethodFailed("BadInvalidArgument", f"Parameters is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise MethodFailed("BadInvalidArgument", "Parameters is not a JSON object")
        try:
            given = {name: _given(value) for name, value in raw.items()}
            return check_parameters(protocol.parameters, given, what=protocol.name)
        except ParameterRefused as exc:
            raise MethodFailed("BadInvalidArgument", exc.reason) from None

    async def _acknowledge_prompt(self, prompt_id: str, user: str, answer: str) -> int:
        run = self.run
        if run is None or run.runner.prompt is None or prompt_id != self._prompt_id():
            raise MethodFailed("BadNotFound", f"no open prompt {prompt_id!r}")
        self.event(
            "prompt",
            run.runner.prompt,
            severity=300,
            PromptId=prompt_id,
            RunId=run.run_id,
            Text=run.runner.prompt,
            Status="answered",
            User=user,
            Answer=answer,
        )
        run.runner.answer_prompt(answer)
        return self.seq

    async def _acknowledge_alarm(self, alarm_id: str, user: str) -> int:
        alarm = self.alarms.get(alarm_id)
        if alarm is None or not self.alarms.acknowledge(alarm):
            raise MethodFailed("BadNotFound", f"no unacknowledged alarm {alarm_id!r}")
        self._alarm_event(alarm, "acknowledged", user)
        return self.seq

    async def _take_sample(self, volume: float) -> str:
        spec = next(c for c in self.profile.commands if c.name == "take_sample")
        try:
            check_parameters(spec.parameters, {"volume": Given(volume)}, what="TakeSample")
        except ParameterRefused as exc:
            raise MethodFailed("BadInvalidArgument", exc.reason) from None
        self._advance()
        if self.reactor.culture.state.volume <= volume:
            raise MethodFailed("BadInvalidState", "not enough culture in the chamber")
        self.reactor.culture.remove(volume)
        self._samples_taken += 1
        return f"{self.serial}-S{self._samples_taken:03d}"

    async def _check_cassette(self) -> str:
        if not self._measure("cassette.present"):
            raise MethodFailed("BadResourceUnavailable", "no cassette seated")
        integrity = self._measure("cassette.integrity")
        if integrity in ("", "untested", "running"):
            integrity = self.cassette["cassette.integrity"] = "pass"
        return str(integrity)

    async def _validate_protocol(self) -> str:
        problems = []
        if self.protocol is None:
            problems.append("no protocol loaded")
        elif not self._measure("cassette.present") and not _installs_cassette(self.protocol):
            problems.append("no cassette seated")
        return json.dumps(problems)

    async def _release_cassette(self) -> None:
        if self._running():
            raise MethodFailed("BadInvalidState", "a protocol is running")
        self.cassette |= {
            "cassette.present": False,
            "cassette.id": "",
            "cassette.integrity": UNTESTED,
        }

    async def _read_event_log(self, first: int) -> tuple[str, int]:
        return self.read_log(first)

    def _identification(self) -> dict[str, str]:
        return {
            "Manufacturer": "cellauto (simulated Lonza Cocoon)",
            "Model": "Cocoon Platform (simulator)",
            "SerialNumber": self.serial,
            "SoftwareRevision": "cellauto-sim 1",
            "DeviceRevision": "protocol v1",
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


def _given(value: Any) -> Given:
    """A Parameters entry: a plain value, or ``{"value": v, "unit": u}``."""
    if isinstance(value, dict):
        if set(value) != {"value", "unit"} or not isinstance(value["unit"], str):
            raise ParameterRefused(None, f"{value!r} is not a value or {{value, unit}}")
        return Given(value["value"], value["unit"])
    return Given(value)


def _installs_cassette(protocol: ProgramTemplate) -> bool:
    """Whether the protocol seats its own cassette (so none need be seated to start it)."""
    return any(step.unit_operation == "install_cassette" for step in protocol.steps)


def protocol_hash(definition: dict[str, Any]) -> str:
    """LoadProtocol's ContentHash of a definition (protocol section 3): SHA-256, lower-case hex,
    of its canonical JSON without the ``content_hash`` member."""
    body = {k: v for k, v in definition.items() if k != "content_hash"}
    text = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _truth_value(value: Any) -> float | str | bool:
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return float(value)
    return str(value)
