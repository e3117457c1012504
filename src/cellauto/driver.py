"""`Device`: the async driver interface every adapter implements.

The public methods hold the behaviour every device shares: checking the state machine before
anything is sent, validating parameters against the profile, timeouts that name the device and
the operation, and an event for every state transition. An adapter fills in the `_`-prefixed
hooks (talking to its device only through `cellauto.transport`) and reports what the device
says through the `report_*` methods.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import contextvars
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import ClassVar, Literal, Protocol, Self, TypeVar, cast, get_args

from pydantic import JsonValue

from cellauto.deadlines import Deadlines
from cellauto.errors import (
    CommandRejected,
    ConnectionLost,
    DeviceError,
    DeviceLost,
    DeviceTimeout,
    InvalidAnswer,
    ProtocolError,
)
from cellauto.feeds import FanOut, Feed, Overflow
from cellauto.operation import Operation, OperationStatus
from cellauto.parameters import validate_parameters
from cellauto.schema import (
    Alarm,
    AlarmSeverity,
    CommandResult,
    DeviceInfo,
    DeviceProfile,
    Event,
    EventKind,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quality,
    Result,
    ResultFile,
    Sample,
    SampleInfo,
)
from cellauto.schema.programs import Outcome
from cellauto.state import (
    ABORTED,
    ABORTING,
    ALREADY_THERE,
    COMPLETE,
    IDLE,
    STOPPED,
    State,
    StateCommand,
    StateMachine,
    state_mappings,
)

T = TypeVar("T")

_RUN_OVER = frozenset({COMPLETE, STOPPED, ABORTED, IDLE})
"""States in which a program run has ended, as the device reports it."""


class TimeSource(Protocol):
    """Where a device takes 'now' from: the wall clock, or a simulator's virtual clock."""

    def now(self) -> datetime: ...


class SystemTime:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class RunEnded(DeviceError):
    """A program run ended without completing; `result` holds what it produced, if anything."""

    result: Result | None = None


class RunAborted(RunEnded):
    """A program run ended in Aborted (by command, alarm or the device itself)."""


class RunStopped(RunEnded):
    """A program run was stopped before it completed."""


@dataclass(frozen=True, slots=True)
class DeviceAction:
    """A command a caller sent a device (state command, acknowledgement, prompt answer), once
    the device accepted it: what a batch writes to its audit trail."""

    device_id: str
    action: str
    """``hold``, ``unhold``, ... ``acknowledge`` or ``answer_prompt``."""
    target: str = ""
    """The alarm or prompt it concerns, if any."""
    value: str | None = None
    user: str | None = None
    via: str | None = None
    """The gateway it came through (``opcua``, ``sila``), which audits it itself; None when a
    script sent it."""


_VIA: contextvars.ContextVar[str | None] = contextvars.ContextVar("cellauto_via", default=None)


@contextlib.contextmanager
def acting_via(gateway: str) -> Iterator[None]:
    """Commands sent to devices inside this block come through `gateway` (``opcua``, ``sila``):
    their `DeviceAction` says so, and a batch leaves their audit entry to the gateway."""
    token = _VIA.set(gateway)
    try:
        yield
    finally:
        _VIA.reset(token)


@dataclass(frozen=True, slots=True)
class OperatorPrompt:
    """An operator action a device waits for (connect a bag, take a sample)."""

    prompt_id: str
    device_id: str
    text: str
    raised_at: datetime
    choices: tuple[str, ...] = ()


