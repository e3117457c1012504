"""The Modbus family base for adapters: `ModbusDevice`, a PLC-run device whose register map
follows cellauto's PLC conventions (docs/modbus.md, "A PLC device"), so that a new device of the
family is its map, its profile and what is genuinely its own (ADR 0014).

A background poll reads the status block and the process image in one request; a new scan
(`process.seq`) publishes every channel of the image with the device's scan counter as
`Sample.seq` and the scan time (`process.time`) as timestamp; a moved `events.head` reads the
event ring from the last sequence number applied, so after a dropped link nothing is read twice
and what the ring no longer holds is one event naming the lost range. Programs are downloaded
as recipes (length, CRC-32, commit coil), state commands are `cmd.<command>` coils, prompts are
answered through `prompt.*` registers, alarms are discrete-input bits with ring events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol, cast

from pydantic import JsonValue

from cellauto.adapter.options import (
    CAPTURE,
    CONNECTION,
    HEARTBEAT,
    TIMEOUT,
    Options,
    Values,
    host_port,
    number,
    reconnect_policy,
)
from cellauto.driver import Device, OperatorPrompt, TimeSource
from cellauto.errors import ConnectionLost, DeviceError, DeviceLost, ProtocolError
from cellauto.protocols import state_named
from cellauto.registry import DeviceUrl
from cellauto.schema import (
    Alarm,
    DeviceInfo,
    DeviceProfile,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quantity,
    Sample,
)
from cellauto.schema._base import canonical_json
from cellauto.schema.programs import ResultFile
from cellauto.state import IDLE, STOPPED, State, StateCommand
from cellauto.transport.base import ConnectionEvent
from cellauto.transport.modbus import (
    ModbusTransport,
    PymodbusLink,
    RegisterLink,
    RegisterMap,
    ReplayLink,
    load_register_map,
)
from cellauto.transport.modbus.codec import Value
from cellauto.transport.opcua_capture import Capture

__all__ = ["POLL", "STATUS", "ModbusDevice", "encode_recipe"]

_log = logging.getLogger("cellauto.adapter.modbus")

POLL = number("poll", 120.0, "s between background polls (virtual s in simulation); 0: none")

STATE_COILS: dict[StateCommand, str] = {
    command: f"cmd.{command}" for command in StateCommand if command != StateCommand.START
}
STATUS = (
    "status.seq",
    "device.state",
    "program.*",
    "prompt.active",
    "prompt.step",
    "alarm.count",
    "events.head",
    "process.seq",
    "process.time",
)
"""What every poll reads (with the process image's channels), in one request."""
RUN_OUTCOMES = {"Complete": "complete", "Stopping": "stopped", "Aborting": "aborted"}
"""The state a run ends in (the code of its run_end event) -> the run's outcome."""
SYNC_ATTEMPTS = 50  # reads while waiting for a command's effect to show in the event ring


def encode_recipe(template: ProgramTemplate, parameters: dict[str, PropertyValue]) -> bytes:
    """A program and its parameter values as a recipe: the canonical JSON of the program name,
    version, content hash, steps (name, unit operation, unit, duration in s, prompt) and the
    parameter values in the template's units (small enough for a 4096-byte download block)."""
    units = {p.name: p.unit for p in template.parameters}
    values: dict[str, float | str | bool] = {}
    for name, value in parameters.items():
        if isinstance(value, Quantity):
            unit = units.get(name) or value.unit
            values[name] = value.to(unit).value if unit else value.value
        else:
            values[name] = value
    steps = [
        {
            "name": step.name,
            "op": step.unit_operation,
            "unit": step.functional_unit,
            "s": step.duration_seconds,
            "prompt": step.prompt,
        }
        for step in template.steps
    ]
    return canonical_json(
        {
            "recipe": 1,
            "program": template.name,
            "version": template.version,
            "hash": template.content_hash,
            "steps": steps,
            "parameters": values,
        }
    )


class _Clock(Protocol):
    speed: object

    def busy(self) -> AbstractContextManager[None]: ...

    async def sleep(self, seconds: float) -> None: ...


class ModbusDevice(Device):
    """A PLC-run device over its register map (see the module doc). A device subclasses it with
    its `kind` (the map is ``schemas/protocols/<kind>.toml`` unless `register_map` names another)
    and adds what is its own through the hooks: `_identify` (identity beyond ``identity.*``),
    `_device_event` (ring event kinds beyond the common ones), `_result_files`, `_command`.

    URL options: those of `cellauto.adapter.CONNECTION` (``timeout``, ``capture``,
    ``reconnect_attempts``, ``reconnect_time``; ``heartbeat=0`` turns the background poll off)
    and ``poll`` (s between polls). ``<kind>+replay://<capture>`` replays a capture.
    """

    transports = ("modbus", "replay")
    options: ClassVar[Options] = CONNECTION | Options(POLL)
    register_map: ClassVar[str] = ""
    """The map's name in ``schemas/protocols`` (default: `kind`)."""
    scan_echo: ClassVar[str | None] = None
    """An entry read with the channels outside the process block that holds the low 16 bits of
    the scan count, proving they come from the scan the process block came from."""
    identity: ClassVar[tuple[str, ...]] = ("identity.*",)
    """What `_connect` reads for the identity (``identity.manufacturer``, ``.model``,
    ``.serial_number``, ``.firmware``, ``.map_major`` at least)."""
    device_class: ClassVar[str] = "PLC-run equipment"

    def __init__(
        self,
        device_id: str,
        profile: DeviceProfile,
        url: DeviceUrl | None = None,
        *,
        time: TimeSource | None = None,
        regmap: RegisterMap | None = None,
    ) -> None:
        values = self.options.parse(device_id, url.options if url is not None else {})
        super().__init__(device_id, profile, timeout=values[TIMEOUT], time=time)
        self.option_values = values
        """The URL's options, parsed (a subclass reads its own options here)."""
        self.map = regmap or load_register_map(self.register_map or self.kind)
        self._capture: Capture | None = None
        clock = cast(_Clock, time) if _is_clock(time) else None
        self._clock: _Clock | None = clock
        self._max_speed = clock is not None and clock.speed == "max"
        self.poll = values[POLL] if values[HEARTBEAT] > 0 else 0.0
        self.plc = ModbusTransport(self.map, self._make_link(url, values))
        self.last_event_seq = 0
        """The newest device event applied (every one before it was applied too)."""
        self.last_scan = 0
        """The newest scan (`process.seq`) whose values were published."""
        self._alarm_codes = {r.address: r.alarm for r in self.map.discrete if r.alarm}
        self._alarm_bits = {code: address for address, code in self._alarm_codes.items()}
        self._alarm_ids: dict[str, str] = {}  # code -> id of the active alarm
        self._labels = {
            name: e.register.states for name, e in self.map.entries.items() if e.register.states
        }
        self._states = {
            int(code): state_named(label)
            for code, label in self.map.entry("device.state").register.states.items()
        }
        self._published = [
            n for n in profile.channels() if self.map.entry(n).table in ("input", "discrete")
        ]
        image = self.map.group_of("process.time")
        self._process_names = [
            n for n in self._published if self._input(n) and self.map.group_of(n) is image
        ]
        self._rest_names = [
            n for n in self._published if self._input(n) and n not in self._process_names
        ]
        self._bit_names = [n for n in self._published if self.map.entry(n).table == "discrete"]
        self._setpoints = [n for n in profile.channels() if self.map.entry(n).table == "holding"]
        self._setpoint_values: dict[str, Value] = {}
        self._last_reads: dict[str, Sample] = {}  # each channel's last read
        self._loaded: ProgramTemplate | None = None
        self._sync_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._status: dict[str, Value] = {}

    def _input(self, name: str) -> bool:
        """Whether `name` is an input register."""
        return self.map.entry(name).table == "input"

    # --- transport ----------------------------------------------------------------------------

    def _make_link(self, url: DeviceUrl | None, values: Values) -> RegisterLink:
        if url is None:
            raise DeviceError(self.device_id, "connect", "give a device URL")
        if url.transport == "replay":
            return ReplayLink(url.address, device=self.device_id)
        host, port = host_port(self.device_id, url.address)
        self._capture = Capture(values[CAPTURE]) if values.given(CAPTURE) else None
        settings = self.map.link
        if self._max_speed:  # the simulated PLC serves any rate; real-time pacing would stall
            settings = settings.model_copy(update={"min_interval": 0.0})
        clock = self._clock
        # in simulation, reconnect attempts wait on the simulator's clock: a 20-minute outage
        # then costs about 40 attempts, not hours of virtual time passing between two of them
        return PymodbusLink(
            host,
            port,
            device=self.device_id,
            settings=settings,
            backoff=reconnect_policy(
                values, initial=0.05, max_delay=30.0 if clock is not None else 1.0, seed=0
            ),
            capture=self._capture,
            on_event=self._on_connection,
            sleep=clock.sleep if clock is not None else asyncio.sleep,
            busy=clock.busy if clock is not None else None,
        )

    def _on_connection(self, event: ConnectionEvent) -> None:
        self.report_connection(event.state, event.detail, event.attempts)
        if event.state == "connected":
            self._wake.set()

    # --- lifecycle ----------------------------------------------------------------------------

    async def _connect(self) -> DeviceInfo:
        await self.plc.open()
        ident = await self.plc.read(*self.identity, operation="connect")
        major = self.map.map_version.split(".")[0]
        if str(ident["identity.map_major"]) != major:
            raise ProtocolError(
                self.device_id,
                "connect",
                f"the device speaks register map version {ident['identity.map_major']}, "
                f"this adapter {self.map.map_version}",
            )
        extra = await self._identify(ident)
        status = await self.plc.read(*STATUS, operation="connect")
        self._status = status
        self.last_event_seq = int(status["events.head"])
        await self.report_state(self._state_of(status["device.state"]))
        await self._read_setpoints("connect")
        if self.poll > 0:
            self._poller = asyncio.create_task(self._poll_loop(), name=f"{self.device_id} poll")
        return DeviceInfo(
            manufacturer=str(ident["identity.manufacturer"]),
            model=str(ident["identity.model"]),
            serial_number=str(ident["identity.serial_number"]),
            software_revision=str(ident["identity.firmware"]),
            device_class=self.device_class,
            vendor_data={
                "protocol": f"cellauto {self.map.device} Modbus TCP map {self.map.map_version}"
            }
            | extra,
        )

    async def _identify(self, identity: dict[str, Value]) -> dict[str, JsonValue]:
        """What the device says of itself beyond the common identity (vendor data)."""
        return {}

    async def _close(self) -> None:
        if self._poller is not None:
            async with self._sync_lock:  # not in the middle of a request: its answer would dangle
                self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self._before_close()
        await self.plc.close()
        if self._capture is not None:
            self._capture.close()

    async def _before_close(self) -> None:
        """The device is closing (the poll has stopped, the link is still open)."""

    # --- polling ------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            await self._pause()
            try:
                await self._sync("poll")
            except (ConnectionLost, DeviceLost):
                return
            except DeviceError as exc:
                _log.warning("%s: poll failed (retried at the next poll): %s", self.device_id, exc)

    async def _pause(self) -> None:
        """Until the next poll is due, or a command or reconnect asks for one now."""
        waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wake.wait())}
        if self._clock is not None:
            waits.add(asyncio.ensure_future(self._clock.sleep(self.poll)))
        else:
            waits.add(asyncio.ensure_future(asyncio.sleep(self.poll)))
        # at speed=max an open prompt pins virtual time: look again in real time meanwhile
        timeout = 0.05 if self._max_speed else None
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            self._wake.clear()

    async def _sync(self, operation: str) -> dict[str, Value]:
        """One poll: status and process image; events and a new scan if there are any."""
        async with self._sync_lock:
            status = await self.plc.read(*STATUS, *self._process_names, operation=operation)
            self._status = status
            if int(status["events.head"]) != self.last_event_seq:
                await self._read_events(operation)
            scan = int(status["process.seq"])
            if scan != self.last_scan:
                await self._publish_scan(status, operation)
            await self._progress(status)
            return status

    async def _publish_scan(self, status: dict[str, Value], operation: str) -> None:
        scan = int(status["process.seq"])
        values = dict(status)
        echo = self.scan_echo
        for _ in range(5):
            rest = (
                await self.plc.read(
                    *([echo] if echo else []), *self._rest_names, operation=operation
                )
                if self._rest_names or echo
                else {}
            )
            bits = (
                await self.plc.read(*self._bit_names, operation=operation)
                if self._bit_names
                else {}
            )
            if echo is None or int(rest[echo]) == scan & 0xFFFF:
                values |= rest | bits
                break
            # a scan came between the two reads: read the newer image whole
            values = await self.plc.read(*STATUS, *self._process_names, operation=operation)
            scan = int(values["process.seq"])
        else:
            raise ProtocolError(self.device_id, operation, f"{echo} never matched the scan")
        if scan <= self.last_scan:
            return
        self.last_scan = scan
        stamp = datetime.fromtimestamp(int(values["process.time"]), UTC)
        for name in self._published:
            value = self._typed(name, values[name])
            self.report_sample(self.sample(name, value, stamp, seq=scan - 1))

    async def _progress(self, status: dict[str, Value]) -> None:
        run = self.operation
        if run is None or run.done() or not int(status["program.step"]):
            return
        step = int(status["program.step"])
        template = self._loaded
        await self.report_progress(
            progress=float(status["program.progress"]) / 100.0,
            remaining=timedelta(seconds=float(status["program.remaining"])),
            step_name=template.steps[step - 1].name
            if template and step <= len(template.steps)
            else None,
            step_number=step,
        )

    async def _read_setpoints(self, operation: str) -> None:
        values = await self.plc.read(*self._setpoints, "process.time", operation=operation)
        stamp = datetime.fromtimestamp(int(values["process.time"]), UTC)
        for name in self._setpoints:
            if self._setpoint_values.get(name) != values[name]:
                self._setpoint_values[name] = values[name]
                self.report_sample(self.sample(name, self._typed(name, values[name]), stamp))

    # --- events -------------------------------------------------------------------------------

    async def _read_events(self, operation: str) -> None:
        ring = await self.plc.read_ring("events", self.last_event_seq, operation=operation)
        if ring.lost:
            self.report_lost_events(ring.lost.start, ring.lost.stop - 1)
        for record in ring.records:
            await self._apply(record)
            self.last_event_seq = int(record["seq"])
        if any(int(r["kind"]) == 1 for r in ring.records):
            await self._read_setpoints(operation)

    async def _apply(self, record: dict[str, Value]) -> None:
        seq = int(record["seq"])
        kind = self.map.ring("events").fields[2].states.get(str(record["kind"]), "")
        code = int(record["code"])
        when = datetime.fromtimestamp(int(record["time"]), UTC)
        if kind == "state":
            await self.report_state(self._state_of(code))
        elif kind == "step":
            template = self._loaded
            name = (
                template.steps[code - 1].name if template and code <= len(template.steps) else None
            )
            status = self._status
            await self.report_progress(
                progress=float(status.get("program.progress", 0.0)) / 100.0,
                remaining=None,
                step_name=name,
                step_number=code,
            )
        elif kind == "prompt":
            template = self._loaded
            text_ = ""
            if template is not None and 0 < code <= len(template.steps):
                text_ = template.steps[code - 1].prompt or ""
            self.report_prompt(
                OperatorPrompt(
                    prompt_id=str(seq),
                    device_id=self.device_id,
                    text=text_ or f"step {code} waits for the operator",
                    raised_at=when,
                    choices=("done", "declined"),
                )
            )
        elif kind in ("alarm_raised", "alarm_cleared"):
            alarm = self._alarm_codes.get(code, f"bit{code}")
            if kind == "alarm_raised":
                alarm_id = self._alarm_ids.setdefault(alarm, f"{alarm}-{seq}")
                await self.report_alarm_status(
                    alarm_id, alarm, "raised", when, vendor_data={"device_seq": seq}
                )
            elif alarm in self._alarm_ids:
                await self.report_alarm_status(self._alarm_ids.pop(alarm), alarm, "cleared", when)
        elif kind == "run_end":
            await self._run_end(code, when)
        else:
            await self._device_event(kind, record, when)

    async def _device_event(self, kind: str, record: dict[str, Value], when: datetime) -> None:
        """A ring event of a kind only this device has (``image``, ``medium_change``...)."""
        _log.info("%s: event %s (%s) not applied", self.device_id, kind, record)

    def _result_files(self) -> list[ResultFile]:
        """The files of the run that ends now."""
        return []

    async def _run_end(self, code: int, when: datetime) -> None:
        run = self.current_run
        if run is None:
            return
        label = self.map.entry("device.state").register.states.get(str(code), "")
        outcome = RUN_OUTCOMES.get(label, "aborted")
        result = self.run_result(
            outcome,
            stopped=when,
            files=self._result_files(),
            vendor_data={"device_run": int(self._status.get("program.run_id", 0))},
        )
        await self.report_result(result)

    def _state_of(self, code: Value) -> State:
        state = self._states.get(int(code))
        if state is None:
            raise ProtocolError(self.device_id, "read state", f"unknown state code {code}")
        return state

    def _typed(self, name: str, value: Value) -> float | int | bool | str:
        labels = self._labels.get(name)
        if labels:
            return labels.get(str(value), str(value))
        return _DTYPES[self.profile.channel(name).dtype](value)

    # --- Device hooks -------------------------------------------------------------------------

    async def _read(self, channel: str) -> Sample:
        values = await self.plc.read(channel, "process.time", operation=f"read {channel}")
        stamp = datetime.fromtimestamp(int(values["process.time"]), UTC)
        value = self._typed(channel, values[channel])
        last = self._last_reads.get(channel)
        seq = max(self._channel_seq.get(channel, 0), 0)
        if last is None or type(value) is not type(last.value):
            sample = self.sample(channel, value, stamp, publish=False)
        elif last.value == value and last.timestamp == stamp and last.seq == seq:
            return last  # the same scan's value again (samples are immutable)
        else:
            # what validation checked of the last read holds for this one (same channel,
            # value type and unit; a UTC time): copying it costs half of validating anew
            sample = last.model_copy(update={"value": value, "timestamp": stamp, "seq": seq})
        self._last_reads[channel] = sample
        return sample

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        operation = f"start_program {template.name}"
        await self.plc.download("recipe", encode_recipe(template, parameters), operation=operation)
        registers: dict[str, Value] = {}
        for name, value in parameters.items():  # parameters with a register of their own
            entry = self.map.entries.get(f"parameter.{name}")
            if entry is None:
                continue
            if isinstance(value, Quantity):
                unit = entry.register.unit
                value = value.to(unit).value if unit != "1" else value.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                registers[entry.name] = (
                    float(value) if entry.register.type == "float32" else int(value)
                )
        if registers:
            await self.plc.write(registers, operation=operation)
        self._loaded = template
        await self._starting(template)
        await self.plc.pulse("cmd.start", operation=operation)
        await self._until(lambda: self.state not in (IDLE, STOPPED), operation)

    async def _starting(self, template: ProgramTemplate) -> None:
        """The recipe is loaded and the run is about to start."""

    async def _until(self, done: Callable[[], bool], operation: str) -> None:
        """Read the device until `done()` holds (a command's effect is in its event ring)."""
        for _ in range(SYNC_ATTEMPTS):
            await self._sync(operation)
            if done():
                return
            await asyncio.sleep(0)
        raise ProtocolError(self.device_id, operation, "the command's effect never showed")

    async def _send_state_command(self, command: StateCommand) -> None:
        await self.plc.pulse(STATE_COILS[command], operation=str(command))
        await self._sync(str(command))

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        operation = f"acknowledge {alarm.alarm_id}"
        bit = self._alarm_bits.get(alarm.code)
        if alarm.active and bit is not None:  # a cleared alarm is acknowledged here only
            await self.plc.write({"alarm.acknowledge": bit}, operation=operation)
            await self.plc.pulse("cmd.acknowledge_alarm", operation=operation)
        await self.report_alarm_status(
            alarm.alarm_id, alarm.code, "acknowledged", self.time.now(), user=user
        )

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        operation = f"answer_prompt {prompt.prompt_id}"
        await self.plc.write(
            {
                "prompt.answer_for": int(prompt.prompt_id),
                "prompt.answer": 2 if answer == "declined" else 1,
            },
            operation=operation,
        )
        await self.plc.pulse("prompt.submit", operation=operation)
        self.report_prompt_answered(prompt.prompt_id, answer, user)
        self._wake.set()


_DTYPES: dict[str, Callable[[Value], float | int | bool | str]] = {
    "float": float,
    "int": int,
    "bool": bool,
    "str": str,
}


def _is_clock(time: object) -> bool:
    return all(hasattr(time, a) for a in ("busy", "sleep", "speed"))
