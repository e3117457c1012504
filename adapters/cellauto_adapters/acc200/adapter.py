"""`Acc200Adapter`: the ACC-200 through cellauto's Modbus TCP register map
(schemas/protocols/acc200.md), on `cellauto.transport.modbus` only.

A background poll reads the status and process image in one request; a new scan (`process.seq`)
publishes every channel with the device's scan counter as `Sample.seq` and the scan time as
timestamp; a moved `events.head` reads the event ring from the last sequence number applied, so
after a dropped link nothing is read twice and what the ring no longer holds is one event naming
the lost range. Images the microscope wrote to the share become the run's result files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast

from cellauto.adapter import (
    CAPTURE,
    CONNECTION,
    HEARTBEAT,
    TIMEOUT,
    Conformance,
    ConnectionEvent,
    Options,
    Values,
    host_port,
    number,
    reconnect_policy,
    text,
)
from cellauto.driver import Device, OperatorPrompt, TimeSource
from cellauto.errors import ConnectionLost, DeviceError, DeviceLost, ProtocolError
from cellauto.protocols import state_named
from cellauto.registry import DeviceUrl
from cellauto.schema import (
    Alarm,
    CommandResult,
    DeviceInfo,
    DeviceProfile,
    EventKind,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quantity,
    Result,
    Sample,
)
from cellauto.schema.programs import ResultFile
from cellauto.state import IDLE, STOPPED, State, StateCommand
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

from .images import ImageShare
from .recipe import encode_recipe

__all__ = ["Acc200Adapter"]

_log = logging.getLogger("cellauto_adapters.acc200")

POLL = number("poll", 120.0, "s between background polls (virtual s in simulation); 0: none")
SHARE = text("share", "", "local path of the image share (default: the path the device names)")

STATE_COILS = {
    StateCommand.STOP: "cmd.stop",
    StateCommand.HOLD: "cmd.hold",
    StateCommand.UNHOLD: "cmd.unhold",
    StateCommand.SUSPEND: "cmd.suspend",
    StateCommand.UNSUSPEND: "cmd.unsuspend",
    StateCommand.ABORT: "cmd.abort",
    StateCommand.CLEAR: "cmd.clear",
    StateCommand.RESET: "cmd.reset",
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
RUN_OUTCOMES = {"Complete": "complete", "Stopping": "stopped", "Aborting": "aborted"}
"""The state a run ends in (the code of its run_end event) -> the run's outcome."""
PARAMETER_REGISTERS = (
    "vessel_count",
    "exchange_interval",
    "exchange_volume",
    "imaging_interval",
    "seeding_density",
    "target_cells",
)
VESSEL_COMMANDS = {
    "capture_image": "cmd.capture_image",
    "medium_change": "cmd.medium_change",
    "add_vessel": "cmd.add_vessel",
    "remove_vessel": "cmd.remove_vessel",
}
SYNC_ATTEMPTS = 50  # reads while waiting for a command's effect to show in the event ring


class _Clock(Protocol):
    speed: object

    def busy(self) -> AbstractContextManager[None]: ...

    async def sleep(self, seconds: float) -> None: ...