class Device(abc.ABC):
    """One connected device: state, channels, programs, alarms and commands."""

    kind: ClassVar[str] = ""
    """Device kind as used in URLs and profiles (``cocoon``)."""
    sample_numbering: ClassVar[Literal["arrival", "period"]] = "arrival"
    """How `sample()` numbers a channel's samples when the wire carries no counter."""

    def __init__(
        self,
        device_id: str,
        profile: DeviceProfile,
        *,
        timeout: float = 10.0,
        time: TimeSource | None = None,
    ) -> None:
        self.device_id = device_id
        self.profile = profile
        self.timeout = timeout
        self.time: TimeSource = time or SystemTime()
        self._machine = StateMachine(device_id)
        self._samples: FanOut[Sample] = FanOut(f"{device_id} samples")
        self._events: FanOut[Event] = FanOut(f"{device_id} events")
        self._results: FanOut[Result] = FanOut(f"{device_id} results")
        self._event_seq = itertools.count()
        self._alarms: dict[str, Alarm] = {}
        self._prompts: dict[str, OperatorPrompt] = {}
        self._info: DeviceInfo | None = None
        self._run: Operation[Result] | None = None
        self._run_record: ProgramRun | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._lost: DeviceLost | None = None
        self._channel_seq: dict[str, int] = {}
        self._deadlines = Deadlines()  # bounds every operation in `timeout` s
        self._last_data: datetime | None = None  # newest sample timestamp received
        self._periodic_last: dict[str, datetime] = {}  # newest per periodic channel
        self._command_ids = itertools.count(1)
        self._lose_task: asyncio.Task[None] | None = None
        self._outage: tuple[datetime, int] | None = None  # (down since, reconnect attempts)
        self._last_contact: datetime | None = None
        self._closing = False
        self._run_ending: tuple[Result | None, DeviceError | None] | None = None
        self.on_action: list[Callable[[DeviceAction], None]] = []
        """Called with every command the device accepted (a batch audits them)."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def info(self) -> DeviceInfo:
        """The device's identity, read at connect."""
        if self._info is None:
            raise DeviceError(self.device_id, "info", "not connected", hint="await connect() first")
        return self._info

    @property
    def state(self) -> State:
        """The device's current state, as it last reported it."""
        return self._machine.state

    async def connect(self) -> None:
        """Open the connection and read the device's identity and state (no-op if connected,
        so ``async with await cellauto.connect(url) as device:`` works)."""
        if self._info is None:
            self._info = await self._bounded("connect", self._connect())

    async def close(self) -> None:
        """Close the connection; subscriptions and event streams end."""
        self._closing = True
        try:
            await self._close()
        finally:
            self._samples.close()
            self._events.close()
            self._results.close()
            for closer in reversed(self._closers):
                await closer()
            self._closers.clear()

    def add_closer(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run `closer` when the device closes (e.g. stop the simulator it talks to)."""
        self._closers.append(closer)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- data ----------------------------------------------------------------------------------

    async def read(self, channel: str) -> Sample:
        """The channel's current value."""
        self._require_channel(channel, f"read {channel}")
        return await self._bounded(f"read {channel}", self._read(channel))

    def subscribe(
        self,
        channels: Iterable[str] | None = None,
        *,
        maxsize: int = 10_000,
        overflow: Overflow = "drop_oldest",
    ) -> Feed[Sample]:
        """Samples of `channels` (all if None) as they arrive; `feed.dropped` counts overflow."""
        wanted = None if channels is None else frozenset(channels)
        for channel in wanted or ():
            self._require_channel(channel, "subscribe")
        return self._samples.feed(
            maxsize=maxsize,
            overflow=overflow,
            accept=None if wanted is None else (lambda s: s.channel in wanted),
        )

    def events(self, *, maxsize: int = 10_000, overflow: Overflow = "drop_oldest") -> Feed[Event]:
        """Every event from now on: state transitions, steps, alarms, prompts, connection."""
        return self._events.feed(maxsize=maxsize, overflow=overflow)

    def results(self) -> Feed[Result]:
        """Every program-run Result from now on, as the device reports it."""
        return self._results.feed(maxsize=1_000)

    # -- programs and state commands -----------------------------------------------------------

    async def start_program(
        self,
        program: str | ProgramTemplate,
        parameters: Mapping[str, object] | None = None,
        *,
        samples: Iterable[SampleInfo] = (),
        supervisory_job_id: str | None = None,
        supervisory_task_id: str | None = None,
        user: str | None = None,
    ) -> Operation[Result]:
        """Start a program; the returned operation resolves to the run's Result."""
        template = self._template(program)
        operation = f"start_program {template.name}"
        params = validate_parameters(
            template.parameters, parameters, device=self.device_id, operation=operation
        )
        self._machine.check(StateCommand.START)
        if self._run is not None and not self._run.done():
            raise CommandRejected(self.device_id, operation, "a program is already running")
        run = ProgramRun(
            device_id=self.device_id,
            device_program_run_id=f"{self.device_id}-{uuid.uuid4().hex[:12]}",
            program=template.name,
            program_version=template.version,
            template_hash=template.content_hash,
            parameters=params,
            supervisory_job_id=supervisory_job_id,
            supervisory_task_id=supervisory_task_id,
            samples=list(samples),
            user=user,
            started=self.time.now(),
            estimated_runtime=_estimated_runtime(template),
        )
        self._run_record = run
        self._run_ending = None
        self._run = Operation(
            self.device_id,
            operation,
            cancel=self.stop,
            initial=OperationStatus(
                status="waiting",
                device_state=str(self.state),
                remaining=run.estimated_runtime,
                step_count=len(template.steps),
            ),
        )
        await self._bounded(operation, self._start_program(template, params, run))
        self._emit(EventKind.PROGRAM_STARTED, message=template.name, data=_run_data(run))
        return self._run

    async def hold(self) -> None:
        """Hold the running program (no-op if already holding or held)."""
        await self._state_command(StateCommand.HOLD)

    async def unhold(self) -> None:
        """Resume a held program."""
        await self._state_command(StateCommand.UNHOLD)

    async def suspend(self) -> None:
        """Suspend the running program (a machine-side pause)."""
        await self._state_command(StateCommand.SUSPEND)

    async def unsuspend(self) -> None:
        """Resume a suspended program."""
        await self._state_command(StateCommand.UNSUSPEND)

    async def stop(self) -> None:
        """Stop in a controlled way (no-op if stopping or stopped)."""
        await self._state_command(StateCommand.STOP)

    async def abort(self) -> None:
        """Abort at once (no-op if aborting or aborted)."""
        await self._state_command(StateCommand.ABORT)

    async def clear(self) -> None:
        """Clear an aborted device back to Stopped."""
        await self._state_command(StateCommand.CLEAR)

    async def reset(self) -> None:
        """Reset a stopped or completed device to Idle."""
        await self._state_command(StateCommand.RESET)

    async def _state_command(self, command: StateCommand) -> None:
        self._machine.check(command)
        if self.state in ALREADY_THERE[command]:
            return
        self._emit(EventKind.COMMAND, message=str(command), cause=str(command))
        await self._bounded(str(command), self._send_state_command(command))
        self._acted(str(command))

    async def wait_for_state(
        self,
        state: State | str,
        *,
        timeout: float | timedelta,  # noqa: ASYNC109 - real-time limit, the API of a waiting primitive
    ) -> State:
        """Until the device is in `state` or reports a transition to it; DeviceTimeout after
        `timeout` (real time), DeviceError if the device closes first."""
        target = State.parse(state) if isinstance(state, str) else state
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        operation = f"wait for state {target}"
        events = self.events()
        try:
            async with asyncio.timeout(seconds):
                while self.state != target:
                    if (await anext(events)).to_state == str(target):
                        break  # reached, though perhaps already left
        except TimeoutError:
            raise DeviceTimeout(self.device_id, operation, seconds) from None
        except StopAsyncIteration:
            raise DeviceError(
                self.device_id, operation, f"the device closed in state {self.state}"
            ) from None
        finally:
            events.close()
        return target

    def _acted(
        self, action: str, target: str = "", value: str | None = None, user: str | None = None
    ) -> None:
        done = DeviceAction(self.device_id, action, target, value, user, _VIA.get())
        for callback in list(self.on_action):
            callback(done)

    # -- alarms and commands -------------------------------------------------------------------

    @property
    def alarms(self) -> list[Alarm]:
        """Alarms that are active or not yet acknowledged."""
        return [a for a in self._alarms.values() if a.active or not a.acknowledged]

    async def acknowledge(self, alarm: Alarm | str, user: str) -> None:
        """Acknowledge an alarm (by object or alarm_id) on behalf of `user`."""
        alarm_id = alarm if isinstance(alarm, str) else alarm.alarm_id
        if alarm_id not in self._alarms:
            known = ", ".join(self._alarms) or "none"
            raise CommandRejected(
                self.device_id, f"acknowledge {alarm_id}", "no such alarm", hint=f"known: {known}"
            )
        await self._bounded(
            f"acknowledge {alarm_id}", self._acknowledge(self._alarms[alarm_id], user)
        )
        self._acted("acknowledge", alarm_id, user=user)

    def alarm(self, alarm_id: str) -> Alarm:
        """The latest state of an alarm this device raised during this connection."""
        try:
            return self._alarms[alarm_id]
        except KeyError:
            raise CommandRejected(self.device_id, f"alarm {alarm_id}", "no such alarm") from None

    @property
    def prompts(self) -> list[OperatorPrompt]:
        """Operator prompts the device is waiting on."""
        return list(self._prompts.values())

    async def answer_prompt(self, prompt: OperatorPrompt | str, answer: str, user: str) -> None:
        """Answer an operator prompt (by object or prompt_id) on behalf of `user`."""
        prompt_id = prompt if isinstance(prompt, str) else prompt.prompt_id
        if prompt_id not in self._prompts:
            known = ", ".join(self._prompts) or "none"
            raise CommandRejected(
                self.device_id,
                f"answer_prompt {prompt_id}",
                "no such open prompt",
                hint=f"open: {known}",
            )
        open_prompt = self._prompts[prompt_id]
        if open_prompt.choices and answer not in open_prompt.choices:
            raise InvalidAnswer(
                self.device_id,
                f"answer_prompt {prompt_id}",
                f"{answer!r} is not one of the prompt's choices",
                hint=f"one of: {', '.join(open_prompt.choices)}",
            )
        await self._bounded(
            f"answer_prompt {prompt_id}", self._answer_prompt(open_prompt, answer, user)
        )
        self._acted("answer_prompt", prompt_id, answer, user)

    async def command(self, name: str, **parameters: object) -> CommandResult:
        """Send a command the profile declares beyond the state commands."""
        specs = {c.name: c for c in self.profile.commands}
        if name not in specs:
            raise CommandRejected(
                self.device_id,
                name,
                "not a command of this device",
                hint=f"known: {', '.join(specs)}",
            )
        spec = specs[name]
        if spec.allowed_states and str(self.state) not in spec.allowed_states:
            raise CommandRejected(
                self.device_id,
                name,
                f"not allowed in state {self.state}",
                hint=f"allowed in: {', '.join(spec.allowed_states)}",
            )
        params = validate_parameters(
            spec.parameters, parameters, device=self.device_id, operation=name
        )
        self._emit(EventKind.COMMAND, message=name, cause=name, data=_jsonable(params))
        result = await self._bounded(name, self._command(name, params))
        self._acted(name, value=json.dumps(_jsonable(params), sort_keys=True))
        return result

    # -- helpers that build what adapters report -----------------------------------------------

    def sample(
        self,
        channel: str,
        value: float | int | bool | str,
        timestamp: datetime,
        *,
        unit: str | None = None,
        quality: Quality = Quality.GOOD,
        seq: int | None = None,
        publish: bool = True,
    ) -> Sample:
        """A Sample of `channel` with the per-channel seq contract: consecutive values the
        device published carry consecutive seqs, so a gap means exactly that values were
        published and not received. `seq` is the device's own per-channel publication counter
        where the wire carries one; otherwise, with `sample_numbering = "period"`, a channel
        with a sample period is numbered by its timestamp (one number per period), and any
        other channel by arrival (exact when the transport delivers every publication in
        order or reads missed ones back). The unit is the
        profile's for numeric channels unless given. `publish=False` (a read) builds the
        sample without numbering a publication: it carries the channel's latest seq."""
        spec = self.profile.channel(channel)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and unit is None:
            unit = spec.unit
        if not publish:
            number = self._channel_seq.get(channel, 0)
        elif seq is not None:
            number = seq
        elif self.sample_numbering == "period" and spec.sample_period is not None:
            period = spec.sample_period.to("s").value
            number = round(timestamp.timestamp() / period)
        else:
            number = self._channel_seq.get(channel, -1) + 1
        if publish:
            self._channel_seq[channel] = number
            if self._last_data is None or timestamp > self._last_data:
                self._last_data = timestamp
            if spec.sample_period is not None:
                self._periodic_last[channel] = max(
                    timestamp, self._periodic_last.get(channel, timestamp)
                )
        return Sample(
            device_id=self.device_id,
            channel=channel,
            timestamp=timestamp,
            value=value,
            unit=unit if numeric else None,
            quality=quality,
            seq=max(number, 0),
        )

    def command_result(
        self,
        name: str,
        *,
        data: Mapping[str, JsonValue] | None = None,
        accepted: bool = True,
        message: str = "",
        command_id: str | None = None,
    ) -> CommandResult:
        """The CommandResult of profile command `name`, finished now."""
        return CommandResult(
            command_id=command_id or f"{self.device_id}-{next(self._command_ids)}",
            device_id=self.device_id,
            name=name,
            accepted=accepted,
            message=message,
            finished_at=self.time.now(),
            data=dict(data or {}),
        )

    def run_result(
        self,
        outcome: str,
        *,
        started: datetime | None = None,
        stopped: datetime | None = None,
        pause: timedelta = timedelta(0),
        properties: Mapping[str, PropertyValue] | None = None,
        files: Iterable[ResultFile] = (),
        vendor_data: Mapping[str, JsonValue] | None = None,
    ) -> Result:
        """The Result of the run this connection started, ending with `outcome` (``complete``,
        ``stopped``, ``aborted``; else ProtocolError): identity and samples from its ProgramRun,
        `started` by default when it was started, `stopped` by default now (never before
        `started`)."""
        run = self._run_record
        if run is None:
            raise DeviceError(self.device_id, "result", "no program run was started")
        if outcome not in get_args(Outcome):
            raise ProtocolError(self.device_id, "result", f"unknown run outcome {outcome!r}")
        return run.result(
            cast(Outcome, outcome),
            started=started,
            stopped=stopped or self.time.now(),
            pause=pause,
            properties=properties,
            files=files,
            vendor_data=vendor_data,
        )

    async def report_run_result(
        self,
        run_id: str,
        outcome: str,
        *,
        time: datetime | None = None,
        started: datetime | None = None,
        stopped: datetime | None = None,
        pause: timedelta = timedelta(0),
        properties: Mapping[str, PropertyValue] | None = None,
        files: Iterable[ResultFile] = (),
        vendor_data: Mapping[str, JsonValue] | None = None,
    ) -> Result | None:
        """Report the result the device gave for its run `run_id` (see `run_result`). The
        result of a run this connection did not start is one ``note`` event (it completes
        nothing); returns the Result reported, or None."""
        run = self._run_record
        if run is None or run.device_program_run_id != run_id:
            self._emit(
                EventKind.NOTE,
                time=time or self.time.now(),
                message=f"result of run {run_id}, which this connection did not start",
                data={"run_id": run_id, "outcome": outcome},
                vendor_data=dict(vendor_data or {}),
            )
            return None
        result = self.run_result(
            outcome,
            started=started,
            stopped=stopped,
            pause=pause,
            properties=properties,
            files=files,
            vendor_data=vendor_data,
        )
        await self.report_result(result)
        return result

    async def report_alarm_status(
        self,
        alarm_id: str,
        code: str,
        status: str,
        time: datetime,
        *,
        user: str | None = None,
        source: str | None = None,
        severity: AlarmSeverity | None = None,
        message: str | None = None,
        vendor_data: Mapping[str, JsonValue] | None = None,
    ) -> Alarm:
        """Report that alarm `alarm_id` was ``raised``, ``acknowledged`` or ``cleared`` at
        `time`: merged with what is known of it and with the profile's AlarmSpec of `code`
        (severity, title, functional unit); returns the alarm as it now stands."""
        before = self._alarms.get(alarm_id)
        if before is None:
            spec = next((a for a in self.profile.alarms if a.code == code), None)
            before = Alarm(
                alarm_id=alarm_id,
                code=code,
                device_id=self.device_id,
                source=source or (spec.functional_unit if spec else None) or "device",
                severity=(spec.severity if spec else None) or severity or AlarmSeverity.WARNING,
                message=(spec.title if spec else None) or message or code,
                raised_at=time,
                vendor_data=dict(vendor_data or {}),
            )
        alarm = before
        if status == "acknowledged" and not alarm.acknowledged:
            alarm = alarm.model_copy(
                update={"acknowledged": True, "acknowledged_at": time, "acknowledged_by": user}
            )
        elif status == "cleared" and alarm.active:
            alarm = alarm.model_copy(update={"active": False, "cleared_at": time})
        await self.report_alarm(alarm)
        return alarm

    def report_lost_events(self, first: int, last: int) -> Event:
        """The device no longer holds its events `first`..`last` (device sequence numbers):
        one NOTE event naming the lost range (``data["lost_seq"] = {from, to}``)."""
        lost: dict[str, JsonValue] = {"from": first, "to": last}
        return self._emit(
            EventKind.NOTE,
            message=f"device events {first}..{last} are lost: the device no longer holds them",
            data={"lost_seq": lost},
        )

    # -- what adapters report ------------------------------------------------------------------

    def report_sample(self, sample: Sample) -> None:
        """Publish a sample the device delivered."""
        self._samples.publish(sample)

    async def report_state(self, state: State) -> None:
        """Adopt the state the device reports; records the transition and updates the run."""
        transition = self._machine.observe(state)
        if transition is None:
            return
        self._emit(
            EventKind.STATE_CHANGED,
            from_state=str(transition.from_state),
            to_state=str(transition.to_state),
            cause="reported",
        )
        run = self._run
        if run is None or run.done():
            return
        status = state_mappings()[state].sila or run.status.status
        if self._run_ending is not None and state in _RUN_OVER:
            await self._settle_run()
        elif state == ABORTING:
            await run.update(device_state=str(state))
        elif state == ABORTED:
            await self._end_run(
                RunAborted(self.device_id, run.name, f"the run was aborted (state {state})")
            )
        elif state == STOPPED:
            await self._end_run(
                RunStopped(self.device_id, run.name, "the run was stopped before it completed")
            )
        elif state != COMPLETE:
            await run.update(status=status, device_state=str(state))

    async def report_progress(
        self,
        *,
        progress: float,
        remaining: timedelta | None,
        step_name: str | None,
        step_number: int | None,
    ) -> None:
        """Report the running program's progress; a new step number is also an event."""
        run = self._run
        if run is None or run.done():
            return
        if step_number is not None and step_number != run.status.step_number:
            self._emit(
                EventKind.STEP_STARTED,
                message=step_name or "",
                data={"step_number": step_number, "run_id": self._run_id()},
            )
        await run.update(
            progress=max(0.0, min(1.0, progress)),
            remaining=remaining,
            step_name=step_name,
            step_number=step_number,
        )

    async def report_result(self, result: Result) -> None:
        """The run's result (before the device reaches Complete). The operation ends once the
        device reports the run's final state (Complete, Stopped, Aborted); a run that was
        stopped or aborted fails it with RunStopped or RunAborted carrying the result."""
        run = self._run
        if run is None or run.done():
            return
        self._results.publish(result)
        self._emit(
            EventKind.PROGRAM_FINISHED,
            message=result.outcome,
            data={"run_id": result.device_program_run_id, "outcome": result.outcome},
        )
        if result.outcome == "complete":
            self._run_ending = (result, None)
        else:
            error: RunEnded
            if result.outcome == "aborted":
                error = RunAborted(self.device_id, run.name, "the run was aborted")
            else:
                error = RunStopped(
                    self.device_id, run.name, "the run was stopped before it completed"
                )
            error.result = result
            self._run_ending = (None, error)
        if self.state in _RUN_OVER:
            await self._settle_run()

    async def _settle_run(self) -> None:
        ending, self._run_ending = self._run_ending, None
        if self._run is None or ending is None:
            return
        result, error = ending
        if error is not None:
            await self._run.fail(error, str(self.state))
        elif result is not None:
            await self._run.finish(result, str(self.state))

    async def report_alarm(self, alarm: Alarm) -> None:
        """A new alarm, or a change to one (acknowledged, cleared); each is an event."""
        before = self._alarms.get(alarm.alarm_id)
        self._alarms[alarm.alarm_id] = alarm
        if before is None:
            kind = EventKind.ALARM_RAISED
        elif before.acknowledged != alarm.acknowledged and alarm.acknowledged:
            kind = EventKind.ALARM_ACKNOWLEDGED
        elif before.active and not alarm.active:
            kind = EventKind.ALARM_CLEARED
        else:
            return
        self._emit(
            kind,
            source=alarm.source,
            message=alarm.message,
            data={"alarm_id": alarm.alarm_id, "code": alarm.code, "severity": alarm.severity},
        )

    def report_prompt(self, prompt: OperatorPrompt) -> None:
        """The device waits for an operator action."""
        if prompt.prompt_id in self._prompts:
            return
        self._prompts[prompt.prompt_id] = prompt
        self._emit(
            EventKind.PROMPT,
            message=prompt.text,
            data={"prompt_id": prompt.prompt_id, "choices": list(prompt.choices)},
        )

    def report_prompt_answered(self, prompt_id: str, answer: str, user: str) -> None:
        """The device reports a prompt as answered (by us or at its own panel)."""
        if self._prompts.pop(prompt_id, None) is None:
            return
        self._emit(
            EventKind.PROMPT_ANSWERED,
            message=answer,
            data={"prompt_id": prompt_id, "answer": answer, "user": user},
        )

    def report_connection(self, state: str, detail: str = "", attempts: int = 0) -> None:
        """A transport's connection state (`cellauto.transport.ConnectionState`). One outage is
        two events, not one per attempt: `disconnected` when the link drops, then `connected`
        (with the attempt count and in ``data["gap"]`` the window in which values may be
        missing: from the oldest of the periodic channels' newest samples received before the
        drop to the reconnect) or `lost`,
        after which every waiter on the device gets DeviceLost (see `lose`)."""
        now = self.time.now()
        if self._closing or self._lost is not None:
            return
        if state == "connected":
            self._last_contact = now
            if self._outage is None:
                return
            since, counted = self._outage
            self._outage = None
            # values are missing from the last one received, not from when the drop was noticed;
            # a transport may deliver one channel's newer values before another's older ones, so
            # the window opens at the oldest of the periodic channels' newest values
            newest = self._periodic_last.values() or (
                [] if self._last_data is None else [self._last_data]
            )
            start = min([since, *newest])
            gap: dict[str, JsonValue] = {"from": start.isoformat(), "to": now.isoformat()}
            self._emit(
                EventKind.CONNECTION_CHANGED,
                message="connected",
                data={"state": "connected", "attempts": max(attempts, counted), "gap": gap},
            )
        elif state == "disconnected":
            if self._outage is not None:
                return
            self._outage = (now, 0)
            self._emit(
                EventKind.CONNECTION_CHANGED,
                message="disconnected",
                data={"state": "disconnected", "detail": detail},
            )
        elif state == "reconnecting":
            since, counted = self._outage or (now, 0)
            self._outage = (since, max(attempts, counted + 1))
        elif state == "lost":
            since, counted = self._outage or (now, 0)
            tried = max(attempts, counted)
            elapsed = (now - since).total_seconds()
            self._emit(
                EventKind.CONNECTION_CHANGED,
                message="lost",
                data={"state": "lost", "attempts": tried, "detail": detail},
            )
            self.lose(
                DeviceLost(
                    self.device_id,
                    "reconnect",
                    last_contact=(self._last_contact or since).isoformat(),
                    attempts=tried,
                    elapsed=elapsed,
                    limits=detail,
                )
            )

    def lose(self, error: DeviceLost) -> None:
        """The device is gone for good: the run fails, subscriptions and result feeds raise
        `error` once drained, and every later call raises it."""
        if self._lost is not None:
            return
        self._lost = error
        self._samples.close(error)
        self._results.close(error)
        run = self._run
        if run is not None and not run.done():
            self._lose_task = asyncio.get_running_loop().create_task(
                run.fail(error, str(self.state)), name=f"{self.device_id} lost"
            )

    @property
    def lost(self) -> DeviceLost | None:
        """The DeviceLost error once the device was given up on, else None."""
        return self._lost

    def report_event(self, kind: EventKind, **fields: object) -> Event:
        """Publish any other event the device reports (prompts, connection changes...)."""
        return self._emit(kind, **fields)

    @property
    def operation(self) -> Operation[Result] | None:
        """The Operation of the program run in progress (or last started)."""
        return self._run

    @property
    def current_run(self) -> ProgramRun | None:
        """The program run in progress (or last started)."""
        return self._run_record

    # -- adapter hooks -------------------------------------------------------------------------

    @abc.abstractmethod
    async def _connect(self) -> DeviceInfo:
        """Open the transport, read identity and state (report_state), start data flow."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Close the transport."""

    @abc.abstractmethod
    async def _read(self, channel: str) -> Sample:
        """Read one channel."""

    @abc.abstractmethod
    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        """Ask the device to start the program; return once it accepted."""

    @abc.abstractmethod
    async def _send_state_command(self, command: StateCommand) -> None:
        """Send a state command the state machine allows; return once the device accepted."""

    @abc.abstractmethod
    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        """Acknowledge an alarm on the device."""

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        """Answer a prompt on the device; devices that raise prompts override this."""
        raise CommandRejected(
            self.device_id, f"answer_prompt {prompt.prompt_id}", "this adapter has no prompts"
        )

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        """Send a profile command; devices with profile commands override this."""
        raise CommandRejected(self.device_id, name, "this adapter implements no such command")

    # -- internals -----------------------------------------------------------------------------

    async def _bounded(self, operation: str, call: Awaitable[T]) -> T:
        if self._lost is not None:
            if asyncio.iscoroutine(call):
                call.close()
            raise self._lost
        try:
            return await self._deadlines.run(self.timeout, call)
        except TimeoutError:
            lost = self.lost
            if lost is not None:
                raise lost from None
            raise DeviceTimeout(self.device_id, operation, self.timeout) from None
        except ConnectionLost as exc:
            lost = self.lost
            if lost is not None and exc is not lost:
                raise lost from exc
            raise

    def _require_channel(self, channel: str, operation: str) -> None:
        try:
            self.profile.channel(channel)  # a lookup, not a copy of the channel table
        except KeyError:
            known = ", ".join(self.profile.channels())
            raise CommandRejected(
                self.device_id, operation, f"no channel {channel!r}", hint=f"channels: {known}"
            ) from None

    def _template(self, program: str | ProgramTemplate) -> ProgramTemplate:
        if isinstance(program, ProgramTemplate):
            return program
        try:
            return self.profile.program(program)
        except KeyError as exc:
            raise CommandRejected(
                self.device_id, f"start_program {program}", str(exc.args[0])
            ) from None

    def _run_id(self) -> str | None:
        return None if self._run_record is None else self._run_record.device_program_run_id

    async def _end_run(self, error: DeviceError) -> None:
        if self._run is not None:
            self._emit(
                EventKind.PROGRAM_FINISHED, message=str(error), data={"run_id": self._run_id()}
            )
            await self._run.fail(error, str(self.state))

    def _emit(self, kind: EventKind, **fields: object) -> Event:
        event = Event.model_validate(
            {
                "device_id": self.device_id,
                "time": self.time.now(),
                "seq": next(self._event_seq),
                "kind": kind,
                **fields,
            }
        )
        self._events.publish(event)
        return event


def _estimated_runtime(template: ProgramTemplate) -> timedelta | None:
    durations = [step.duration_seconds for step in template.steps]
    if any(d is None for d in durations):
        return None
    return timedelta(seconds=sum(d for d in durations if d is not None))


def _jsonable(params: Mapping[str, PropertyValue]) -> dict[str, JsonValue]:
    return {
        key: value.model_dump(mode="json") if hasattr(value, "model_dump") else value
        for key, value in params.items()
    }


def _run_data(run: ProgramRun) -> dict[str, JsonValue]:
    return {
        "run_id": run.device_program_run_id,
        "program": run.program,
        "version": run.program_version,
        "template_hash": run.template_hash,
        "parameters": _jsonable(run.parameters),
    }
