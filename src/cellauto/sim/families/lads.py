"""The LADS simulator family: a simulated device served as an OPC UA LADS server.

A LADS device simulator is two parts:

- `SimulatedLadsDevice`: the device itself, in process. It is a cellauto `Device` whose
  programs run on the kit's `ProgramRunner` and virtual clock, whose channels come from a
  process model (`values`, called every `tick` virtual seconds; each channel is published once
  per its profile sample period and recorded in the ground truth), and whose alarms are the
  profile's. A device subclass supplies the model and the step hooks only.
- `LadsSimHandle`: serves that device with the LADS gateway machinery (`cellauto.gateway`):
  DeviceSet, FunctionalUnits, functions with EngineeringUnits and EURange, the
  FunctionalUnitStateMachine, ProgramManager with templates, ActiveProgram and ResultSet,
  Alarms & Conditions, prompts. The simulator's endpoint is unsecured and anonymous users may
  call methods (a loopback test server, not a plant gateway).

The next LADS device needs a profile and a `SimulatedLadsDevice` subclass.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import itertools
import math
import shutil
import tempfile
from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Self

from cellauto.driver import Device, OperatorPrompt
from cellauto.errors import FaultSpecError, SimOptionError, SimulationError
from cellauto.lads._ua import ObjectIds, nid
from cellauto.lads.cache import cache_dir
from cellauto.schema import (
    Alarm,
    DeviceInfo,
    DeviceProfile,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Result,
    ResultFile,
    Sample,
)
from cellauto.schema.programs import Outcome
from cellauto.sim.clock import Clock
from cellauto.sim.device import ClockPin, EventLog
from cellauto.sim.faults import FaultKind
from cellauto.sim.handle import SimHandle, plan_faults
from cellauto.sim.runner import ProgramRunner, RunEvent, StepHook
from cellauto.sim.truth import GroundTruth
from cellauto.state import (
    ABORTED,
    CLEARING,
    COMPLETE,
    IDLE,
    RESETTING,
    STOPPED,
    State,
    StateCommand,
)

Value = float | int | bool | str


class SimulatedLadsDevice(Device):
    """A simulated device in process (see the module doc). Subclasses implement `values` and
    may add step hooks (`step_start`, `step_end`: unit operation -> hook) and
    `result_properties`. Its event log (`log`) is the ground truth's event list."""

    tick: ClassVar[float] = 60.0
    """Virtual seconds between two looks at the process model."""
    serial: ClassVar[str] = "SIM-0001"

    def __init__(
        self, profile: DeviceProfile, clock: Clock, truth: GroundTruth, seed: int = 0
    ) -> None:
        super().__init__(f"{profile.device}-sim", profile, time=clock)
        self.clock = clock
        self.truth = truth
        self.log = EventLog(clock, truth)
        self.prompt_pin = ClockPin(clock)
        """Holds a max-speed clock while a prompt is open (the operator answers at once)."""
        self.seed = seed
        self.runner: ProgramRunner | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._run_events: asyncio.Queue[RunEvent] = asyncio.Queue()
        self._loop_task: asyncio.Task[None] | None = None
        self._slots: dict[str, int] = {}
        self._alarm_ids = itertools.count(1)
        self._prompt_ids = itertools.count(1)
        self._open_prompt: str | None = None
        self.step_start: dict[str, StepHook] = {}
        self.step_end: dict[str, StepHook] = {}
        self._files: Path | None = None

    # -- what a device implements ------------------------------------------------------------

    def values(self) -> Mapping[str, Value]:
        """Every channel's value now (virtual time `self.clock.now()`)."""
        raise NotImplementedError

    def result_properties(self, outcome: str) -> dict[str, PropertyValue]:
        """What a finished run reports."""
        return {}

    def result_files(self, outcome: str) -> list[tuple[str, str, bytes]]:
        """The files a finished run produced: (name, MIME type, content)."""
        return []

    # -- Device hooks --------------------------------------------------------------------------

    async def _connect(self) -> DeviceInfo:
        self._loop_task = asyncio.create_task(self._sample_loop(), name=f"{self.device_id} model")
        return DeviceInfo(
            manufacturer=self.profile.manufacturer,
            model=f"{self.profile.model} (simulated)",
            serial_number=self.serial,
            software_revision="sim",
        )

    async def _close(self) -> None:
        if self._files is not None:
            shutil.rmtree(self._files, ignore_errors=True)
        self.prompt_pin.release()
        for task in (self._run_task, self._loop_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _read(self, channel: str) -> Sample:
        value = self.values()[channel]
        return self.sample(channel, value, self.clock.now(), publish=False)

    async def _sample_loop(self) -> None:
        while True:
            self.publish_due()
            t = self.clock.now().timestamp()
            await self.clock.sleep((math.floor(t / self.tick + 1e-9) + 1) * self.tick - t)

    def publish_due(self) -> None:
        """Publish every channel whose sample period comes round now: a channel of period P
        publishes at the virtual times that are whole multiples of P (P is rounded to whole
        ticks), so consecutive publications are exactly one period apart."""
        stamp = self.clock.now()
        t = stamp.timestamp()
        channels = self.profile.channels()
        for channel, value in self.values().items():
            spec = channels[channel].sample_period
            period = spec.to("s").value if spec is not None else self.tick
            period = max(round(period / self.tick), 1) * self.tick
            slot = round(t / period)
            if abs(t - slot * period) > 1e-3 or self._slots.get(channel) == slot:
                continue
            self._slots[channel] = slot
            truth = self.truth.sample(channel, stamp, value)
            self.report_sample(self.sample(channel, value, stamp, seq=truth.seq))

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        runner = ProgramRunner(
            template,
            self.clock,
            device=self.device_id,
            parameters=parameters,
            on_step_start=self.step_start,
            on_step_end=self.step_end,
        )
        self.runner = runner
        self._run_events = asyncio.Queue()
        runner.add_listener(self._on_run_event)
        self._run_task = asyncio.create_task(self._execute(runner, run), name=self.device_id)
        await asyncio.sleep(0)

    async def _execute(self, runner: ProgramRunner, run: ProgramRun) -> None:
        """Report the run's events in the order the runner emitted them; the result goes out
        just before the state that ends the run (ADR 0007)."""
        queue = self._run_events
        running = asyncio.create_task(runner.run(), name=f"{self.device_id} run")
        try:
            while True:
                event = await queue.get()
                if event.kind == "state" and event.status.state in _ENDED:
                    await self.report_result(self._result(run, await running))
                    await self.report_state(event.status.state)
                    return
                await self._apply(event)
        finally:
            running.cancel()

    def _result(self, run: ProgramRun, outcome: Outcome) -> Result:
        stopped = self.clock.now()
        self.log.append("result", {"outcome": outcome})
        return run.result(
            outcome,
            stopped=stopped,
            properties=self.result_properties(outcome),
            files=self._store(run, self.result_files(outcome)),
        )

    def _store(self, run: ProgramRun, files: list[tuple[str, str, bytes]]) -> list[ResultFile]:
        """Write a run's files to the simulator's folder (the LADS server serves them from
        there as FileType objects; removed when the device closes)."""
        if not files:
            return []
        if self._files is None:
            self._files = Path(tempfile.mkdtemp(prefix=f"cellauto-{self.device_id}-files-"))
        stored = []
        for name, mime_type, content in files:
            path = self._files / f"{run.device_program_run_id}-{name}"
            path.write_bytes(content)
            digest = hashlib.sha256(content).hexdigest()
            stored.append(
                ResultFile(name=name, mime_type=mime_type, path=path.as_uri(), sha256=digest)
            )
        return stored

    def _on_run_event(self, event: RunEvent) -> None:
        data = {"state": str(event.status.state)} if event.kind == "state" else {}
        self.log.append(event.kind, data | {"step": event.status.step_name or ""})
        self._run_events.put_nowait(event)

    async def _apply(self, event: RunEvent) -> None:
        status = event.status
        if event.kind == "state":
            await self.report_state(status.state)
        elif event.kind == "step_started":
            await self.report_progress(
                progress=status.progress,
                remaining=timedelta(seconds=status.remaining),
                step_name=status.step_name,
                step_number=status.step_index,
            )
        elif event.kind == "prompt":
            prompt_id = f"P{next(self._prompt_ids):04d}"
            self._open_prompt = prompt_id
            self.prompt_pin.hold()
            self.report_prompt(
                OperatorPrompt(prompt_id, self.device_id, status.prompt or "", event.time)
            )
        elif event.kind == "prompt_answered" and self._open_prompt is not None:
            prompt_id, self._open_prompt = self._open_prompt, None
            self.prompt_pin.release()
            self.report_prompt_answered(prompt_id, event.detail, "operator")

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        if self.runner is None:
            raise SimulationError(f"{self.device_id}: no run waits on {prompt.prompt_id}")
        self.runner.answer_prompt(answer)
        self._open_prompt = None
        self.prompt_pin.release()
        self.report_prompt_answered(prompt.prompt_id, answer, user)

    async def _send_state_command(self, command: StateCommand) -> None:
        runner = self.runner
        running = runner is not None and self._run_task is not None and not self._run_task.done()
        if running and runner is not None:
            {
                StateCommand.HOLD: runner.hold,
                StateCommand.UNHOLD: runner.unhold,
                StateCommand.SUSPEND: runner.suspend,
                StateCommand.UNSUSPEND: runner.unsuspend,
                StateCommand.STOP: runner.stop,
                StateCommand.ABORT: runner.abort,
            }[command]()
            await asyncio.sleep(0)
            return
        steps: dict[StateCommand, tuple[State, ...]] = {
            StateCommand.CLEAR: (CLEARING, STOPPED),
            StateCommand.RESET: (RESETTING, IDLE),
            StateCommand.ABORT: (ABORTED,),
            StateCommand.STOP: (STOPPED,),
        }
        for state in steps.get(command, ()):
            self.truth.event(
                len(self.truth.events) + 1, self.clock.now(), "state", {"state": str(state)}
            )
            await self.report_state(state)

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        await self.report_alarm_status(
            alarm.alarm_id, alarm.code, "acknowledged", self.clock.now(), user=user
        )

    # -- alarms (the handle's side) ------------------------------------------------------------

    def raise_alarm(self, code: str) -> str:
        """Raise a profile alarm now; returns its id."""
        alarm_id = f"A{next(self._alarm_ids):04d}"
        self._alarm_task(alarm_id, code, "raised")
        return alarm_id

    def clear_alarm(self, code: str) -> None:
        """Clear every active alarm of `code`."""
        for alarm in self.alarms:
            if alarm.code == code and alarm.active:
                self._alarm_task(alarm.alarm_id, code, "cleared")

    def _alarm_task(self, alarm_id: str, code: str, status: str) -> None:
        now = self.clock.now()
        self.truth.event(
            len(self.truth.events) + 1,
            now,
            "alarm",
            {"id": alarm_id, "code": code, "status": status},
        )
        asyncio.get_running_loop().create_task(
            self.report_alarm_status(alarm_id, code, status, now)
        )


_ENDED = frozenset({COMPLETE, STOPPED, ABORTED})

_CREATE_MONITORED_ITEMS = nid(ObjectIds.CreateMonitoredItemsRequest_Encoding_DefaultBinary)


class LadsSimHandle(SimHandle):
    """A LADS device simulator: `device` (a `SimulatedLadsDevice`) served by the LADS gateway
    machinery on a loopback port; `url` is ``<kind>+opcua://127.0.0.1:<port>``."""

    device_class: ClassVar[type[SimulatedLadsDevice]]

    device: SimulatedLadsDevice
    gateway: Any

    unsimulated_faults: ClassVar[frozenset[FaultKind]] = frozenset(
        {FaultKind.STALL, FaultKind.CORRUPT, FaultKind.DROP_BYTES}
    )
    """Link faults a LADS server cannot show: asyncua owns the OPC UA framing and sessions."""

    @classmethod
    async def launch(
        cls, profile: DeviceProfile, options: Mapping[str, str], **kwargs: Any
    ) -> Self:
        """As the kit's, but refuses the faults this wire cannot simulate before serving."""
        try:
            planned = plan_faults(options.get("faults", ""), profile).faults
        except FaultSpecError:
            planned = ()  # the kit's launch says what is wrong with the spec
        refused = sorted({str(f.kind) for f in planned if f.kind in cls.unsimulated_faults})
        if refused:
            raise SimOptionError(
                cls.kind,
                "faults",
                f"{', '.join(refused)} cannot be simulated on a LADS server "
                "(asyncua owns the OPC UA framing); use disconnect or the profile's alarms",
            )
        return await super().launch(profile, options, **kwargs)

    def _stall(self, duration: float) -> None:
        raise SimulationError(f"{self.kind}: stall is refused when the simulator starts")

    async def _start(self) -> None:
        from cellauto.gateway import Role, serve_lads

        self.device = self.device_class(self.profile, self.clock, self.truth, self.options.seed)
        await self.device.connect()
        self.gateway = serve_lads(
            [self.device],
            state=_state_dir(),
            port=self.options.port or 0,
            allow_unsecured_read=True,
            audit=lambda call: None,
            startup_cache=cache_dir(),
        )
        self.gateway.users.anonymous = Role.SUPERVISOR
        self._start_pin = ClockPin(self.clock)
        self._start_pin.hold()
        await self.gateway.start()
        self._release_on_first_subscription()
        port = self.gateway.url.rsplit(":", 1)[1]
        self.url = f"{self.kind}+opcua://127.0.0.1:{port}"

    def _release_on_first_subscription(self) -> None:
        """At speed=max virtual time starts when the first client subscribes (after it has
        browsed), so a seeded run does not depend on how long the client took to get ready."""
        ruleset = self.gateway.server._permission_ruleset
        check = ruleset.check_validity

        def check_validity(user: Any, action: Any, body: Any) -> bool:
            if action == _CREATE_MONITORED_ITEMS:
                self._start_pin.release()
            return bool(check(user, action, body))

        ruleset.check_validity = check_validity

    async def _stop(self) -> None:
        with contextlib.suppress(AttributeError):
            self._start_pin.release()
        with contextlib.suppress(AttributeError):
            await self.gateway.stop()
        with contextlib.suppress(AttributeError):
            await self.device.close()

    async def _disconnect(self, duration: float) -> None:
        """Close every client connection and stop listening for `duration` virtual s; then,
        at speed=max, hold the clock until a client subscribes again (as at start), so the
        outage lasts `duration` and not also however long the client takes to reconnect."""
        listener = self.gateway.server.bserver
        await listener.stop()
        try:
            await self.clock.sleep(duration)
        finally:
            self._start_pin.hold()
            await listener.start()


@cache
def _state_dir() -> Path:
    """One certificate folder for every LADS simulator of this process (making an RSA key
    takes a second; a loopback simulator needs no identity of its own), removed at exit."""
    path = Path(tempfile.mkdtemp(prefix="cellauto-lads-sim-"))
    atexit.register(shutil.rmtree, path, True)
    return path