class Acc200Adapter(Device):
    """Hitachi closed automated culture equipment, as cellauto's ACC-200 register map models it
    (see the protocol profile; not the vendor's interface).

    URL options: those of `cellauto.adapter.CONNECTION` (``timeout``, ``capture``,
    ``reconnect_attempts``, ``reconnect_time``; ``heartbeat=0`` turns the background poll off),
    ``poll`` (s between polls, 120; the PLC publishes its process image once per scan, 300 s) and
    ``share`` (where the image share is mounted locally). ``acc200+replay://<capture>`` replays
    a capture.
    """

    kind = "acc200"
    transports = ("modbus", "replay")
    conformance: ClassVar[Conformance] = Conformance(
        program="oral mucosal cell sheet",
        test_options={"timeout": "20"},
    )
    options: ClassVar[Options] = CONNECTION | Options(POLL, SHARE)

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
        self.map = regmap or load_register_map("acc200")
        self._capture: Capture | None = None
        clock = cast(_Clock, time) if _is_clock(time) else None
        self._clock: _Clock | None = clock
        self._max_speed = clock is not None and clock.speed == "max"
        self.poll = values[POLL] if values[HEARTBEAT] > 0 else 0.0
        self._share_option = values[SHARE]
        self.plc = ModbusTransport(self.map, self._make_link(url, values))
        self.last_event_seq = 0
        """The newest device event applied (every one before it was applied too)."""
        self.last_scan = 0
        """The newest scan (`process.seq`) whose values were published."""
        self.share: ImageShare | None = None
        self.files: list[ResultFile] = []
        """Images of the current run, as result files."""
        self._alarm_codes = {r.address: r.alarm for r in self.map.discrete if r.alarm}
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
        self._vessel_names = [n for n in self._published if n.startswith("vessel")]
        self._process_names = [
            n for n in self._published if not n.startswith("vessel") and self._input(n)
        ]
        self._bit_names = [n for n in self._published if self.map.entry(n).table == "discrete"]
        self._setpoints = [n for n in profile.channels() if self.map.entry(n).table == "holding"]
        self._setpoint_values: dict[str, Value] = {}
        self._loaded: ProgramTemplate | None = None
        self._sync_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._status: dict[str, Value] = {}

    def _input(self, name: str) -> bool:
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
        ident = await self.plc.read("identity.*", "images.share", operation="connect")
        if int(ident["identity.map_major"]) != 1:
            raise ProtocolError(
                self.device_id,
                "connect",
                f"register map version {ident['identity.map_major']} is not 1",
            )
        share = self._share_option or str(ident["images.share"])
        self.share = ImageShare(Path(share)) if share else None
        if self.share is not None:
            self.share.start()
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
            device_class="automated cell culture equipment",
            vendor_data={
                "protocol": f"cellauto acc200 Modbus TCP map {self.map.map_version}",
                "vessel_slots": int(ident["identity.vessel_slots"]),
                "image_share": share,
            },
        )

    async def _close(self) -> None:
        if self._poller is not None:
            async with self._sync_lock:  # not in the middle of a request: its answer would dangle
                self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.share is not None:
            await self.share.stop()
        await self.plc.close()
        if self._capture is not None:
            self._capture.close()

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
        for _ in range(5):
            vessels = await self.plc.read("vessels.seq", *self._vessel_names, operation=operation)
            bits = (
                await self.plc.read(*self._bit_names, operation=operation)
                if self._bit_names
                else {}
            )
            if int(vessels["vessels.seq"]) == scan & 0xFFFF:
                values |= vessels | bits
                break
            # a scan came between the two reads: read the newer image whole
            values = await self.plc.read(*STATUS, *self._process_names, operation=operation)
            scan = int(values["process.seq"])
        else:
            raise ProtocolError(self.device_id, operation, "vessel blocks never matched the scan")
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
        elif kind == "image":
            self._collect_images(code)
            self.report_event(
                EventKind.NOTE,
                source=f"vessel{code}",
                message=f"image of vessel {code}: confluency {float(record['value']):.1f} %",
                data={"device_seq": seq, "vessel": code, "confluency": float(record["value"])},
            )
        elif kind == "medium_change":
            self.report_event(
                EventKind.NOTE,
                source=f"vessel{code}",
                message=f"medium change in vessel {code}: {float(record['value']):.1f} mL",
                data={"device_seq": seq, "vessel": code, "volume": float(record["value"])},
            )
        elif kind == "run_end":
            await self._run_end(code, when)

    def _collect_images(self, vessel: int) -> None:
        if self.share is None:
            return
        run_id = int(self._status.get("program.run_id", 0))
        self.files += self.share.collect(run_id, vessel)

    async def _run_end(self, code: int, when: datetime) -> None:
        run = self.current_run
        if run is None:
            return
        if self.share is not None:  # every image of the run, announced or not
            self.files += self.share.collect(int(self._status.get("program.run_id", 0)))
        label = self.map.entry("device.state").register.states.get(str(code), "")
        outcome = RUN_OUTCOMES.get(label, "aborted")
        started = run.started
        result = Result(
            device_id=self.device_id,
            device_program_run_id=run.device_program_run_id,
            program=run.program,
            program_version=run.program_version,
            template_hash=run.template_hash,
            supervisory_job_id=run.supervisory_job_id,
            user=run.user,
            started=started,
            stopped=max(when, started),
            outcome=outcome,
            total_runtime=max(when, started) - started,
            files=list(self.files),
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
        spec = self.profile.channel(name)
        if spec.dtype == "int":
            return int(value)
        if spec.dtype == "bool":
            return bool(value)
        if spec.dtype == "str":
            return str(value)
        return float(value)

    # --- Device hooks -------------------------------------------------------------------------

    async def _read(self, channel: str) -> Sample:
        values = await self.plc.read(channel, "process.time", operation=f"read {channel}")
        stamp = datetime.fromtimestamp(int(values["process.time"]), UTC)
        return self.sample(channel, self._typed(channel, values[channel]), stamp, publish=False)

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        operation = f"start_program {template.name}"
        await self.plc.download("recipe", encode_recipe(template, parameters), operation=operation)
        registers: dict[str, Value] = {}
        for name in PARAMETER_REGISTERS:
            value = parameters.get(name)
            if isinstance(value, Quantity):
                unit = self.map.entry(f"parameter.{name}").register.unit
                value = value.to(unit).value if unit != "1" else value.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                entry = self.map.entry(f"parameter.{name}")
                registers[entry.name] = (
                    float(value) if entry.register.type == "float32" else int(value)
                )
        if registers:
            await self.plc.write(registers, operation=operation)
        self._loaded = template
        self.files = []
        await self.plc.pulse("cmd.start", operation=operation)
        await self._until(lambda: self.state not in (IDLE, STOPPED), operation)

    async def _until(self, done: Any, operation: str) -> None:
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
        await self.plc.pulse("cmd.acknowledge_alarms", operation=operation)
        now = self.time.now()
        for other in list(self.alarms):
            if other.active and not other.acknowledged:
                await self.report_alarm_status(
                    other.alarm_id, other.code, "acknowledged", now, user=user
                )
        if not alarm.acknowledged:  # a cleared alarm the device no longer lists
            await self.report_alarm_status(
                alarm.alarm_id, alarm.code, "acknowledged", now, user=user
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

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        if name == "load_recipe":
            payload = str(parameters["recipe"]).encode("utf-8")
            status = await self.plc.download("recipe", payload, operation=name)
            return self.command_result(name, data={"status": status})
        if name == "acknowledge_prompt":
            prompt = str(parameters["prompt_id"])
            await self.answer_prompt(prompt, "done", "")
            return self.command_result(name, data={"prompt_id": prompt})
        if name == "leak_check":
            await self.plc.pulse("cmd.leak_check", operation=name)
            await self._sync(name)
            return self.command_result(name)
        coil = VESSEL_COMMANDS.get(name)
        if coil is None:
            raise ProtocolError(self.device_id, name, "no register for this command")
        position = int(_number(parameters["position"]))
        values: dict[str, Value] = {"command.vessel": position}
        if "volume" in parameters:
            values["command.volume"] = _number(parameters["volume"])
        await self.plc.write(values, operation=name)
        await self.plc.pulse(coil, operation=name)
        await self._sync(name)
        return self.command_result(name, data={"position": position})


def _number(value: PropertyValue) -> float:
    if isinstance(value, Quantity):
        return float(value.value)
    if isinstance(value, bool | str):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _is_clock(time: object) -> bool:
    return all(hasattr(time, a) for a in ("busy", "sleep", "speed"))
