"""The simulated ACC-200 PLC: its register map served by `cellauto.sim.servers.modbus.MapServer`,
its runs on the kit's `RunLifecycle`, ten vessels on the process model, an event
ring, alarm bits, recipe download and the image share (schemas/protocols/acc200.md).

The PLC publishes its process image once per scan (`scan` virtual s): every channel of the
image is published in each scan, numbered by `process.seq` and stamped by `process.time`.
Commands (coils) act within the request that sets them; an illegal one is exception 03.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cellauto.errors import InvalidTransition
from cellauto.protocols import state_named
from cellauto.schema import DeviceProfile, ProgramStep, ProgramTemplate, Quantity
from cellauto.schema.programs import Outcome
from cellauto.sim import Clock, ProgramRunner, RunEvent, StepContext
from cellauto.sim.device import ClockPin, EventLog, LimitAlarm, alarm_reaction
from cellauto.sim.lifecycle import RUN_ENDS, NoSuchPrompt, RunLifecycle, SimRun, StateCause
from cellauto.sim.servers.modbus import MapServer
from cellauto.sim.truth import GroundTruth
from cellauto.state import EXECUTE, IDLE, STOPPED, StateCommand, StateMachine, Transition
from cellauto.transport.modbus import RegisterMap, decode, encode, recipe_crc
from cellauto.transport.modbus.codec import Value

from .process import STORE_VOLUME, VESSEL_MEDIUM, Environment, Vessel, make_vessels
from .share import write_image

ILLEGAL_VALUE = 3
DEVICE_FAILURE = 4
EVENT_KINDS = {
    "state": 1,
    "step": 2,
    "alarm_raised": 3,
    "alarm_cleared": 4,
    "prompt": 5,
    "image": 6,
    "medium_change": 7,
    "run_end": 8,
}
END_STATES = {outcome: state for state, outcome in RUN_ENDS.items()}
LIMIT_ALARMS = {
    "incubator.temperature": "temperature_deviation",
    "incubator.co2": "gas_deviation",
    "incubator.humidity": "humidity_low",
    "medium_storage.temperature": "medium_storage_temperature",
    "medium_storage.medium_volume": "medium_low",
    "fluidics.circuit_pressure": "circuit_pressure_high",
}
STATE_COILS = {
    1: StateCommand.STOP,
    2: StateCommand.HOLD,
    3: StateCommand.UNHOLD,
    4: StateCommand.SUSPEND,
    5: StateCommand.UNSUSPEND,
    6: StateCommand.ABORT,
    7: StateCommand.CLEAR,
    8: StateCommand.RESET,
}
BLOCKED_PRESSURE = 85.0  # kPa with a blocked line (assumed)
FLOW = 10.0  # mL/min while a pump runs (assumed)
PARAMETERS = (
    "vessel_count",
    "exchange_interval",
    "exchange_volume",
    "imaging_interval",
    "seeding_density",
    "target_cells",
)


@dataclass
class _Run:
    """A run's culture bookkeeping (its life cycle is the device's `RunLifecycle`)."""

    runner: ProgramRunner
    number: int
    parameters: dict[str, float]
    culturing: bool = False
    next_change: dict[int, float] = field(default_factory=dict)
    next_image: dict[int, float] = field(default_factory=dict)


class Acc200Device:
    """One simulated ACC-200 serving its register map (see the module doc)."""

    def __init__(
        self,
        profile: DeviceProfile,
        regmap: RegisterMap,
        clock: Clock,
        *,
        seed: int,
        share: Path,
        scan: float,
        port: int = 0,
        truth: GroundTruth | None = None,
    ) -> None:
        self.profile = profile
        self.map = regmap
        self.clock = clock
        self.seed = seed
        self.share = share
        self.scan_period = scan
        self.serial = f"SIM{seed:04d}"
        self.truth = truth if truth is not None else GroundTruth()
        self.log = EventLog(clock, self.truth)
        self.server = MapServer(regmap, port=port)
        self.server.record_requests = False
        self.server.on_request.append(self._on_request)
        self.machine = StateMachine(self.serial, initial=IDLE)
        self.runs = RunLifecycle(self.machine, self)
        self.rng = random.Random(f"acc200:{seed}")
        self.env = Environment(self.rng)
        self.vessels: list[Vessel] = make_vessels(seed, "")
        self.setpoints = {
            name: float(ch.setpoint.value)
            for name, ch in profile.channels().items()
            if ch.setpoint is not None
        }
        self.recipe: tuple[ProgramTemplate, dict[str, float], int] | None = None
        self.run: _Run | None = None
        self.run_count = 0
        self.images = 0
        self.scans = 0
        self.prompt_seq = 0
        self.prompt_step = 0
        self.alarms: dict[str, tuple[str, bool]] = {}  # code -> (alarm id, acknowledged)
        self.forced: set[str] = set()
        self.failing_images = False
        self.blocked = False
        self.pump_fault = False
        self.pumping_until = 0.0
        self.selector = 0
        self.microscope_vessel = 0
        self.status_seq = 0
        self.values: dict[str, Value] = {}
        self._codes = {
            state_named(label): int(code)
            for code, label in regmap.entry("device.state").register.states.items()
        }
        self._bits = {r.alarm: r.address for r in regmap.discrete if r.alarm}
        self._limits = [LimitAlarm.from_profile(profile, c, a) for c, a in LIMIT_ALARMS.items()]
        self._published = [
            name for name in profile.channels() if regmap.entry(name).table in ("input", "discrete")
        ]
        self._pulses: list[int] = []
        self._start_pin = ClockPin(clock)
        self._tasks: list[asyncio.Task[Any]] = []
        self._writer: asyncio.Future[None] | None = None
        self._holding: dict[str, Value] = {}
        self.tearing: dict[str, list[Value]] = {}
        """Entries that take the next of their values before every request (see `tear`)."""
        self._origin = clock.monotonic()
        self._last_scan = self._origin

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve: write identity and the first image, start scanning."""
        await self.server.start()
        await self._identity()
        await self._write_setpoints()
        await self._publish_scan()
        await self._write_status()
        self._start_pin.hold()  # at speed=max time starts with the first request
        self._tasks.append(asyncio.create_task(self._scanner(), name="acc200 scan"))

    async def stop(self) -> None:
        await self.runs.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._start_pin.release()
        await self.server.stop()

    async def disconnect(self, duration: float) -> None:
        """Drop every client and stop listening for `duration` virtual s."""
        await self.server.stop()
        try:
            await self.clock.sleep(duration)
        finally:
            await self.server.restart()

    async def _identity(self) -> None:
        await self._set_many(
            {
                "identity.map_major": int(self.map.map_version.split(".")[0]),
                "identity.map_minor": int(self.map.map_version.split(".")[1]),
                "identity.manufacturer": "cellauto sim",
                "identity.model": "ACC-200 (sim)",
                "identity.serial_number": self.serial,
                "identity.firmware": "sim 1",
                "identity.vessel_slots": 10,
                "images.share": str(self.share),
            }
        )

    async def _set_many(self, values: dict[str, Value]) -> None:
        for name, value in values.items():
            await self.server.set(name, value)

    # -- scans ---------------------------------------------------------------------------------

    async def _scanner(self) -> None:
        k = 0
        while True:
            k += 1
            await self.clock.sleep_until(self._origin + k * self.scan_period)
            with self.clock.busy():
                self._advance()
                self._activities()
                await self._publish_scan()
                self._check_alarms()
                await self._write_status()

    def _elapsed(self) -> float:
        return self.clock.monotonic() - self._origin

    def _interval(self) -> float:
        return 3600.0 * self.run.parameters.get("exchange_interval", 48.0) if self.run else 0.0

    def _advance(self) -> None:
        now = self.clock.monotonic()
        dt, self._last_scan = now - self._last_scan, now
        for vessel in self.vessels:
            vessel.advance(dt, self._interval())

    def _measure(self) -> dict[str, Value]:
        now = self._elapsed()
        pumping = now < self.pumping_until
        flow = 0.0 if not pumping or self.pump_fault else FLOW + self.rng.gauss(0.0, 0.1)
        pump_state = 2 if self.pump_fault else (1 if pumping else 0)
        pressure = BLOCKED_PRESSURE if self.blocked else (12.0 if pumping else 2.0)
        values: dict[str, Value] = dict(self.env.read(self.setpoints))
        loaded = [v for v in self.vessels if v.state != "empty"]
        values |= {
            "fluidics.circuit_pressure": pressure + self.rng.gauss(0.0, 0.2),
            "fluidics.dispensed_volume": 0.0,
            "fluidics.gas_flow_rate": 50.0 + self.rng.gauss(0.0, 0.5) if loaded else 0.0,
            "fluidics.leak_detected": "circuit_leak" in self.forced,
            "feed_pump.flow_rate": flow,
            "feed_pump.state": pump_state,
            "waste_pump.flow_rate": flow,
            "waste_pump.state": pump_state,
            "valves.selector": self.selector if pumping else 0,
            "valves.feed": 1 if pumping else 0,
            "valves.waste": 1 if pumping else 0,
            "valves.gas": 1 if loaded else 0,
            "microscope.state": 4 if self.failing_images else 0,
            "microscope.vessel": self.microscope_vessel,
            "microscope.images_captured": self.images,
            "vessels.loaded": sum(1 << (v.index - 1) for v in loaded),
            "vessels.loaded_count": len(loaded),
            "vessels.total_cells": sum(v.cells for v in self.vessels),
        }
        for v in self.vessels:
            values |= {
                f"vessel{v.index}.state": _VESSEL_STATES[v.state],
                f"vessel{v.index}.medium_volume": v.medium_volume,
                f"vessel{v.index}.confluency": 100.0 * v.confluency,
                f"vessel{v.index}.cells": v.cells,
                f"vessel{v.index}.medium_changes": v.medium_changes,
                f"vessel{v.index}.last_image": v.last_image,
            }
        return values

    async def _publish_scan(self) -> None:
        """One scan: every published channel gets a new value, `process.seq` counts it."""
        self.scans += 1
        now = self.clock.now()
        values = self._measure()
        values["process.seq"] = self.scans
        values["process.time"] = int(now.timestamp())
        values["vessels.seq"] = self.scans & 0xFFFF
        self.values = values
        for name, value in values.items():
            await self.server.set(name, value)
        stamp = now.replace(microsecond=0)
        for name in self._published:
            self.truth.sample(name, stamp, _truth(self._as_read(name, values[name])))

    def _as_read(self, name: str, value: Value) -> Value:
        """`value` as a client reads it: through the register's type (float32), as a label."""
        register = self.map.entry(name).register
        value = decode(register, encode(register, value))
        return register.states.get(str(value), value) if register.states else value

    def tear(self, name: str, values: list[Value]) -> None:
        """From now on `name` takes the next of `values` before every request, as a PLC whose
        scan updates it between any two requests (bumping `process.seq`): read in one request
        it is always one of them, read in two it tears."""
        self.tearing[name] = list(values)

    # -- the culture ---------------------------------------------------------------------------

    def _activities(self) -> None:
        run = self.run
        if run is None or not run.culturing or run.runner.state != EXECUTE:
            return
        now = self._elapsed()
        for i, due in sorted(run.next_change.items()):
            if now >= due:
                self.medium_change(i, run.parameters.get("exchange_volume", 10.0))
                run.next_change[i] = due + self._interval()
        for i, due in sorted(run.next_image.items()):
            if now >= due:
                self.capture(i)
                run.next_image[i] = due + 3600.0 * run.parameters.get("imaging_interval", 24.0)

    def medium_change(self, index: int, volume: float) -> None:
        """Change `volume` mL of medium in vessel `index` through the circuit."""
        vessel = self.vessels[index - 1]
        if self.pump_fault or self.blocked:
            self.raise_alarm("pump_failure" if self.pump_fault else "circuit_pressure_high")
            return
        self.env.store_volume = max(0.0, self.env.store_volume - vessel.change_medium(volume))
        self.selector = index
        self.pumping_until = self._elapsed() + 60.0 * volume / FLOW
        self._event("medium_change", index, volume, vessel=index)

    def capture(self, index: int) -> None:
        """Observe vessel `index`: write its image to the share, or fail with the alarm."""
        vessel = self.vessels[index - 1]
        self.microscope_vessel = index
        if self.failing_images:
            self.raise_alarm("image_acquisition_failure")
            return
        self.images += 1
        vessel.confluency = vessel.cover
        vessel.last_image = self.images
        write_image(
            self.share,
            run_id=self.run.number if self.run else 0,
            vessel=index,
            number=self.images,
            confluency=vessel.confluency,
            time=self.clock.now(),
            seed=self.seed,
        )
        self._event("image", index, round(100 * vessel.confluency, 3), vessel=index)

    def _step_start(self, ctx: StepContext) -> None:
        run = self.run
        assert run is not None
        op = ctx.step.unit_operation
        count = int(run.parameters.get("vessel_count", 10))
        active = self.vessels[:count]
        if op == "prime":
            for v in active:
                v.state, v.medium_volume = "priming", VESSEL_MEDIUM
        elif op == "seed":
            for v in active:
                v.state = "seeding"
        elif op == "medium_exchange":
            run.culturing = True
            now = self._elapsed()
            interval = self._interval()
            imaging = 3600.0 * run.parameters.get("imaging_interval", 24.0)
            for v in active:
                run.next_change.setdefault(v.index, now + interval + 60.0 * v.index)
                run.next_image.setdefault(v.index, now + imaging + 60.0 * v.index)
        elif op == "passage":
            for v in active:
                v.capacity *= 4.0  # moved into a vessel area four times larger (assumed)
        elif op == "capture_image":
            for v in active:
                self.capture(v.index)

    def _step_end(self, ctx: StepContext) -> None:
        run = self.run
        assert run is not None
        op = ctx.step.unit_operation
        count = int(run.parameters.get("vessel_count", 10))
        active = self.vessels[:count]
        if op == "install_circuit":
            for v in active:
                v.state = "loaded" if v.state == "empty" else v.state
        elif op == "seed":
            ipsc = "ipsc" in run.runner.program.name.lower()
            for v in active:
                cells = (
                    run.parameters.get("seeding_density", 1e5) * v.medium_volume
                    if ipsc
                    else 0.06 * v.capacity
                )
                v.seed(cells)
        elif op == "medium_exchange":
            run.culturing = False
        elif op == "harvest":
            for v in active:
                v.state = "ready"

    # -- alarms --------------------------------------------------------------------------------

    def raise_alarm(self, code: str) -> str:
        """Raise a profile alarm now (or return the active one's id)."""
        active = self.alarms.get(code)
        if active is not None:
            return active[0]
        seq = self._event("alarm_raised", self._bits[code], 0.0, alarm=code)
        alarm_id = f"{code}-{seq}"
        self.alarms[code] = (alarm_id, False)
        spec = next(a for a in self.profile.alarms if a.code == code)
        self.runs.react_to(alarm_reaction(self.profile, spec.severity), alarm_id)
        self._schedule_bits()
        return alarm_id

    def clear_alarm(self, code: str) -> None:
        """The condition is gone: clear the alarm."""
        self.forced.discard(code)
        if self.alarms.pop(code, None) is not None:
            self._event("alarm_cleared", self._bits[code], 0.0, alarm=code)
            self._schedule_bits()

    def force(self, code: str) -> str:
        """Make an alarm's condition true until `release` (faults and injections)."""
        self.forced.add(code)
        if code == "image_acquisition_failure":
            self.failing_images = True
        elif code == "pump_failure":
            self.pump_fault = True
        elif code == "circuit_pressure_high":
            self.blocked = True
        elif code == "vessel_leak":
            self.vessels[0].leaking = True
        return self.raise_alarm(code)

    def release(self, code: str) -> None:
        self.forced.discard(code)
        if code == "image_acquisition_failure":
            self.failing_images = False
        elif code == "pump_failure":
            self.pump_fault = False
        elif code == "circuit_pressure_high":
            self.blocked = False
        elif code == "vessel_leak":
            self.vessels[0].leaking = False
        self.clear_alarm(code)

    def _check_alarms(self) -> None:
        for limit in self._limits:
            if limit.code in self.forced:
                continue
            value = self.values.get(limit.channel)
            if not isinstance(value, float):
                continue
            if limit.violated(value, limit.code in self.alarms):
                self.raise_alarm(limit.code)
            elif limit.code in self.alarms:
                self.clear_alarm(limit.code)

    def _schedule_bits(self) -> None:
        self._spawn(self._write_bits())

    async def _write_bits(self) -> None:
        bits = [0] * (max(self._bits.values()) + 1)
        for code in self.alarms:
            bits[self._bits[code]] = 1
        await self.server.set_words("discrete", 0, bits)
        await self.server.set("fluidics.leak_detected", "circuit_leak" in self.forced)
        await self._write_status()

    # -- events --------------------------------------------------------------------------------

    def _event(self, kind: str, code: int, value: float, **data: Any) -> int:
        """Log an event and put it in the ring; returns its sequence number."""
        entry = self.log.append(kind, {"code": code, "value": value, **data})
        words: list[int] = []
        for f in self.map.ring("events").fields:
            raw: Value = {
                "seq": entry.seq,
                "time": int(entry.time.timestamp()),
                "kind": EVENT_KINDS[kind],
                "code": code,
                "value": float(value),
            }[f.name]
            words += encode(f, raw)
        ring = self.map.ring("events")
        address = ring.base + ((entry.seq - 1) % ring.capacity) * ring.stride
        padded = words + [0] * (ring.stride - len(words))
        self._spawn(self._write_event(address, padded))
        return entry.seq

    async def _write_event(self, address: int, words: list[int]) -> None:
        await self.server.set_words("input", address, words)
        await self._write_status()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Apply register writes in the order the device made them (one chain of writes)."""
        previous = self._writer

        async def chained() -> None:
            if previous is not None and not previous.done():
                await asyncio.shield(previous)
            await coro

        self._writer = asyncio.ensure_future(chained())

    async def flush(self) -> None:
        """Wait until every register write so far is applied."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write_status(self) -> None:
        self.status_seq = (self.status_seq + 1) & 0xFFFF
        status = self.run.runner.status if self.run is not None else None
        await self._set_many(
            {
                "status.seq": self.status_seq,
                "device.state": self._codes[self.machine.state],
                "program.step": (status.step_index or 0) if status else 0,
                "program.step_count": status.step_count if status else 0,
                "program.run_id": self.run_count,
                "program.progress": 100.0 * status.progress if status else 0.0,
                "program.elapsed": status.elapsed if status else 0.0,
                "program.remaining": status.remaining if status else 0.0,
                "program.loaded_crc": self.recipe[2] if self.recipe else 0,
                "prompt.active": self.prompt_seq,
                "prompt.step": self.prompt_step,
                "alarm.count": len(self.alarms),
                "events.head": self.log.seq,
            }
        )

    async def _write_setpoints(self) -> None:
        await self._set_many(dict(self.setpoints))

    # -- the run -------------------------------------------------------------------------------

    # The run life cycle's events on the wire (RunPublisher); the wire names no cause.

    def run_state(self, transition: Transition, cause: StateCause) -> None:
        code = self._codes[transition.to_state]
        self._event("state", code, 0.0, state=str(code))

    def run_result(self, run: SimRun, outcome: Outcome) -> None:
        self._event("run_end", self._codes[END_STATES[outcome]], 0.0, outcome=outcome)

    def run_step(self, run: SimRun, event: RunEvent) -> None:
        self._event("step", event.status.step_index or 0, 0.0)

    def new_prompt_id(self, run: SimRun) -> str:
        return str(self.log.seq + 1)  # the prompt is known by its event's seq

    def run_prompt(self, run: SimRun, prompt_id: str, text: str) -> None:
        self.prompt_step = run.runner.status.step_index or 0
        self.prompt_seq = self._event("prompt", self.prompt_step, 0.0, text=text)

    def run_prompt_answered(self, run: SimRun, prompt_id: str, answer: str, user: str) -> None:
        self._prompt_closed()

    def _prompt_closed(self) -> None:
        self.prompt_seq = self.prompt_step = 0
        self._spawn(self._write_status())

    def _start(self) -> int | None:
        if self.recipe is None or self.machine.state not in (IDLE, STOPPED):
            return ILLEGAL_VALUE
        template, parameters, _crc = self.recipe
        for name in PARAMETERS:
            value = self._holding_parameter(name)
            if value:
                parameters = parameters | {name: value}
        self.run_count += 1
        self.vessels = make_vessels(self.seed + self.run_count - 1, template.name)
        runner = ProgramRunner(
            template,
            self.clock,
            device=self.serial,
            machine=self.machine,
            on_step_start={"*": self._step_start},
            on_step_end={"*": self._step_end},
        )
        if "culture_temperature" in parameters:
            self.setpoints["incubator.temperature_setpoint"] = parameters["culture_temperature"]
            self._spawn(self._write_setpoints())
        self.env.store_volume = STORE_VOLUME
        self.run = _Run(runner, self.run_count, parameters)
        self.runs.start(runner, str(self.run_count), on_end=self._prompt_closed)
        return None

    def _holding_parameter(self, name: str) -> float:
        return float(self._holding.get(f"parameter.{name}", 0.0))

    def _state_command(self, command: StateCommand) -> int | None:
        try:
            self.runs.command(command)
        except InvalidTransition:
            return ILLEGAL_VALUE
        return None

    # -- requests ------------------------------------------------------------------------------

    async def _on_request(
        self, kind: str, table: str, address: int, count: int, values: list[int] | None
    ) -> int | None:
        self._start_pin.release()
        await self.flush()
        for name, cycle in self.tearing.items():  # the value a scan updates between requests
            cycle.append(cycle.pop(0))
            self.scans += 1
            await self.server.set(name, cycle[0])
            await self.server.set("process.seq", self.scans)
        if self._pulses:
            pulses, self._pulses = self._pulses, []
            for coil in pulses:
                await self.server.set_words("coils", coil, [0])
        if values is None:
            return None
        if table == "holding":
            return await self._holding_write(address, values)
        if table != "coils":
            return None
        for offset, bit in enumerate(values):
            if bit:
                coil = address + offset
                code = await self._coil(coil)
                if code is not None:
                    return code
                self._pulses.append(coil)
        return None

    async def _holding_write(self, address: int, words: list[int]) -> int | None:
        """Check written setpoints against their ranges (exception 03 when outside)."""
        end = address + len(words)
        for name in self.setpoints:
            entry = self.map.entry(name)
            if address <= entry.address and entry.end <= end:
                part = words[entry.address - address : entry.end - address]
                value = float(decode(entry.register, part))
                spec = self.profile.channels()[name]
                rng = spec.eu_range
                if rng is not None and (
                    (rng.low is not None and value < rng.low)
                    or (rng.high is not None and value > rng.high)
                ):
                    return ILLEGAL_VALUE
                self.setpoints[name] = value
        return None

    async def _read_holding(self, *names: str) -> dict[str, Value]:
        out: dict[str, Value] = {}
        for name in names:
            entry = self.map.entry(name)
            out[name] = decode(entry.register, await self.server.get_raw(name))
        return out

    async def _coil(self, coil: int) -> int | None:
        if coil == 0:
            self._holding = await self._read_holding(*(f"parameter.{p}" for p in PARAMETERS))
            return self._start()
        if coil in STATE_COILS:
            return self._state_command(STATE_COILS[coil])
        if coil == 9:  # acknowledge the active alarm of bit alarm.acknowledge
            bit = int((await self._read_holding("alarm.acknowledge"))["alarm.acknowledge"])
            code = next((c for c, b in self._bits.items() if b == bit), None)
            if code is None or code not in self.alarms:
                return ILLEGAL_VALUE
            self.alarms[code] = (self.alarms[code][0], True)
            return None
        if coil == 16:
            return await self._commit_recipe()
        if coil == 17:
            return await self._answer_prompt()
        if coil in (24, 25, 27, 28):
            return await self._vessel_command(coil)
        if coil == 26:  # leak check: a leaking circuit raises its alarm
            if "circuit_leak" in self.forced:
                self.raise_alarm("circuit_leak")
            return None
        return ILLEGAL_VALUE

    async def _vessel_command(self, coil: int) -> int | None:
        got = await self._read_holding("command.vessel", "command.volume")
        index = int(got["command.vessel"])
        if not 1 <= index <= 10:
            return ILLEGAL_VALUE
        vessel = self.vessels[index - 1]
        running = self.runs.running
        if coil == 27:
            if vessel.state != "empty":
                return ILLEGAL_VALUE
            vessel.state = "loaded"
        elif coil == 28:
            if running:
                return ILLEGAL_VALUE
            vessel.state, vessel.cells, vessel.medium_volume = "empty", 0.0, 0.0
        elif vessel.state == "empty":
            return ILLEGAL_VALUE
        elif coil == 24:
            self.capture(index)
        else:
            volume = float(got["command.volume"])
            if not 1.0 <= volume <= 50.0:
                return ILLEGAL_VALUE
            self.medium_change(index, volume)
        return None

    async def _commit_recipe(self) -> int | None:
        got = await self._read_holding("recipe.length", "recipe.crc")
        length, crc = int(got["recipe.length"]), int(got["recipe.crc"])
        block = self.map.download("recipe")
        status = 1
        template: ProgramTemplate | None = None
        parameters: dict[str, float] = {}
        if self.machine.state not in (IDLE, STOPPED):
            status = 5
        elif length > 2 * block.data_words:
            status = 3
        else:
            words = await self.server.get_words("holding", block.data_address, (length + 1) // 2)
            payload = b"".join(w.to_bytes(2, "big") for w in words)[:length]
            if recipe_crc(payload) != crc:
                status = 2
            else:
                try:
                    template, parameters = parse_recipe(payload)
                except (ValueError, KeyError, TypeError, ValidationError):
                    status = 4
        if template is not None and status == 1:
            self.recipe = (template, parameters, crc)
        await self.server.set("recipe.status", status)
        await self._write_status()
        return None

    async def _answer_prompt(self) -> int | None:
        got = await self._read_holding("prompt.answer_for", "prompt.answer")
        answer = {1: "done", 2: "declined"}.get(int(got["prompt.answer"]))
        if answer is None:
            return ILLEGAL_VALUE
        try:
            self.runs.answer(str(int(got["prompt.answer_for"])), answer, "")
        except NoSuchPrompt:
            return ILLEGAL_VALUE
        return None


_VESSEL_STATES = {
    "empty": 0,
    "loaded": 1,
    "priming": 2,
    "seeding": 3,
    "culturing": 4,
    "medium_change": 5,
    "imaging": 6,
    "ready": 7,
    "fault": 8,
}


def parse_recipe(payload: bytes) -> tuple[ProgramTemplate, dict[str, float]]:
    """A recipe (protocol section 5) as a program template and its parameter values."""
    data = json.loads(payload.decode("utf-8"))
    steps = [
        ProgramStep(
            name=s["name"],
            unit_operation=s["op"],
            functional_unit=s.get("unit"),
            duration=Quantity(value=s["s"], unit="s") if s.get("s") else None,
            prompt=s.get("prompt"),
        )
        for s in data["steps"]
    ]
    template = ProgramTemplate(
        name=data["program"], version=data["version"], author="recipe", device="acc200", steps=steps
    )
    parameters = {str(k): float(v) for k, v in data.get("parameters", {}).items()}
    return template, parameters


def _truth(value: Value) -> float | str | bool:
    if isinstance(value, bool | str | float):
        return value
    return float(value)
